/**
 * The rows of the SW4RM scheduler side (migration 22): scheduled tasks, delegations and their
 * cancellation flags, negotiations and their entries, negotiation rooms and votes, policies, HITL
 * invocations. They are documents in one table, `sw4rm_sched_docs`, keyed by (kind, key), with the
 * two attributes they are looked up by (`grp`, `owner`, both indexed) and a status. A change reads
 * one group's documents and writes its result in one transaction, the group locked against other
 * writers (SQLite: the write lock; PostgreSQL: an advisory lock on the group), so the scheduler's
 * read-decide-write steps (start a task, preempt one, record a vote and decide) happen once.
 *
 * @example
 *   await store.updateSw4rmGroup('scope:gpu', ['task'], (docs) => ({ put: [next], remove: [] }));
 */

/** One document. `doc` is JSON; `updated_at` is ms since the epoch. */
export interface Sw4rmDoc {
  kind: string;
  key: string;
  /** The group the document changes with (a task's scope, a vote's room and artifact …). */
  grp: string;
  /** Who it belongs to (a task's agent), '' when nobody. */
  owner: string;
  status: string;
  doc: unknown;
  updated_at: number;
}

export interface Sw4rmGroupWrite {
  put: Sw4rmDoc[];
  remove: Array<{ kind: string; key: string }>;
}

/** Given the group's documents of the asked kinds (by kind, then key), what to write. May throw: nothing is written. */
export type Sw4rmGroupChange = (docs: Sw4rmDoc[]) => Sw4rmGroupWrite;

export const SW4RM_DOC_COLUMNS = ['kind', 'key', 'grp', 'owner', 'status', 'doc', 'updated_at'] as const;

export function toSw4rmDoc(r: Record<string, unknown>): Sw4rmDoc {
  return {
    kind: String(r.kind),
    key: String(r.key),
    grp: String(r.grp),
    owner: String(r.owner),
    status: String(r.status),
    doc: typeof r.doc === 'string' ? JSON.parse(r.doc) : r.doc,
    updated_at: Number(r.updated_at),
  };
}

export function sw4rmDocValues(d: Sw4rmDoc): unknown[] {
  return [d.kind, d.key, d.grp, d.owner, d.status, JSON.stringify(d.doc ?? null), d.updated_at];
}

/** The statements both stores run, with `?` placeholders (PostgreSQL numbers them). */
export const SW4RM_SQL = {
  upsert: `INSERT INTO sw4rm_sched_docs (kind, key, grp, owner, status, doc, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (kind, key) DO UPDATE SET grp = excluded.grp, owner = excluded.owner, status = excluded.status, doc = excluded.doc, updated_at = excluded.updated_at`,
  remove: 'DELETE FROM sw4rm_sched_docs WHERE kind = ? AND key = ?',
  byGroup: (kinds: number) => `SELECT * FROM sw4rm_sched_docs WHERE grp = ? AND kind IN (${Array(kinds).fill('?').join(', ')}) ORDER BY kind, key`,
  byKeys: (keys: number) => `SELECT * FROM sw4rm_sched_docs WHERE kind = ? AND key IN (${Array(keys).fill('?').join(', ')}) ORDER BY key`,
  listGroup: 'SELECT * FROM sw4rm_sched_docs WHERE kind = ? AND grp = ? ORDER BY key',
  listOwner: 'SELECT * FROM sw4rm_sched_docs WHERE kind = ? AND owner = ? ORDER BY key',
};
