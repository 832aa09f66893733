/**
 * The SW4RM router and registry on PostgreSQL (migration 21): the same rules as SQLite's
 * sw4rm-router-sql.ts, each call one transaction of the caller's. Claims lock the rows they take
 * (`FOR UPDATE SKIP LOCKED`), so two routers on one database never claim one queued row twice at once.
 * One stream per agent is kept per router process only: an agent that streams from two routers at
 * once gets its in-flight rows delivered again (at-least-once; consumers dedup by message id).
 *
 * @example
 *   const outcomes = await sendMessagesIn(q, items, leaseUntil);
 */
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

type Query = (text: string, values?: readonly unknown[]) => Promise<{ rows: Array<Record<string, unknown>>; rowCount: number }>;

const INSERT_MESSAGE = `INSERT INTO sw4rm_messages (message_id, producer_id, recipient, message_type, idempotency_token, envelope, state, attempts, lease_until, created_at, expires_at, updated_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING ${SW4RM_MESSAGE_COLUMNS}`;

async function agentStatus(q: Query, agentId: string): Promise<string | undefined> {
  return (await q('SELECT status FROM sw4rm_agents WHERE agent_id = $1', [agentId])).rows[0]?.status as string | undefined;
}

async function recipients(q: Query, it: Sw4rmSendItem): Promise<string[] | string> {
  if (it.target !== null) {
    const s = await agentStatus(q, it.target);
    if (s === undefined) return `no agent '${it.target}' is registered`;
    if (s === 'deregistered') return `agent '${it.target}' has deregistered`;
    return [it.target];
  }
  if (it.ack_for !== null) {
    const r = (await q('SELECT producer_id FROM sw4rm_messages WHERE message_id = $1 LIMIT 1', [it.ack_for])).rows[0];
    return r === undefined ? `the acknowledged message '${it.ack_for}' is unknown to this router` : [String(r.producer_id)];
  }
  const all = (await q(`SELECT agent_id FROM sw4rm_agents WHERE status = 'available' AND agent_id <> $1 ORDER BY agent_id`, [it.producer_id])).rows.map((r) => String(r.agent_id));
  return all.length > 0 ? all : 'no target named (metadata x-sw4rm-target) and no other agent is available';
}

async function insert(q: Query, it: Sw4rmSendItem, recipient: string, messageId: string, type: string, envelope: Buffer, leaseUntil: number): Promise<Sw4rmMessageRow> {
  const direct = it.direct(recipient);
  const own = messageId === it.message_id;
  const r = (
    await q(INSERT_MESSAGE, [
      messageId, it.producer_id, recipient, type, own ? it.idempotency_token : null, envelope,
      direct ? 'in_flight' : 'queued', direct ? 1 : 0, direct ? leaseUntil : null, it.created_at, own ? it.expires_at : null, it.created_at,
    ])
  ).rows[0] as Record<string, unknown>;
  return toSw4rmMessage(r);
}

export async function sendMessagesIn(q: Query, items: readonly Sw4rmSendItem[], leaseUntil: number): Promise<Sw4rmSendOutcome[]> {
  const out: Sw4rmSendOutcome[] = [];
  for (const it of items) {
    if (it.idempotency_token !== null) {
      // Serialise concurrent sends of one token: the second waits for the first's row.
      await q('SELECT pg_advisory_xact_lock(hashtext($1))', [`${it.producer_id}\n${it.idempotency_token}`]);
      const had = (await q('SELECT message_id FROM sw4rm_dedup WHERE producer_id = $1 AND idempotency_token = $2 AND expires_at > $3', [it.producer_id, it.idempotency_token, it.created_at])).rows[0];
      if (had) {
        out.push({ status: 'duplicate', message_id: String(had.message_id) });
        continue;
      }
    }
    // Likewise one message_id sent twice at once (no token): without the lock both pass the check
    // and the second insert's unique violation would fail its whole batch (SQLite serialises writers).
    if (it.idempotency_token === null) await q('SELECT pg_advisory_xact_lock(hashtext($1))', [`message:${it.message_id}`]);
    if ((await q('SELECT 1 FROM sw4rm_messages WHERE message_id = $1 LIMIT 1', [it.message_id])).rows.length > 0) {
      out.push({ status: 'duplicate', message_id: it.message_id });
      continue;
    }
    const to = await recipients(q, it);
    if (typeof to === 'string') {
      out.push({ status: 'no_route', reason: to });
      continue;
    }
    const deliveries: Sw4rmMessageRow[] = [];
    for (const r of to) deliveries.push(await insert(q, it, r, it.message_id, it.message_type, it.envelope, leaseUntil));
    if (it.idempotency_token !== null) {
      await q(
        `INSERT INTO sw4rm_dedup (producer_id, idempotency_token, message_id, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (producer_id, idempotency_token) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at`,
        [it.producer_id, it.idempotency_token, it.message_id, it.dedup_until],
      );
    }
    if (it.receipt) {
      const s = await agentStatus(q, it.producer_id);
      if (s !== undefined && s !== 'deregistered') deliveries.push(await insert(q, it, it.producer_id, it.receipt.message_id, 'ACKNOWLEDGEMENT', it.receipt.envelope, leaseUntil));
    }
    out.push({ status: 'stored', deliveries });
  }
  return out;
}

export async function claimMessagesIn(q: Query, recipient: string, limit: number, now: number, leaseUntil: number): Promise<Sw4rmMessageRow[]> {
  await q(`UPDATE sw4rm_messages SET state = 'dead', dead_reason = 'TTL_EXPIRED', updated_at = $1 WHERE recipient = $2 AND state = 'queued' AND expires_at <= $1`, [now, recipient]);
  const rows = (
    await q(
      `UPDATE sw4rm_messages SET state = 'in_flight', attempts = attempts + 1, lease_until = $1, updated_at = $2
       WHERE seq IN (SELECT seq FROM sw4rm_messages WHERE recipient = $3 AND state = 'queued' ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING ${SW4RM_MESSAGE_COLUMNS}`,
      [leaseUntil, now, recipient, limit],
    )
  ).rows;
  return rows.map(toSw4rmMessage).sort((a, b) => a.seq - b.seq);
}

export async function requeueInFlightIn(q: Query, recipient: string, maxAttempts: number, now: number): Promise<number> {
  await q(`UPDATE sw4rm_messages SET state = 'dead', dead_reason = 'MAX_ATTEMPTS', lease_until = NULL, updated_at = $1 WHERE recipient = $2 AND state = 'in_flight' AND attempts >= $3`, [now, recipient, maxAttempts]);
  return (await q(`UPDATE sw4rm_messages SET state = 'queued', lease_until = NULL, updated_at = $1 WHERE recipient = $2 AND state = 'in_flight'`, [now, recipient])).rowCount;
}

export async function ackMessagesIn(q: Query, acks: readonly Sw4rmAckItem[], now: number): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const a of acks) {
    const state: Sw4rmMessageState = a.outcome === 'delivered' ? 'acked' : 'dead';
    const r = await q(
      `UPDATE sw4rm_messages SET state = $1, dead_reason = $2, lease_until = NULL, updated_at = $3
       WHERE seq = $4 AND recipient = $5 AND ($6 = '' OR message_id = $6) AND state IN ('in_flight', 'queued') AND attempts > 0`,
      [state, a.outcome === 'delivered' ? null : 'PERMANENT_FAILURE', now, a.seq, a.recipient, a.message_id],
    );
    out.push(r.rowCount > 0);
  }
  return out;
}

export async function sweepIn(q: Query, now: number, maxAttempts: number, pruneBefore: number): Promise<Sw4rmSweepResult> {
  let dead = (await q(`UPDATE sw4rm_messages SET state = 'dead', dead_reason = 'MAX_ATTEMPTS', lease_until = NULL, updated_at = $1 WHERE state = 'in_flight' AND lease_until <= $1 AND attempts >= $2`, [now, maxAttempts])).rowCount;
  const requeued = (await q(`UPDATE sw4rm_messages SET state = 'queued', lease_until = NULL, updated_at = $1 WHERE state = 'in_flight' AND lease_until <= $1 RETURNING recipient`, [now])).rows.map((r) => String(r.recipient));
  dead += (await q(`UPDATE sw4rm_messages SET state = 'dead', dead_reason = 'TTL_EXPIRED', updated_at = $1 WHERE state = 'queued' AND expires_at <= $1`, [now])).rowCount;
  await q(`DELETE FROM sw4rm_messages WHERE state = 'acked' AND updated_at < $1`, [pruneBefore]);
  await q('DELETE FROM sw4rm_dedup WHERE expires_at <= $1', [now]);
  // Stream-only agents gone past the window, and what still waits for them (as SQLite's sweep).
  const gone = `SELECT agent_id FROM sw4rm_agents WHERE implicit AND status = 'unavailable' AND last_heartbeat < $1`;
  await q(`DELETE FROM sw4rm_messages WHERE state IN ('queued', 'in_flight') AND recipient IN (${gone})`, [pruneBefore]);
  await q(`DELETE FROM sw4rm_agents WHERE agent_id IN (${gone})`, [pruneBefore]);
  return { requeued: [...new Set(requeued)], dead };
}

export const LIST_MESSAGES_SQL = `SELECT ${SW4RM_MESSAGE_COLUMNS} FROM sw4rm_messages WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR recipient = $2) ORDER BY seq LIMIT $3`;

export async function replayDeadIn(q: Query, seq: number | 'all', now: number): Promise<Sw4rmMessageRow[]> {
  const rows = (
    await q(
      `UPDATE sw4rm_messages SET state = 'queued', attempts = 0, expires_at = NULL, dead_reason = NULL, lease_until = NULL, updated_at = $1
       WHERE state = 'dead' AND ($2::bigint IS NULL OR seq = $2) RETURNING ${SW4RM_MESSAGE_COLUMNS}`,
      [now, seq === 'all' ? null : seq],
    )
  ).rows;
  return rows.map(toSw4rmMessage).sort((a, b) => a.seq - b.seq);
}

export const DROP_DEAD_SQL = `DELETE FROM sw4rm_messages WHERE state = 'dead' AND ($1::bigint IS NULL OR seq = $1)`;

// ---- registry ----

export const PUT_AGENT_SQL = `INSERT INTO sw4rm_agents (agent_id, name, descriptor, communication_class, status, implicit, last_heartbeat, registered_at)
  VALUES ($1, $2, $3, $4, 'available', false, $5, $5)
  ON CONFLICT (agent_id) DO UPDATE SET name = excluded.name, descriptor = excluded.descriptor, communication_class = excluded.communication_class,
    status = 'available', implicit = false, last_heartbeat = excluded.last_heartbeat, deregistered_at = NULL, deregister_reason = NULL`;

export const ENSURE_AGENT_SQL = `INSERT INTO sw4rm_agents (agent_id, name, descriptor, communication_class, status, implicit, last_heartbeat, registered_at)
  VALUES ($1, $1, $2, 'STANDARD', 'available', true, $3, $3) ON CONFLICT (agent_id) DO NOTHING`;

export const HEARTBEAT_SQL = `UPDATE sw4rm_agents SET status = 'available', agent_state = $1, health = $2, last_heartbeat = $3 WHERE agent_id = $4 AND status <> 'deregistered'`;

export const DEREGISTER_SQL = `UPDATE sw4rm_agents SET status = 'deregistered', deregistered_at = $1, deregister_reason = $2 WHERE agent_id = $3 AND status <> 'deregistered'`;

export const LIST_AGENTS_SQL = 'SELECT * FROM sw4rm_agents ORDER BY agent_id';

export const MARK_UNAVAILABLE_SQL = `UPDATE sw4rm_agents SET status = 'unavailable' WHERE status = 'available' AND last_heartbeat < $1 RETURNING agent_id`;

export const TOUCH_AGENTS_SQL = `UPDATE sw4rm_agents SET last_heartbeat = $1, status = 'available' WHERE agent_id = ANY($2::text[]) AND implicit AND status <> 'deregistered'`;

export { toSw4rmAgent, toSw4rmMessage, type Sw4rmAgentRow, type Sw4rmAgentWrite };
