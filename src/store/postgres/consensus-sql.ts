/**
 * Consensus tables on PostgreSQL (migration 25): the shared statements (../consensus-sql.ts) with
 * their `?` placeholders numbered. In a ledger transaction the fence locks the step row (FOR UPDATE),
 * so a lease renewal or takeover waits for the write it fences, and the write sees the takeover.
 *
 * @example
 *   const c = pgConsensus((text, values) => q(text, values), tx.now);
 */
import { ConsensusReads, ConsensusSql, type ConsensusQuery } from '../consensus-sql.js';
import type { Row } from '../rows.js';

type Query = (text: string, values?: readonly unknown[]) => Promise<{ rows: Row[]; rowCount: number }>;

/** `?` → `$1`, `$2`, … (the statements hold no `?` inside literals). */
function numbered(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

function query(q: Query): ConsensusQuery {
  return (sql, values) => q(numbered(sql), values);
}

/** The consensus part of a ledger transaction. */
export function pgConsensus(q: Query, now: number): ConsensusSql {
  return new ConsensusSql(query(q), ' FOR UPDATE', now);
}

/** The store's reads. */
export function pgConsensusReads(read: (text: string, values?: readonly unknown[]) => Promise<Row[]>): ConsensusReads {
  return new ConsensusReads(query(async (text, values) => ({ rows: await read(text, values), rowCount: 0 })));
}
