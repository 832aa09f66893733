/**
 * The OpenTelemetry SDK for Swarm's entry points (`swarm serve`, `swarm worker`, `swarm run`, …):
 * a NodeTracerProvider with a BatchSpanProcessor exporting OTLP over HTTP (binary protobuf, or JSON
 * when asked), started only when the standard `OTEL_*` environment asks for it. The SDK is loaded by dynamic import, so a command
 * run without that configuration loads none of it. The core (src/observability/tracing.ts) speaks
 * the OpenTelemetry API only.
 */
import { hostname } from 'node:os';
import type { SpanExporter } from '@opentelemetry/sdk-trace-node';
import { configureTracing } from './tracing.js';

/** The OTLP/HTTP encodings Swarm can send (OTEL_EXPORTER_OTLP_PROTOCOL's values; gRPC is not one of them). */
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

export interface StartTracingOptions {
  /**
   * How spans are encoded: `http/protobuf` (the default the OpenTelemetry specification recommends)
   * or `http/json`. `startTracing` takes it from here only; `startTracingFromEnv` (the CLI) reads
   * OTEL_EXPORTER_OTLP_TRACES_PROTOCOL / OTEL_EXPORTER_OTLP_PROTOCOL (see `otlpProtocolFromEnv`).
   */
  protocol?: OtlpProtocol;
  /**
   * The OTLP/HTTP endpoint's base URL (`http://collector:4318`; `/v1/traces` is appended unless the
   * URL already ends with it). Default: what the exporter reads from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
   * / OTEL_EXPORTER_OTLP_ENDPOINT, else `http://localhost:4318/v1/traces`.
   */
  endpoint?: string;
  /** The full OTLP/HTTP traces URL, used as it is (as OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is); wins over `endpoint`. */
  url?: string;
  /** `service.name` of the spans' resource. Default: OTEL_SERVICE_NAME, else `swarm`. */
  serviceName?: string;
  /** Record message and tool-argument content on spans (default false; see TracingOptions). */
  captureMessageContent?: boolean;
  /** How long the batch processor waits before sending what it has (ms; default OTEL_BSP_SCHEDULE_DELAY, else 5000). */
  scheduledDelayMillis?: number;
  /**
   * Register OpenTelemetry's AsyncLocalStorage context manager, so that the span active in your code
   * stays active across its awaits: a run started inside `startActiveSpan` joins that span's trace,
   * and spans your built-in agents and tool modules start nest under Swarm's without being handed
   * their parent. Default true. Swarm's own spans do not need it (it carries their contexts itself);
   * on Node 20 it puts a hook on every promise the process makes, which the CLI does not pay
   * (`startTracingFromEnv` registers none; docs/observability.md#overhead).
   */
  asyncContext?: boolean;
  /**
   * Where to say what goes wrong, instead of keeping quiet as the SDK does by default: spans that
   * could not be sent (once, until a batch gets through again), and the SDK's own warnings and
   * errors (an unknown OTEL_TRACES_SAMPLER, a bad OTEL_TRACES_SAMPLER_ARG, spans dropped from a full
   * queue), each kind once. Given, it becomes OpenTelemetry's diagnostic logger and global error
   * handler until shutdown, when the SDK's defaults are put back (a program's own are not: set them
   * again, or leave this out). The CLI passes its stderr.
   */
  warn?: (message: string) => void;
}

/** A started SDK: flush what is buffered; shut it down (flushes first, then unregisters it). */
export interface TracingHandle {
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * Start tracing in this process: register a tracer provider that exports Swarm's spans over OTLP/HTTP.
 * The sampler follows OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default: parent-based, always on).
 *
 * @example
 *   const tracing = await startTracing({ endpoint: 'http://127.0.0.1:4318' });
 *   try { await swarm.startRun('digest', {}); } finally { await tracing.shutdown(); }
 */
export async function startTracing(options: StartTracingOptions = {}): Promise<TracingHandle> {
  const protocol = options.protocol ?? 'http/protobuf';
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(protocol)) throw new Error(`startTracing: options.protocol is '${String(protocol)}'; use ${OTLP_PROTOCOLS.join(' or ')}`);
  const [{ NodeTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { defaultResource, detectResources, envDetector, resourceFromAttributes }, api, core] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    protocol === 'http/json' ? import('@opentelemetry/exporter-trace-otlp-http') : import('@opentelemetry/exporter-trace-otlp-proto'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/api'),
    import('@opentelemetry/core'),
  ]);
  const url = options.url ?? (options.endpoint ? tracesUrl(options.endpoint) : undefined);
  // Before the provider: it reads the sampler's environment, and says what it rejects there.
  const reported = options.warn ? reportTo(options.warn, api, core) : undefined;
  let provider: InstanceType<typeof NodeTracerProvider>;
  try {
    let exporter: SpanExporter = new OTLPTraceExporter(url ? { url } : {});
    if (reported) exporter = reported.exporter(exporter, url ?? 'the OTLP endpoint');
    // service.name: the option, else OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES (the env detector), else swarm.
    // The process that runs the steps (a worker's, a server's) names itself once per batch, not on every span.
    let resource = defaultResource()
      .merge(resourceFromAttributes({ 'service.name': 'swarm', 'host.name': hostname(), 'process.pid': process.pid }))
      .merge(detectResources({ detectors: [envDetector] }));
    if (options.serviceName) resource = resource.merge(resourceFromAttributes({ 'service.name': options.serviceName }));
    provider = new NodeTracerProvider({
      resource,
      spanProcessors: [new BatchSpanProcessor(exporter, { ...batchDefaults(process.env), ...(options.scheduledDelayMillis !== undefined ? { scheduledDelayMillis: options.scheduledDelayMillis } : {}) })],
    });
    // The W3C trace-context propagator, and the AsyncLocalStorage context manager unless asked not to
    // (null: none registered; the API's no-op one answers, and Swarm's spans carry their parents).
    provider.register(options.asyncContext === false ? { contextManager: null } : {});
  } catch (e) {
    // Nothing started: the diagnostic logger and error handler go too.
    reported?.stop();
    throw e;
  }
  configureTracing({ captureMessageContent: options.captureMessageContent ?? false });
  let stopped: Promise<void> | undefined;
  return {
    forceFlush: () => provider.forceFlush(),
    shutdown: () =>
      (stopped ??= provider.shutdown().finally(() => {
        reported?.stop();
        api.trace.disable();
        // Only the context manager it registered: a program's own stays.
        if (options.asyncContext !== false) api.context.disable();
        api.propagation.disable();
      })),
  };
}

/**
 * `warn` as OpenTelemetry's diagnostic logger (warnings and errors, each once) and global error
 * handler, and an exporter wrapper that reports failed exports: once, until one gets through again
 * (the batch processor's rejection of that export is then not reported a second time).
 */
function reportTo(warn: (message: string) => void, api: typeof import('@opentelemetry/api'), core: typeof import('@opentelemetry/core')): { exporter: (inner: SpanExporter, where: string) => SpanExporter; stop: () => void } {
  // Once per kind of message: numbers aside (`Dropped 12 spans …`, then `Dropped 40 spans …`), and at most 100 kinds.
  const said = new Set<string>();
  const once = (message: string): void => {
    const kind = message.replace(/\d+/g, '#');
    if (said.has(kind) || said.size >= 100) return;
    said.add(kind);
    warn(`OpenTelemetry: ${message}`);
  };
  const say = (message: string, ...args: unknown[]): void => once([message, ...args.map((a) => (a instanceof Error ? a.message : String(a)))].join(' '));
  const quiet = (): void => undefined;
  api.diag.setLogger({ error: say, warn: say, info: quiet, debug: quiet, verbose: quiet }, { logLevel: api.DiagLogLevel.WARN, suppressOverrideMessage: true });
  const exportErrors = new WeakSet<object>();
  core.setGlobalErrorHandler((e) => {
    if (typeof e === 'object' && e !== null && exportErrors.has(e)) return;
    once(e instanceof Error ? e.message : typeof e === 'string' ? e : JSON.stringify(e));
  });
  return {
    exporter: (inner, where) => {
      let failing = false;
      return {
        export: (spans, done) =>
          inner.export(spans, (result) => {
            if (result.code === core.ExportResultCode.SUCCESS) failing = false;
            else {
              if (result.error) exportErrors.add(result.error);
              if (!failing) warn(`tracing: ${spans.length} span(s) could not be sent to ${where}: ${result.error?.message ?? 'the export failed'} (told once, until spans get through again)`);
              failing = true;
            }
            done(result);
          }),
        shutdown: () => inner.shutdown(),
        forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
      };
    },
    stop: () => {
      api.diag.disable();
      core.setGlobalErrorHandler(core.loggingErrorHandler());
    },
  };
}

/**
 * Whether the standard environment asks for traces: OTEL_SDK_DISABLED=true never; else
 * OTEL_TRACES_EXPORTER, when set, must name `otlp`; else an OTLP endpoint must be set
 * (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT).
 *
 * @example
 *   tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }); // true
 */
export function tracingConfigured(env: Readonly<Record<string, string | undefined>>): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = env.OTEL_TRACES_EXPORTER?.trim();
  if (exporters) return exporters.split(',').some((e) => e.trim().toLowerCase() === 'otlp');
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

/**
 * Start tracing when `env` configures it (see `tracingConfigured`); undefined otherwise, having
 * loaded nothing. OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true records content. No context
 * manager is registered (`asyncContext: false`): in the CLI only Swarm's code makes spans, and it
 * passes their contexts itself. `warn` (default: `process.emitWarning`) hears what is wrong with
 * the configuration (an exporter other than otlp, an unknown protocol). Given, it also hears spans
 * that could not be sent and the SDK's own warnings (`StartTracingOptions.warn`: it then replaces
 * OpenTelemetry's diagnostic logger and global error handler until shutdown).
 *
 * @example
 *   const tracing = await startTracingFromEnv(process.env); // undefined unless OTEL_* asks for it
 */
export async function startTracingFromEnv(env: Readonly<Record<string, string | undefined>>, warn?: (message: string) => void): Promise<TracingHandle | undefined> {
  const say = warn ?? ((m: string): void => process.emitWarning(m));
  const exporters = env.OTEL_TRACES_EXPORTER?.trim();
  if (exporters && env.OTEL_SDK_DISABLED?.trim().toLowerCase() !== 'true') {
    const names = exporters.split(',').map((e) => e.trim().toLowerCase()).filter(Boolean);
    // `none` turns tracing off on purpose; anything else but otlp is an exporter Swarm does not have.
    if (names.some((n) => n !== 'otlp' && n !== 'none')) say(`OTEL_TRACES_EXPORTER is '${exporters}': Swarm exports otlp only${names.includes('otlp') ? '' : ', so tracing is off'}`);
  }
  if (!tracingConfigured(env)) return undefined;
  const protocol = otlpProtocolFromEnv(env, say);
  // The endpoint is read from `env` (which may not be process.env); the exporter reads the rest
  // (headers, timeout, compression) from the process's environment, as every OpenTelemetry SDK does.
  const specific = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const delay = Number(env.OTEL_BSP_SCHEDULE_DELAY);
  return startTracing({
    ...(protocol ? { protocol } : {}),
    ...(specific ? { url: specific } : base ? { endpoint: base } : {}),
    ...(env.OTEL_SERVICE_NAME?.trim() ? { serviceName: env.OTEL_SERVICE_NAME.trim() } : {}),
    ...(env.OTEL_BSP_SCHEDULE_DELAY && Number.isFinite(delay) && delay >= 0 ? { scheduledDelayMillis: delay } : {}),
    captureMessageContent: env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT?.trim().toLowerCase() === 'true',
    asyncContext: false,
    ...(warn ? { warn } : {}),
  });
}

/**
 * Swarm's batch sizes where the environment sets none: up to 2,048 spans a request (the
 * specification's default is 512) and 8,192 waiting (2,048). A worker running short steps ends
 * thousands of spans a second; fewer, larger requests cost its event loop less (bench:observability),
 * and the larger queue drops none while one is sent. OTEL_BSP_MAX_EXPORT_BATCH_SIZE and
 * OTEL_BSP_MAX_QUEUE_SIZE override them; with message content captured (spans far larger), the
 * specification's sizes apply.
 */
export function batchDefaults(env: Readonly<Record<string, string | undefined>>): { maxExportBatchSize?: number; maxQueueSize?: number } {
  const set = (name: string): boolean => Boolean(env[name]?.trim());
  if (set('OTEL_BSP_MAX_EXPORT_BATCH_SIZE') || set('OTEL_BSP_MAX_QUEUE_SIZE')) return {};
  // Spans carrying messages can be tens of kilobytes each: 2,048 of them would make a request larger than collectors take.
  if (env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT?.trim().toLowerCase() === 'true') return {};
  return { maxExportBatchSize: 2048, maxQueueSize: 8192 };
}

/** An OTLP base URL made the traces URL (`…/v1/traces`), as OTEL_EXPORTER_OTLP_ENDPOINT is. */
function tracesUrl(endpoint: string): string {
  if (/\/v1\/traces\/?$/.test(endpoint)) return endpoint;
  return `${endpoint.replace(/\/+$/, '')}/v1/traces`;
}

/**
 * The encoding the standard environment asks for: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL when set, else
 * OTEL_EXPORTER_OTLP_PROTOCOL (letter case ignored); undefined when neither is set. A value Swarm
 * does not send (`grpc`, a typo) is reported through `warn` and ignored, as the specification says
 * of unknown values: the default, `http/protobuf`, is used.
 *
 * @example
 *   otlpProtocolFromEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, console.warn); // 'http/json'
 */
export function otlpProtocolFromEnv(env: Readonly<Record<string, string | undefined>>, warn: (message: string) => void): OtlpProtocol | undefined {
  const name = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?.trim() ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  const value = raw.toLowerCase();
  if ((OTLP_PROTOCOLS as readonly string[]).includes(value)) return value as OtlpProtocol;
  const why = value === 'grpc' ? 'Swarm sends OTLP over HTTP only (a collector listens for it on port 4318, for gRPC on 4317)' : `Swarm sends ${OTLP_PROTOCOLS.join(' or ')}`;
  warn(`${name} is '${raw}': ${why}; sending http/protobuf`);
  return undefined;
}
