/**
 * What the router checks before it stores a message (docs/sw4rm.md, "Errors"): the protocol core's
 * `validateEnvelope`, with the router's limits. Each refusal is a protocol error code and a sentence
 * naming the field; SendMessage answers `accepted=false`, reason `<CODE>: <sentence>`, and stores
 * nothing.
 *
 * @example
 *   const bad = checkEnvelope(req.msg, options, Date.now());
 *   if (bad) return { accepted: false, reason: `${bad.code}: ${bad.message}` };
 */
import { fromProtoTimestamp, validateEnvelope, type Envelope } from '../core/envelope.js';
import type { Sw4rmServiceOptions } from '../service-types.js';

export interface EnvelopeProblem {
  code: string;
  message: string;
}

/** When a message with this envelope stops being deliverable (ms), or null without a TTL. */
export function expiresAt(env: Envelope, now: number): number | null {
  if (!env.ttl_ms) return null;
  return (fromProtoTimestamp(env.timestamp) ?? now) + env.ttl_ms;
}

/** PostgreSQL text cannot hold NUL: refuse it in the fields the router stores as text. */
function nulProblem(env: Envelope): { field: string; message: string; code: string } | undefined {
  for (const f of ['message_id', 'producer_id', 'idempotency_token', 'message_type'] as const) {
    if (typeof env[f] === 'string' && env[f].includes('\u0000')) return { code: 'VALIDATION_ERROR', field: f, message: 'must not contain a NUL character' };
  }
  return undefined;
}

/** The first problem of `env`, or undefined when the router may store it. */
export function checkEnvelope(env: Envelope | null | undefined, o: Required<Sw4rmServiceOptions>, now: number): EnvelopeProblem | undefined {
  if (!env) return { code: 'VALIDATION_ERROR', message: 'the request has no envelope (SendMessageRequest.msg is missing)' };
  // An HLC older than the dedup window is refused: a retry that old could no longer be recognised.
  const problems = validateEnvelope(env, { maxPayloadBytes: o.maxPayloadBytes, now: () => now, toleranceMs: o.hlcToleranceMs, maxHlcAgeMs: o.dedupWindowMs });
  const p = problems[0] ?? nulProblem(env);
  if (!p) return undefined;
  const id = env.message_id ? ` of message ${env.message_id}` : '';
  // A type the contract does not know has its own code in the protocol (spec §11).
  const unknownType = p.field === 'message_type' && env.message_type !== undefined && env.message_type !== null && (env.message_type as unknown) !== '' && (env.message_type as unknown) !== 'MESSAGE_TYPE_UNSPECIFIED' && (env.message_type as unknown) !== 0;
  return { code: unknownType ? 'UNSUPPORTED_MESSAGE_TYPE' : p.code, message: `${p.field}${id} ${p.message}` };
}
