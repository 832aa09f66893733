/**
 * The rows of the SW4RM router and registry (migration 21): `sw4rm_messages` (one row per message
 * per recipient: its `seq` is the StreamItem's seq), `sw4rm_dedup` (idempotency tokens within the
 * window), `sw4rm_agents` (the registry). The router's rules live in src/sw4rm/router/; the store
 * applies them in one transaction per call, so a batch of sends or acks shares one commit.
 *
 * @example
 *   const [out] = await store.sw4rmSend([item], now + leaseMs);
 *   if (out.status === 'stored') for (const d of out.deliveries) push(d);
 */

export type Sw4rmMessageState = 'queued' | 'in_flight' | 'acked' | 'dead';
export type Sw4rmAgentStatus = 'available' | 'unavailable' | 'deregistered';

/** One message to one recipient. */
export interface Sw4rmMessageRow {
  seq: number;
  message_id: string;
  producer_id: string;
  recipient: string;
  message_type: string;
  idempotency_token: string | null;
  /** The encoded `SendMessageRequest { msg }` (protobuf bytes) as the router received it. */
  envelope: Buffer;
  state: Sw4rmMessageState;
  /** Deliveries so far. */
  attempts: number;
  lease_until: number | null;
  created_at: number;
  expires_at: number | null;
  /** Why it is dead: TTL_EXPIRED, MAX_ATTEMPTS, PERMANENT_FAILURE. */
  dead_reason: string | null;
  updated_at: number;
}

/** One accepted SendMessage, as the store is asked to keep it. */
export interface Sw4rmSendItem {
  message_id: string;
  producer_id: string;
  message_type: string;
  idempotency_token: string | null;
  /** The recipient named by the caller (gRPC metadata), or null. */
  target: string | null;
  /** An ACK envelope's `ack_for_message_id` (it goes to that message's producer), or null. */
  ack_for: string | null;
  envelope: Buffer;
  created_at: number;
  expires_at: number | null;
  /** Until when its idempotency token holds. */
  dedup_until: number;
  /** The router's RECEIVED ACK to the producer, stored with it if the producer is a known agent. */
  receipt: { message_id: string; envelope: Buffer } | null;
  /** Recipients whose stream in this process is idle: their rows are stored in flight, ready to push. */
  direct: (recipient: string) => boolean;
}

export type Sw4rmSendOutcome =
  | { status: 'stored'; deliveries: Sw4rmMessageRow[] }
  | { status: 'duplicate'; message_id: string }
  | { status: 'no_route'; reason: string };

export interface Sw4rmAckItem {
  recipient: string;
  seq: number;
  /** Must match the row's when non-empty. */
  message_id: string;
  outcome: 'delivered' | 'permanent_failure';
}

export interface Sw4rmSweepResult {
  /** Recipients with messages queued again (lease ended). */
  requeued: string[];
  /** Messages moved to the dead letters (TTL_EXPIRED, MAX_ATTEMPTS). */
  dead: number;
}

export interface Sw4rmAgentRow {
  agent_id: string;
  name: string;
  /** The AgentDescriptor as JSON. */
  descriptor: string;
  communication_class: string;
  status: Sw4rmAgentStatus;
  /** The AgentState of the last heartbeat. */
  agent_state: string;
  /** The health map of the last heartbeat, as JSON. */
  health: string;
  /** Registered by opening a stream, not by RegisterAgent. */
  implicit: boolean;
  last_heartbeat: number;
  registered_at: number;
  deregistered_at: number | null;
  deregister_reason: string | null;
}

export interface Sw4rmAgentWrite {
  agent_id: string;
  name: string;
  descriptor: string;
  communication_class: string;
}

export const SW4RM_MESSAGE_COLUMNS = 'seq, message_id, producer_id, recipient, message_type, idempotency_token, envelope, state, attempts, lease_until, created_at, expires_at, dead_reason, updated_at';

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function toSw4rmMessage(r: Record<string, unknown>): Sw4rmMessageRow {
  return {
    seq: num(r.seq),
    message_id: String(r.message_id),
    producer_id: String(r.producer_id),
    recipient: String(r.recipient),
    message_type: String(r.message_type),
    idempotency_token: (r.idempotency_token as string | null) ?? null,
    envelope: Buffer.isBuffer(r.envelope) ? r.envelope : Buffer.from(r.envelope as Uint8Array),
    state: r.state as Sw4rmMessageState,
    attempts: num(r.attempts),
    lease_until: numOrNull(r.lease_until),
    created_at: num(r.created_at),
    expires_at: numOrNull(r.expires_at),
    dead_reason: (r.dead_reason as string | null) ?? null,
    updated_at: num(r.updated_at),
  };
}

export function toSw4rmAgent(r: Record<string, unknown>): Sw4rmAgentRow {
  return {
    agent_id: String(r.agent_id),
    name: String(r.name),
    descriptor: typeof r.descriptor === 'string' ? r.descriptor : JSON.stringify(r.descriptor),
    communication_class: String(r.communication_class),
    status: r.status as Sw4rmAgentStatus,
    agent_state: String(r.agent_state),
    health: typeof r.health === 'string' ? r.health : JSON.stringify(r.health),
    implicit: r.implicit === true || r.implicit === 1,
    last_heartbeat: num(r.last_heartbeat),
    registered_at: num(r.registered_at),
    deregistered_at: numOrNull(r.deregistered_at),
    deregister_reason: (r.deregister_reason as string | null) ?? null,
  };
}
