/**
 * The rules of participation and of the vote, pure: whether a signed record may enter a task's state
 * (and, if not, which reason code refuses it), the tally, the decision rule and finality.
 *
 * Order of checks (the first failing one is the reason):
 *   every signed record   NOT_MEMBER, ROLE_MISMATCH, SIGNATURE_MISSING, SIGNATURE_INVALID
 *   commit                ALREADY_FINALIZED / TASK_EXPIRED, COMMIT_CLOSED (voting not open, decision
 *                         committed), ROUND_MISMATCH, COMMIT_CLOSED (reveal deadline passed), COMMIT_DUPLICATE,
 *                         COMMIT_CLOSED (reveals have begun in the round: a later commit could copy them),
 *                         REVEAL_MISMATCH (a commitment that is not a sha256 hex digest)
 *   reveal                REVEAL_LATE (the round's deadline passed and the task has failed since, e.g. for
 *                         want of reveals), ALREADY_FINALIZED / TASK_EXPIRED, REVEAL_LATE (decision committed),
 *                         ROUND_MISMATCH, REVEAL_WITHOUT_COMMIT, REVEAL_DUPLICATE, REVEAL_LATE (deadline),
 *                         REVEAL_MISMATCH, REVEAL_UNKNOWN_CANDIDATE
 * The reveal deadline is the round's first commit + `reveal_deadline_ms`; a record at exactly the
 * deadline is on time.
 *
 * The decision rule (decide): votes are `approve` reveals per candidate_hash; the candidate with the
 * most wins if it has at least `quorum` of them and no other candidate has as many. A tie at the top
 * is never broken (no candidate is preferred by its hash or its order): it is TIE, and like
 * QUORUM_NOT_REACHED it ends the round without a decision (TASK_RETRY_SCHEDULED). While reveals are
 * still pending, a winner is declared only once no pending reveal could change it.
 *
 * @example
 *   const v = checkReveal(ctx, reveal, Date.now());
 *   if (!v.ok) writeRejected(v.code, v.message);
 *   const d = decide(tally(revealsOfRound), 2);
 *   if (d.decided) commitDecision(d.candidate_hash);
 */
import { commitmentHash } from './crypto.js';
import { ReasonCode, reasonName, type ReasonCodeName } from './reason-codes.js';
import { SIGNER_FIELD, verifySignedRecord, type MemberSignedKind } from './signed.js';
import type { Member, TaskStatus, VoteCommit, VoteReveal } from './types.js';

/** A check's answer: ok, or the reason code (number and name) and a message saying why. */
export type Verdict = { ok: true } | { ok: false; code: number; name: ReasonCodeName | 'CUSTOM'; message: string; identical?: boolean };

export const OK: Verdict = { ok: true };

/** A refusal with `code`. `identical` marks a duplicate that is the very same record (a retried write). */
export function refuse(code: number, message: string, identical?: boolean): Verdict {
  return { ok: false, code, name: reasonName(code), message, ...(identical ? { identical: true } : {}) };
}

/**
 * Whether a signed record comes from a member of the task in the right role with a valid signature.
 * The signer is the record's `proposer_id` (candidate), `verifier_id` (verifier_result) or `voter_id`
 * (vote_commit, vote_reveal).
 *
 * @example
 *   checkSigned(state.members, 'voter', 'vote_commit', commit)  // { ok: true } or NOT_MEMBER, ROLE_MISMATCH, SIGNATURE_MISSING, SIGNATURE_INVALID
 */
export function checkSigned(members: readonly Member[], role: Member['role'], kind: MemberSignedKind, record: Record<string, unknown>): Verdict {
  const signerId = record[SIGNER_FIELD[kind]];
  if (typeof signerId !== 'string' || signerId === '') return refuse(ReasonCode.NOT_MEMBER, `the ${kind} names no ${SIGNER_FIELD[kind]}`);
  const same = members.filter((m) => m.id === signerId);
  if (same.length === 0) return refuse(ReasonCode.NOT_MEMBER, `'${signerId}' is not a member of the task`);
  const member = same.find((m) => m.role === role);
  if (!member) return refuse(ReasonCode.ROLE_MISMATCH, `'${signerId}' is a ${same.map((m) => m.role).join(' and ')} of the task, not a ${role}`);
  const sig = record['signature'];
  if (typeof sig !== 'string' || sig === '') return refuse(ReasonCode.SIGNATURE_MISSING, `the ${kind} of '${signerId}' is not signed`);
  if (!verifySignedRecord(member.public_key, kind, record)) return refuse(ReasonCode.SIGNATURE_INVALID, `the signature of the ${kind} does not verify with the key of '${signerId}'`);
  return OK;
}

/** What the vote checks read of a task's state (projection.ts `voteContext` makes one). */
export interface VoteContext {
  status: TaskStatus;
  /** The current vote round (1-based). */
  round: number;
  members: readonly Member[];
  /** The hashes of the task's candidates. */
  candidate_hashes: ReadonlySet<string>;
  /** Commitments accepted so far (every round). */
  commits: readonly VoteCommit[];
  /** Reveals accepted so far (every round). */
  reveals: readonly VoteReveal[];
  /** When the current round's first commitment was accepted; null before it. */
  round_opened_at: number | null;
  reveal_deadline_ms: number;
}

/** The current round's reveal deadline (epoch ms), or null while no commitment opened it. */
export function revealDeadline(ctx: Pick<VoteContext, 'round_opened_at' | 'reveal_deadline_ms'>): number | null {
  return ctx.round_opened_at === null ? null : ctx.round_opened_at + ctx.reveal_deadline_ms;
}

function finalStatus(status: TaskStatus): Verdict | undefined {
  if (status === 'finalized') return refuse(ReasonCode.ALREADY_FINALIZED, 'the task is already finalized');
  if (status === 'expired') return refuse(ReasonCode.TASK_EXPIRED, 'the task has expired');
  if (status === 'failed') return refuse(ReasonCode.TASK_EXPIRED, 'the task has failed; it takes no more records');
  return undefined;
}

/** Whether a vote commitment may be accepted at `now`. */
export function checkCommit(ctx: VoteContext, commit: VoteCommit, now: number): Verdict {
  const signed = checkSigned(ctx.members, 'voter', 'vote_commit', commit as unknown as Record<string, unknown>);
  if (!signed.ok) return signed;
  const fin = finalStatus(ctx.status);
  if (fin) return fin;
  if (ctx.status === 'committed') return refuse(ReasonCode.COMMIT_CLOSED, 'a decision is already committed; voting is closed');
  if (ctx.status !== 'verifying' && ctx.status !== 'voting') return refuse(ReasonCode.COMMIT_CLOSED, `voting has not opened (the task is ${ctx.status})`);
  if (commit.round !== ctx.round) return refuse(ReasonCode.ROUND_MISMATCH, `the commitment is for round ${commit.round}; the task is in round ${ctx.round}`);
  const deadline = revealDeadline(ctx);
  if (deadline !== null && now > deadline) return refuse(ReasonCode.COMMIT_CLOSED, `round ${ctx.round} closed at its reveal deadline (${new Date(deadline).toISOString()})`);
  const prior = ctx.commits.find((c) => c.round === commit.round && c.voter_id === commit.voter_id);
  if (prior) return refuse(ReasonCode.COMMIT_DUPLICATE, `'${commit.voter_id}' already committed in round ${commit.round}`, prior.commitment === commit.commitment);
  if (ctx.reveals.some((r) => r.round === commit.round)) return refuse(ReasonCode.COMMIT_CLOSED, `reveals have begun in round ${commit.round}`);
  if (!/^[0-9a-f]{64}$/.test(commit.commitment)) return refuse(ReasonCode.REVEAL_MISMATCH, 'a commitment is a sha256 hex digest');
  return OK;
}

/** Whether a vote reveal may be accepted at `now`. */
export function checkReveal(ctx: VoteContext, reveal: VoteReveal, now: number): Verdict {
  const signed = checkSigned(ctx.members, 'voter', 'vote_reveal', reveal as unknown as Record<string, unknown>);
  if (!signed.ok) return signed;
  const deadline = revealDeadline(ctx);
  // A reveal after its round's deadline is late even when the task has failed for want of reveals since.
  if (ctx.status === 'failed' && reveal.round === ctx.round && deadline !== null && now > deadline) {
    return refuse(ReasonCode.REVEAL_LATE, `the reveal deadline of round ${reveal.round} passed at ${new Date(deadline).toISOString()}`);
  }
  const fin = finalStatus(ctx.status);
  if (fin) return fin;
  if (ctx.status === 'committed') return refuse(ReasonCode.REVEAL_LATE, 'a decision is already committed; reveals are closed');
  if (reveal.round !== ctx.round) return refuse(ReasonCode.ROUND_MISMATCH, `the reveal is for round ${reveal.round}; the task is in round ${ctx.round}`);
  const commit = ctx.commits.find((c) => c.round === reveal.round && c.voter_id === reveal.voter_id);
  if (!commit) return refuse(ReasonCode.REVEAL_WITHOUT_COMMIT, `'${reveal.voter_id}' made no commitment in round ${reveal.round}`);
  const prior = ctx.reveals.find((r) => r.round === reveal.round && r.voter_id === reveal.voter_id);
  if (prior) {
    const same = prior.candidate_hash === reveal.candidate_hash && prior.vote === reveal.vote && prior.salt === reveal.salt;
    return refuse(ReasonCode.REVEAL_DUPLICATE, `'${reveal.voter_id}' already revealed in round ${reveal.round}`, same);
  }
  if (deadline !== null && now > deadline) return refuse(ReasonCode.REVEAL_LATE, `the reveal deadline of round ${reveal.round} passed at ${new Date(deadline).toISOString()}`);
  if (reveal.vote !== 'approve' && reveal.vote !== 'reject') return refuse(ReasonCode.REVEAL_MISMATCH, `vote ${JSON.stringify(reveal.vote)} is neither approve nor reject`);
  if (commitmentHash(reveal.candidate_hash, reveal.vote, reveal.salt) !== commit.commitment) {
    return refuse(ReasonCode.REVEAL_MISMATCH, `the reveal does not match the commitment of '${reveal.voter_id}' (hash of candidate, vote and salt differs)`);
  }
  if (!ctx.candidate_hashes.has(reveal.candidate_hash)) return refuse(ReasonCode.REVEAL_UNKNOWN_CANDIDATE, `the task has no candidate ${reveal.candidate_hash}`);
  return OK;
}

/**
 * `approve` reveals per candidate_hash (reject votes count for nothing), for the reveals given (pass
 * one round's). Candidates without an approval are left out.
 *
 * @example
 *   tally([{ candidate_hash: 'a', vote: 'approve' }, { candidate_hash: 'a', vote: 'approve' }, { candidate_hash: 'b', vote: 'reject' }])  // { a: 2 }
 */
export function tally(reveals: ReadonlyArray<Pick<VoteReveal, 'candidate_hash' | 'vote'>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of reveals) if (r.vote === 'approve') out[r.candidate_hash] = (out[r.candidate_hash] ?? 0) + 1;
  return out;
}

/** The outcome of a round: a winner, or no decision yet (`waiting`: pending reveals could still decide it). */
export type DecideOutcome =
  | { decided: true; candidate_hash: string; votes: number }
  | { decided: false; code: number; name: ReasonCodeName | 'CUSTOM'; message: string; waiting: boolean };

/**
 * Apply the decision rule to a tally (see the module comment). `pending` is how many voters of the
 * round may still reveal (0 at the deadline, or when all have revealed).
 *
 * @example
 *   decide({ a: 2, b: 1 }, 2)      // { decided: true, candidate_hash: 'a', votes: 2 }
 *   decide({ a: 1, b: 1 }, 1)      // { decided: false, name: 'TIE', … }
 *   decide({ a: 2 }, 2, 2)         // not yet: two pending reveals for another candidate would tie it
 */
export function decide(t: Readonly<Record<string, number>>, quorum: number, pending = 0): DecideOutcome {
  const ranked = Object.entries(t)
    .filter(([, n]) => n > 0)
    .sort(([ha, a], [hb, b]) => b - a || (ha < hb ? -1 : ha > hb ? 1 : 0));
  const [top, second] = ranked;
  const topVotes = top?.[1] ?? 0;
  const secondVotes = second?.[1] ?? 0;
  const no = (code: number, message: string, waiting: boolean): DecideOutcome => ({ decided: false, code, name: reasonName(code), message, waiting });
  if (top && topVotes >= quorum && secondVotes + pending < topVotes) return { decided: true, candidate_hash: top[0], votes: topVotes };
  if (pending > 0 && topVotes + pending >= quorum) return no(ReasonCode.QUORUM_NOT_REACHED, `${pending} reveal${pending === 1 ? '' : 's'} pending`, true);
  if (top && topVotes >= quorum && secondVotes === topVotes) {
    const tied = ranked.filter(([, n]) => n === topVotes).map(([h]) => h);
    return no(ReasonCode.TIE, `${tied.length} candidates tie with ${topVotes} approvals each`, pending > 0);
  }
  return no(ReasonCode.QUORUM_NOT_REACHED, `the most approvals any candidate has is ${topVotes}; ${quorum} needed`, false);
}

/**
 * Finality: whether a decision may be committed (`commit`) or finalized (`finalize`) now. At most one
 * decision per task: a second commit or finalize is ALREADY_FINALIZED.
 */
export function checkFinality(state: { status: TaskStatus; decision: { finalized_at: number | null } | null }, action: 'commit' | 'finalize'): Verdict {
  if (state.status === 'finalized' || (state.decision && state.decision.finalized_at !== null)) return refuse(ReasonCode.ALREADY_FINALIZED, 'the task already has a finalized decision');
  if (state.status === 'expired' || state.status === 'failed') return refuse(ReasonCode.TASK_EXPIRED, `the task has ${state.status}`);
  if (action === 'commit' && state.decision) return refuse(ReasonCode.ALREADY_FINALIZED, 'the task already has a committed decision');
  if (action === 'finalize' && !state.decision) return refuse(ReasonCode.QUORUM_NOT_REACHED, 'no decision is committed yet');
  return OK;
}
