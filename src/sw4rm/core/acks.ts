/**
 * ACKs as messages: an ACKNOWLEDGEMENT envelope whose payload is the JSON object
 * `{"ack_for_message_id","ack_stage","error_code","note"}` (content_type application/json).
 * `ack_stage` and `error_code` are written as the proto numbers, which is what the published SDKs
 * write and decode; `parseAck` reads numbers or names.
 *
 * @example
 *   const ack = buildAckEnvelope({ producer_id: 'agent-2', ack_for_message_id: env.message_id, ack_stage: 'FULFILLED' });
 *   parseAck(ack); // { ack_for_message_id: env.message_id, ack_stage: 'FULFILLED', error_code: 'ERROR_CODE_UNSPECIFIED', note: '' }
 */
import { ACK_STAGE_NUMBERS, ackStageName, ERROR_CODE_NUMBERS, errorCodeName, messageTypeName, type AckStage, type ErrorCode } from './constants.js';
import { buildEnvelope, type Envelope } from './envelope.js';
import { Sw4rmProtocolError, type Sw4rmProblem } from './errors.js';
import type { HybridLogicalClock } from './hlc.js';

/** An ACK, decoded. */
export interface Ack {
  ack_for_message_id: string;
  ack_stage: AckStage;
  error_code: ErrorCode;
  note: string;
}

export interface BuildAckInput {
  /** Who acknowledges (the receiver of the original message). */
  producer_id: string;
  ack_for_message_id: string;
  /** A name ('FULFILLED') or the proto number (3). */
  ack_stage: AckStage | number;
  /** A name or number; default ERROR_CODE_UNSPECIFIED. */
  error_code?: ErrorCode | number;
  note?: string;
  /** Default: a new id; pass the original's to keep the conversation together. */
  correlation_id?: string;
  clock?: HybridLogicalClock;
  timestamp?: number | Date;
}

/**
 * An ACKNOWLEDGEMENT envelope for `ack_for_message_id`. Throws a TypeError for an unknown stage or
 * error code, or an empty `ack_for_message_id` (programming errors).
 *
 * @example
 *   buildAckEnvelope({ producer_id: 'me', ack_for_message_id: id, ack_stage: 'FAILED', error_code: 'INTERNAL_ERROR', note: 'db down' });
 */
export function buildAckEnvelope(input: BuildAckInput): Envelope {
  const stage = ackStageName(input.ack_stage);
  if (!stage || stage === 'ACK_STAGE_UNSPECIFIED') throw new TypeError(`buildAckEnvelope: ${JSON.stringify(input.ack_stage)} is not an ACK stage (RECEIVED, READ, FULFILLED, …)`);
  const code = errorCodeName(input.error_code ?? 'ERROR_CODE_UNSPECIFIED');
  if (!code) throw new TypeError(`buildAckEnvelope: ${JSON.stringify(input.error_code)} is not an SW4RM error code`);
  if (!input.ack_for_message_id) throw new TypeError('buildAckEnvelope: ack_for_message_id is required');
  const payload = JSON.stringify({
    ack_for_message_id: input.ack_for_message_id,
    ack_stage: ACK_STAGE_NUMBERS[stage],
    error_code: ERROR_CODE_NUMBERS[code],
    note: input.note ?? '',
  });
  return buildEnvelope({
    producer_id: input.producer_id,
    message_type: 'ACKNOWLEDGEMENT',
    content_type: 'application/json',
    payload,
    ...(input.correlation_id !== undefined ? { correlation_id: input.correlation_id } : {}),
    ...(input.clock ? { clock: input.clock } : {}),
    ...(input.timestamp !== undefined ? { timestamp: input.timestamp } : {}),
  });
}

/**
 * An ACK payload object (as decoded from JSON, or as a Python SDK dict) checked and normalised; the
 * problems when it is not one.
 */
export function readAckPayload(obj: unknown): { ack: Ack } | { problems: Sw4rmProblem[] } {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    return { problems: [{ code: 'VALIDATION_ERROR', field: 'payload', message: 'an ACK payload must be a JSON object' }] };
  }
  const o = obj as Record<string, unknown>;
  const problems: Sw4rmProblem[] = [];
  if (typeof o.ack_for_message_id !== 'string' || o.ack_for_message_id === '') {
    problems.push({ code: 'VALIDATION_ERROR', field: 'ack_for_message_id', message: 'is required (the message_id being acknowledged)' });
  }
  const stage = ackStageName(o.ack_stage);
  if (!stage || stage === 'ACK_STAGE_UNSPECIFIED') {
    problems.push({ code: 'VALIDATION_ERROR', field: 'ack_stage', message: `${JSON.stringify(o.ack_stage)} is not an ACK stage (RECEIVED, READ, FULFILLED, REJECTED, FAILED, TIMED_OUT)` });
  }
  const code = o.error_code === undefined || o.error_code === null ? 'ERROR_CODE_UNSPECIFIED' : errorCodeName(o.error_code);
  if (!code) problems.push({ code: 'VALIDATION_ERROR', field: 'error_code', message: `${JSON.stringify(o.error_code)} is not an SW4RM error code` });
  if (o.note !== undefined && o.note !== null && typeof o.note !== 'string') problems.push({ code: 'VALIDATION_ERROR', field: 'note', message: 'must be a string' });
  if (problems.length > 0 || !stage || !code) return { problems };
  return { ack: { ack_for_message_id: o.ack_for_message_id as string, ack_stage: stage, error_code: code, note: typeof o.note === 'string' ? o.note : '' } };
}

/**
 * The ACK an ACKNOWLEDGEMENT envelope carries. Throws Sw4rmProtocolError (code
 * SW4RM_VALIDATION_ERROR) when the envelope is not an ACK or its payload is not a valid ACK.
 *
 * @example
 *   const { ack_for_message_id, ack_stage } = parseAck(incoming);
 */
export function parseAck(envelope: Pick<Envelope, 'message_type' | 'payload'> & { message_id?: string }): Ack {
  if (messageTypeName(envelope.message_type) !== 'ACKNOWLEDGEMENT') {
    throw new Sw4rmProtocolError([{ code: 'VALIDATION_ERROR', field: 'message_type', message: `is ${JSON.stringify(envelope.message_type)}, not ACKNOWLEDGEMENT` }], 'ACK');
  }
  let obj: unknown;
  try {
    obj = JSON.parse(Buffer.from(envelope.payload).toString('utf8'));
  } catch {
    throw new Sw4rmProtocolError([{ code: 'VALIDATION_ERROR', field: 'payload', message: `of ACK ${envelope.message_id ?? ''} is not JSON` }], 'ACK');
  }
  const r = readAckPayload(obj);
  if ('problems' in r) throw new Sw4rmProtocolError(r.problems, 'ACK');
  return r.ack;
}

/** True for an envelope that is an ACK (message_type ACKNOWLEDGEMENT). */
export function isAckEnvelope(envelope: Pick<Envelope, 'message_type'>): boolean {
  return messageTypeName(envelope.message_type) === 'ACKNOWLEDGEMENT';
}
