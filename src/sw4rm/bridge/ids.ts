/**
 * The identities a workflow step or an llm tool call uses on the router, derived from what stays the
 * same when the step is retried or the call replayed: so the router's dedup recognises the resend,
 * the retried step listens where the first attempt's ACK is waiting, and a reply to the first
 * attempt still correlates.
 *
 * @example
 *   const ids = stepIdentity('run_01H…', 'translate', 2);
 *   ids.agentId;          // 'swarm-step-run_01H…-translate'
 *   ids.messageIds;       // [first attempt's id, second attempt's id]
 */
import { createHash } from 'node:crypto';

/** The identities of one logical message: who sends it, which ids mean "this message". */
export interface ExchangeIdentity {
  /** Our agent id on the router: the envelope's producer_id and the stream we listen on. */
  agentId: string;
  /** The same for every attempt: the router drops a resend inside its dedup window. */
  idempotencyToken: string;
  /** The same for every attempt: a reply to any attempt's message is ours. */
  correlationId: string;
  /** This attempt's message id (the last), after those of the attempts before it. */
  messageIds: string[];
}

const AGENT_ID_MAX = 128;

/** A UUID-shaped id (version 8, RFC 9562: application-defined) derived from `parts`. */
export function derivedUuid(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest();
  h[6] = ((h[6] as number) & 0x0f) | 0x80;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

function agentIdFor(prefix: string, readable: string, key: string): string {
  const clean = readable.replace(/[^A-Za-z0-9._-]/g, '_');
  const id = `${prefix}-${clean}`;
  if (id.length <= AGENT_ID_MAX) return id;
  // Too long to read anyway: keep a readable start and make it unique with a hash.
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 24);
  return `${id.slice(0, AGENT_ID_MAX - hash.length - 1)}-${hash}`;
}

/** A workflow step's identities; `attempt` counts from 1. */
export function stepIdentity(runId: string, stepId: string, attempt: number): ExchangeIdentity {
  const key = `${runId}/${stepId}`;
  const messageIds: string[] = [];
  for (let a = 1; a <= Math.max(1, attempt); a++) messageIds.push(derivedUuid('swarm-step-message', key, String(a)));
  return {
    agentId: agentIdFor('swarm-step', `${runId}-${stepId}`, key),
    idempotencyToken: `swarm-step:${key}`,
    correlationId: derivedUuid('swarm-step-correlation', key),
    messageIds,
  };
}

/** An llm tool call's identities, from the call's idempotency key (`<session id>/<call id>`). */
export function toolCallIdentity(idempotencyKey: string): ExchangeIdentity {
  return {
    agentId: `swarm-tool-${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 32)}`,
    idempotencyToken: `swarm-tool:${idempotencyKey}`,
    correlationId: derivedUuid('swarm-tool-correlation', idempotencyKey),
    messageIds: [derivedUuid('swarm-tool-message', idempotencyKey)],
  };
}
