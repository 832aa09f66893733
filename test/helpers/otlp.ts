/**
 * A real OTLP/HTTP receiver for tests: a node:http server that accepts `POST /v1/traces` with binary
 * protobuf bodies (`http/protobuf`, Swarm's default) or JSON ones (`http/json`), decodes them, and
 * keeps every span it receives and the content type of each export. Any other path answers 200 and
 * records the request's headers (an HTTP tool's endpoint, say).
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

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

type OtlpValue = { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean; arrayValue?: { values?: OtlpValue[] } };
type OtlpAttr = { key: string; value: OtlpValue };

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

type OtlpSpan = { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: OtlpAttr[]; events?: Array<{ name: string; attributes?: OtlpAttr[] }>; status?: { code?: number; message?: string } };
type OtlpDoc = { resourceSpans?: Array<{ resource?: { attributes?: OtlpAttr[] }; scopeSpans?: Array<{ spans?: OtlpSpan[] }> }> };

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
        const protobuf = type === 'application/x-protobuf';
        let doc: OtlpDoc;
        try {
          doc = protobuf ? decodeTraces(body) : (JSON.parse(body.toString('utf8')) as OtlpDoc);
        } catch (e) {
          // Kept for the test to see (`undecodable`), answered as a collector answers a bad request.
          undecodable.push((e as Error).message);
          res.writeHead(400, { 'content-type': 'text/plain' }).end((e as Error).message);
          return;
        }
        for (const rs of doc.resourceSpans ?? []) {
          const name = attrs(rs.resource?.attributes)['service.name'];
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
              });
            }
          }
        }
        // An empty ExportTraceServiceResponse, in the request's encoding (as a collector answers).
        if (protobuf) res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
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

// ---- OTLP protobuf (opentelemetry-proto v1, trace.proto and common.proto), the fields read above ----

/** The fields of one protobuf message: numbers and values (varints as bigint, fixed64 as a Buffer, length-delimited as a Buffer). */
function fieldsOf(buf: Buffer): Array<{ no: number; value: bigint | Buffer }> {
  const out: Array<{ no: number; value: bigint | Buffer }> = [];
  let at = 0;
  const varint = (): bigint => {
    let n = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (at >= buf.length) throw new Error('OTLP protobuf: truncated varint');
      const b = buf[at++] as number;
      n |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return n;
    }
  };
  while (at < buf.length) {
    const tag = Number(varint());
    const no = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) out.push({ no, value: varint() });
    else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      if (at + size > buf.length) throw new Error(`OTLP protobuf: field ${no} runs past the end`);
      out.push({ no, value: buf.subarray(at, at + size) });
      at += size;
    } else if (wire === 2) {
      const len = Number(varint());
      if (at + len > buf.length) throw new Error(`OTLP protobuf: field ${no} runs past the end (${len} bytes at ${at} of ${buf.length})`);
      out.push({ no, value: buf.subarray(at, at + len) });
      at += len;
    } else throw new Error(`OTLP protobuf: wire type ${wire} of field ${no}`);
  }
  return out;
}

const all = (buf: Buffer, no: number): Buffer[] => fieldsOf(buf).filter((f) => f.no === no && Buffer.isBuffer(f.value)).map((f) => f.value as Buffer);
const one = (buf: Buffer, no: number): bigint | Buffer | undefined => fieldsOf(buf).find((f) => f.no === no)?.value;
const text = (v: bigint | Buffer | undefined): string => (Buffer.isBuffer(v) ? v.toString('utf8') : '');
const hex = (v: bigint | Buffer | undefined): string => (Buffer.isBuffer(v) ? v.toString('hex') : '');
const num = (v: bigint | Buffer | undefined): number => (typeof v === 'bigint' ? Number(v) : 0);

/** AnyValue: string 1, bool 2, int 3, double 4, array 5 (ArrayValue: values 1). */
function anyValue(buf: Buffer): OtlpValue {
  const f = fieldsOf(buf)[0];
  if (!f) return {};
  if (f.no === 1) return { stringValue: text(f.value) };
  if (f.no === 2) return { boolValue: f.value !== 0n };
  if (f.no === 3) return { intValue: String(BigInt.asIntN(64, f.value as bigint)) };
  if (f.no === 4) return { doubleValue: (f.value as Buffer).readDoubleLE(0) };
  if (f.no === 5) return { arrayValue: { values: all(f.value as Buffer, 1).map(anyValue) } };
  return {};
}

/** KeyValue: key 1, value 2. */
const keyValues = (list: Buffer[]): OtlpAttr[] => list.map((kv) => ({ key: text(one(kv, 1)), value: anyValue((one(kv, 2) as Buffer | undefined) ?? Buffer.alloc(0)) }));

/**
 * An ExportTraceServiceRequest in the shape of its JSON encoding: ResourceSpans 1 (Resource 1 with
 * attributes 1; ScopeSpans 2 with spans 2); a Span's ids 1, 2, 4, name 5, kind 6, attributes 9,
 * events 11 (name 2, attributes 3), status 15 (message 2, code 3).
 */
function decodeTraces(body: Buffer): OtlpDoc {
  return {
    resourceSpans: all(body, 1).map((rs) => ({
      resource: { attributes: keyValues(all((one(rs, 1) as Buffer | undefined) ?? Buffer.alloc(0), 1)) },
      scopeSpans: all(rs, 2).map((ss) => ({
        spans: all(ss, 2).map((sp) => {
          const status = one(sp, 15) as Buffer | undefined;
          const parent = hex(one(sp, 4));
          return {
            traceId: hex(one(sp, 1)),
            spanId: hex(one(sp, 2)),
            ...(parent ? { parentSpanId: parent } : {}),
            name: text(one(sp, 5)),
            kind: num(one(sp, 6)),
            attributes: keyValues(all(sp, 9)),
            events: all(sp, 11).map((e) => ({ name: text(one(e, 2)), attributes: keyValues(all(e, 3)) })),
            status: status ? { code: num(one(status, 3)), message: text(one(status, 2)) } : {},
          };
        }),
      })),
    })),
  };
}
