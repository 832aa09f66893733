/**
 * The metrics' side of the SQLite store: the queue gauges read at scrape time (each an indexed
 * query: the partial indexes `idx_steps_ready`, `idx_workers_live` of migration 17 and
 * `idx_approvals_pending`), and the report of a group commit to its observer.
 *
 * @example
 *   const g = queueGauges((sql) => db.prepare(sql), Date.now(), Date.now() - 30_000);
 */
import type Database from 'better-sqlite3';
import type { CommitObserver, QueueGauges } from '../commit-observer.js';
import type { LedgerTx } from '../types.js';

export function queueGauges(stmt: (sql: string) => Database.Statement, now: number, liveSince: number): QueueGauges {
  const ready = stmt(`SELECT COUNT(*) AS n, MIN(available_at) AS oldest FROM step_executions WHERE status = 'ready' AND available_at <= ?`).get(now) as { n: number; oldest: number | null };
  const workers = stmt('SELECT COUNT(*) FROM workers WHERE stopped_at IS NULL AND heartbeat_at >= ?').pluck().get(liveSince) as number;
  const approvals = stmt(`SELECT COUNT(*) FROM approvals WHERE status = 'pending'`).pluck().get() as number;
  return { ready_steps: ready.n, oldest_ready_at: ready.oldest, live_workers: workers, pending_approvals: approvals, now };
}

/** A group commit happened: its duration (BEGIN to COMMIT, from `began`) and the transactions in it that committed. */
export function observeCommit(observer: CommitObserver, began: number, done: ReadonlyArray<{ ok: boolean; tx?: LedgerTx }>): void {
  const txs: LedgerTx[] = [];
  for (const d of done) if (d.ok && d.tx) txs.push(d.tx);
  observer.committed('sqlite', (performance.now() - began) / 1000, txs);
}
