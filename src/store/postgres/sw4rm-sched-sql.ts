/**
 * The SW4RM scheduler side's documents on PostgreSQL (migration 22, src/store/sw4rm-sched-types.ts):
 * a group's change takes a transaction-scoped advisory lock on the group first, so two servers
 * changing one scope (or one room) at once take turns, and the read-decide-write happens once.
 *
 * @example
 *   const out = await updateSw4rmGroupIn(q, 'scope:gpu', ['task'], change);
 */
import { SW4RM_SQL, sw4rmDocValues, toSw4rmDoc, type Sw4rmDoc, type Sw4rmGroupChange, type Sw4rmGroupWrite } from '../sw4rm-sched-types.js';

type Query = (text: string, values?: readonly unknown[]) => Promise<{ rows: Array<Record<string, unknown>>; rowCount: number }>;

/** `?` placeholders numbered for PostgreSQL. */
function numbered(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

const UPSERT = numbered(SW4RM_SQL.upsert);
const REMOVE = numbered(SW4RM_SQL.remove);
export const LIST_GROUP_SQL = numbered(SW4RM_SQL.listGroup);
export const LIST_OWNER_SQL = numbered(SW4RM_SQL.listOwner);
export const byKeysSql = (n: number) => numbered(SW4RM_SQL.byKeys(n));

export async function updateSw4rmGroupIn(q: Query, group: string, kinds: readonly string[], change: Sw4rmGroupChange): Promise<Sw4rmGroupWrite> {
  await q("SELECT pg_advisory_xact_lock(hashtext('sw4rm-sched:' || $1))", [group]);
  const docs = (await q(numbered(SW4RM_SQL.byGroup(kinds.length)), [group, ...kinds])).rows.map(toSw4rmDoc);
  const out = change(docs);
  for (const r of out.remove) await q(REMOVE, [r.kind, r.key]);
  for (const d of out.put) await q(UPSERT, sw4rmDocValues(d));
  return out;
}

export function toDocs(rows: Array<Record<string, unknown>>): Sw4rmDoc[] {
  return rows.map(toSw4rmDoc);
}
