import { ResumeError, UserError, errorMessage } from '../core/errors.js';
import { digestJson, EventType, GENESIS_HASH } from '../core/events.js';
import { byteLength, capMessage, LIMIT_DEFAULTS, LimitExceededError } from '../core/limits.js';
import { backoffDelayMs, hasRetriesLeft, MAX_INTERRUPTIONS } from '../core/retry.js';
import { TERMINAL_RUN, TERMINAL_STEP } from '../core/states.js';
import { resolveValue, type ResolveContext } from '../core/template.js';
import { validateAgainst } from '../core/io-schema.js';
import { NO_REDACTION, type Redactor } from '../secrets/redactor.js';
import type { TriggerEvent } from '../triggers/events.js';
import { emitCustomEvent, raiseRunEvent, RUN_EVENTS, type CustomEventInput, type EmitResult, type EventTriggerDeps } from './event-triggers.js';
import { createdRunDetails, type CreatedRunDetails } from './created-run.js';
import { TxScope } from './tx-scope.js';
import { knownRunContext, noteRunTrace } from './step-trace.js';
import { recordRunSpan, type Context } from '../observability/tracing.js';
import { admitRun, lockKeyOf, readmitRun, releaseRun, releaseWhenIdle, type Admission } from './concurrency-gate.js';
import type {
  ClaimRequest,
  CommitRequest,
  CommitResult,
  Completion,
  LedgerTx,
  NewRunRow,
  NewStepRow,
  RunPlan,
  RunState,
  ClaimableRow,
  StepKey,
  TxHint,
  WorkflowRecord,
} from '../store/types.js';
import { agentsFor, buildRunPlan, type LoadedPlan, PlanCache } from './plan.js';
import { serializedPlan } from './registry-cache.js';
import { hasWaitSteps, kindAgentId, parkWait, sendSignal, wakeDue } from './waits.js';
import * as nesting from './nesting.js';

export interface LedgerOptions {
  /** Random numbers in [0, 1) for backoff jitter. */
  random: () => number;
  newRunId: () => string;
  /** `${secrets.NAME}` for `workflow` (handlers see the stored secrets its steps loaded, then SWARM_SECRET_NAME). */
  secrets: (name: string, workflow?: string) => string | undefined;
  config: Record<string, unknown>;
  /** Steps of one run that may run at once when the workflow sets no `concurrency`. */
  defaultRunConcurrency: number;
  /** The largest event data, as JSON bytes (`limits.event_payload_bytes`; default LIMIT_DEFAULTS). */
  eventPayloadBytes?: number;
  /** The largest trigger data of a run an on_success / on_error handler starts (`limits.run_input_bytes`). */
  runInputBytes?: number;
  /** The event-chain key (HMAC-SHA256), derived from the master key: see `src/secrets/master-key.ts`. */
  chainKey: Buffer;
  /** Replaces secret values in what handlers write (messages, errors, a started run's inputs). Default: none. */
  redactor?: Redactor;
}

export interface NewRunInput {
  trigger_type: string;
  trigger_data: unknown;
  parent_run_id?: string | null;
  /** A sub-workflow's run: the step of `parent_run_id` it is the run of. */
  parent_step_id?: string | null;
  /** One run per key: a second create with the same key returns the first run (see `createRunOnce`). */
  idempotency_key?: string | null;
  /** Labels kept with the run (string values). */
  metadata?: Record<string, string> | null;
  /** The run's `shared_inputs`, as JSON text (merged into its http-runtime steps' inputs; see src/executors/http/shared-inputs.ts). */
  shared_inputs_json?: string | null;
  /** The caller's trace context (tracing on): the run's span is its child. Default: the parent run's, else a new trace. */
  trace_parent?: Context;
  /** When the run was created, ms: an imported run keeps its creation time from where it ran. Default: the transaction's time. */
  created_at?: number;
}

/**
 * The run ledger: every state change of runs and steps, with its event and the scheduling it causes,
 * applied inside one store transaction. Backend-neutral: it speaks only `LedgerTx`.
 */
export class Ledger {
  readonly plans: PlanCache;

  private readonly maxEventBytes: number;

  /** What starting the runs of event triggers needs from the ledger. */
  private readonly triggers: EventTriggerDeps;

  /** What map and sub-workflow steps need from the ledger (see nesting.ts). */
  private readonly nest: nesting.NestingHost;

  constructor(private readonly options: LedgerOptions, plans = new PlanCache()) {
    this.plans = plans;
    this.maxEventBytes = options.eventPayloadBytes ?? LIMIT_DEFAULTS.event_payload_bytes;
    this.triggers = {
      insertRun: (scope, wf, plan, input) => this.insertRun(scope, wf, plan, input),
      config: options.config,
      runInputBytes: options.runInputBytes ?? LIMIT_DEFAULTS.run_input_bytes,
      maxEventBytes: this.maxEventBytes,
      chainKey: options.chainKey,
      redactor: options.redactor ?? NO_REDACTION,
    };
    this.nest = {
      plan: (scope, state) => this.plan(scope.tx, state),
      insertRun: (scope, wf, plan, input) => this.insertRun(scope, wf, plan, input),
      succeeded: (scope, state, p, stepId, outputsJson, data) => this.succeeded(scope, state, p, stepId, outputsJson, data),
      failedForGood: (scope, state, p, stepId, error, data) => this.failedForGood(scope, state, p, stepId, error, data),
      cancel: async (scope, runId, reason) => {
        const child = await scope.run(runId);
        if (!TERMINAL_RUN.has(child.status)) await this.cancelIn(scope, child, reason);
      },
      config: options.config,
    };
  }

  /** What replaces secret values before anything is stored (workers apply it to step results). */
  get redactor(): Redactor {
    return this.options.redactor ?? NO_REDACTION;
  }

  private plan(tx: LedgerTx, state: RunState): Promise<LoadedPlan> {
    return this.plans.load(state.plan_id, () => tx.getPlanById(state.plan_id));
  }

  /** Create a run: run row, step rows, RUN_CREATED, in the caller's transaction. */
  async createRun(tx: LedgerTx, wf: WorkflowRecord, plan: RunPlan, input: NewRunInput): Promise<string> {
    return (await this.createRunOnce(tx, wf, plan, input)).id;
  }

  /**
   * Create a run unless one was created under the same idempotency key: then return that one
   * (`created: false`) and write nothing. A key given for a run of another workflow is refused
   * (IDEMPOTENCY_KEY_REUSED).
   */
  async createRunOnce(tx: LedgerTx, wf: WorkflowRecord, plan: RunPlan, input: NewRunInput): Promise<{ id: string; created: boolean; details?: CreatedRunDetails }> {
    if (input.idempotency_key) {
      const existing = await tx.runByIdempotencyKey(input.idempotency_key);
      if (existing) {
        if (existing.workflow_name !== wf.name) {
          throw new UserError('IDEMPOTENCY_KEY_REUSED', `idempotency key '${input.idempotency_key}' was used for run ${existing.id} of workflow ${existing.workflow_name}, not ${wf.name}; use a new key for a new request`, {
            runId: existing.id,
            workflow: existing.workflow_name,
          });
        }
        return { id: existing.id, created: false };
      }
    }
    const scope = new TxScope(tx, this.maxEventBytes, this.options.chainKey);
    const inserted = await this.insertRunRows(scope, wf, plan, input);
    await scope.flush();
    const { row, steps, state, admission } = inserted;
    // Its place under a concurrency key, as `getRun` reports it: the slots held now, its own included.
    const concurrency = admission ? { run_id: row.id, workflow_name: row.workflow_name, key: admission.key, limit: admission.limit, state: admission.state, queued_at: row.created_at, active: admission.active + (admission.state === 'active' ? 1 : 0) } : undefined;
    return { id: row.id, created: true, details: createdRunDetails(row, steps, state, concurrency) };
  }

  private async insertRun(scope: TxScope, wf: WorkflowRecord, plan: RunPlan, input: NewRunInput): Promise<string> {
    return (await this.insertRunRows(scope, wf, plan, input)).row.id;
  }

  /** Insert a run's rows and RUN_CREATED; what was written, for the run's document as created. */
  private async insertRunRows(scope: TxScope, wf: WorkflowRecord, plan: RunPlan, input: NewRunInput): Promise<{ row: NewRunRow; steps: NewStepRow[]; state: RunState; admission: Admission | undefined }> {
    const { tx } = scope;
    const id = this.options.newRunId();
    // Over its concurrency key's limit, the run is created queued with its first steps held back.
    const admission = await admitRun(scope, plan, id, input.trigger_data);
    const held = admission?.state === 'queued';
    const steps: NewStepRow[] = plan.workflow.steps.map((s, i) => {
      // A run queued behind its concurrency key holds back its first steps.
      const status = s.deps.length === 0 && !held ? 'ready' : 'pending';
      // A sleep or wait step runs no agent: its row names its kind instead.
      if (s.kind) return { step_id: s.id, step_index: i, agent_id: kindAgentId(s.kind), agent_name: s.kind, agent_version: '', status, pending_deps: s.deps.length };
      return {
        step_id: s.id,
        step_index: i,
        ...nesting.stepAgentColumns(plan, s),
        status,
        pending_deps: s.deps.length,
      };
    });
    const maxParallel = plan.workflow.concurrency ?? this.options.defaultRunConcurrency;
    const { plan_json, plan_id } = serializedPlan(plan);
    // The run's span (tracing on only): its context is stored with the run for every step attempt to
    // join. Its parent is the creator's context taken before the transaction (or the parent run's).
    const traced = recordRunSpan(
      { runId: id, workflow: wf.name, version: wf.version, trigger: input.trigger_type, parentRunId: input.parent_run_id ?? null },
      input.trace_parent ?? (input.parent_run_id ? knownRunContext(input.parent_run_id) : undefined),
    );
    const row: NewRunRow = {
      id,
      workflow_id: wf.id,
      workflow_name: wf.name,
      workflow_version: wf.version,
      trigger_type: input.trigger_type,
      trigger_data_json: JSON.stringify(input.trigger_data ?? {}),
      plan_id,
      plan_json,
      parent_run_id: input.parent_run_id ?? null,
      parent_step_id: input.parent_step_id ?? null,
      idempotency_key: input.idempotency_key ?? null,
      metadata_json: input.metadata ? JSON.stringify(input.metadata) : null,
      ...(input.shared_inputs_json ? { shared_inputs_json: input.shared_inputs_json } : {}),
      max_parallel: maxParallel,
      steps_total: steps.length,
      created_at: input.created_at ?? tx.now,
      ...(traced ? { traceparent: traced.traceparent, tracestate: traced.tracestate ?? null } : {}),
    };
    const state: RunState = {
      id,
      plan_id,
      status: 'queued',
      steps_remaining: steps.length,
      running_steps: 0,
      max_parallel: maxParallel,
      event_seq: 0,
      event_hash: GENESIS_HASH,
      started_at: null,
      completed_at: null,
      error: null,
      error_step: null,
      parent_run_id: input.parent_run_id ?? null,
      parent_step_id: input.parent_step_id ?? null,
      workflow_name: wf.name,
      trigger_type: input.trigger_type,
      created_at: input.created_at ?? tx.now,
    };
    scope.runs.set(id, state);
    scope.emit(state, EventType.RUN_CREATED, null, {
      workflow: wf.name,
      version: wf.version,
      trigger_type: input.trigger_type,
      // The run's input as stored, bound to the chain: `runs verify` (and so export) checks it.
      input_sha256: digestJson(row.trigger_data_json),
      ...(input.parent_run_id ? { parent_run_id: input.parent_run_id } : {}),
      ...(input.parent_step_id ? { parent_step_id: input.parent_step_id } : {}),
      ready: steps.filter((s) => s.status === 'ready').map((s) => s.step_id),
      ...(admission ? { concurrency: admission } : {}),
    });
    // The row goes in with its event chain's head (RUN_CREATED's): no UPDATE of it at the flush,
    // unless something later in this transaction moves it on again.
    row.event_seq = state.event_seq;
    row.event_hash = state.event_hash;
    await tx.insertRun(row, steps);
    if (traced) noteRunTrace(id, { traceparent: traced.traceparent, tracestate: traced.tracestate ?? null, trigger_type: input.trigger_type, workflow_name: wf.name });
    scope.dirty.delete(state);
    return { row, steps, state, admission };
  }

  /**
   * What `commit(req)` will lock and read before anything else: the completions' runs, their step
   * rows and their successors' (from cached plans), the renewed steps, and the claim's candidates. A
   * networked store takes them with BEGIN, in one round trip.
   */
  commitHint(req: CommitRequest): TxHint | undefined {
    const hint: { runs?: string[]; steps?: StepKey[]; claim?: TxHint['claim']; eventTriggers?: readonly string[] } = {};
    if (req.completions.length || req.renew?.steps.length) {
      const runs = new Set<string>();
      const steps: StepKey[] = [...(req.renew?.steps ?? [])];
      for (const c of req.completions) {
        runs.add(c.run_id);
        steps.push(c);
        const p = c.plan_id ? this.plans.peek(c.plan_id) : undefined;
        for (const succ of p?.successors.get(c.step_id) ?? []) steps.push({ run_id: c.run_id, step_id: succ });
      }
      hint.runs = [...runs];
      hint.steps = steps;
      // A completion may finish its run or make it wait: the triggers of those events travel with BEGIN too.
      if (req.completions.length) hint.eventTriggers = RUN_EVENTS;
    }
    // The candidates of the claim, with BEGIN: enough for every free slot, as if the completions made
    // nothing ready (those are claimed without a query when the store holds their rows).
    if (req.claim && req.claim.max > 0) {
      const max = req.claim.max;
      hint.claim = { limit: max + Math.min(Math.max(max, 8), 32), ...(req.claim.run_ids ? { run_ids: req.claim.run_ids } : {}) };
    }
    return hint.runs || hint.claim ? hint : undefined;
  }

  /** Apply completions, renew leases and claim new steps, all in the caller's transaction. */
  async commit(tx: LedgerTx, req: CommitRequest): Promise<CommitResult> {
    const scope = new TxScope(tx, this.maxEventBytes, this.options.chainKey);
    scope.completions = req.completions;
    // Runs are locked in id order (stable within a run), so concurrent commits on a networked
    // database take their row locks in the same order and do not deadlock each other.
    const completions = [...req.completions].sort((a, b) => (a.run_id < b.run_id ? -1 : a.run_id > b.run_id ? 1 : 0));
    // On a networked store (PostgreSQL), lock and read every run and step row the completions and
    // renewals touch up front, in two statements; the ledger then works against those rows.
    // A lone completion (an idle chain, where latency matters) takes the direct path: fewer round trips.
    if (tx.prefetchRuns && tx.prefetchSteps && (tx.prefetchesCheaply || completions.length + (req.renew?.steps.length ?? 0) > 1)) {
      await tx.prefetchRuns(completions.map((c) => c.run_id));
      const keys: Array<{ run_id: string; step_id: string }> = [...(req.renew?.steps ?? [])];
      for (const c of completions) {
        keys.push(c);
        const state = await scope.run(c.run_id);
        const p = await this.plan(tx, state);
        for (const succ of p.successors.get(c.step_id) ?? []) keys.push({ run_id: c.run_id, step_id: succ });
      }
      await tx.prefetchSteps(keys);
    }
    for (const c of completions) await this.complete(scope, c);
    // A step of a failed run ended (whatever its kind): the run may have kept its concurrency slot only for it.
    for (const runId of new Set(completions.map((c) => c.run_id))) {
      const state = await scope.run(runId);
      if (state.status === 'failed') await releaseWhenIdle(scope, state, (await this.plan(tx, state)).plan);
    }
    if (req.renew) {
      const until = tx.now + req.renew.lease_ms;
      for (const s of req.renew.steps) {
        const ok = await tx.fencedUpdate(s, s.attempt, req.renew.worker_id, { lease_until: until });
        if (ok) continue;
        // Why (a rare path): its run was cancelled, or another worker holds the step (or it was reset).
        const cancelled = (scope.runs.get(s.run_id)?.status ?? (await tx.runStatus(s.run_id))) === 'cancelled';
        scope.result.lost.push({ run_id: s.run_id, step_id: s.step_id, attempt: s.attempt, ...(cancelled ? { cancelled: true as const } : {}) });
      }
    }
    if (req.claim && req.claim.max > 0) await this.claim(scope, req.claim);
    await scope.flush();
    return scope.result;
  }

  private async complete(scope: TxScope, c: Completion): Promise<void> {
    const { tx } = scope;
    const now = tx.now;
    const state = await scope.run(c.run_id);
    const p = await this.plan(tx, state);
    const spec = nesting.specOf(p, c.step_id);
    if (c.result.kind === 'map' || c.result.kind === 'child') {
      // Parked with its elements or its child run; a list or child that cannot be is a failure instead.
      const parked = await nesting.park(this.nest, scope, state, p, c);
      if (!('kind' in parked)) {
        if (!parked.ok) scope.result.refused.push(c);
        return;
      }
      c = { ...c, result: parked };
    }
    const duration_ms = Math.max(0, Math.round(c.duration_ms));
    const done = { completed_at: now, duration_ms, lease_owner: null, lease_until: null };
    const inputs_json = 'inputs' in c.result && c.result.inputs !== undefined ? JSON.stringify(c.result.inputs) : undefined;
    const r = c.result;
    let ok: boolean;
    if (r.kind === 'completed') {
      const outputs_json = JSON.stringify(r.outputs ?? {});
      ok = await tx.fencedUpdate(c, c.attempt, c.worker_id, { status: 'completed', outputs_json, inputs_json, error: null, ...done });
      if (ok) {
        state.running_steps--;
        // The inputs the attempt ran with, as stored, bound to the chain like its outputs.
        await this.succeeded(scope, state, p, c.step_id, outputs_json, { attempt: c.attempt, duration_ms, ...(inputs_json !== undefined ? { inputs_sha256: digestJson(inputs_json) } : {}), ...isolationData(c) });
      }
    } else if (r.kind === 'waiting') {
      // Paused for a human: no lease, not running; the run waits too (unless it is already over).
      const over = TERMINAL_RUN.has(state.status);
      ok = await tx.fencedUpdate(c, c.attempt, c.worker_id, over ? { status: 'cancelled', ...done } : { status: 'waiting', error: r.reason, lease_owner: null, lease_until: null, duration_ms });
      if (ok) {
        state.running_steps--;
        if (over) scope.emit(state, EventType.STEP_CANCELLED, c.step_id, { attempt: c.attempt, reason: `run is ${state.status}` });
        else {
          state.status = 'waiting';
          scope.emit(state, EventType.STEP_WAITING, c.step_id, { attempt: c.attempt, reason: r.reason });
          // A sleep or wait step parks with a registration (and may be satisfied at once); it asks no human.
          if (r.wait) await parkWait(scope, state, c, r.wait);
          else await this.raiseRunEvent(scope, state, p, 'approval.requested', { step: c.step_id, reason: r.reason });
        }
      }
    } else if (r.kind === 'released') {
      // Given back unfinished: ready for another worker, or cancelled if its run is already over.
      const over = TERMINAL_RUN.has(state.status);
      ok = await tx.fencedUpdate(c, c.attempt, c.worker_id, over ? { status: 'cancelled', ...done } : { status: 'ready', available_at: now, lease_owner: null, lease_until: null });
      if (ok) {
        state.running_steps--;
        if (over) scope.emit(state, EventType.STEP_CANCELLED, c.step_id, { attempt: c.attempt, reason: `run is ${state.status}` });
        else scope.emit(state, EventType.STEP_RELEASED, c.step_id, { attempt: c.attempt, reason: r.reason });
      }
    } else if (r.kind === 'skipped') {
      // The reason is kept where an error would be, so `runs show` and `${steps.X.error}` can tell why.
      ok = await tx.fencedUpdate(c, c.attempt, c.worker_id, { status: 'skipped', error: r.reason, ...done });
      if (ok) {
        state.running_steps--;
        const after = await this.afterFinish(scope, state, p, c.step_id);
        scope.emit(state, EventType.STEP_SKIPPED, c.step_id, { attempt: c.attempt, reason: r.reason, ...(after.ready.length ? { ready: after.ready } : {}) });
        if (after.done) await this.finishRun(scope, state, p);
      }
    } else if (r.kind === 'failed') {
      const failures = c.retry_count + 1;
      const retry = spec?.retry;
      if (r.retryable && retry && hasRetriesLeft(retry, failures) && !TERMINAL_RUN.has(state.status)) {
        const delay = backoffDelayMs(retry, failures, this.options.random());
        ok = await tx.fencedUpdate(c, c.attempt, c.worker_id, {
          status: 'ready',
          retry_count: failures,
          available_at: now + delay,
          error: r.error.message,
          inputs_json,
          lease_owner: null,
          lease_until: null,
        });
        if (ok) {
          state.running_steps--;
          scope.emit(state, EventType.STEP_RETRY_SCHEDULED, c.step_id, { attempt: c.attempt, code: r.error.code, error: r.error.message, failures, retry_in_ms: delay, ...isolationData(c) });
        }
      } else {
        ok = await tx.fencedUpdate(c, c.attempt, c.worker_id, { status: 'failed', retry_count: failures, error: r.error.message, inputs_json, ...done });
        if (ok) {
          state.running_steps--;
          await this.failedForGood(scope, state, p, c.step_id, r.error, { attempt: c.attempt, failures, ...isolationData(c) });
        }
      }
    } else {
      ok = false;
    }
    if (!ok) {
      scope.result.refused.push(c);
      return;
    }
    if (c.logs) {
      await tx.insertLog({ run_id: c.run_id, step_id: c.step_id, attempt: c.attempt, stdout: c.logs.stdout, stderr: c.logs.stderr, truncated: c.logs.truncated, at: now });
    }
  }

  /** A step's row was just written `completed`: record it, release its successors, maybe finish the run. */
  private async succeeded(scope: TxScope, state: RunState, p: LoadedPlan, stepId: string, outputsJson: string, data: Record<string, unknown>): Promise<void> {
    const event = { ...data, outputs_sha256: digestJson(outputsJson) };
    if (nesting.parseElementId(stepId)) return nesting.elementCompleted(this.nest, scope, state, p, stepId, event);
    const after = await this.afterFinish(scope, state, p, stepId);
    scope.emit(state, EventType.STEP_COMPLETED, stepId, { ...event, ...(after.ready.length ? { ready: after.ready } : {}) });
    if (after.done) await this.finishRun(scope, state, p);
  }

  /** A step's row was just written `failed` for good: its run fails, or goes on (on_error: continue). */
  private async failedForGood(scope: TxScope, state: RunState, p: LoadedPlan, stepId: string, error: { code: string; message: string }, data: Record<string, unknown>): Promise<void> {
    if (nesting.parseElementId(stepId)) return nesting.elementFailed(this.nest, scope, state, p, stepId, error, data);
    if (nesting.specOf(p, stepId)?.on_error === 'continue') {
      const after = await this.afterFinish(scope, state, p, stepId);
      scope.emit(state, EventType.STEP_FAILED, stepId, { ...data, code: error.code, error: error.message, continued: true, ...(after.ready.length ? { ready: after.ready } : {}) });
      if (after.done) await this.finishRun(scope, state, p);
    } else {
      state.steps_remaining--;
      scope.emit(state, EventType.STEP_FAILED, stepId, { ...data, code: error.code, error: error.message });
      await this.failRun(scope, state, p, stepId, error.message);
    }
  }

  /** A step reached a final state that lets its dependents go ahead. */
  private async afterFinish(scope: TxScope, state: RunState, p: LoadedPlan, stepId: string): Promise<{ ready: string[]; done: boolean }> {
    state.steps_remaining--;
    scope.dirty.add(state);
    if (TERMINAL_RUN.has(state.status)) return { ready: [], done: false };
    const succ = p.successors.get(stepId) ?? [];
    const ready = succ.length ? await scope.tx.releaseDeps(state.id, succ, scope.tx.now) : [];
    for (const step_id of ready) scope.madeReady.push({ run_id: state.id, step_id });
    return { ready, done: state.steps_remaining <= 0 };
  }

  private async finishRun(scope: TxScope, state: RunState, p: LoadedPlan): Promise<void> {
    state.status = 'completed';
    state.completed_at = scope.tx.now;
    scope.emit(state, EventType.RUN_COMPLETED, null, { duration_ms: scope.tx.now - (state.started_at ?? scope.tx.now) });
    const seq = state.event_seq;
    scope.result.finished.push({ run_id: state.id, status: 'completed' });
    await releaseRun(scope, state, p.plan);
    await this.runHandlers(scope, state, p, 'on_success');
    await this.raiseRunEvent(scope, state, p, 'run.completed', {}, seq);
    await nesting.childFinished(this.nest, scope, state);
  }

  private async failRun(scope: TxScope, state: RunState, p: LoadedPlan, stepId: string, message: string): Promise<void> {
    if (TERMINAL_RUN.has(state.status)) return;
    const cancelled = await scope.tx.cancelSteps(state.id, ['pending', 'ready', 'waiting']);
    if (cancelled.length && hasWaitSteps(p.plan.workflow)) await scope.tx.waits().cancelRunWaits(state.id);
    state.steps_remaining -= nesting.planSteps(cancelled);
    state.status = 'failed';
    state.completed_at = scope.tx.now;
    state.error = message;
    state.error_step = stepId;
    scope.emit(state, EventType.RUN_FAILED, null, { step: stepId, error: message, cancelled });
    const seq = state.event_seq;
    scope.result.finished.push({ run_id: state.id, status: 'failed' });
    await releaseWhenIdle(scope, state, p.plan);
    await this.runHandlers(scope, state, p, 'on_error', { message, step: stepId });
    await this.raiseRunEvent(scope, state, p, 'run.failed', {}, seq);
    await nesting.cancelChildren(this.nest, scope, state, p.plan.workflow);
    await nesting.childFinished(this.nest, scope, state);
  }

  /** A built-in event of a run, raised inside the transaction that made it happen (see event-triggers.ts). */
  private raiseRunEvent(scope: TxScope, state: RunState, p: LoadedPlan, name: string, extra: Pick<TriggerEvent, 'step' | 'reason'>, seq = state.event_seq): Promise<void> {
    return raiseRunEvent(this.triggers, scope, state, p.plan.workflow, name, extra, seq);
  }

  /**
   * Record a custom event and start the runs of the event triggers it matches, in the caller's
   * transaction; an id recorded before starts nothing (see event-triggers.ts).
   */
  emitEvent(tx: LedgerTx, input: CustomEventInput): Promise<EmitResult> {
    return emitCustomEvent(this.triggers, tx, input);
  }

  /**
   * Append events to a run's log, in the caller's transaction (guardrail events: budgets, breakers,
   * policies). A run that no longer exists is RUN_NOT_FOUND; a finished run still takes them.
   */
  async recordEvents(tx: LedgerTx, runId: string, events: ReadonlyArray<{ type: EventType; step_id: string | null; data: Record<string, unknown> }>): Promise<void> {
    if (events.length === 0) return;
    const scope = new TxScope(tx, this.maxEventBytes, this.options.chainKey);
    const state = await scope.run(runId);
    for (const e of events) scope.emit(state, e.type, e.step_id, e.data);
    await scope.flush();
  }

  /**
   * Send a signal to a run, in the caller's transaction: kept until a wait step of the run takes it,
   * delivered now to one that waits (see waits.ts). RUN_NOT_FOUND / RUN_FINISHED for a run that cannot take it.
   */
  async signal(tx: LedgerTx, runId: string, name: string, data: unknown): Promise<{ seq: number; delivered_to: string | null }> {
    const scope = new TxScope(tx, this.maxEventBytes, this.options.chainKey);
    const out = await sendSignal(scope, runId, name, data);
    await scope.flush();
    return out;
  }

  /**
   * on_success / on_error handlers run inside the transaction that finishes the run, so a started
   * workflow exists exactly when the run's final state does. A handler problem is logged, never thrown.
   */
  private async runHandlers(scope: TxScope, state: RunState, p: LoadedPlan, kind: 'on_success' | 'on_error', error?: { message: string; step: string }): Promise<void> {
    const handlers = p.plan.workflow[kind];
    if (handlers.length === 0) return;
    const { tx } = scope;
    const steps: NonNullable<ResolveContext['steps']> = {};
    for (const s of await tx.getSteps(state.id)) steps[s.step_id] = { outputs: s.outputs ?? {}, status: s.status, error: s.error };
    const ctx: ResolveContext = {
      trigger: await tx.getTriggerData(state.id),
      variables: p.plan.workflow.variables,
      config: p.plan.config,
      secrets: (name) => this.options.secrets(name, p.plan.workflow.name),
      steps,
      run: { id: state.id, workflow: p.plan.workflow.name, status: state.status },
      ...(error ? { error } : {}),
    };
    const redact = this.options.redactor ?? NO_REDACTION;
    for (const [i, h] of handlers.entries()) {
      const where = `${kind}[${i}]`;
      try {
        if ('notify' in h) {
          const message = redact.text(String(resolveValue(h.notify.message, ctx, where)));
          scope.emit(state, EventType.HANDLER_LOG, null, { handler: where, message });
          scope.result.messages.push({ text: message, run_id: state.id, workflow: p.plan.workflow.name });
        } else {
          const wf = await tx.latestWorkflow(h.workflow.name);
          if (!wf) throw new Error(`workflow '${h.workflow.name}' is not registered`);
          if (!wf.enabled) throw new Error(`workflow '${h.workflow.name}' is disabled`);
          const maxInput = this.options.runInputBytes ?? LIMIT_DEFAULTS.run_input_bytes;
          // A started run's trigger data is stored: a secret it references is stored as its marker.
          const inputs = redact.value(resolveValue(h.workflow.inputs ?? {}, ctx, `${where}.inputs`));
          const inputBytes = byteLength(JSON.stringify(inputs) ?? '');
          if (inputBytes > maxInput) throw new LimitExceededError(`the input for workflow ${h.workflow.name}`, 'run_input_bytes', maxInput, inputBytes);
          if (wf.manifest.inputs) {
            const problems = validateAgainst(wf.manifest.inputs, inputs);
            if (problems.length) throw new Error(`inputs for workflow ${wf.name}: ${problems.join('; ')}`);
          }
          const plan = buildRunPlan(wf, await agentsFor(wf.manifest, (n) => tx.agentVersions(n)), p.plan.config);
          const runId = await this.insertRun(scope, wf, plan, { trigger_type: 'event', trigger_data: inputs, parent_run_id: state.id });
          scope.result.created.push(runId);
          scope.emit(state, EventType.HANDLER_STARTED_RUN, null, { handler: where, workflow: wf.name, version: wf.version, run_id: runId });
        }
      } catch (e) {
        const error = capMessage(redact.text(errorMessage(e)), this.maxEventBytes);
        scope.emit(state, EventType.HANDLER_LOG, null, { handler: where, error });
        scope.result.messages.push({ text: `${where} failed: ${error}`, run_id: state.id, workflow: p.plan.workflow.name });
      }
    }
  }

  private async claim(scope: TxScope, req: ClaimRequest): Promise<void> {
    const { tx } = scope;
    const now = tx.now;
    // Sleeps and waits whose time has come become ready first (an indexed read of due registrations).
    if (req.wake_due) scope.result.woken = await wakeDue(scope);
    // First the steps this transaction's own completions made ready, when the store holds their rows
    // already (no query: a chain's next step goes to the worker that finished the one before).
    const rows: ClaimableRow[] = [];
    const scoped = req.run_ids ? new Set(req.run_ids) : undefined;
    if (tx.lockedStep) {
      for (const k of scope.madeReady) {
        const row = tx.lockedStep(k);
        if (row && row.status === 'ready' && (!scoped || scoped.has(k.run_id))) rows.push(row);
      }
    }
    if (rows.length < req.max) {
      // A few spare candidates, for steps skipped below (a run at its concurrency limit, a finished
      // run); every candidate is locked until COMMIT, so not many more than wanted.
      const want = req.max - rows.length;
      const taken = new Set(rows.map((r) => `${r.run_id}\u0000${r.step_id}`));
      for (const row of await tx.selectClaimable(want + Math.min(Math.max(want, 8), 32), req.run_ids)) if (!taken.has(`${row.run_id}\u0000${row.step_id}`)) rows.push(row);
    }
    for (const row of rows) {
      if (scope.result.claimed.length >= req.max) break;
      const state = await scope.run(row.run_id);
      const reclaimed = row.status === 'running';
      if (TERMINAL_RUN.has(state.status)) {
        // A step of a finished run (its worker died, or it was left ready): nothing is left to do for it.
        const over = { status: 'cancelled' as const, completed_at: now, lease_owner: null, lease_until: null };
        const ok = reclaimed ? await tx.fencedUpdate(row, row.attempt, row.lease_owner, over) : await tx.updateStep(row, ['ready'], over);
        if (ok) {
          if (reclaimed) state.running_steps--;
          scope.emit(state, EventType.STEP_CANCELLED, row.step_id, { attempt: row.attempt, reason: `run is ${state.status}` });
          // Its worker died while the run failed around it: the slot the run kept for it is free.
          if (reclaimed) await releaseWhenIdle(scope, state, (await this.plan(tx, state)).plan);
        }
        continue;
      }
      if (!reclaimed && state.running_steps >= state.max_parallel) continue;
      if (reclaimed && row.interruptions + 1 >= MAX_INTERRUPTIONS) {
        await this.complete(scope, {
          run_id: row.run_id,
          step_id: row.step_id,
          attempt: row.attempt,
          worker_id: row.lease_owner ?? '',
          retry_count: row.retry_count,
          duration_ms: 0,
          result: { kind: 'failed', retryable: false, error: { code: 'STEP_INTERRUPTED', message: `step was interrupted ${MAX_INTERRUPTIONS} times (its worker died or lost its lease each time)` } },
        });
        continue;
      }
      const attempt = row.attempt + 1;
      const claim = {
        status: 'running' as const,
        attempt,
        lease_owner: req.worker_id,
        lease_until: now + req.lease_ms,
        started_at: now,
        pid: null,
        ...(reclaimed ? { interruptions: row.interruptions + 1 } : {}),
      };
      const ok = reclaimed ? await tx.fencedUpdate(row, row.attempt, row.lease_owner, claim) : await tx.updateStep(row, ['ready'], claim);
      if (!ok) continue;
      if (!reclaimed) state.running_steps++;
      if (state.status === 'queued') {
        state.status = 'running';
        state.started_at ??= now;
        scope.emit(state, EventType.RUN_STARTED, null, {});
      }
      scope.emit(state, EventType.STEP_STARTED, row.step_id, { attempt, worker: req.worker_id, ...(reclaimed ? { reclaimed_from: row.lease_owner } : {}) });
      scope.result.claimed.push({ run_id: row.run_id, step_id: row.step_id, plan_id: state.plan_id, attempt, retry_count: row.retry_count, reclaimed });
      if (tx.observer && !reclaimed) scope.claimedReady(row.run_id, row.available_at ?? now);
    }
  }

  /** Cancel a run: pending, ready and running steps become cancelled; running workers notice and stop. */
  async cancelRun(tx: LedgerTx, runId: string, reason: string): Promise<string[]> {
    const scope = new TxScope(tx, this.maxEventBytes, this.options.chainKey);
    await lockKeyOf(scope, runId);
    const state = await scope.run(runId);
    if (TERMINAL_RUN.has(state.status)) {
      throw new UserError('RUN_NOT_CANCELLABLE', `run ${runId} is already ${state.status}; nothing to cancel`, { runId });
    }
    const cancelled = await this.cancelIn(scope, state, reason);
    await scope.flush();
    return cancelled;
  }

  /** Cancel a run in a transaction's scope, with its sub-workflow runs; a cancelled child fails its parent's step. */
  private async cancelIn(scope: TxScope, state: RunState, reason: string): Promise<string[]> {
    const { tx } = scope;
    const { plan } = await this.plan(tx, state);
    const cancelled = await tx.cancelSteps(state.id, ['pending', 'ready', 'running', 'waiting']);
    // A sleep or wait of the run is over too: nothing wakes it, no event or signal goes to it.
    if (cancelled.length && hasWaitSteps(plan.workflow)) await tx.waits().cancelRunWaits(state.id);
    state.steps_remaining -= nesting.planSteps(cancelled);
    state.running_steps = 0;
    state.status = 'cancelled';
    state.completed_at = tx.now;
    state.error = reason;
    scope.emit(state, EventType.RUN_CANCELLED, null, { reason, cancelled });
    await releaseRun(scope, state, plan);
    await nesting.cancelChildren(this.nest, scope, state, plan.workflow);
    await nesting.childFinished(this.nest, scope, state);
    return cancelled;
  }

  /**
   * A human decided the pending approvals of a run (one step, or all): the approvals are recorded and
   * the waiting steps become ready, to run again and act on the decision (an approved tool runs; a
   * rejected one fails its step). Returns the steps resumed.
   */
  async decide(tx: LedgerTx, runId: string, stepId: string | undefined, decision: 'approved' | 'rejected', reason: string | null, by: string | null): Promise<string[]> {
    const scope = new TxScope(tx, this.maxEventBytes, this.options.chainKey);
    const state = await scope.run(runId);
    if (TERMINAL_RUN.has(state.status)) throw new UserError('RUN_NOT_WAITING', `run ${runId} is ${state.status}; there is nothing to ${decision === 'approved' ? 'approve' : 'reject'}`, { runId });
    const steps = await tx.getSteps(runId);
    const waiting = steps.filter((s) => s.status === 'waiting' && (stepId === undefined || s.step_id === stepId));
    if (waiting.length === 0) {
      const what = stepId === undefined ? `run ${runId} has no step waiting for approval` : `step '${stepId}' of run ${runId} is not waiting for approval`;
      throw new UserError('NOTHING_TO_DECIDE', what, { runId, ...(stepId ? { stepId } : {}) });
    }
    // Only steps that are waiting now: a running step may have asked already but not paused yet.
    const decided = new Set(await tx.decideApprovals(runId, waiting.map((s) => s.step_id), decision, reason, by));
    const resumed: string[] = [];
    for (const s of waiting) {
      if (!decided.has(s.step_id)) continue;
      if (await tx.updateStep(s, ['waiting'], { status: 'ready', available_at: tx.now, error: null })) resumed.push(s.step_id);
    }
    if (resumed.length === 0) throw new UserError('NOTHING_TO_DECIDE', `run ${runId} has no pending approval${stepId ? ` for step '${stepId}'` : ''}`, { runId });
    // A map step or a sub-workflow step waits for steps, not for a human: it leaves the run running.
    const stillWaiting = steps.some((s) => s.status === 'waiting' && !resumed.includes(s.step_id) && !nesting.isParked(s));
    if (!stillWaiting && state.status === 'waiting') state.status = 'running';
    for (const id of resumed) scope.emit(state, EventType.APPROVAL_DECIDED, id, { decision, ...(reason ? { reason } : {}), ...(by ? { by } : {}) });
    await scope.flush();
    return resumed;
  }

  /**
   * Retry a failed or cancelled run: failed and cancelled steps (and skipped steps downstream of them)
   * go back to pending/ready with a fresh retry budget; completed steps are never run again.
   */
  async retryRun(tx: LedgerTx, runId: string): Promise<string[]> {
    const scope = new TxScope(tx, this.maxEventBytes, this.options.chainKey);
    const state = await scope.run(runId);
    if (state.status !== 'failed' && state.status !== 'cancelled') {
      throw new ResumeError('RUN_NOT_RETRYABLE', `run ${runId} is ${state.status}; only failed or cancelled runs can be retried`, { runId });
    }
    const p = await this.plan(tx, state);
    const steps = new Map((await tx.getSteps(runId)).map((s) => [s.step_id, s]));
    const reset = new Set<string>();
    for (const spec of p.plan.workflow.steps) {
      const s = steps.get(spec.id);
      if (!s) continue;
      if (s.status === 'failed' || s.status === 'cancelled') reset.add(spec.id);
      else if (s.status === 'skipped' && spec.deps.some((d) => reset.has(d))) reset.add(spec.id);
    }
    let open = 0;
    for (const spec of p.plan.workflow.steps) {
      const s = steps.get(spec.id);
      if (!s) continue;
      if (!reset.has(spec.id)) {
        if (!TERMINAL_STEP.has(s.status)) open++;
        continue;
      }
      const pending = spec.deps.filter((d) => reset.has(d) || !TERMINAL_STEP.has(steps.get(d)?.status ?? 'completed')).length;
      await tx.updateStep(s, ['failed', 'cancelled', 'skipped'], {
        status: pending === 0 ? 'ready' : 'pending',
        pending_deps: pending,
        retry_count: 0,
        interruptions: 0,
        error: null,
        available_at: pending === 0 ? tx.now : null,
        completed_at: null,
        duration_ms: null,
        lease_owner: null,
        lease_until: null,
      });
      open++;
    }
    state.status = 'queued';
    state.completed_at = null;
    state.error = null;
    state.error_step = null;
    state.steps_remaining = open;
    const admission = open > 0 ? await readmitRun(scope, state, p.plan) : undefined;
    scope.emit(state, EventType.RUN_RETRIED, null, { reset: [...reset], ...(admission ? { concurrency: admission } : {}) });
    if (open === 0) await this.finishRun(scope, state, p);
    await scope.flush();
    return [...reset];
  }
}

/** A process agent's isolation, in its step's final event: `memory_warning` says when the OS does not enforce memory_mb. */
function isolationData(c: Completion): Record<string, unknown> {
  const i = c.isolation;
  if (!i) return {};
  return { sandbox: i.sandbox, memory_limit: i.memory, ...(i.warning ? { memory_warning: i.warning } : {}), ...(i.network ? { network: i.network } : {}), ...(i.net_cap ? { net_cap: i.net_cap } : {}) };
}
