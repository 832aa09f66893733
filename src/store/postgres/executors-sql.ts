/**
 * The executors registry on PostgreSQL (migration 24), and a run's `shared_inputs` column.
 *
 * @example
 *   const rows = await store.read(LIST_EXECUTORS_SQL);
 */
export const PUT_EXECUTOR_SQL = `INSERT INTO executors (name, base_url, token_secret, public_key, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
ON CONFLICT (name) DO UPDATE SET base_url = EXCLUDED.base_url, token_secret = EXCLUDED.token_secret, public_key = EXCLUDED.public_key, updated_at = EXCLUDED.updated_at
RETURNING *`;

export const GET_EXECUTOR_SQL = 'SELECT * FROM executors WHERE name = $1';

export const LIST_EXECUTORS_SQL = 'SELECT * FROM executors ORDER BY name';

export const DELETE_EXECUTOR_SQL = 'DELETE FROM executors WHERE name = $1';

export const GET_RUN_SHARED_INPUTS_SQL = 'SELECT shared_inputs FROM workflow_runs WHERE id = $1';
