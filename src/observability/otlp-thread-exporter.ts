/**
 * A span exporter that runs OpenTelemetry's own OTLP/HTTP exporter in a worker thread, so that the
 * encoding of each batch (OTLP JSON) and its HTTP request cost the event loop that runs steps
 * nothing: the main thread copies each span's fields into a plain array and posts the batch; the
 * worker rebuilds what the exporter reads and calls `OTLPTraceExporter.export` with it. What goes on
 * the wire is what the exporter sends in the main thread (a test compares the two byte for byte).
 *
 * The worker reads the same `OTEL_EXPORTER_OTLP_*` environment (headers, timeout, compression) as an
 * exporter in the main thread would. It is unreferenced while idle, so it never keeps a process
 * alive, and referenced while an export, a flush or the shutdown is in flight, so that these finish
 * before the process exits. A worker that dies (it should not) fails the export in flight; the next
 * export starts a new one.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

/** The exporter's configuration, as `OTLPTraceExporter` takes it (only what can cross threads). */
export interface ThreadExporterConfig {
  url?: string;
  /** How long an export may take, retries included (ms; default OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, else 10,000). */
  timeoutMillis?: number;
}

/**
 * A span as it crosses to the worker: plain values only, the trace states serialised (the span
 * context's method is rebuilt on the other side). A batch crosses as JSON in UTF-8, its buffer
 * transferred rather than copied: V8 writes JSON about twice as fast as the structured clone that
 * `postMessage` would make of the same arrays (about 1 µs a span against 2–3), and posting the JSON
 * as a string still cost a copy of some 400 bytes a span through the serialiser. JSON turns `undefined` in
 * an array into `null` (the worker reads both alike) and a non-finite number (NaN, ±Infinity) into
 * `null`: such an attribute arrives empty, where the exporter would have written a null double.
 */
type WireSpan = [
  traceId: string,
  spanId: string,
  traceFlags: number,
  traceState: string | undefined,
  parentSpanId: string | undefined,
  parentIsRemote: boolean | undefined,
  name: string,
  kind: number,
  startTime: readonly [number, number],
  endTime: readonly [number, number],
  attributes: unknown,
  droppedAttributesCount: number,
  events: unknown,
  droppedEventsCount: number,
  status: unknown,
  links: unknown[],
  droppedLinksCount: number,
  scope: number,
  resource: number,
];

interface WireScope {
  name: string;
  version?: string;
  schemaUrl?: string;
  attributes?: unknown;
  droppedAttributesCount?: number;
}

interface WireResource {
  attributes: unknown;
  schemaUrl?: string;
}

type ToWorker =
  | { type: 'export'; id: number; resources?: WireResource[]; scopes?: WireScope[]; spans: Uint8Array }
  | { type: 'flush' | 'shutdown'; id: number };

type FromWorker = { id: number; code: number; error?: string };

/**
 * The worker's program, evaluated as it is (no build step, in any setting). It loads everything by
 * dynamic import, which works whether Node evaluates it as CommonJS or as a module (a process started
 * with `--input-type=module` passes that on to its workers), and the exporter from the file this
 * module resolved, wherever Swarm is installed. Messages posted before it listens wait in its port.
 */
const WORKER_SOURCE = `(async () => {
const { parentPort, workerData } = await import('node:worker_threads');
const { OTLPTraceExporter } = await import(workerData.exporterUrl);
const exporter = new OTLPTraceExporter(workerData.config);
const scopes = [];
const resources = [];
const utf8 = new TextDecoder();
const state = (s) => (s == null ? undefined : { serialize: () => s });
function spanOf(x) {
  const context = { traceId: x[0], spanId: x[1], traceFlags: x[2], traceState: state(x[3]) };
  return {
    spanContext: () => context,
    parentSpanContext: x[4] == null ? undefined : { traceId: x[0], spanId: x[4], traceFlags: x[2], isRemote: x[5] == null ? undefined : x[5] },
    name: x[6], kind: x[7], startTime: x[8], endTime: x[9],
    attributes: x[10], droppedAttributesCount: x[11], events: x[12], droppedEventsCount: x[13], status: x[14],
    links: x[15].map((l) => ({ ...l, context: { ...l.context, traceState: state(l.context.traceState) } })),
    droppedLinksCount: x[16], instrumentationScope: scopes[x[17]], resource: resources[x[18]],
  };
}
const reply = (id) => [() => parentPort.postMessage({ id, code: 0 }), (e) => parentPort.postMessage({ id, code: 1, error: String((e && e.message) || e) })];
parentPort.on('message', (m) => {
  if (m.type === 'export') {
    if (m.resources) resources.push(...m.resources);
    if (m.scopes) scopes.push(...m.scopes);
    exporter.export(JSON.parse(utf8.decode(m.spans)).map(spanOf), (r) => parentPort.postMessage({ id: m.id, code: r.code, error: r.error ? String(r.error.message || r.error) : undefined }));
  } else if (m.type === 'flush') exporter.forceFlush().then(...reply(m.id));
  else if (m.type === 'shutdown') exporter.shutdown().then(...reply(m.id));
});
})();
`;

/**
 * `OTLPTraceExporter` (OTLP/HTTP, JSON) in a worker thread.
 *
 * @example
 *   new BatchSpanProcessor(new ThreadOtlpTraceExporter({ url: 'http://127.0.0.1:4318/v1/traces' }));
 */
export class ThreadOtlpTraceExporter implements SpanExporter {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, (m: FromWorker) => void>();
  /** What this worker has been sent: the resources (by identity) and the scopes, each by its index there. */
  private resourceIndex = new WeakMap<object, number>();
  private resourceCount = 0;
  private readonly scopeIndex = new Map<string, number>();
  private stopped = false;

  constructor(private readonly config: ThreadExporterConfig = {}) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.stopped) {
      resultCallback({ code: 1, error: new Error('the exporter is shut down') });
      return;
    }
    const worker = this.workerNow();
    let resources: WireResource[] | undefined;
    let scopes: WireScope[] | undefined;
    const wire = new Array<WireSpan>(spans.length);
    for (let i = 0; i < spans.length; i++) {
      const s = spans[i] as ReadableSpan;
      // A provider has one resource: it and each scope cross once, then go by their index.
      let resource = this.resourceIndex.get(s.resource);
      if (resource === undefined) {
        this.resourceIndex.set(s.resource, (resource = this.resourceCount++));
        (resources ??= []).push({ attributes: s.resource.attributes, ...(s.resource.schemaUrl ? { schemaUrl: s.resource.schemaUrl } : {}) });
      }
      const sc = s.instrumentationScope;
      const key = `${sc.name}@${sc.version ?? ''}:${sc.schemaUrl ?? ''}`;
      let scope = this.scopeIndex.get(key);
      if (scope === undefined) {
        this.scopeIndex.set(key, (scope = this.scopeIndex.size));
        (scopes ??= []).push({ name: sc.name, ...(sc.version !== undefined ? { version: sc.version } : {}), ...(sc.schemaUrl !== undefined ? { schemaUrl: sc.schemaUrl } : {}) });
      }
      const c = s.spanContext();
      const p = s.parentSpanContext;
      wire[i] = [
        c.traceId,
        c.spanId,
        c.traceFlags,
        c.traceState?.serialize(),
        p?.spanId,
        p?.isRemote,
        s.name,
        s.kind,
        s.startTime,
        s.endTime,
        s.attributes,
        s.droppedAttributesCount,
        s.events,
        s.droppedEventsCount,
        s.status,
        s.links.length === 0 ? [] : s.links.map((l) => ({ ...l, context: { ...l.context, traceState: l.context.traceState?.serialize() } })),
        s.droppedLinksCount,
        scope,
        resource,
      ];
    }
    const json = Buffer.from(JSON.stringify(wire), 'utf8');
    this.call(worker, { type: 'export', id: 0, spans: json, ...(resources ? { resources } : {}), ...(scopes ? { scopes } : {}) }, (m) =>
      resultCallback(m.code === 0 ? { code: 0 } : { code: 1, error: new Error(m.error ?? 'span export failed') }),
    );
  }

  forceFlush(): Promise<void> {
    return this.worker ? this.request(this.worker, 'flush') : Promise.resolve();
  }

  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const worker = this.worker;
    if (!worker) return;
    try {
      await this.request(worker, 'shutdown');
    } finally {
      this.worker = undefined;
      await worker.terminate();
    }
  }

  private request(worker: Worker, type: 'flush' | 'shutdown'): Promise<void> {
    return new Promise((resolve, reject) => this.call(worker, { type, id: 0 }, (m) => (m.code === 0 ? resolve() : reject(new Error(m.error ?? `${type} failed`)))));
  }

  private call(worker: Worker, message: ToWorker, done: (m: FromWorker) => void): void {
    const id = ++this.nextId;
    this.pending.set(id, done);
    if (this.pending.size === 1) worker.ref();
    // An export's bytes are moved, not copied, when they have a buffer of their own (Buffer.from
    // puts short strings, under 4 KiB, in its shared pool, which must not be moved: those are copied).
    const own = message.type === 'export' && message.spans.byteOffset === 0 && message.spans.buffer.byteLength === message.spans.byteLength;
    worker.postMessage({ ...message, id }, own ? [message.spans.buffer as ArrayBuffer] : []);
  }

  private settle(m: FromWorker): void {
    const done = this.pending.get(m.id);
    if (!done) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) this.worker?.unref();
    done(m);
  }

  private workerNow(): Worker {
    if (this.worker) return this.worker;
    const exporterUrl = pathToFileURL(createRequire(import.meta.url).resolve('@opentelemetry/exporter-trace-otlp-http')).href;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { exporterUrl, config: this.config } });
    worker.unref();
    worker.on('message', (m: FromWorker) => this.settle(m));
    const lost = (why: string): void => {
      if (this.worker !== worker) return;
      // What was in flight fails; the next export starts a new worker (and sends it the resource and scopes again).
      this.worker = undefined;
      this.resourceIndex = new WeakMap();
      this.resourceCount = 0;
      this.scopeIndex.clear();
      for (const id of [...this.pending.keys()]) this.settle({ id, code: 1, error: `the export thread ${why}` });
    };
    worker.on('error', (e) => lost(`failed: ${e.message}`));
    worker.on('exit', (code) => lost(`exited with code ${code}`));
    this.worker = worker;
    return worker;
  }
}
