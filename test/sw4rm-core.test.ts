/**
 * The SW4RM protocol core, in process: constants against the project's protos, envelopes (built,
 * validated, round-tripped through the wire encoding), ACK envelopes, the hybrid logical clock, the
 * activity buffer, the ACK lifecycle, the message processor, worktree bindings, and persistence
 * (atomic JSON-file writes, batching, the in-memory fallback when the file cannot be written).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ACK_STAGE_NUMBERS,
  AckLifecycleManager,
  ActivityBuffer,
  buildAckEnvelope,
  buildEnvelope,
  compareHlc,
  COMMUNICATION_CLASS_NUMBERS,
  ENVELOPE_STATE_NUMBERS,
  ERROR_CODE_NUMBERS,
  errorCodeName,
  formatHlc,
  HybridLogicalClock,
  JSONFilePersistence,
  MemoryPersistence,
  MESSAGE_TYPE_NUMBERS,
  MessageProcessor,
  parseAck,
  parseHlc,
  sw4rmProtos,
  Sw4rmProtocolError,
  validateEnvelope,
  WorktreeState,
  type Envelope,
  type RouterLike,
  type Sw4rmPersistence,
} from '../src/sw4rm/index.js';

// A rename that fails on demand: the moment between writing the temporary file and replacing the
// real one, where a crash must leave the old file whole.
const faults = vi.hoisted(() => ({ failRename: false }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    rename: async (from: string, to: string) => {
      if (faults.failRename) throw Object.assign(new Error('injected: crash before rename'), { code: 'EIO' });
      return real.rename(from, to);
    },
  };
});

const MAX = { maxPayloadBytes: 1024 };
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A router double: keeps what it is sent, answers what it is told. */
class FakeRouter implements RouterLike {
  sent: Envelope[] = [];
  answer: { accepted: boolean; reason?: string } = { accepted: true };
  fail: Error | undefined;
  sendMessage(envelope: Envelope): Promise<{ accepted: boolean; reason?: string }> {
    if (this.fail) return Promise.reject(this.fail);
    this.sent.push(envelope);
    return Promise.resolve(this.answer);
  }
  acks(): Array<ReturnType<typeof parseAck>> {
    return this.sent.filter((e) => e.message_type === 'ACKNOWLEDGEMENT').map((e) => parseAck(e));
  }
}

function enumOf(name: string): Record<string, number> {
  const def = sw4rmProtos().common[name] as { type: { value: Array<{ name: string; number: number }> } };
  return Object.fromEntries(def.type.value.map((v) => [v.name, v.number]));
}

describe('constants', () => {
  it('name the same values, with the same numbers, as the protos', () => {
    expect(MESSAGE_TYPE_NUMBERS).toEqual(enumOf('MessageType'));
    expect(ACK_STAGE_NUMBERS).toEqual(enumOf('AckStage'));
    expect(ERROR_CODE_NUMBERS).toEqual(enumOf('ErrorCode'));
    expect(ENVELOPE_STATE_NUMBERS).toEqual(enumOf('EnvelopeState'));
    expect(COMMUNICATION_CLASS_NUMBERS).toEqual(enumOf('CommunicationClass'));
  });

  it('convert both ways, and refuse what is neither', () => {
    expect(errorCodeName(99)).toBe('INTERNAL_ERROR');
    expect(errorCodeName('13')).toBe('TTL_EXPIRED');
    expect(errorCodeName('TTL_EXPIRED')).toBe('TTL_EXPIRED');
    expect(errorCodeName(17)).toBeUndefined();
    expect(errorCodeName('toString')).toBeUndefined();
  });
});

describe('envelopes', () => {
  it('buildEnvelope fills every field as the proto has it, and survives the wire encoding unchanged', () => {
    const env = buildEnvelope({ producer_id: 'agent-1', message_type: 2, content_type: 'text/plain', payload: 'héllo', ttl_ms: 5000, repo_id: 'r', timestamp: 1_800_000_000_123 });
    expect(env.message_id).toMatch(UUID_V4);
    expect(env.correlation_id).toMatch(UUID_V4);
    expect(env).toMatchObject({ producer_id: 'agent-1', message_type: 'DATA', content_type: 'text/plain', content_length: 6, sequence_number: 1, retry_count: 0, ttl_ms: 5000, repo_id: 'r', worktree_id: '', idempotency_token: '', state: 'ENVELOPE_STATE_CREATED' });
    expect(env.timestamp).toEqual({ seconds: 1_800_000_000, nanos: 123_000_000 });
    expect(Buffer.isBuffer(env.payload) && env.payload.toString('utf8')).toBe('héllo');
    expect(parseHlc(env.hlc_timestamp)?.node).toBe('agent-1');
    const method = sw4rmProtos().router.RouterService.service.SendMessage!;
    const back = method.requestDeserialize(method.requestSerialize({ msg: env })) as { msg: Envelope };
    expect(back.msg).toEqual(env);
    expect(() => buildEnvelope({ producer_id: 'a', message_type: 'NOPE' as never })).toThrow(/not an SW4RM message type/);
  });

  it('validateEnvelope accepts a built envelope, and one decoded from the wire', () => {
    const env = buildEnvelope({ producer_id: 'a', message_type: 'CONTROL', payload: '{}' });
    expect(validateEnvelope(env, MAX)).toEqual([]);
    const method = sw4rmProtos().router.RouterService.service.SendMessage!;
    const minimal = method.requestDeserialize(method.requestSerialize({ msg: { message_id: 'm1', producer_id: 'p', correlation_id: 'c', message_type: 'DATA', content_type: 'application/json' } })) as { msg: Envelope };
    expect(validateEnvelope(minimal.msg, MAX)).toEqual([]);
  });

  it('validateEnvelope names every problem with its protocol code and field', () => {
    const now = 1_800_000_000_000;
    const env = buildEnvelope({ producer_id: 'a', message_type: 'DATA', payload: 'x', timestamp: now });
    const codes = (e: unknown, opts = {}): Array<[string, string]> => validateEnvelope(e, { ...MAX, now: () => now, ...opts }).map((p) => [p.code, p.field]);
    expect(codes(null)).toEqual([['VALIDATION_ERROR', 'envelope']]);
    expect(codes({ ...env, producer_id: '' })).toEqual([['VALIDATION_ERROR', 'producer_id']]);
    expect(codes({ ...env, message_id: undefined, correlation_id: 7 })).toEqual([
      ['VALIDATION_ERROR', 'message_id'],
      ['VALIDATION_ERROR', 'correlation_id'],
    ]);
    expect(codes({ ...env, message_type: 'GOSSIP' })).toEqual([['VALIDATION_ERROR', 'message_type']]);
    expect(codes({ ...env, message_type: 'MESSAGE_TYPE_UNSPECIFIED' })).toEqual([['VALIDATION_ERROR', 'message_type']]);
    expect(codes({ ...env, payload: 'text' })).toEqual([['VALIDATION_ERROR', 'payload']]);
    expect(codes({ ...env, content_length: 2 })).toEqual([['VALIDATION_ERROR', 'content_length']]);
    expect(codes({ ...env, payload: Buffer.alloc(1025), content_length: 1025 })).toEqual([['OVERSIZE_PAYLOAD', 'payload']]);
    expect(codes({ ...env, sequence_number: -1 })).toEqual([['VALIDATION_ERROR', 'sequence_number']]);
    // TTL: measured from the envelope's own timestamp.
    expect(codes({ ...env, ttl_ms: 1000 }, { now: () => now + 999 })).toEqual([]);
    expect(codes({ ...env, ttl_ms: 1000 }, { now: () => now + 1000 })).toEqual([['TTL_EXPIRED', 'ttl_ms']]);
    // HLC: unparseable, or from the future beyond the tolerance; the past is fine unless bounded.
    expect(codes({ ...env, hlc_timestamp: 'yesterday' })).toEqual([['VALIDATION_ERROR', 'hlc_timestamp']]);
    const at = (ms: number): string => formatHlc({ wallUs: ms * 1000, logical: 0, node: 'x' });
    expect(codes({ ...env, hlc_timestamp: at(now + 60_000) }, { toleranceMs: 60_000 })).toEqual([]);
    expect(codes({ ...env, hlc_timestamp: at(now + 60_001) }, { toleranceMs: 60_000 })).toEqual([['VALIDATION_ERROR', 'hlc_timestamp']]);
    expect(codes({ ...env, hlc_timestamp: at(now - 86_400_000) })).toEqual([]);
    expect(codes({ ...env, hlc_timestamp: at(now - 86_400_000) }, { maxHlcAgeMs: 3_600_000 })).toEqual([['VALIDATION_ERROR', 'hlc_timestamp']]);
    expect(codes({ ...env, hlc_timestamp: 'garbage' }, { hlc: false })).toEqual([]);
    const [p] = validateEnvelope({ ...env, payload: Buffer.alloc(2048) }, MAX);
    expect(p?.message).toBe('is 2048 bytes, more than the 1024 allowed');
  });
});

describe('ACK envelopes', () => {
  it('carry the JSON payload with the proto numbers, and parse back to names', () => {
    const ack = buildAckEnvelope({ producer_id: 'b', ack_for_message_id: 'm-1', ack_stage: 'FAILED', error_code: 'INTERNAL_ERROR', note: 'db down', correlation_id: 'c-1' });
    expect(ack).toMatchObject({ message_type: 'ACKNOWLEDGEMENT', content_type: 'application/json', producer_id: 'b', correlation_id: 'c-1' });
    expect(JSON.parse(ack.payload.toString())).toEqual({ ack_for_message_id: 'm-1', ack_stage: 5, error_code: 99, note: 'db down' });
    expect(validateEnvelope(ack, MAX)).toEqual([]);
    expect(parseAck(ack)).toEqual({ ack_for_message_id: 'm-1', ack_stage: 'FAILED', error_code: 'INTERNAL_ERROR', note: 'db down' });
    // Names in the payload (a hand-written ACK) read the same; error_code and note may be absent.
    const named = { message_type: 'ACKNOWLEDGEMENT' as const, payload: Buffer.from('{"ack_for_message_id":"m-2","ack_stage":"READ"}') };
    expect(parseAck(named)).toEqual({ ack_for_message_id: 'm-2', ack_stage: 'READ', error_code: 'ERROR_CODE_UNSPECIFIED', note: '' });
  });

  it('parseAck refuses what is not an ACK with VALIDATION_ERROR and the field', () => {
    const data = buildEnvelope({ producer_id: 'a', message_type: 'DATA', payload: '{}' });
    expect(() => parseAck(data)).toThrow(Sw4rmProtocolError);
    const bad = (payload: string): Sw4rmProtocolError => {
      try {
        parseAck({ message_type: 'ACKNOWLEDGEMENT', payload: Buffer.from(payload) });
      } catch (e) {
        return e as Sw4rmProtocolError;
      }
      throw new Error('parsed');
    };
    expect(bad('not json')).toMatchObject({ code: 'SW4RM_VALIDATION_ERROR', protocolCode: 'VALIDATION_ERROR', problems: [{ field: 'payload' }] });
    expect(bad('{"ack_stage":3}').problems.map((p) => p.field)).toEqual(['ack_for_message_id']);
    expect(bad('{"ack_for_message_id":"m","ack_stage":42,"error_code":"NOPE"}').problems.map((p) => p.field)).toEqual(['ack_stage', 'error_code']);
    expect(() => buildAckEnvelope({ producer_id: 'b', ack_for_message_id: 'm', ack_stage: 'DONE' as never })).toThrow(TypeError);
  });
});

describe('hybrid logical clock', () => {
  it('never goes backwards, counts within a tick, and follows the receive rule', () => {
    let wall = 1000;
    const clock = new HybridLogicalClock({ node: 'n1', now: () => wall });
    const a = clock.now();
    expect(a).toEqual({ wallUs: 1_000_000, logical: 0, node: 'n1' });
    const b = clock.now();
    expect(b.logical).toBe(1);
    wall = 900; // the wall clock stepped back
    const c = clock.now();
    expect(c).toEqual({ wallUs: 1_000_000, logical: 2, node: 'n1' });
    expect(compareHlc(a, b)).toBeLessThan(0);
    expect(compareHlc(b, c)).toBeLessThan(0);
    // A remote ahead of us: take its time, one past its counter.
    expect(clock.update('HLC:5000000:7:n2')).toEqual({ wallUs: 5_000_000, logical: 8, node: 'n1' });
    // Same wall time on both sides: past both counters.
    expect(clock.update({ wallUs: 5_000_000, logical: 3, node: 'n3' }).logical).toBe(9);
    // Remote behind: our own time, our counter + 1.
    expect(clock.update('HLC:10:0:n2').logical).toBe(10);
    // The wall clock passes everyone: counter resets.
    wall = 6000;
    expect(clock.update('HLC:5000000:99:n2')).toEqual({ wallUs: 6_000_000, logical: 0, node: 'n1' });
    expect(clock.peek()).toEqual({ wallUs: 6_000_000, logical: 0, node: 'n1' });
  });

  it('formats and parses the published string form, and a bare Unix-ms stamp', () => {
    expect(formatHlc({ wallUs: 1_733_380_000_123_000, logical: 2, node: 'host:a' })).toBe('HLC:1733380000123000:2:host:a');
    expect(parseHlc('HLC:1733380000123000:2:host:a')).toEqual({ wallUs: 1_733_380_000_123_000, logical: 2, node: 'host:a' });
    expect(parseHlc('1733380000123')).toEqual({ wallUs: 1_733_380_000_123_000, logical: 0, node: '' });
    for (const bad of ['', 'HLC:', 'HLC:x:1:n', 'HLC:1:-1:n', 'HLC:99999999999999999999:0:n', 'hlc:1:0:n']) expect(parseHlc(bad)).toBeUndefined();
    expect(compareHlc('HLC:1:0:b', 'HLC:1:0:a')).toBe(1);
    expect(() => compareHlc('nope', 'HLC:1:0:a')).toThrow(/not a hybrid logical clock timestamp/);
  });
});

describe('ActivityBuffer', () => {
  it('tracks ACK stages forward only; an ACK for an unknown message is reported, not stored', () => {
    let now = 1000;
    const buffer = new ActivityBuffer({ now: () => now });
    const env = buildEnvelope({ producer_id: 'a', message_type: 'DATA' });
    buffer.recordOutgoing(env);
    const ack = (stage: string, extra = {}): ReturnType<ActivityBuffer['ack']> => buffer.ack({ ack_for_message_id: env.message_id, ack_stage: stage as never, ...extra });
    expect(ack('READ').status).toBe('applied');
    expect(ack('RECEIVED')).toMatchObject({ status: 'ignored', reason: 'already READ' });
    now = 2000;
    expect(ack('FULFILLED', { note: 'ok' })).toMatchObject({ status: 'applied', record: { ack_stage: 'FULFILLED', ack_note: 'ok', acked_at: 2000, envelope: { state: 'ENVELOPE_STATE_FULFILLED' } } });
    expect(ack('FAILED', { error_code: 'INTERNAL_ERROR' })).toMatchObject({ status: 'ignored', reason: 'already FULFILLED' });
    expect(buffer.get(env.message_id)?.history.map((h) => h.stage)).toEqual(['READ', 'RECEIVED', 'FULFILLED', 'FAILED']);
    expect(buffer.get(env.message_id)?.error_code).toBe('ERROR_CODE_UNSPECIFIED');
    expect(buffer.ack({ ack_for_message_id: 'nobody', ack_stage: 'FULFILLED' })).toEqual({ status: 'unknown', ack_for_message_id: 'nobody' });
    expect(buffer.size).toBe(1);
    expect(buffer.get('nobody')).toBeUndefined();
  });

  it('unacked, recent and reconcile (what to resend: unacknowledged sends older than the timeout)', () => {
    let now = 0;
    const buffer = new ActivityBuffer({ now: () => now });
    const envs = Array.from({ length: 4 }, (_, i) => buildEnvelope({ producer_id: 'a', message_type: 'DATA', payload: String(i) }));
    for (const [i, e] of envs.entries()) {
      now = i * 10_000;
      if (i === 3) buffer.recordIncoming(e);
      else buffer.recordOutgoing(e);
    }
    buffer.ack({ ack_for_message_id: envs[1]!.message_id, ack_stage: 'REJECTED', error_code: 'NO_ROUTE' });
    buffer.ack({ ack_for_message_id: envs[2]!.message_id, ack_stage: 'RECEIVED' });
    expect(buffer.unacked().map((r) => r.envelope.payload.toString())).toEqual(['0', '2', '3']);
    expect(buffer.unacked('out').map((r) => r.envelope.payload.toString())).toEqual(['0', '2']);
    expect(buffer.recent(2).map((r) => r.envelope.payload.toString())).toEqual(['2', '3']);
    now = 35_000;
    expect(buffer.reconcile({ olderThanMs: 30_000 }).map((r) => r.envelope.payload.toString())).toEqual(['0']);
    expect(buffer.reconcile({ olderThanMs: 10_000 }).map((r) => r.envelope.payload.toString())).toEqual(['0', '2']);
  });

  it('prunes to maxItems, oldest acknowledged first, never an unacknowledged one', () => {
    const buffer = new ActivityBuffer({ maxItems: 3 });
    const envs = Array.from({ length: 6 }, (_, i) => buildEnvelope({ producer_id: 'a', message_type: 'DATA', payload: String(i) }));
    buffer.recordOutgoing(envs[0]!); // stays unacked
    for (const e of envs.slice(1, 3)) {
      buffer.recordOutgoing(e);
      buffer.ack({ ack_for_message_id: e.message_id, ack_stage: 'FULFILLED' });
    }
    buffer.recordOutgoing(envs[3]!);
    expect(buffer.recent(10).map((r) => r.envelope.payload.toString())).toEqual(['0', '2', '3']);
    buffer.recordOutgoing(envs[4]!);
    buffer.recordOutgoing(envs[5]!);
    // Only unacknowledged records left: kept, though over the limit.
    expect(buffer.recent(10).map((r) => r.envelope.payload.toString())).toEqual(['0', '3', '4', '5']);
  });
});

describe('AckLifecycleManager', () => {
  it('sends with tracking, takes ACKs in, auto-ACKs receipts, and resends what is overdue under the same token', async () => {
    let now = 0;
    const router = new FakeRouter();
    const buffer = new ActivityBuffer({ now: () => now });
    const acks = new AckLifecycleManager({ router, buffer, agentId: 'me' });
    const env = buildEnvelope({ producer_id: 'me', message_type: 'DATA', payload: 'x', idempotency_token: 'me:send:00000000000000aa' });
    expect(await acks.sendMessageWithAck(env)).toMatchObject({ accepted: true, reason: '', record: { message_id: env.message_id, direction: 'out' } });
    expect(router.sent).toEqual([env]);
    expect(acks.handleAck(buildAckEnvelope({ producer_id: 'peer', ack_for_message_id: env.message_id, ack_stage: 'RECEIVED' })).status).toBe('applied');
    expect(acks.handleAck({ ack_for_message_id: 'unknown', ack_stage: 'FULFILLED', error_code: 'ERROR_CODE_UNSPECIFIED', note: '' }).status).toBe('unknown');

    now = 31_000;
    const overdue = acks.reconcileAcks();
    expect(overdue.map((r) => r.message_id)).toEqual([env.message_id]);
    const again = await acks.resend(overdue[0]!);
    expect(again.accepted).toBe(true);
    const resent = router.sent.at(-1)!;
    expect(resent).toMatchObject({ idempotency_token: env.idempotency_token, retry_count: 1, correlation_id: env.correlation_id, payload: env.payload });
    expect(resent.message_id).not.toBe(env.message_id);
    expect(buffer.get(env.message_id)).toMatchObject({ ack_stage: 'TIMED_OUT', error_code: 'ACK_TIMEOUT', ack_note: `resent as ${resent.message_id}` });
    expect(acks.reconcileAcks({ olderThanMs: 0 }).map((r) => r.message_id)).toEqual([resent.message_id]);

    // Received: recorded, RECEIVED sent back under the message's correlation id.
    const incoming = buildEnvelope({ producer_id: 'peer', message_type: 'DATA', payload: 'y', correlation_id: 'conv-1' });
    await acks.received(incoming);
    const last = router.sent.at(-1)!;
    expect(last).toMatchObject({ message_type: 'ACKNOWLEDGEMENT', producer_id: 'me', correlation_id: 'conv-1' });
    expect(parseAck(last)).toMatchObject({ ack_for_message_id: incoming.message_id, ack_stage: 'RECEIVED' });
    expect(buffer.get(incoming.message_id)).toMatchObject({ direction: 'in', ack_stage: 'RECEIVED' });
  });

  it('a refusal by the router closes the record with its code; a send that throws leaves it to reconcile', async () => {
    const router = new FakeRouter();
    const buffer = new ActivityBuffer();
    const acks = new AckLifecycleManager({ router, buffer, agentId: 'me' });
    router.answer = { accepted: false, reason: 'NO_ROUTE: no agent bob' };
    const refused = buildEnvelope({ producer_id: 'me', message_type: 'DATA' });
    expect(await acks.sendMessageWithAck(refused)).toMatchObject({ accepted: false, reason: 'NO_ROUTE: no agent bob' });
    expect(buffer.get(refused.message_id)).toMatchObject({ ack_stage: 'REJECTED', error_code: 'NO_ROUTE' });
    router.fail = new Error('UNAVAILABLE');
    const lost = buildEnvelope({ producer_id: 'me', message_type: 'DATA' });
    await expect(acks.sendMessageWithAck(lost)).rejects.toThrow('UNAVAILABLE');
    expect(acks.reconcileAcks({ olderThanMs: 0 }).map((r) => r.message_id)).toEqual([lost.message_id]);
  });
  it('flushBeforeSend: a send cut off before the router answered is found again after a restart', async () => {
    const persistence = new MemoryPersistence();
    const router = new FakeRouter();
    router.fail = new Error('the process died here');
    const buffer = await ActivityBuffer.open({ persistence, saveDelayMs: 60_000 });
    const acks = new AckLifecycleManager({ router, buffer, agentId: 'me', flushBeforeSend: true });
    const env = buildEnvelope({ producer_id: 'me', message_type: 'DATA', payload: 'keep me' });
    await expect(acks.sendMessageWithAck(env)).rejects.toThrow('the process died here');
    // A new process: the buffer as it was written, nothing else.
    const restarted = await ActivityBuffer.open({ persistence });
    const pending = new AckLifecycleManager({ router: new FakeRouter(), buffer: restarted, agentId: 'me' }).reconcileAcks({ olderThanMs: 0 });
    expect(pending.map((r) => r.envelope.payload.toString())).toEqual(['keep me']);
  });
});

describe('MessageProcessor', () => {
  let router: FakeRouter;
  let processor: MessageProcessor;
  beforeEach(() => {
    router = new FakeRouter();
    processor = new MessageProcessor(new AckLifecycleManager({ router, buffer: new ActivityBuffer(), agentId: 'me' }), { validate: MAX });
  });
  const msg = (type: string, payload = '{}', extra = {}): Envelope => buildEnvelope({ producer_id: 'peer', message_type: type as never, payload, ...extra });
  const stages = (): string[] => router.acks().map((a) => `${a.ack_stage}${a.error_code === 'ERROR_CODE_UNSPECIFIED' ? '' : `/${a.error_code}`}`);

  it('runs the handler of the type and ACKs RECEIVED, READ, FULFILLED', async () => {
    const seen: string[] = [];
    processor.registerHandler('DATA', (e) => {
      seen.push(e.payload.toString());
      return 'processed';
    });
    expect(await processor.processMessage(msg('DATA', '{"n":1}'))).toEqual({ status: 'fulfilled', result: 'processed' });
    expect(seen).toEqual(['{"n":1}']);
    expect(stages()).toEqual(['RECEIVED', 'READ', 'FULFILLED']);
  });

  it('a handler that throws: FAILED with INTERNAL_ERROR and the message as note', async () => {
    processor.registerHandler(2, () => Promise.reject(new Error('disk full')));
    expect(await processor.processMessage(msg('DATA'))).toMatchObject({ status: 'failed', error: { message: 'disk full' } });
    expect(stages()).toEqual(['RECEIVED', 'READ', 'FAILED/INTERNAL_ERROR']);
    expect(router.acks().at(-1)?.note).toBe('disk full');
  });

  it('an invalid envelope: REJECTED with VALIDATION_ERROR and the reason; no handler runs, nothing recorded', async () => {
    let ran = false;
    processor.setDefaultHandler(() => (ran = true));
    const bad = { ...msg('DATA', 'abc'), content_length: 99 };
    const out = await processor.processMessage(bad);
    expect(out).toMatchObject({ status: 'rejected', code: 'VALIDATION_ERROR' });
    expect(ran).toBe(false);
    expect(stages()).toEqual(['REJECTED/VALIDATION_ERROR']);
    expect(router.acks()[0]?.note).toBe('content_length: says 99 bytes but the payload has 3 (VALIDATION_ERROR)');
    const big = await processor.processMessage(msg('DATA', 'x'.repeat(2000)));
    expect(big).toMatchObject({ status: 'rejected', code: 'OVERSIZE_PAYLOAD' });
  });

  it('the default handler takes other types; with none, REJECTED with UNSUPPORTED_MESSAGE_TYPE', async () => {
    expect(await processor.processMessage(msg('TOOL_CALL'))).toMatchObject({ status: 'rejected', code: 'UNSUPPORTED_MESSAGE_TYPE' });
    processor.setDefaultHandler((e) => `default:${e.message_type}`);
    expect(await processor.processMessage(msg('TOOL_CALL'))).toEqual({ status: 'fulfilled', result: 'default:TOOL_CALL' });
    expect(stages()).toEqual(['RECEIVED', 'REJECTED/UNSUPPORTED_MESSAGE_TYPE', 'RECEIVED', 'READ', 'FULFILLED']);
  });

  it('a handler rejects on purpose with Sw4rmProtocolError; a redelivery is ACKed again, not handled twice', async () => {
    let runs = 0;
    processor.registerHandler('CONTROL', () => {
      runs += 1;
      throw new Sw4rmProtocolError([{ code: 'PERMISSION_DENIED', field: 'payload', message: 'not allowed to stop' }]);
    });
    const m = msg('CONTROL');
    expect(await processor.processMessage(m)).toMatchObject({ status: 'rejected', code: 'PERMISSION_DENIED' });
    expect(await processor.processMessage(m)).toEqual({ status: 'duplicate', stage: 'REJECTED' });
    processor.registerHandler('DATA', () => (runs += 1));
    const first = msg('DATA', '{}', { idempotency_token: 'peer:op:0000000000000001' });
    const retry = { ...msg('DATA', '{}', { idempotency_token: 'peer:op:0000000000000001' }), retry_count: 1 };
    await processor.processMessage(first);
    expect(await processor.processMessage(retry)).toEqual({ status: 'duplicate', stage: 'FULFILLED' });
    expect(runs).toBe(2);
    expect(stages()).toEqual(['RECEIVED', 'READ', 'REJECTED/PERMISSION_DENIED', 'REJECTED/PERMISSION_DENIED', 'RECEIVED', 'READ', 'FULFILLED', 'FULFILLED']);
  });

  it('an ACK is applied to the buffer and not acknowledged', async () => {
    const out = await processor.processMessage(buildAckEnvelope({ producer_id: 'peer', ack_for_message_id: 'never-sent', ack_stage: 'FULFILLED' }));
    expect(out).toEqual({ status: 'ack', outcome: { status: 'unknown', ack_for_message_id: 'never-sent' } });
    expect(router.sent).toEqual([]);
  });
});

describe('WorktreeState', () => {
  it('binds under the policy; a refusal changes nothing and says why', async () => {
    const bound: string[] = [];
    const wt = new WorktreeState({
      now: () => 42,
      policy: {
        beforeBind: (repo, _wt, current) => (repo === 'main-repo' || repo === 'test-repo' ? current?.worktree_id !== 'locked' : `repo ${repo} is not allowed`),
        afterBind: (b) => void bound.push(`${b.repo_id}/${b.worktree_id}`),
      },
    });
    expect(wt.status()).toMatchObject({ state: 'UNBOUND', binds: 0, persistent: false });
    expect(await wt.bind('main-repo', 'feature', { version: '1.2.3' })).toEqual({ bound: true, binding: { repo_id: 'main-repo', worktree_id: 'feature', metadata: { version: '1.2.3' }, bound_at: 42 } });
    expect(await wt.bind('other-repo', 'x')).toEqual({ bound: false, reason: 'repo other-repo is not allowed' });
    expect(await wt.bind('', 'x')).toMatchObject({ bound: false, reason: /repo_id must be a non-empty string/ });
    expect(wt.current()).toMatchObject({ repo_id: 'main-repo', worktree_id: 'feature' });
    expect(await wt.bind('test-repo', 'locked')).toMatchObject({ bound: true });
    expect(await wt.bind('test-repo', 'next')).toEqual({ bound: false, reason: 'the policy refused test-repo/next' });
    expect(wt.status()).toMatchObject({ state: 'BOUND', binds: 2, last_refusal: 'the policy refused test-repo/next', binding: { worktree_id: 'locked' } });
    expect(bound).toEqual(['main-repo/feature', 'test-repo/locked']);
    expect(await wt.unbind()).toMatchObject({ worktree_id: 'locked' });
    expect(wt.current()).toBeUndefined();
  });
});

describe('persistence', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'swarm-sw4rm-core-'));
    faults.failRename = false;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('JSONFilePersistence writes atomically: the file is the old version or the new, never torn, and no temporary file is left', async () => {
    const path = join(dir, 'state.json');
    const p = new JSONFilePersistence(path);
    expect(await p.load('activity')).toBeUndefined();
    await p.save('activity', { n: 1 });
    await p.save('worktree', { repo_id: 'r' });
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ format: 'swarm-sw4rm-state', version: 1, entries: { activity: { n: 1 }, worktree: { repo_id: 'r' } } });
    faults.failRename = true;
    await expect(p.save('activity', { n: 2 })).rejects.toThrow('injected: crash before rename');
    faults.failRename = false;
    expect(await new JSONFilePersistence(path).load('activity')).toEqual({ n: 1 });
    expect(readdirSync(dir)).toEqual(['state.json']);
    await p.save('activity', { n: 3 });
    expect(await new JSONFilePersistence(path).load('activity')).toEqual({ n: 3 });
  });

  it('a file that is not a state file is never overwritten: the buffer runs in memory and says so once', async () => {
    const path = join(dir, 'state.json');
    writeFileSync(path, '{"half": ');
    const errors: string[] = [];
    const buffer = await ActivityBuffer.open({ persistence: new JSONFilePersistence(path), onError: (e, c) => errors.push(`${c.during}: ${e.message}`) });
    expect(buffer.persistent).toBe(false);
    buffer.recordOutgoing(buildEnvelope({ producer_id: 'a', message_type: 'DATA' }));
    await buffer.flush();
    expect(buffer.size).toBe(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^load: .*state\.json is not valid JSON \(.+\); it was left as it is$/);
    expect(readFileSync(path, 'utf8')).toBe('{"half": ');
  });

  it('when the file cannot be written, the buffer and the worktree state keep working in memory, reported once', async () => {
    const path = join(dir, 'missing-dir', 'state.json');
    const errors: Array<{ during: string; key: string }> = [];
    const onError = (_e: Error, c: { during: string; key: string }): void => void errors.push(c);
    const buffer = await ActivityBuffer.open({ persistence: new JSONFilePersistence(path), onError, saveDelayMs: 0 });
    expect(buffer.persistent).toBe(true);
    const envs = Array.from({ length: 3 }, () => buildEnvelope({ producer_id: 'a', message_type: 'DATA' }));
    for (const e of envs) {
      buffer.recordOutgoing(e);
      await buffer.flush();
    }
    buffer.ack({ ack_for_message_id: envs[0]!.message_id, ack_stage: 'FULFILLED' });
    await buffer.close();
    expect(buffer.persistent).toBe(false);
    expect(buffer.unacked().length).toBe(2);
    expect(errors).toEqual([{ during: 'save', key: 'activity' }]);
    const wt = await WorktreeState.open({ persistence: new JSONFilePersistence(path), onError });
    expect(await wt.bind('r', 'w')).toMatchObject({ bound: true });
    expect(await wt.bind('r', 'w2')).toMatchObject({ bound: true });
    expect(wt.status()).toMatchObject({ persistent: false, binding: { worktree_id: 'w2' } });
    expect(errors).toEqual([
      { during: 'save', key: 'activity' },
      { during: 'save', key: 'worktree' },
    ]);
    expect(existsSync(join(dir, 'missing-dir'))).toBe(false);
  });

  it('batches saves: a busy buffer writes once per delay, flush() and close() write at once, and a reopen restores it', async () => {
    const inner = new MemoryPersistence();
    let saves = 0;
    const counting: Sw4rmPersistence = {
      load: (k) => inner.load(k),
      save: (k, v) => {
        saves += 1;
        return inner.save(k, v);
      },
    };
    const buffer = await ActivityBuffer.open({ persistence: counting, saveDelayMs: 60_000 });
    const envs = Array.from({ length: 200 }, (_, i) => buildEnvelope({ producer_id: 'a', message_type: 'DATA', payload: String(i) }));
    for (const e of envs) buffer.recordOutgoing(e);
    for (const e of envs.slice(0, 150)) buffer.ack({ ack_for_message_id: e.message_id, ack_stage: 'FULFILLED' });
    expect(saves).toBe(0);
    await buffer.flush();
    expect(saves).toBe(1);
    await buffer.flush();
    expect(saves).toBe(1); // nothing changed since
    buffer.recordOutgoing(buildEnvelope({ producer_id: 'a', message_type: 'DATA' }));
    await buffer.close();
    expect(saves).toBe(2);

    const fast = await ActivityBuffer.open({ persistence: counting, saveDelayMs: 5 });
    expect(fast.size).toBe(201);
    expect(fast.reconcile().length).toBe(51);
    expect(fast.get(envs[7]!.message_id)?.ack_stage).toBe('FULFILLED');
    // Acknowledged records come back without their payload; the ones to resend with it.
    expect(fast.get(envs[7]!.message_id)?.envelope).toMatchObject({ payload: Buffer.alloc(0), content_length: 1 });
    expect(fast.get(envs[170]!.message_id)?.envelope.payload.toString()).toBe('170');
    for (const e of envs.slice(150, 160)) fast.ack({ ack_for_message_id: e.message_id, ack_stage: 'FULFILLED' });
    await vi.waitFor(() => expect(saves).toBe(3), { timeout: 5000 });
    expect(((await inner.load('activity')) as { records: unknown[] }).records.length).toBe(201);
    await fast.close();
  });
});
