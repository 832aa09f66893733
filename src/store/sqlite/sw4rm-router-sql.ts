/**
 * The SW4RM router and registry on SQLite (migration 21). Every function runs inside a write
 * transaction of the caller's (the hot ones inside the group commit, so concurrent sends, claims and
 * acks share one fsync); statements are prepared once per connection.
 *
 * @example
 *   const outcomes = sendMessages((sql) => db.prepare(sql), items, leaseUntil);
 */
import type Database from 'better-sqlite3';
import {
  SW4RM_MESSAGE_COLUMNS,
  toSw4rmAgent,
  toSw4rmMessage,
  type Sw4rmAckItem,
  type Sw4rmAgentRow,
  type Sw4rmAgentWrite,
  type Sw4rmMessageRow,
  type Sw4rmMessageState,
  type Sw4rmSendItem,
  type Sw4rmSendOutcome,
  type Sw4rmSweepResult,
} from '../sw4rm-router-types.js';

type Stmt = (sql: string) => Database.Statement;
type Row = Record<string, unknown>;

const INSERT_MESSAGE = `INSERT INTO sw4rm_messages (message_id, producer_id, recipient, message_type, idempotency_token, envelope, state, attempts, lease_until, created_at, expires_at, updated_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${SW4RM_MESSAGE_COLUMNS}`;

function agentStatus(stmt: Stmt, agentId: string): string | undefined {
  return stmt('SELECT status FROM sw4rm_agents WHERE agent_id = ?').pluck().get(agentId) as string | undefined;
}

/** Resolve the recipients of one item (docs/sw4rm.md, "Who receives a message"); a string is why none. */
function recipients(stmt: Stmt, it: Sw4rmSendItem): string[] | string {
  if (it.target !== null) {
    const s = agentStatus(stmt, it.target);
    if (s === undefined) return `no agent '${it.target}' is registered`;
    if (s === 'deregistered') return `agent '${it.target}' has deregistered`;
    return [it.target];
  }
  if (it.ack_for !== null) {
    const producer = stmt('SELECT producer_id FROM sw4rm_messages WHERE message_id = ? LIMIT 1').pluck().get(it.ack_for) as string | undefined;
    return producer === undefined ? `the acknowledged message '${it.ack_for}' is unknown to this router` : [producer];
  }
  const all = stmt(`SELECT agent_id FROM sw4rm_agents WHERE status = 'available' AND agent_id != ? ORDER BY agent_id`).pluck().all(it.producer_id) as string[];
  return all.length > 0 ? all : 'no target named (metadata x-sw4rm-target) and no other agent is available';
}

function insert(stmt: Stmt, it: Sw4rmSendItem, recipient: string, messageId: string, type: string, envelope: Buffer, leaseUntil: number): Sw4rmMessageRow {
  const direct = it.direct(recipient);
  const r = stmt(INSERT_MESSAGE).get(
    messageId, it.producer_id, recipient, type, messageId === it.message_id ? it.idempotency_token : null, envelope,
    direct ? 'in_flight' : 'queued', direct ? 1 : 0, direct ? leaseUntil : null, it.created_at, messageId === it.message_id ? it.expires_at : null, it.created_at,
  ) as Row;
  return toSw4rmMessage(r);
}

/** Store a batch of sends (dedup first, then routing); each item's outcome in order. */
export function sendMessages(stmt: Stmt, items: readonly Sw4rmSendItem[], leaseUntil: number): Sw4rmSendOutcome[] {
  return items.map((it): Sw4rmSendOutcome => {
    if (it.idempotency_token !== null) {
      const had = stmt('SELECT message_id FROM sw4rm_dedup WHERE producer_id = ? AND idempotency_token = ? AND expires_at > ?').pluck().get(it.producer_id, it.idempotency_token, it.created_at) as string | undefined;
      if (had !== undefined) return { status: 'duplicate', message_id: had };
    }
    if (stmt('SELECT 1 FROM sw4rm_messages WHERE message_id = ? LIMIT 1').pluck().get(it.message_id) !== undefined) return { status: 'duplicate', message_id: it.message_id };
    const to = recipients(stmt, it);
    if (typeof to === 'string') return { status: 'no_route', reason: to };
    const deliveries = to.map((r) => insert(stmt, it, r, it.message_id, it.message_type, it.envelope, leaseUntil));
    if (it.idempotency_token !== null) {
      stmt(`INSERT INTO sw4rm_dedup (producer_id, idempotency_token, message_id, expires_at) VALUES (?, ?, ?, ?)
        ON CONFLICT(producer_id, idempotency_token) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at`).run(it.producer_id, it.idempotency_token, it.message_id, it.dedup_until);
    }
    if (it.receipt) {
      const s = agentStatus(stmt, it.producer_id);
      if (s !== undefined && s !== 'deregistered') deliveries.push(insert(stmt, it, it.producer_id, it.receipt.message_id, 'ACKNOWLEDGEMENT', it.receipt.envelope, leaseUntil));
    }
    return { status: 'stored', deliveries };
  });
}

/** Queued messages of one recipient in seq order, now in flight under a lease; expired ones die first. */
export function claimMessages(stmt: Stmt, recipient: string, limit: number, now: number, leaseUntil: number): Sw4rmMessageRow[] {
  stmt(`UPDATE sw4rm_messages SET state = 'dead', dead_reason = 'TTL_EXPIRED', updated_at = ? WHERE recipient = ? AND state = 'queued' AND expires_at <= ?`).run(now, recipient, now);
  const rows = stmt(
    `UPDATE sw4rm_messages SET state = 'in_flight', attempts = attempts + 1, lease_until = ?, updated_at = ?
     WHERE seq IN (SELECT seq FROM sw4rm_messages WHERE recipient = ? AND state = 'queued' ORDER BY seq LIMIT ?) RETURNING ${SW4RM_MESSAGE_COLUMNS}`,
  ).all(leaseUntil, now, recipient, limit) as Row[];
  return rows.map(toSw4rmMessage).sort((a, b) => a.seq - b.seq);
}

/** A new stream: the recipient's in-flight messages are queued again (or dead past maxAttempts). */
export function requeueInFlight(stmt: Stmt, recipient: string, maxAttempts: number, now: number): number {
  stmt(`UPDATE sw4rm_messages SET state = 'dead', dead_reason = 'MAX_ATTEMPTS', lease_until = NULL, updated_at = ? WHERE recipient = ? AND state = 'in_flight' AND attempts >= ?`).run(now, recipient, maxAttempts);
  return stmt(`UPDATE sw4rm_messages SET state = 'queued', lease_until = NULL, updated_at = ? WHERE recipient = ? AND state = 'in_flight'`).run(now, recipient).changes;
}

/** Record delivery acks; true for each that changed a delivered, unacknowledged row. */
export function ackMessages(stmt: Stmt, acks: readonly Sw4rmAckItem[], now: number): boolean[] {
  return acks.map((a) => {
    const state: Sw4rmMessageState = a.outcome === 'delivered' ? 'acked' : 'dead';
    const reason = a.outcome === 'delivered' ? null : 'PERMANENT_FAILURE';
    return (
      stmt(
        `UPDATE sw4rm_messages SET state = ?, dead_reason = ?, lease_until = NULL, updated_at = ?
         WHERE seq = ? AND recipient = ? AND (? = '' OR message_id = ?) AND state IN ('in_flight', 'queued') AND attempts > 0`,
      ).run(state, reason, now, a.seq, a.recipient, a.message_id, a.message_id).changes > 0
    );
  });
}

/** Leases that ended go back to the queue (or die past maxAttempts); queued messages past their TTL die; old acked rows and tokens go. */
export function sweep(stmt: Stmt, now: number, maxAttempts: number, pruneBefore: number): Sw4rmSweepResult {
  let dead = stmt(`UPDATE sw4rm_messages SET state = 'dead', dead_reason = 'MAX_ATTEMPTS', lease_until = NULL, updated_at = ? WHERE state = 'in_flight' AND lease_until <= ? AND attempts >= ?`).run(now, now, maxAttempts).changes;
  const requeued = stmt(`UPDATE sw4rm_messages SET state = 'queued', lease_until = NULL, updated_at = ? WHERE state = 'in_flight' AND lease_until <= ? RETURNING recipient`).pluck().all(now, now) as string[];
  dead += stmt(`UPDATE sw4rm_messages SET state = 'dead', dead_reason = 'TTL_EXPIRED', updated_at = ? WHERE state = 'queued' AND expires_at <= ?`).run(now, now).changes;
  stmt(`DELETE FROM sw4rm_messages WHERE state = 'acked' AND updated_at < ?`).run(pruneBefore);
  stmt('DELETE FROM sw4rm_dedup WHERE expires_at <= ?').run(now);
  // Agents known only by a stream (workflow steps and tools waiting for an ACK, consumers that never
  // registered) that have been gone past the window: their rows and what still waits for them go, so
  // one-off listeners do not pile up (a registered agent stays until it deregisters).
  const gone = `SELECT agent_id FROM sw4rm_agents WHERE implicit = 1 AND status = 'unavailable' AND last_heartbeat < ?`;
  stmt(`DELETE FROM sw4rm_messages WHERE state IN ('queued', 'in_flight') AND recipient IN (${gone})`).run(pruneBefore);
  stmt(`DELETE FROM sw4rm_agents WHERE agent_id IN (${gone})`).run(pruneBefore);
  return { requeued: [...new Set(requeued)], dead };
}

export function listMessages(stmt: Stmt, q: { state?: Sw4rmMessageState; recipient?: string; limit?: number }): Sw4rmMessageRow[] {
  const rows = stmt(
    `SELECT ${SW4RM_MESSAGE_COLUMNS} FROM sw4rm_messages WHERE (? IS NULL OR state = ?) AND (? IS NULL OR recipient = ?) ORDER BY seq LIMIT ?`,
  ).all(q.state ?? null, q.state ?? null, q.recipient ?? null, q.recipient ?? null, q.limit ?? -1) as Row[];
  return rows.map(toSw4rmMessage);
}

/** Dead letters (one seq or all) back to the queue: attempts reset, TTL cleared; returns the rows. */
export function replayDead(stmt: Stmt, seq: number | 'all', now: number): Sw4rmMessageRow[] {
  const rows = stmt(
    `UPDATE sw4rm_messages SET state = 'queued', attempts = 0, expires_at = NULL, dead_reason = NULL, lease_until = NULL, updated_at = ?
     WHERE state = 'dead' AND (? IS NULL OR seq = ?) RETURNING ${SW4RM_MESSAGE_COLUMNS}`,
  ).all(now, seq === 'all' ? null : seq, seq === 'all' ? null : seq) as Row[];
  return rows.map(toSw4rmMessage).sort((a, b) => a.seq - b.seq);
}

export function dropDead(stmt: Stmt, seq: number | 'all'): number {
  return stmt(`DELETE FROM sw4rm_messages WHERE state = 'dead' AND (? IS NULL OR seq = ?)`).run(seq === 'all' ? null : seq, seq === 'all' ? null : seq).changes;
}

// ---- registry ----

/** Register or re-register: the descriptor is replaced and the agent is available again. */
export function putAgent(stmt: Stmt, a: Sw4rmAgentWrite, now: number): void {
  stmt(
    `INSERT INTO sw4rm_agents (agent_id, name, descriptor, communication_class, status, implicit, last_heartbeat, registered_at)
     VALUES (?, ?, ?, ?, 'available', 0, ?, ?)
     ON CONFLICT(agent_id) DO UPDATE SET name = excluded.name, descriptor = excluded.descriptor, communication_class = excluded.communication_class,
       status = 'available', implicit = 0, last_heartbeat = excluded.last_heartbeat, deregistered_at = NULL, deregister_reason = NULL`,
  ).run(a.agent_id, a.name, a.descriptor, a.communication_class, now, now);
}

/** An agent that streams without registering: known by its id from now on (a deregistered one stays so). */
export function ensureAgent(stmt: Stmt, agentId: string, now: number): void {
  stmt(
    `INSERT INTO sw4rm_agents (agent_id, name, descriptor, communication_class, status, implicit, last_heartbeat, registered_at)
     VALUES (?, ?, ?, 'STANDARD', 'available', 1, ?, ?) ON CONFLICT(agent_id) DO NOTHING`,
  ).run(agentId, agentId, JSON.stringify({ agent_id: agentId, name: agentId }), now, now);
}

export function heartbeat(stmt: Stmt, agentId: string, agentState: string, health: string, now: number): boolean {
  return (
    stmt(`UPDATE sw4rm_agents SET status = 'available', agent_state = ?, health = ?, last_heartbeat = ? WHERE agent_id = ? AND status != 'deregistered'`).run(agentState, health, now, agentId)
      .changes > 0
  );
}

export function deregisterAgent(stmt: Stmt, agentId: string, reason: string, now: number): boolean {
  return stmt(`UPDATE sw4rm_agents SET status = 'deregistered', deregistered_at = ?, deregister_reason = ? WHERE agent_id = ? AND status != 'deregistered'`).run(now, reason, agentId).changes > 0;
}

export function listAgents(stmt: Stmt): Sw4rmAgentRow[] {
  return (stmt('SELECT * FROM sw4rm_agents ORDER BY agent_id').all() as Row[]).map(toSw4rmAgent);
}

/** Agents silent since `before` become unavailable; returns their ids. */
export function markUnavailable(stmt: Stmt, before: number): string[] {
  return stmt(`UPDATE sw4rm_agents SET status = 'unavailable' WHERE status = 'available' AND last_heartbeat < ? RETURNING agent_id`).pluck().all(before) as string[];
}

/** Implicit agents with an open stream are alive: the stream stands in for their heartbeats. */
export function touchAgents(stmt: Stmt, agentIds: readonly string[], now: number): void {
  const s = stmt(`UPDATE sw4rm_agents SET last_heartbeat = ?, status = 'available' WHERE agent_id = ? AND implicit = 1 AND status != 'deregistered'`);
  for (const id of agentIds) s.run(now, id);
}
