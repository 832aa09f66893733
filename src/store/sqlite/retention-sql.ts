/**
 * The SQL of retention on SQLite (migration 16), used by SqliteStore: finished run trees past a
 * cut-off, their deletion with every row that points at them, checkpoint compaction, and the file's
 * size. Id lists go in as one JSON array parameter (`json_each`), so each statement is prepared once
 * whatever the batch size.
 *
 * Freed pages go on SQLite's free list and are reused by later writes: the file does not shrink
 * (auto_vacuum is off, and turning it on needs a full VACUUM of an existing file), but it stops
 * growing while gc deletes as much as is written. `databaseSize` reports the free pages.
 *
 * @example
 *   const page = expiredRunTrees(stmt, { before, statuses: ['completed'], limit: 500 });
 */
import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { Row } from '../rows.js';
import {
  emptyRowCounts,
  fillPage,
  finishedOnly,
  groupTrees,
  RUN_TABLES,
  runDeleteStatements,
  runSideDeletes,
  type CompactOptions,
  type CompactReport,
  type DatabaseSize,
  type ExpiredRunPage,
  type ExpiredRunQuery,
  type RunDeleteReport,
  type RunTree,
} from '../retention-types.js';

type Stmt = (sql: string) => Database.Statement;

/** Top-level runs: no parent, or a parent that is gone (deleted before sub-workflow runs were kept with it). */
const TOP_LEVEL = '(r.parent_run_id IS NULL OR NOT EXISTS (SELECT 1 FROM workflow_runs p WHERE p.id = r.parent_run_id))';

/** Every run of the trees rooted at the JSON array `?`, with its status (UNION: a cycle cannot loop). */
const TREE = `WITH RECURSIVE tree(root, id) AS (
  SELECT value, value FROM json_each(?)
  UNION SELECT t.root, c.id FROM tree t JOIN workflow_runs c ON c.parent_run_id = t.id
) SELECT t.root AS root, t.id AS id, w.status AS status, w.completed_at AS completed_at FROM tree t JOIN workflow_runs w ON w.id = t.id`;

const IN_IDS = 'IN (SELECT value FROM json_each(?))';

const DELETE = runDeleteStatements(IN_IDS);
const SIDE_DELETES = runSideDeletes(IN_IDS);

function candidateRoots(stmt: Stmt, q: { before: number; statuses: string[] }, after: { completed_at: number; id: string }, limit: number): Array<{ id: string; completed_at: number }> {
  const rows = stmt(
    `SELECT r.id AS id, r.completed_at AS completed_at FROM workflow_runs r
     WHERE r.completed_at IS NOT NULL AND r.completed_at < ? AND (r.completed_at, r.id) > (?, ?)
       AND r.status IN (SELECT value FROM json_each(?)) AND ${TOP_LEVEL}
     ORDER BY r.completed_at, r.id LIMIT ?`,
  ).all(q.before, after.completed_at, after.id, JSON.stringify(q.statuses), limit) as Row[];
  return rows.map((r) => ({ id: String(r.id), completed_at: Number(r.completed_at) }));
}

/** Which of these roots still qualify, looked up by id. */
function qualifyingRoots(stmt: Stmt, q: { before: number; statuses: string[] }, ids: readonly string[]): Array<{ id: string; completed_at: number }> {
  const rows = stmt(
    `SELECT r.id AS id, r.completed_at AS completed_at FROM workflow_runs r
     WHERE r.id ${IN_IDS} AND r.completed_at IS NOT NULL AND r.completed_at < ?
       AND r.status IN (SELECT value FROM json_each(?)) AND ${TOP_LEVEL}
     ORDER BY r.completed_at, r.id`,
  ).all(JSON.stringify(ids), q.before, JSON.stringify(q.statuses)) as Row[];
  return rows.map((r) => ({ id: String(r.id), completed_at: Number(r.completed_at) }));
}

/** One page of finished run trees past the cut-off, oldest first (see ExpiredRunQuery). */
export function expiredRunTrees(stmt: Stmt, q: ExpiredRunQuery): ExpiredRunPage {
  const statuses = finishedOnly(q.statuses);
  if (statuses.length === 0 || q.limit < 1) return { trees: [], skipped: 0, next: null };
  const roots = candidateRoots(stmt, { before: q.before, statuses }, q.after ?? { completed_at: Number.MIN_SAFE_INTEGER, id: '' }, q.limit);
  const members = roots.length ? (stmt(TREE).all(JSON.stringify(roots.map((r) => r.id))) as Row[]) : [];
  return fillPage(roots, groupTrees(roots, members, q.before), q.limit, roots.length === q.limit);
}

/**
 * Delete these trees in one transaction, each only if it still qualifies (its root finished before
 * `before` in one of `statuses`, every run of it finished, the same runs as when it was read: what
 * was archived is what goes).
 */
export function deleteRunTrees(db: Database.Database, stmt: Stmt, trees: readonly RunTree[], q: { before: number; statuses: ExpiredRunQuery['statuses'] }): RunDeleteReport {
  const rows = emptyRowCounts();
  const statuses = finishedOnly(q.statuses);
  if (trees.length === 0 || statuses.length === 0) return { roots: [], runs: 0, rows };
  return db
    .transaction((): RunDeleteReport => {
      const roots = qualifyingRoots(stmt, { before: q.before, statuses }, trees.map((t) => t.root));
      const grouped = groupTrees(roots, roots.length ? (stmt(TREE).all(JSON.stringify(roots.map((r) => r.id))) as Row[]) : [], q.before);
      const asRead = new Map(trees.map((t) => [t.root, new Set(t.runs)]));
      const going = grouped.ok.filter((t) => {
        const before = asRead.get(t.root);
        return before !== undefined && before.size === t.runs.length && t.runs.every((id) => before.has(id));
      });
      const ids = JSON.stringify(going.flatMap((t) => t.runs));
      for (const table of RUN_TABLES) rows[table] = stmt(DELETE[table]).run(ids).changes;
      // Their budgets, consensus tasks and imported bundles go with them (runSideDeletes).
      for (const sql of SIDE_DELETES) stmt(sql).run(ids);
      return { roots: going.map((t) => t.root), runs: rows.workflow_runs, rows };
    })
    .immediate();
}

/** Compact the checkpoints of up to `limit` finished sessions (see CompactOptions), in one transaction. */
export function compactSessions(db: Database.Database, stmt: Stmt, o: CompactOptions): CompactReport {
  return db
    .transaction((): CompactReport => {
      const report: CompactReport = { examined: 0, compacted: 0, bytes_saved: 0 };
      const sessions = stmt(
        `SELECT id, envelope FROM agent_sessions WHERE compacted_at IS NULL AND updated_at < ? AND status IN ('completed', 'failed') ORDER BY updated_at LIMIT ?`,
      ).all(o.before, o.limit) as Row[];
      for (const s of sessions) {
        report.examined++;
        const envelope = s.envelope as string | null;
        const count = Number(stmt('SELECT COUNT(*) FROM agent_messages WHERE session_id = ?').pluck().get(s.id));
        const smaller = envelope === null ? null : o.compact(envelope, count);
        if (smaller !== null && envelope !== null && smaller.length < envelope.length) {
          report.compacted++;
          report.bytes_saved += Buffer.byteLength(envelope) - Buffer.byteLength(smaller);
          stmt('UPDATE agent_sessions SET envelope = ?, compacted_at = updated_at WHERE id = ?').run(smaller, s.id);
        } else {
          stmt('UPDATE agent_sessions SET compacted_at = updated_at WHERE id = ?').run(s.id);
        }
      }
      return report;
    })
    .immediate();
}

/** The logical size (pages), the free pages, and the file with its WAL on disk. */
export function databaseSize(db: Database.Database, path: string): DatabaseSize {
  const pageSize = Number(db.pragma('page_size', { simple: true }));
  const pages = Number(db.pragma('page_count', { simple: true }));
  const free = Number(db.pragma('freelist_count', { simple: true }));
  let file = 0;
  for (const p of [path, `${path}-wal`]) {
    try {
      file += statSync(p).size;
    } catch {
      // No WAL file at the moment (checkpointed and removed): nothing to add.
    }
  }
  return { bytes: pages * pageSize, free_bytes: free * pageSize, file_bytes: file };
}
