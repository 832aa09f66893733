/**
 * Votes, checked and recorded: a commitment (`VOTE_COMMIT`) and its reveal (`VOTE_REVEAL`), from a
 * kernel voter or an external one (`swarm task vote`, the API). Each refusal has its reason code and
 * is recorded as TASK_INPUT_REJECTED in the same transaction (the vote itself writes nothing).
 *
 * Commits are open while the task is voting, the round's reveal deadline has not passed and nobody
 * has revealed in the round (a commit made after a reveal could copy it: COMMIT_CLOSED). The reveal
 * deadline counts from the round's first commit.
 *
 * @example
 *   const salt = newSalt();
 *   const commitment = commitmentHash(hash, 'approve', salt);
 *   const signature = signRecord(key, 'vote_commit', { task_id, round, voter_id, commitment });
 *   await acceptVote(w, task, { kind: 'commit', task_id, round, voter_id, commitment, signature }, now);
 */
import { EventType } from '../../core/events.js';
import type { ConsensusTaskRow, SealedVote } from '../../store/consensus-types.js';
import { commitmentHash, verifyRecord } from '../core/crypto.js';
import { ReasonCode, reasonName } from '../core/reason-codes.js';
import { voteCommitSignedFields, voteRevealSignedFields } from '../core/signed.js';
import type { Writer } from './deps.js';
import { DEFAULT_REVEAL_DEADLINE_MS, memberOf } from './rules.js';

export interface CommitInput {
  kind: 'commit';
  task_id: string;
  /** Default: the task's current round. */
  round?: number;
  voter_id: string;
  commitment: string;
  signature?: string | null;
}

export interface RevealInput {
  kind: 'reveal';
  task_id: string;
  round?: number;
  voter_id: string;
  candidate_hash: string;
  vote: 'approve' | 'reject';
  salt: string;
  signature?: string | null;
}

export type VoteInput = CommitInput | RevealInput;

export type VoteOutcome = { accepted: true; round: number; event_seq: number } | { accepted: false; round: number; reason_code: number; reason: string };

/** The reveal deadline of the task's current round, or null before its first commit. */
export function revealDeadline(task: ConsensusTaskRow): number | null {
  return task.round_started_at === null ? null : task.round_started_at + (task.contract.voting.reveal_deadline_ms ?? DEFAULT_REVEAL_DEADLINE_MS);
}

/** The fields a vote's signature covers (core's signed.ts). */
export function commitFields(v: Pick<CommitInput, 'task_id' | 'voter_id' | 'commitment'> & { round: number }): Record<string, unknown> {
  return voteCommitSignedFields(v);
}

export function revealFields(v: Pick<RevealInput, 'task_id' | 'voter_id' | 'candidate_hash' | 'vote' | 'salt'> & { round: number }): Record<string, unknown> {
  return voteRevealSignedFields(v);
}

/**
 * Check a vote against the task and record it, or record its refusal. `sealed` keeps a kernel
 * voter's own vote with its commitment, for its reveal (after a crash too).
 */
export async function acceptVote(w: Writer, task: ConsensusTaskRow, v: VoteInput, now: number, sealed?: SealedVote): Promise<VoteOutcome> {
  const round = v.round ?? task.round;
  const refuse = async (code: number, why: string): Promise<VoteOutcome> => {
    await w.emit(EventType.TASK_INPUT_REJECTED, { task_id: task.task_id, input: v.kind === 'commit' ? 'vote_commit' : 'vote_reveal', voter_id: v.voter_id, round, reason_code: code, reason: reasonName(code), detail: why });
    return { accepted: false, round, reason_code: code, reason: why };
  };
  const member = memberOf(task.members, 'voter', v.voter_id);
  if (!member) return refuse(ReasonCode.NOT_MEMBER, `'${v.voter_id}' is not a voter of task ${task.task_id}`);
  if (!v.signature) return refuse(ReasonCode.SIGNATURE_MISSING, 'the vote is not signed');
  const fields = v.kind === 'commit' ? commitFields({ ...v, round }) : revealFields({ ...v, round });
  if (!verifyRecord(member.public_key, v.kind === 'commit' ? 'vote_commit' : 'vote_reveal', fields, v.signature)) {
    return refuse(ReasonCode.SIGNATURE_INVALID, `the signature is not ${v.voter_id}'s (its public key is fixed in the task's membership)`);
  }
  if (task.status === 'finalized' || task.status === 'committed') return refuse(ReasonCode.ALREADY_FINALIZED, 'the task is decided');
  if (task.status === 'expired') return refuse(ReasonCode.TASK_EXPIRED, 'the task expired');
  if (round !== task.round) return refuse(ReasonCode.ROUND_MISMATCH, `the task is in vote round ${task.round}, not ${round}`);
  // A reveal after its round's deadline is late even when the task has failed for want of reveals since.
  const deadline = revealDeadline(task);
  const votes = await w.c.votes(task.task_id, round);
  const mine = votes.find((x) => x.voter_id === v.voter_id);
  if (v.kind === 'commit') {
    if (task.status !== 'voting') return refuse(ReasonCode.COMMIT_CLOSED, `the task is ${task.status}; commits are taken while it is voting`);
    if (mine) return refuse(ReasonCode.COMMIT_DUPLICATE, `${v.voter_id} has committed in round ${round} already`);
    if (deadline !== null && now > deadline) return refuse(ReasonCode.COMMIT_CLOSED, 'the round’s reveal deadline has passed');
    if (votes.some((x) => x.revealed_at !== null)) return refuse(ReasonCode.COMMIT_CLOSED, 'reveals have begun in this round');
    if (!/^[0-9a-f]{64}$/.test(v.commitment)) return refuse(ReasonCode.REVEAL_MISMATCH, 'a commitment is a sha256 hex digest');
    const ev = await w.emit(EventType.VOTE_COMMIT, { task_id: task.task_id, round, voter_id: v.voter_id, commitment: v.commitment, signature: v.signature });
    await w.c.insertCommit({ task_id: task.task_id, round, voter_id: v.voter_id, commitment: v.commitment, commit_signature: v.signature, committed_at: now }, sealed);
    if (task.round_started_at === null) {
      await w.c.updateTask(task.task_id, { round_started_at: now });
      task.round_started_at = now;
    }
    return { accepted: true, round, event_seq: ev.seq };
  }
  if (deadline !== null && now > deadline) return refuse(ReasonCode.REVEAL_LATE, `the reveal deadline passed at ${new Date(deadline).toISOString()}`);
  if (task.status !== 'voting') return refuse(ReasonCode.COMMIT_CLOSED, `the task is ${task.status}; reveals are taken while it is voting`);
  if (!mine) return refuse(ReasonCode.REVEAL_WITHOUT_COMMIT, `${v.voter_id} has no commitment in round ${round}`);
  if (mine.revealed_at !== null) return refuse(ReasonCode.REVEAL_DUPLICATE, `${v.voter_id} has revealed in round ${round} already`);
  if (commitmentHash(v.candidate_hash, v.vote, v.salt) !== mine.commitment) return refuse(ReasonCode.REVEAL_MISMATCH, 'the reveal does not match the commitment');
  const known = (await w.c.candidates(task.task_id)).some((c) => c.candidate_hash === v.candidate_hash);
  if (!known) return refuse(ReasonCode.REVEAL_UNKNOWN_CANDIDATE, `no candidate ${v.candidate_hash.slice(0, 12)}… was proposed for the task`);
  const ev = await w.emit(EventType.VOTE_REVEAL, { task_id: task.task_id, round, voter_id: v.voter_id, candidate_hash: v.candidate_hash, vote: v.vote, salt: v.salt, signature: v.signature });
  await w.c.reveal({ task_id: task.task_id, round, voter_id: v.voter_id, candidate_hash: v.candidate_hash, vote: v.vote, salt: v.salt, reveal_signature: v.signature, revealed_at: now, reveal_event_seq: ev.seq, reveal_event_hash: ev.hash });
  return { accepted: true, round, event_seq: ev.seq };
}
