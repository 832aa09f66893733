/**
 * The rules the driver applies, each behind one small function: membership, the local verifier's
 * policy call, the tally and when it decides, explore control, the stage budget gate, and the event
 * payload cap. Pure: no I/O.
 *
 * @example
 *   decideTally({ h1: 2, h2: 1 }, { quorum: 2, outstanding: 0, deadlinePassed: false }) // { decided: 'h1' }
 */
import { canonicalJson } from '../../core/canonical-json.js';
import { validateAgainst } from '../../core/io-schema.js';
import { byteLength } from '../../core/limits.js';
import { ReasonCode } from '../core/reason-codes.js';
import type { BudgetBucket, Member, TaskContract, VerifierSpec, VoterSpec } from '../core/types.js';
import { evaluatePolicy, type PolicyInput, type PolicyOutcome } from '../policies/index.js';
import { contractParticipants } from '../core/contract.js';
import { MAX_EVENT_PAYLOAD_BYTES } from '../core/limits.js';


export const DEFAULT_EXPIRY_MS = 10 * 60_000;
export const DEFAULT_REVEAL_DEADLINE_MS = 60_000;
export const DEFAULT_MAX_VOTE_ROUNDS = 3;

/** A proposer slot of the task: who proposes, and how. */
export interface ProposerSlot {
  id: string;
  executor?: string;
  agent?: string;
}

/** The proposer slots of a contract (an entry with `samples: n` is n members), with their member ids. */
export function proposerSlots(contract: TaskContract): ProposerSlot[] {
  return contractParticipants(contract)
    .filter((p) => p.role === 'proposer')
    .map((p) => ({ id: p.id, ...(p.executor ? { executor: p.executor } : {}), ...(p.agent ? { agent: p.agent } : {}) }));
}

/** The verifiers (default: one local verifier), with their member ids. */
export function verifierSlots(contract: TaskContract): Array<VerifierSpec & { id: string }> {
  return contractParticipants(contract)
    .filter((p) => p.role === 'verifier')
    .map((p) => ({ id: p.id, ...(p.executor ? { executor: p.executor } : { local: true }) }));
}

export function voterSlots(contract: TaskContract): VoterSpec[] {
  return contract.voting.voters;
}

/** Reveals needed for a decision: the contract's, else a majority of the voters. */
export function quorumOf(contract: TaskContract): number {
  return contract.voting.quorum ?? Math.floor(contract.voting.voters.length / 2) + 1;
}

export function memberOf(members: readonly Member[], role: Member['role'], id: string): Member | undefined {
  return members.find((m) => m.role === role && m.id === id);
}

/** The local verifier: the named policy over the candidate (an unimplemented policy module falls back to the schema check). */
export function runPolicy(policy: string, params: Record<string, unknown>, input: PolicyInput): PolicyOutcome {
  try {
    return evaluatePolicy(policy, params, input);
  } catch (e) {
    if (!(e instanceof Error && e.message.startsWith('not implemented'))) throw e;
    const problems = input.output_schema ? validateAgainst(input.output_schema, input.candidate.output) : [];
    if (input.unreachable_evidence?.length) return { status: 'inconclusive', reason_codes: [ReasonCode.EVIDENCE_UNREACHABLE], reason: `evidence unreachable: ${input.unreachable_evidence.join(', ')}`, score: 0 };
    return problems.length ? { status: 'failed', reason_codes: [ReasonCode.SCHEMA_MISMATCH], reason: problems.join('; '), score: 0 } : { status: 'passed', reason_codes: [], reason: 'ok', score: 1 };
  }
}

/**
 * Whether the tally decides now: a candidate with at least `quorum` approvals that no other can
 * still catch up with (`outstanding` voters have not revealed), or, at the deadline, the one with most
 * approvals if it has the quorum (a tie at the top decides nothing).
 */
export function decideTally(tally: Readonly<Record<string, number>>, o: { quorum: number; outstanding: number; deadlinePassed: boolean }): { decided?: string; tie?: boolean } {
  const ranked = Object.entries(tally).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const [top, second] = ranked;
  if (!top || top[1] < o.quorum) return {};
  const lead = top[1] - (second?.[1] ?? 0);
  if (lead > o.outstanding) return { decided: top[0] };
  if (o.deadlinePassed || o.outstanding === 0) return lead > 0 ? { decided: top[0] } : { tie: true };
  return {};
}

/** Explore control after a proposal round: stop at `topk` distinct candidates or after rounds without a new one. */
export function exploreStop(contract: TaskContract, distinct: number, roundsWithoutNew: number, round: number): { stop: boolean; reason_code?: number; reason?: string } {
  const e = contract.explore ?? {};
  if (e.topk !== undefined && distinct >= e.topk) return { stop: true, reason_code: ReasonCode.TOPK_REACHED, reason: `explore.topk ${e.topk} reached` };
  const quiet = e.stop?.no_new_evidence_rounds;
  if (quiet !== undefined && roundsWithoutNew >= quiet) return { stop: true, reason_code: ReasonCode.NO_NEW_EVIDENCE, reason: `${roundsWithoutNew} round(s) brought no new candidate` };
  if (round >= (e.max_rounds ?? 1)) return { stop: true };
  return { stop: false };
}

/** The stage budget gate: may a stage spend more from its bucket? */
export function budgetAllows(contract: TaskContract, bucket: BudgetBucket, spent: number): boolean {
  const limit = contract.budget?.[bucket];
  return limit === undefined || spent < limit;
}

/** A candidate's output as event data: in full under the cap, else its hash and size only. */
export function outputForEvent(output: unknown): { output?: unknown; output_bytes: number; output_in_row?: true } {
  const bytes = byteLength(canonicalJson(output ?? null));
  // Half the cap: the event carries the candidate's evidence and signature too.
  return bytes <= MAX_EVENT_PAYLOAD_BYTES / 2 ? { output, output_bytes: bytes } : { output_bytes: bytes, output_in_row: true };
}
