/**
 * What an executor signs (docs/executors.md#signatures), with the consensus core's field lists
 * (src/consensus/core/signed.ts), so the kernel verifies exactly what the executor signed:
 *
 *   candidate        { task_id, round, proposer_id, candidate_hash, evidence, cost_usd }
 *   verifier_result  { task_id, candidate_hash, verifier_id, policy_id, status, reason_codes, score, evidence, cost_usd }
 *
 * Ed25519 over the canonical JSON of those fields plus `kind` (crypto.ts `signedPayload`). The
 * output is covered through `candidate_hash`, the sha256 hex of its canonical JSON. Defaults an
 * executor fills in when the request leaves them out: `proposer_id` and `verifier_id` its own name,
 * `round` 1; `evidence` [] and `cost_usd` 0 when it reports none; `score` 1.
 *
 * @example
 *   const fields = candidateFieldsOf({ task_id: 't', proposer_id: 'executor:rt', round: 1 }, answer);
 *   verifyRecord(client.record.public_key, 'candidate', fields, answer.signature);  // true
 */
import { candidateHash } from '../../consensus/core/crypto.js';
import { candidateSignedFields, verifierResultSignedFields } from '../../consensus/core/signed.js';
import type { EvidenceRef, VerificationStatus } from '../../consensus/core/types.js';

/** The signed fields of a candidate (kind `candidate`) from the request's ids and the answer. */
export function candidateFieldsOf(req: { task_id: string; proposer_id: string; round: number }, answer: { output: unknown; evidence?: EvidenceRef[]; cost_usd?: number }): Record<string, unknown> {
  return candidateSignedFields({
    task_id: req.task_id,
    round: req.round,
    proposer_id: req.proposer_id,
    candidate_hash: candidateHash(answer.output),
    evidence: answer.evidence ?? [],
    cost_usd: answer.cost_usd ?? 0,
  });
}

/** The signed fields of a verifier result (kind `verifier_result`) from the request's ids and the answer. */
export function verifierResultFieldsOf(
  req: { task_id: string; candidate_hash: string; verifier_id: string; policy_id: string },
  answer: { status: VerificationStatus; reason_codes: readonly number[]; score?: number; evidence?: EvidenceRef[]; cost_usd?: number },
): Record<string, unknown> {
  return verifierResultSignedFields({
    task_id: req.task_id,
    candidate_hash: req.candidate_hash,
    verifier_id: req.verifier_id,
    policy_id: req.policy_id,
    status: answer.status,
    reason_codes: [...answer.reason_codes],
    score: answer.score ?? 1,
    evidence: answer.evidence ?? [],
    cost_usd: answer.cost_usd ?? 0,
  });
}
