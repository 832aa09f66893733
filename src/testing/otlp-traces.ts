/**
 * An OTLP/HTTP traces export (ExportTraceServiceRequest) read back, whatever its encoding: binary
 * protobuf (`application/x-protobuf`, opentelemetry-proto v1 trace.proto and common.proto) or JSON,
 * as the shape of the JSON encoding. For receivers in tests and benchmarks: it reads the fields a
 * span's name, kind, ids, attributes, events and status need, and skips the rest.
 *
 * @example
 *   const doc = decodeOtlpTraces(body, req.headers['content-type'] ?? '');
 *   const names = doc.resourceSpans?.flatMap((r) => r.scopeSpans ?? []).flatMap((s) => s.spans ?? []).map((s) => s.name);
 */

export type OtlpValue = { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean; arrayValue?: { values?: OtlpValue[] } };
export type OtlpAttr = { key: string; value: OtlpValue };
export type OtlpSpan = { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: OtlpAttr[]; events?: Array<{ name: string; attributes?: OtlpAttr[] }>; status?: { code?: number; message?: string } };
export type OtlpTraces = { resourceSpans?: Array<{ resource?: { attributes?: OtlpAttr[] }; scopeSpans?: Array<{ spans?: OtlpSpan[] }> }> };

/** The export in `body`, sent with `contentType` (its media type decides; a `; charset` parameter is ignored). Throws on what it cannot read. */
export function decodeOtlpTraces(body: Buffer, contentType: string): OtlpTraces {
  const type = contentType.split(';')[0]?.trim();
  return type === 'application/x-protobuf' ? decodeProtobuf(body) : (JSON.parse(body.toString('utf8')) as OtlpTraces);
}

type Value = bigint | Buffer;

/** One protobuf message's fields by number, in order (varints as bigint, fixed64 and length-delimited as Buffers); read once. */
type Fields = Map<number, Value[]>;

/** The fields of one protobuf message (its nested messages are read when asked for). */
function fieldsOf(buf: Buffer): Fields {
  const out: Fields = new Map();
  const push = (no: number, value: Value): void => {
    const list = out.get(no);
    if (list) list.push(value);
    else out.set(no, [value]);
  };
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
    if (wire === 0) push(no, varint());
    else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      if (at + size > buf.length) throw new Error(`OTLP protobuf: field ${no} runs past the end`);
      push(no, buf.subarray(at, at + size));
      at += size;
    } else if (wire === 2) {
      const len = Number(varint());
      if (at + len > buf.length) throw new Error(`OTLP protobuf: field ${no} runs past the end (${len} bytes at ${at} of ${buf.length})`);
      push(no, buf.subarray(at, at + len));
      at += len;
    } else throw new Error(`OTLP protobuf: wire type ${wire} of field ${no}`);
  }
  return out;
}

/** The nested messages (length-delimited values) of field `no`, each read. */
const all = (f: Fields, no: number): Fields[] => (f.get(no) ?? []).filter((v): v is Buffer => Buffer.isBuffer(v)).map(fieldsOf);
const one = (f: Fields, no: number): Value | undefined => f.get(no)?.[0];
/** The nested message of field `no` (empty when absent), read. */
const message = (f: Fields, no: number): Fields => {
  const v = one(f, no);
  return Buffer.isBuffer(v) ? fieldsOf(v) : new Map<number, Value[]>();
};
const text = (v: Value | undefined): string => (Buffer.isBuffer(v) ? v.toString('utf8') : '');
const hex = (v: Value | undefined): string => (Buffer.isBuffer(v) ? v.toString('hex') : '');
const num = (v: Value | undefined): number => (typeof v === 'bigint' ? Number(v) : 0);

/** AnyValue: string 1, bool 2, int 3, double 4, array 5 (ArrayValue: values 1). */
function anyValue(f: Fields): OtlpValue {
  const [no, values] = f.entries().next().value ?? [];
  const v = values?.[0];
  if (v === undefined) return {};
  if (no === 1) return { stringValue: text(v) };
  if (no === 2) return { boolValue: v !== 0n };
  if (no === 3) return { intValue: String(BigInt.asIntN(64, v as bigint)) };
  if (no === 4) return { doubleValue: (v as Buffer).readDoubleLE(0) };
  if (no === 5) return { arrayValue: { values: all(message(f, 5), 1).map(anyValue) } };
  return {};
}

/** KeyValue: key 1, value 2. */
const keyValues = (list: Fields[]): OtlpAttr[] => list.map((kv) => ({ key: text(one(kv, 1)), value: anyValue(message(kv, 2)) }));

/**
 * An ExportTraceServiceRequest in the shape of its JSON encoding: ResourceSpans 1 (Resource 1 with
 * attributes 1; ScopeSpans 2 with spans 2); a Span's ids 1, 2, 4, name 5, kind 6, attributes 9,
 * events 11 (name 2, attributes 3), status 15 (message 2, code 3).
 */
function decodeProtobuf(body: Buffer): OtlpTraces {
  return {
    resourceSpans: all(fieldsOf(body), 1).map((rs) => ({
      resource: { attributes: keyValues(all(message(rs, 1), 1)) },
      scopeSpans: all(rs, 2).map((ss) => ({
        spans: all(ss, 2).map((sp) => {
          const status = one(sp, 15) === undefined ? undefined : message(sp, 15);
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
