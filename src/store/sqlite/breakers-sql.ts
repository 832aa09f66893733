/**
 * Circuit breakers on SQLite (migration 19): one row per breaker key, read by primary key, changed
 * in one write transaction (the file's write lock makes the read-change-write atomic across
 * processes).
 *
 * @example
 *   const row = getBreaker((sql) => db.prepare(sql), 'tool:search');
 */
import type Database from 'better-sqlite3';
import { BREAKER_COLUMNS, emptyBreaker, toBreakerRow, type BreakerChange, type BreakerRow } from '../breaker-types.js';

type Stmt = (sql: string) => Database.Statement;

export function getBreaker(stmt: Stmt, key: string): BreakerRow | undefined {
  const r = stmt('SELECT * FROM circuit_breakers WHERE key = ?').get(key) as Record<string, unknown> | undefined;
  return r ? toBreakerRow(r) : undefined;
}

export function listBreakers(stmt: Stmt): BreakerRow[] {
  return (stmt('SELECT * FROM circuit_breakers ORDER BY key').all() as Array<Record<string, unknown>>).map(toBreakerRow);
}

/** Inside a write transaction: apply `change` and write the row if it changed. */
export function updateBreaker(stmt: Stmt, key: string, kind: string, change: BreakerChange): { before: BreakerRow; after: BreakerRow } {
  const before = getBreaker(stmt, key) ?? emptyBreaker(key, kind);
  const after = change(before);
  if (after !== before) {
    stmt(`INSERT OR REPLACE INTO circuit_breakers (${BREAKER_COLUMNS.join(', ')}) VALUES (${BREAKER_COLUMNS.map(() => '?').join(', ')})`).run(
      ...BREAKER_COLUMNS.map((c) => after[c]),
    );
  }
  return { before, after };
}

export function deleteBreaker(stmt: Stmt, key: string): BreakerRow | undefined {
  const before = getBreaker(stmt, key);
  if (before) stmt('DELETE FROM circuit_breakers WHERE key = ?').run(key);
  return before;
}
