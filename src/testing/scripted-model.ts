/**
 * A `ChatModel` that answers from a script, in process (no HTTP): for unit tests of agents and for
 * measuring the agent loop's own cost per turn. Replies given as an array are turned into responses
 * once, when the model is made; a call then returns the next one without building anything else.
 *
 * @example
 *   const model = new ScriptedModel([
 *     { toolCalls: [{ name: 'add', arguments: { a: 1, b: 2 } }] },
 *     { content: '3' },
 *   ]);
 */
import { abortReason } from '../agents/providers/rate-limit.js';
import { ModelCallError } from '../agents/providers/errors.js';
import type { ChatModel, ModelCallOptions, ModelRequest, ModelResponse, ToolCall } from '../agents/types.js';

export interface ScriptedReply {
  content?: string | null;
  /** `id` defaults to `call_<call number>_<index>`; object arguments are serialised. */
  toolCalls?: ReadonlyArray<{ id?: string; name: string; arguments: string | object }>;
  /** Default 0 / 0. */
  usage?: { input_tokens: number; output_tokens: number };
  /** Default: `tool_calls` when there are tool calls, else `stop`. */
  finishReason?: ModelResponse['finishReason'];
}

/** Replies in order, or a function of the request and the call's index (0-based). */
export type ModelScript = readonly ScriptedReply[] | ((req: ModelRequest, index: number) => ScriptedReply | Promise<ScriptedReply>);

export interface ScriptedModelOptions {
  /** `provider/model` (default `scripted/model`). */
  id?: string;
  /** Keep every request in `requests` (default true; turn off for long benchmarks). */
  record?: boolean;
}

export class ScriptedModel implements ChatModel {
  readonly id: string;
  /** The requests received, in order (when recording). */
  readonly requests: ModelRequest[] = [];
  private readonly queue: ModelResponse[];
  private readonly fn: ((req: ModelRequest, index: number) => ScriptedReply | Promise<ScriptedReply>) | undefined;
  private readonly record: boolean;
  private next = 0;
  /** Calls made so far. */
  calls = 0;

  constructor(script: ModelScript, options: ScriptedModelOptions = {}) {
    this.id = options.id ?? 'scripted/model';
    this.record = options.record ?? true;
    if (typeof script === 'function') {
      this.queue = [];
      this.fn = script;
    } else {
      this.queue = script.map((r, i) => toResponse(r, i + 1));
      this.fn = undefined;
    }
  }

  /** Replies left in the array script. */
  get remaining(): number {
    return this.queue.length - this.next;
  }

  /** Append replies to the array script. */
  push(...replies: ScriptedReply[]): void {
    for (const r of replies) this.queue.push(toResponse(r, this.queue.length + 1));
  }

  async generate(req: ModelRequest, options?: ModelCallOptions): Promise<ModelResponse> {
    const signal = options?.signal;
    if (signal?.aborted) throw abortReason(signal);
    const index = this.calls++;
    if (this.record) this.requests.push(req);
    let res: ModelResponse;
    if (this.next < this.queue.length) {
      res = this.queue[this.next++] as ModelResponse;
    } else if (this.fn) {
      res = toResponse(await this.fn(req, index), index + 1);
    } else {
      throw new ModelCallError(`${this.id}: the script ran out: no reply for call #${index + 1} (the script has ${this.queue.length})`, {
        model: this.id,
        retryable: false,
        code: 'MODEL_SCRIPT_EXHAUSTED',
      });
    }
    if (options?.onDelta) stream(res, options.onDelta);
    if (signal?.aborted) throw abortReason(signal);
    return res;
  }
}

function toResponse(r: ScriptedReply, n: number): ModelResponse {
  const toolCalls: ToolCall[] = (r.toolCalls ?? []).map((c, i) => ({
    id: c.id ?? `call_${n}_${i}`,
    name: c.name,
    arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments),
  }));
  return {
    content: r.content === undefined ? (toolCalls.length > 0 ? null : '') : r.content,
    toolCalls,
    usage: r.usage ? { input_tokens: r.usage.input_tokens, output_tokens: r.usage.output_tokens } : { input_tokens: 0, output_tokens: 0 },
    finishReason: r.finishReason ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop'),
  };
}

/** The content in (up to) three deltas, then each tool call's announcement. */
function stream(res: ModelResponse, onDelta: NonNullable<ModelCallOptions['onDelta']>): void {
  const text = res.content ?? '';
  if (text) {
    const size = Math.max(1, Math.ceil(text.length / 3));
    for (let i = 0; i < text.length; i += size) onDelta({ type: 'text', text: text.slice(i, i + size) });
  }
  for (const c of res.toolCalls) onDelta({ type: 'tool_call', id: c.id, name: c.name });
}
