/**
 * Run lineage on SQLite (migration 28): the fork's writes inside its creating transaction, and the
 * lineage tree query (a recursive walk up the fork links to the root, then down from it).
 *
 * @example
 *   const nodes = runLineage((sql) => db.prepare(sql), runId, 1000);
 */
import type Database from 'better-sqlite3';
import { toLineageNode, type ForkTx, type JournalCopy, type JournalWrite, type LineageNode } from '../fork-types.js';

type Stmt = (sql: string) => Database.Statement;

/** The lineage tree of a run: up the fork links to the root, then every fork below it. */
export const LINEAGE_SQL = `
WITH RECURSIVE up(id, parent, n) AS (
  SELECT id, CASE WHEN fork_step_id IS NOT NULL THEN parent_run_id END, 0 FROM workflow_runs WHERE id = ?
  UNION ALL
  SELECT r.id, CASE WHEN r.fork_step_id IS NOT NULL THEN r.parent_run_id END, up.n + 1 FROM workflow_runs r JOIN up ON r.id = up.parent WHERE up.n < ?
),
down(id, depth) AS (
  SELECT id, 0 FROM (SELECT id FROM up ORDER BY n DESC LIMIT 1)
  UNION ALL
  SELECT r.id, down.depth + 1 FROM workflow_runs r JOIN down ON r.parent_run_id = down.id WHERE r.fork_step_id IS NOT NULL AND down.depth < ?
)
SELECT r.id AS run_id, CASE WHEN r.fork_step_id IS NOT NULL THEN r.parent_run_id END AS parent_run_id, r.fork_step_id, r.fork_turn,
  r.workflow_name, r.workflow_version, r.status, r.created_at, down.depth
FROM down JOIN workflow_runs r ON r.id = down.id
ORDER BY down.depth, r.created_at, r.id LIMIT ?`;

export function runLineage(stmt: Stmt, runId: string, limit: number): LineageNode[] {
  return (stmt(LINEAGE_SQL).all(runId, limit, limit, limit) as Array<Record<string, unknown>>).map(toLineageNode);
}

export function sqliteFork(stmt: Stmt, now: number): ForkTx {
  return {
    setLineage(runId, forkStepId, forkTurn) {
      stmt('UPDATE workflow_runs SET fork_step_id = ?, fork_turn = ? WHERE id = ?').run(forkStepId, forkTurn, runId);
      return Promise.resolve();
    },
    copyJournal(c: JournalCopy) {
      stmt(
        `INSERT INTO agent_sessions (id, run_id, step_id, agent, current_agent, trace_id, status, turns, input_tokens, output_tokens, cost_usd, envelope, envelope_version, attempt, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, NULL, 'running', ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
      ).run(c.to_session, c.run_id, c.step_id, c.agent, c.current_agent, c.turns, c.input_tokens, c.output_tokens, c.cost_usd, c.envelope, c.envelope_version, now, now);
      stmt(
        `INSERT INTO agent_messages (session_id, seq, role, agent, content, tool_calls, tool_call_id, name, input_tokens, output_tokens, cost_usd, at)
         SELECT ?, seq, role, agent, content, tool_calls, tool_call_id, name, input_tokens, output_tokens, cost_usd, at FROM agent_messages WHERE session_id = ? AND seq < ?`,
      ).run(c.to_session, c.from_session, c.messages_before);
      stmt(
        `INSERT INTO agent_tool_calls (session_id, turn, call_id, name, arguments, output, is_error, handoff, context_variables, at)
         SELECT ?, turn, call_id, name, arguments, output, is_error, handoff, context_variables, at FROM agent_tool_calls WHERE session_id = ? AND turn < ?`,
      ).run(c.to_session, c.from_session, c.turns_before);
      return Promise.resolve();
    },
    writeJournal({ session: s, envelope, envelope_version, messages, tool_calls }: JournalWrite) {
      stmt(
        `INSERT INTO agent_sessions (id, run_id, step_id, agent, current_agent, trace_id, status, turns, input_tokens, output_tokens, cost_usd, envelope, envelope_version, attempt, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
      ).run(s.id, s.run_id, s.step_id, s.agent, s.current_agent, s.status, s.turns, s.input_tokens, s.output_tokens, s.cost_usd, envelope, envelope_version, s.created_at, s.updated_at);
      const message = stmt(
        `INSERT INTO agent_messages (session_id, seq, role, agent, content, tool_calls, tool_call_id, name, input_tokens, output_tokens, cost_usd, at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const m of messages) message.run(s.id, m.seq, m.role, m.agent, m.content, m.tool_calls, m.tool_call_id, m.name, m.usage?.input_tokens ?? null, m.usage?.output_tokens ?? null, m.usage?.cost_usd ?? null, m.at);
      const call = stmt(
        `INSERT INTO agent_tool_calls (session_id, turn, call_id, name, arguments, output, is_error, handoff, context_variables, at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const c of tool_calls) call.run(s.id, c.turn, c.call_id, c.name, c.arguments, c.output, c.is_error ? 1 : 0, c.handoff, c.context_variables, c.at);
      return Promise.resolve();
    },
  };
}
