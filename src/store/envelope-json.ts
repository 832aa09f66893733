/**
 * An agent checkpoint's envelope as JSON text, built from its parts: the conversation's messages are
 * serialised one by one (`messageJson`, which a caller remembers per message), the rest of the
 * envelope (its frame: turn, usage, context variables, guard state…) at every checkpoint. The text
 * is the same as `JSON.stringify(envelope)`, key order included.
 *
 * A conversation is checkpointed at every turn and grows by a message or two each time: serialising
 * (and redacting, src/secrets/redacting-store.ts) only the new messages keeps a checkpoint's cost
 * from growing with the conversation.
 *
 * @example
 *   const text = envelopeJson(env, (m) => cache.get(m) ?? JSON.stringify(m));
 */

/** The shape this needs of an envelope: a `payload` with the `messages` array. */
export interface EnvelopeLike {
  payload: { messages: readonly object[] };
}

/** `JSON.stringify(env)`, with each of `env.payload.messages` written as `messageJson` gives it. */
export function envelopeJson(env: EnvelopeLike, messageJson: (m: object, i: number) => string): string {
  const messages = env.payload.messages;
  let list = '[';
  for (let i = 0; i < messages.length; i++) list += (i === 0 ? '' : ',') + messageJson(messages[i]!, i);
  list += ']';
  return objectJson(env as unknown as Record<string, unknown>, 'payload', objectJson(env.payload, 'messages', list));
}

/**
 * The envelope without its messages (`payload.messages` empty): what a checkpoint adds to them. Its
 * JSON, with the empty list replaced by the messages' list, is the envelope's (see `spliceMessages`).
 */
export function envelopeFrame<T extends EnvelopeLike>(env: T): T {
  return { ...env, payload: { ...env.payload, messages: [] } };
}

/**
 * `JSON.stringify(frame)` with `payload.messages` (empty in the frame) written as `list` (the
 * messages' JSON array text); undefined when the frame has no such list (then the caller serialises
 * the whole envelope instead).
 */
export function spliceMessages(frame: unknown, list: string): string | undefined {
  if (!isPlainObject(frame) || !isPlainObject(frame.payload) || !Array.isArray(frame.payload.messages) || frame.payload.messages.length !== 0) return undefined;
  return objectJson(frame, 'payload', objectJson(frame.payload, 'messages', list));
}

/** `JSON.stringify(o)` with the value of key `key` written as `json` (already JSON text). */
function objectJson(o: Record<string, unknown>, key: string, json: string): string {
  let out = '{';
  let first = true;
  for (const k of Object.keys(o)) {
    const v: string | undefined = k === key ? json : JSON.stringify(o[k]);
    // As JSON.stringify: a property whose value has no JSON form (undefined, a function) is left out.
    if (v === undefined) continue;
    out += (first ? '' : ',') + JSON.stringify(k) + ':' + v;
    first = false;
  }
  return out + '}';
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
