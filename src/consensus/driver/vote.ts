/**
 * The vote stage of a round: kernel voters commit (`best_verified`, or an `agent` judge), external
 * voters commit and reveal through the API or the CLI; kernel voters reveal once every voter has
 * committed or half the reveal window has passed. The tally decides (core/votes.ts decide); at
 * the deadline too few reveals schedule a new round (TASK_RETRY_SCHEDULED) until `max_rounds`, then
 * the task fails. A decision is committed once (one row per task) with its proof: the winner's
 * CANDIDATE_PROPOSED and the approving VOTE_REVEALs, by seq and hash.
 *
 * @example
 *   await vote(deps, ctx, task); // the task is `committed`, in a new round, failed or expired
 */
import { StepError, errorMessage } from '../../core/errors.js';
import { EventType } from '../../core/events.js';
import type { ConsensusResultRow, ConsensusTaskRow, ConsensusVoteRow, SealedVote } from '../../store/consensus-types.js';
import { CONTRACT_DEFAULTS } from '../core/contract.js';
import { commitmentHash, newSalt, signRecord } from '../core/crypto.js';
import { ReasonCode, reasonName } from '../core/reason-codes.js';
import { gateStage } from '../core/stage-budget.js';
import type { VoterSpec } from '../core/types.js';
import { decide, tally as tallyReveals } from '../core/votes.js';
import { checkAborted, crashPoint, transition, type ConsensusDeps, type DriverCtx, type StageEnd, type Writer } from './deps.js';
import { failTask } from './driver.js';
import { isLlm, judgeMessage, llmInputs, llmRun, memberSession, pickOf, quoted, sessionSpend } from './llm.js';
import { outputForEvent, proposerSlots, quorumOf, voterSlots } from './rules.js';
import { acceptVote, commitFields, revealDeadline, revealFields } from './votes.js';
import { standingOf } from './verify.js';

/** A verified candidate as kernel voters rank it: its mean passing score, how many proposers gave it, and the contract position of the first of them. */
export interface RankedCandidate {
  candidate_hash: string;
  score: number;
  support: number;
  first: number;
}

/**
 * Verified candidates, best first: passed by some verifier and failed by none, by mean score, then by
 * support (the number of proposer members that gave that answer: agreement between proposals counts),
 * then by the contract's order of proposers (the first listed proposer that gave it) — the contract
 * author's stated preference when the evidence is level. Never by hash or arrival: those would let an
 * accident of encoding or timing pick between answers the evidence does not separate. `standing`
 * comes from standingOf (verify.ts); without it every candidate has support 1 and position 0, and
 * the hash only keeps the listing stable.
 */
export function rankVerified(results: readonly ConsensusResultRow[], standing?: ReadonlyMap<string, { support: number; first: number }>): RankedCandidate[] {
  const by = new Map<string, ConsensusResultRow[]>();
  for (const r of results) by.set(r.candidate_hash, [...(by.get(r.candidate_hash) ?? []), r]);
  const out: RankedCandidate[] = [];
  for (const [h, rs] of by) {
    if (rs.some((r) => r.status === 'failed') || !rs.some((r) => r.status === 'passed')) continue;
    const passed = rs.filter((r) => r.status === 'passed');
    const st = standing?.get(h);
    out.push({ candidate_hash: h, score: passed.reduce((s, r) => s + r.score, 0) / passed.length, support: st?.support ?? 1, first: st?.first ?? 0 });
  }
  return out.sort((a, b) => b.score - a.score || b.support - a.support || a.first - b.first || a.candidate_hash.localeCompare(b.candidate_hash));
}

export async function vote(deps: ConsensusDeps, ctx: DriverCtx, start: ConsensusTaskRow): Promise<StageEnd | undefined> {
  const contract = start.contract;
  const voters = voterSlots(contract);
  const kernel = voters.filter((v) => !v.external);
  const round = start.round;
  const claim = { task_id: start.task_id, stage: 'vote', round, attempt: ctx.step.attempt, worker_id: ctx.workerId };
  // Without judge agents (which run as the step's work) the claim is recorded with the kernel voters' commits.
  const judges = kernel.some((v) => v.strategy === 'agent' && v.agent);
  if (judges) await transition(deps, ctx, (w) => w.emit(EventType.TASK_CLAIMED, claim));
  const [results, proposals] = await Promise.all([deps.store.getConsensusResults(start.task_id), deps.store.getConsensusCandidates(start.task_id)]);
  const ranked = rankVerified(results, standingOf(proposals, proposerSlots(contract).map((p) => p.id)));
  if (ranked.length === 0 && kernel.length === voters.length) {
    if (!judges) await transition(deps, ctx, (w) => w.emit(EventType.TASK_CLAIMED, claim));
    await failTask(deps, ctx, start.task_id, ReasonCode.NO_VERIFIED_CANDIDATE, 'no candidate passed verification');
    return undefined;
  }
  // Kernel voters commit (those that have not in this round).
  const committed = new Set((await deps.store.getConsensusVotes(start.task_id, round)).map((v) => v.voter_id));
  // Their choices are made at once, and their commits recorded in one transition (each its own VOTE_COMMIT).
  checkAborted(ctx.signal);
  const pending = kernel.filter((v) => !committed.has(v.id));
  // The finalize bucket (vote and finalize spend from it) gates the judges: once it is spent, a judge
  // is not asked and its voter votes for the best verified candidate, which costs nothing.
  let stopped: Record<string, unknown> | undefined;
  if (contract.budget?.finalize !== undefined && pending.some((v) => v.strategy === 'agent' && v.agent)) {
    const gate = gateStage(contract.budget, await deps.store.getConsensusCosts(start.task_id), 'vote');
    if (!gate.ok) stopped = { task_id: start.task_id, stage: 'vote', bucket: gate.bucket, reason_code: gate.code, reason: reasonName(gate.code), detail: gate.reason, round, spent_usd: gate.spent_usd, budget_usd: gate.budget_usd };
  }
  const choices = await Promise.all(pending.map(async (v) => ({ v, choice: await choose(deps, ctx, start, stopped ? { ...v, strategy: 'best_verified' } : v, ranked) })));
  // Kernel voters with nothing to vote for (no verified candidate yet: external voters may still decide) abstain this round.
  const abstained = new Set(choices.filter((c) => !c.choice?.candidate_hash).map((c) => c.v.id));
  const notes = choices.flatMap((c) => (c.choice?.note ? [c.choice.note] : []));
  const commits: Array<{ voter_id: string; commitment: string; signature: string; sealed: SealedVote; cost_usd: number }> = [];
  for (const { v, choice: picked } of choices) {
    const choice = picked?.candidate_hash;
    if (!picked || !choice) continue;
    const key = await deps.kernelKey(`consensus:${v.id}`);
    const sealed: SealedVote = { candidate_hash: choice, vote: 'approve', salt: newSalt() };
    const commitment = commitmentHash(sealed.candidate_hash, sealed.vote, sealed.salt);
    commits.push({ voter_id: v.id, commitment, sealed, cost_usd: picked.cost_usd, signature: signRecord(key.privateKey, 'vote_commit', commitFields({ task_id: start.task_id, round, voter_id: v.id, commitment })) });
  }
  checkAborted(ctx.signal);
  // The round as the commits left it (the task's row, its votes, the clock): the first look at it needs no reads.
  let seen: { task: ConsensusTaskRow; votes: ConsensusVoteRow[]; now: number } | undefined;
  if (commits.length > 0 || notes.length > 0 || !judges) {
    seen = await transition(deps, ctx, async (w) => {
      if (!judges) await w.emit(EventType.TASK_CLAIMED, claim);
      // Why a judge's pick was not used (its agent is gone, failed, or picked no verified candidate).
      for (const n of notes) await recordNote(w, start.task_id, n);
      const t = await w.c.getTask(start.task_id);
      if (!t || t.status !== 'voting' || t.round !== round) return undefined;
      if (stopped) await w.emit(EventType.TASK_STAGE_STOPPED, stopped);
      for (const c of commits) await acceptVote(w, t, { kind: 'commit', task_id: start.task_id, round, voter_id: c.voter_id, commitment: c.commitment, signature: c.signature }, w.tx.now, c.sealed, c.cost_usd);
      const after = await w.c.getTask(start.task_id);
      return after ? { task: after, votes: await w.c.votes(start.task_id, round), now: w.tx.now } : undefined;
    }, { votes_round: round });
  }
  crashPoint(deps, 'consensus-after-vote-commit', ctx.step.step_id);
  const quorum = quorumOf(contract);
  const window = contract.voting.reveal_deadline_ms ?? CONTRACT_DEFAULTS.reveal_deadline_ms;
  // One abort listener for the whole wait, not one per poll (they would pile up on the signal until the round ends).
  const aborted = new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r(), { once: true }));
  for (;;) {
    checkAborted(ctx.signal);
    const task = seen ? seen.task : await deps.store.getConsensusTask(start.task_id);
    if (!task || task.status !== 'voting' || task.round !== round) return undefined;
    const now = seen ? seen.now : await deps.store.now();
    if (now >= task.expires_at) return undefined; // the driver expires it
    let votes = seen ? seen.votes : await deps.store.getConsensusVotes(task.task_id, round);
    seen = undefined;
    const deadline = revealDeadline(task);
    const allCommitted = voters.every((v) => abstained.has(v.id) || votes.some((x) => x.voter_id === v.id));
    const passed = deadline !== null && now > deadline;
    // Where the round stands with these votes: the tally, and whether it decides.
    const judge = (vs: readonly ConsensusVoteRow[]) => {
      const tally = tallyOf(vs);
      const revealedOrClosed = vs.filter((x) => x.revealed_at !== null).length;
      // Voters who may still add an approval: committed and not revealed, and (while commits are open) those yet to commit.
      const commitsOpen = revealedOrClosed === 0 && (deadline === null || now <= deadline);
      const outstanding = vs.filter((x) => x.revealed_at === null).length + (commitsOpen ? Math.max(0, voters.length - abstained.size - vs.length) : 0);
      // Past the deadline nobody may still reveal.
      return { tally, revealedOrClosed, commitsOpen, outstanding, d: decide(tally, quorum, passed ? 0 : outstanding) };
    };
    if (allCommitted || (task.round_started_at !== null && now >= task.round_started_at + window / 2)) {
      // The reveals, and the decision when they make one, in one transition.
      const r = await revealKernel(deps, ctx, task, kernel, votes, async (w, t, after) => {
        const j = judge(after);
        if (!j.d.decided) return false;
        await writeDecision(w, t, j.d.candidate_hash, j.tally, quorum);
        return true;
      });
      if (r.decided) {
        crashPoint(deps, 'consensus-after-decision-commit', ctx.step.step_id);
        return r.end;
      }
      votes = r.votes;
    }
    const { tally, revealedOrClosed, commitsOpen, outstanding, d } = judge(votes);
    if (d.decided) return commitDecision(deps, ctx, task, d.candidate_hash, tally, quorum);
    if (passed || (outstanding === 0 && !commitsOpen)) {
      await retryOrFail(deps, ctx, task, revealedOrClosed, quorum, d.code === ReasonCode.TIE);
      return undefined;
    }
    await deps.store.waitForChange(Math.min(deps.pollMs ?? 200, Math.max(1, (deadline ?? task.expires_at) - now + 1)), aborted);
  }
}

/** A judge's note (TASK_INPUT_REJECTED), with its cost when the voter abstained (no commit carries it). */
async function recordNote(w: Writer, taskId: string, note: Record<string, unknown>): Promise<void> {
  const cost = typeof note['cost_usd'] === 'number' ? note['cost_usd'] : 0;
  if (cost > 0) await w.c.addCost(taskId, 'finalize', cost);
  await w.emit(EventType.TASK_INPUT_REJECTED, note);
}

/** The round's tally (core's): approvals per candidate hash among the revealed votes. */
function tallyOf(votes: readonly ConsensusVoteRow[]): Record<string, number> {
  return tallyReveals(votes.flatMap((v) => (v.revealed_at !== null && v.candidate_hash && v.vote ? [{ candidate_hash: v.candidate_hash, vote: v.vote }] : [])));
}

/** A kernel voter's choice: the candidate it approves (none: it abstains), the judge's cost, and why a judge's pick was not used. */
interface Choice {
  candidate_hash?: string;
  cost_usd: number;
  /** TASK_INPUT_REJECTED data saying why the judge's pick was not used. */
  note?: Record<string, unknown>;
}

/**
 * What a kernel voter approves: the best verified candidate (rankVerified), or its judge agent's pick
 * among the verified ones, with what the judge cost (charged to the finalize bucket): a code agent's
 * numeric `cost_usd` output, an llm agent's `usage.cost_usd` (or, when its conversation failed, what
 * its session recorded). A code judge gets `task_id`, `task_type`, `inputs`, `candidates` and
 * `results`, and answers `candidate_hash`; an llm judge gets the same (those its declared inputs take)
 * and a `message` rendering them, in a session of its own per vote round, and its answer (`content`:
 * its structured output, or JSON text) names `candidate_hash`. A judge that is not registered, fails
 * or picks no verified candidate is not used; the note says why (with the llm judge's session).
 */
async function choose(deps: ConsensusDeps, ctx: DriverCtx, task: ConsensusTaskRow, v: VoterSpec, ranked: readonly RankedCandidate[]): Promise<Choice> {
  const best = ranked[0];
  const fallback = (cost_usd: number, note?: Record<string, unknown>): Choice => ({ ...(best ? { candidate_hash: best.candidate_hash } : {}), cost_usd, ...(note ? { note } : {}) });
  if (v.strategy !== 'agent' || !v.agent || ranked.length === 0) return fallback(0);
  const instead = best ? `voter ${v.id} votes for the best verified candidate` : `voter ${v.id} abstains (no verified candidate)`;
  let session: string | undefined;
  const noteOf = (code: number, detail: string, cost: number): Record<string, unknown> => ({
    task_id: task.task_id,
    reason_code: code,
    reason: reasonName(code),
    record_kind: 'judge',
    member_id: v.id,
    round: task.round,
    agent: v.agent,
    detail: `${detail}; ${instead}`,
    ...(session ? { session_id: session } : {}),
    // Charged here only when the voter abstains; otherwise with its commit.
    ...(cost > 0 && !best ? { cost_usd: cost } : {}),
  });
  let cost = 0;
  const cands = await deps.store.getConsensusCandidates(task.task_id);
  const verified = new Set(ranked.map((r) => r.candidate_hash));
  let llm = false;
  try {
    const info = deps.agent ? await deps.agent(v.agent) : undefined;
    llm = isLlm(info);
    if (deps.agent && !info) return fallback(0, noteOf(ReasonCode.AGENT_UNKNOWN, `judge agent '${v.agent}' is not registered`, 0));
    const results = await deps.store.getConsensusResults(task.task_id);
    const candidates = ranked.map((r) => ({ candidate_hash: r.candidate_hash, score: r.score, support: r.support, output: cands.find((c) => c.candidate_hash === r.candidate_hash)?.output ?? null }));
    const structured = { task_id: task.task_id, task_type: task.task_type, inputs: task.contract.inputs, candidates, results };
    if (llm) session = memberSession(ctx.step, 'vote', v.id, task.round);
    const out = await deps.runAgent({
      agent: v.agent,
      inputs: llm ? llmInputs(info, structured, () => judgeMessage(task, v.id, candidates, results)) : structured,
      runId: ctx.step.run_id,
      stepId: ctx.step.step_id,
      attempt: ctx.step.attempt,
      idempotencyKey: `${task.task_id}/vote/${v.id}/${task.round}`,
      ...(session ? { session } : {}),
      workflow: ctx.workflow,
      signal: ctx.signal,
    });
    if (llm) {
      const run = llmRun(out, session as string);
      cost = run.cost_usd;
      session = run.session.id;
      const named = pickOf(run.answer);
      if (named !== undefined && verified.has(named)) return { candidate_hash: named, cost_usd: cost };
      const said = named === undefined ? `answered no candidate_hash (${quoted(run.answer)})` : `picked '${named}', which is not a verified candidate`;
      return fallback(cost, noteOf(ReasonCode.CANDIDATE_UNKNOWN, `judge agent '${v.agent}' ${said}`, cost));
    }
    const o = out as { candidate_hash?: unknown; cost_usd?: unknown } | null;
    if (typeof o?.cost_usd === 'number' && Number.isFinite(o.cost_usd) && o.cost_usd > 0) cost = o.cost_usd;
    const pick = o?.candidate_hash;
    if (typeof pick === 'string' && verified.has(pick)) return { candidate_hash: pick, cost_usd: cost };
    return fallback(cost, noteOf(ReasonCode.CANDIDATE_UNKNOWN, `judge agent '${v.agent}' picked ${typeof pick === 'string' ? `'${pick}', which is not a verified candidate` : 'no candidate_hash'}`, cost));
  } catch (e) {
    if (e instanceof StepError && e.code === 'LEASE_LOST') throw e;
    checkAborted(ctx.signal);
    // An llm judge whose conversation failed spent what its session recorded.
    if (llm && session) {
      const spent = await sessionSpend(deps.store, ctx.step.run_id, session);
      cost = spent.cost_usd;
      if (spent.session_id) session = spent.session_id;
    }
    const code = e instanceof StepError && e.code === 'AGENT_NOT_FOUND' ? ReasonCode.AGENT_UNKNOWN : e instanceof StepError && e.code === 'INPUT_INVALID' ? ReasonCode.INPUT_INVALID : ReasonCode.EXECUTOR_UNAVAILABLE;
    return fallback(cost, noteOf(code, `judge agent '${v.agent}' failed: ${errorMessage(e)}`, cost));
  }
}

/**
 * Reveal what kernel voters committed to (their sealed votes), all in one transition, each its own
 * VOTE_REVEAL; then `decided` hears the round's votes as they stand and may commit the decision in
 * the same transition. The round's votes after it, and whether the decision was committed.
 */
async function revealKernel(
  deps: ConsensusDeps,
  ctx: DriverCtx,
  task: ConsensusTaskRow,
  kernel: readonly VoterSpec[],
  votes: ConsensusVoteRow[],
  decided: (w: Writer, task: ConsensusTaskRow, votes: ConsensusVoteRow[]) => Promise<boolean>,
): Promise<{ votes: ConsensusVoteRow[]; decided: boolean; end?: StageEnd }> {
  const mine = kernel.filter((v) => votes.some((x) => x.voter_id === v.id && x.revealed_at === null));
  if (mine.length === 0) return { votes, decided: false };
  const keys = new Map<string, string>();
  for (const v of mine) keys.set(v.id, (await deps.kernelKey(`consensus:${v.id}`)).privateKey);
  return transition(
    deps,
    ctx,
    async (w) => {
      for (const v of mine) {
        const t = await w.c.getTask(task.task_id);
        const sealed = await w.c.sealed(task.task_id, task.round, v.id);
        if (!t || !sealed || t.status !== 'voting' || t.round !== task.round) continue;
        const fields = { task_id: task.task_id, round: task.round, voter_id: v.id, ...sealed };
        await acceptVote(w, t, { kind: 'reveal', ...fields, signature: signRecord(keys.get(v.id) as string, 'vote_reveal', revealFields(fields)) }, w.tx.now);
      }
      const after = await w.c.votes(task.task_id, task.round);
      const t = await w.c.getTask(task.task_id);
      if (!t || t.status !== 'voting' || t.round !== task.round || !(await decided(w, t, after))) return { votes: after, decided: false };
      const end = await w.c.getTask(task.task_id);
      return { votes: after, decided: true, ...(end ? { end: { task: end, now: w.tx.now } } : {}) };
    },
    { votes_round: task.round, candidates: true, decision: true },
  );
}

/** DECISION_COMMITTED with the proof, once per task (the decision row's key). */
async function commitDecision(deps: ConsensusDeps, ctx: DriverCtx, task: ConsensusTaskRow, winner: string, tally: Record<string, number>, quorum: number): Promise<StageEnd | undefined> {
  const end = await transition(
    deps,
    ctx,
    async (w): Promise<StageEnd | undefined> => {
      const t = await w.c.getTask(task.task_id);
      if (!t || t.status !== 'voting' || t.round !== task.round) return undefined;
      await writeDecision(w, t, winner, tally, quorum);
      const after = await w.c.getTask(task.task_id);
      return after ? { task: after, now: w.tx.now } : undefined;
    },
    { candidates: true, votes_round: task.round, decision: true },
  );
  crashPoint(deps, 'consensus-after-decision-commit', ctx.step.step_id);
  return end;
}

/**
 * The decision of the task's round in the caller's transition (the task is voting in that round):
 * its row and DECISION_COMMITTED, unless the task has one, and the move to committed.
 */
async function writeDecision(w: Writer, task: ConsensusTaskRow, winner: string, tally: Record<string, number>, quorum: number): Promise<void> {
  const cand = (await w.c.candidates(task.task_id)).find((c) => c.candidate_hash === winner);
  if (!cand) throw new StepError('CONSENSUS_CANDIDATE_MISSING', `the winning candidate ${winner} has no row`, true);
  const reveals = (await w.c.votes(task.task_id, task.round)).filter((v) => v.revealed_at !== null && v.vote === 'approve' && v.candidate_hash === winner && v.reveal_event_seq !== null);
  const proof = { candidate_event: { seq: cand.event_seq, hash: cand.event_hash }, reveal_events: reveals.map((v) => ({ seq: v.reveal_event_seq as number, hash: v.reveal_event_hash as string })) };
  // One decision per task: the row is read under the run's lock, which every writer of it holds.
  if (!(await w.c.getDecision(task.task_id))) {
    await w.c.queueDecision({ task_id: task.task_id, round: task.round, candidate_hash: winner, output: cand.output, tally, quorum, proof, committed_at: w.tx.now, finalized_at: null });
    // The decision as its row holds it (the output by reference when large), so the log alone shows what was decided.
    await w.emit(EventType.DECISION_COMMITTED, { task_id: task.task_id, round: task.round, candidate_hash: winner, ...outputForEvent(cand.output).shown, tally, quorum, proof, committed_at: w.tx.now });
  }
  await w.c.updateTask(task.task_id, { status: 'committed', stage: 'finalize' });
}

/** Too few reveals at the deadline: a new round while rounds and time are left; else the task fails. */
async function retryOrFail(deps: ConsensusDeps, ctx: DriverCtx, task: ConsensusTaskRow, reveals: number, quorum: number, tie: boolean): Promise<void> {
  const max = task.contract.voting.max_rounds ?? CONTRACT_DEFAULTS.max_rounds;
  const code = tie ? ReasonCode.TIE : ReasonCode.QUORUM_NOT_REACHED;
  if (task.round >= max) {
    await failTask(deps, ctx, task.task_id, code, `${tie ? 'a tie' : `${reveals} reveal(s), quorum ${quorum}`} after ${task.round} round(s)`);
    return;
  }
  await transition(deps, ctx, async (w) => {
    const t = await w.c.getTask(task.task_id);
    if (!t || t.status !== 'voting' || t.round !== task.round) return;
    await w.c.updateTask(task.task_id, { round: task.round + 1, round_started_at: null });
    await w.emit(EventType.TASK_RETRY_SCHEDULED, { task_id: task.task_id, round: task.round + 1, previous_round: task.round, reveals, quorum, reason_code: code, reason: tie ? 'TIE' : 'QUORUM_NOT_REACHED' });
  });
}
