/**
 * Votes, checked and recorded: a commitment (`VOTE_COMMIT`) and its reveal (`VOTE_REVEAL`), from a
 * kernel voter or an external one (`swarm task vote`, the API). Each refusal has its reason code and
 * is recorded as TASK_INPUT_REJECTED in the same transaction (the vote itself writes nothing).
 *
 * The rules (which vote is refused, with which reason code, in which order) are the core's
 * (core/votes.ts checkCommit, checkReveal), applied to the task's rows. One more rule is the
 * engine's own, because the task's row runs ahead of its log: a commit is refused (COMMIT_CLOSED)
 * while the row says `verifying`, so that the reveal deadline never starts during verification.
 *
 * @example
 *   const salt = newSalt();
 *   const commitment = commitmentHash(hash, 'approve', salt);
 *   const signature = signRecord(key, 'vote_commit', { task_id, round, voter_id, commitment });
 *   await acceptVote(w, task, { kind: 'commit', task_id, round, voter_id, commitment, signature }, now);
 */
import { EventType } from '../../core/events.js';
import type { ConsensusTaskRow, ConsensusVoteRow, SealedVote } from '../../store/consensus-types.js';
import { CONTRACT_DEFAULTS } from '../core/contract.js';
import { ReasonCode, reasonName } from '../core/reason-codes.js';
import { voteCommitSignedFields, voteRevealSignedFields } from '../core/signed.js';
import type { VoteCommit, VoteReveal } from '../core/types.js';
import { checkCommit, checkReveal, refuse as refusal, revealDeadline as deadlineOf, type VoteContext } from '../core/votes.js';
import type { Writer } from './deps.js';

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
  return deadlineOf({ round_opened_at: task.round_started_at, reveal_deadline_ms: task.contract.voting.reveal_deadline_ms ?? CONTRACT_DEFAULTS.reveal_deadline_ms });
}

/** The fields a vote's signature covers (core's signed.ts). */
export function commitFields(v: Pick<CommitInput, 'task_id' | 'voter_id' | 'commitment'> & { round: number }): Record<string, unknown> {
  return voteCommitSignedFields(v);
}

export function revealFields(v: Pick<RevealInput, 'task_id' | 'voter_id' | 'candidate_hash' | 'vote' | 'salt'> & { round: number }): Record<string, unknown> {
  return voteRevealSignedFields(v);
}

/**
 * The core's view of a task for its vote checks, from the task's row and its current round's votes.
 * `candidateHashes` is only read by reveals.
 */
export function voteContextOf(task: ConsensusTaskRow, votes: readonly ConsensusVoteRow[], candidateHashes: ReadonlySet<string>): VoteContext {
  const commits: VoteCommit[] = votes.map((x) => ({ task_id: x.task_id, round: x.round, voter_id: x.voter_id, commitment: x.commitment, signature: x.commit_signature }));
  const reveals: VoteReveal[] = votes
    .filter((x) => x.revealed_at !== null && x.candidate_hash !== null && x.vote !== null)
    .map((x) => ({ task_id: x.task_id, round: x.round, voter_id: x.voter_id, candidate_hash: x.candidate_hash as string, vote: x.vote as 'approve' | 'reject', salt: x.salt ?? '', signature: x.reveal_signature ?? '' }));
  return {
    status: task.status,
    round: task.round,
    members: task.members,
    candidate_hashes: candidateHashes,
    commits,
    reveals,
    round_opened_at: task.round_started_at,
    reveal_deadline_ms: task.contract.voting.reveal_deadline_ms ?? CONTRACT_DEFAULTS.reveal_deadline_ms,
  };
}

/**
 * Check a vote against the task and record it, or record its refusal. `sealed` keeps a kernel
 * voter's own vote with its commitment, for its reveal (after a crash too); `costUsd` is what a
 * kernel voter's judge cost, charged to the finalize bucket with its commit (taken or refused).
 */
export async function acceptVote(w: Writer, task: ConsensusTaskRow, v: VoteInput, now: number, sealed?: SealedVote, costUsd = 0): Promise<VoteOutcome> {
  const round = v.round ?? task.round;
  const votes = await w.c.votes(task.task_id, task.round);
  const signature = v.signature ?? '';
  let verdict;
  if (v.kind === 'commit') {
    verdict = checkCommit(voteContextOf(task, votes, new Set()), { task_id: task.task_id, round, voter_id: v.voter_id, commitment: v.commitment, signature }, now);
    if (verdict.ok && task.status === 'verifying') verdict = refusal(ReasonCode.COMMIT_CLOSED, 'voting has not opened (the task is verifying)');
  } else {
    const known = new Set((await w.c.candidates(task.task_id)).map((c) => c.candidate_hash));
    verdict = checkReveal(voteContextOf(task, votes, known), { task_id: task.task_id, round, voter_id: v.voter_id, candidate_hash: v.candidate_hash, vote: v.vote, salt: v.salt, signature }, now);
  }
  // A judge's cost was spent whether or not its commit is taken.
  const cost = v.kind === 'commit' && Number.isFinite(costUsd) && costUsd > 0 ? costUsd : 0;
  if (cost > 0) await w.c.addCost(task.task_id, 'finalize', cost);
  if (!verdict.ok) {
    await w.emit(EventType.TASK_INPUT_REJECTED, { task_id: task.task_id, record_kind: v.kind === 'commit' ? 'vote_commit' : 'vote_reveal', member_id: v.voter_id, round, reason_code: verdict.code, reason: reasonName(verdict.code), detail: verdict.message, ...(v.kind === 'reveal' && v.candidate_hash ? { candidate_hash: v.candidate_hash } : {}), ...(cost > 0 ? { cost_usd: cost } : {}) });
    return { accepted: false, round, reason_code: verdict.code, reason: verdict.message };
  }
  if (v.kind === 'commit') {
    const ev = await w.emit(EventType.VOTE_COMMIT, { task_id: task.task_id, round, voter_id: v.voter_id, commitment: v.commitment, signature, ...(cost > 0 ? { cost_usd: cost } : {}) });
    await w.c.queueCommit({ task_id: task.task_id, round, voter_id: v.voter_id, commitment: v.commitment, commit_signature: signature, committed_at: now }, sealed);
    if (task.round_started_at === null) {
      await w.c.updateTask(task.task_id, { round_started_at: now });
      task.round_started_at = now;
    }
    return { accepted: true, round, event_seq: ev.seq };
  }
  const ev = await w.emit(EventType.VOTE_REVEAL, { task_id: task.task_id, round, voter_id: v.voter_id, candidate_hash: v.candidate_hash, vote: v.vote, salt: v.salt, signature });
  await w.c.queueReveal({ task_id: task.task_id, round, voter_id: v.voter_id, candidate_hash: v.candidate_hash, vote: v.vote, salt: v.salt, reveal_signature: signature, revealed_at: now, reveal_event_seq: ev.seq, reveal_event_hash: ev.hash });
  return { accepted: true, round, event_seq: ev.seq };
}
