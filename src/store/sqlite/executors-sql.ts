/**
 * The executors registry on SQLite (migration 24), and a run's `shared_inputs` column.
 *
 * @example
 *   putExecutor((sql) => db.prepare(sql), { name: 'rt', base_url: 'http://127.0.0.1:8787', token_secret: null, public_key: null }, Date.now());
 */
import type Database from 'better-sqlite3';
import { toExecutorRecord, type ExecutorRecord, type ExecutorWrite } from '../executor-types.js';

type Stmt = (sql: string) => Database.Statement;

export function putExecutor(stmt: Stmt, e: ExecutorWrite, now: number): ExecutorRecord {
  stmt(
    `INSERT INTO executors (name, base_url, token_secret, public_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET base_url = excluded.base_url, token_secret = excluded.token_secret, public_key = excluded.public_key, updated_at = excluded.updated_at`,
  ).run(e.name, e.base_url, e.token_secret, e.public_key, now, now);
  return getExecutor(stmt, e.name) as ExecutorRecord;
}

export function getExecutor(stmt: Stmt, name: string): ExecutorRecord | undefined {
  const r = stmt('SELECT * FROM executors WHERE name = ?').get(name) as Record<string, unknown> | undefined;
  return r ? toExecutorRecord(r) : undefined;
}

export function listExecutors(stmt: Stmt): ExecutorRecord[] {
  return (stmt('SELECT * FROM executors ORDER BY name').all() as Array<Record<string, unknown>>).map(toExecutorRecord);
}

export function deleteExecutor(stmt: Stmt, name: string): boolean {
  return stmt('DELETE FROM executors WHERE name = ?').run(name).changes > 0;
}

/** The run's `shared_inputs` JSON text (null: none; undefined: no such run). */
export function getRunSharedInputs(stmt: Stmt, runId: string): string | null | undefined {
  const r = stmt('SELECT shared_inputs FROM workflow_runs WHERE id = ?').get(runId) as { shared_inputs: string | null } | undefined;
  return r ? r.shared_inputs : undefined;
}
