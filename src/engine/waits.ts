/**
 * Durable sleep and wait steps. A `kind: sleep` or `kind: wait` step runs no agent: its first run
 * parks it (`waiting`, no lease, no worker slot) with a registration row written in the same
 * transaction; it becomes ready again when its time comes (a worker's claim wakes due steps through an
 * index), when a matching event is recorded, or when a signal is sent to its run (both in the
 * transaction that records them). It then runs once more and finishes from what its registration says.
 *
 * Invariants: a registration is resolved once (`waiting` → delivered | due | cancelled, a conditional
 * update); an event or signal is delivered only to a step that is still waiting; a signal is consumed
 * by one wait; an event by at most one wait per run.
 *
 * @example
 *   // the worker's claim: await wakeDue(scope, 100)  — steps whose sleep or timeout ended become ready
 *   // swarm.emitEvent('order.paid', {order_id: 7})  — open waits for order.paid whose match holds are delivered
 */
import { evaluate, parseCondition } from '../core/condition.js';
import { UserError } from '../core/errors.js';
import { EventType } from '../core/events.js';
import { MATCH_ROOTS, untilTime } from '../core/manifest/step-kinds.js';
import type { StepSpec } from '../core/manifest/workflow.js';
import { TERMINAL_RUN } from '../core/states.js';
import { resolveValue, type ResolveContext } from '../core/template.js';
import type { Store } from '../store/store.js';
import type { ClaimedStep, RunState, StepKey, StepRecord, StepResult, StepWaitRecord, WaitRequest } from '../store/types.js';
import type { TxScope } from './tx-scope.js';

/** How many due waits one claim wakes at most (the rest wake with the next claim). */
export const WAKE_BATCH = 100;
/** How many recorded events a buffered wait looks at when it starts (oldest first). */
const BUFFER_SCAN = 200;

// ---------------------------------------------------------------- the step's own runs (worker side)

/**
 * Run a sleep or wait step: park it the first time, finish it once its registration is resolved.
 * Never throws for the step's own problems: a bad `until:` fails the step (not retried).
 */
export async function runKindStep(store: Store, step: ClaimedStep, spec: StepSpec, ctx: ResolveContext): Promise<StepResult> {
  const w = await store.getStepWait(step.run_id, step.step_id);
  if (w && w.status !== 'cancelled') return finishOrPark(w, spec);
  const now = await store.now();
  if (spec.kind === 'sleep') {
    const s = spec.sleep ?? {};
    let wake: number | undefined;
    if (s.for_ms !== undefined) wake = now + s.for_ms;
    else {
      const value = resolveValue(s.until, ctx, `steps.${step.step_id}.until`);
      wake = untilTime(value);
      if (wake === undefined) {
        return { kind: 'failed', retryable: false, error: { code: 'SLEEP_UNTIL_INVALID', message: `until: ${JSON.stringify(value)} is not a time (ISO 8601 such as 2026-01-31T09:00:00Z, or epoch milliseconds)` } };
      }
    }
    // A time already past wakes at once, without parking.
    if (wake <= now) return { kind: 'completed', outputs: { slept_until: iso(wake), woke_at: iso(now) } };
    return { kind: 'waiting', reason: `sleeping until ${iso(wake)}`, wait: { kind: 'sleep', name: null, match: null, context_json: null, buffer: false, since: now, wake_at: wake } };
  }
  const wait = spec.wait;
  if (!wait) return { kind: 'failed', retryable: false, error: { code: 'PLAN_MISMATCH', message: `step '${step.step_id}' has no wait settings` } };
  const run = await store.getRun(step.run_id);
  // What match reads of the run, frozen now: an event is tested against it in the transaction that records the event.
  const context = wait.match ? JSON.stringify({ trigger: ctx.trigger ?? {}, variables: ctx.variables ?? {}, steps: ctx.steps ?? {}, run: ctx.run ?? {}, config: ctx.config ?? {} }) : null;
  const req: WaitRequest = {
    kind: wait.event !== undefined ? 'event' : 'signal',
    name: wait.event ?? wait.signal ?? null,
    match: wait.match ?? null,
    context_json: context,
    buffer: wait.buffer,
    since: run?.created_at ?? now,
    wake_at: wait.timeout_ms !== undefined ? now + wait.timeout_ms : null,
  };
  return { kind: 'waiting', reason: waitReason(req), wait: req };
}

function finishOrPark(w: StepWaitRecord, spec: StepSpec): StepResult {
  if (w.status === 'delivered') return { kind: 'completed', outputs: outputsOf(w.data_json) };
  if (w.status === 'due') {
    if (spec.kind === 'sleep') return { kind: 'completed', outputs: { slept_until: iso(w.wake_at ?? w.resolved_at ?? 0), woke_at: iso(w.resolved_at ?? 0) } };
    if (spec.wait?.on_timeout === 'continue') return { kind: 'completed', outputs: { timed_out: true } };
    return { kind: 'failed', retryable: false, error: { code: 'WAIT_TIMEOUT', message: `${waitReason(w).replace('waiting', 'waited')}: timed out at ${iso(w.wake_at ?? 0)}` } };
  }
  // Still waiting (the step was made ready by something else, such as a retry of its run): park again, same registration.
  return { kind: 'waiting', reason: w.kind === 'sleep' ? `sleeping until ${iso(w.wake_at ?? 0)}` : waitReason(w), wait: w };
}

/** A delivered event's or signal's data as the step's outputs: an object as it is, anything else as `{data}`. */
function outputsOf(json: string | null): unknown {
  const data: unknown = json === null ? {} : JSON.parse(json);
  return data !== null && typeof data === 'object' && !Array.isArray(data) ? data : { data };
}

function waitReason(w: Pick<WaitRequest, 'kind' | 'name' | 'wake_at'>): string {
  return `waiting for ${w.kind} ${w.name ?? ''}${w.wake_at !== null ? ` (until ${iso(w.wake_at)})` : ''}`;
}

const iso = (ms: number): string => new Date(ms).toISOString();

// ---------------------------------------------------------------- in the ledger's transaction

/** Does the workflow have sleep or wait steps (whose registrations a cancel or failure must close)? */
/** The agent id a sleep or wait step's row records in place of an agent (`kind:sleep`, `kind:wait`). */
export function kindAgentId(kind: string): string {
  return `kind:${kind}`;
}

/**
 * Is a waiting run paused with nothing a worker can do for it now: no step running or ready, and no
 * sleep, which wakes by itself? It then waits for a human, an event or a signal.
 *
 * @example
 *   pausedOnOutside(run, await store.getSteps(run.id)); // true while only an approval is pending
 */
export function pausedOnOutside(run: Pick<RunState, 'status' | 'running_steps'>, steps: ReadonlyArray<Pick<StepRecord, 'status' | 'agent_id'>>): boolean {
  return run.status === 'waiting' && run.running_steps === 0 && !steps.some((s) => s.status === 'ready' || (s.status === 'waiting' && s.agent_id === kindAgentId('sleep')));
}

export function hasWaitSteps(wf: { steps: ReadonlyArray<Pick<StepSpec, 'kind'>> }): boolean {
  return wf.steps.some((s) => s.kind !== undefined);
}

/**
 * The step has just been parked (`waiting`) with this request: record its registration, and resolve it
 * at once when it is satisfied already (a past wake time, a kept signal, a buffered event).
 * Returns true when the step was made ready again.
 */
export async function parkWait(scope: TxScope, state: RunState, key: StepKey, req: WaitRequest): Promise<boolean> {
  const waits = scope.tx.waits();
  const rec = await waits.putWait(key, req);
  if (rec.status !== 'waiting') return resume(scope, state, rec, rec.status);
  if (rec.wake_at !== null && rec.wake_at <= scope.tx.now) return resume(scope, state, rec, 'due');
  if (rec.kind === 'signal' && rec.name) {
    const sig = await waits.takeSignal(key.run_id, rec.name, key.step_id);
    if (sig) return resume(scope, state, rec, 'delivered', { event_id: `signal:${sig.seq}`, data_json: sig.data_json });
  }
  if (rec.kind === 'event' && rec.buffer && rec.name) {
    await waits.lockEventName(rec.name);
    for (const e of await waits.bufferedEvents(rec.name, rec.since, key.run_id, BUFFER_SCAN)) {
      if (matches(rec, { id: e.id, name: e.name, source: e.source, data: JSON.parse(e.data_json), at: iso(e.created_at) })) {
        return resume(scope, state, rec, 'delivered', { event_id: e.id, data_json: e.data_json });
      }
    }
  }
  return false;
}

/** A recorded custom event: deliver it to the open waits for its name whose `match` holds (one wait per run). */
export async function deliverEvent(scope: TxScope, event: { id: string; name: string; source: string | null; data: unknown }): Promise<number> {
  const waits = scope.tx.waits();
  await waits.lockEventName(event.name);
  const open = await waits.openWaits('event', event.name);
  if (open.length === 0) return 0;
  const seen = { ...event, at: iso(scope.tx.now) };
  const dataJson = JSON.stringify(event.data ?? null);
  const served = new Set<string>();
  for (const w of open) {
    if (served.has(w.run_id) || !matches(w, seen)) continue;
    const state = await scope.run(w.run_id);
    if (await resume(scope, state, w, 'delivered', { event_id: event.id, data_json: dataJson })) served.add(w.run_id);
  }
  return served.size;
}

/**
 * Send a signal to a run: kept until a wait step of the run takes it (oldest first); delivered now
 * when one is waiting. A finished run takes no signal (RUN_FINISHED).
 */
export async function sendSignal(scope: TxScope, runId: string, name: string, data: unknown): Promise<{ seq: number; delivered_to: string | null }> {
  const state = await scope.run(runId);
  if (TERMINAL_RUN.has(state.status)) throw new UserError('RUN_FINISHED', `run ${runId} is ${state.status}; it takes no more signals`, { runId });
  const waits = scope.tx.waits();
  const seq = await waits.insertSignal(runId, name, JSON.stringify(data ?? null));
  let delivered: string | null = null;
  scope.emit(state, EventType.SIGNAL_RECEIVED, null, { name, seq });
  for (const w of await waits.openWaits('signal', name, runId)) {
    // resume() takes the oldest kept signal: this one, unless older ones of the name were kept.
    if (await resume(scope, state, w, 'delivered', undefined, true)) {
      delivered = w.step_id;
      break;
    }
  }
  return { seq, delivered_to: delivered };
}

/** Wake parked steps whose sleep or timeout has ended (one indexed read). Returns how many became ready. */
export async function wakeDue(scope: TxScope, limit = WAKE_BATCH): Promise<number> {
  let n = 0;
  for (const w of await scope.tx.waits().dueWaits(scope.tx.now, limit)) {
    const state = await scope.run(w.run_id);
    if (await resume(scope, state, w, 'due')) n++;
  }
  return n;
}

/**
 * Make a parked step ready and resolve its registration, or, when the step no longer waits (its run
 * was cancelled or failed), mark the registration cancelled and deliver nothing. `takeSignal` consumes
 * the run's oldest kept signal of the wait's name as the delivery.
 */
async function resume(scope: TxScope, state: RunState, w: StepWaitRecord, how: 'delivered' | 'due' | 'cancelled', delivery?: { event_id: string; data_json: string }, takeSignal = false): Promise<boolean> {
  const { tx } = scope;
  const key = { run_id: w.run_id, step_id: w.step_id };
  const ready = await tx.updateStep(key, ['waiting'], { status: 'ready', available_at: tx.now, error: null });
  if (!ready) {
    await tx.waits().resolveWait(key, 'cancelled');
    return false;
  }
  if (takeSignal && w.name) {
    const sig = await tx.waits().takeSignal(w.run_id, w.name, w.step_id);
    if (!sig) throw new Error(`no signal ${w.name} is kept for run ${w.run_id}`);
    delivery = { event_id: `signal:${sig.seq}`, data_json: sig.data_json };
  }
  if (how !== 'cancelled') await tx.waits().resolveWait(key, how, delivery);
  if (state.status === 'waiting' && !(await tx.getSteps(state.id)).some((s) => s.status === 'waiting' && s.step_id !== w.step_id)) state.status = 'running';
  scope.emit(state, EventType.WAIT_RESOLVED, w.step_id, {
    kind: w.kind,
    ...(w.name ? { name: w.name } : {}),
    outcome: how === 'due' ? (w.kind === 'sleep' ? 'woke' : 'timed_out') : how,
    ...(delivery ? { [w.kind === 'signal' ? 'signal' : 'event_id']: delivery.event_id } : {}),
  });
  scope.madeReady.push(key);
  return true;
}

function matches(w: Pick<StepWaitRecord, 'match' | 'context_json'>, event: Record<string, unknown>): boolean {
  if (!w.match) return true;
  try {
    const ctx = { ...(w.context_json ? (JSON.parse(w.context_json) as ResolveContext) : {}), event };
    return Boolean(evaluate(parseCondition(w.match, MATCH_ROOTS), ctx));
  } catch {
    // A match that cannot be evaluated against this event does not match it (it was checked at registration).
    return false;
  }
}
