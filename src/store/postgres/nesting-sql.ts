/**
 * The SQL of map steps and sub-workflow runs on PostgreSQL (migration 11), used by PgTx and
 * PostgresStore. A map step's elements are step rows `<step>[<i>]` that share the map step's
 * step_index and carry their position (map_index) and list element (map_item).
 *
 * @example
 *   await insertStepRows(q, runId, now, elements); // 10,000 rows in one statement
 */
import { parseJson, stepRowId, type Row } from '../rows.js';
import type { NewStepRow } from '../types.js';

type Query = (text: string, values?: readonly unknown[]) => Promise<{ rows: Row[]; rowCount: number }>;

/** The statement and values that insert step rows into a run: one statement, one array per column, however many rows. */
export function insertStepRowsStatement(runId: string, now: number, steps: readonly NewStepRow[]): { text: string; values: unknown[] } {
  const col = <K extends keyof NewStepRow>(k: K): Array<NewStepRow[K] | null> => steps.map((s) => s[k] ?? null);
  return {
    text: `INSERT INTO step_executions (id, run_id, step_id, step_index, agent_id, agent_name, agent_version, status, pending_deps, available_at, queued_at, map_index, map_item)
       SELECT u.id, $1, u.step_id, u.step_index, u.agent_id, u.agent_name, u.agent_version, u.status, u.pending_deps,
              CASE WHEN u.status = 'ready' THEN $2::bigint END, $2, u.map_index, u.map_item
       FROM unnest($3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int[], $11::int[], $12::text[])
         AS u(id, step_id, step_index, agent_id, agent_name, agent_version, status, pending_deps, map_index, map_item)`,
    values: [
      runId, now, steps.map((s) => stepRowId(runId, s.step_id)), col('step_id'), col('step_index'), col('agent_id'), col('agent_name'),
      col('agent_version'), col('status'), col('pending_deps'), col('map_index'), col('map_item_json'),
    ],
  };
}

/** Delete a map step's element rows; returns their row ids. */
export async function deleteMapElements(q: Query, runId: string, stepIndex: number): Promise<string[]> {
  const r = await q('DELETE FROM step_executions WHERE run_id = $1 AND step_index = $2 AND map_index IS NOT NULL RETURNING id', [runId, stepIndex]);
  return r.rows.map((row) => row.id as string);
}

export async function cancelMapElements(q: Query, runId: string, stepIndex: number, now: number): Promise<string[]> {
  const r = await q(
    `WITH c AS (
       UPDATE step_executions SET status = 'cancelled', completed_at = $1
       WHERE run_id = $2 AND step_index = $3 AND map_index IS NOT NULL AND status IN ('pending', 'ready') RETURNING step_id, map_index)
     SELECT step_id FROM c ORDER BY map_index`,
    [now, runId, stepIndex],
  );
  return r.rows.map((row) => row.step_id as string);
}

export async function mapOutputs(q: Query, runId: string, stepIndex: number): Promise<unknown[]> {
  const r = await q('SELECT outputs FROM step_executions WHERE run_id = $1 AND step_index = $2 AND map_index IS NOT NULL ORDER BY map_index', [runId, stepIndex]);
  return r.rows.map((row) => parseJson(row.outputs));
}

export async function countDown(q: Query, runId: string, stepId: string): Promise<number | undefined> {
  const r = await q(`UPDATE step_executions SET pending_deps = pending_deps - 1 WHERE id = $1 AND status = 'waiting' RETURNING pending_deps`, [stepRowId(runId, stepId)]);
  return r.rows[0] ? Number(r.rows[0].pending_deps) : undefined;
}

export async function childRuns(q: Query, runId: string): Promise<string[]> {
  const r = await q(`SELECT id FROM workflow_runs WHERE parent_run_id = $1 AND parent_step_id IS NOT NULL AND status IN ('queued', 'running', 'waiting') ORDER BY id`, [runId]);
  return r.rows.map((row) => row.id as string);
}

export async function stepItem(q: Query, runId: string, stepId: string): Promise<unknown> {
  const r = await q('SELECT map_item FROM step_executions WHERE id = $1', [stepRowId(runId, stepId)]);
  const v = r.rows[0]?.map_item;
  return v === null || v === undefined ? undefined : parseJson(v);
}
