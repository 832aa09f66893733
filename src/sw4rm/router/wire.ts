/**
 * The router's byte-level shortcuts: a SendMessage's envelope is kept as the bytes the producer
 * sent (fields this version of the contract does not know survive), and a StreamItem is written
 * from them without decoding again: `msg` (field 1) is those bytes, `seq` (field 2) a varint.
 *
 * @example
 *   const env = envelopeBytes(rawSendMessageRequest);
 *   call.write(streamItemBytes(env, 42));
 */

/** Read a base-128 varint at `pos`; returns the value (exact up to 2^53) and the next position. */
function readVarint(buf: Buffer, pos: number): [number, number] {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++] as number;
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [value, pos];
    mul *= 128;
  }
  throw new Error('varint too long');
}

function writeVarint(n: number, out: number[]): void {
  let v = n;
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/**
 * The bytes of field 1 (`msg`) of an encoded SendMessageRequest (the last one wins, as protobuf
 * says for a repeated singular field; empty when absent). Throws on bytes that are not protobuf.
 */
export function envelopeBytes(request: Buffer): Buffer {
  let pos = 0;
  let found: Buffer = Buffer.alloc(0);
  while (pos < request.length) {
    let key: number;
    [key, pos] = readVarint(request, pos);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) [, pos] = readVarint(request, pos);
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      let len: number;
      [len, pos] = readVarint(request, pos);
      if (pos + len > request.length) throw new Error('truncated field');
      if (field === 1) found = request.subarray(pos, pos + len);
      pos += len;
    } else throw new Error(`unsupported wire type ${wire}`);
    if (pos > request.length) throw new Error('truncated field');
  }
  return found;
}

/** An encoded StreamItem { msg = envelope, seq }. */
export function streamItemBytes(envelope: Buffer, seq: number): Buffer {
  const head: number[] = [0x0a];
  writeVarint(envelope.length, head);
  const tail: number[] = [0x10];
  writeVarint(seq, tail);
  return Buffer.concat([Buffer.from(head), envelope, Buffer.from(tail)]);
}
