/**
 * SW4RM agent state on SQLite (migration 23): one JSON document per (agent_id, kind, key).
 *
 * @example
 *   putSw4rmState((sql) => db.prepare(sql), 'agent-1', 'worktree', '', '{"repo_id":"r"}', Date.now());
 */
import type Database from 'better-sqlite3';
import { toSw4rmStateRow, type Sw4rmStateRow } from '../sw4rm-state-types.js';

type Stmt = (sql: string) => Database.Statement;

export function getSw4rmState(stmt: Stmt, agentId: string, kind: string, key: string): Sw4rmStateRow | undefined {
  const r = stmt('SELECT * FROM sw4rm_agent_state WHERE agent_id = ? AND kind = ? AND key = ?').get(agentId, kind, key) as Record<string, unknown> | undefined;
  return r ? toSw4rmStateRow(r) : undefined;
}

export function putSw4rmState(stmt: Stmt, agentId: string, kind: string, key: string, json: string, now: number): void {
  stmt(
    `INSERT INTO sw4rm_agent_state (agent_id, kind, key, value, updated_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (agent_id, kind, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
  ).run(agentId, kind, key, json, now);
}

export function listSw4rmState(stmt: Stmt, agentId: string): Sw4rmStateRow[] {
  return (stmt('SELECT * FROM sw4rm_agent_state WHERE agent_id = ? ORDER BY kind, key').all(agentId) as Array<Record<string, unknown>>).map(toSw4rmStateRow);
}

export function deleteSw4rmState(stmt: Stmt, agentId: string, kind: string | undefined): number {
  return kind === undefined
    ? stmt('DELETE FROM sw4rm_agent_state WHERE agent_id = ?').run(agentId).changes
    : stmt('DELETE FROM sw4rm_agent_state WHERE agent_id = ? AND kind = ?').run(agentId, kind).changes;
}
