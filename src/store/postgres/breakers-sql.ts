/**
 * Circuit breakers on PostgreSQL (migration 19): one row per breaker key, read by primary key. A
 * change locks the row (`SELECT … FOR UPDATE` after inserting the closed placeholder if there is
 * none), so workers that see the Nth failure at once open the breaker once.
 *
 * @example
 *   const { before, after } = await updateBreakerIn(q, 'mcp:github', 'mcp', change);
 */
import { BREAKER_COLUMNS, emptyBreaker, toBreakerRow, type BreakerChange, type BreakerRow } from '../breaker-types.js';

type Query = (text: string, values?: readonly unknown[]) => Promise<{ rows: Array<Record<string, unknown>>; rowCount: number }>;

export const GET_BREAKER_SQL = 'SELECT * FROM circuit_breakers WHERE key = $1';
export const LIST_BREAKERS_SQL = 'SELECT * FROM circuit_breakers ORDER BY key';
export const DELETE_BREAKER_SQL = 'DELETE FROM circuit_breakers WHERE key = $1 RETURNING *';

const PLACEHOLDERS = BREAKER_COLUMNS.map((_, i) => `$${i + 1}`).join(', ');
const INSERT_SQL = `INSERT INTO circuit_breakers (${BREAKER_COLUMNS.join(', ')}) VALUES (${PLACEHOLDERS}) ON CONFLICT (key) DO NOTHING`;
const UPDATE_SQL = `UPDATE circuit_breakers SET ${BREAKER_COLUMNS.slice(1)
  .map((c, i) => `${c} = $${i + 2}`)
  .join(', ')} WHERE key = $1`;

/** Inside a transaction: lock the row, apply `change`, write it if it changed. */
export async function updateBreakerIn(q: Query, key: string, kind: string, change: BreakerChange): Promise<{ before: BreakerRow; after: BreakerRow }> {
  const empty = emptyBreaker(key, kind);
  await q(INSERT_SQL, BREAKER_COLUMNS.map((c) => empty[c]));
  const r = (await q('SELECT * FROM circuit_breakers WHERE key = $1 FOR UPDATE', [key])).rows[0];
  const before = r ? toBreakerRow(r) : empty;
  const after = change(before);
  if (after !== before) await q(UPDATE_SQL, BREAKER_COLUMNS.map((c) => after[c]));
  return { before, after };
}

export { toBreakerRow };
