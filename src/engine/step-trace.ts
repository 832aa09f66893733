/**
 * A step attempt's span, `step {step_id}`: a child of its run's stored trace context (migration 15),
 * in whatever process claims the attempt: the one that created the run, another worker, a resumed
 * run after a SIGKILL, an approval continued the next day. With tracing off, `runStepTraced` is
 * `runStep` and reads nothing.
 */
import { errorMessage } from '../core/errors.js';
import type { Store } from '../store/store.js';
import type { ClaimedStep, Completion, RunTraceRecord } from '../store/types.js';
import type { AgentManifest } from '../core/manifest/agent.js';
import { contextFromCarrier, failSpan, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, tracer as stepTracer, tracingEnabled, type Attributes, type Context } from '../observability/tracing.js';
import { parseElementId } from './nesting.js';
import { runCancellation, runStep, type StepRunnerDeps } from './step-runner.js';

/** Runs' trace records, per process (immutable once the run exists). */
const runTraces = new Map<string, RunTraceRecord | null>();
const loading = new Map<string, Promise<RunTraceRecord | null>>();
const MAX_CACHED_RUNS = 1000;

/** A run's trace record, read once per process (single flight). */
async function runTrace(store: Store, runId: string): Promise<RunTraceRecord | null> {
  const hit = runTraces.get(runId);
  if (hit !== undefined) return hit;
  let inflight = loading.get(runId);
  if (!inflight) {
    inflight = store
      .getRunTrace(runId)
      .then((t) => {
        remember(runId, t ?? null);
        return t ?? null;
      })
      .finally(() => loading.delete(runId));
    loading.set(runId, inflight);
  }
  return inflight;
}

/** The parent context of a run's step spans, parsed once per trace record (its `traceparent` never changes). */
const parents = new WeakMap<RunTraceRecord, Context>();

function parentOf(run: RunTraceRecord | null): Context {
  if (!run?.traceparent) return ROOT_CONTEXT;
  let parent = parents.get(run);
  if (!parent) parents.set(run, (parent = contextFromCarrier(run) ?? ROOT_CONTEXT));
  return parent;
}

function remember(runId: string, t: RunTraceRecord | null): void {
  runTraces.set(runId, t);
  if (runTraces.size > MAX_CACHED_RUNS) runTraces.delete(runTraces.keys().next().value as string);
}

/**
 * The stored trace context of a run this process has seen (created, or ran a step of), for runs it
 * starts in a commit (a sub-workflow's run, a run its events trigger): they join that run's trace.
 * Undefined when not known here (the new run then starts a trace of its own) or tracing is off.
 */
export function knownRunContext(runId: string): Context | undefined {
  if (!tracingEnabled()) return undefined;
  const t = runTraces.get(runId);
  return t?.traceparent ? contextFromCarrier(t) : undefined;
}

/**
 * The trace id of a run this process has seen, for log lines written after a commit (outside any
 * span): a step's line then names the trace its span is in. Undefined when unknown or tracing is off.
 */
export function knownRunTraceId(runId: string): string | undefined {
  const tp = runTraces.get(runId)?.traceparent;
  // traceparent: version "-" trace id (32 hex) "-" parent id "-" flags
  return tp ? tp.slice(3, 35) : undefined;
}

/** Note the trace context of a run this process just created (its steps need no read of it). */
export function noteRunTrace(runId: string, t: RunTraceRecord): void {
  if (tracingEnabled()) remember(runId, t);
}

/**
 * `runStep` inside the attempt's span. The span is parented on the run's stored context; a run
 * created while tracing was off has none, and each of its attempts starts a trace of its own.
 *
 * @example
 *   const completion = await runStepTraced(deps, claimed, worker.id, abort);
 */
export async function runStepTraced(deps: StepRunnerDeps, step: ClaimedStep, workerId: string, abort: AbortController): Promise<Completion> {
  if (!tracingEnabled()) return runStep(deps, step, workerId, abort);
  let run: RunTraceRecord | null = null;
  let agent: string | undefined;
  try {
    // The cached run and plan without an await; read when this process has not seen them yet.
    run = runTraces.get(step.run_id) ?? (await runTrace(deps.store, step.run_id));
    const p = deps.plans.peek(step.plan_id) ?? (await deps.plans.load(step.plan_id, () => deps.store.getPlanById(step.plan_id)));
    const a = p.stepAgents.get(parseElementId(step.step_id)?.base ?? step.step_id)?.manifest;
    if (a) agent = agentLabel(a);
  } catch {
    // Tracing never fails a step: runStep reads the same things and reports what is wrong.
  }
  // Not the worker's own context: a run without a stored context (created with tracing off) gets a
  // trace per attempt rather than joining whatever span happened to start the worker.
  const parent = parentOf(run);
  // The run's workflow and trigger are on its span, this span's parent, and the process that ran it
  // on the resource (host.name, process.pid): not repeated on every step's span.
  const attributes: Attributes = { 'swarm.run.id': step.run_id, 'swarm.step.id': step.step_id, 'swarm.step.attempt': step.attempt };
  if (step.reclaimed) attributes['swarm.step.reclaimed'] = true;
  if (agent) attributes['swarm.agent'] = agent;
  // Started and ended here rather than through inSpan: one async frame less on every step.
  const span = stepTracer().startSpan(`step ${step.step_id}`, { kind: SpanKind.INTERNAL, attributes }, parent);
  try {
    const done = await runStep(deps, step, workerId, abort, trace.setSpan(parent, span));
    const r = done.result;
    // Its run was cancelled while it ran (the worker stopped it, or a consensus step's fence found out): not a failure.
    const asked = runCancellation(deps.store, step, abort, r);
    const cancelled = asked && (await asked);
    if (cancelled !== undefined) {
      span.setAttributes({ 'swarm.step.status': 'cancelled', 'swarm.step.reason': cancelled });
      return done;
    }
    span.setAttribute('swarm.step.status', r.kind);
    if (r.kind === 'failed') {
      span.setAttributes({ 'error.type': r.error.code, 'swarm.step.retryable': r.retryable });
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(r.error.message) });
    } else if (r.kind === 'waiting' || r.kind === 'released' || r.kind === 'skipped') {
      span.setAttribute('swarm.step.reason', r.reason);
    }
    return done;
  } catch (e) {
    failSpan(span, e);
    throw e;
  } finally {
    span.end();
  }
}

/** `name@version` of an agent manifest, made once per manifest (plans keep theirs). */
const agentLabels = new WeakMap<AgentManifest, string>();
function agentLabel(m: AgentManifest): string {
  let label = agentLabels.get(m);
  if (label === undefined) agentLabels.set(m, (label = `${m.name}@${m.version}`));
  return label;
}
