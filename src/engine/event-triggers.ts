/**
 * Event triggers in the ledger: the runs an event starts are created in the transaction that records
 * the event (a run's completion, failure or wait; a custom event's row), so they exist exactly when
 * the event does. Each run's idempotency key is `event:<event id>:<trigger id>`: a retried
 * transaction, or a repeated custom event id, makes no second run.
 *
 * @example
 *   // inside the transaction that finished `state`:
 *   await raiseRunEvent(deps, scope, state, plan.workflow, 'run.completed', {}, completedSeq);
 */
import { errorMessage, UserError } from '../core/errors.js';
import { EventType } from '../core/events.js';
import { validateAgainst } from '../core/io-schema.js';
import { byteLength, capMessage, LimitExceededError } from '../core/limits.js';
import type { Redactor } from '../secrets/redactor.js';
import type { EmittedEventRecord, EventTriggerRow, LedgerTx, RunPlan, RunState, WorkflowRecord } from '../store/types.js';
import { chainAfter, depthAfter, eventRunKey, filterPasses, MAX_EVENT_DEPTH, type TriggerEvent } from '../triggers/events.js';
import type { NewRunInput } from './ledger.js';
import { agentsFor, buildRunPlan } from './plan.js';
import { TxScope } from './tx-scope.js';
import { deliverEvent } from './waits.js';

/** The built-in events a commit of completions can raise (their triggers travel with a networked store's BEGIN). */
export const RUN_EVENTS = ['run.completed', 'run.failed', 'approval.requested'] as const;

/** What starting triggered runs needs from the ledger. */
export interface EventTriggerDeps {
  insertRun(scope: TxScope, wf: WorkflowRecord, plan: RunPlan, input: NewRunInput): Promise<string>;
  /** `config:` of swarm.yaml, frozen into each run's plan. */
  config: Record<string, unknown>;
  runInputBytes: number;
  maxEventBytes: number;
  chainKey: Buffer;
  redactor: Redactor;
}

export interface CustomEventInput {
  id: string;
  name: string;
  source: string | null;
  data: unknown;
}

export interface EmitResult {
  /** false: the id was recorded before; `runs` are the ones the first one started. */
  created: boolean;
  runs: string[];
  skipped: Array<{ trigger: string; error: string }>;
}

/**
 * A built-in event of a run (`run.completed`, `run.failed`, `approval.requested`), raised inside the
 * transaction that made it happen: a crash loses neither the state change nor the runs it starts,
 * and a retry of the commit makes neither twice. With no trigger listening: one indexed read.
 */
export async function raiseRunEvent(
  deps: EventTriggerDeps,
  scope: TxScope,
  state: RunState,
  wf: { name: string; version: string },
  name: string,
  extra: Pick<TriggerEvent, 'step' | 'reason'>,
  seq = state.event_seq,
): Promise<void> {
  const triggers = await scope.tx.eventTriggers(name, wf.name);
  if (triggers.length === 0) return;
  const triggerData = await scope.tx.getTriggerData(state.id);
  const event: TriggerEvent = {
    // The seq of the event that records the change: unique per occurrence, the same if the transaction is retried.
    id: `${state.id}:${seq}`,
    name,
    source: wf.name,
    at: new Date(scope.tx.now).toISOString(),
    depth: depthAfter(triggerData),
    chain: chainAfter(triggerData, wf.name),
    run: { id: state.id, workflow: wf.name, version: wf.version, status: state.status, error: state.error, step: state.error_step },
    ...extra,
  };
  await startTriggered(deps, scope, event, triggers, state);
}

/**
 * Record a custom event and start the runs of the event triggers it matches, in the caller's
 * transaction. An id recorded before starts nothing: the answer is the first one's runs
 * (`created: false`); the same id with another name is refused (EVENT_ID_REUSED).
 */
export async function emitCustomEvent(deps: EventTriggerDeps, tx: LedgerTx, input: CustomEventInput): Promise<EmitResult> {
  const row: EmittedEventRecord = { id: input.id, name: input.name, source: input.source, data_json: JSON.stringify(input.data ?? null), run_ids: [], created_at: tx.now };
  if (!(await tx.insertEmittedEvent(row))) {
    const first = await tx.getEmittedEvent(input.id);
    if (first && first.name !== input.name) {
      throw new UserError('EVENT_ID_REUSED', `event id '${input.id}' was used for a ${first.name} event, not ${input.name}; use a new id for a new event`, { field: 'id' });
    }
    return { created: false, runs: first?.run_ids ?? [], skipped: [] };
  }
  const scope = new TxScope(tx, deps.maxEventBytes, deps.chainKey);
  const event: TriggerEvent = { id: input.id, name: input.name, source: input.source, at: new Date(tx.now).toISOString(), depth: 1, chain: [], data: input.data ?? null };
  const out = await startTriggered(deps, scope, event, await tx.eventTriggers(input.name, input.source));
  if (out.runs.length) await tx.setEmittedEventRuns(input.id, out.runs);
  // Wait steps parked for this event take it in this same transaction (see waits.ts).
  await deliverEvent(scope, { id: input.id, name: input.name, source: input.source, data: input.data ?? null });
  await scope.flush();
  return { created: true, ...out };
}

/**
 * Start one run per matching trigger, each under the key `event:<event id>:<trigger id>`. A trigger
 * that cannot start its run (its input is refused, its workflow is gone, the chain is too deep) is
 * reported in the source run's log and in the result, never thrown: the event itself stands. A trigger
 * whose workflow is already in the event's chain starts nothing, and the source run's log says so
 * (EVENT_TRIGGER_SKIPPED).
 */
async function startTriggered(deps: EventTriggerDeps, scope: TxScope, event: TriggerEvent, triggers: readonly EventTriggerRow[], source?: RunState): Promise<Omit<EmitResult, 'created'>> {
  const { tx } = scope;
  const runs: string[] = [];
  const skipped: Array<{ trigger: string; error: string }> = [];
  for (const t of triggers) {
    try {
      if (!filterPasses(t.config.filter, event)) continue;
      if (event.chain?.includes(t.workflow_name)) {
        // Not an error: the rule that keeps listeners without `source` from starting each other without end.
        if (source) scope.emit(source, EventType.EVENT_TRIGGER_SKIPPED, null, { event: event.name, event_id: event.id, trigger: t.id, workflow: t.workflow_name, chain: event.chain, reason: `workflow ${t.workflow_name} already ran in this chain of event-triggered runs (${event.chain.join(' → ')}); an event of the chain does not start it again` });
        continue;
      }
      if (event.depth > MAX_EVENT_DEPTH) throw new Error(`the event is ${event.depth} event-triggered runs deep (at most ${MAX_EVENT_DEPTH}): do event triggers start each other in a loop?`);
      const key = eventRunKey(event.id, t.id);
      const existing = await tx.runByIdempotencyKey(key);
      if (existing) {
        runs.push(existing.id);
        continue;
      }
      const wf = (await tx.workflowVersions(t.workflow_name)).find((w) => w.version === t.workflow_version);
      if (!wf) throw new Error(`workflow ${t.workflow_name}@${t.workflow_version} is not registered`);
      const maxInput = deps.runInputBytes;
      const inputBytes = byteLength(JSON.stringify(event));
      if (inputBytes > maxInput) throw new LimitExceededError(`the ${event.name} event as input of workflow ${wf.name}`, 'run_input_bytes', maxInput, inputBytes);
      if (wf.manifest.inputs) {
        const problems = validateAgainst(wf.manifest.inputs, event);
        if (problems.length) throw new Error(`the ${event.name} event does not fit the inputs of workflow ${wf.name}: ${problems.join('; ')}`);
      }
      const plan = buildRunPlan(wf, await agentsFor(wf.manifest, (n) => tx.agentVersions(n)), deps.config);
      const runId = await deps.insertRun(scope, wf, plan, { trigger_type: 'event', trigger_data: event, parent_run_id: source?.id ?? null, idempotency_key: key });
      runs.push(runId);
      scope.result.created.push(runId);
      if (source) scope.emit(source, EventType.EVENT_STARTED_RUN, null, { event: event.name, event_id: event.id, trigger: t.id, workflow: wf.name, version: wf.version, run_id: runId });
    } catch (e) {
      const error = capMessage(deps.redactor.text(errorMessage(e)), deps.maxEventBytes);
      skipped.push({ trigger: t.id, error });
      if (source) scope.emit(source, EventType.EVENT_TRIGGER_FAILED, null, { event: event.name, event_id: event.id, trigger: t.id, error });
      scope.result.messages.push(`event trigger of workflow ${t.workflow_name} (${event.name}) did not start a run: ${error}`);
    }
  }
  return { runs, skipped };
}
