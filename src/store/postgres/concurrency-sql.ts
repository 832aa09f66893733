/**
 * The PostgreSQL side of concurrency keys (migration 12's `run_concurrency` table). Under READ
 * COMMITTED two transactions creating runs of one key could both count its active runs before
 * either commits, and both take the last slot: every transaction that counts or changes a key's
 * slots first takes a transaction-scoped advisory lock on (workflow, key), so they take turns and
 * each counts what the one before committed.
 */
import type { Row } from '../rows.js';
import type { ConcurrencyTx, RunConcurrency, RunConcurrencyInfo } from '../types.js';

/** PostgreSQL text holds no NUL character (a key from a run's input might): it becomes U+FFFD, as in pg-tx. */
function noNul(v: string): string {
  return v.includes('\0') ? v.replaceAll('\0', '\uFFFD') : v;
}

/** A statement whose result is needed now (queued writes go first), and a write that can wait. */
export interface PgStatements {
  q(text: string, values?: readonly unknown[]): Promise<{ rows: Row[]; rowCount: number }>;
  later(text: string, values?: readonly unknown[]): void;
}

const COLS = 'run_id, workflow_name, concurrency_key AS key, max_active AS "limit", state, queued_at';

function toRow(r: Row): RunConcurrency {
  return { run_id: r.run_id as string, workflow_name: r.workflow_name as string, key: r.key as string, limit: Number(r.limit), state: r.state as RunConcurrency['state'], queued_at: Number(r.queued_at) };
}

/** The concurrency rows of one transaction. */
export class PgConcurrencyTx implements ConcurrencyTx {
  private readonly locked = new Set<string>();

  constructor(private readonly s: PgStatements) {}

  async lockKey(workflow: string, key: string): Promise<void> {
    const id = `${workflow}\u0000${key}`;
    if (this.locked.has(id)) return;
    // Held until COMMIT or ROLLBACK: a crash mid-transaction releases it with the connection.
    await this.s.q(`SELECT pg_advisory_xact_lock(hashtext('swarm.concurrency_key'), hashtext($1))`, [noNul(id)]);
    this.locked.add(id);
  }

  async countActive(workflow: string, key: string): Promise<number> {
    const r = await this.s.q(`SELECT COUNT(*)::int AS n FROM run_concurrency WHERE workflow_name = $1 AND concurrency_key = $2 AND state = 'active'`, [workflow, noNul(key)]);
    return Number(r.rows[0]?.n ?? 0);
  }

  async get(runId: string): Promise<RunConcurrency | undefined> {
    const r = (await this.s.q(`SELECT ${COLS} FROM run_concurrency WHERE run_id = $1`, [runId])).rows[0];
    return r ? toRow(r) : undefined;
  }

  async put(row: RunConcurrency): Promise<void> {
    this.s.later(
      `INSERT INTO run_concurrency (run_id, workflow_name, concurrency_key, max_active, state, queued_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (run_id) DO UPDATE SET state = excluded.state, queued_at = excluded.queued_at`,
      [row.run_id, row.workflow_name, noNul(row.key), row.limit, row.state, row.queued_at],
    );
  }

  async setState(runId: string, state: RunConcurrency['state']): Promise<void> {
    this.s.later('UPDATE run_concurrency SET state = $1 WHERE run_id = $2', [state, runId]);
  }

  async oldestQueued(workflow: string, key: string, limit: number): Promise<RunConcurrency[]> {
    const r = await this.s.q(
      `SELECT ${COLS} FROM run_concurrency WHERE workflow_name = $1 AND concurrency_key = $2 AND state = 'queued' ORDER BY queued_at, run_id LIMIT $3`,
      [workflow, noNul(key), limit],
    );
    return r.rows.map(toRow);
  }
}

/** The SQL of `Store.runConcurrency`: the rows of these runs, each with its key's active count. */
export const RUN_CONCURRENCY_SQL = `SELECT ${COLS},
  (SELECT COUNT(*)::int FROM run_concurrency a WHERE a.workflow_name = c.workflow_name AND a.concurrency_key = c.concurrency_key AND a.state = 'active') AS active
  FROM run_concurrency c WHERE run_id = ANY($1)`;

export function toRunConcurrencyInfo(rows: readonly Row[]): Map<string, RunConcurrencyInfo> {
  return new Map(rows.map((r) => [r.run_id as string, { ...toRow(r), active: Number(r.active) }]));
}
