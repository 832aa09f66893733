/**
 * The SQLite side of concurrency keys (migration 12's `run_concurrency` table). A write transaction
 * holds SQLite's single write lock (BEGIN IMMEDIATE) from its start, so counting a key's active runs
 * and changing them can never interleave with another process's: no lock of its own is needed.
 */
import type Database from 'better-sqlite3';
import type { ConcurrencyTx, RunConcurrency, RunConcurrencyInfo } from '../types.js';

type Stmt = (sql: string) => Database.Statement;

const COLS = 'run_id, workflow_name, concurrency_key AS key, max_active AS "limit", state, queued_at';

/** The concurrency rows of one write transaction. */
export class SqliteConcurrencyTx implements ConcurrencyTx {
  constructor(private readonly stmt: Stmt) {}

  async lockKey(): Promise<void> {
    // The transaction already holds the database's write lock.
  }

  async countActive(workflow: string, key: string): Promise<number> {
    return this.stmt(`SELECT COUNT(*) FROM run_concurrency WHERE workflow_name = ? AND concurrency_key = ? AND state = 'active'`).pluck().get(workflow, key) as number;
  }

  async get(runId: string): Promise<RunConcurrency | undefined> {
    return this.stmt(`SELECT ${COLS} FROM run_concurrency WHERE run_id = ?`).get(runId) as RunConcurrency | undefined;
  }

  async put(row: RunConcurrency): Promise<void> {
    this.stmt(
      `INSERT INTO run_concurrency (run_id, workflow_name, concurrency_key, max_active, state, queued_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(run_id) DO UPDATE SET state = excluded.state, queued_at = excluded.queued_at`,
    ).run(row.run_id, row.workflow_name, row.key, row.limit, row.state, row.queued_at);
  }

  async setState(runId: string, state: RunConcurrency['state']): Promise<void> {
    this.stmt('UPDATE run_concurrency SET state = ? WHERE run_id = ?').run(state, runId);
  }

  async oldestQueued(workflow: string, key: string, limit: number): Promise<RunConcurrency[]> {
    return this.stmt(
      `SELECT ${COLS} FROM run_concurrency WHERE workflow_name = ? AND concurrency_key = ? AND state = 'queued' ORDER BY queued_at, run_id LIMIT ?`,
    ).all(workflow, key, limit) as RunConcurrency[];
  }
}

/** The rows of these runs, each with its key's active count (a read outside any write transaction). */
export function readRunConcurrency(stmt: Stmt, runIds: readonly string[]): Map<string, RunConcurrencyInfo> {
  const out = new Map<string, RunConcurrencyInfo>();
  const one = stmt(
    `SELECT ${COLS}, (SELECT COUNT(*) FROM run_concurrency a WHERE a.workflow_name = c.workflow_name AND a.concurrency_key = c.concurrency_key AND a.state = 'active') AS active
     FROM run_concurrency c WHERE run_id = ?`,
  );
  for (const id of new Set(runIds)) {
    const row = one.get(id) as RunConcurrencyInfo | undefined;
    if (row) out.set(id, { ...row });
  }
  return out;
}
