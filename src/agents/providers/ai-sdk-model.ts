/**
 * A `ChatModel` over an AI SDK language model: one model call per `generate` (tools have no
 * `execute`: the agent loop runs them), our retry policy and rate limits around it, and the
 * request and response mapped between our chat-completions shape and the SDK's.
 */
import {
  generateText,
  jsonSchema,
  streamText,
  tool,
  wrapLanguageModel,
  type FinishReason,
  type JSONSchema7,
  type LanguageModelUsage,
  type ModelMessage,
  type OutputInterface,
  type ToolResultPart,
  type ToolSet,
} from 'ai';
import type { embedMany } from 'ai';
import { estimateInputTokens, type ChatModel, type JsonSchema, type Message, type ModelCallOptions, type ModelRequest, type ModelResponse, type ToolCall, type ToolSchema } from '../types.js';
import type { ProviderConfig, ProviderType, ProvidersConfig } from './config.js';
import { ModelCallError } from './errors.js';
import { costOf } from './prices.js';
import { abortReason, sleep, type RateLimiter } from './rate-limit.js';
import { classifyFailure, retryDelayMs, type RetryInfo } from './retry.js';

/** An AI SDK language model (the provider packages' `LanguageModelV3`). */
export type SdkLanguageModel = Parameters<typeof wrapLanguageModel>[0]['model'];
type SdkStreamPart = Awaited<ReturnType<SdkLanguageModel['doStream']>>['stream'] extends ReadableStream<infer P> ? P : never;

export interface ProviderModelOptions {
  /** Called before each retry, e.g. to log it. */
  onRetry?: (info: RetryInfo) => void;
  /** Randomness for the backoff jitter (a number in [0, 1)). */
  random?: () => number;
}

/** What `createModel` resolved: the provider's settings and a factory of SDK models. */
/** An AI SDK embedding model (what `embed` / `embedMany` take). */
export type EmbeddingModel = Parameters<typeof embedMany>[0]['model'];

export interface ResolvedProvider {
  readonly settings: ProviderConfig;
  readonly type: ProviderType;
  /** The SDK model for a model id. */
  languageModel(modelId: string): SdkLanguageModel;
  /** The key under which this provider reads `providerOptions`. */
  readonly optionsKey: string;
  /** The SDK embedding model for a model id (undefined: the provider has none, as Anthropic). */
  embeddingModel?(modelId: string): EmbeddingModel;
}

const FINISH: Record<FinishReason, ModelResponse['finishReason']> = {
  stop: 'stop',
  length: 'length',
  'content-filter': 'content_filter',
  'tool-calls': 'tool_calls',
  error: 'error',
  other: 'other',
};

export class ProviderModel implements ChatModel {
  /** `provider/model`. */
  readonly id: string;
  private lastModelId: string | undefined;
  private lastModel: SdkLanguageModel | undefined;

  constructor(
    private readonly provider: ResolvedProvider,
    /** The model id at the provider. */
    readonly model: string,
    private readonly config: ProvidersConfig,
    private readonly limiter: RateLimiter | undefined,
    private readonly options: ProviderModelOptions = {},
  ) {
    this.id = `${provider.settings.name}/${model}`;
  }

  /** US dollars for a call's tokens (0 when the model's price is unknown). */
  costOf(usage: { input_tokens: number; output_tokens: number }): number {
    return costOf(this.id, usage, this.config);
  }

  async generate(req: ModelRequest, options: ModelCallOptions = {}): Promise<ModelResponse> {
    const { signal, onDelta } = options;
    if (signal?.aborted) throw abortReason(signal);
    const settings = this.provider.settings;
    // The loop names the model by its id (`provider/model`); the vendor wants its own id.
    const modelId = !req.model || req.model === this.id ? this.model : req.model;
    const estimate = this.limiter?.tokens ? estimateTokens(req) : 0;
    for (let attempt = 1; ; attempt++) {
      if (this.limiter) await this.limiter.acquire(estimate, signal);
      const state: CallState = { emitted: false, calls: [] };
      try {
        const res = onDelta ? await this.streamOnce(modelId, req, signal, onDelta, state) : await this.generateOnce(modelId, req, signal, state);
        this.limiter?.settle(estimate, res.usage.input_tokens + res.usage.output_tokens);
        return res;
      } catch (e) {
        if (signal?.aborted) throw abortReason(signal);
        const failure = classifyFailure(e);
        const name = `${settings.name}/${modelId}`;
        if (!failure.retryable || attempt > settings.maxRetries || state.emitted) {
          const status = failure.status !== undefined ? `HTTP ${failure.status}` : failure.retryable ? 'unreachable' : 'failed';
          const tries = attempt > 1 ? ` after ${attempt} attempts` : '';
          throw new ModelCallError(`${name}: ${status}${tries}: ${failure.message}`, {
            model: name,
            status: failure.status,
            retryable: failure.retryable,
            attempts: attempt,
            cause: e,
          });
        }
        const { delayMs, fromRetryAfter } = retryDelayMs(attempt, settings, failure.headers, (this.options.random ?? Math.random)());
        this.options.onRetry?.({ model: name, attempt, maxRetries: settings.maxRetries, delayMs, fromRetryAfter, status: failure.status, message: failure.message });
        await sleep(delayMs, signal);
      }
    }
  }

  private sdkModel(modelId: string, state: CallState): SdkLanguageModel {
    if (modelId !== this.lastModelId || !this.lastModel) {
      this.lastModel = this.provider.languageModel(modelId);
      this.lastModelId = modelId;
    }
    // The SDK parses tool-call arguments; the raw JSON text the model wrote is taken here, below it.
    return wrapLanguageModel({
      model: this.lastModel,
      middleware: {
        specificationVersion: 'v3',
        wrapGenerate: async ({ doGenerate }) => {
          const r = await doGenerate();
          for (const c of r.content) if (c.type === 'tool-call' && !c.providerExecuted) state.calls.push({ id: c.toolCallId, name: c.toolName, arguments: c.input });
          return r;
        },
        wrapStream: async ({ doStream }) => {
          const r = await doStream();
          const tap = new TransformStream<SdkStreamPart, SdkStreamPart>({
            transform(part, controller) {
              if (part.type === 'tool-call' && !part.providerExecuted) state.calls.push({ id: part.toolCallId, name: part.toolName, arguments: part.input });
              controller.enqueue(part);
            },
          });
          return { ...r, stream: r.stream.pipeThrough(tap) };
        },
      },
    });
  }

  private callArgs(modelId: string, req: ModelRequest, signal: AbortSignal | undefined, state: CallState) {
    const hasTools = req.tools.length > 0;
    const providerOptions: Record<string, Record<string, boolean>> = {};
    const opts: Record<string, boolean> = {};
    if (hasTools && req.parallelToolCalls === false) {
      if (this.provider.type === 'anthropic') opts.disableParallelToolUse = true;
      else if (this.provider.type === 'openai') opts.parallelToolCalls = false;
      else opts.parallel_tool_calls = false;
    }
    // OpenAI's strict structured output accepts only closed schemas with every property required.
    if (req.outputSchema && this.provider.type !== 'anthropic') opts.strictJsonSchema = isStrictSchema(req.outputSchema);
    if (Object.keys(opts).length > 0) providerOptions[this.provider.optionsKey] = opts;
    return {
      model: this.sdkModel(modelId, state),
      system: req.system || undefined,
      messages: toModelMessages(req.messages),
      allowSystemInMessages: true,
      tools: hasTools ? toolSet(req.tools) : undefined,
      output: req.outputSchema ? jsonOutput(req.outputSchema) : undefined,
      providerOptions,
      temperature: req.temperature,
      maxOutputTokens: req.maxOutputTokens,
      maxRetries: 0,
      abortSignal: signal,
    };
  }

  private async generateOnce(modelId: string, req: ModelRequest, signal: AbortSignal | undefined, state: CallState): Promise<ModelResponse> {
    const r = await generateText(this.callArgs(modelId, req, signal, state));
    return response(r.text, state.calls, r.usage, r.finishReason, r.response.id);
  }

  private async streamOnce(
    modelId: string,
    req: ModelRequest,
    signal: AbortSignal | undefined,
    onDelta: NonNullable<ModelCallOptions['onDelta']>,
    state: CallState,
  ): Promise<ModelResponse> {
    const result = streamText({ ...this.callArgs(modelId, req, signal, state), onError: () => undefined });
    let text = '';
    let usage: LanguageModelUsage | undefined;
    let finishReason: FinishReason = 'other';
    let id: string | undefined;
    const announced = new Set<string>();
    const announce = (callId: string, name: string): void => {
      if (announced.has(callId)) return;
      announced.add(callId);
      state.emitted = true;
      onDelta({ type: 'tool_call', id: callId, name });
    };
    for await (const part of result.fullStream) {
      switch (part.type) {
        case 'text-delta':
          if (part.text) {
            text += part.text;
            state.emitted = true;
            onDelta({ type: 'text', text: part.text });
          }
          break;
        case 'tool-input-start':
          if (!part.providerExecuted) announce(part.id, part.toolName);
          break;
        case 'tool-call':
          if (!part.providerExecuted) announce(part.toolCallId, part.toolName);
          break;
        case 'finish-step':
          usage = part.usage;
          finishReason = part.finishReason;
          id = part.response.id;
          break;
        case 'error':
          throw part.error;
        case 'abort':
          throw signal ? abortReason(signal) : new DOMException('The model call was aborted.', 'AbortError');
        default:
          break;
      }
    }
    return response(text, state.calls, usage, finishReason, id);
  }
}

interface CallState {
  /** Something was passed to onDelta: the call is not retried (the caller saw part of it). */
  emitted: boolean;
  /** Tool calls as the provider returned them, arguments unparsed. */
  calls: ToolCall[];
}

function response(text: string, calls: ToolCall[], usage: LanguageModelUsage | undefined, reason: FinishReason, id: string | undefined): ModelResponse {
  let finishReason = FINISH[reason] ?? 'other';
  if (calls.length > 0 && (finishReason === 'stop' || finishReason === 'other')) finishReason = 'tool_calls';
  return {
    content: text === '' && calls.length > 0 ? null : text,
    toolCalls: calls,
    usage: { input_tokens: usage?.inputTokens ?? 0, output_tokens: usage?.outputTokens ?? 0 },
    finishReason,
    ...(id ? { id } : {}),
  };
}

/** Our messages as AI SDK model messages. Consecutive tool results share one tool message. */
export function toModelMessages(messages: readonly Message[]): ModelMessage[] {
  const out: ModelMessage[] = [];
  for (const m of messages) {
    switch (m.role) {
      case 'system':
      case 'user':
        out.push({ role: m.role, content: m.content });
        break;
      case 'assistant':
        if (!m.tool_calls?.length) {
          out.push({ role: 'assistant', content: m.content ?? '' });
        } else {
          out.push({
            role: 'assistant',
            content: [
              ...(m.content ? [{ type: 'text' as const, text: m.content }] : []),
              ...m.tool_calls.map((c) => ({ type: 'tool-call' as const, toolCallId: c.id, toolName: c.name, input: parseArguments(c.arguments) })),
            ],
          });
        }
        break;
      case 'tool': {
        const part: ToolResultPart = { type: 'tool-result', toolCallId: m.tool_call_id, toolName: m.name, output: { type: 'text', value: m.content } };
        const last = out[out.length - 1];
        if (last?.role === 'tool') last.content.push(part);
        else out.push({ role: 'tool', content: [part] });
        break;
      }
    }
  }
  return out;
}

/**
 * Tool-call arguments for the history sent back to the vendor. Arguments that are not a JSON object
 * (the model wrote malformed JSON) are sent as `{}`: vendors accept only objects there, and the tool's
 * result already tells the model what was wrong.
 */
function parseArguments(text: string): unknown {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
}

const toolSets = new WeakMap<readonly ToolSchema[], ToolSet>();

/** Tool schemas as SDK tools without `execute` (the SDK only reports the calls). Cached per array. */
function toolSet(tools: readonly ToolSchema[]): ToolSet {
  let set = toolSets.get(tools);
  if (!set) {
    set = {};
    for (const t of tools) set[t.name] = tool({ description: t.description, inputSchema: jsonSchema(t.parameters as JSONSchema7) });
    toolSets.set(tools, set);
  }
  return set;
}

const outputs = new WeakMap<JsonSchema, OutputInterface<string, undefined, never>>();

/**
 * Structured output: the schema goes to the vendor as its JSON response format; the text comes back
 * unparsed (the agent loop validates it and can tell the model what was wrong).
 */
function jsonOutput(schema: JsonSchema): OutputInterface<string, undefined, never> {
  let out = outputs.get(schema);
  if (!out) {
    out = {
      name: 'object',
      responseFormat: Promise.resolve({ type: 'json', schema }),
      parseCompleteOutput: async ({ text }) => text,
      parsePartialOutput: async () => undefined,
      createElementStreamTransform: () => undefined,
    };
    outputs.set(schema, out);
  }
  return out;
}

/** Does the schema satisfy OpenAI's strict mode (every object closed, every property required)? */
export function isStrictSchema(schema: unknown): boolean {
  if (Array.isArray(schema)) return schema.every(isStrictSchema);
  if (typeof schema !== 'object' || schema === null) return true;
  const s = schema as Record<string, unknown>;
  const props = s.properties as Record<string, unknown> | undefined;
  if (s.type === 'object' || props) {
    if (s.additionalProperties !== false) return false;
    const required: unknown[] = Array.isArray(s.required) ? s.required : [];
    if (props && !Object.keys(props).every((k) => required.includes(k))) return false;
  }
  for (const key of ['properties', '$defs', 'definitions'] as const) {
    const group = s[key];
    if (group && typeof group === 'object' && !Object.values(group).every(isStrictSchema)) return false;
  }
  for (const key of ['items', 'anyOf', 'allOf', 'oneOf'] as const) if (s[key] !== undefined && !isStrictSchema(s[key])) return false;
  return true;
}

/** A rough token count of a request (4 characters a token), for the tokens-per-minute bucket. */
export function estimateTokens(req: ModelRequest): number {
  return estimateInputTokens(req) + (req.maxOutputTokens ?? 0);
}
