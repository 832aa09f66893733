/**
 * What an executor signs (docs/executors.md#signatures): exactly these fields, with `signRecord` /
 * `verifyRecord` of src/consensus/core/crypto.ts (Ed25519 over the canonical JSON of the fields plus
 * `kind`). The reference executor signs with them and whoever checks a signature rebuilds them from
 * the request it sent and the answer it got.
 *
 *   candidate        { task_id, candidate_hash, proposer_id, round, output_hash }
 *   verifier_result  { task_id, candidate_hash, verifier_id, policy_id, status, reason_codes, score }
 *
 * `output_hash` is sha256 hex of the canonical JSON of the output (candidateHash(output)); the
 * executor's `candidate_hash` is the same value. `proposer_id` is the request's (default: the
 * executor's name), `round` the request's (default 1); `verifier_id` the request's (default: the
 * executor's name), `score` the answer's (default 1).
 *
 * @example
 *   const fields = candidateSignedFields({ task_id: 't', proposer_id: 'executor:rt', round: 1 }, output);
 *   verifyRecord(client.record.public_key, 'candidate', fields, answer.signature);  // true
 */
import { candidateHash } from '../../consensus/core/crypto.js';
import type { VerificationStatus } from '../../consensus/core/types.js';

export interface CandidateSignedFields {
  [k: string]: unknown;
  task_id: string;
  candidate_hash: string;
  proposer_id: string;
  round: number;
  output_hash: string;
}

export interface VerifierResultSignedFields {
  [k: string]: unknown;
  task_id: string;
  candidate_hash: string;
  verifier_id: string;
  policy_id: string;
  status: VerificationStatus;
  reason_codes: number[];
  score: number;
}

/** The fields of a candidate's signature (kind `candidate`). */
export function candidateSignedFields(req: { task_id: string; proposer_id: string; round: number }, output: unknown): CandidateSignedFields {
  const h = candidateHash(output);
  return { task_id: req.task_id, candidate_hash: h, proposer_id: req.proposer_id, round: req.round, output_hash: h };
}

/** The fields of a verifier result's signature (kind `verifier_result`). */
export function verifierResultSignedFields(
  req: { task_id: string; candidate_hash: string; verifier_id: string; policy_id: string },
  res: { status: VerificationStatus; reason_codes: readonly number[]; score?: number },
): VerifierResultSignedFields {
  return {
    task_id: req.task_id,
    candidate_hash: req.candidate_hash,
    verifier_id: req.verifier_id,
    policy_id: req.policy_id,
    status: res.status,
    reason_codes: [...res.reason_codes],
    score: res.score ?? 1,
  };
}
