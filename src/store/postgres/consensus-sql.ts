/**
 * Consensus tables on PostgreSQL (migration 25): the shared statements (../consensus-sql.ts) with
 * their `?` placeholders numbered. In a ledger transaction the fence locks the step row (FOR UPDATE),
 * so a lease renewal or takeover waits for the write it fences, and the write sees the takeover.
 *
 * @example
 *   const c = pgConsensus({ q, later, defer, lockedStep: (id) => steps.get(id), now: () => tx.now });
 */
import { ConsensusReads, ConsensusSql, type ConsensusQuery, type ConsensusTxIo } from '../consensus-sql.js';
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

/** How a ledger transaction runs the consensus statements (see ConsensusTxIo): `?` placeholders numbered here. */
export interface PgConsensusIo {
  q: Query;
  later: (text: string, values: readonly unknown[]) => void;
  defer: (text: string, values: readonly unknown[], onRows: (rows: Row[]) => void) => void;
  lockedStep: NonNullable<ConsensusTxIo['lockedStep']>;
  now: () => number;
}

/** The consensus part of a ledger transaction. */
export function pgConsensus(io: PgConsensusIo): ConsensusSql {
  return new ConsensusSql({
    q: query(io.q),
    later: (sql, values) => io.later(numbered(sql), values),
    defer: (sql, values, onRows) => io.defer(numbered(sql), values, onRows),
    lockedStep: io.lockedStep,
    lockSuffix: ' FOR UPDATE',
    now: io.now,
  });
}

/** The store's reads. */
export function pgConsensusReads(read: (text: string, values?: readonly unknown[]) => Promise<Row[]>): ConsensusReads {
  return new ConsensusReads(query(async (text, values) => ({ rows: await read(text, values), rowCount: 0 })));
}
