/**
 * A real OTLP/HTTP receiver for tests: a node:http server that accepts `POST /v1/traces` with binary
 * protobuf bodies (`http/protobuf`, Swarm's default) or JSON ones (`http/json`), decodes them, and
 * keeps every span it receives and the content type of each export. Any other path answers 200 and
 * records the request's headers (an HTTP tool's endpoint, say).
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeOtlpTraces, type OtlpAttr, type OtlpTraces, type OtlpValue } from '../../src/testing/otlp-traces.js';

/** A received span, flattened: ids in hex, attributes as plain values. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, unknown>;
  events: Array<{ name: string; attributes: Record<string, unknown> }>;
  /** 0 unset, 1 ok, 2 error. */
  status: number;
  /** The status message ('' when none). */
  statusMessage: string;
  service: string;
  /** The attributes of the resource the span came with (`service.name`, `host.name`, `process.pid`, …). */
  resource: Record<string, unknown>;
}

export interface OtlpReceiver {
  /** The base URL (`http://127.0.0.1:port`), for OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  spans: ReceivedSpan[];
  /** The content type of each export received, in order (`application/x-protobuf`, `application/json`). */
  exports: string[];
  /** Why each export that could not be decoded could not (it was answered 400). */
  undecodable: string[];
  /** Requests to other paths: their path and headers. */
  requests: Array<{ path: string; headers: IncomingHttpHeaders }>;
  /** Wait until `check` finds what it wants among the spans received (liveness bound `timeoutMs`). */
  waitFor<T>(what: string, check: (spans: ReceivedSpan[]) => T | undefined, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}


function value(v: OtlpValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(value);
  return undefined;
}

function attrs(list: OtlpAttr[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((a) => [a.key, value(a.value)]));
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: OtlpReceiver['requests'] = [];
  const exports: string[] = [];
  const undecodable: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0] ?? '';
      if (req.method === 'POST' && path === '/v1/traces') {
        // The media type alone (a `; charset=…` parameter aside).
        const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
        exports.push(type);
        const body = Buffer.concat(chunks);
        let doc: OtlpTraces;
        try {
          doc = decodeOtlpTraces(body, type);
        } catch (e) {
          // Kept for the test to see (`undecodable`), answered as a collector answers a bad request.
          undecodable.push((e as Error).message);
          res.writeHead(400, { 'content-type': 'text/plain' }).end((e as Error).message);
          return;
        }
        for (const rs of doc.resourceSpans ?? []) {
          const resource = attrs(rs.resource?.attributes);
          const name = resource['service.name'];
          const service = typeof name === 'string' ? name : '';
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              spans.push({
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId || undefined,
                name: s.name,
                kind: s.kind,
                attributes: attrs(s.attributes),
                events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attrs(e.attributes) })),
                status: s.status?.code ?? 0,
                statusMessage: s.status?.message ?? '',
                service,
                resource,
              });
            }
          }
        }
        // An empty ExportTraceServiceResponse, in the request's encoding (as a collector answers).
        if (type === 'application/x-protobuf') res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        return;
      }
      requests.push({ path, headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    spans,
    exports,
    undecodable,
    requests,
    async waitFor(what, check, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const v = check(spans);
        if (v !== undefined) return v;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; spans received: ${spans.map((s) => s.name).join(', ') || '(none)'}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The W3C traceparent naming a received span (sampled). */
export function traceparentOf(s: ReceivedSpan): string {
  return `00-${s.traceId}-${s.spanId}-01`;
}
