/**
 * Checkpoint compaction. A session's checkpoint envelope holds the whole conversation, and the
 * transcript (`agent_messages`, one row per message) holds it again. Once a session has finished
 * (completed, or failed), the envelope keeps everything but the messages, and says how many of the
 * transcript's messages are the conversation (`messages_in_transcript`); loading it (a chat continued
 * later, a failed run retried) reads them back from the transcript. The transcript, the tool ledger,
 * usage, agent versions and context variables are all kept: the transcript view and a continued or
 * retried session see exactly what they saw before.
 *
 * @example
 *   const smaller = compactEnvelope(envelopeJson, transcriptRows); // null: leave it as it is
 */
import { ResumeError } from '../core/errors.js';
import type { AgentMessageRecord } from '../store/types.js';
import type { CheckpointEnvelope } from './loop.js';
import type { Message, ToolCall } from './types.js';

/** The envelope as stored once compacted: no messages, their count in the transcript instead. */
type CompactPayload = CheckpointEnvelope['payload'] & { messages_in_transcript?: number };

/**
 * The compacted text of an envelope whose conversation is all in the transcript (`transcriptMessages`
 * rows), or null: already compact, not parseable, or the transcript does not hold exactly the
 * conversation (then the envelope is the only full copy and stays).
 */
export function compactEnvelope(envelope: string, transcriptMessages: number): string | null {
  let env: CheckpointEnvelope;
  try {
    env = JSON.parse(envelope) as CheckpointEnvelope;
  } catch {
    return null;
  }
  const p = env.payload as CompactPayload | undefined;
  if (!p || !Array.isArray(p.messages) || p.messages_in_transcript !== undefined) return null;
  if (p.messages.length !== transcriptMessages || transcriptMessages === 0) return null;
  return JSON.stringify(compacted(env, transcriptMessages));
}

/** The envelope with its messages replaced by their count (the transcript holds them). */
export function compacted(env: CheckpointEnvelope, messages: number): CheckpointEnvelope {
  const payload: CompactPayload = { ...env.payload, messages: [], messages_in_transcript: messages };
  return { ...env, payload };
}

/** Is this envelope compacted (its messages in the transcript)? */
export function isCompacted(env: CheckpointEnvelope): boolean {
  return typeof (env.payload as CompactPayload | undefined)?.messages_in_transcript === 'number';
}

/**
 * A compacted envelope made whole again from the session's transcript rows (in seq order). A
 * transcript that lacks some of the messages is an error: resuming without them would change the
 * conversation.
 */
export function restoreEnvelope(env: CheckpointEnvelope, transcript: readonly AgentMessageRecord[]): CheckpointEnvelope {
  const p = env.payload as CompactPayload;
  const n = p.messages_in_transcript ?? 0;
  if (transcript.length < n) {
    throw new ResumeError('CHECKPOINT_TRANSCRIPT_MISSING', `session ${env.session_id} cannot resume: its checkpoint keeps ${n} message(s) in the transcript, which has ${transcript.length}`, { session: env.session_id });
  }
  const { messages_in_transcript: _n, ...rest } = p;
  return { ...env, payload: { ...rest, messages: transcript.slice(0, n).map(toMessage) } };
}

/** A transcript row as the loop's message (the inverse of store-journal's messageRow). */
export function toMessage(r: AgentMessageRecord): Message {
  switch (r.role) {
    case 'system':
      return { role: 'system', content: r.content ?? '' };
    case 'user':
      return { role: 'user', content: r.content ?? '' };
    case 'tool':
      return { role: 'tool', tool_call_id: r.tool_call_id ?? '', name: r.name ?? '', content: r.content ?? '' };
    default: {
      const m: Extract<Message, { role: 'assistant' }> = { role: 'assistant', content: r.content };
      if (r.tool_calls !== null) m.tool_calls = JSON.parse(r.tool_calls) as ToolCall[];
      if (r.agent !== null) m.sender = r.agent;
      if (r.usage) m.usage = { ...r.usage };
      return m;
    }
  }
}
