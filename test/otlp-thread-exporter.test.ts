/**
 * The OTLP exporter that runs in a worker thread (src/observability/otlp-thread-exporter.ts) sends
 * what OpenTelemetry's exporter sends in the main thread, byte for byte, for spans of every shape
 * (attribute types, events, links with trace state, a remote parent, error status, kinds, two
 * instrumentation scopes, two resources); it reports a receiver that cannot be reached as a failed
 * export; a worker that dies fails the export in flight and the next export starts a new one; and it
 * never keeps a process alive, yet finishes an export in flight before the process exits.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import { createTraceState, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type SpanContext } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ThreadOtlpTraceExporter } from '../src/observability/otlp-thread-exporter.js';

let server: Server;
let url: string;
const bodies: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Spans of every shape the exporters must carry, recorded by two providers (two resources). */
function sampleSpans(): ReadableSpan[] {
  const out: ReadableSpan[] = [];
  for (const service of ['one', 'two']) {
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': service, 'deployment.environment': 'test', 'host.cpus': 2 }), spanProcessors: [new SimpleSpanProcessor(memory)] });
    const swarm = provider.getTracer('swarm', '1.2.3');
    const other = provider.getTracer('other', undefined, { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' });
    const remote: SpanContext = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, isRemote: true, traceState: createTraceState('vendor=abc,other=1') };
    const root = swarm.startSpan(`invoke_workflow ${service}`, { kind: SpanKind.INTERNAL, attributes: { 'swarm.run.id': 'r1', 'gen_ai.operation.name': 'invoke_workflow' } }, trace.setSpanContext(ROOT_CONTEXT, remote));
    root.end();
    const step = swarm.startSpan('step s1', { attributes: { 'swarm.step.attempt': 2, ratio: 0.25, ok: true, tags: ['a', 'b'], nums: [1, 2, 3], flags: [true, false], sparse: ['a', null, 'b', undefined] } }, trace.setSpan(ROOT_CONTEXT, root));
    step.addEvent('handoff', { 'swarm.handoff.from': 'a', 'swarm.handoff.to': 'b' });
    step.addEvent('plain');
    step.setStatus({ code: SpanStatusCode.ERROR, message: 'it failed: "quoted" and ünïcode' });
    step.setAttribute('error.type', 'STEP_FAILED');
    step.end();
    const chat = other.startSpan('chat gpt-4o-mini', { kind: SpanKind.CLIENT, links: [{ context: remote, attributes: { why: 'caused by' } }, { context: root.spanContext() }] }, trace.setSpan(ROOT_CONTEXT, step));
    chat.setStatus({ code: SpanStatusCode.OK });
    chat.end();
    for (const kind of [SpanKind.SERVER, SpanKind.PRODUCER, SpanKind.CONSUMER]) swarm.startSpan(`kind ${kind}`, { kind, root: true }).end();
    out.push(...memory.getFinishedSpans());
  }
  return out;
}

function exportWith(exporter: SpanExporter, spans: ReadableSpan[]): Promise<ExportResult> {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

describe('ThreadOtlpTraceExporter', () => {
  it('sends the bytes the main-thread exporter sends, for spans of every shape', async () => {
    const spans = sampleSpans();
    expect(spans.length).toBe(12);
    const direct = new OTLPTraceExporter({ url });
    const threaded = new ThreadOtlpTraceExporter({ url });
    try {
      bodies.length = 0;
      expect((await exportWith(direct, spans)).code).toBe(ExportResultCode.SUCCESS);
      expect((await exportWith(threaded, spans)).code).toBe(ExportResultCode.SUCCESS);
      // A second batch goes by the resource and scope indexes the worker already has.
      expect((await exportWith(direct, spans.slice(3, 7))).code).toBe(ExportResultCode.SUCCESS);
      expect((await exportWith(threaded, spans.slice(3, 7))).code).toBe(ExportResultCode.SUCCESS);
      expect(bodies).toHaveLength(4);
      expect(bodies[1]).toBe(bodies[0]);
      expect(bodies[3]).toBe(bodies[2]);
      // And it is a real export: two resources, each with two scopes, the remote parent and the links.
      const doc = JSON.parse(bodies[1] as string) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ name: string; parentSpanId?: string; links?: Array<{ traceState?: string }>; flags: number }> }> }> };
      expect(doc.resourceSpans).toHaveLength(2);
      const all = doc.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
      expect(all.map((s) => s.name)).toContain('chat gpt-4o-mini');
      expect(all.find((s) => s.name === 'invoke_workflow one')?.parentSpanId).toBe('00f067aa0ba902b7');
      expect(all.find((s) => s.name === 'chat gpt-4o-mini')?.links?.[0]?.traceState).toBe('vendor=abc,other=1');
    } finally {
      await direct.shutdown();
      await threaded.shutdown();
    }
  });

  it('reports an unreachable receiver as a failed export, with the reason', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const threaded = new ThreadOtlpTraceExporter({ url: `http://127.0.0.1:${port}/v1/traces`, timeoutMillis: 1000 });
    try {
      const r = await exportWith(threaded, sampleSpans().slice(0, 2));
      expect(r.code).toBe(ExportResultCode.FAILED);
      expect(r.error?.message).toMatch(/ECONNREFUSED/);
    } finally {
      await threaded.shutdown();
    }
  });

  it('fails the export in flight when its worker dies, and starts a new worker for the next one', async () => {
    // A receiver that never answers its first request: that export is surely in flight when its
    // worker dies. It answers the ones after.
    const got: string[] = [];
    const receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        got.push(Buffer.concat(chunks).toString('utf8'));
        if (got.length > 1) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const threaded = new ThreadOtlpTraceExporter({ url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces` });
    try {
      const spans = sampleSpans();
      const inFlight = exportWith(threaded, spans.slice(0, 2));
      while (got.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      const worker = (threaded as unknown as { worker: Worker }).worker;
      expect(worker).toBeInstanceOf(Worker);
      await worker.terminate();
      const lost = await inFlight;
      expect(lost.code).toBe(ExportResultCode.FAILED);
      expect(lost.error?.message).toMatch(/the export thread exited/);
      expect((await exportWith(threaded, spans.slice(4, 6))).code).toBe(ExportResultCode.SUCCESS);
      expect((threaded as unknown as { worker: Worker }).worker).not.toBe(worker);
      // The new worker was sent the resource and the scopes again: the body names them.
      expect(got).toHaveLength(2);
      expect(got[1]).toContain('"service.name"');
      expect(got[1]).toContain('"name":"swarm"');
    } finally {
      await threaded.shutdown();
      receiver.closeAllConnections();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });

  it('never keeps a process alive, and finishes an export in flight before the process exits', async () => {
    const received = bodies.length;
    const script = `
      const { ThreadOtlpTraceExporter } = await import(${JSON.stringify(new URL('../src/observability/otlp-thread-exporter.ts', import.meta.url).href)});
      const idle = new ThreadOtlpTraceExporter({ url: ${JSON.stringify(url)} });
      idle.forceFlush();
      const busy = new ThreadOtlpTraceExporter({ url: ${JSON.stringify(url)} });
      const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
      const memory = new InMemorySpanExporter();
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] }).getTracer('swarm').startSpan('last words').end();
      // Exported, not awaited, and nothing else to do: the process must still send it, then exit.
      busy.export(memory.getFinishedSpans(), (r) => console.log('export code', r.code, r.error?.message ?? ''));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the process did not exit within 20 s: ${out}`));
      }, 20_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code, out).toBe(0);
    expect(out).toContain('export code 0');
    expect(bodies.length).toBe(received + 1);
    expect(bodies.at(-1)).toContain('last words');
  });
});
