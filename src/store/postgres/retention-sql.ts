/**
 * The SQL of retention on PostgreSQL (migration 16), used by PostgresStore: finished run trees past a
 * cut-off, their deletion with every row that points at them, checkpoint compaction, and the
 * database's size. Id lists go in as one text[] parameter.
 *
 * A deletion locks the runs of its trees (FOR UPDATE) before it checks them again, so a run that a
 * concurrent transaction reopens (a retry) is either seen reopened and kept, or waits for the delete.
 * Space freed by DELETE is reused by PostgreSQL after (auto)vacuum; the database size rarely shrinks.
 *
 * @example
 *   const page = await expiredRunTrees(read, { before, statuses: ['completed'], limit: 500 });
 */
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

type Read = (text: string, values?: readonly unknown[]) => Promise<Row[]>;
type Query = (text: string, values?: readonly unknown[]) => Promise<{ rows: Row[]; rowCount: number }>;

const TOP_LEVEL = '(r.parent_run_id IS NULL OR NOT EXISTS (SELECT 1 FROM workflow_runs p WHERE p.id = r.parent_run_id))';

/** Every run of the trees rooted at `$1` (text[]), with its status (UNION: a cycle cannot loop). */
const TREE = `WITH RECURSIVE tree(root, id) AS (
  SELECT x COLLATE "C", x COLLATE "C" FROM unnest($1::text[]) AS x
  UNION SELECT t.root, c.id FROM tree t JOIN workflow_runs c ON c.parent_run_id = t.id
) SELECT t.root AS root, t.id AS id, w.status AS status, w.completed_at AS completed_at FROM tree t JOIN workflow_runs w ON w.id = t.id`;

const IN_IDS = '= ANY($1::text[])';

const DELETE = runDeleteStatements(IN_IDS);
const SIDE_DELETES = runSideDeletes(IN_IDS);

const roots = (rows: readonly Row[]): Array<{ id: string; completed_at: number }> => rows.map((r) => ({ id: String(r.id), completed_at: Number(r.completed_at) }));

/** One page of finished run trees past the cut-off, oldest first (see ExpiredRunQuery). */
export async function expiredRunTrees(read: Read, q: ExpiredRunQuery): Promise<ExpiredRunPage> {
  const statuses = finishedOnly(q.statuses);
  if (statuses.length === 0 || q.limit < 1) return { trees: [], skipped: 0, next: null };
  const after = q.after ?? { completed_at: Number.MIN_SAFE_INTEGER, id: '' };
  const found = roots(
    await read(
      `SELECT r.id, r.completed_at FROM workflow_runs r
       WHERE r.completed_at IS NOT NULL AND r.completed_at < $1 AND (r.completed_at, r.id) > ($2::bigint, $3::text)
         AND r.status = ANY($4::text[]) AND ${TOP_LEVEL}
       ORDER BY r.completed_at, r.id LIMIT $5`,
      [q.before, after.completed_at, after.id, statuses, q.limit],
    ),
  );
  const members = found.length ? await read(TREE, [found.map((r) => r.id)]) : [];
  return fillPage(found, groupTrees(found, members, q.before), q.limit, found.length === q.limit);
}

/**
 * Delete these trees in the transaction `q` belongs to, each only if it still qualifies (see the
 * SQLite twin); their runs are locked first.
 */
export async function deleteRunTrees(q: Query, trees: readonly RunTree[], o: { before: number; statuses: ExpiredRunQuery['statuses'] }): Promise<RunDeleteReport> {
  const rows = emptyRowCounts();
  const statuses = finishedOnly(o.statuses);
  if (trees.length === 0 || statuses.length === 0) return { roots: [], runs: 0, rows };
  // Lock every run as read, in id order (two deletions never wait for each other in a cycle).
  await q('SELECT id FROM workflow_runs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE', [[...new Set(trees.flatMap((t) => t.runs))].sort()]);
  const still = roots(
    (
      await q(
        `SELECT r.id, r.completed_at FROM workflow_runs r
         WHERE r.id ${IN_IDS} AND r.completed_at IS NOT NULL AND r.completed_at < $2 AND r.status = ANY($3::text[]) AND ${TOP_LEVEL}
         ORDER BY r.completed_at, r.id`,
        [trees.map((t) => t.root), o.before, statuses],
      )
    ).rows,
  );
  const grouped = groupTrees(still, still.length ? (await q(TREE, [still.map((r) => r.id)])).rows : [], o.before);
  const asRead = new Map(trees.map((t) => [t.root, new Set(t.runs)]));
  const going = grouped.ok.filter((t) => {
    const before = asRead.get(t.root);
    return before !== undefined && before.size === t.runs.length && t.runs.every((id) => before.has(id));
  });
  const ids = going.flatMap((t) => t.runs);
  if (ids.length > 0) for (const table of RUN_TABLES) rows[table] = (await q(DELETE[table], [ids])).rowCount;
  // Their budgets, consensus tasks and imported bundles go with them (runSideDeletes).
  if (ids.length > 0) for (const sql of SIDE_DELETES) await q(sql, [ids]);
  return { roots: going.map((t) => t.root), runs: rows.workflow_runs, rows };
}

/** Compact the checkpoints of up to `limit` finished sessions, in the transaction `q` belongs to. */
export async function compactSessions(q: Query, o: CompactOptions): Promise<CompactReport> {
  const report: CompactReport = { examined: 0, compacted: 0, bytes_saved: 0 };
  // SKIP LOCKED: a session being checkpointed right now is left for the next pass.
  const sessions = (
    await q(
      `SELECT s.id, s.envelope, (SELECT COUNT(*) FROM agent_messages m WHERE m.session_id = s.id) AS messages FROM agent_sessions s
       WHERE s.compacted_at IS NULL AND s.updated_at < $1 AND s.status IN ('completed', 'failed')
       ORDER BY s.updated_at LIMIT $2 FOR UPDATE OF s SKIP LOCKED`,
      [o.before, o.limit],
    )
  ).rows;
  for (const s of sessions) {
    report.examined++;
    const envelope = s.envelope as string | null;
    const smaller = envelope === null ? null : o.compact(envelope, Number(s.messages));
    if (smaller !== null && envelope !== null && smaller.length < envelope.length) {
      report.compacted++;
      report.bytes_saved += Buffer.byteLength(envelope) - Buffer.byteLength(smaller);
      await q('UPDATE agent_sessions SET envelope = $2, compacted_at = updated_at WHERE id = $1', [s.id, smaller]);
    } else {
      await q('UPDATE agent_sessions SET compacted_at = updated_at WHERE id = $1', [s.id]);
    }
  }
  return report;
}

export async function databaseSize(read: Read): Promise<DatabaseSize> {
  const r = (await read('SELECT pg_database_size(current_database()) AS bytes'))[0];
  return { bytes: Number(r?.bytes), free_bytes: null, file_bytes: null };
}
