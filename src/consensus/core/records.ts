/**
 * Whether a proposal or a verifier result may enter a task's state: signed by a member in the right
 * role, for a stage that is still open, naming what exists. Pure; the vote records are in votes.ts.
 *
 *   candidate        NOT_MEMBER, ROLE_MISMATCH, SIGNATURE_MISSING, SIGNATURE_INVALID, ALREADY_FINALIZED /
 *                    TASK_EXPIRED, STAGE_CLOSED (proposing is over), CANDIDATE_HASH_MISMATCH, STAGE_CLOSED
 *                    (the proposer already proposed in this round); a large output is not refused: it is
 *                    stored by reference
 *   verifier_result  the signature checks, ALREADY_FINALIZED / TASK_EXPIRED, STAGE_CLOSED (a decision is
 *                    committed), CANDIDATE_UNKNOWN, POLICY_UNKNOWN (not the contract's policy)
 *
 * @example
 *   const v = checkProposal(ctx, candidate);
 *   if (!v.ok) tx.appendEvent(..., 'TASK_INPUT_REJECTED', { reason_code: v.code, reason: v.message, record_kind: 'candidate', ... });
 */
import { candidateHash } from './crypto.js';
import { isReasonCode, ReasonCode } from './reason-codes.js';
import type { Candidate, Member, TaskStatus, VerifierResult } from './types.js';
import { checkSigned, OK, refuse, type Verdict } from './votes.js';

/** What the proposal and verifier-result checks read of a task's state (projection.ts `recordContext`). */
export interface RecordContext {
  status: TaskStatus;
  members: readonly Member[];
  candidate_hashes: ReadonlySet<string>;
  /** Proposals accepted so far: who proposed in which proposal round. */
  proposals: ReadonlyArray<{ proposer_id: string; round: number; candidate_hash: string }>;
  /** The contract's verification policy. */
  policy_id: string;
}

function closed(status: TaskStatus): Verdict | undefined {
  if (status === 'finalized') return refuse(ReasonCode.ALREADY_FINALIZED, 'the task is already finalized');
  if (status === 'expired' || status === 'failed') return refuse(ReasonCode.TASK_EXPIRED, `the task has ${status}`);
  return undefined;
}

/**
 * Whether a candidate may be accepted. `output` is checked against `candidate_hash` when present
 * (pass the full candidate, also when its event will only carry `output_ref`).
 */
export function checkProposal(ctx: RecordContext, c: Pick<Candidate, 'task_id' | 'candidate_hash' | 'proposer_id' | 'round' | 'evidence' | 'cost_usd' | 'signature'> & { output?: unknown }): Verdict {
  const signed = checkSigned(ctx.members, 'proposer', 'candidate', c);
  if (!signed.ok) return signed;
  const fin = closed(ctx.status);
  if (fin) return fin;
  if (ctx.status !== 'created' && ctx.status !== 'proposing') return refuse(ReasonCode.STAGE_CLOSED, `proposing is over (the task is ${ctx.status})`);
  if ('output' in c && candidateHash(c.output) !== c.candidate_hash) return refuse(ReasonCode.CANDIDATE_HASH_MISMATCH, `candidate_hash ${c.candidate_hash} is not the sha256 of the output's canonical JSON`);
  const prior = ctx.proposals.find((p) => p.proposer_id === c.proposer_id && p.round === c.round);
  if (prior) return refuse(ReasonCode.STAGE_CLOSED, `'${c.proposer_id}' already proposed in round ${c.round}`);
  if (!Number.isFinite(c.cost_usd) || c.cost_usd < 0) return refuse(ReasonCode.UNKNOWN, `cost_usd ${String(c.cost_usd)} must be a number ≥ 0`);
  return OK;
}

/** Whether a verifier result may be accepted. */
export function checkVerifierResult(ctx: RecordContext, r: VerifierResult): Verdict {
  const signed = checkSigned(ctx.members, 'verifier', 'verifier_result', r as unknown as Record<string, unknown>);
  if (!signed.ok) return signed;
  const fin = closed(ctx.status);
  if (fin) return fin;
  if (ctx.status === 'committed') return refuse(ReasonCode.STAGE_CLOSED, 'a decision is already committed; verification is over');
  if (!ctx.candidate_hashes.has(r.candidate_hash)) return refuse(ReasonCode.CANDIDATE_UNKNOWN, `the task has no candidate ${r.candidate_hash}`);
  if (r.policy_id !== ctx.policy_id) return refuse(ReasonCode.POLICY_UNKNOWN, `the result is under ${r.policy_id}; the task's policy is ${ctx.policy_id}`);
  if (r.status !== 'passed' && r.status !== 'failed' && r.status !== 'inconclusive') return refuse(ReasonCode.UNKNOWN, `status ${JSON.stringify(r.status)} is not passed, failed or inconclusive`);
  if (!Array.isArray(r.reason_codes) || !r.reason_codes.every(isReasonCode)) return refuse(ReasonCode.UNKNOWN, 'reason_codes must be integers 0..65535');
  if (!Number.isFinite(r.score) || r.score < 0 || r.score > 1) return refuse(ReasonCode.UNKNOWN, `score ${String(r.score)} must be in [0, 1]`);
  return OK;
}
