/**
 * Consensus tables on SQLite (migration 25): the shared statements (../consensus-sql.ts) over
 * better-sqlite3's synchronous statements. One writer at a time (BEGIN IMMEDIATE): the step row needs
 * no lock of its own for the fence.
 *
 * @example
 *   const c = sqliteConsensus((sql) => db.prepare(sql), Date.now());
 */
import type Database from 'better-sqlite3';
import { ConsensusReads, ConsensusSql, type ConsensusQuery } from '../consensus-sql.js';
import type { Row } from '../rows.js';

type Stmt = (sql: string) => Database.Statement;

function query(stmt: Stmt): ConsensusQuery {
  return async (sql, values) => {
    const s = stmt(sql);
    if (s.reader) return { rows: s.all(...values) as Row[], rowCount: 0 };
    return { rows: [], rowCount: s.run(...values).changes };
  };
}

/** The consensus part of a write transaction. */
export function sqliteConsensus(stmt: Stmt, now: number): ConsensusSql {
  return new ConsensusSql({ q: query(stmt), lockSuffix: '', now: () => now });
}

/** The store's reads. */
export function sqliteConsensusReads(stmt: Stmt): ConsensusReads {
  return new ConsensusReads(query(stmt));
}
