/**
 * The SQL of map steps and sub-workflow runs on SQLite (migration 11), used by SqliteTx and
 * SqliteStore. A map step's elements are step rows `<step>[<i>]` that share the map step's
 * step_index and carry their position (map_index) and list element (map_item).
 *
 * @example
 *   insertStepRows(stmt, runId, now, elements); // 10,000 rows in 100-row statements
 */
import type Database from 'better-sqlite3';
import { parseJson, stepRowId, type Row } from '../rows.js';
import type { NewStepRow } from '../types.js';

type Stmt = (sql: string) => Database.Statement;

const COLS = 13;
const ROWS_PER_INSERT = 100;
const ROW = `(${Array.from({ length: COLS }, () => '?').join(', ')})`;
const VALUES: string[] = [];
/** `(?, …), …` for n rows, made when first needed (all 100 lengths at import cost every `swarm` start ~10 ms). */
const valuesOf = (n: number): string => (VALUES[n] ??= Array.from({ length: n }, () => ROW).join(', '));

/** Insert step rows into a run: multi-row statements of 100 rows (one statement per 100 elements). */
export function insertStepRows(stmt: Stmt, runId: string, now: number, steps: readonly NewStepRow[]): void {
  for (let i = 0; i < steps.length; i += ROWS_PER_INSERT) {
    const chunk = steps.slice(i, i + ROWS_PER_INSERT);
    const values: unknown[] = [];
    for (const s of chunk) {
      values.push(
        stepRowId(runId, s.step_id), runId, s.step_id, s.step_index, s.agent_id, s.agent_name, s.agent_version, s.status, s.pending_deps,
        s.status === 'ready' ? now : null, now, s.map_index ?? null, s.map_item_json ?? null,
      );
    }
    stmt(
      `INSERT INTO step_executions (id, run_id, step_id, step_index, agent_id, agent_name, agent_version, status, pending_deps, available_at, queued_at, map_index, map_item)
       VALUES ${valuesOf(chunk.length)}`,
    ).run(...values);
  }
}

export function deleteMapElements(stmt: Stmt, runId: string, stepIndex: number): void {
  stmt('DELETE FROM step_executions WHERE run_id = ? AND step_index = ? AND map_index IS NOT NULL').run(runId, stepIndex);
}

export function cancelMapElements(stmt: Stmt, runId: string, stepIndex: number, now: number): string[] {
  return stmt(
    `UPDATE step_executions SET status = 'cancelled', completed_at = ?
     WHERE run_id = ? AND step_index = ? AND map_index IS NOT NULL AND status IN ('pending', 'ready') RETURNING step_id`,
  )
    .pluck()
    .all(now, runId, stepIndex) as string[];
}

export function mapOutputs(stmt: Stmt, runId: string, stepIndex: number): unknown[] {
  const rows = stmt('SELECT outputs FROM step_executions WHERE run_id = ? AND step_index = ? AND map_index IS NOT NULL ORDER BY map_index').pluck().all(runId, stepIndex);
  return rows.map((o) => parseJson(o));
}

export function countDown(stmt: Stmt, runId: string, stepId: string): number | undefined {
  const r = stmt(`UPDATE step_executions SET pending_deps = pending_deps - 1 WHERE id = ? AND status = 'waiting' RETURNING pending_deps`).get(stepRowId(runId, stepId)) as Row | undefined;
  return r ? Number(r.pending_deps) : undefined;
}

export function childRuns(stmt: Stmt, runId: string): string[] {
  return stmt(`SELECT id FROM workflow_runs WHERE parent_run_id = ? AND parent_step_id IS NOT NULL AND status IN ('queued', 'running', 'waiting') ORDER BY id`).pluck().all(runId) as string[];
}

export function stepItem(stmt: Stmt, runId: string, stepId: string): unknown {
  const v = stmt('SELECT map_item FROM step_executions WHERE id = ?').pluck().get(stepRowId(runId, stepId));
  return v === null || v === undefined ? undefined : parseJson(v);
}
