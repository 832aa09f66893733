/**
 * The metrics' queue gauges on PostgreSQL: one statement of four indexed subqueries (the partial
 * indexes of ready steps, `idx_workers_live` of migration 17 and `idx_approvals_pending`), on the
 * database's clock.
 *
 * @example
 *   const rows = await read(queueGaugesSql(nowSql), [liveWithinMs]);
 *   const gauges = toQueueGauges(rows[0]);
 */
import type { QueueGauges } from '../commit-observer.js';
import type { Row } from '../rows.js';

/** `$1`: how old a live worker's heartbeat may be (ms). `nowSql`: the store's clock expression in milliseconds. */
export function queueGaugesSql(nowSql: string): string {
  return `WITH t AS (SELECT ${nowSql} AS now)
    SELECT t.now,
      (SELECT COUNT(*) FROM step_executions WHERE status = 'ready' AND available_at <= t.now) AS ready,
      (SELECT MIN(available_at) FROM step_executions WHERE status = 'ready' AND available_at <= t.now) AS oldest,
      (SELECT COUNT(*) FROM workers WHERE stopped_at IS NULL AND heartbeat_at >= t.now - $1::bigint) AS live,
      (SELECT COUNT(*) FROM approvals WHERE status = 'pending') AS pending
    FROM t`;
}

export function toQueueGauges(row: Row | undefined): QueueGauges {
  const n = (v: unknown): number => Number(v ?? 0);
  return {
    ready_steps: n(row?.ready),
    oldest_ready_at: row?.oldest === null || row?.oldest === undefined ? null : Number(row.oldest),
    live_workers: n(row?.live),
    pending_approvals: n(row?.pending),
    now: n(row?.now),
  };
}
