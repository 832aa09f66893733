/**
 * An LLM step forked at a turn: the fork's session starts with the parent's conversation as it was
 * when turn `n` (the n-th model call) was about to be made — the input messages, the model responses
 * of turns 1..n-1 and their tool results — so the loop resumes at turn n and never runs a tool call
 * of an earlier turn again (its result is in the conversation, and the tool ledger rows are copied).
 *
 * @example
 *   const copyFor = await turnJournal(store, parentRunId, 'chat', 3, stepInputs.context_variables);
 *   await tx.fork().copyJournal(copyFor(forkRunId)); // read before the fork's transaction, written in it
 */
import { UserError } from '../core/errors.js';
import { restoreEnvelope, toMessage, isCompacted } from '../agents/checkpoint-compaction.js';
import { CHECKPOINT_VERSION, type CheckpointEnvelope } from '../agents/loop.js';
import { addUsage, ZERO_USAGE, type Usage } from '../agents/types.js';
import { runSessions } from '../agents/store-journal.js';
import type { Store } from '../store/store.js';
import type { JournalCopy } from '../store/fork-types.js';

/** The parent's session of a step: the newest one (a retried step starts a new one). */
async function parentSession(store: Store, runId: string, stepId: string): Promise<string | undefined> {
  const [newest] = await runSessions(store, runId, { stepId });
  return newest?.id;
}

/**
 * What the fork's session of `stepId` starts from at `turn` (1-based; 1 keeps only the input
 * messages). TURN_OUT_OF_RANGE (exit 2) when the parent's session made fewer model calls; its message
 * names the option as `turnName` (the CLI's `--turn`, the API's `turn`).
 */
export async function turnJournal(
  store: Store,
  parentRunId: string,
  stepId: string,
  turn: number,
  initialContext: Record<string, unknown> = {},
  turnName = '--turn',
): Promise<(forkRunId: string) => JournalCopy> {
  if (!Number.isInteger(turn) || turn < 1) throw new UserError('TURN_OUT_OF_RANGE', `${turnName} must be a whole number from 1, not ${String(turn)}`, { turn });
  const from = await parentSession(store, parentRunId, stepId);
  const session = from ? await store.getAgentSession(from) : undefined;
  if (!from || !session?.envelope) {
    throw new UserError('TURN_NOT_RECORDED', `step '${stepId}' of run ${parentRunId} has no recorded LLM session to fork at turn ${turn}`, { step: stepId, runId: parentRunId });
  }
  const transcript = await store.getAgentMessages(from);
  let env = JSON.parse(session.envelope) as CheckpointEnvelope;
  if (isCompacted(env)) env = restoreEnvelope(env, transcript);
  const p = env.payload;
  const messages = p.messages.length ? p.messages : transcript.map(toMessage);
  // The n-th model response after the input messages is turn n: the conversation before it is kept.
  let cut = messages.length;
  let seen = 0;
  for (let i = p.input_count; i < messages.length; i++) {
    if (messages[i]?.role !== 'assistant') continue;
    seen++;
    if (seen === turn) {
      cut = i;
      break;
    }
  }
  if (seen < turn) {
    throw new UserError('TURN_OUT_OF_RANGE', `step '${stepId}' of run ${parentRunId} made ${seen} model call(s): ${turnName} must be from 1 to ${seen}`, { step: stepId, turns: seen, turn });
  }
  const kept = messages.slice(0, cut);
  let usage: Usage = { ...ZERO_USAGE };
  let agent = session.agent;
  for (const m of kept) {
    if (m.role !== 'assistant') continue;
    if (m.usage) usage = addUsage(usage, m.usage);
    if (m.sender) agent = m.sender;
  }
  // Tool results of the kept turns, in order: their context variables and the last handoff apply.
  const calls = (await store.listToolCalls(from)).filter((c) => c.turn < turn).sort((a, b) => a.turn - b.turn || a.at - b.at);
  let contextVariables: Record<string, unknown> = { ...initialContext };
  let handoffs = 0;
  for (const c of calls) {
    if (c.context_variables) contextVariables = { ...contextVariables, ...(JSON.parse(c.context_variables) as Record<string, unknown>) };
    if (c.handoff) {
      handoffs++;
      if (c.turn === turn - 1) agent = c.handoff;
    }
  }
  return (forkRunId) => {
    const toSession = `${forkRunId}/${stepId}`;
    const payload: CheckpointEnvelope['payload'] = {
      agent,
      turn: turn - 1,
      turn_base: 0,
      ...(p.agent_versions ? { agent_versions: p.agent_versions } : {}),
      messages: kept,
      input_count: p.input_count,
      context_variables: contextVariables,
      pending_tool_calls: [],
      usage,
      status: 'running',
      output_retries: 0,
      ...(handoffs ? { handoffs } : {}),
    };
    const envelope: CheckpointEnvelope = { version: CHECKPOINT_VERSION, session_id: toSession, created_at: env.created_at, payload };
    return {
      from_session: from,
      to_session: toSession,
      run_id: forkRunId,
      step_id: stepId,
      agent: session.agent,
      current_agent: agent,
      turns: turn - 1,
      input_tokens: usage.input_tokens,
      output_tokens: usage.output_tokens,
      cost_usd: usage.cost_usd,
      envelope: JSON.stringify(envelope),
      envelope_version: CHECKPOINT_VERSION,
      messages_before: cut,
      turns_before: turn,
    };
  };
}
