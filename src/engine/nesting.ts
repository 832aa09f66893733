/**
 * Map steps and sub-workflow steps, inside the ledger's transactions.
 *
 * A map step is claimed like any step; its worker resolves the list and reports `{kind: 'map'}`.
 * Its commit parks the step (`waiting`, no lease, `pending_deps` = elements left) and adds one step
 * row per element, `<step>[<i>]`, in batched inserts: each element is claimed, leased, retried and
 * fenced like any other step. The commit of the last element writes the list of outputs (in element
 * order) to the map step and completes it; an element that fails for good fails the map step.
 *
 * A sub-workflow step reports `{kind: 'child'}` with its resolved inputs. Its commit parks the step
 * and creates the child run (idempotency key `sub:<run>:<step>`, `parent_run_id`/`parent_step_id`)
 * in the same transaction, so a worker killed before the commit created nothing and one killed after
 * it left both. The child's finishing transaction completes (or fails) the parent's step.
 *
 * @example
 *   const el = parseElementId('resize[3]'); // { base: 'resize', index: 3 }
 */
import { EventType } from '../core/events.js';
import { validateAgainst } from '../core/io-schema.js';
import { MAX_MAP_ELEMENTS } from '../core/manifest/nesting.js';
import { parseRef, pickRecord } from '../core/manifest/agent.js';
import type { StepSpec } from '../core/manifest/workflow.js';
import { errorMessage } from '../core/errors.js';
import { TERMINAL_RUN } from '../core/states.js';
import type { Completion, NewStepRow, RunPlan, RunState, StepRecord, StepResult, WorkflowRecord } from '../store/types.js';
import { agentsFor, buildRunPlan, type LoadedPlan } from './plan.js';
import type { TxScope } from './tx-scope.js';
import type { NewRunInput } from './ledger.js';

const ELEMENT_ID = /^(.+)\[(\d+)\]$/;

/** A map element's step id (`resize[3]`) split into its map step and position; undefined for other steps. */
export function parseElementId(stepId: string): { base: string; index: number } | undefined {
  const m = ELEMENT_ID.exec(stepId);
  return m ? { base: m[1] as string, index: Number(m[2]) } : undefined;
}

/** How many of these step ids are steps of the plan (a run's steps_remaining counts those, not map elements). */
export function planSteps(stepIds: readonly string[]): number {
  return stepIds.filter((id) => !ELEMENT_ID.test(id)).length;
}

const MAPPING = 'mapping ';
const WAITING_FOR_CHILD = 'waiting for child run ';

/** A map step waiting for its elements, or a sub-workflow step waiting for its child run (not for a human). */
export function isParked(s: Pick<StepRecord, 'status' | 'error'>): boolean {
  return s.status === 'waiting' && s.error !== null && (s.error.startsWith(MAPPING) || s.error.startsWith(WAITING_FOR_CHILD));
}

/** The plan's spec of a step row: a map element's is its map step's. */
export function specOf(p: LoadedPlan, stepId: string): StepSpec | undefined {
  return p.steps.get(parseElementId(stepId)?.base ?? stepId);
}

/** The agent columns of a step row: a sub-workflow step records its workflow there. */
export function stepAgentColumns(plan: RunPlan, s: StepSpec): Pick<NewStepRow, 'agent_id' | 'agent_name' | 'agent_version'> {
  const agentId = plan.step_agents[s.id];
  const agent = agentId ? plan.agents[agentId] : undefined;
  if (agentId && agent) return { agent_id: agentId, agent_name: agent.manifest.name, agent_version: agent.manifest.version };
  const { name, range } = parseRef(s.workflow ?? s.agent);
  return { agent_id: `workflow:${name}@${range}`, agent_name: name, agent_version: range };
}

/** What this module asks of the ledger. */
export interface NestingHost {
  plan(scope: TxScope, state: RunState): Promise<LoadedPlan>;
  insertRun(scope: TxScope, wf: WorkflowRecord, plan: RunPlan, input: NewRunInput): Promise<string>;
  /** A step's row is `completed` with these outputs: release its successors, maybe finish the run. */
  succeeded(scope: TxScope, state: RunState, p: LoadedPlan, stepId: string, outputsJson: string, data: Record<string, unknown>): Promise<void>;
  /** A step's row is `failed` for good: fail the run, or go on (on_error: continue). */
  failedForGood(scope: TxScope, state: RunState, p: LoadedPlan, stepId: string, error: { code: string; message: string }, data: Record<string, unknown>): Promise<void>;
  /** Cancel an unfinished run (a child of a run that ended). */
  cancel(scope: TxScope, runId: string, reason: string): Promise<void>;
  /** The config runs are created with (`${config.*}`). */
  config: Record<string, unknown>;
}

type Failed = Extract<StepResult, { kind: 'failed' }>;

function failed(code: string, message: string): Failed {
  return { kind: 'failed', error: { code, message }, retryable: false };
}

/**
 * Park a map or sub-workflow step, fenced by its attempt, and add its elements or its child run.
 * Returns whether the commit was accepted, or a failure for the ledger to record instead.
 */
export async function park(host: NestingHost, scope: TxScope, state: RunState, p: LoadedPlan, c: Completion): Promise<{ ok: boolean } | Failed> {
  const { tx } = scope;
  const r = c.result;
  const duration_ms = Math.max(0, Math.round(c.duration_ms));
  if (TERMINAL_RUN.has(state.status)) {
    const ok = await tx.fencedUpdate(c, c.attempt, c.worker_id, { status: 'cancelled', completed_at: tx.now, duration_ms, lease_owner: null, lease_until: null });
    if (ok) {
      state.running_steps--;
      scope.emit(state, EventType.STEP_CANCELLED, c.step_id, { attempt: c.attempt, reason: `run is ${state.status}` });
    }
    return { ok };
  }
  const spec = specOf(p, c.step_id);
  if (!spec) return failed('PLAN_MISMATCH', `step '${c.step_id}' is not in the run's plan`);
  if (r.kind === 'map') {
    const n = r.items.length;
    if (n > MAX_MAP_ELEMENTS) return failed('MAP_TOO_LARGE', `map: ${spec.map ?? ''} has ${n} elements; a map step takes at most ${MAX_MAP_ELEMENTS}`);
    if (n === 0) {
      const outputs_json = '[]';
      const ok = await tx.fencedUpdate(c, c.attempt, c.worker_id, { status: 'completed', outputs_json, error: null, completed_at: tx.now, duration_ms, lease_owner: null, lease_until: null });
      if (ok) {
        state.running_steps--;
        await host.succeeded(scope, state, p, c.step_id, outputs_json, { attempt: c.attempt, duration_ms, elements: 0 });
      }
      return { ok };
    }
    const ok = await tx.fencedUpdate(c, c.attempt, c.worker_id, { status: 'waiting', pending_deps: n, error: `${MAPPING}${n} elements`, lease_owner: null, lease_until: null, duration_ms });
    if (!ok) return { ok };
    state.running_steps--;
    const stepIndex = p.plan.workflow.steps.indexOf(spec);
    // Rows of an earlier expansion exist only if the step ran before (its run was retried).
    if (c.attempt > 1) await tx.deleteMapElements(state.id, stepIndex);
    const mc = spec.max_concurrency ?? n;
    const cols = stepAgentColumns(p.plan, spec);
    const rows: NewStepRow[] = r.items.map((item, i) => ({
      step_id: `${spec.id}[${i}]`,
      step_index: stepIndex,
      ...cols,
      status: i < mc ? 'ready' : 'pending',
      pending_deps: i < mc ? 0 : 1,
      map_index: i,
      map_item_json: JSON.stringify(item ?? null),
    }));
    // Elements are not counted in the run's steps_remaining: the waiting map step stands for them.
    await tx.insertSteps(state.id, rows);
    scope.emit(state, EventType.STEP_WAITING, c.step_id, { attempt: c.attempt, reason: `mapping ${n} elements`, elements: n, ...(spec.max_concurrency ? { max_concurrency: mc } : {}) });
    return { ok };
  }
  if (r.kind !== 'child') return { ok: false };
  const ref = spec.workflow ?? '';
  const { name, range } = parseRef(ref);
  const wf = pickRecord(await tx.workflowVersions(name), range);
  if (!wf) return failed('WORKFLOW_NOT_FOUND', `sub-workflow '${ref}' is not registered`);
  if (!wf.enabled) return failed('WORKFLOW_DISABLED', `sub-workflow ${wf.name} is disabled`);
  if (wf.manifest.inputs) {
    const problems = validateAgainst(wf.manifest.inputs, r.inputs);
    if (problems.length) return failed('INPUT_INVALID', `inputs for sub-workflow ${wf.name}@${wf.version}: ${problems.join('; ')}`);
  }
  let plan: RunPlan;
  try {
    plan = buildRunPlan(wf, await agentsFor(wf.manifest, (a) => tx.agentVersions(a)), p.plan.config);
  } catch (e) {
    return failed('WORKFLOW_NOT_RUNNABLE', `sub-workflow ${wf.name}@${wf.version}: ${errorMessage(e)}`);
  }
  const ok = await tx.fencedUpdate(c, c.attempt, c.worker_id, { status: 'waiting', error: null, lease_owner: null, lease_until: null, duration_ms });
  if (!ok) return { ok };
  state.running_steps--;
  // One child per step: the key finds a child created before (the run retried while it ran); a
  // finished one belongs to an earlier try of the step, and this attempt gets its own.
  let key = `sub:${state.id}:${c.step_id}`;
  let childId: string | undefined;
  const existing = await tx.runByIdempotencyKey(key);
  if (existing) {
    if (!TERMINAL_RUN.has((await scope.run(existing.id)).status)) childId = existing.id;
    else key = `${key}:${c.attempt}`;
  }
  childId ??= await host.insertRun(scope, wf, plan, { trigger_type: 'workflow', trigger_data: r.inputs, parent_run_id: state.id, parent_step_id: c.step_id, idempotency_key: key });
  await tx.updateStep(c, ['waiting'], { error: `${WAITING_FOR_CHILD}${childId}` });
  scope.result.created.push(childId);
  scope.emit(state, EventType.STEP_WAITING, c.step_id, { attempt: c.attempt, reason: `waiting for child run ${childId}`, child_run_id: childId, workflow: wf.name, version: wf.version });
  return { ok };
}

/** A map element completed (its row is written): count it down; the last one completes the map step. */
export async function elementCompleted(host: NestingHost, scope: TxScope, state: RunState, p: LoadedPlan, stepId: string, data: Record<string, unknown>): Promise<void> {
  const { tx } = scope;
  const el = parseElementId(stepId) as { base: string; index: number };
  scope.emit(state, EventType.STEP_COMPLETED, stepId, data);
  if (TERMINAL_RUN.has(state.status)) return;
  const spec = p.steps.get(el.base);
  if (!spec) return;
  if (spec.max_concurrency !== undefined) {
    // Element i hands its slot to element i + max_concurrency: never more than that many at once.
    const next = { run_id: state.id, step_id: `${el.base}[${el.index + spec.max_concurrency}]` };
    if (await tx.updateStep(next, ['pending'], { status: 'ready', pending_deps: 0, available_at: tx.now })) scope.madeReady.push(next);
  }
  const left = await tx.countDown({ run_id: state.id, step_id: el.base });
  if (left !== 0) return;
  const outputs_json = JSON.stringify(await tx.mapOutputs(state.id, p.plan.workflow.steps.indexOf(spec)));
  const parent = { run_id: state.id, step_id: el.base };
  if (await tx.updateStep(parent, ['waiting'], { status: 'completed', outputs_json, error: null, completed_at: tx.now })) {
    await host.succeeded(scope, state, p, el.base, outputs_json, {});
  }
}

/** A map element failed for good: its map step fails, and the elements not started are cancelled. */
export async function elementFailed(host: NestingHost, scope: TxScope, state: RunState, p: LoadedPlan, stepId: string, error: { code: string; message: string }, data: Record<string, unknown>): Promise<void> {
  const { tx } = scope;
  const el = parseElementId(stepId) as { base: string; index: number };
  scope.emit(state, EventType.STEP_FAILED, stepId, { ...data, code: error.code, error: error.message });
  if (TERMINAL_RUN.has(state.status)) return;
  const spec = p.steps.get(el.base);
  if (!spec) return;
  const message = `element ${el.index} failed: ${error.message}`;
  if (!(await tx.updateStep({ run_id: state.id, step_id: el.base }, ['waiting'], { status: 'failed', error: message, completed_at: tx.now }))) return;
  const cancelled = await tx.cancelMapElements(state.id, p.plan.workflow.steps.indexOf(spec));
  await host.failedForGood(scope, state, p, el.base, { code: error.code, message }, { element: el.index, ...(cancelled.length ? { cancelled_elements: cancelled.length } : {}) });
}

/**
 * A run reached its final state: if it is a sub-workflow, its parent's step completes with its
 * outputs (those of its final steps, by step id) or fails with its error, in this transaction.
 */
export async function childFinished(host: NestingHost, scope: TxScope, child: RunState): Promise<void> {
  const { tx } = scope;
  if (!child.parent_run_id || !child.parent_step_id) return;
  const parent = await scope.run(child.parent_run_id);
  if (TERMINAL_RUN.has(parent.status)) return;
  const p = await host.plan(scope, parent);
  const key = { run_id: parent.id, step_id: child.parent_step_id };
  if (child.status === 'completed') {
    const cp = await host.plan(scope, child);
    const outputs: Record<string, unknown> = {};
    for (const s of await tx.getSteps(child.id)) {
      if (s.map_index === undefined && s.status === 'completed' && (cp.successors.get(s.step_id) ?? []).length === 0) outputs[s.step_id] = s.outputs;
    }
    const outputs_json = JSON.stringify(outputs);
    if (await tx.updateStep(key, ['waiting'], { status: 'completed', outputs_json, error: null, completed_at: tx.now })) {
      await host.succeeded(scope, parent, p, key.step_id, outputs_json, { child_run_id: child.id });
    }
    return;
  }
  const message = `child run ${child.id} ${child.status}${child.error ? `: ${child.error}` : ''}`;
  const code = child.status === 'cancelled' ? 'CHILD_RUN_CANCELLED' : 'CHILD_RUN_FAILED';
  if (await tx.updateStep(key, ['waiting'], { status: 'failed', error: message, completed_at: tx.now })) {
    await host.failedForGood(scope, parent, p, key.step_id, { code, message }, { child_run_id: child.id });
  }
}

/**
 * A run ended (failed or cancelled): its unfinished sub-workflow runs are cancelled with it, and
 * theirs. Only a workflow with a `workflow:` step can have any: the others cost no read.
 */
export async function cancelChildren(host: NestingHost, scope: TxScope, state: RunState, workflow: { steps: ReadonlyArray<Pick<StepSpec, 'workflow'>> }): Promise<void> {
  if (!workflow.steps.some((s) => s.workflow !== undefined)) return;
  for (const id of await scope.tx.childRuns(state.id)) await host.cancel(scope, id, `parent run ${state.id} ${state.status}`);
}
