import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../src/core/errors.js';
import { ManifestError } from '../src/core/errors.js';
import {
  costOf,
  createModel,
  ModelCallError,
  parseModelRef,
  parseProvidersConfig,
  priceOf,
  TokenBucket,
  type ModelSpec,
  type ProvidersConfig,
  type RetryInfo,
} from '../src/agents/providers/index.js';
import type { Message, ModelRequest, StreamDelta, ToolSchema } from '../src/agents/types.js';
import { startFakeLlmServer, type FakeLlmServer, type RecordedRequest } from '../src/testing/fake-llm-server.js';
import { ScriptedModel } from '../src/testing/scripted-model.js';

const ENV = { OPENAI_API_KEY: 'sk-test', ANTHROPIC_API_KEY: 'ant-test' };

const WEATHER: ToolSchema = {
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' }, units: { type: 'string' } }, required: ['city'] },
};
const TIME: ToolSchema = { name: 'get_time', description: 'The time in a zone', parameters: { type: 'object', properties: { tz: { type: 'string' } } } };

function request(messages: Message[], extra: Partial<ModelRequest> = {}): ModelRequest {
  return { model: '', system: 'You are terse.', messages, tools: [], ...extra };
}
const hello = (extra: Partial<ModelRequest> = {}): ModelRequest => request([{ role: 'user', content: 'Hello' }], extra);

/** The parts of the vendors' request bodies the tests look at. */
interface ChatBody {
  messages: Array<{ role: string; content?: unknown; tool_call_id?: string; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }> }>;
  tools?: Array<{ function: { name: string; parameters: unknown } }>;
  response_format?: { json_schema?: { schema: unknown } };
  parallel_tool_calls?: boolean;
}
interface ResponsesBody {
  input: Array<{ type?: string; role?: string; call_id?: string; name?: string; arguments?: string; output?: unknown }>;
  tools?: Array<{ name: string; parameters: unknown }>;
  text?: { format?: { type: string; schema?: unknown } };
  parallel_tool_calls?: boolean;
}
interface AnthropicBody {
  system?: unknown;
  messages: Array<{ role: string; content: string | Array<{ type: string; id?: string; name?: string; input?: unknown; tool_use_id?: string; content?: unknown }> }>;
  tools?: Array<{ name: string; input_schema: unknown }>;
  output_config?: { format?: { schema?: unknown } };
  tool_choice?: { disable_parallel_tool_use?: boolean };
}
type History = { calls: Array<{ id: string; name: string; args: unknown }>; results: Array<{ id: string | undefined; output: unknown }> };

/** What each wire protocol looks like, for assertions on the requests the server received. */
interface Flavor {
  name: string;
  spec(s: FakeLlmServer): ModelSpec;
  path: string;
  /** The authentication the client sent. */
  auth(r: RecordedRequest): string | undefined;
  system(body: unknown): unknown;
  /** The tool names and JSON Schemas as sent. */
  tools(body: unknown): Array<{ name: string; parameters: unknown }>;
  /** The assistant's tool calls and the tool results of the history, as sent. */
  history(body: unknown): History;
  /** The JSON Schema of the structured output, as sent. */
  outputSchema(body: unknown): unknown;
  parallelOff(body: unknown): boolean;
  /** Tool-call arguments come back as the model wrote them (Anthropic's JSON answers carry an object, re-serialised). */
  rawArguments: boolean;
}

const chat = (body: unknown): ChatBody => body as ChatBody;
const chatFlavor = {
  system: (b: unknown) => chat(b).messages[0],
  tools: (b: unknown) => (chat(b).tools ?? []).map((t) => ({ name: t.function.name, parameters: t.function.parameters })),
  history: (b: unknown): History => ({
    calls: chat(b).messages.flatMap((m) => (m.role === 'assistant' ? (m.tool_calls ?? []) : []).map((c) => ({ id: c.id, name: c.function.name, args: JSON.parse(c.function.arguments) as unknown }))),
    results: chat(b).messages.filter((m) => m.role === 'tool').map((m) => ({ id: m.tool_call_id, output: m.content })),
  }),
  outputSchema: (b: unknown) => chat(b).response_format?.json_schema?.schema,
  parallelOff: (b: unknown) => chat(b).parallel_tool_calls === false,
  rawArguments: true,
};
const responses = (body: unknown): ResponsesBody => body as ResponsesBody;
const anthropic = (body: unknown): AnthropicBody => body as AnthropicBody;
const anthropicParts = (b: unknown, role: string) => anthropic(b).messages.flatMap((m) => (m.role === role && Array.isArray(m.content) ? m.content : []));

const FLAVORS: Flavor[] = [
  {
    name: 'openai chat',
    spec: (s) => ({ provider: 'openai', model: 'gpt-4o-mini', baseUrl: s.openaiBaseUrl }),
    path: '/v1/chat/completions',
    auth: (r) => r.headers.authorization,
    ...chatFlavor,
  },
  {
    name: 'openai responses',
    spec: (s) => ({ provider: 'openai', model: 'gpt-4o-mini', baseUrl: s.openaiBaseUrl, api: 'responses' }),
    path: '/v1/responses',
    auth: (r) => r.headers.authorization,
    system: (b) => responses(b).input[0],
    tools: (b) => (responses(b).tools ?? []).map((t) => ({ name: t.name, parameters: t.parameters })),
    history: (b) => ({
      calls: responses(b)
        .input.filter((i) => i.type === 'function_call')
        .map((i) => ({ id: i.call_id ?? '', name: i.name ?? '', args: JSON.parse(i.arguments ?? '') as unknown })),
      results: responses(b)
        .input.filter((i) => i.type === 'function_call_output')
        .map((i) => ({ id: i.call_id, output: i.output })),
    }),
    outputSchema: (b) => (responses(b).text?.format?.type === 'json_schema' ? responses(b).text?.format?.schema : undefined),
    parallelOff: (b) => responses(b).parallel_tool_calls === false,
    rawArguments: true,
  },
  {
    name: 'anthropic',
    spec: (s) => ({ provider: 'anthropic', model: 'claude-sonnet-4-5', baseUrl: s.anthropicBaseUrl }),
    path: '/v1/messages',
    auth: (r) => r.headers['x-api-key'],
    system: (b) => anthropic(b).system,
    tools: (b) => (anthropic(b).tools ?? []).map((t) => ({ name: t.name, parameters: t.input_schema })),
    history: (b) => ({
      calls: anthropicParts(b, 'assistant')
        .filter((p) => p.type === 'tool_use')
        .map((p) => ({ id: p.id ?? '', name: p.name ?? '', args: p.input })),
      results: anthropicParts(b, 'user')
        .filter((p) => p.type === 'tool_result')
        .map((p) => ({ id: p.tool_use_id, output: p.content })),
    }),
    outputSchema: (b) => anthropic(b).output_config?.format?.schema,
    parallelOff: (b) => anthropic(b).tool_choice?.disable_parallel_tool_use === true,
    rawArguments: false,
  },
  {
    name: 'openai-compatible',
    spec: (s) => ({ provider: 'openai-compatible', model: 'llama3.2', baseUrl: s.openaiBaseUrl }),
    path: '/v1/chat/completions',
    auth: (r) => r.headers.authorization,
    ...chatFlavor,
  },
];

let server: FakeLlmServer;
beforeEach(async () => {
  server = await startFakeLlmServer();
});
afterEach(async () => {
  await server.close();
});

describe.each(FLAVORS)('$name through the AI SDK client', (flavor) => {
  it('answers a plain prompt: content, usage, finish reason, and the request as the vendor expects it', async () => {
    server.push({ content: 'Hello there.', usage: { input_tokens: 12, output_tokens: 3 } });
    const model = createModel(flavor.spec(server), {}, ENV);
    const res = await model.generate(hello());
    expect(res).toMatchObject({ content: 'Hello there.', toolCalls: [], usage: { input_tokens: 12, output_tokens: 3 }, finishReason: 'stop' });
    expect(res.id).toBeTruthy();
    expect(server.requests).toHaveLength(1);
    const r = server.requests[0]!;
    expect(r.path).toBe(flavor.path);
    expect(r.stream).toBe(false);
    expect(r.body.model).toBe(model.model);
    expect(JSON.stringify(flavor.system(r.body))).toContain('You are terse.');
    if (flavor.name === 'openai-compatible') expect(flavor.auth(r)).toBeUndefined();
    else expect(flavor.auth(r)).toContain(flavor.name === 'anthropic' ? 'ant-test' : 'sk-test');
  });

  it('returns a tool call with its raw arguments, then maps the tool result into the next request', async () => {
    server.push({ toolCalls: [{ id: 'call_w1', name: 'get_weather', arguments: '{"city": "Paris"}' }] }, { content: 'Sunny in Paris.' });
    const model = createModel(flavor.spec(server), {}, ENV);
    const first = await model.generate(hello({ tools: [WEATHER] }));
    expect(first.finishReason).toBe('tool_calls');
    expect(first.content).toBeNull();
    expect(first.toolCalls.map((c) => [c.id, c.name, JSON.parse(c.arguments) as unknown])).toEqual([['call_w1', 'get_weather', { city: 'Paris' }]]);
    if (flavor.rawArguments) expect(first.toolCalls[0]!.arguments).toBe('{"city": "Paris"}');
    expect(flavor.tools(server.requests[0]!.body)).toEqual([{ name: 'get_weather', parameters: WEATHER.parameters }]);

    const messages: Message[] = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: first.toolCalls },
      { role: 'tool', tool_call_id: 'call_w1', name: 'get_weather', content: '{"sky":"sunny"}' },
    ];
    const second = await model.generate(request(messages, { tools: [WEATHER] }));
    expect(second).toMatchObject({ content: 'Sunny in Paris.', toolCalls: [], finishReason: 'stop' });
    const sent = flavor.history(server.requests[1]!.body);
    expect(sent.calls).toEqual([{ id: 'call_w1', name: 'get_weather', args: { city: 'Paris' } }]);
    expect(sent.results).toEqual([{ id: 'call_w1', output: '{"sky":"sunny"}' }]);
  });

  it('keeps the order of parallel tool calls, and sends parallelToolCalls: false as the vendor expects', async () => {
    const calls = [
      { id: 'c_a', name: 'get_weather', arguments: { city: 'Oslo' } },
      { id: 'c_b', name: 'get_time', arguments: { tz: 'UTC' } },
      { id: 'c_c', name: 'get_weather', arguments: { city: 'Lima' } },
    ];
    server.push({ toolCalls: calls }, { toolCalls: calls.slice(0, 1) });
    const model = createModel(flavor.spec(server), {}, ENV);
    const res = await model.generate(hello({ tools: [WEATHER, TIME] }));
    expect(res.toolCalls.map((c) => [c.id, c.name, JSON.parse(c.arguments) as unknown])).toEqual(calls.map((c) => [c.id, c.name, c.arguments]));
    expect(flavor.parallelOff(server.requests[0]!.body)).toBe(false);

    await model.generate(hello({ tools: [WEATHER, TIME], parallelToolCalls: false }));
    expect(flavor.parallelOff(server.requests[1]!.body)).toBe(true);
  });

  it('streams: text deltas concatenate to the content, tool calls are announced, split arguments reassemble', async () => {
    const args = '{"city": "Reykjavík", "units": "metric"}';
    server.push({ content: 'Let me check the weather for you.', toolCalls: [{ id: 'call_s1', name: 'get_weather', arguments: args }], usage: { input_tokens: 20, output_tokens: 9 } });
    const model = createModel(flavor.spec(server), {}, ENV);
    const deltas: StreamDelta[] = [];
    const res = await model.generate(hello({ tools: [WEATHER] }), { onDelta: (d) => deltas.push(d) });
    expect(server.requests[0]!.stream).toBe(true);
    const texts = deltas.filter((d) => d.type === 'text').map((d) => d.text);
    expect(texts.length).toBeGreaterThan(1);
    expect(texts.join('')).toBe('Let me check the weather for you.');
    expect(res.content).toBe('Let me check the weather for you.');
    expect(deltas.filter((d) => d.type === 'tool_call')).toEqual([{ type: 'tool_call', id: 'call_s1', name: 'get_weather' }]);
    // The server sent the arguments in several pieces; the raw text comes back byte for byte.
    expect(res.toolCalls).toEqual([{ id: 'call_s1', name: 'get_weather', arguments: args }]);
    expect(res.usage).toEqual({ input_tokens: 20, output_tokens: 9 });
    expect(res.finishReason).toBe('tool_calls');
  });

  it('sends outputSchema as the vendor structured-output format and returns the text unparsed', async () => {
    const schema = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'], additionalProperties: false };
    server.push({ content: '{"answer":"42"}' }, { content: 'not json at all' });
    const model = createModel(flavor.spec(server), {}, ENV);
    const res = await model.generate(hello({ outputSchema: schema }));
    expect(res.content).toBe('{"answer":"42"}');
    expect(flavor.outputSchema(server.requests[0]!.body)).toEqual(schema);
    // Validation is the agent loop's job: malformed output is returned, not thrown.
    await expect(model.generate(hello({ outputSchema: schema }))).resolves.toMatchObject({ content: 'not json at all' });
  });

  it('retries a 429 after the Retry-After delay, then succeeds', async () => {
    server.push({ status: 429, headers: { 'retry-after': '1' } }, { content: 'ok' });
    const retries: RetryInfo[] = [];
    const model = createModel(flavor.spec(server), {}, ENV, { onRetry: (i) => retries.push(i) });
    const t0 = performance.now();
    const res = await model.generate(hello());
    const elapsed = performance.now() - t0;
    expect(res.content).toBe('ok');
    expect(server.requests).toHaveLength(2);
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(retries).toEqual([expect.objectContaining({ attempt: 1, status: 429, delayMs: 1000, fromRetryAfter: true, model: `${flavor.spec(server).provider}/${model.model}` })]);
  });

  it('gives up after max_retries 5xx answers with a ModelCallError naming provider, model and status', async () => {
    const config = parseProvidersConfig({ [flavor.spec(server).provider]: { max_retries: 2, backoff_ms: 5, ...(flavor.name === 'openai-compatible' ? { base_url: server.openaiBaseUrl } : {}) } });
    for (let i = 0; i < 5; i++) server.push({ status: 503 });
    const model = createModel(flavor.spec(server), config, ENV);
    const err = await model.generate(hello()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelCallError);
    const e = err as ModelCallError;
    expect(server.requests).toHaveLength(3);
    expect(e).toMatchObject({ code: 'MODEL_CALL_FAILED', status: 503, retryable: true, attempts: 3 });
    expect(e.message).toContain(`${flavor.spec(server).provider}/${model.model}`);
    expect(e.message).toContain('503');
    expect(e.message).toContain('scripted error 503');
    expect(e.message).not.toContain('\n');
  });
});

describe('retry policy', () => {
  it('honours retry-after-ms and never retries more than max_retries', async () => {
    for (let i = 0; i < 6; i++) server.push({ status: 429, headers: { 'retry-after-ms': '120' } });
    const config = parseProvidersConfig({ openai: { max_retries: 3 } });
    const retries: RetryInfo[] = [];
    const model = createModel({ provider: 'openai', model: 'gpt-4o-mini', baseUrl: server.openaiBaseUrl }, config, ENV, { onRetry: (i) => retries.push(i) });
    const t0 = performance.now();
    const err = await model.generate(hello()).catch((e: unknown) => e);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(3 * 115);
    expect(err).toBeInstanceOf(ModelCallError);
    expect(err).toMatchObject({ status: 429, retryable: true, attempts: 4 });
    expect(server.requests).toHaveLength(4);
    expect(retries.map((r) => [r.attempt, r.delayMs, r.fromRetryAfter])).toEqual([
      [1, 120, true],
      [2, 120, true],
      [3, 120, true],
    ]);
    expect(server.remaining).toBe(2);
  });

  it('caps a long Retry-After at max_backoff_ms', async () => {
    server.push({ status: 429, headers: { 'retry-after': '3600' } }, { content: 'ok' });
    const config = parseProvidersConfig({ openai: { max_backoff_ms: 50 } });
    const retries: RetryInfo[] = [];
    const model = createModel({ provider: 'openai', model: 'gpt-4o-mini', baseUrl: server.openaiBaseUrl }, config, ENV, { onRetry: (i) => retries.push(i) });
    await expect(model.generate(hello())).resolves.toMatchObject({ content: 'ok' });
    expect(retries[0]?.delayMs).toBe(50);
  });

  it('backs off exponentially without Retry-After', async () => {
    for (let i = 0; i < 3; i++) server.push({ status: 500 });
    server.push({ content: 'finally' });
    const config = parseProvidersConfig({ openai: { backoff_ms: 20 } });
    const retries: RetryInfo[] = [];
    const model = createModel({ provider: 'openai', model: 'gpt-4o-mini', baseUrl: server.openaiBaseUrl }, config, ENV, { onRetry: (i) => retries.push(i), random: () => 1 });
    await expect(model.generate(hello())).resolves.toMatchObject({ content: 'finally' });
    expect(retries.map((r) => r.delayMs)).toEqual([20, 40, 80]);
  });

  it('does not retry a 400 and reports it as not retryable', async () => {
    server.push({ status: 400, body: { error: { message: 'Invalid schema for function get_weather', type: 'invalid_request_error' } } }, { content: 'unused' });
    const model = createModel({ provider: 'openai', model: 'gpt-4o-mini', baseUrl: server.openaiBaseUrl }, {}, ENV);
    const err = await model.generate(hello()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'MODEL_CALL_FAILED', status: 400, retryable: false, attempts: 1 });
    expect((err as Error).message).toBe('openai/gpt-4o-mini: HTTP 400: Invalid schema for function get_weather');
    expect(server.requests).toHaveLength(1);
  });

  it('retries connection errors, then fails with status undefined', async () => {
    const dead = await startFakeLlmServer();
    const baseUrl = dead.openaiBaseUrl;
    await dead.close();
    const config = parseProvidersConfig({ openai: { max_retries: 2, backoff_ms: 1 } });
    const retries: RetryInfo[] = [];
    const model = createModel({ provider: 'openai', model: 'gpt-4o-mini', baseUrl }, config, ENV, { onRetry: (i) => retries.push(i) });
    const err = await model.generate(hello()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelCallError);
    expect(err).toMatchObject({ status: undefined, retryable: true, attempts: 3 });
    expect((err as Error).message).toMatch(/^openai\/gpt-4o-mini: unreachable after 3 attempts: /);
    expect(retries).toHaveLength(2);
  });

  it('retries a streamed call that failed before any delta', async () => {
    server.push({ status: 429, headers: { 'retry-after-ms': '10' } }, { content: 'after the retry' });
    const model = createModel({ provider: 'anthropic', model: 'claude-haiku-4-5', baseUrl: server.anthropicBaseUrl }, {}, ENV);
    const deltas: StreamDelta[] = [];
    const res = await model.generate(hello(), { onDelta: (d) => deltas.push(d) });
    expect(res.content).toBe('after the retry');
    expect(deltas.map((d) => (d.type === 'text' ? d.text : '')).join('')).toBe('after the retry');
    expect(server.requests.map((r) => r.stream)).toEqual([true, true]);
  });

  it('honours the abort signal while waiting for a slow answer', async () => {
    server.push({ content: 'late', delayMs: 5000 });
    const model = createModel({ provider: 'anthropic', model: 'claude-haiku-4-5', baseUrl: server.anthropicBaseUrl }, {}, ENV);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const t0 = performance.now();
    const err = await model.generate(hello(), { signal: ac.signal }).catch((e: unknown) => e);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect((err as Error).name).toBe('AbortError');
    expect(err).not.toBeInstanceOf(ModelCallError);
  });
});

describe('configuration errors are raised by createModel, before any call', () => {
  it('a missing API key names OPENAI_API_KEY / ANTHROPIC_API_KEY', () => {
    const cases: Array<[ModelSpec, string]> = [
      [{ provider: 'openai', model: 'gpt-4o-mini', baseUrl: server.openaiBaseUrl }, 'OPENAI_API_KEY'],
      [{ provider: 'anthropic', model: 'claude-sonnet-4-5', baseUrl: server.anthropicBaseUrl }, 'ANTHROPIC_API_KEY'],
    ];
    for (const [spec, variable] of cases) {
      let err: unknown;
      try {
        createModel(spec, {}, { OPENAI_API_KEY: '', UNRELATED: 'x' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UserError);
      expect(err).toMatchObject({ code: 'PROVIDER_API_KEY_MISSING', exitCode: 2 });
      expect((err as Error).message).toContain(variable);
    }
    expect(server.requests).toHaveLength(0);
  });

  it('a provider with api_key_env needs that variable; openai-compatible needs none by default', async () => {
    const config = parseProvidersConfig({
      work: { type: 'openai', api_key_env: 'WORK_OPENAI_KEY', base_url: server.openaiBaseUrl },
      local: { type: 'openai-compatible', base_url: server.openaiBaseUrl },
    });
    expect(() => createModel({ provider: 'work', model: 'gpt-4o' }, config, ENV)).toThrow(/WORK_OPENAI_KEY/);
    server.push({ content: 'a' }, { content: 'b' });
    const work = createModel({ provider: 'work', model: 'gpt-4o' }, config, { WORK_OPENAI_KEY: 'sk-work' });
    expect(work.id).toBe('work/gpt-4o');
    await work.generate(hello());
    expect(server.requests[0]!.headers.authorization).toBe('Bearer sk-work');
    await createModel(parseModelRef('local/qwen2.5:7b'), config, {}).generate(hello());
    expect(server.requests[1]!.headers.authorization).toBeUndefined();
    expect(server.requests[1]!.body.model).toBe('qwen2.5:7b');
  });

  it('an unknown provider lists the known ones', () => {
    const config = parseProvidersConfig({ ollama: { type: 'openai-compatible', base_url: 'http://localhost:11434/v1' } });
    let err: unknown;
    try {
      createModel({ provider: 'opneai', model: 'gpt-4o' }, config, ENV);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect(err).toMatchObject({ code: 'PROVIDER_UNKNOWN' });
    const message = (err as Error).message;
    expect(message).toContain("'opneai'");
    expect(message).toContain("did you mean 'openai'");
    for (const known of ['openai', 'anthropic', 'openai-compatible', 'ollama']) expect(message).toContain(known);
  });

  it('an openai-compatible provider without a base URL, and a model id without a provider, are rejected', () => {
    expect(() => createModel({ provider: 'openai-compatible', model: 'llama3.2' }, {}, {})).toThrow(expect.objectContaining({ code: 'PROVIDER_BASE_URL_MISSING' }));
    expect(() => parseModelRef('gpt-4o')).toThrow(expect.objectContaining({ code: 'MODEL_ID_INVALID' }));
    expect(parseModelRef('lmstudio/qwen/qwen3-8b')).toEqual({ provider: 'lmstudio', model: 'qwen/qwen3-8b' });
  });

  it('OPENAI_BASE_URL and ANTHROPIC_BASE_URL point the default providers elsewhere', async () => {
    server.push({ content: 'from openai' }, { content: 'from anthropic' });
    const env = { ...ENV, OPENAI_BASE_URL: server.openaiBaseUrl, ANTHROPIC_BASE_URL: server.anthropicBaseUrl };
    await expect(createModel(parseModelRef('openai/gpt-4o-mini'), {}, env).generate(hello())).resolves.toMatchObject({ content: 'from openai' });
    await expect(createModel(parseModelRef('anthropic/claude-haiku-4-5'), {}, env).generate(hello())).resolves.toMatchObject({ content: 'from anthropic' });
    expect(server.requests.map((r) => r.path)).toEqual(['/v1/chat/completions', '/v1/messages']);
  });
});

describe('providers configuration', () => {
  it('normalises a providers section with defaults', () => {
    const config = parseProvidersConfig({
      openai: { max_retries: 2, requests_per_minute: 500, prices: { 'ft:gpt-4o-mini:acme': { input: 0.3, output: 1.2 } } },
      anthropic: { api_key_env: 'MY_ANTHROPIC_KEY' },
      ollama: { type: 'openai-compatible', base_url: 'http://localhost:11434/v1' },
    });
    expect(config.openai).toMatchObject({ type: 'openai', maxRetries: 2, backoffMs: 1000, requestsPerMinute: 500, tokensPerMinute: undefined });
    expect(config.anthropic).toMatchObject({ type: 'anthropic', apiKeyEnv: 'MY_ANTHROPIC_KEY', maxRetries: 4 });
    expect(config.ollama).toMatchObject({ type: 'openai-compatible', baseUrl: 'http://localhost:11434/v1', apiKeyEnv: undefined });
    expect(parseProvidersConfig(undefined)).toEqual({});
  });

  it('names the file and the wrong field', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ ollama: { base_url: 'http://x/v1' } }, /^swarm\.yaml: providers\.ollama\.type: is required$/],
      [{ local: { type: 'openai-compatible' } }, /providers\.local\.base_url: is required/],
      [{ openai: { max_retries: -1 } }, /providers\.openai\.max_retries: must be >= 0/],
      [{ openai: { retries: 3 } }, /providers\.openai\.retries: unknown field/],
      [{ openai: { prices: { 'gpt-4o': { input: 1 } } } }, /providers\.openai\.prices\.gpt-4o\.output: is required/],
      [{ anthropic: { api: 'responses' } }, /providers\.anthropic\.api: applies to openai providers only/],
    ];
    for (const [raw, message] of bad) {
      let err: unknown;
      try {
        parseProvidersConfig(raw, 'swarm.yaml');
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(raw)).toBeInstanceOf(UserError);
      expect((err as Error).message, JSON.stringify(raw)).toMatch(message);
    }
    expect(() => parseProvidersConfig({ openai: { type: 'bogus' } })).toThrow(ManifestError);
  });
});

describe('rate limits', () => {
  it('requests_per_minute makes calls wait, shared by the models of a provider', async () => {
    for (let i = 0; i < 4; i++) server.push({ content: `r${i}` });
    // 120 a minute: 2 a second, a bucket of 2.
    const config = parseProvidersConfig({ openai: { requests_per_minute: 120 } });
    const a = createModel({ provider: 'openai', model: 'gpt-4o-mini', baseUrl: server.openaiBaseUrl }, config, ENV);
    const b = createModel({ provider: 'openai', model: 'gpt-4o', baseUrl: server.openaiBaseUrl }, config, ENV);
    const t0 = performance.now();
    const times: number[] = [];
    await Promise.all([a, b, a, b].map(async (m) => {
      await m.generate(hello());
      times.push(performance.now() - t0);
    }));
    times.sort((x, y) => x - y);
    expect(times[1]!).toBeLessThan(400);
    expect(times[2]!).toBeGreaterThanOrEqual(450);
    expect(times[3]!).toBeGreaterThanOrEqual(950);
    expect(server.requests).toHaveLength(4);
  });

  it('a call waiting for the rate limit gives up when aborted', async () => {
    server.push({ content: 'first' });
    const config = parseProvidersConfig({ openai: { requests_per_minute: 1 } });
    const model = createModel({ provider: 'openai', model: 'gpt-4o-mini', baseUrl: server.openaiBaseUrl }, config, ENV);
    await model.generate(hello());
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const t0 = performance.now();
    const err = await model.generate(hello(), { signal: ac.signal }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(server.requests).toHaveLength(1);
  });

  it('the token bucket debits what a call really used', async () => {
    const bucket = new TokenBucket(600_000); // 10 tokens a millisecond, a bucket of 10000
    expect(await bucket.take(10_000)).toBeLessThan(50);
    bucket.adjust(-5000); // the call used 15000: the level is now -5000
    const waited = await bucket.take(1000); // needs 6000 more: about 600 ms
    expect(waited).toBeGreaterThanOrEqual(550);
    expect(waited).toBeLessThan(1500);
  });

  it('tokens_per_minute holds back a call until the estimate fits', async () => {
    server.push({ content: 'a', usage: { input_tokens: 50, output_tokens: 50 } }, { content: 'b' });
    // 3000 a minute: 50 a second. The first call's 100 real tokens leave the bucket 50 short.
    const config = parseProvidersConfig({ openai: { tokens_per_minute: 3000 } });
    const model = createModel({ provider: 'openai', model: 'gpt-4o-mini', baseUrl: server.openaiBaseUrl }, config, ENV);
    await model.generate(hello());
    const t0 = performance.now();
    await model.generate(hello());
    expect(performance.now() - t0).toBeGreaterThanOrEqual(900);
  });
});

describe('usage and cost', () => {
  it('computes the cost of a call from the built-in prices and the configured ones', async () => {
    server.push({ content: 'x', usage: { input_tokens: 1000, output_tokens: 500 } });
    const model = createModel({ provider: 'openai', model: 'gpt-4o-mini', baseUrl: server.openaiBaseUrl }, {}, ENV);
    const res = await model.generate(hello());
    expect(res.usage).toEqual({ input_tokens: 1000, output_tokens: 500 });
    expect(model.costOf(res.usage)).toBeCloseTo((1000 * 0.15 + 500 * 0.6) / 1e6, 12);
    expect(costOf('openai/gpt-4o-mini', res.usage)).toBe(model.costOf(res.usage));

    expect(costOf('anthropic/claude-sonnet-4-5-20250929', { input_tokens: 1_000_000, output_tokens: 1_000_000 })).toBeCloseTo(18, 9);
    expect(costOf('openai/gpt-4o-2024-08-06', { input_tokens: 1_000_000, output_tokens: 0 })).toBeCloseTo(2.5, 9);
    expect(costOf('ollama/llama3.2', { input_tokens: 1e6, output_tokens: 1e6 })).toBe(0);

    const config: ProvidersConfig = parseProvidersConfig({
      openai: { prices: { 'gpt-4o-mini': { input: 1, output: 2 } } },
      ollama: { type: 'openai-compatible', base_url: 'http://localhost:11434/v1', prices: { 'llama3.2': { input: 0.01, output: 0.02 } } },
    });
    expect(costOf('openai/gpt-4o-mini', { input_tokens: 1e6, output_tokens: 1e6 }, config)).toBeCloseTo(3, 9);
    expect(costOf('ollama/llama3.2', { input_tokens: 1e6, output_tokens: 1e6 }, config)).toBeCloseTo(0.03, 9);
    // A bare model id: any provider's prices, then the built-in tables; a prefix naming no provider is part of the id.
    expect(costOf('llama3.2', { input_tokens: 1e6, output_tokens: 1e6 }, config)).toBeCloseTo(0.03, 9);
    expect(costOf('claude-haiku-4-5', { input_tokens: 1e6, output_tokens: 0 }, config)).toBeCloseTo(1, 9);
    const lmstudio = parseProvidersConfig({ lmstudio: { type: 'openai-compatible', base_url: 'http://localhost:1234/v1', prices: { 'qwen/qwen3-8b': { input: 2, output: 0 } } } });
    expect(costOf('lmstudio/qwen/qwen3-8b', { input_tokens: 1e6, output_tokens: 0 }, lmstudio)).toBeCloseTo(2, 9);
    expect(costOf('qwen/qwen3-8b', { input_tokens: 1e6, output_tokens: 0 }, lmstudio)).toBeCloseTo(2, 9);
    expect(priceOf('anthropic/claude-unknown-9')).toBeUndefined();
  });
});

describe('fake LLM server', () => {
  it('answers with a clear 500 when the script runs out, and records every request', async () => {
    server.push({ content: 'only one' });
    const res1 = await fetch(`${server.openaiBaseUrl}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-trace': 't1' }, body: JSON.stringify({ model: 'm', messages: [] }) });
    expect(res1.status).toBe(200);
    const res2 = await fetch(`${server.anthropicBaseUrl}/messages`, { method: 'POST', body: JSON.stringify({ model: 'm', messages: [] }) });
    expect(res2.status).toBe(500);
    const body = (await res2.json()) as { type: string; error: { message: string } };
    expect(body.type).toBe('error');
    expect(body.error.message).toMatch(/script ran out.*request #2/);
    expect(server.requests.map((r) => [r.path, r.api, r.body.model as unknown])).toEqual([
      ['/v1/chat/completions', 'openai-chat', 'm'],
      ['/v1/messages', 'anthropic-messages', 'm'],
    ]);
    expect(server.requests[0]!.headers['x-trace']).toBe('t1');
  });

  it('a script function answers from the request', async () => {
    const fn = await startFakeLlmServer({ script: (r) => ({ content: `you said ${(r.body as { messages: Array<{ content: string }> }).messages.at(-1)?.content ?? ''}` }) });
    try {
      const model = createModel({ provider: 'openai-compatible', model: 'echo', baseUrl: fn.openaiBaseUrl }, {}, {});
      await expect(model.generate(request([{ role: 'user', content: 'ping' }]))).resolves.toMatchObject({ content: 'you said ping' });
    } finally {
      await fn.close();
    }
  });

  it('streams OpenAI chat chunks with tool-call deltas split across chunks, usage last, then [DONE]', async () => {
    server.push({ toolCalls: [{ id: 'c1', name: 'f', arguments: '{"a":"bcdefgh"}' }], usage: { input_tokens: 3, output_tokens: 4 } });
    const res = await fetch(`${server.openaiBaseUrl}/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'm', stream: true, stream_options: { include_usage: true } }) });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const events = (await res.text()).split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
    expect(events.at(-1)).toBe('[DONE]');
    type Chunk = { choices: Array<{ delta?: { tool_calls?: Array<{ function: { arguments?: string } }> } }>; usage?: unknown };
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as Chunk);
    const argPieces = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []).map((t) => t.function.arguments).filter(Boolean);
    expect(argPieces.length).toBeGreaterThan(1);
    expect(argPieces.join('')).toBe('{"a":"bcdefgh"}');
    expect(chunks.at(-1)?.usage).toMatchObject({ prompt_tokens: 3, completion_tokens: 4 });
  });
});

describe('ScriptedModel', () => {
  it('answers in order, streams content in chunks, and fails clearly when the script runs out', async () => {
    const model = new ScriptedModel([{ toolCalls: [{ name: 'add', arguments: { a: 1, b: 2 } }], usage: { input_tokens: 5, output_tokens: 2 } }, { content: 'The sum is 3.' }]);
    const first = await model.generate(hello());
    expect(first).toEqual({ content: null, toolCalls: [{ id: 'call_1_0', name: 'add', arguments: '{"a":1,"b":2}' }], usage: { input_tokens: 5, output_tokens: 2 }, finishReason: 'tool_calls' });
    const deltas: StreamDelta[] = [];
    const second = await model.generate(hello(), { onDelta: (d) => deltas.push(d) });
    expect(second.content).toBe('The sum is 3.');
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.map((d) => (d.type === 'text' ? d.text : '')).join('')).toBe('The sum is 3.');
    expect(model.requests).toHaveLength(2);
    const err = await model.generate(hello()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelCallError);
    expect(err).toMatchObject({ code: 'MODEL_SCRIPT_EXHAUSTED', retryable: false });
    expect((err as Error).message).toMatch(/script ran out.*call #3/);
  });

  it('answers from a function of the request', async () => {
    const model = new ScriptedModel((req, i) => ({ content: `${i}:${req.messages.length}` }), { id: 'test/fn', record: false });
    await expect(model.generate(hello())).resolves.toMatchObject({ content: '0:1', finishReason: 'stop' });
    await expect(model.generate(hello())).resolves.toMatchObject({ content: '1:1' });
    expect(model.requests).toHaveLength(0);
    expect(model.id).toBe('test/fn');
  });
});
