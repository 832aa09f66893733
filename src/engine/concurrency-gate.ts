/**
 * Concurrency keys: `concurrency: {key: "${trigger.customer_id}", limit: 1}` lets at most `limit`
 * runs of a workflow with the same key be active (running or waiting) at once, across every worker
 * and process sharing the store.
 *
 * The gate works at the two ends of a run, never in the step claim (the hot path):
 * - creating a run (or retrying one) takes a slot of its key if one is free; otherwise the run is
 *   created `queued` with its first steps held back (`pending` with no dependency left), so no
 *   worker can claim anything of it;
 * - the transaction that finishes a run (completed, failed, cancelled) gives its slot back and
 *   starts the oldest queued run of the key: its held steps become ready, and RUN_ADMITTED records it
 *   (a failed run with a step still running gives it back when that step ends: releaseWhenIdle).
 * Both happen inside the ledger's transaction, under a per-key lock (ConcurrencyTx.lockKey), so a
 * crash can neither leak a slot nor strand a queued run, and concurrent creations cannot exceed the
 * limit.
 *
 * @example
 *   const admission = await admitRun(scope, plan, runId, input.trigger_data); // in the run's creating transaction
 *   if (admission?.state === 'queued') steps.forEach((s) => (s.status = 'pending'));
 */
import { EventType } from '../core/events.js';
import { resolveConcurrencyKey } from '../core/manifest/concurrency.js';
import { TERMINAL_RUN } from '../core/states.js';
import type { RunConcurrency, RunPlan, RunState } from '../store/types.js';
import type { TxScope } from './tx-scope.js';

/** How a run entered its key: holding a slot (`active`) or waiting for one (`queued`). */
export interface Admission {
  key: string;
  limit: number;
  state: 'active' | 'queued';
  /** Runs that held the key's slots when it was decided (not counting this one). */
  active: number;
}

/** The most queued runs one finishing transaction starts (a raised limit frees several slots at once). */
const MAX_PROMOTIONS = 64;

/**
 * Decide a new run's place under its workflow's concurrency key, in the transaction creating it.
 * Returns undefined for a workflow without a key. Throws CONCURRENCY_KEY_UNRESOLVED (nothing is
 * written: the transaction rolls back) when the key does not resolve and there is no default.
 */
export async function admitRun(scope: TxScope, plan: RunPlan, runId: string, triggerData: unknown): Promise<Admission | undefined> {
  const spec = plan.workflow.concurrency_key;
  if (!spec) return undefined;
  const workflow = plan.workflow.name;
  const key = resolveConcurrencyKey(spec, triggerData ?? {}, plan.workflow.variables, `workflow ${workflow}`);
  return take(scope, { run_id: runId, workflow_name: workflow, key, limit: spec.limit, state: 'queued', queued_at: scope.tx.now });
}

/** Lock the key, count its active runs, and record the run as active (a slot is free) or queued. */
async function take(scope: TxScope, row: RunConcurrency): Promise<Admission> {
  const c = scope.tx.concurrency;
  await c.lockKey(row.workflow_name, row.key);
  const active = await c.countActive(row.workflow_name, row.key);
  const state = active < row.limit ? 'active' : 'queued';
  await c.put({ ...row, state });
  return { key: row.key, limit: row.limit, state, active };
}

/**
 * Take the lock of the run's key, if it has one, before the run's own row is locked: a transaction
 * that starts a queued run holds the key's lock and then locks that run, so one that locks a run
 * first (cancelling it) and its key second could deadlock with it.
 */
export async function lockKeyOf(scope: TxScope, runId: string): Promise<void> {
  const c = scope.tx.concurrency;
  const row = await c.get(runId);
  if (row && row.state !== 'released') await c.lockKey(row.workflow_name, row.key);
}

/**
 * A run reached a final state in this transaction: its row is released, and when it held a slot,
 * the oldest queued runs of its key start (as many as there are free slots).
 */
export async function releaseRun(scope: TxScope, state: RunState, plan: RunPlan): Promise<void> {
  if (!plan.workflow.concurrency_key) return;
  const c = scope.tx.concurrency;
  let row = await c.get(state.id);
  if (!row || row.state === 'released') return;
  // A commit finishing runs of two keys takes their locks in run order; two such commits taking
  // them in opposite orders deadlock on PostgreSQL, which aborts one: the store retries it.
  await c.lockKey(row.workflow_name, row.key);
  // Read again under the key's lock: a transaction that held it may have changed the row meanwhile.
  row = await c.get(state.id);
  if (!row || row.state === 'released') return;
  await c.setState(state.id, 'released');
  if (row.state === 'active') await promote(scope, row.workflow_name, row.key);
}

/**
 * A failed run gives its slot back once none of its steps runs any more. Failing a run cancels only
 * the steps that have not started: one running beside the step that failed goes on to its end, still
 * working under the run's key, and giving the slot away before that would let the next run of the key
 * run beside it. Called when the run fails and whenever a step of a finished run ends (completed,
 * failed, given back, or taken back from a dead worker); a no-op once the slot is given back.
 */
export async function releaseWhenIdle(scope: TxScope, state: RunState, plan: RunPlan): Promise<void> {
  if (!plan.workflow.concurrency_key || !TERMINAL_RUN.has(state.status)) return;
  const row = await scope.tx.concurrency.get(state.id);
  if (!row || row.state === 'released') return;
  if ((await scope.tx.getSteps(state.id)).some((s) => s.status === 'running')) return;
  await releaseRun(scope, state, plan);
}

/** Start the oldest queued runs of a key while it has free slots (its lock is held). */
async function promote(scope: TxScope, workflow: string, key: string): Promise<void> {
  const { tx } = scope;
  const c = tx.concurrency;
  let active = await c.countActive(workflow, key);
  for (const q of await c.oldestQueued(workflow, key, MAX_PROMOTIONS)) {
    if (active >= q.limit) break;
    const state = await scope.run(q.run_id);
    if (TERMINAL_RUN.has(state.status)) {
      // Finished without giving its row back (cannot happen through the ledger): it holds nothing.
      await c.setState(q.run_id, 'released');
      continue;
    }
    await c.setState(q.run_id, 'active');
    const ready: string[] = [];
    for (const s of await tx.getSteps(q.run_id)) {
      // Held back at creation (or retry): pending with no dependency left.
      if (s.status !== 'pending' || s.pending_deps > 0) continue;
      if (await tx.updateStep(s, ['pending'], { status: 'ready', available_at: tx.now })) {
        ready.push(s.step_id);
        scope.madeReady.push({ run_id: q.run_id, step_id: s.step_id });
      }
    }
    scope.emit(state, EventType.RUN_ADMITTED, null, { key, limit: q.limit, active, waited_ms: Math.max(0, tx.now - q.queued_at), ready });
    active++;
  }
}

/**
 * A failed or cancelled run is retried: it takes a slot of its key again, or queues for one (then
 * the steps the retry made ready are held back). Returns the admission, or undefined without a key.
 */
export async function readmitRun(scope: TxScope, state: RunState, plan: RunPlan): Promise<Admission | undefined> {
  if (!plan.workflow.concurrency_key) return undefined;
  const { tx } = scope;
  const row = await tx.concurrency.get(state.id);
  if (!row) return undefined;
  if (row.state === 'active') {
    // Failed with a step still running: it never gave its slot back, and keeps it.
    await tx.concurrency.lockKey(row.workflow_name, row.key);
    return { key: row.key, limit: row.limit, state: 'active', active: (await tx.concurrency.countActive(row.workflow_name, row.key)) - 1 };
  }
  const admission = await take(scope, { ...row, queued_at: tx.now });
  if (admission.state === 'queued') {
    for (const s of await tx.getSteps(state.id)) if (s.status === 'ready') await tx.updateStep(s, ['ready'], { status: 'pending', available_at: null });
  }
  return admission;
}

/**
 * Why a queued run waits, for `runs show` and the API: "waiting for a concurrency slot: key
 * customer-7, 1 active (limit 1)". Undefined for a run that does not wait for a slot.
 */
export function waitingReason(c: { state: string; key: string; active: number; limit: number } | undefined): string | undefined {
  if (!c || c.state !== 'queued') return undefined;
  return `waiting for a concurrency slot: key ${c.key}, ${c.active} active (limit ${c.limit})`;
}
