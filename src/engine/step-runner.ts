import { join } from 'node:path';
import { evaluate } from '../core/condition.js';
import { RUN_ENDED, StepError, errorMessage, type StoreFaultError } from '../core/errors.js';
import { validateAgainst } from '../core/io-schema.js';
import { byteLength, capMessage, formatBytes, LIMIT_DEFAULTS, type Limits } from '../core/limits.js';
import { resolveValue, type ResolveContext } from '../core/template.js';
import type { ExecutionResult, Executor } from '../executors/executor.js';
import { stepFault } from '../store/faults.js';
import { isTransient, type Store } from '../store/store.js';
import type { ClaimedStep, Completion, StepResult } from '../store/types.js';
import { NO_REDACTION, type Redactor } from '../secrets/redactor.js';
import type { PlanCache } from './plan.js';
import type { StepSpec } from '../core/manifest/workflow.js';
import { runKindStep } from './waits.js';
import { MAX_MAP_ELEMENTS } from '../core/manifest/nesting.js';
import { parseElementId } from './nesting.js';
import { runInContext, type Context } from '../observability/tracing.js';

export interface StepOutcomeInfo {
  status: string;
  outputs: unknown;
  error: string | null;
}

/**
 * Outputs of finished steps, per run, kept by the worker that saw them committed. Checkpoints never
 * change once committed, so a cached copy is always right; a miss reads the store.
 */
export class OutputCache {
  private readonly runs = new Map<string, Map<string, StepOutcomeInfo>>();
  constructor(private readonly maxRuns = 1000) {}

  get(runId: string, stepId: string): StepOutcomeInfo | undefined {
    return this.runs.get(runId)?.get(stepId);
  }

  set(runId: string, stepId: string, info: StepOutcomeInfo): void {
    let m = this.runs.get(runId);
    if (!m) {
      m = new Map();
      this.runs.set(runId, m);
      if (this.runs.size > this.maxRuns) this.runs.delete(this.runs.keys().next().value as string);
    }
    m.set(stepId, info);
  }

  forget(runId: string): void {
    this.runs.delete(runId);
  }
}

/** What the store said of attempts whose result claims their run was cancelled: asked once per attempt (the span and the worker both ask). */
const confirmed = new WeakMap<AbortController, Promise<string | undefined>>();

/**
 * Whether a finished attempt was stopped because its run was cancelled: undefined when nothing says
 * so (every ordinary attempt, with no promise made), else the reason, or undefined, once known. The
 * worker's own abort reason (RUN_ENDED) says so; a failed result coded RUN_ENDED (what a consensus
 * step's fence throws) says so only when the store confirms the run is cancelled, since an agent
 * could use that code itself.
 *
 * @example
 *   const cancelled = await runCancellation(store, step, abort, done.result); // 'its run was cancelled' | undefined
 */
export function runCancellation(store: Store, step: ClaimedStep, abort: AbortController, result: StepResult): Promise<string | undefined> | undefined {
  const reason = abort.signal.aborted ? (abort.signal.reason as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (reason?.code === RUN_ENDED) return Promise.resolve(String(reason.message));
  if (result.kind !== 'failed' || result.error.code !== RUN_ENDED) return undefined;
  let verdict = confirmed.get(abort);
  if (!verdict) {
    const message = result.error.message;
    verdict = store.getRun(step.run_id).then((run) => (run?.status === 'cancelled' ? message : undefined), () => undefined);
    confirmed.set(abort, verdict);
  }
  return verdict;
}

export interface StepRunnerDeps {
  store: Store;
  plans: PlanCache;
  outputs: OutputCache;
  executorFor: (runtimeType: string) => Executor;
  /** `${secrets.NAME}` for a step of `workflow` (the encrypted store's, then SWARM_SECRET_NAME). */
  secrets: (name: string, workflow?: string) => string | undefined;
  /**
   * Load the stored secrets a step of `workflow` may use, and teach their values to the redactor,
   * before the step's inputs resolve. Called only for plans that reference secrets.
   */
  prepareSecrets?: (workflow: string) => Promise<void>;
  /**
   * Replaces secret values in everything the attempt's completion carries to the store (inputs,
   * outputs, errors, reasons, logs). The agent itself gets the real values. Default: none.
   */
  redactor?: Redactor;
  /** Root for per-attempt work directories. */
  workRoot: string;
  onProcess?: (step: ClaimedStep, pid: number | null) => void;
  /** A disk or permission fault of the store or the work directory: the worker stops (the step is given back). */
  onFault?: (fault: StoreFaultError) => void;
  /** Sizes of inputs, outputs and error messages (default LIMIT_DEFAULTS). */
  limits?: Pick<Limits, 'step_input_bytes' | 'step_output_bytes' | 'event_payload_bytes'>;
  /** Runs a `kind: consensus` step's attempt (src/consensus/driver/); absent: such steps fail. */
  consensus?: ConsensusStepRunner;
}

/** What runs a consensus step (the driver, with its dependencies bound by src/swarm.ts). */
export type ConsensusStepRunner = (step: ClaimedStep, spec: StepSpec, ctx: ResolveContext, workerId: string, signal: AbortSignal, workflow: string, trace?: Context) => Promise<StepResult>;

/** Trigger data per run (immutable), cached. */
const triggerCache = new Map<string, unknown>();

/**
 * Run one claimed step attempt from start to finish and describe the outcome. Never throws: every
 * failure becomes a `failed` result, so the worker always has something to commit.
 */
export async function runStep(deps: StepRunnerDeps, step: ClaimedStep, workerId: string, abort: AbortController, trace?: Context): Promise<Completion> {
  const t0 = performance.now();
  const base = { run_id: step.run_id, step_id: step.step_id, attempt: step.attempt, worker_id: workerId, retry_count: step.retry_count, plan_id: step.plan_id };
  const limits = deps.limits ?? LIMIT_DEFAULTS;
  const redact = deps.redactor ?? NO_REDACTION;
  const done = (result: StepResult, exec?: ExecutionResult): Completion => {
    const logs = exec && 'logs' in exec && exec.logs ? exec.logs : undefined;
    // Secrets never reach the store: what is committed (and cached for later steps) carries markers.
    // The STEP_COMPLETED digest is computed by the ledger over these redacted outputs. Redacted first,
    // then capped, so a cut never leaves part of a secret behind.
    const r = redact.active ? redactResult(redact, result) : result;
    // The fields written out, not spread from `base`: on Node 20 each property added after a spread costs about 0.5 µs.
    return {
      run_id: base.run_id,
      step_id: base.step_id,
      attempt: base.attempt,
      worker_id: base.worker_id,
      retry_count: base.retry_count,
      plan_id: base.plan_id,
      duration_ms: performance.now() - t0,
      result:
        r.kind === 'failed'
          ? { ...r, error: { ...r.error, message: capMessage(r.error.message, limits.event_payload_bytes) } }
          : r.kind === 'waiting'
            ? { ...r, reason: capMessage(r.reason, limits.event_payload_bytes) }
            : r,
      ...(logs ? { logs: redact.active ? { ...logs, stdout: redact.text(logs.stdout), stderr: redact.text(logs.stderr) } : logs } : {}),
      ...(exec && 'isolation' in exec && exec.isolation ? { isolation: exec.isolation } : {}),
    };
  };
  const workDir = join(deps.workRoot, step.run_id, step.step_id, String(step.attempt));
  let inputs: Record<string, unknown> | undefined;
  try {
    const p = await deps.plans.load(step.plan_id, () => deps.store.getPlanById(step.plan_id));
    // A map element (`resize[3]`) runs its map step's spec on its own list element.
    const element = parseElementId(step.step_id);
    const specId = element?.base ?? step.step_id;
    const spec = p.steps.get(specId);
    const agent = p.stepAgents.get(specId);
    if (!spec || (!agent && !spec.kind && spec.workflow === undefined)) throw new StepError('PLAN_MISMATCH', `step '${step.step_id}' is not in the run's plan`, false);

    const workflow = p.plan.workflow.name;
    if (p.usesSecrets && deps.prepareSecrets) await deps.prepareSecrets(workflow);
    // Only what the step's inputs and condition reference is fetched (a miss in the caches is a read).
    const reads = p.reads.get(specId);
    const ctx: ResolveContext = {
      trigger: reads?.trigger === false ? undefined : await triggerData(deps.store, step.run_id),
      variables: p.plan.workflow.variables,
      config: p.plan.config,
      secrets: (name) => deps.secrets(name, workflow),
      steps: await upstream(deps, step.run_id, reads ? reads.steps : spec.deps),
      run: { id: step.run_id, workflow: p.plan.workflow.name, version: p.plan.workflow.version, attempt: step.attempt },
      ...(element ? { map: { item: await deps.store.getStepItem(step.run_id, step.step_id), index: element.index } } : {}),
    };

    // A map's condition and skipped inputs were decided once, by its map step.
    if (!element) {
      const cond = p.conditions.get(step.step_id);
      if (cond && !evaluate(cond, ctx)) return done({ kind: 'skipped', reason: `condition is false: ${spec.condition}` });
      const skippedDep = spec.data_deps.find((d) => ctx.steps?.[d]?.status === 'skipped');
      if (skippedDep) return done({ kind: 'skipped', reason: `its inputs use step '${skippedDep}', which was skipped` });
      // A sleep or wait step runs no agent (see waits.ts); `until:` and `match:` may read the trigger and any upstream step.
      if (spec.kind) {
        const full: ResolveContext = { ...ctx, trigger: ctx.trigger ?? (await triggerData(deps.store, step.run_id)), steps: await upstream(deps, step.run_id, spec.deps) };
        if (spec.kind === 'consensus') {
          if (!deps.consensus) throw new StepError('CONSENSUS_UNAVAILABLE', 'this worker cannot run consensus steps', false);
          return done(await deps.consensus(step, spec, full, workerId, abort.signal, workflow, trace));
        }
        return done(await runKindStep(deps.store, step, spec, full));
      }
      if (spec.map !== undefined) return done({ kind: 'map', items: mapList(spec.map, ctx, step.step_id) });
    }

    const resolved = resolveValue(spec.inputs, ctx, `steps.${step.step_id}.inputs`) as Record<string, unknown>;
    // Checked before the inputs are kept anywhere (a failed step stores its inputs).
    const inputBytes = byteLength(JSON.stringify(resolved));
    if (inputBytes > limits.step_input_bytes) {
      throw new StepError('LIMIT_EXCEEDED', `step input is ${formatBytes(inputBytes)} bytes; limits.step_input_bytes is ${formatBytes(limits.step_input_bytes)}`, false, { limit: 'step_input_bytes', size: inputBytes });
    }
    inputs = resolved;
    // A sub-workflow step: the ledger starts the child run (its inputs are checked against the child's).
    if (!agent) return done({ kind: 'child', inputs });
    const inputProblems = validateAgainst(agent.manifest.inputs, inputs);
    if (inputProblems.length) {
      throw new StepError('INPUT_INVALID', `inputs do not match agent ${agent.manifest.name}@${agent.manifest.version}: ${inputProblems.join('; ')}`, false);
    }

    // The agent's declared environment: only secrets and config (checked at registration).
    const env = agent.manifest.env ? resolveEnv(agent.manifest.env, ctx, `agent ${agent.manifest.name}@${agent.manifest.version} env`) : undefined;

    const timeoutSeconds = spec.timeout_seconds ?? agent.manifest.runtime.timeout_seconds;
    const timeoutMs = Math.round(timeoutSeconds * 1000);
    // One controller per step: the worker aborts it (cancel, lost lease, shutdown), so does the timeout.
    const timer = setTimeout(() => abort.abort(new StepError('STEP_TIMEOUT', `timed out after ${timeoutSeconds}s`, true)), timeoutMs);
    let exec: ExecutionResult;
    try {
      // The step's span made active for the executor (with a program's context manager, what it calls nests under it).
      exec = await runInContext(trace, () => deps.executorFor(agent.manifest.runtime.type).execute({
        runId: step.run_id,
        stepId: step.step_id,
        attempt: step.attempt,
        idempotencyKey: `${step.run_id}/${step.step_id}`,
        workflow,
        agent,
        inputs: resolved,
        signal: abort.signal,
        timeoutMs,
        workDir,
        ...(env ? { env } : {}),
        ...(trace ? { trace } : {}),
        ...(p.plan.workflow.budget || spec.budget ? { budget: { ...(p.plan.workflow.budget ? { workflow: p.plan.workflow.budget } : {}), ...(spec.budget ? { step: spec.budget } : {}) } } : {}),
        ...(deps.onProcess ? { onProcess: (pid: number | null) => deps.onProcess?.(step, pid) } : {}),
      }));
    } finally {
      clearTimeout(timer);
    }
    if (exec.ok === 'waiting') return done({ kind: 'waiting', reason: exec.reason });
    if (!exec.ok) return done({ kind: 'failed', error: { code: exec.error.code, message: exec.error.message }, retryable: exec.error.retryable, inputs }, exec);
    let outputJson: string | undefined;
    try {
      outputJson = JSON.stringify(exec.outputs);
    } catch (e) {
      // A circular object or a BigInt: it could never be checkpointed, so fail here, not at commit.
      return done({ kind: 'failed', error: { code: 'OUTPUT_INVALID', message: `outputs cannot be stored as JSON: ${errorMessage(e)}` }, retryable: false, inputs }, exec);
    }
    const outputBytes = outputJson === undefined ? 0 : byteLength(outputJson);
    if (outputBytes > limits.step_output_bytes) {
      // Not retried: the same agent with the same inputs is expected to write the same output again.
      const message = `step output is ${formatBytes(outputBytes)} bytes; limits.step_output_bytes is ${formatBytes(limits.step_output_bytes)}`;
      return done({ kind: 'failed', error: { code: 'LIMIT_EXCEEDED', message }, retryable: false, inputs }, exec);
    }
    const outputProblems = validateAgainst(agent.manifest.outputs, exec.outputs);
    if (outputProblems.length) {
      // A program that returns the wrong shape returns it again: retrying only repeats the failure.
      // A model's answer differs from one call to the next, so llm agents keep their retries.
      const retryable = agent.manifest.runtime.type === 'llm';
      const message = `outputs do not match agent ${agent.manifest.name}@${agent.manifest.version}: ${outputProblems.join('; ')}${retryable ? '' : ' (not retried: the agent declares these outputs)'}`;
      return done({ kind: 'failed', error: { code: 'OUTPUT_INVALID', message }, retryable, inputs }, exec);
    }
    return done({ kind: 'completed', outputs: exec.outputs, inputs }, exec);
  } catch (e) {
    // A full disk, an I/O error or a permission fault (store or work directory): the worker stops.
    const fault = e instanceof StepError ? undefined : stepFault(e, deps.workRoot, workDir, `running step '${step.step_id}'`);
    if (fault) {
      deps.onFault?.(fault);
      return done({ kind: 'released', reason: fault.message });
    }
    // The store was away while the step was being prepared: not the step's fault; give it back.
    if (!(e instanceof StepError) && isTransient(e)) return done({ kind: 'released', reason: `store unavailable: ${errorMessage(e)}` });
    const err = e instanceof StepError ? e : new StepError('STEP_ERROR', errorMessage(e), true, {}, { cause: e });
    return done({ kind: 'failed', error: { code: err.code, message: err.message }, retryable: err.retryable, ...(inputs ? { inputs } : {}) });
  }
}

function resolveEnv(env: Record<string, string>, ctx: ResolveContext, where: string): Record<string, string> {
  const only: ResolveContext = { ...(ctx.config ? { config: ctx.config } : {}), ...(ctx.secrets ? { secrets: ctx.secrets } : {}) };
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    const v = resolveValue(value, only, `${where}.${name}`);
    out[name] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}

function redactResult(redact: Redactor, r: StepResult): StepResult {
  switch (r.kind) {
    case 'completed':
      return { ...r, outputs: redact.value(r.outputs), ...(r.inputs !== undefined ? { inputs: redact.value(r.inputs) } : {}) };
    case 'failed':
      return { ...r, error: { ...r.error, message: redact.text(r.error.message) }, ...(r.inputs !== undefined ? { inputs: redact.value(r.inputs) } : {}) };
    case 'skipped':
    case 'waiting':
    case 'released':
      return { ...r, reason: redact.text(r.reason) };
    case 'map':
      return { ...r, items: r.items.map((v) => redact.value(v)) };
    case 'child':
      return { ...r, inputs: redact.value(r.inputs) };
  }
}

/** A map step's list, resolved: anything else than a list of at most MAX_MAP_ELEMENTS fails the step (not retried). */
function mapList(expr: string, ctx: ResolveContext, stepId: string): unknown[] {
  const list = resolveValue(expr, ctx, `steps.${stepId}.map`);
  if (!Array.isArray(list)) {
    const what = list === null ? 'null' : typeof list === 'object' ? 'an object' : `a ${typeof list}`;
    throw new StepError('MAP_NOT_A_LIST', `map: ${expr} is ${what}, not a list`, false);
  }
  if (list.length > MAX_MAP_ELEMENTS) {
    throw new StepError('MAP_TOO_LARGE', `map: ${expr} has ${list.length} elements; a map step takes at most ${MAX_MAP_ELEMENTS.toLocaleString('en-US')}`, false);
  }
  return list;
}

const triggerLoading = new Map<string, Promise<unknown>>();
async function triggerData(store: Store, runId: string): Promise<unknown> {
  if (triggerCache.has(runId)) return triggerCache.get(runId);
  // Single flight: concurrent misses share one read.
  let inflight = triggerLoading.get(runId);
  if (!inflight) {
    inflight = (async () => {
      const run = await store.getRun(runId);
      const data = run?.trigger_data ?? {};
      triggerCache.set(runId, data);
      if (triggerCache.size > 1000) triggerCache.delete(triggerCache.keys().next().value as string);
      return data;
    })().finally(() => triggerLoading.delete(runId));
    triggerLoading.set(runId, inflight);
  }
  return inflight;
}

const outputsLoading = new Map<string, Promise<Map<string, { status: string; outputs: unknown; error: string | null }>>>();

async function upstream(deps: StepRunnerDeps, runId: string, ids: readonly string[]): Promise<NonNullable<ResolveContext['steps']>> {
  const out: NonNullable<ResolveContext['steps']> = {};
  const missing: string[] = [];
  for (const id of ids) {
    const hit = deps.outputs.get(runId, id);
    if (hit) out[id] = { outputs: hit.outputs ?? {}, status: hit.status, error: hit.error };
    else missing.push(id);
  }
  if (missing.length) {
    const k = `${runId}|${missing.join(',')}`;
    let inflight = outputsLoading.get(k);
    if (!inflight) {
      inflight = deps.store.getStepOutputs(runId, missing).finally(() => outputsLoading.delete(k));
      outputsLoading.set(k, inflight);
    }
    for (const [id, info] of await inflight) {
      out[id] = { outputs: info.outputs ?? {}, status: info.status, error: info.error };
      deps.outputs.set(runId, id, info);
    }
  }
  return out;
}
