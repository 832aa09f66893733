/**
 * The SW4RM envelope: building one and checking one. An envelope here is a plain object shaped like
 * the proto `sw4rm.common.Envelope` as the project's gRPC loader gives it (snake_case fields, enums
 * as names, 64-bit integers as numbers, `payload` a Buffer, unset fields at their proto defaults), so
 * what `buildEnvelope` returns goes on the wire as it is and what arrives validates as it is.
 *
 * @example
 *   const env = buildEnvelope({ producer_id: 'agent-1', message_type: 'DATA', content_type: 'application/json',
 *     payload: JSON.stringify({ hello: 'world' }) });
 *   validateEnvelope(env, { maxPayloadBytes: 1 << 20 }); // []
 */
import { randomUUID } from 'node:crypto';
import { ENVELOPE_STATE_NUMBERS, envelopeStateName, messageTypeName, type EnvelopeState, type MessageType } from './constants.js';
import type { Sw4rmProblem } from './errors.js';
import { formatHlc, hlcPhysicalMs, HybridLogicalClock, parseHlc } from './hlc.js';

/** google.protobuf.Timestamp as the loader gives it. */
export interface ProtoTimestamp {
  seconds: number;
  nanos: number;
}

/** sw4rm.common.Envelope. */
export interface Envelope {
  /** New per delivery attempt (a UUIDv4). */
  message_id: string;
  /** Stable across retries of one logical message ('' when none); the router dedups by it. */
  idempotency_token: string;
  producer_id: string;
  /** The workflow or conversation (for negotiation: the negotiation id). */
  correlation_id: string;
  sequence_number: number;
  retry_count: number;
  message_type: MessageType;
  content_type: string;
  /** The payload's length in bytes (0: not given). */
  content_length: number;
  repo_id: string;
  worktree_id: string;
  /** Hybrid logical clock, `HLC:<wall_us>:<logical>:<node>` ('' when none). */
  hlc_timestamp: string;
  /** Time to live in ms after `timestamp` (0: forever). */
  ttl_ms: number;
  timestamp: ProtoTimestamp | null;
  payload: Buffer;
  state: EnvelopeState;
}

/** What `buildEnvelope` takes: the required fields, and any optional ones. */
export interface BuildEnvelopeInput {
  producer_id: string;
  /** A name ('DATA') or the proto number (2). */
  message_type: MessageType | number;
  /** MIME type of the payload (default application/json). */
  content_type?: string;
  /** Bytes, or a string (UTF-8). Default: empty. */
  payload?: Buffer | Uint8Array | string;
  /** Default: a new UUIDv4 (a new conversation). */
  correlation_id?: string;
  idempotency_token?: string;
  repo_id?: string;
  worktree_id?: string;
  ttl_ms?: number;
  /** Default 1. */
  sequence_number?: number;
  retry_count?: number;
  /** Default: a reading of `clock`, or of this process's clock with node = producer_id. */
  hlc_timestamp?: string;
  /** The agent's own hybrid logical clock, to read `hlc_timestamp` from. */
  clock?: HybridLogicalClock;
  /** Creation time (ms or Date); default now. */
  timestamp?: number | Date;
  /** Default ENVELOPE_STATE_CREATED. */
  state?: EnvelopeState;
}

const PROCESS_CLOCK = new HybridLogicalClock({ node: '' });

/** Milliseconds as a proto Timestamp. */
export function toProtoTimestamp(ms: number): ProtoTimestamp {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** A proto Timestamp as milliseconds; undefined when unset or not a timestamp. */
export function fromProtoTimestamp(t: unknown): number | undefined {
  if (t === null || typeof t !== 'object') return undefined;
  const { seconds, nanos } = t as { seconds?: unknown; nanos?: unknown };
  const s = typeof seconds === 'string' && /^-?\d+$/.test(seconds) ? Number(seconds) : seconds;
  if (typeof s !== 'number' || !Number.isFinite(s)) return undefined;
  const n = typeof nanos === 'number' && Number.isFinite(nanos) ? nanos : 0;
  return s * 1000 + Math.floor(n / 1e6);
}

function toBuffer(p: Buffer | Uint8Array | string | undefined): Buffer {
  if (p === undefined) return Buffer.alloc(0);
  if (typeof p === 'string') return Buffer.from(p, 'utf8');
  return Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

/**
 * A new envelope: a fresh `message_id` (UUIDv4), `content_length` and `timestamp` set, an HLC
 * reading, every unset field at its proto default. Throws a TypeError for an unknown message type
 * (a programming error, not bad input from the wire).
 *
 * @example
 *   const env = buildEnvelope({ producer_id: 'a', message_type: 'DATA', content_type: 'text/plain', payload: 'hi' });
 */
export function buildEnvelope(input: BuildEnvelopeInput): Envelope {
  const messageType = messageTypeName(input.message_type);
  if (!messageType || messageType === 'MESSAGE_TYPE_UNSPECIFIED') {
    throw new TypeError(`buildEnvelope: message_type ${JSON.stringify(input.message_type)} is not an SW4RM message type (DATA, CONTROL, …)`);
  }
  const payload = toBuffer(input.payload);
  const ms = input.timestamp === undefined ? Date.now() : input.timestamp instanceof Date ? input.timestamp.getTime() : input.timestamp;
  const hlc = input.hlc_timestamp ?? (input.clock ? input.clock.nowString() : formatHlc({ ...PROCESS_CLOCK.now(), node: input.producer_id }));
  return {
    message_id: randomUUID(),
    idempotency_token: input.idempotency_token ?? '',
    producer_id: input.producer_id,
    correlation_id: input.correlation_id ?? randomUUID(),
    sequence_number: input.sequence_number ?? 1,
    retry_count: input.retry_count ?? 0,
    message_type: messageType,
    content_type: input.content_type ?? 'application/json',
    content_length: payload.length,
    repo_id: input.repo_id ?? '',
    worktree_id: input.worktree_id ?? '',
    hlc_timestamp: hlc,
    ttl_ms: input.ttl_ms ?? 0,
    timestamp: toProtoTimestamp(ms),
    payload,
    state: input.state ?? 'ENVELOPE_STATE_CREATED',
  };
}

/** What `validateEnvelope` checks against. */
export interface ValidateEnvelopeOptions {
  /** The largest payload accepted: OVERSIZE_PAYLOAD past it. */
  maxPayloadBytes: number;
  /** Check `hlc_timestamp` (default true): unparseable, or ahead of `now` by more than `toleranceMs`. */
  hlc?: boolean;
  /** Wall clock in ms (default Date.now). */
  now?: () => number;
  /** How far an HLC may be ahead of `now` (default 60 s). */
  toleranceMs?: number;
  /** How far an HLC may be behind `now` (default: no limit; a retry may be old). */
  maxHlcAgeMs?: number;
}

const REQUIRED_STRINGS = ['message_id', 'producer_id', 'correlation_id', 'content_type'] as const;
const OPTIONAL_STRINGS = ['idempotency_token', 'repo_id', 'worktree_id', 'hlc_timestamp'] as const;
const UINTS = ['sequence_number', 'retry_count', 'content_length', 'ttl_ms'] as const;

function isUint(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Everything wrong with an envelope, each with the protocol's error code and the field; empty when it
 * is valid. What the router runs before it stores anything:
 *
 * - VALIDATION_ERROR: not an object; a required field missing or empty (message_id, producer_id,
 *   correlation_id, message_type, content_type, payload); a field of the wrong type; an unknown
 *   message type; `content_length` set and not the payload's length; an `hlc_timestamp` that does not
 *   parse, or is ahead of the clock by more than the tolerance (or older than `maxHlcAgeMs`);
 * - OVERSIZE_PAYLOAD: the payload is larger than `maxPayloadBytes`;
 * - TTL_EXPIRED: `timestamp + ttl_ms` has passed.
 *
 * `sequence_number` 0 is accepted: proto3 cannot tell it from "unset", and clients built from the
 * published protos may leave it so.
 *
 * @example
 *   const problems = validateEnvelope(env, { maxPayloadBytes: 1 << 20, toleranceMs: 60_000 });
 *   if (problems.length) reply({ accepted: false, reason: problems[0].code });
 */
export function validateEnvelope(env: unknown, options: ValidateEnvelopeOptions): Sw4rmProblem[] {
  if (env === null || typeof env !== 'object' || Array.isArray(env)) {
    return [{ code: 'VALIDATION_ERROR', field: 'envelope', message: 'an envelope must be an object' }];
  }
  const e = env as Record<string, unknown>;
  const problems: Sw4rmProblem[] = [];
  const bad = (field: string, message: string, code: Sw4rmProblem['code'] = 'VALIDATION_ERROR'): void => {
    problems.push({ code, field, message });
  };
  for (const f of REQUIRED_STRINGS) {
    if (e[f] === undefined || e[f] === null || e[f] === '') bad(f, 'is required');
    else if (typeof e[f] !== 'string') bad(f, 'must be a string');
  }
  for (const f of OPTIONAL_STRINGS) {
    if (e[f] !== undefined && e[f] !== null && typeof e[f] !== 'string') bad(f, 'must be a string');
  }
  for (const f of UINTS) {
    if (e[f] !== undefined && e[f] !== null && !isUint(e[f])) bad(f, 'must be a non-negative integer');
  }
  if (e.sequence_number === undefined || e.sequence_number === null) bad('sequence_number', 'is required');

  const mt = e.message_type;
  const mtName = messageTypeName(mt);
  if (mt === undefined || mt === null || mt === '' || mtName === 'MESSAGE_TYPE_UNSPECIFIED') bad('message_type', 'is required');
  else if (!mtName) bad('message_type', `${JSON.stringify(mt)} is not an SW4RM message type`);

  if (e.state !== undefined && e.state !== null && !envelopeStateName(e.state)) {
    bad('state', `${JSON.stringify(e.state)} is not an envelope state (${Object.keys(ENVELOPE_STATE_NUMBERS).join(', ')})`);
  }

  const payload = e.payload;
  if (payload === undefined || payload === null) bad('payload', 'is required (it may be empty)');
  else if (!(payload instanceof Uint8Array)) bad('payload', 'must be bytes');
  else {
    if (payload.byteLength > options.maxPayloadBytes) {
      bad('payload', `is ${payload.byteLength} bytes, more than the ${options.maxPayloadBytes} allowed`, 'OVERSIZE_PAYLOAD');
    }
    if (isUint(e.content_length) && (e.content_length as number) !== 0 && e.content_length !== payload.byteLength) {
      bad('content_length', `says ${e.content_length as number} bytes but the payload has ${payload.byteLength}`);
    }
  }

  const now = (options.now ?? Date.now)();
  const sentMs = e.timestamp === undefined || e.timestamp === null ? undefined : fromProtoTimestamp(e.timestamp);
  if (e.timestamp !== undefined && e.timestamp !== null && sentMs === undefined) bad('timestamp', 'must be a google.protobuf.Timestamp {seconds, nanos}');
  if (isUint(e.ttl_ms) && (e.ttl_ms as number) > 0 && sentMs !== undefined && sentMs + (e.ttl_ms as number) <= now) {
    bad('ttl_ms', `expired ${now - sentMs - (e.ttl_ms as number)} ms ago (sent ${new Date(sentMs).toISOString()} with a ${e.ttl_ms as number} ms TTL)`, 'TTL_EXPIRED');
  }

  if (options.hlc !== false && typeof e.hlc_timestamp === 'string' && e.hlc_timestamp !== '') {
    const t = parseHlc(e.hlc_timestamp);
    const tolerance = options.toleranceMs ?? 60_000;
    if (!t) bad('hlc_timestamp', `${JSON.stringify(e.hlc_timestamp.slice(0, 80))} is not a hybrid logical clock timestamp (HLC:<wall_us>:<logical>:<node>)`);
    else if (hlcPhysicalMs(t) > now + tolerance) {
      bad('hlc_timestamp', `is ${hlcPhysicalMs(t) - now} ms ahead of this clock, more than the ${tolerance} ms tolerated`);
    } else if (options.maxHlcAgeMs !== undefined && hlcPhysicalMs(t) < now - options.maxHlcAgeMs) {
      bad('hlc_timestamp', `is ${now - hlcPhysicalMs(t)} ms old, more than the ${options.maxHlcAgeMs} ms tolerated`);
    }
  }
  return problems;
}

/** The payload as UTF-8 JSON; throws a SyntaxError naming the message when it is not. */
export function decodeJsonPayload(env: Pick<Envelope, 'payload' | 'message_id'>): unknown {
  try {
    return JSON.parse(Buffer.from(env.payload).toString('utf8'));
  } catch (e) {
    throw new SyntaxError(`the payload of message ${env.message_id} is not JSON: ${(e as Error).message}`);
  }
}
