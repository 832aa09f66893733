/**
 * The router's dead letters and registry as the CLI shows them (`swarm sw4rm dlq …`, `swarm sw4rm
 * agents`): a dead letter with its envelope decoded, text payloads as text.
 *
 * @example
 *   const rows = await store.sw4rmMessages({ state: 'dead' });
 *   console.log(JSON.stringify(rows.map(deadLetterJson)));
 */
import type * as grpc from '@grpc/grpc-js';
import { UserError } from '../../core/errors.js';
import type { Sw4rmAgentRow, Sw4rmMessageRow } from '../../store/sw4rm-router-types.js';
import type { Envelope } from '../core/envelope.js';
import { sw4rmProtos } from '../proto.js';
import { streamItemBytes } from './wire.js';

/** The stored envelope of a row, decoded. */
export function decodeStoredEnvelope(row: Pick<Sw4rmMessageRow, 'envelope' | 'seq'>): Envelope {
  const def = sw4rmProtos().router.RouterService.service.StreamIncoming as grpc.MethodDefinition<unknown, { msg: Envelope }>;
  return def.responseDeserialize(streamItemBytes(row.envelope, row.seq)).msg;
}

const TEXT = /^(text\/|application\/(json|xml|yaml|x-ndjson)|.*\+json$)/;

export function deadLetterJson(row: Sw4rmMessageRow): Record<string, unknown> {
  const env = decodeStoredEnvelope(row);
  const text = TEXT.test(env.content_type);
  return {
    seq: row.seq,
    message_id: row.message_id,
    producer_id: row.producer_id,
    recipient: row.recipient,
    message_type: row.message_type,
    dead_reason: row.dead_reason,
    attempts: row.attempts,
    idempotency_token: row.idempotency_token,
    correlation_id: env.correlation_id,
    content_type: env.content_type,
    payload: text ? env.payload.toString('utf8') : env.payload.toString('base64'),
    payload_encoding: text ? 'utf8' : 'base64',
    created_at: new Date(row.created_at).toISOString(),
    died_at: new Date(row.updated_at).toISOString(),
  };
}

export function agentJson(a: Sw4rmAgentRow): Record<string, unknown> {
  return {
    ...a,
    descriptor: JSON.parse(a.descriptor) as unknown,
    health: JSON.parse(a.health) as unknown,
    last_heartbeat: new Date(a.last_heartbeat).toISOString(),
    registered_at: new Date(a.registered_at).toISOString(),
    deregistered_at: a.deregistered_at === null ? null : new Date(a.deregistered_at).toISOString(),
  };
}

/** `<seq>` or `--all` of `dlq replay|drop`, checked. */
export function dlqTarget(seq: string | undefined, all: boolean | undefined, verb: string): number | 'all' {
  if (all && seq !== undefined) throw new UserError('ARGUMENT_INVALID', `swarm sw4rm dlq ${verb}: give a seq or --all, not both`);
  if (all) return 'all';
  if (seq === undefined) throw new UserError('ARGUMENT_INVALID', `swarm sw4rm dlq ${verb}: give the seq of a dead letter (swarm sw4rm dlq list) or --all`);
  const n = Number(seq);
  if (!Number.isSafeInteger(n) || n < 1) throw new UserError('ARGUMENT_INVALID', `swarm sw4rm dlq ${verb}: seq must be a positive whole number, not '${seq}'`, { field: 'seq' });
  return n;
}
