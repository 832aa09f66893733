/**
 * Exactly which fields each signed record's signature covers, so that a proposer, a verifier, a voter
 * and the kernel that checks them sign and verify the same bytes (crypto.ts `signedPayload` then adds
 * the kind). A candidate's output is covered through its `candidate_hash` (the sha256 of the output's
 * canonical JSON), so a signature can be checked from an event that only carries `output_ref`.
 *
 *   candidate        task_id, round, proposer_id, candidate_hash, evidence, cost_usd
 *   verifier_result  task_id, candidate_hash, verifier_id, policy_id, status, reason_codes, score, evidence, cost_usd
 *   vote_commit      task_id, round, voter_id, commitment
 *   vote_reveal      task_id, round, voter_id, candidate_hash, vote, salt
 *   decision         task_id, round, candidate_hash, tally, quorum
 *
 * @example
 *   const fields = candidateSignedFields({ task_id: 't', round: 1, proposer_id: 'p', candidate_hash: h, evidence: [], cost_usd: 0 });
 *   const signature = signRecord(privateKey, 'candidate', fields);
 */
import type { SignedKind } from './crypto.js';
import { signRecord, verifyRecord } from './crypto.js';
import type { Candidate, Decision, VerifierResult, VoteCommit, VoteReveal } from './types.js';

export type CandidateSigned = Pick<Candidate, 'task_id' | 'round' | 'proposer_id' | 'candidate_hash' | 'evidence' | 'cost_usd'>;
export type VerifierResultSigned = Pick<VerifierResult, 'task_id' | 'candidate_hash' | 'verifier_id' | 'policy_id' | 'status' | 'reason_codes' | 'score' | 'evidence' | 'cost_usd'>;
export type VoteCommitSigned = Pick<VoteCommit, 'task_id' | 'round' | 'voter_id' | 'commitment'>;
export type VoteRevealSigned = Pick<VoteReveal, 'task_id' | 'round' | 'voter_id' | 'candidate_hash' | 'vote' | 'salt'>;
export type DecisionSigned = Pick<Decision, 'task_id' | 'round' | 'candidate_hash' | 'tally' | 'quorum'>;

/** The fields a candidate's signature covers. */
export function candidateSignedFields(c: CandidateSigned): Record<string, unknown> {
  return { task_id: c.task_id, round: c.round, proposer_id: c.proposer_id, candidate_hash: c.candidate_hash, evidence: c.evidence, cost_usd: c.cost_usd };
}

/** The fields a verifier result's signature covers. */
export function verifierResultSignedFields(r: VerifierResultSigned): Record<string, unknown> {
  return {
    task_id: r.task_id,
    candidate_hash: r.candidate_hash,
    verifier_id: r.verifier_id,
    policy_id: r.policy_id,
    status: r.status,
    reason_codes: r.reason_codes,
    score: r.score,
    evidence: r.evidence,
    cost_usd: r.cost_usd,
  };
}

/** The fields a vote commitment's signature covers. */
export function voteCommitSignedFields(c: VoteCommitSigned): Record<string, unknown> {
  return { task_id: c.task_id, round: c.round, voter_id: c.voter_id, commitment: c.commitment };
}

/** The fields a vote reveal's signature covers. */
export function voteRevealSignedFields(r: VoteRevealSigned): Record<string, unknown> {
  return { task_id: r.task_id, round: r.round, voter_id: r.voter_id, candidate_hash: r.candidate_hash, vote: r.vote, salt: r.salt };
}

/** The fields a decision's signature covers (when the kernel signs one). */
export function decisionSignedFields(d: DecisionSigned): Record<string, unknown> {
  return { task_id: d.task_id, round: d.round, candidate_hash: d.candidate_hash, tally: d.tally, quorum: d.quorum };
}

/** The record kinds members sign, with the field naming the signer. */
export const SIGNER_FIELD = {
  candidate: 'proposer_id',
  verifier_result: 'verifier_id',
  vote_commit: 'voter_id',
  vote_reveal: 'voter_id',
} as const satisfies Partial<Record<SignedKind, string>>;
export type MemberSignedKind = keyof typeof SIGNER_FIELD;

/** The fields of `record` that `kind`'s signature covers (the record may carry more, e.g. a candidate's output). */
export function signedFieldsOf(kind: SignedKind, record: Record<string, unknown>): Record<string, unknown> {
  switch (kind) {
    case 'candidate':
      return candidateSignedFields(record as unknown as CandidateSigned);
    case 'verifier_result':
      return verifierResultSignedFields(record as unknown as VerifierResultSigned);
    case 'vote_commit':
      return voteCommitSignedFields(record as unknown as VoteCommitSigned);
    case 'vote_reveal':
      return voteRevealSignedFields(record as unknown as VoteRevealSigned);
    case 'decision':
      return decisionSignedFields(record as unknown as DecisionSigned);
  }
}

/** Sign a record of `kind` with a PKCS#8 PEM private key: only its covered fields are signed. */
export function signAs(privateKeyPem: string, kind: SignedKind, record: Record<string, unknown>): string {
  return signRecord(privateKeyPem, kind, signedFieldsOf(kind, record));
}

/** Whether `record.signature` is `publicKey`'s signature over the record's covered fields. */
export function verifySignedRecord(publicKey: string, kind: SignedKind, record: Record<string, unknown>): boolean {
  const signature = record['signature'];
  return verifyRecord(publicKey, kind, signedFieldsOf(kind, record), typeof signature === 'string' ? signature : null);
}
