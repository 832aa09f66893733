/**
 * The propose stage: proposers in parallel, round after round (explore.*), each candidate checked
 * against its proposer's key and recorded with CANDIDATE_PROPOSED (and EVIDENCE_ADDED for its
 * evidence), its cost charged to the `explore` bucket. Each answer is recorded as it comes, those that
 * come together in one transition (recordRound: the first with the stage's claim, the last with
 * TASK_STAGE_STOPPED and the move to verifying). A proposer's candidate of a round that is recorded
 * is never asked for again, so a crash mid-round re-asks only the proposers that had not answered.
 *
 * @example
 *   await propose(deps, ctx, task); // the task is `verifying` afterwards (or failed: no candidates)
 */
import { StepError, errorMessage } from '../../core/errors.js';
import { EventType } from '../../core/events.js';
import type { SeedBundle } from '../../executors/http/contract.js';
import type { ConsensusTaskRow } from '../../store/consensus-types.js';
import { candidateHash, signRecord } from '../core/crypto.js';
import { admitCandidate, exploreDecision, newHashesPerRound } from '../core/explore.js';
import { ReasonCode, reasonName } from '../core/reason-codes.js';
import { candidateSignedFields } from '../core/signed.js';
import { gateStage } from '../core/stage-budget.js';
import type { EvidenceRef } from '../core/types.js';
import { checkSigned } from '../core/votes.js';
import { declaredFields, validateAgainst } from '../../core/io-schema.js';
import { checkAborted, transition, type AgentInfo, type ConsensusDeps, type DriverCtx, type StageEnd, type Writer } from './deps.js';
import { failTask } from './driver.js';
import { isLlm, llmInputs, llmRun, memberSession, proposerMessage, sessionSpend, type LlmSession } from './llm.js';
import { outputForEvent, proposerSlots, type ProposerSlot } from './rules.js';
import { withTraceHeaders } from '../../observability/tracing.js';

interface Proposal {
  output: unknown;
  evidence: EvidenceRef[];
  cost_usd: number;
  signature: string | null;
  /** Why the proposal is not a candidate though it was made (an agent's outputs that do not match its declared outputs). */
  invalid?: { code: number; detail: string };
  /** An llm agent's conversation (session, usage), recorded beside the candidate, never in it. */
  session?: LlmSession;
}


export async function propose(deps: ConsensusDeps, ctx: DriverCtx, task: ConsensusTaskRow): Promise<StageEnd | undefined> {
  const contract = task.contract;
  // A knowledge hit is looked up once, before the first round (its events travel with the claim).
  let seed: SeedBundle | undefined;
  let lookupEvents: Array<{ type: EventType; data: Record<string, unknown> }> = [];
  if (task.explore_round === 0 && deps.knowledge && contract.knowledge?.lookup !== 'off') {
    try {
      const hit = await deps.knowledge.lookup(contract, task.task_id);
      seed = hit.seed_bundle;
      lookupEvents = hit.events;
    } catch (e) {
      deps.log?.(`consensus task ${task.task_id}: knowledge lookup failed: ${errorMessage(e)}`);
    }
  }
  const slots = proposerSlots(contract);
  const agents = await proposerAgents(deps, task, slots);
  if (!agents.ok) {
    await failTask(deps, ctx, task.task_id, agents.code, agents.reason);
    return undefined;
  }
  let round = Math.max(1, task.explore_round);
  // The claim (with the lookup's events and the first round's number) is recorded with the first
  // round's first answers (recordRound).
  let claim: ((w: Writer) => Promise<void>) | undefined = async (w) => {
    await w.c.updateTask(task.task_id, { status: 'proposing', stage: 'propose', ...(round > task.explore_round ? { explore_round: round } : {}) });
    await w.emit(EventType.TASK_CLAIMED, { task_id: task.task_id, stage: 'propose', attempt: ctx.step.attempt, worker_id: ctx.workerId });
    for (const e of lookupEvents) await w.emit(e.type, { task_id: task.task_id, ...e.data });
  };
  let recorded = round;
  // Why proposing stopped (TASK_STAGE_STOPPED), recorded with the move to verifying: the budget, topk,
  // no new evidence, or explore.max_rounds run out (reason code OK).
  for (;;) {
    checkAborted(ctx.signal);
    if (round > recorded) {
      await transition(deps, ctx, (w) => w.c.updateTask(task.task_id, { explore_round: round }));
      recorded = round;
    }
    const gate = gateStage(contract.budget, contract.budget?.explore === undefined ? NOTHING_SPENT : await deps.store.getConsensusCosts(task.task_id), 'propose');
    if (!gate.ok) {
      const stopped = { task_id: task.task_id, stage: 'propose', bucket: gate.bucket, reason_code: gate.code, reason: reasonName(gate.code), detail: gate.reason, round, spent_usd: gate.spent_usd, budget_usd: gate.budget_usd };
      const pending = claim;
      claim = undefined;
      const out = await transition(deps, ctx, async (w) => {
        if (pending) await pending(w);
        const all = await w.c.candidates(task.task_id);
        await stopProposing(w, task, stopped, all.length);
        return { all, task: await w.c.getTask(task.task_id), now: w.tx.now };
      }, { candidates: true });
      return ended(deps, ctx, task, out);
    }
    const have = await deps.store.getConsensusCandidates(task.task_id);
    const missing = slots.filter((s) => !have.some((c) => c.proposer_id === s.id && c.round === round));
    const thisRound = round;
    const out = await recordRound(deps, ctx, task, missing.length, claim, {
      record: (w, a) => recordProposal(w, task, thisRound, a),
      end: async (w) => {
        const all = await w.c.candidates(task.task_id);
        const next = exploreDecision(contract.explore, { rounds: newHashesPerRound(all, thisRound) });
        if (next.stop) await stopProposing(w, task, { task_id: task.task_id, stage: 'propose', reason_code: next.code, reason: reasonName(next.code), detail: next.reason, round: thisRound }, all.length);
        return { all, next, task: await w.c.getTask(task.task_id), now: w.tx.now };
      },
      ask: (record) => Promise.all(missing.map(async (s) => record(await proposeOne(deps, ctx, task, s, thisRound, seed, s.agent ? agents.info.get(s.agent) : undefined)))),
    });
    claim = undefined;
    if (out.next.stop) return ended(deps, ctx, task, out);
    round = out.next.next_round;
  }
}

/**
 * One round's transitions. Each answer is recorded as it comes, so a crash never loses an answer
 * already given (the proposer is not asked again); answers that come while a transition is being
 * written, or within ROUND_WINDOW_MS of the first, go together. The transition with the last answer
 * (or the only one, when every answer was recorded before) also ends the round (`end`); the first
 * carries `head` (the stage's claim). Proposers that answer within a few milliseconds of each other
 * share one transition, not one each.
 */
async function recordRound<T>(
  deps: ConsensusDeps,
  ctx: DriverCtx,
  task: ConsensusTaskRow,
  total: number,
  head: ((w: Writer) => Promise<void>) | undefined,
  round: { record: (w: Writer, a: Answer) => Promise<void>; end: (w: Writer) => Promise<T>; ask: (record: (a: Answer) => Promise<void>) => Promise<unknown> },
): Promise<T> {
  const queue: Answer[] = [];
  let written = 0;
  let ended: { value: T } | undefined;
  let pumping: Promise<void> | undefined;
  const write = async (batch: Answer[]): Promise<void> => {
    const last = written + batch.length === total;
    const first = head;
    const r = await transition(deps, ctx, async (w) => {
      if (first) await first(w);
      for (const a of batch) await round.record(w, a);
      return last ? { value: await round.end(w) } : undefined;
    }, { candidates: true });
    head = undefined;
    written += batch.length;
    if (r) ended = r;
  };
  // One writer at a time; it stops (synchronously) when it finds the queue empty.
  const pump = async (): Promise<void> => {
    try {
      while (queue.length > 0) await write(queue.splice(0));
    } finally {
      pumping = undefined;
    }
  };
  // An answer waits at most ROUND_WINDOW_MS for others to share its transaction (none once every
  // answer is in); while a transaction is being written, the next waits for it anyway.
  let window: { written: Promise<void>; now: () => void } | undefined;
  const record = (a: Answer): Promise<void> => {
    checkAborted(ctx.signal);
    queue.push(a);
    if (pumping) return pumping;
    if (!window) {
      let now!: () => void;
      const timer = new Promise<void>((resolve) => (now = resolve));
      const t = setTimeout(now, ROUND_WINDOW_MS);
      window = {
        now,
        written: timer.then(() => {
          clearTimeout(t);
          window = undefined;
          pumping ??= pump();
          return pumping;
        }),
      };
    }
    if (written + queue.length === total) window.now();
    return window.written;
  };
  await round.ask(record);
  if (!ended) await write([]);
  return (ended as { value: T }).value;
}

const NOTHING_SPENT = { explore: 0, verify: 0, finalize: 0 };

/** How long a proposer's answer waits for the round's other answers to share its transaction. */
const ROUND_WINDOW_MS = 5;

/** Proposing stopped: on to verifying, or the task fails without a candidate. */
async function ended(deps: ConsensusDeps, ctx: DriverCtx, task: ConsensusTaskRow, out: { all: readonly unknown[]; task: ConsensusTaskRow | undefined; now: number }): Promise<StageEnd | undefined> {
  if (out.all.length > 0) return out.task ? { task: out.task, now: out.now } : undefined;
  await failTask(deps, ctx, task.task_id, ReasonCode.NO_CANDIDATES, 'no proposer brought a candidate');
  return undefined;
}

/** TASK_STAGE_STOPPED, and the move to verifying when there is a candidate to verify (else the task fails next). */
async function stopProposing(w: Writer, task: ConsensusTaskRow, event: Record<string, unknown>, candidates: number): Promise<void> {
  await w.emit(EventType.TASK_STAGE_STOPPED, event);
  if (candidates > 0) await w.c.updateTask(task.task_id, { status: 'verifying', stage: 'verify' });
}

/** A proposer's answer of a round, checked (its hash, and why its signature is refused), or why it could not answer. */
type Answer = { slot: ProposerSlot; p: Proposal; hash: string; refused: number | undefined; detail?: string } | { slot: ProposerSlot; error: string; cost_usd: number; session_id?: string };

/**
 * The registered agent of every agent proposer, checked before anyone is asked: each must be
 * registered (AGENT_UNKNOWN) and take the task's inputs (INPUT_INVALID), as a workflow step's agent
 * must. Every sample gets the same inputs, so a mismatch fails the task rather than each proposal.
 */
async function proposerAgents(deps: ConsensusDeps, task: ConsensusTaskRow, slots: readonly ProposerSlot[]): Promise<{ ok: true; info: Map<string, AgentInfo> } | { ok: false; code: number; reason: string }> {
  const info = new Map<string, AgentInfo>();
  if (!deps.agent) return { ok: true, info };
  for (const ref of new Set(slots.flatMap((s) => (s.agent ? [s.agent] : [])))) {
    const a = await deps.agent(ref);
    const member = slots.find((s) => s.agent === ref)?.id ?? ref;
    if (!a) return { ok: false, code: ReasonCode.AGENT_UNKNOWN, reason: `proposer ${member}: agent '${ref}' is not registered` };
    const problems = validateAgainst(a.inputs, structuredClone(task.contract.inputs));
    if (problems.length) return { ok: false, code: ReasonCode.INPUT_INVALID, reason: `proposer ${member}: the task's inputs do not match agent ${a.name}@${a.version}: ${problems.join('; ')}` };
    info.set(ref, a);
  }
  return { ok: true, info };
}

/** Ask one proposer for its candidate of a round, and check its signature. */
async function proposeOne(deps: ConsensusDeps, ctx: DriverCtx, task: ConsensusTaskRow, slot: ProposerSlot, round: number, seed: SeedBundle | undefined, agent: AgentInfo | undefined): Promise<Answer> {
  let p: Proposal;
  try {
    p = await ask(deps, ctx, task, slot, round, seed, agent);
  } catch (e) {
    if (e instanceof StepError && e.code === 'LEASE_LOST') throw e;
    checkAborted(ctx.signal);
    // An llm conversation that failed still spent what its session recorded: charged to explore with the refusal.
    const spent = isLlm(agent) ? await sessionSpend(deps.store, ctx.step.run_id, memberSession(ctx.step, 'propose', slot.id, round)) : { cost_usd: 0 };
    return { slot, error: errorMessage(e), ...spent };
  }
  const hash = candidateHash(p.output ?? null);
  const fields = candidateSignedFields({ task_id: task.task_id, candidate_hash: hash, proposer_id: slot.id, round, evidence: p.evidence, cost_usd: p.cost_usd });
  if (p.invalid) return { slot, p, hash, refused: p.invalid.code, detail: p.invalid.detail };
  const signed = checkSigned(task.members, 'proposer', 'candidate', { ...fields, signature: p.signature ?? '' });
  return { slot, p, hash, refused: signed.ok ? undefined : signed.code, ...(signed.ok ? {} : { detail: signed.message }) };
}

/** Record a proposer's answer in the round's transition: its candidate (CANDIDATE_PROPOSED, EVIDENCE_ADDED) or its refusal. A candidate recorded already is skipped. */
async function recordProposal(w: Writer, task: ConsensusTaskRow, round: number, a: Answer): Promise<void> {
  const slot = a.slot;
  if ('error' in a) {
    if (a.cost_usd > 0) await w.c.addCost(task.task_id, 'explore', a.cost_usd);
    await w.emit(EventType.TASK_INPUT_REJECTED, { task_id: task.task_id, record_kind: 'candidate', member_id: slot.id, round, reason_code: ReasonCode.EXECUTOR_UNAVAILABLE, reason: 'EXECUTOR_UNAVAILABLE', detail: a.error, ...(a.cost_usd > 0 ? { cost_usd: a.cost_usd } : {}), ...(a.session_id ? { session_id: a.session_id } : {}) });
    return;
  }
  const { p, hash, refused: code, detail } = a;
  const kept = await w.c.candidates(task.task_id);
  if (kept.some((c) => c.proposer_id === slot.id && c.round === round)) return;
  await w.c.addCost(task.task_id, 'explore', p.cost_usd);
  // An llm agent's session and usage go beside the candidate (never in it).
  const session = p.session ? { session: p.session } : {};
  if (code !== undefined) {
    await w.emit(EventType.TASK_INPUT_REJECTED, { task_id: task.task_id, record_kind: 'candidate', member_id: slot.id, round, candidate_hash: hash, cost_usd: p.cost_usd, reason_code: code, reason: reasonName(code), ...(detail ? { detail } : {}), ...session });
    return;
  }
  // explore.topk: a new hash once topk distinct candidates are kept is not admitted.
  const admit = admitCandidate(task.contract.explore, new Set(kept.map((c) => c.candidate_hash)), hash);
  if (!admit.ok) {
    await w.emit(EventType.TASK_INPUT_REJECTED, { task_id: task.task_id, record_kind: 'candidate', member_id: slot.id, round, candidate_hash: hash, cost_usd: p.cost_usd, reason_code: admit.code, reason: reasonName(admit.code), detail: admit.reason, ...session });
    return;
  }
  const { shown, bytes } = outputForEvent(p.output);
  const ev = await w.emit(EventType.CANDIDATE_PROPOSED, { task_id: task.task_id, candidate_hash: hash, proposer_id: slot.id, round, ...shown, evidence: p.evidence, cost_usd: p.cost_usd, signature: p.signature, ...session });
  for (const e of p.evidence) await w.emit(EventType.EVIDENCE_ADDED, { task_id: task.task_id, candidate_hash: hash, proposer_id: slot.id, kind: e.kind, uri: e.uri.startsWith('data:') ? 'data:…' : e.uri, digest: e.digest });
  await w.c.queueCandidate({ task_id: task.task_id, candidate_hash: hash, proposer_id: slot.id, round, output: p.output ?? null, evidence: p.evidence, cost_usd: p.cost_usd, signature: p.signature ?? '', output_bytes: bytes, event_seq: ev.seq, event_hash: ev.hash, created_at: w.tx.now });
}

/** The proposal itself: an HTTP executor's `/execute`, or a registered agent signed with its kernel key. */
async function ask(deps: ConsensusDeps, ctx: DriverCtx, task: ConsensusTaskRow, slot: ProposerSlot, round: number, seed: SeedBundle | undefined, agentInfo: AgentInfo | undefined): Promise<Proposal> {
  const contract = task.contract;
  const idempotencyKey = `${task.task_id}/${slot.id}/${round}`;
  if (slot.executor) {
    const { client } = await deps.executor(slot.executor);
    // The step attempt's span travels with the request (W3C trace context), when tracing is on.
    const traceparent = ctx.trace ? withTraceHeaders({}, ctx.trace).traceparent : undefined;
    const r = await client.execute(
      {
        task_id: task.task_id,
        task_type: task.task_type,
        inputs: contract.inputs,
        idempotency_key: idempotencyKey,
        deadline_ms: Math.min(task.expires_at, Date.now() + 5 * 60_000),
        ...(contract.output_schema ? { output_schema: contract.output_schema } : {}),
        ...(seed ? { seed_bundle: seed } : {}),
        proposer_id: slot.id,
        round,
      },
      { signal: ctx.signal, ...(traceparent ? { traceparent } : {}) },
    );
    return { output: r.output ?? null, evidence: r.evidence ?? [], cost_usd: typeof r.cost_usd === 'number' && r.cost_usd > 0 ? r.cost_usd : 0, signature: r.signature ?? null };
  }
  const agent = slot.agent as string;
  // The seed goes to an agent that may take it: one whose inputs are closed gets it only when it declares seed_bundle.
  const given = { ...contract.inputs, ...(seed && takesSeed(agentInfo) ? { seed_bundle: seed } : {}) };
  // An llm agent: its own conversation per sample and round, and a user turn when the task's inputs have none.
  const llm = isLlm(agentInfo);
  const session = llm ? memberSession(ctx.step, 'propose', slot.id, round) : undefined;
  const out = await deps.runAgent({
    agent,
    inputs: llm ? llmInputs(undefined, given, () => proposerMessage(task, seed)) : given,
    runId: ctx.step.run_id,
    stepId: ctx.step.step_id,
    attempt: ctx.step.attempt,
    idempotencyKey,
    ...(session ? { session } : {}),
    workflow: ctx.workflow,
    signal: ctx.signal,
  });
  // A code agent reports what it spent as a numeric `cost_usd` output, and its evidence as `evidence`; neither is part of the candidate.
  // An llm agent's candidate is its answer (`content`), what it spent its `usage.cost_usd`; its usage and session go beside the candidate.
  let output: unknown = out;
  let cost = 0;
  let evidence: EvidenceRef[] = [];
  let conversation: LlmSession | undefined;
  if (llm) {
    const run = llmRun(out, session as string);
    output = run.answer;
    cost = run.cost_usd;
    conversation = run.session;
  } else if (out !== null && typeof out === 'object' && !Array.isArray(out)) {
    const { cost_usd, evidence: ev, ...rest } = out as Record<string, unknown>;
    if (typeof cost_usd === 'number' && cost_usd > 0) cost = cost_usd;
    if (Array.isArray(ev)) evidence = ev as EvidenceRef[];
    output = rest;
  }
  const key = await deps.kernelKey(`consensus:${slot.id}`);
  const hash = candidateHash(output ?? null);
  const problems = agentInfo ? validateAgainst(agentInfo.outputs, structuredClone(out)) : [];
  const invalid = problems.length ? { invalid: { code: ReasonCode.OUTPUT_INVALID, detail: `outputs do not match agent ${agentInfo?.name ?? agent}@${agentInfo?.version ?? '?'}: ${problems.join('; ')}` } } : {};
  return { ...invalid, output, evidence, cost_usd: cost, ...(conversation ? { session: conversation } : {}), signature: signRecord(key.privateKey, 'candidate', candidateSignedFields({ task_id: task.task_id, candidate_hash: hash, proposer_id: slot.id, round, evidence, cost_usd: cost })) };
}

/** Whether an agent may be given `seed_bundle`: unless its declared inputs are closed without it. */
function takesSeed(agent: AgentInfo | undefined): boolean {
  const fields = agent ? declaredFields(agent.inputs) : undefined;
  return fields === undefined || fields.includes('seed_bundle');
}
