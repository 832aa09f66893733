/**
 * The loop's journal in the store (SQLite or PostgreSQL): one session row with the latest checkpoint
 * envelope, the transcript, the exactly-once tool ledger, and approvals keyed by run and step. A
 * finished answer's envelope keeps its messages only in the transcript (checkpoint-compaction.ts).
 */
import { StepError } from '../core/errors.js';
import type { Store } from '../store/store.js';
import type { AgentCheckpointWrite, AgentSessionRecord } from '../store/types.js';
import { envelopeJson } from '../store/envelope-json.js';
import { compacted, isCompacted, restoreEnvelope } from './checkpoint-compaction.js';
import type { ApprovalDecision, CheckpointEnvelope, LoopJournal, RecordedToolCall } from './loop.js';
import type { Message } from './types.js';

export interface StoreJournalOptions {
  /** The session id: `<run id>/<step id>` for a workflow step (stable across crashes and retries), any id for a chat. */
  sessionId: string;
  /** The agent the session starts with. */
  agent: string;
  runId?: string;
  stepId?: string;
  traceId?: string;
  /**
   * The step attempt running the loop (0 outside workflows). A checkpoint from an older attempt (a
   * worker that lost its lease and did not notice yet) is refused, and that loop stops.
   */
  attempt?: number;
}

export function storeJournal(store: Store, o: StoreJournalOptions): LoopJournal {
  // Each message's JSON, made once: the envelope holds the whole conversation and is written at every
  // turn, but a message does not change once it is in the conversation.
  const json = new WeakMap<object, string>();
  const messageJson = (m: object): string => {
    let s = json.get(m);
    if (s === undefined) {
      s = JSON.stringify(m);
      json.set(m, s);
    }
    return s;
  };
  return {
    sessionId: o.sessionId,
    async load() {
      const s = await store.getAgentSession(o.sessionId);
      if (!s?.envelope) return undefined;
      const env = JSON.parse(s.envelope) as CheckpointEnvelope;
      // A finished session's envelope keeps its messages in the transcript (checkpoint-compaction.ts).
      return isCompacted(env) ? restoreEnvelope(env, await store.getAgentMessages(o.sessionId)) : env;
    },
    async checkpoint(env, newMessages) {
      const p = env.payload;
      const first = p.messages.length - newMessages.length;
      // The final checkpoint of an answer is written compacted: every message is in the transcript
      // once this commit is (the earlier ones were, the new ones go with it), so it is not kept twice.
      const stored = p.status === 'completed' && p.messages.length > 0 ? compacted(env, p.messages.length) : env;
      let text: string | undefined;
      const write: AgentCheckpointWrite = {
        session: {
          id: o.sessionId,
          run_id: o.runId ?? null,
          step_id: o.stepId ?? null,
          agent: o.agent,
          current_agent: p.agent,
          trace_id: o.traceId ?? null,
          status: p.status,
          turns: p.turn,
          input_tokens: p.usage.input_tokens,
          output_tokens: p.usage.output_tokens,
          cost_usd: p.usage.cost_usd,
        },
        // Serialised when read: a store that redacts the envelope makes its own text from the parts.
        get envelope() {
          return (text ??= envelopeJson(stored, messageJson));
        },
        envelope_parts: { envelope: stored, messageJson },
        version: env.version,
        attempt: o.attempt ?? 0,
        messages: newMessages.map((m, i) => messageRow(m, first + i)),
      };
      if (!(await store.saveAgentCheckpoint(write))) {
        throw new StepError('SESSION_TAKEN_OVER', `session ${o.sessionId} belongs to a newer attempt than ${o.attempt ?? 0} (this worker lost its lease)`, true, { session: o.sessionId });
      }
    },
    async toolResult(turn, callId) {
      const r = await store.getToolCall(o.sessionId, turn, callId);
      if (!r) return undefined;
      const rec: RecordedToolCall = { turn: r.turn, call_id: r.call_id, name: r.name, arguments: r.arguments, output: r.output, is_error: r.is_error };
      if (r.handoff) rec.handoff = r.handoff;
      if (r.context_variables) rec.context_variables = JSON.parse(r.context_variables) as Record<string, unknown>;
      return rec;
    },
    async recordTool(rec) {
      await store.recordToolCall({
        session_id: o.sessionId,
        turn: rec.turn,
        call_id: rec.call_id,
        name: rec.name,
        arguments: rec.arguments,
        output: rec.output,
        is_error: rec.is_error,
        handoff: rec.handoff ?? null,
        context_variables: rec.context_variables ? JSON.stringify(rec.context_variables) : null,
        at: Date.now(),
      });
    },
    async approval(callId): Promise<ApprovalDecision | undefined> {
      if (!o.runId || !o.stepId) return undefined;
      const a = await store.getApproval(o.runId, o.stepId, callId);
      if (!a || a.status === 'pending') return undefined;
      return a.status === 'approved' ? { decision: 'approved' } : { decision: 'rejected', reason: a.reason ?? 'rejected' };
    },
  };
}

function messageRow(m: Message, seq: number): AgentCheckpointWrite['messages'][number] {
  return {
    seq,
    role: m.role,
    agent: m.role === 'assistant' ? (m.sender ?? null) : null,
    content: m.content,
    tool_calls: m.role === 'assistant' && m.tool_calls ? JSON.stringify(m.tool_calls) : null,
    tool_call_id: m.role === 'tool' ? m.tool_call_id : null,
    name: m.role === 'tool' ? m.name : null,
    usage: m.role === 'assistant' ? (m.usage ?? null) : null,
  };
}

/**
 * A run's sessions, newest first, narrowed to one step (`stepId`) and/or to one conversation and its
 * retries (`conversation`: that id and `<id>/<attempt>`, as a step that runs several conversations, a
 * consensus member's, names them).
 *
 * @example
 *   const [newest] = await runSessions(store, runId, { stepId: 'review' });
 */
export async function runSessions(store: Store, runId: string, only: { stepId?: string; conversation?: string } = {}): Promise<AgentSessionRecord[]> {
  const { stepId, conversation } = only;
  return (await store.listAgentSessions({ run_id: runId, limit: 10_000 })).filter(
    (s) => (stepId === undefined || s.step_id === stepId) && (conversation === undefined || s.id === conversation || s.id.startsWith(`${conversation}/`)),
  );
}
