/**
 * The SW4RM scheduler side's documents on SQLite (migration 22, src/store/sw4rm-sched-types.ts): a
 * group's change is one IMMEDIATE transaction, so the file's write lock serialises it against every
 * other writer, in this process and others.
 *
 * @example
 *   const docs = listSw4rmDocs((sql) => db.prepare(sql), 'task', { owner: 'agent-1' });
 */
import type Database from 'better-sqlite3';
import { SW4RM_SQL, sw4rmDocValues, toSw4rmDoc, type Sw4rmDoc, type Sw4rmGroupChange, type Sw4rmGroupWrite } from '../sw4rm-sched-types.js';

type Stmt = (sql: string) => Database.Statement;
type Row = Record<string, unknown>;

export function getSw4rmDocs(stmt: Stmt, kind: string, keys: readonly string[]): Sw4rmDoc[] {
  if (keys.length === 0) return [];
  return (stmt(SW4RM_SQL.byKeys(keys.length)).all(kind, ...keys) as Row[]).map(toSw4rmDoc);
}

export function listSw4rmDocs(stmt: Stmt, kind: string, by: { group: string } | { owner: string }): Sw4rmDoc[] {
  const rows = 'group' in by ? stmt(SW4RM_SQL.listGroup).all(kind, by.group) : stmt(SW4RM_SQL.listOwner).all(kind, by.owner);
  return (rows as Row[]).map(toSw4rmDoc);
}

/** Inside a write transaction: read the group, apply `change`, write what it says. */
export function updateSw4rmGroup(stmt: Stmt, group: string, kinds: readonly string[], change: Sw4rmGroupChange): Sw4rmGroupWrite {
  const docs = (stmt(SW4RM_SQL.byGroup(kinds.length)).all(group, ...kinds) as Row[]).map(toSw4rmDoc);
  const out = change(docs);
  for (const r of out.remove) stmt(SW4RM_SQL.remove).run(r.kind, r.key);
  for (const d of out.put) stmt(SW4RM_SQL.upsert).run(...sw4rmDocValues(d));
  return out;
}
