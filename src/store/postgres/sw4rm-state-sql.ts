/**
 * SW4RM agent state on PostgreSQL (migration 23): one JSON document per (agent_id, kind, key),
 * kept as text so it reads back byte for byte as it was put.
 *
 * @example
 *   await store.write(PUT_SW4RM_STATE_SQL, ['agent-1', 'worktree', '', '{"repo_id":"r"}', Date.now()]);
 */
export const GET_SW4RM_STATE_SQL = 'SELECT * FROM sw4rm_agent_state WHERE agent_id = $1 AND kind = $2 AND key = $3';

export const PUT_SW4RM_STATE_SQL = `INSERT INTO sw4rm_agent_state (agent_id, kind, key, value, updated_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (agent_id, kind, key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`;

export const LIST_SW4RM_STATE_SQL = 'SELECT * FROM sw4rm_agent_state WHERE agent_id = $1 ORDER BY kind, key';

export function deleteSw4rmStateSql(byKind: boolean): string {
  return byKind ? 'DELETE FROM sw4rm_agent_state WHERE agent_id = $1 AND kind = $2' : 'DELETE FROM sw4rm_agent_state WHERE agent_id = $1';
}
