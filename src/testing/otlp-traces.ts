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
function decodeProtobuf(body: Buffer): OtlpTraces {
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
