/**
 * What the router checks before it stores a message (docs/sw4rm.md, "Errors"). Each refusal is a
 * protocol error code and a sentence naming the field; SendMessage answers `accepted=false` with
 * reason `<CODE>: <sentence>` and stores nothing.
 *
 * @example
 *   const bad = checkEnvelope(req.msg, options, Date.now());
 *   if (bad) return { accepted: false, reason: `${bad.code}: ${bad.message}` };
 */
import type { Sw4rmServiceOptions } from '../service-types.js';
import { hlcMillis } from './wire.js';

/** The message types of the contract (common.proto), UNSPECIFIED aside. */
export const MESSAGE_TYPES = new Set([
  'CONTROL', 'DATA', 'HEARTBEAT', 'NOTIFICATION', 'ACKNOWLEDGEMENT', 'HITL_INVOCATION',
  'WORKTREE_CONTROL', 'NEGOTIATION', 'TOOL_CALL', 'TOOL_RESULT', 'TOOL_ERROR',
]);

/** An Envelope as @grpc/proto-loader decodes it (keepCase, enums as names, longs as numbers). */
export interface WireEnvelope {
  message_id: string;
  idempotency_token: string;
  producer_id: string;
  correlation_id: string;
  sequence_number: number;
  retry_count: number;
  message_type: string | number;
  content_type: string;
  content_length: number;
  repo_id: string;
  worktree_id: string;
  hlc_timestamp: string;
  ttl_ms: number;
  timestamp: { seconds: number; nanos: number } | null;
  payload: Buffer;
  state: string | number;
}

export interface EnvelopeProblem {
  code: 'VALIDATION_ERROR' | 'UNSUPPORTED_MESSAGE_TYPE' | 'OVERSIZE_PAYLOAD' | 'TTL_EXPIRED';
  message: string;
}

const mb = (n: number): string => n.toLocaleString('en-US');

/** When a message with this envelope stops being deliverable (ms), or null without a TTL. */
export function expiresAt(env: WireEnvelope, now: number): number | null {
  if (!env.ttl_ms) return null;
  const sent = env.timestamp ? env.timestamp.seconds * 1000 + Math.floor(env.timestamp.nanos / 1e6) : now;
  return sent + env.ttl_ms;
}

/** The first problem of `env`, or undefined when the router may store it. */
export function checkEnvelope(env: WireEnvelope | null | undefined, o: Required<Sw4rmServiceOptions>, now: number): EnvelopeProblem | undefined {
  if (!env) return { code: 'VALIDATION_ERROR', message: 'the request has no envelope (SendMessageRequest.msg is missing)' };
  for (const f of ['message_id', 'producer_id', 'correlation_id'] as const) {
    if (!env[f]) return { code: 'VALIDATION_ERROR', message: `envelope field ${f} is required and empty` };
  }
  if (env.message_type === 'MESSAGE_TYPE_UNSPECIFIED' || env.message_type === 0) {
    return { code: 'VALIDATION_ERROR', message: `envelope field message_type is required (message ${env.message_id})` };
  }
  if (typeof env.message_type !== 'string' || !MESSAGE_TYPES.has(env.message_type)) {
    return { code: 'UNSUPPORTED_MESSAGE_TYPE', message: `message_type ${String(env.message_type)} of message ${env.message_id} is not a type of the protocol` };
  }
  const size = env.payload.length;
  if (size > o.maxPayloadBytes || env.content_length > o.maxPayloadBytes) {
    return { code: 'OVERSIZE_PAYLOAD', message: `the payload of message ${env.message_id} is ${mb(Math.max(size, env.content_length))} bytes, past the router's limit of ${mb(o.maxPayloadBytes)} (maxPayloadBytes)` };
  }
  if (size > 0 && !env.content_type) return { code: 'VALIDATION_ERROR', message: `message ${env.message_id} has a payload but no content_type` };
  if (env.content_length !== 0 && env.content_length !== size) {
    return { code: 'VALIDATION_ERROR', message: `content_length of message ${env.message_id} says ${env.content_length} bytes but the payload has ${size}` };
  }
  if (env.hlc_timestamp) {
    const at = hlcMillis(env.hlc_timestamp);
    if (at === undefined) return { code: 'VALIDATION_ERROR', message: `hlc_timestamp '${env.hlc_timestamp}' of message ${env.message_id} is not a hybrid logical clock (HLC:<wall µs>:<logical>:<node>)` };
    if (at - now > o.hlcToleranceMs) {
      return { code: 'VALIDATION_ERROR', message: `hlc_timestamp of message ${env.message_id} is ${Math.round((at - now) / 1000)} s ahead of the router's clock (tolerance ${o.hlcToleranceMs} ms, hlcToleranceMs)` };
    }
    // Older than the dedup window, a retry could no longer be recognised: refuse rather than risk a duplicate.
    if (now - at > o.dedupWindowMs) {
      return { code: 'VALIDATION_ERROR', message: `hlc_timestamp of message ${env.message_id} is ${Math.round((now - at) / 1000)} s old, older than the router's dedup window (${o.dedupWindowMs} ms, dedupWindowMs)` };
    }
  }
  const exp = expiresAt(env, now);
  if (exp !== null && exp <= now) {
    return { code: 'TTL_EXPIRED', message: `message ${env.message_id} expired ${now - exp} ms before it reached the router (ttl_ms ${env.ttl_ms})` };
  }
  return undefined;
}
