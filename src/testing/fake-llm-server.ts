/**
 * A fake LLM vendor on a real local HTTP port, for testing agents offline through the real SDK
 * clients. It speaks the wire protocols of OpenAI chat completions (`POST /v1/chat/completions`),
 * the OpenAI responses API (`POST /v1/responses`) and Anthropic messages (`POST /v1/messages`),
 * as JSON or as server-sent events when the request asks to stream, and answers each request with
 * the next scripted reply. Every request is recorded (path, headers, parsed body) for assertions.
 * `POST /v1/embeddings` (OpenAI's) is answered without the script, deterministically (see
 * fake-embeddings.ts: similar texts get near vectors), so vector memory works offline.
 *
 * @example
 *   const server = await startFakeLlmServer({ script: [
 *     { toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] },
 *     { status: 429, headers: { 'retry-after': '0' } },
 *     { content: 'Sunny in Paris.' },
 *   ] });
 *   // point a client at server.openaiBaseUrl (…/v1) or server.anthropicBaseUrl (…/v1)
 *   await server.close();
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FAKE_EMBEDDING_DIMENSIONS, fakeEmbedding } from './fake-embeddings.js';

export interface FakeToolCall {
  /** Defaults to `call_<n>` (OpenAI) or `toolu_<n>` (Anthropic). */
  id?: string;
  name: string;
  /** JSON text (sent as is, even when malformed) or an object (serialised). */
  arguments: string | object;
}

/** One scripted answer. With `status` ≥ 400 (or a `body`), the server answers with that instead of a completion. */
export interface FakeReply {
  content?: string;
  toolCalls?: FakeToolCall[];
  /** Defaults to an estimate (4 characters a token). */
  usage?: { input_tokens: number; output_tokens: number };
  /** Why the model stopped (default: `tool_calls` when there are tool calls, else `stop`), in each vendor's words. */
  finishReason?: 'stop' | 'length' | 'tool_calls' | 'content_filter';
  /** HTTP status (default 200). An error status without `body` gets the vendor's error shape. */
  status?: number;
  /** Extra response headers, e.g. `{ 'retry-after': '1' }`. */
  headers?: Record<string, string>;
  /** A response body sent verbatim as JSON, instead of a generated one. */
  body?: unknown;
  /** Wait this long before answering. */
  delayMs?: number;
  /** When streaming, wait this long between events. */
  chunkDelayMs?: number;
}

export type FakeApi = 'openai-chat' | 'openai-responses' | 'anthropic-messages';

export interface RecordedRequest {
  method: string;
  /** The path without the query string, e.g. `/v1/chat/completions`. */
  path: string;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** The parsed JSON body (the raw text when it is not JSON). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a vendor request body, for assertions
  body: any;
  /** The protocol the path belongs to (undefined for an unknown path). */
  api: FakeApi | undefined;
  /** The request asked for server-sent events. */
  stream: boolean;
}

export type FakeScript = FakeReply[] | ((req: RecordedRequest) => FakeReply | Promise<FakeReply>);

export interface FakeLlmServerOptions {
  /** Replies in order, or a function answering each request (used when the queue of pushed replies is empty). */
  script?: FakeScript;
  /** Default 0: any free port. */
  port?: number;
  /** The address to listen on (default `127.0.0.1`). */
  host?: string;
}

export interface FakeLlmServer {
  /** `http://127.0.0.1:<port>` (or the host it listens on) */
  readonly url: string;
  /** `<url>/v1`: the base URL for OpenAI and OpenAI-compatible clients. */
  readonly openaiBaseUrl: string;
  /** `<url>/v1`: the base URL for Anthropic clients (the AI SDK's, which includes the version). */
  readonly anthropicBaseUrl: string;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  /** Replies not yet used. */
  readonly remaining: number;
  /** Queue more replies (answered before the script function, if any). */
  push(...replies: FakeReply[]): void;
  close(): Promise<void>;
}

export async function startFakeLlmServer(options: FakeLlmServerOptions = {}): Promise<FakeLlmServer> {
  const queue: FakeReply[] = Array.isArray(options.script) ? [...options.script] : [];
  const fn = typeof options.script === 'function' ? options.script : undefined;
  const requests: RecordedRequest[] = [];
  let seq = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const text = await readBody(req);
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // keep the text
    }
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const api: FakeApi | undefined = path.endsWith('/chat/completions')
      ? 'openai-chat'
      : path.endsWith('/responses')
        ? 'openai-responses'
        : path.endsWith('/messages')
          ? 'anthropic-messages'
          : undefined;
    const stream = typeof body === 'object' && body !== null && (body as { stream?: unknown }).stream === true;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const recorded: RecordedRequest = { method: req.method ?? 'GET', path, headers, body, api, stream };
    requests.push(recorded);
    const n = requests.length;

    if (req.method === 'POST' && path.endsWith('/embeddings')) {
      sendJson(res, 200, {}, embeddings(body));
      return;
    }
    if (!api || req.method !== 'POST') {
      sendJson(res, 404, {}, errorBody(api ?? 'openai-chat', 404, `fake LLM server: no route for ${req.method} ${path}: use POST /v1/chat/completions, /v1/responses or /v1/messages`));
      return;
    }
    const reply = queue.length > 0 ? (queue.shift() as FakeReply) : fn ? await fn(recorded) : undefined;
    if (!reply) {
      sendJson(res, 500, {}, errorBody(api, 500, `fake LLM server: the script ran out: no reply for request #${n} (POST ${path}); push more replies or give a longer script`));
      return;
    }
    if (reply.delayMs) await delay(reply.delayMs);
    if (res.destroyed) return;
    const status = reply.status ?? 200;
    if (reply.body !== undefined) {
      sendJson(res, status, reply.headers ?? {}, reply.body);
      return;
    }
    if (status >= 400) {
      sendJson(res, status, reply.headers ?? {}, errorBody(api, status, `fake LLM server: scripted error ${status}`));
      return;
    }
    const completion = normalise(reply, body, ++seq);
    const model = typeof (body as { model?: unknown }).model === 'string' ? (body as { model: string }).model : 'fake-model';
    if (api === 'openai-chat') {
      const includeUsage = (body as { stream_options?: { include_usage?: boolean } }).stream_options?.include_usage === true;
      if (stream) await sendEvents(res, status, reply, chatChunks(completion, model, includeUsage));
      else sendJson(res, status, reply.headers ?? {}, chatCompletion(completion, model));
    } else if (api === 'openai-responses') {
      if (stream) await sendEvents(res, status, reply, responsesEvents(completion, model));
      else sendJson(res, status, reply.headers ?? {}, responsesObject(completion, model, 'completed'));
    } else {
      if (stream) await sendEvents(res, status, reply, anthropicEvents(completion, model));
      else sendJson(res, status, reply.headers ?? {}, anthropicMessage(completion, model));
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendJson(res, 500, {}, { error: { message: `fake LLM server: ${e instanceof Error ? e.message : String(e)}`, type: 'server_error' } });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port, address, family } = server.address() as AddressInfo;
  const url = `http://${family === 'IPv6' ? `[${address}]` : address}:${port}`;
  return {
    url,
    openaiBaseUrl: `${url}/v1`,
    anthropicBaseUrl: `${url}/v1`,
    requests,
    get remaining() {
      return queue.length;
    },
    push(...replies) {
      queue.push(...replies);
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The completion, independent of the protocol

interface Completion {
  n: number;
  content: string;
  calls: Array<{ id: string | undefined; name: string; arguments: string }>;
  usage: { input_tokens: number; output_tokens: number };
  finish: 'stop' | 'length' | 'tool_calls' | 'content_filter';
}

function normalise(reply: FakeReply, body: unknown, n: number): Completion {
  const calls = (reply.toolCalls ?? []).map((c) => ({ id: c.id, name: c.name, arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments) }));
  const content = reply.content ?? '';
  const b = body as { messages?: unknown; input?: unknown; system?: unknown; instructions?: unknown; tools?: unknown } | undefined;
  const promptChars = JSON.stringify([b?.system, b?.instructions, b?.messages, b?.input, b?.tools] as unknown[]).length;
  const outChars = content.length + calls.reduce((s, c) => s + c.name.length + c.arguments.length, 0);
  return {
    n,
    content,
    calls,
    usage: reply.usage ?? { input_tokens: Math.max(1, Math.ceil(promptChars / 4)), output_tokens: Math.max(1, Math.ceil(outChars / 4)) },
    finish: reply.finishReason ?? (calls.length > 0 ? 'tool_calls' : 'stop'),
  };
}

/** Text as a stream would carry it: a word (with its trailing space) per chunk. */
function splitText(s: string): string[] {
  return s.match(/\S+\s*|\s+/g) ?? [];
}

/** Arguments split in about three pieces, so that every call's JSON arrives over several chunks. */
function splitArgs(s: string): string[] {
  if (s.length < 2) return s ? [s] : [];
  const size = Math.max(1, Math.ceil(s.length / 3));
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

function objectArguments(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const created = (): number => Math.floor(Date.now() / 1000);

// ---------------------------------------------------------------------------------------------
// OpenAI chat completions

const callId = (c: Completion, i: number, id: string | undefined): string => id ?? `call_${c.n}_${i}`;

function chatUsage(c: Completion): Record<string, number> {
  return { prompt_tokens: c.usage.input_tokens, completion_tokens: c.usage.output_tokens, total_tokens: c.usage.input_tokens + c.usage.output_tokens };
}

function chatCompletion(c: Completion, model: string): unknown {
  return {
    id: `chatcmpl-fake-${c.n}`,
    object: 'chat.completion',
    created: created(),
    model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: c.content === '' && c.calls.length > 0 ? null : c.content,
          ...(c.calls.length > 0
            ? { tool_calls: c.calls.map((t, i) => ({ id: callId(c, i, t.id), type: 'function', function: { name: t.name, arguments: t.arguments } })) }
            : {}),
        },
        finish_reason: c.finish,
        logprobs: null,
      },
    ],
    usage: chatUsage(c),
  };
}

function* chatChunks(c: Completion, model: string, includeUsage: boolean): Generator<SseEvent> {
  const base = { id: `chatcmpl-fake-${c.n}`, object: 'chat.completion.chunk', created: created(), model };
  const chunk = (delta: unknown, finish: string | null = null): SseEvent => ({ data: { ...base, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] } });
  yield chunk({ role: 'assistant', content: '' });
  for (const piece of splitText(c.content)) yield chunk({ content: piece });
  for (const [i, t] of c.calls.entries()) {
    yield chunk({ tool_calls: [{ index: i, id: callId(c, i, t.id), type: 'function', function: { name: t.name, arguments: '' } }] });
    for (const piece of splitArgs(t.arguments)) yield chunk({ tool_calls: [{ index: i, function: { arguments: piece } }] });
  }
  yield chunk({}, c.finish);
  if (includeUsage) yield { data: { ...base, choices: [], usage: chatUsage(c) } };
  yield { data: '[DONE]' };
}

// ---------------------------------------------------------------------------------------------
// OpenAI responses API

function responsesUsage(c: Completion): unknown {
  return {
    input_tokens: c.usage.input_tokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: c.usage.output_tokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: c.usage.input_tokens + c.usage.output_tokens,
  };
}

function responsesItems(c: Completion): unknown[] {
  const items: unknown[] = [];
  if (c.content) items.push(messageItem(c, 'completed'));
  for (const [i, t] of c.calls.entries()) items.push(functionItem(c, i, t, 'completed'));
  return items;
}

function messageItem(c: Completion, status: string, text = c.content): unknown {
  return { type: 'message', id: `msg_fake_${c.n}`, status, role: 'assistant', content: status === 'in_progress' ? [] : [{ type: 'output_text', text, annotations: [], logprobs: [] }] };
}

function functionItem(c: Completion, i: number, t: Completion['calls'][number], status: string, args = t.arguments): unknown {
  return { type: 'function_call', id: `fc_fake_${c.n}_${i}`, call_id: callId(c, i, t.id), name: t.name, arguments: args, status };
}

function incomplete(c: Completion): { reason: string } | null {
  return c.finish === 'length' ? { reason: 'max_output_tokens' } : c.finish === 'content_filter' ? { reason: 'content_filter' } : null;
}

function responsesObject(c: Completion, model: string, status: 'in_progress' | 'completed' | 'incomplete'): unknown {
  const done = status !== 'in_progress';
  return {
    id: `resp_fake_${c.n}`,
    object: 'response',
    created_at: created(),
    model,
    status: done && incomplete(c) ? 'incomplete' : status,
    output: done ? responsesItems(c) : [],
    incomplete_details: done ? incomplete(c) : null,
    usage: done ? responsesUsage(c) : null,
    error: null,
  };
}

function* responsesEvents(c: Completion, model: string): Generator<SseEvent> {
  let seq = 0;
  const ev = (type: string, data: Record<string, unknown>): SseEvent => ({ event: type, data: { type, sequence_number: seq++, ...data } });
  yield ev('response.created', { response: responsesObject(c, model, 'in_progress') });
  yield ev('response.in_progress', { response: responsesObject(c, model, 'in_progress') });
  let index = 0;
  if (c.content) {
    const item_id = `msg_fake_${c.n}`;
    const output_index = index++;
    yield ev('response.output_item.added', { output_index, item: messageItem(c, 'in_progress') });
    yield ev('response.content_part.added', { item_id, output_index, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
    for (const delta of splitText(c.content)) yield ev('response.output_text.delta', { item_id, output_index, content_index: 0, delta, logprobs: [] });
    yield ev('response.output_text.done', { item_id, output_index, content_index: 0, text: c.content, logprobs: [] });
    yield ev('response.content_part.done', { item_id, output_index, content_index: 0, part: { type: 'output_text', text: c.content, annotations: [] } });
    yield ev('response.output_item.done', { output_index, item: messageItem(c, 'completed') });
  }
  for (const [i, t] of c.calls.entries()) {
    const output_index = index++;
    const item_id = `fc_fake_${c.n}_${i}`;
    yield ev('response.output_item.added', { output_index, item: functionItem(c, i, t, 'in_progress', '') });
    for (const delta of splitArgs(t.arguments)) yield ev('response.function_call_arguments.delta', { item_id, output_index, delta });
    yield ev('response.function_call_arguments.done', { item_id, output_index, arguments: t.arguments });
    yield ev('response.output_item.done', { output_index, item: functionItem(c, i, t, 'completed') });
  }
  const final = responsesObject(c, model, 'completed') as { status: string };
  yield ev(final.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: final });
}

// ---------------------------------------------------------------------------------------------
// Anthropic messages

const STOP_REASONS = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use', content_filter: 'refusal' } as const;
const toolUseId = (c: Completion, i: number, id: string | undefined): string => id ?? `toolu_fake_${c.n}_${i}`;

function anthropicMessage(c: Completion, model: string): unknown {
  return {
    id: `msg_fake_${c.n}`,
    type: 'message',
    role: 'assistant',
    model,
    content: [
      ...(c.content ? [{ type: 'text', text: c.content }] : []),
      ...c.calls.map((t, i) => ({ type: 'tool_use', id: toolUseId(c, i, t.id), name: t.name, input: objectArguments(t.arguments) })),
    ],
    stop_reason: STOP_REASONS[c.finish],
    stop_sequence: null,
    usage: { input_tokens: c.usage.input_tokens, output_tokens: c.usage.output_tokens },
  };
}

function* anthropicEvents(c: Completion, model: string): Generator<SseEvent> {
  const ev = (type: string, data: Record<string, unknown>): SseEvent => ({ event: type, data: { type, ...data } });
  yield ev('message_start', {
    message: { id: `msg_fake_${c.n}`, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: c.usage.input_tokens, output_tokens: 1 } },
  });
  let index = 0;
  if (c.content) {
    yield ev('content_block_start', { index, content_block: { type: 'text', text: '' } });
    yield ev('ping', {});
    for (const text of splitText(c.content)) yield ev('content_block_delta', { index, delta: { type: 'text_delta', text } });
    yield ev('content_block_stop', { index });
    index++;
  }
  for (const [i, t] of c.calls.entries()) {
    yield ev('content_block_start', { index, content_block: { type: 'tool_use', id: toolUseId(c, i, t.id), name: t.name, input: {} } });
    yield ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } });
    for (const partial_json of splitArgs(t.arguments)) yield ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json } });
    yield ev('content_block_stop', { index });
    index++;
  }
  yield ev('message_delta', { delta: { stop_reason: STOP_REASONS[c.finish], stop_sequence: null }, usage: { output_tokens: c.usage.output_tokens } });
  yield ev('message_stop', {});
}

// ---------------------------------------------------------------------------------------------
// HTTP

function errorBody(api: FakeApi, status: number, message: string): unknown {
  if (api === 'anthropic-messages') {
    const type =
      status === 429
        ? 'rate_limit_error'
        : status === 529
          ? 'overloaded_error'
          : status >= 500
            ? 'api_error'
            : status === 401
              ? 'authentication_error'
              : status === 404
                ? 'not_found_error'
                : 'invalid_request_error';
    return { type: 'error', error: { type, message } };
  }
  const type = status === 429 ? 'rate_limit_exceeded' : status >= 500 ? 'server_error' : status === 404 ? 'not_found' : 'invalid_request_error';
  return { error: { message, type, param: null, code: null } };
}

interface SseEvent {
  event?: string;
  data: unknown;
}

/** OpenAI's embeddings response for `input` (a string or a list), `dimensions` if asked (default 384). */
function embeddings(body: unknown): unknown {
  const b = (body ?? {}) as { input?: unknown; model?: unknown; dimensions?: unknown };
  const inputs = Array.isArray(b.input) ? b.input : [b.input ?? ''];
  const dims = typeof b.dimensions === 'number' && b.dimensions > 0 ? b.dimensions : FAKE_EMBEDDING_DIMENSIONS;
  let tokens = 0;
  const data = inputs.map((input, index) => {
    const text = typeof input === 'string' ? input : JSON.stringify(input);
    tokens += Math.ceil(text.length / 4);
    return { object: 'embedding', index, embedding: Array.from(fakeEmbedding(text, dims)) };
  });
  return { object: 'list', data, model: typeof b.model === 'string' ? b.model : 'fake-embedding', usage: { prompt_tokens: tokens, total_tokens: tokens } };
}

function sendJson(res: ServerResponse, status: number, headers: Record<string, string>, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function sendEvents(res: ServerResponse, status: number, reply: FakeReply, events: Iterable<SseEvent>): Promise<void> {
  res.writeHead(status, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', ...(reply.headers ?? {}) });
  for (const e of events) {
    if (res.destroyed) return;
    const data = typeof e.data === 'string' ? e.data : JSON.stringify(e.data);
    res.write(`${e.event ? `event: ${e.event}\n` : ''}data: ${data}\n\n`);
    if (reply.chunkDelayMs) await delay(reply.chunkDelayMs);
  }
  res.end();
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
