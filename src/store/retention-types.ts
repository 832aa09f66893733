/**
 * Retention in the store (migration 16): finding finished runs past their cut-off, deleting them with
 * everything that belongs to them, compacting the checkpoints of finished LLM sessions, and the
 * database's size. The SQL lives next to each store (sqlite/retention-sql.ts,
 * postgres/retention-sql.ts); the batching, archiving and reporting in src/retention/.
 *
 * A run is deleted as part of its *tree*: a top-level run (or one whose parent is gone) with every
 * run below it (its sub-workflow runs and its forks, and theirs), all at once or not at all, and
 * only when every run of the tree is finished, before the cut-off: a fork made yesterday of a run
 * from last year keeps the whole tree (its lineage, and the parent state its bundle names). Its
 * status is that of the top-level run. Consensus tasks, budgets and an imported run's bundle go with
 * their runs; the knowledge store (decisions recorded from finished tasks) outlives them.
 *
 * @example
 *   const page = await store.expiredRunTrees({ before: Date.now() - 30 * 86_400_000, statuses: ['completed'], limit: 500 });
 *   const report = await store.deleteRunTrees(page.trees, { before, statuses: ['completed'] });
 */
import { TERMINAL_RUN, type RunStatus } from '../core/states.js';
import type { Row } from './rows.js';

/** Where a walk over finished runs stands: the last top-level run looked at, in (completed_at, id) order. */
export interface RunCursor {
  completed_at: number;
  id: string;
}

export interface ExpiredRunQuery {
  /** Top-level runs finished (completed_at) before this (ms) qualify. */
  before: number;
  /** Which finished statuses qualify (others, and every unfinished status, never do). */
  statuses: readonly RunStatus[];
  /** The most runs (sub-workflow runs included) a page holds; a single larger tree is a page of its own. */
  limit: number;
  /** Go on after this run (the previous page's `next`). */
  after?: RunCursor | undefined;
}

/** A top-level run and every run below it (the root first). */
export interface RunTree {
  root: string;
  completed_at: number;
  runs: string[];
}

export interface ExpiredRunPage {
  trees: RunTree[];
  /** Trees passed over because one of their runs is not finished (a child still running) or finished after the cut-off (a recent fork). */
  skipped: number;
  /** Where the next page starts; null when there is no more. */
  next: RunCursor | null;
}

/** The tables a deletion touches, in the order it deletes from them (rows that point at a run first). */
export const RUN_TABLES = [
  'agent_messages',
  'agent_tool_calls',
  'agent_sessions',
  'approvals',
  'step_waits',
  'run_signals',
  'run_concurrency',
  'step_logs',
  'events',
  'step_executions',
  'workflow_runs',
] as const;
export type RunTable = (typeof RUN_TABLES)[number];

export interface RunDeleteReport {
  /** The trees deleted (roots); a tree that no longer qualified when the transaction began is left. */
  roots: string[];
  /** Runs deleted (sub-workflow runs included). */
  runs: number;
  /** Rows deleted, per table. */
  rows: Record<RunTable, number>;
}

/** How big the database is. */
export interface DatabaseSize {
  /** SQLite: page_count × page_size; PostgreSQL: pg_database_size. */
  bytes: number;
  /** SQLite: pages on the free list (reused by later writes), in bytes; PostgreSQL: null. */
  free_bytes: number | null;
  /** SQLite: the database file plus its WAL on disk; PostgreSQL: null. */
  file_bytes: number | null;
}

export interface CompactOptions {
  /** Only sessions last checkpointed before this (ms): a chat being continued is left alone. */
  before: number;
  /** The most sessions looked at in this call (one transaction). */
  limit: number;
  /**
   * The compacted envelope, given the envelope and how many transcript rows the session has; null to
   * keep it as it is (already compact, or the transcript does not hold the whole conversation).
   */
  compact: (envelope: string, transcriptMessages: number) => string | null;
}

export interface CompactReport {
  /** Finished sessions looked at (each is then marked compacted until its next checkpoint). */
  examined: number;
  /** Envelopes rewritten smaller. */
  compacted: number;
  /** Bytes of envelope text saved. */
  bytes_saved: number;
}

/** The statuses a query may use: the finished ones asked for, never an unfinished one. */
export function finishedOnly(statuses: readonly RunStatus[]): RunStatus[] {
  return [...new Set(statuses)].filter((s) => TERMINAL_RUN.has(s));
}

/**
 * Per table, the statement deleting the rows of a set of runs, given the dialect's "is one of the
 * runs" condition (`IN (SELECT value FROM json_each(?))` on SQLite, `= ANY($1::text[])` on
 * PostgreSQL). Children first: messages and tool calls hang off sessions, everything off the run.
 */
export function runDeleteStatements(inIds: string): Record<RunTable, string> {
  return {
    agent_messages: `DELETE FROM agent_messages WHERE session_id IN (SELECT id FROM agent_sessions WHERE run_id ${inIds})`,
    agent_tool_calls: `DELETE FROM agent_tool_calls WHERE session_id IN (SELECT id FROM agent_sessions WHERE run_id ${inIds})`,
    agent_sessions: `DELETE FROM agent_sessions WHERE run_id ${inIds}`,
    approvals: `DELETE FROM approvals WHERE run_id ${inIds}`,
    step_waits: `DELETE FROM step_waits WHERE run_id ${inIds}`,
    run_signals: `DELETE FROM run_signals WHERE run_id ${inIds}`,
    run_concurrency: `DELETE FROM run_concurrency WHERE run_id ${inIds}`,
    step_logs: `DELETE FROM step_logs WHERE run_id ${inIds}`,
    events: `DELETE FROM events WHERE run_id ${inIds}`,
    step_executions: `DELETE FROM step_executions WHERE run_id ${inIds}`,
    workflow_runs: `DELETE FROM workflow_runs WHERE id ${inIds}`,
  };
}

export function emptyRowCounts(): Record<RunTable, number> {
  return Object.fromEntries(RUN_TABLES.map((t) => [t, 0])) as Record<RunTable, number>;
}

/**
 * What else goes with a set of runs (the dialect's "is one of the runs" condition, as for
 * runDeleteStatements): their budgets (migration 18), their consensus tasks with every row of them
 * (migration 25), an imported run's bundle (migration 29).
 */
export function runSideDeletes(inIds: string): string[] {
  const tasks = `task_id IN (SELECT task_id FROM consensus_tasks WHERE run_id ${inIds})`;
  return [
    `DELETE FROM budget_reservations WHERE scope_id IN (SELECT id FROM budget_scopes WHERE root_run_id ${inIds})`,
    `DELETE FROM budget_scopes WHERE root_run_id ${inIds}`,
    ...['consensus_votes', 'consensus_results', 'consensus_candidates', 'consensus_costs', 'consensus_decisions'].map((t) => `DELETE FROM ${t} WHERE ${tasks}`),
    `DELETE FROM consensus_tasks WHERE run_id ${inIds}`,
    `DELETE FROM imported_bundles WHERE run_id ${inIds}`,
  ];
}

/**
 * Group rows of the tree query (root, id, status, completed_at) into trees in the roots' order, and
 * split them into the trees that may go (every run finished before `before`) and those that may not.
 */
export function groupTrees(roots: ReadonlyArray<{ id: string; completed_at: number }>, members: readonly Row[], before: number): { ok: RunTree[]; unfinished: Set<string> } {
  const byRoot = new Map<string, { runs: string[]; finished: boolean }>();
  for (const r of roots) byRoot.set(r.id, { runs: [r.id], finished: true });
  for (const m of members) {
    const t = byRoot.get(String(m.root));
    if (!t) continue;
    if (m.id !== m.root) t.runs.push(String(m.id));
    if (!TERMINAL_RUN.has(m.status as RunStatus) || m.completed_at === null || Number(m.completed_at) >= before) t.finished = false;
  }
  const ok: RunTree[] = [];
  const unfinished = new Set<string>();
  for (const r of roots) {
    const t = byRoot.get(r.id) as { runs: string[]; finished: boolean };
    if (t.finished) ok.push({ root: r.id, completed_at: r.completed_at, runs: t.runs });
    else unfinished.add(r.id);
  }
  return { ok, unfinished };
}

/** Fill a page from candidate roots in order: whole trees, at most `limit` runs (a larger first tree alone). */
export function fillPage(roots: ReadonlyArray<{ id: string; completed_at: number }>, grouped: { ok: RunTree[]; unfinished: Set<string> }, limit: number, more: boolean): ExpiredRunPage {
  const okByRoot = new Map(grouped.ok.map((t) => [t.root, t]));
  const trees: RunTree[] = [];
  let runs = 0;
  let skipped = 0;
  let last: RunCursor | null = null;
  for (const r of roots) {
    const t = okByRoot.get(r.id);
    if (t) {
      if (trees.length > 0 && runs + t.runs.length > limit) return { trees, skipped, next: last };
      trees.push(t);
      runs += t.runs.length;
    } else skipped++;
    last = { completed_at: r.completed_at, id: r.id };
  }
  return { trees, skipped, next: more ? last : null };
}
