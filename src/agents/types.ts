/**
 * The data of an LLM agent loop: messages in the chat-completions shape (the lingua franca of the
 * providers), tool calls, usage. Plain JSON throughout, so a checkpoint is `JSON.stringify` of it.
 */

/** A tool call the model asked for. `arguments` is the raw JSON text the model produced (it may be malformed). */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
  /**
   * Set on a call not yet made when it was stored (waiting for approval, or pending when a worker
   * died) whose arguments the storage policy redacted: the values the model gave are not kept, so
   * the call cannot be made as asked (see src/secrets/redacting-store.ts).
   */
  arguments_redacted?: true;
}

export type Message =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  /** `sender`: the agent that produced it; `usage`: of the model call that produced it (transcripts; providers ignore both). */
  | { role: 'assistant'; content: string | null; tool_calls?: ToolCall[]; sender?: string; usage?: Usage }
  /** `name`: the tool that produced it. */
  | { role: 'tool'; tool_call_id: string; name: string; content: string };

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  /** US dollars, when the model's prices are known (else 0). */
  cost_usd: number;
}

export const ZERO_USAGE: Usage = Object.freeze({ input_tokens: 0, output_tokens: 0, cost_usd: 0 });

export function addUsage(a: Usage, b: Usage): Usage {
  return { input_tokens: a.input_tokens + b.input_tokens, output_tokens: a.output_tokens + b.output_tokens, cost_usd: a.cost_usd + b.cost_usd };
}

/** A JSON Schema object (draft 2020-12 / 7 subset the providers accept). */
export type JsonSchema = Record<string, unknown>;

/** What the model sees of a tool. */
export interface ToolSchema {
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  parameters: JsonSchema;
}

/** One model call. */
export interface ModelRequest {
  /** The model: the `ChatModel`'s id (`openai/gpt-4o-mini`) or the vendor's bare id (`gpt-4o-mini`). */
  model: string;
  /** The agent's instructions (resolved for this turn). */
  system: string;
  messages: readonly Message[];
  tools: readonly ToolSchema[];
  /** Structured output: the final answer must be JSON matching this schema. */
  outputSchema?: JsonSchema;
  /** Let the model ask for several tools in one response (default true). */
  parallelToolCalls?: boolean;
  temperature?: number;
  maxOutputTokens?: number;
}

export interface ModelResponse {
  /** Final text (null when the model only called tools). */
  content: string | null;
  toolCalls: ToolCall[];
  usage: { input_tokens: number; output_tokens: number };
  finishReason: 'stop' | 'tool_calls' | 'length' | 'content_filter' | 'error' | 'other';
  /** The provider's response id, when it gives one. */
  id?: string;
}

/** Streaming: text deltas and tool-call announcements as they arrive. */
export type StreamDelta = { type: 'text'; text: string } | { type: 'tool_call'; id: string; name: string };

export interface ModelCallOptions {
  signal?: AbortSignal;
  /** When set, the model streams and calls this with each delta; the response is the reassembled whole. */
  onDelta?: (d: StreamDelta) => void;
}

/**
 * The port every model sits behind: the providers (through the AI SDK), the scripted test model, and
 * anything a user plugs in. Implementations throw `ModelCallError` for provider failures.
 */
export interface ChatModel {
  /** `provider/model`, for logs, usage records and prices. */
  readonly id: string;
  generate(req: ModelRequest, options?: ModelCallOptions): Promise<ModelResponse>;
}

/** Input tokens of a request, estimated (about four characters a token, as providers' own estimates go). */
export function estimateInputTokens(req: ModelRequest): number {
  let chars = req.system.length;
  for (const m of req.messages) {
    chars += m.content?.length ?? 0;
    if (m.role === 'assistant' && m.tool_calls) for (const c of m.tool_calls) chars += c.name.length + c.arguments.length;
  }
  for (const t of req.tools) chars += t.name.length + t.description.length + schemaChars(t.parameters);
  return Math.ceil(chars / 4);
}

// A tool's schema is the same object at every turn: its length is measured once.
const schemaLengths = new WeakMap<object, number>();
function schemaChars(schema: JsonSchema): number {
  let n = schemaLengths.get(schema);
  if (n === undefined) {
    n = JSON.stringify(schema).length;
    schemaLengths.set(schema, n);
  }
  return n;
}
