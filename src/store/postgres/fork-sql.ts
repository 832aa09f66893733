/**
 * Run lineage on PostgreSQL (migration 28): the fork's writes inside its creating transaction, and
 * the lineage tree query (a recursive walk up the fork links to the root, then down from it).
 *
 * @example
 *   const rows = await store.read(LINEAGE_SQL, [runId, 1000]);
 */
import type { ForkTx, JournalCopy, JournalWrite } from '../fork-types.js';
import { noNul } from './pg-tx.js';

type Query = (text: string, values?: readonly unknown[]) => Promise<unknown>;

/** The lineage tree of a run ($1), at most $2 runs deep and $2 runs in all. */
export const LINEAGE_SQL = `
WITH RECURSIVE up(id, parent, n) AS (
  SELECT id, CASE WHEN fork_step_id IS NOT NULL THEN parent_run_id END, 0 FROM workflow_runs WHERE id = $1
  UNION ALL
  SELECT r.id, CASE WHEN r.fork_step_id IS NOT NULL THEN r.parent_run_id END, up.n + 1 FROM workflow_runs r JOIN up ON r.id = up.parent WHERE up.n < $2
),
down(id, depth) AS (
  SELECT id, 0 FROM (SELECT id FROM up ORDER BY n DESC LIMIT 1) root
  UNION ALL
  SELECT r.id, down.depth + 1 FROM workflow_runs r JOIN down ON r.parent_run_id = down.id WHERE r.fork_step_id IS NOT NULL AND down.depth < $2
)
SELECT r.id AS run_id, CASE WHEN r.fork_step_id IS NOT NULL THEN r.parent_run_id END AS parent_run_id, r.fork_step_id, r.fork_turn,
  r.workflow_name, r.workflow_version, r.status, r.created_at, down.depth
FROM down JOIN workflow_runs r ON r.id = down.id
ORDER BY down.depth, r.created_at, r.id LIMIT $2`;

export function pgFork(q: Query, now: number): ForkTx {
  return {
    async setLineage(runId, forkStepId, forkTurn) {
      await q('UPDATE workflow_runs SET fork_step_id = $2, fork_turn = $3 WHERE id = $1', [runId, forkStepId, forkTurn]);
    },
    async copyJournal(c: JournalCopy) {
      await q(
        `INSERT INTO agent_sessions (id, run_id, step_id, agent, current_agent, trace_id, status, turns, input_tokens, output_tokens, cost_usd, envelope, envelope_version, attempt, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, NULL, 'running', $6, $7, $8, $9, $10, $11, 0, $12, $12)`,
        [c.to_session, c.run_id, c.step_id, c.agent, c.current_agent, c.turns, c.input_tokens, c.output_tokens, c.cost_usd, c.envelope, c.envelope_version, now],
      );
      await q(
        `INSERT INTO agent_messages (session_id, seq, role, agent, content, tool_calls, tool_call_id, name, input_tokens, output_tokens, cost_usd, at)
         SELECT $1, seq, role, agent, content, tool_calls, tool_call_id, name, input_tokens, output_tokens, cost_usd, at FROM agent_messages WHERE session_id = $2 AND seq < $3`,
        [c.to_session, c.from_session, c.messages_before],
      );
      await q(
        `INSERT INTO agent_tool_calls (session_id, turn, call_id, name, arguments, output, is_error, handoff, context_variables, at)
         SELECT $1, turn, call_id, name, arguments, output, is_error, handoff, context_variables, at FROM agent_tool_calls WHERE session_id = $2 AND turn < $3`,
        [c.to_session, c.from_session, c.turns_before],
      );
    },
    async writeJournal({ session: s, envelope, envelope_version, messages: m, tool_calls: c }: JournalWrite) {
      await q(
        `INSERT INTO agent_sessions (id, run_id, step_id, agent, current_agent, trace_id, status, turns, input_tokens, output_tokens, cost_usd, envelope, envelope_version, attempt, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8, $9, $10, $11, $12, 0, $13, $14)`,
        [s.id, s.run_id, s.step_id, s.agent, s.current_agent, s.status, s.turns, s.input_tokens, s.output_tokens, s.cost_usd, noNul(envelope), envelope_version, s.created_at, s.updated_at],
      );
      if (m.length) {
        await q(
          `INSERT INTO agent_messages (session_id, seq, role, agent, content, tool_calls, tool_call_id, name, input_tokens, output_tokens, cost_usd, at)
           SELECT $1, u.seq, u.role, u.agent, u.content, u.tool_calls, u.tool_call_id, u.name, u.input_tokens, u.output_tokens, u.cost_usd, u.at
           FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::float8[], $12::bigint[])
             AS u(seq, role, agent, content, tool_calls, tool_call_id, name, input_tokens, output_tokens, cost_usd, at)`,
          [
            s.id, m.map((x) => x.seq), m.map((x) => x.role), m.map((x) => x.agent), m.map((x) => noNul(x.content)), m.map((x) => noNul(x.tool_calls)), m.map((x) => x.tool_call_id),
            m.map((x) => x.name), m.map((x) => x.usage?.input_tokens ?? null), m.map((x) => x.usage?.output_tokens ?? null), m.map((x) => x.usage?.cost_usd ?? null), m.map((x) => x.at),
          ],
        );
      }
      if (c.length) {
        await q(
          `INSERT INTO agent_tool_calls (session_id, turn, call_id, name, arguments, output, is_error, handoff, context_variables, at)
           SELECT $1, u.turn, u.call_id, u.name, u.arguments, u.output, u.is_error, u.handoff, u.context_variables, u.at
           FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[], $9::text[], $10::bigint[])
             AS u(turn, call_id, name, arguments, output, is_error, handoff, context_variables, at)`,
          [
            s.id, c.map((x) => x.turn), c.map((x) => x.call_id), c.map((x) => x.name), c.map((x) => noNul(x.arguments)), c.map((x) => noNul(x.output)), c.map((x) => (x.is_error ? 1 : 0)),
            c.map((x) => x.handoff), c.map((x) => noNul(x.context_variables)), c.map((x) => x.at),
          ],
        );
      }
    },
  };
}
