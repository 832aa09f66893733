/**
 * Swarm's OpenTelemetry spans, written against `@opentelemetry/api` only: the entry points (CLI,
 * server, a library caller) register an SDK, or nothing is recorded. With no SDK registered every
 * helper here returns at its first line: no span, no attribute computed, no context serialised.
 *
 * Spans (docs/observability.md#traces): `invoke_workflow {workflow}` when a run is created,
 * `step {step_id}` per step attempt (a child of the run's stored context, in whatever process runs
 * it), `invoke_agent {agent}` per `llm` agent loop, `chat {model}` (CLIENT) per model call and
 * `execute_tool {tool}` per tool call, with the OpenTelemetry GenAI attributes and Swarm's `swarm.*`.
 *
 * Swarm carries its spans' contexts explicitly (a step's context reaches its executor, the agent
 * loop, its tools, process agents' environment and outgoing requests as an argument), never through
 * the API's active context: its spans nest the same with any context manager or none. The CLI
 * registers none, because Node 20's AsyncLocalStorage puts a promise hook on every promise of the
 * process (docs/observability.md#overhead). The active context is read only where no context was
 * passed: a caller's span (a program's `startActiveSpan` around `startRun` or `run`), and the
 * helpers' fallback (`carrierIn`, `withTraceHeaders`, `traceEnvironment` without a context). What
 * Swarm calls (executors, model clients, tools) runs with Swarm's span made active, so that with a
 * program's context manager the spans of the user's code and instrumentations nest under it.
 */
import {
  context,
  createTraceState,
  isSpanContextValid,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';

/** The instrumentation scope of every Swarm span. */
export const TRACER_NAME = 'swarm';

/** The provider the API answers with while no SDK is registered (a fresh proxy has no delegate). */
const NOOP_PROVIDER: TracerProvider = new ProxyTracerProvider().getDelegate();
let tracerOf: { provider: TracerProvider; tracer: Tracer } | undefined;
let captureContent = false;
let redactContent: (text: string) => string = (t) => t;

export interface TracingOptions {
  /**
   * Record message text, system instructions, tool arguments and tool results on spans (the GenAI
   * semantic conventions' opt-in; the CLI sets it from OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT).
   * Default false: spans carry names, ids, models, token counts and timings, never content.
   */
  captureMessageContent?: boolean;
  /**
   * Applied to every piece of content before it goes on a span, e.g. a Swarm's redactor
   * (`(t) => swarm.redactor.text(t)`: the CLI sets it), so known secret values become their markers.
   */
  redact?: (text: string) => string;
}

/**
 * Settings of the spans this process records (the core reads no environment).
 *
 * @example
 *   configureTracing({ captureMessageContent: true });
 */
export function configureTracing(options: TracingOptions): void {
  if (options.captureMessageContent !== undefined) captureContent = options.captureMessageContent;
  if (options.redact) redactContent = options.redact;
}

/** Whether message and tool-argument content goes on spans. */
export function capturesContent(): boolean {
  return captureContent;
}

/** Content as it goes on a span (through the configured redaction). */
export function spanContent(text: string): string {
  return redactContent(text);
}

/**
 * True when a tracer provider (an SDK) is registered with the OpenTelemetry API. Cheap (two property
 * reads): every helper calls it first and does nothing else when it is false.
 *
 * @example
 *   if (tracingEnabled()) span.setAttribute('swarm.run.id', runId);
 */
export function tracingEnabled(): boolean {
  return providerNow() !== NOOP_PROVIDER;
}

function providerNow(): TracerProvider {
  const p = trace.getTracerProvider();
  return p instanceof ProxyTracerProvider ? p.getDelegate() : p;
}

/** The tracer of Swarm's spans (the registered provider's; a no-op one while none is). */
export function tracer(): Tracer {
  const provider = providerNow();
  if (tracerOf?.provider !== provider) tracerOf = { provider, tracer: provider.getTracer(TRACER_NAME) };
  return tracerOf.tracer;
}

// ---- W3C trace context ----

/** A span context in its W3C form (`traceparent`, and `tracestate` when there is one). */
export interface TraceCarrier {
  traceparent: string;
  tracestate?: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** `traceparent` (and `tracestate`) of a span context; undefined for an invalid one. */
export function carrierOf(sc: SpanContext): TraceCarrier | undefined {
  if (!isSpanContextValid(sc)) return undefined;
  const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, '0');
  const state = sc.traceState?.serialize();
  return { traceparent: `00-${sc.traceId}-${sc.spanId}-${flags}`, ...(state ? { tracestate: state } : {}) };
}

/**
 * The context a W3C `traceparent` (and `tracestate`) names, as the remote parent of spans started in
 * it; undefined when the header is absent or malformed (version ff, all-zero ids), as the W3C
 * specification asks: such a header is ignored, never an error.
 *
 * @example
 *   const parent = contextFromCarrier({ traceparent: req.header('traceparent') ?? '' });
 */
export function contextFromCarrier(carrier: { traceparent?: string | null; tracestate?: string | null }, base: Context = ROOT_CONTEXT): Context | undefined {
  // Lower-case hex only (W3C: HEXDIGLC); anything else is malformed, and ignored.
  const m = TRACEPARENT.exec((carrier.traceparent ?? '').trim());
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5] !== undefined)) return undefined;
  const sc: SpanContext = { traceId: m[2] as string, spanId: m[3] as string, traceFlags: parseInt(m[4] as string, 16) & 1, isRemote: true };
  if (!isSpanContextValid(sc)) return undefined;
  if (carrier.tracestate) sc.traceState = createTraceState(carrier.tracestate);
  return trace.setSpanContext(base, sc);
}

/**
 * A request's W3C trace context, read with `header` (by lower-case name): `traceparent`, and
 * `tracestate` when there is one; undefined without a `traceparent`. Checked where it is used
 * (`contextFromCarrier`): a malformed one is ignored there.
 *
 * @example
 *   const trace = carrierFromHeaders((name) => req.headers[name]);
 */
export function carrierFromHeaders(header: (name: string) => string | undefined): TraceCarrier | undefined {
  const traceparent = header('traceparent');
  if (!traceparent) return undefined;
  const tracestate = header('tracestate');
  return { traceparent, ...(tracestate ? { tracestate } : {}) };
}

/** The active context, when tracing is on (to carry a caller's trace into work done elsewhere). */
export function activeTraceContext(): Context | undefined {
  return tracingEnabled() ? context.active() : undefined;
}

/**
 * The trace and span ids of the active span (for log lines), or undefined when there is none or
 * tracing is off.
 *
 * @example
 *   const ids = currentTraceIds(); // { trace_id: '4bf9…', span_id: '00f0…' }
 */
export function currentTraceIds(): { trace_id: string; span_id: string } | undefined {
  if (!tracingEnabled()) return undefined;
  const sc = trace.getActiveSpan()?.spanContext();
  return sc && isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : undefined;
}

/**
 * `headers` with the W3C `traceparent` (and `tracestate`) of `ctx`'s span (else the active span's)
 * added, for an outgoing HTTP request (HTTP tools, HTTP executors). The same object when tracing is
 * off or there is no span; a `traceparent` the caller set is kept.
 *
 * @example
 *   await fetch(url, { headers: withTraceHeaders({ accept: 'application/json' }, toolCtx.traceContext) });
 */
export function withTraceHeaders(headers: Record<string, string>, ctx?: Context): Record<string, string> {
  if (!tracingEnabled()) return headers;
  const c = carrierIn(ctx);
  if (!c || Object.keys(headers).some((h) => h.toLowerCase() === 'traceparent')) return headers;
  return { ...headers, traceparent: c.traceparent, ...(c.tracestate ? { tracestate: c.tracestate } : {}) };
}

/** `TRACEPARENT` (and `TRACESTATE`) naming `ctx`'s span (else the active span), for a child process's environment; {} when off. */
export function traceEnvironment(ctx?: Context): Record<string, string> {
  if (!tracingEnabled()) return {};
  const c = carrierIn(ctx);
  return c ? { TRACEPARENT: c.traceparent, ...(c.tracestate ? { TRACESTATE: c.tracestate } : {}) } : {};
}

/**
 * The W3C form of `ctx`'s span (else the active span's): what a request or a message carries (an MCP
 * call's `_meta`). Undefined when tracing is off or there is no valid span.
 */
export function carrierIn(ctx?: Context): TraceCarrier | undefined {
  if (!tracingEnabled()) return undefined;
  const sc = trace.getSpan(ctx ?? context.active())?.spanContext();
  return sc ? carrierOf(sc) : undefined;
}

/**
 * Run `fn` with `ctx` as the active context, for code of the user's that Swarm calls (a built-in
 * agent, a tool module): with a context manager registered (a program's SDK), spans it starts nest
 * under Swarm's. With none (the CLI) or tracing off, `fn` is just called.
 */
export function runInContext<T>(ctx: Context | undefined, fn: () => T): T {
  return ctx ? context.with(ctx, fn) : fn();
}

// ---- spans ----

/** What a run span records. */
export interface RunSpanInfo {
  runId: string;
  workflow: string;
  version: string;
  trigger: string;
  parentRunId?: string | null;
}

/**
 * Record the `invoke_workflow {workflow}` span of a run being created, as a child of `parent` (the
 * caller's context: an HTTP request's `traceparent`, a library caller's span, the parent run's), or
 * as the root of a new trace, and return its context for the store. Never the active context: runs
 * are created inside store transactions, which a group commit may run in another caller's context. The span ends at once: a run outlives processes,
 * and no later process could end a span this one started. Every step attempt of the run, wherever it
 * runs, is a child of the returned context. Undefined when tracing is off.
 *
 * @example
 *   const carrier = recordRunSpan({ runId, workflow: 'digest', version: '1.0.0', trigger: 'manual' });
 */
export function recordRunSpan(info: RunSpanInfo, parent?: Context): TraceCarrier | undefined {
  if (!tracingEnabled()) return undefined;
  const span = tracer().startSpan(
    `invoke_workflow ${info.workflow}`,
    {
      kind: SpanKind.INTERNAL,
      attributes: {
        'gen_ai.operation.name': 'invoke_workflow',
        'gen_ai.workflow.name': info.workflow,
        'swarm.run.id': info.runId,
        'swarm.workflow.name': info.workflow,
        'swarm.workflow.version': info.version,
        'swarm.trigger.kind': info.trigger,
        ...(info.parentRunId ? { 'swarm.run.parent_id': info.parentRunId } : {}),
      },
    },
    parent ?? ROOT_CONTEXT,
  );
  span.end();
  return carrierOf(span.spanContext());
}

/**
 * Run `fn` inside a new span, a child of `parent`, ending it when `fn` settles: an error thrown sets
 * the span's status and `error.type`. `fn` gets the span and its context, the parent of what it
 * starts in turn (passed on explicitly: the span is not made active). With tracing off, `fn` runs
 * with neither.
 */
export async function inSpan<T>(
  name: string,
  options: { kind?: SpanKind; attributes?: () => Attributes; parent: Context | undefined },
  fn: (span: Span | undefined, ctx: Context | undefined) => Promise<T>,
): Promise<T> {
  if (!tracingEnabled()) return fn(undefined, undefined);
  const parent = options.parent ?? ROOT_CONTEXT;
  const span = tracer().startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, ...(options.attributes ? { attributes: options.attributes() } : {}) }, parent);
  try {
    return await fn(span, trace.setSpan(parent, span));
  } catch (e) {
    failSpan(span, e);
    throw e;
  } finally {
    span.end();
  }
}

/** Mark a span failed: status ERROR with the message, `error.type` the error's code or class. */
export function failSpan(span: Span, e: unknown, type?: string): void {
  const code = (e as { code?: unknown } | null)?.code;
  span.setAttribute('error.type', type ?? (typeof code === 'string' ? code : ((e as Error | null)?.name ?? 'Error')));
  // Through the redaction: an error may quote a secret (a tool's failure, a provider's answer).
  span.setStatus({ code: SpanStatusCode.ERROR, message: redactContent(e instanceof Error ? e.message : String(e)) });
}

/** Attributes on `ctx`'s span (nothing when tracing is off or it has none). */
export function setSpanAttributes(ctx: Context | undefined, attributes: () => Attributes): void {
  if (!ctx || !tracingEnabled()) return;
  const span = trace.getSpan(ctx);
  if (span?.isRecording()) span.setAttributes(attributes());
}

/** An event on `ctx`'s span (a handoff, an approval asked for or decided). */
export function addSpanEvent(ctx: Context | undefined, name: string, attributes: () => Attributes): void {
  if (!ctx || !tracingEnabled()) return;
  const span = trace.getSpan(ctx);
  if (span?.isRecording()) span.addEvent(name, attributes());
}

export { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Context };
