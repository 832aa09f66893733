import type { Store } from '../store/store.js';
import type { AgentCheckpointWrite, ApprovalRecord, ToolCallRecord } from '../store/types.js';
import type { Redactor } from './redactor.js';
import type { MemoryWrite } from '../store/memory-types.js';
import { envelopeFrame, spliceMessages } from '../store/envelope-json.js';
import { walk } from '../guardrails/redaction/classifier.js';

/**
 * The store as LLM agents see it: what their loop writes (checkpoints with the transcript and its
 * envelope, tool-call records, approval requests, session errors) has secret values replaced by
 * their markers, and the data classes' storage policy applied, first (JSON columns field by field,
 * so a dropped field leaves valid JSON). Everything else passes through.
 *
 * A conversation resumed from a checkpoint therefore shows the model the marker where an earlier
 * turn held a secret; the value itself is only in the worker's memory while the step runs.
 *
 * A checkpoint's envelope holds the whole conversation and is written at every turn: each message is
 * redacted once, when its first checkpoint is written, and its result reused by the later ones (until
 * the redactor learns another secret: then each message is redacted again, once). The rest of the
 * envelope (turn, usage, context variables, guard state) is redacted at every checkpoint.
 */
export function redactAgentWrites(store: Store, redactor: Redactor): Store {
  // Always wrapped, even with nothing to redact yet: the redactor learns stored secrets as steps load them.
  const r = redactor;
  const messages = new WeakMap<object, { generation: number; json: string }>();
  // Every string (and key) of a JSON-like value through the redactor (a string that is JSON itself, a
  // tool call's arguments, as JSON: a dropped field in it leaves valid JSON); the same object when nothing changed.
  const tree = (v: unknown): unknown => walk(v, (s) => r.json(s));
  const redactedMessage = (m: object, plain: (m: object) => string): string => {
    const hit = messages.get(m);
    if (hit?.generation === r.generation) return hit.json;
    const out = tree(m);
    const json = out === m ? plain(m) : JSON.stringify(out);
    messages.set(m, { generation: r.generation, json });
    return json;
  };
  const envelope = (w: AgentCheckpointWrite): string => {
    const parts = w.envelope_parts;
    if (!r.active) return w.envelope;
    if (!parts) {
      const text = r.json(w.envelope);
      if (text === w.envelope) return text;
      const [plain, redacted] = [JSON.parse(w.envelope) as unknown, JSON.parse(text) as unknown];
      return markRedactedCalls(plain, redacted) ? JSON.stringify(redacted) : text;
    }
    // The frame (the envelope but its messages) as a value, not as text: nothing to parse.
    const plain = envelopeFrame(parts.envelope);
    const frame = redactFrame(plain, tree);
    if (frame !== plain) markRedactedCalls(plain, frame);
    const list = `[${parts.envelope.payload.messages.map((m) => redactedMessage(m, parts.messageJson)).join(',')}]`;
    return spliceMessages(frame, list) ?? r.json(w.envelope);
  };
  const overrides: Partial<Store> = {
    saveAgentCheckpoint: (w: AgentCheckpointWrite) =>
      // Field by field, not a copy of `w`: its unredacted envelope text is made only if it is read,
      // and the parts (the unredacted envelope's) do not go on with the redacted text.
      store.saveAgentCheckpoint({
        session: w.session,
        version: w.version,
        attempt: w.attempt,
        envelope: envelope(w),
        messages: w.messages.map((m) => ({
          ...m,
          content: m.content === null ? null : r.json(m.content),
          tool_calls: m.tool_calls === null ? null : r.json(m.tool_calls),
        })),
      }),
    recordToolCall: (rec: ToolCallRecord) =>
      store.recordToolCall({ ...rec, arguments: r.json(rec.arguments), output: r.json(rec.output), context_variables: rec.context_variables === null ? null : r.json(rec.context_variables) }),
    failAgentSession: (id: string, error: string) => store.failAgentSession(id, r.text(error)),
    putMemory: (m: MemoryWrite) => store.putMemory({ ...m, text: r.text(m.text), metadata: r.value(m.metadata) }),
    requestApprovals: (items: ReadonlyArray<Omit<ApprovalRecord, 'status' | 'reason' | 'decided_at' | 'decided_by'>>) =>
      store.requestApprovals(items.map((i) => ({ ...i, arguments: r.json(i.arguments) }))),
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop as keyof Store];
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/**
 * The fields of a checkpoint's frame that the loop itself writes (ids, names, counters, versions, the
 * compaction mark): nothing a model, a tool or a user wrote is in them, so they are not walked at
 * every checkpoint. Every other field (context variables, pending tool calls, the guard state, notes,
 * and any field not listed here) goes through the policy, its keys included.
 */
const FRAME_FIELDS = ['version', 'session_id', 'created_at'];
const LOOP_FIELDS = {
  frame: new Set(FRAME_FIELDS),
  /** The frame's, and its payload (walked field by field itself). */
  frameAndPayload: new Set([...FRAME_FIELDS, 'payload']),
  payload: new Set(['agent', 'turn', 'turn_base', 'agent_versions', 'messages', 'input_count', 'usage', 'status', 'output_retries', 'invalid_tool_turns', 'handoffs', 'messages_in_transcript']),
};

/** `tree(frame)`, skipping the loop's own fields (LOOP_FIELDS); the same object when nothing changed. */
function redactFrame<T extends object>(frame: T, tree: (v: unknown) => unknown): T {
  const f = frame as Record<string, unknown>;
  const payload = f['payload'];
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return walkFields(f, LOOP_FIELDS.frame, tree) as T;
  const rest = walkFields(f, LOOP_FIELDS.frameAndPayload, tree);
  const p = walkFields(payload as Record<string, unknown>, LOOP_FIELDS.payload, tree);
  return (p === payload ? rest : { ...rest, payload: p }) as T;
}

/**
 * `o` with each field not in `skip` through `tree` (copied where one changed; `o` itself when none
 * did). The keys of an envelope are the loop's: only the values of the fields left are walked.
 */
function walkFields(o: Record<string, unknown>, skip: ReadonlySet<string>, tree: (v: unknown) => unknown): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(o)) {
    const v = o[k];
    if (skip.has(k) || v === null || (typeof v !== 'string' && typeof v !== 'object')) continue;
    const next = tree(v);
    if (next !== v) (out ??= { ...o })[k] = next;
  }
  return out ?? o;
}

/**
 * The calls not made yet (`payload.pending_tool_calls`: waiting for approval, or in flight when the
 * worker died) whose arguments the policy changed are marked `arguments_redacted` in the redacted
 * envelope: the loop that resumes it refuses to make them with the placeholders (src/agents/loop.ts).
 * True when one was marked. `redacted` is the redaction's copy (changed in place).
 */
function markRedactedCalls(plain: unknown, redacted: unknown): boolean {
  const before = pendingCalls(plain);
  const after = pendingCalls(redacted);
  if (!before || !after || before.length !== after.length) return false;
  let marked = false;
  for (let i = 0; i < after.length; i++) {
    const a = after[i];
    const b = before[i];
    if (a && b && a !== b && a.arguments !== b.arguments) {
      after[i] = { ...a, arguments_redacted: true };
      marked = true;
    }
  }
  return marked;
}

function pendingCalls(env: unknown): Array<Record<string, unknown>> | undefined {
  const payload = (env as { payload?: { pending_tool_calls?: unknown } } | null)?.payload;
  return Array.isArray(payload?.pending_tool_calls) ? (payload.pending_tool_calls as Array<Record<string, unknown>>) : undefined;
}
