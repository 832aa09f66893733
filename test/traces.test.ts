/**
 * OpenTelemetry traces in process, exported over real OTLP/HTTP to a receiver the test starts: with
 * no SDK nothing is recorded or stored; with one, a run's spans (workflow, steps, agent loop, model
 * calls through the real OpenAI client against the fake vendor server, tool calls) arrive with their
 * names, kinds, GenAI attributes and parent links, on SQLite and on PostgreSQL; the trace context
 * reaches a process agent (TRACEPARENT), an HTTP tool, an HTTP executor's `/execute` and an MCP server (its call's `_meta`, and the
 * traceparent header over HTTP); an LLM consensus member's agent loop nests under its task step; content is recorded
 * only when opted in; a `traceparent` sent to the HTTP API makes the run join the caller's trace.
 * All of it with no context manager registered (as the CLI runs: Swarm passes its spans' contexts
 * itself), and a program's own spans with startTracing's default AsyncLocalStorage one.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { context, createContextKey, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Swarm } from '../src/swarm.js';
import { loadTools } from '../src/agents/tools/index.js';
import { traceTool } from '../src/agents/loop-trace.js';
import { run } from '../src/agents/loop.js';
import { agent } from '../src/agents/agent.js';
import { ScriptedModel } from '../src/testing/scripted-model.js';
import { serveHttp } from './fixtures/mcp-server.js';
import { createApp } from '../src/server/app.js';
import { startFakeLlmServer, type FakeLlmServer } from '../src/testing/fake-llm-server.js';
import { carrierOf, configureTracing, contextFromCarrier, inSpan, currentTraceIds, ROOT_CONTEXT, traceEnvironment, tracingEnabled, withTraceHeaders } from '../src/observability/tracing.js';
import { batchDefaults, startTracing, startTracingFromEnv, tracingConfigured, type TracingHandle } from '../src/observability/otel-sdk.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { startOtlpReceiver, traceparentOf, type OtlpReceiver, type ReceivedSpan } from './helpers/otlp.js';
import { builtinAgent, removeProject, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';
import { fakeExecutor, sendJson } from './helpers/executor-fakes.js';
import { consensusProject, selfCancellingTask, settledTask, useCleanups } from './helpers/consensus-project.js';

const cleanups = useCleanups();

let otlp: OtlpReceiver;
let fake: FakeLlmServer;
let dir: string;
let tracing: TracingHandle | undefined;

const PROBE_JS = `const fs = require('node:fs');
const [, o] = process.argv.slice(2);
fs.writeFileSync(o, JSON.stringify({ traceparent: process.env.TRACEPARENT ?? null }));
`;

beforeAll(async () => {
  otlp = await startOtlpReceiver();
  fake = await startFakeLlmServer();
  // The tool endpoint is the receiver (loopback): allowed by the project's network policy.
  dir = tempProject('name: traces\nsandbox: none\nnetwork: { allow: ["127.0.0.1"] }\n');
  writeAgent(dir, 'probe', 'name: probe\nversion: 1.0.0\nruntime: { type: node, entry: main.js, timeout_seconds: 30 }\noutputs:\n  - { name: traceparent, type: any }\n', { 'main.js': PROBE_JS, 'package.json': '{"type":"commonjs"}' });
  writeAgent(
    dir,
    'asker',
    `name: asker
version: 1.0.0
runtime: { type: llm, provider: openai, model: gpt-4o-mini }
instructions: "Answer with the catalogue."
tools:
  - name: lookup
    description: Look something up
    http: { url: "${otlp.url}/tool", method: POST }
    parameters: { type: object, properties: { q: { type: string } }, required: [q] }
`,
  );
  builtinAgent(dir, 'ask', 'approval');
  builtinAgent(dir, 'own', 'own-spans');
  builtinAgent(dir, 'hang', 'hang');
  writeWorkflow(dir, 'hung', 'name: hung\nversion: 1.0.0\nsteps:\n  - { id: h, agent: hang }\n');
  writeWorkflow(dir, 'mine', 'name: mine\nversion: 1.0.0\nsteps:\n  - { id: work, agent: own }\n');
  writeWorkflow(dir, 'gated', 'name: gated\nversion: 1.0.0\nsteps:\n  - { id: gate, agent: ask, inputs: { message: "go?" } }\n  - { id: sub, workflow: plain, depends_on: [gate] }\n');
  writeWorkflow(dir, 'hooked', 'name: hooked\nversion: 1.0.0\ntrigger: { type: webhook, path: hooked, auth: none }\nsteps:\n  - { id: probe, agent: probe }\n');
  writeWorkflow(dir, 'ticked', 'name: ticked\nversion: 1.0.0\ntrigger: { type: schedule, cron: "0 0 1 1 *" }\nsteps:\n  - { id: probe, agent: probe }\n');
  writeWorkflow(dir, 'plain', 'name: plain\nversion: 1.0.0\nsteps:\n  - { id: probe, agent: probe }\n');
  writeWorkflow(dir, 'traced', 'name: traced\nversion: 1.0.0\nsteps:\n  - { id: probe, agent: probe }\n  - { id: ask, agent: asker, depends_on: [probe], inputs: { message: "${trigger.question}" } }\n');
});

afterAll(async () => {
  await tracing?.shutdown();
  await fake.close();
  await otlp.close();
  removeProject(dir);
  await stopPgTestServer();
});

/** Called when the `hang` built-in starts a step. */
let hangStarted: (() => void) | undefined;

async function open(databaseUrl?: string): Promise<Swarm> {
  const swarm = await Swarm.open({
    cwd: dir,
    env: { SWARM_HOME: join(dir, '.swarm'), ...(databaseUrl ? { SWARM_DATABASE_URL: databaseUrl } : {}) },
    providerEnv: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl },
  });
  // Runs until its step is stopped (the run cancelled); says when it started.
  swarm.defineBuiltin('hang', (_inputs, ctx) => {
    hangStarted?.();
    return new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped'))));
  });
  // A program's own built-in agent that starts a span of its own, after an await.
  swarm.defineBuiltin('own-spans', async () => {
    await new Promise((r) => setTimeout(r, 5));
    trace.getTracer('user').startSpan('user work').end();
    return {};
  });
  await swarm.registerAgents(join(dir, 'agents'));
  await swarm.registerWorkflows(join(dir, 'workflows'));
  return swarm;
}

const named = (spans: ReceivedSpan[], name: string): ReceivedSpan[] => spans.filter((s) => s.name === name);
function one(spans: ReceivedSpan[], name: string): ReceivedSpan {
  const found = named(spans, name);
  expect(found.map((s) => s.name), `exactly one span '${name}' among ${spans.map((s) => s.name).join(', ')}`).toEqual([name]);
  return found[0] as ReceivedSpan;
}

describe('tracing off (no SDK registered)', () => {
  it('records nothing, stores no trace context, gives process agents no TRACEPARENT', async () => {
    expect(tracingEnabled()).toBe(false);
    expect(traceEnvironment()).toEqual({});
    expect(currentTraceIds()).toBeUndefined();
    const headers = { accept: 'application/json' };
    expect(withTraceHeaders(headers)).toBe(headers);
    const swarm = await open();
    try {
      const id = await swarm.startRun('plain', {});
      const { run, steps } = await swarm.runToCompletion(id);
      expect(run.status).toBe('completed');
      expect(steps[0]?.outputs).toEqual({ traceparent: null });
      expect(await swarm.store.getRunTrace(id)).toEqual({ traceparent: null, tracestate: null, trigger_type: 'manual', workflow_name: 'plain' });
    } finally {
      await swarm.close();
    }
    expect(otlp.spans).toEqual([]);
  });

  it("Swarm's batch sizes apply where the environment sets none (OTEL_BSP_* wins)", () => {
    expect(batchDefaults({})).toEqual({ maxExportBatchSize: 2048, maxQueueSize: 8192 });
    expect(batchDefaults({ OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '256' })).toEqual({});
    expect(batchDefaults({ OTEL_BSP_MAX_QUEUE_SIZE: '1000' })).toEqual({});
    expect(batchDefaults({ OTEL_BSP_MAX_QUEUE_SIZE: ' ' })).toEqual({ maxExportBatchSize: 2048, maxQueueSize: 8192 });
    // Spans with message content are far larger: the specification's sizes.
    expect(batchDefaults({ OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'true' })).toEqual({});
  });

  it('the standard environment decides whether the CLI starts the SDK', () => {
    expect(tracingConfigured({})).toBe(false);
    expect(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(true);
    expect(tracingConfigured({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toBe(true);
    expect(tracingConfigured({ OTEL_TRACES_EXPORTER: 'otlp' })).toBe(true);
    expect(tracingConfigured({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(false);
    expect(tracingConfigured({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' })).toBe(false);
  });

  it('the CLI is told what is wrong: spans that cannot be sent (once), an unknown sampler, an exporter other than otlp', async () => {
    const warnings: string[] = [];
    const warn = (m: string): void => void warnings.push(m);
    expect(await startTracingFromEnv({ OTEL_TRACES_EXPORTER: 'zipkin', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, warn)).toBeUndefined();
    expect(await startTracingFromEnv({ OTEL_TRACES_EXPORTER: 'none' }, warn)).toBeUndefined();
    expect(warnings).toEqual(["OTEL_TRACES_EXPORTER is 'zipkin': Swarm exports otlp only, so tracing is off"]);
    warnings.length = 0;

    // A port nobody listens on.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    // The SDK reads these from the process's environment (the CLI passes that one).
    const saved = { OTEL_EXPORTER_OTLP_TIMEOUT: process.env.OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_TRACES_SAMPLER: process.env.OTEL_TRACES_SAMPLER };
    Object.assign(process.env, { OTEL_EXPORTER_OTLP_TIMEOUT: '500', OTEL_TRACES_SAMPLER: 'bogus' });
    let handle: TracingHandle | undefined;
    try {
      handle = await startTracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_BSP_SCHEDULE_DELAY: '10' }, warn);
      // A batch the processor's timer sends (its failure also reaches the global error handler), refused.
      trace.getTracer('test').startSpan('lost 1').end();
      await vi.waitFor(() => expect(warnings.some((w) => w.startsWith('tracing: '))).toBe(true), { timeout: 5000 });
      // And one sent by a flush, refused too: not told again.
      trace.getTracer('test').startSpan('lost 2').end();
      await handle?.forceFlush().catch(() => undefined);
    } finally {
      await handle?.shutdown().catch(() => undefined);
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    expect(warnings[0]).toBe('OpenTelemetry: OTEL_TRACES_SAMPLER value "bogus" invalid, defaulting to "parentbased_always_on".');
    const lost = warnings.filter((w) => w.startsWith('tracing: '));
    expect(lost, warnings.join('\n')).toEqual([expect.stringContaining(`1 span(s) could not be sent to http://127.0.0.1:${port}/v1/traces: connect ECONNREFUSED`)]);
    // The processor's own report of the same failures is not a second warning.
    expect(warnings).toHaveLength(2);
    expect(tracingEnabled()).toBe(false);
  });
});

describe('W3C trace context', () => {
  it('parses a valid traceparent (with tracestate) and ignores malformed ones', () => {
    const ok = contextFromCarrier({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'congo=t61rcWkgMzE' });
    expect(trace.getSpanContext(ok ?? (undefined as never))).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, isRemote: true });
    expect(trace.getSpanContext(ok ?? (undefined as never))?.traceState?.get('congo')).toBe('t61rcWkgMzE');
    // A later version may carry more fields; an unsampled parent stays unsampled.
    expect(trace.getSpanContext(contextFromCarrier({ traceparent: '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra' }) ?? (undefined as never))?.traceFlags).toBe(0);
    for (const bad of [
      '',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
      '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
      // Upper-case hex is not W3C's (HEXDIGLC).
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01',
    ]) {
      expect(contextFromCarrier({ traceparent: bad }), bad).toBeUndefined();
    }
  });
});

describe('tracing on (OTLP/HTTP to a real receiver), no context manager (as the CLI runs)', () => {
  beforeAll(async () => {
    tracing = await startTracing({ endpoint: otlp.url, serviceName: 'swarm-test', scheduledDelayMillis: 50, asyncContext: false });
  });
  afterAll(async () => {
    await tracing?.shutdown();
    tracing = undefined;
  });

  /** Run `traced` as a child of a caller's span (named by its W3C context); the spans of its trace once they arrived. */
  async function tracedRun(swarm: Swarm): Promise<{ runId: string; spans: ReceivedSpan[]; caller: ReceivedSpan; outputs: unknown }> {
    fake.push({ toolCalls: [{ id: 'call_1', name: 'lookup', arguments: { q: 'hats' } }], usage: { input_tokens: 40, output_tokens: 7 } }, { content: 'We have hats.', usage: { input_tokens: 60, output_tokens: 5 } });
    const span = trace.getTracer('test').startSpan('caller');
    let runId: string;
    try {
      runId = await swarm.startRun('traced', { question: 'any hats?' }, { trace: carrierOf(span.spanContext()) });
    } finally {
      span.end();
    }
    const { run, steps } = await swarm.runToCompletion(runId);
    expect(run.status, JSON.stringify(steps)).toBe('completed');
    await tracing?.forceFlush();
    // A span ends just after the commit that finishes its work, so the run can read as completed (and
    // the flush above run) before the last step's span has ended: wait for every span the tests read.
    const expected = ['invoke_workflow traced', 'step probe', 'step ask', 'invoke_agent asker', 'chat gpt-4o-mini', 'chat gpt-4o-mini', 'execute_tool lookup'];
    const caller = await otlp.waitFor('the caller span and every span of the run', (all) => {
      const c = all.find((s) => s.name === 'caller' && all.some((r) => r.attributes['swarm.run.id'] === runId && r.traceId === s.traceId));
      if (!c) return undefined;
      const names = all.filter((s) => s.traceId === c.traceId).map((s) => s.name);
      const count = (list: string[], n: string): number => list.filter((x) => x === n).length;
      return expected.every((n) => count(names, n) >= count(expected, n)) ? c : undefined;
    });
    const spans = otlp.spans.filter((s) => s.traceId === caller.traceId);
    return { runId, spans, caller, outputs: steps.find((s) => s.step_id === 'probe')?.outputs };
  }

  for (const backend of ['sqlite', 'postgres'] as const) {
    it(`${backend}: workflow, step, agent, chat and tool spans arrive with their attributes and parents; TRACEPARENT and traceparent name the right spans`, async () => {
      const pgUrl = backend === 'postgres' ? await (await pgTestServer()).createDatabase() : undefined;
      const swarm = await open(pgUrl);
      try {
        const { runId, spans, caller, outputs } = await tracedRun(swarm);
        for (const s of spans) expect(s.service).toBe('swarm-test');

        // The run joined the library caller's trace; its context is stored with the run.
        const run = one(spans, 'invoke_workflow traced');
        expect(run.parentSpanId).toBe(caller.spanId);
        expect(run.attributes).toMatchObject({ 'gen_ai.operation.name': 'invoke_workflow', 'gen_ai.workflow.name': 'traced', 'swarm.run.id': runId, 'swarm.workflow.name': 'traced', 'swarm.workflow.version': '1.0.0', 'swarm.trigger.kind': 'manual' });
        expect((await swarm.store.getRunTrace(runId))?.traceparent).toBe(traceparentOf(run));

        // Step attempts: children of the run's span.
        const probe = one(spans, 'step probe');
        const ask = one(spans, 'step ask');
        for (const [s, id, agent] of [[probe, 'probe', 'probe@1.0.0'], [ask, 'ask', 'asker@1.0.0']] as const) {
          expect(s.parentSpanId).toBe(run.spanId);
          expect(s.kind).toBe(1);
          expect(s.attributes).toMatchObject({ 'swarm.run.id': runId, 'swarm.step.id': id, 'swarm.step.attempt': 1, 'swarm.agent': agent, 'swarm.step.status': 'completed' });
        }
        // The process agent was given the step attempt's span.
        expect(outputs).toEqual({ traceparent: traceparentOf(probe) });

        // The agent loop under its step; model calls and the tool call under the loop.
        const agent = one(spans, 'invoke_agent asker');
        expect(agent.parentSpanId).toBe(ask.spanId);
        expect(agent.attributes).toMatchObject({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'asker', 'gen_ai.conversation.id': `${runId}/ask`, 'swarm.agent.status': 'completed', 'swarm.agent.turns': 2 });
        const chats = named(spans, 'chat gpt-4o-mini');
        expect(chats).toHaveLength(2);
        for (const c of chats) {
          expect(c.parentSpanId).toBe(agent.spanId);
          expect(c.kind).toBe(3);
          expect(c.attributes).toMatchObject({
            'gen_ai.operation.name': 'chat',
            'gen_ai.provider.name': 'openai',
            'gen_ai.request.model': 'gpt-4o-mini',
            'gen_ai.response.model': 'gpt-4o-mini',
            'gen_ai.agent.name': 'asker',
            'gen_ai.conversation.id': `${runId}/ask`,
          });
          expect(c.attributes['gen_ai.response.id']).toMatch(/^chatcmpl-fake-/);
        }
        const byTokens = chats.map((c) => [c.attributes['gen_ai.usage.input_tokens'], c.attributes['gen_ai.usage.output_tokens'], c.attributes['gen_ai.response.finish_reasons']]);
        expect(byTokens).toEqual(expect.arrayContaining([[40, 7, ['tool_calls']], [60, 5, ['stop']]]));
        const tool = one(spans, 'execute_tool lookup');
        expect(tool.parentSpanId).toBe(agent.spanId);
        expect(tool.attributes).toMatchObject({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup', 'gen_ai.tool.call.id': 'call_1', 'gen_ai.agent.name': 'asker' });
        // The HTTP tool's request carried the tool call's span.
        const toolRequests = otlp.requests.filter((r) => r.path === '/tool');
        expect(toolRequests.at(-1)?.headers.traceparent).toBe(traceparentOf(tool));

        // Content is not recorded unless opted in.
        for (const s of spans) for (const k of Object.keys(s.attributes)) expect(k).not.toMatch(/gen_ai\.(input|output)\.messages|system_instructions|tool\.call\.(arguments|result)/);
      } finally {
        await swarm.close();
        if (pgUrl) await (await pgTestServer()).dropDatabase(pgUrl);
      }
    });
  }

  it('content is recorded when opted in (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT), through the configured redaction', async () => {
    // The CLI's redaction is its Swarm's redactor; here one that hides a word.
    configureTracing({ captureMessageContent: true, redact: (t) => t.replaceAll('hats', '[redacted]') });
    const swarm = await open();
    try {
      const { spans } = await tracedRun(swarm);
      const first = named(spans, 'chat gpt-4o-mini').find((c) => c.attributes['gen_ai.response.finish_reasons']?.toString() === 'tool_calls') as ReceivedSpan;
      expect(JSON.parse(String(first.attributes['gen_ai.input.messages']))).toEqual([{ role: 'user', parts: [{ type: 'text', content: 'any [redacted]?' }] }]);
      expect(JSON.parse(String(first.attributes['gen_ai.system_instructions']))).toEqual([{ type: 'text', content: 'Answer with the catalogue.' }]);
      expect(JSON.parse(String(first.attributes['gen_ai.output.messages']))).toEqual([
        { role: 'assistant', parts: [{ type: 'tool_call', id: 'call_1', name: 'lookup', arguments: '{"q":"[redacted]"}' }], finish_reason: 'tool_calls' },
      ]);
      const tool = one(spans, 'execute_tool lookup');
      expect(tool.attributes['gen_ai.tool.call.arguments']).toBe('{"q":"[redacted]"}');
      expect(tool.attributes['gen_ai.tool.call.result']).toBe('{"ok":true}');
    } finally {
      configureTracing({ captureMessageContent: false, redact: (t) => t });
      await swarm.close();
    }
  });

  it("a tool call's error output is not on its span's status unless content is opted in (then redacted before it is cut); a thrown error's status is redacted", async () => {
    const failed = (id: string) => () => Promise.resolve({ turn: 1, call_id: id, name: 'lookup', arguments: '{}', output: `Error: 401 for token sk-live-${'x'.repeat(495)}SECRETTAIL`, is_error: true });
    await traceTool({ id: 'call_off', name: 'lookup', arguments: '{}' }, 'asker', 'conv-off', undefined, failed('call_off'));
    configureTracing({ captureMessageContent: true, redact: (t) => t.replaceAll(/sk-live-x+SECRETTAIL/g, '[redacted]') });
    try {
      await traceTool({ id: 'call_on', name: 'lookup', arguments: '{}' }, 'asker', 'conv-on', undefined, failed('call_on'));
    } finally {
      configureTracing({ captureMessageContent: false, redact: (t) => t });
    }
    await tracing?.forceFlush();
    const off = await otlp.waitFor('the tool span without content', (all) => all.find((s) => s.attributes['gen_ai.tool.call.id'] === 'call_off'));
    expect(off.status).toBe(2);
    expect(off.attributes['error.type']).toBe('tool_error');
    expect(off.statusMessage).toBe('');
    const on = await otlp.waitFor('the tool span with content', (all) => all.find((s) => s.attributes['gen_ai.tool.call.id'] === 'call_on'));
    expect(on.status).toBe(2);
    expect(on.statusMessage).toBe('Error: 401 for token [redacted]');
    // An error thrown in a span (an agent loop, a model call) goes on its status redacted, opted in or not.
    configureTracing({ redact: (t) => t.replaceAll('sk-live-abc', '[redacted]') });
    try {
      await expect(inSpan('thrower', { parent: undefined }, () => Promise.reject(new Error('provider said: bad key sk-live-abc')))).rejects.toThrow('sk-live-abc');
    } finally {
      configureTracing({ redact: (t) => t });
    }
    await tracing?.forceFlush();
    const thrown = await otlp.waitFor('the span of the thrown error', (all) => all.find((s) => s.name === 'thrower'));
    expect(thrown.statusMessage).toBe('provider said: bad key [redacted]');
  });

  it("run() under a context it is given: the loop's span is its child, its model calls the loop's, and a handoff is an event on it", async () => {
    const model = new ScriptedModel([{ toolCalls: [{ id: 'h1', name: 'transfer_to_closer', arguments: {} }] }, { content: 'done' }], { id: 'openai/gpt-4o-mini' });
    const closer = agent({ name: 'closer', model, instructions: 'Close.' });
    const opener = agent({ name: 'opener', model, instructions: 'Open.', handoffs: [closer] });
    const parent = trace.getTracer('test').startSpan('program step');
    const r = await run(opener, [{ role: 'user', content: 'hi' }], { traceContext: trace.setSpan(ROOT_CONTEXT, parent) });
    parent.end();
    expect([r.status, r.agent.name]).toEqual(['completed', 'closer']);
    await tracing?.forceFlush();
    const spans = await otlp.waitFor('the loop and its two model calls', (all) => {
      const mine = all.filter((s) => s.traceId === parent.spanContext().traceId);
      return mine.filter((s) => s.name === 'chat gpt-4o-mini').length >= 2 && mine.some((s) => s.name === 'invoke_agent opener') ? mine : undefined;
    });
    const loop = one(spans, 'invoke_agent opener');
    expect(loop.parentSpanId).toBe(parent.spanContext().spanId);
    expect(loop.attributes['swarm.agent.final']).toBe('closer');
    expect(loop.events).toEqual([{ name: 'swarm.handoff', attributes: { 'swarm.handoff.from': 'opener', 'swarm.handoff.to': 'closer' } }]);
    for (const c of named(spans, 'chat gpt-4o-mini')) expect(c.parentSpanId).toBe(loop.spanId);
  });

  it("an approval decided later and a sub-workflow's run stay in the run's trace", async () => {
    const swarm = await open();
    try {
      const id = await swarm.startRun('gated', {});
      expect((await swarm.runToCompletion(id)).run.status).toBe('waiting');
      await swarm.approve(id, 'gate', { by: 'ada' });
      expect((await swarm.runToCompletion(id)).run.status).toBe('completed');
      await tracing?.forceFlush();
      const run = await otlp.waitFor('the run span', (all) => all.find((s) => s.name === 'invoke_workflow gated' && s.attributes['swarm.run.id'] === id));
      const spans = await otlp.waitFor('the child run and its step', (all) => {
        const mine = all.filter((s) => s.traceId === run.traceId);
        return mine.some((s) => s.name === 'step probe') ? mine : undefined;
      });
      const gates = named(spans, 'step gate').sort((a, b) => Number(a.attributes['swarm.step.attempt']) - Number(b.attributes['swarm.step.attempt']));
      expect(gates.map((g) => [g.parentSpanId, g.attributes['swarm.step.status'], g.attributes['swarm.approval.status']])).toEqual([
        [run.spanId, 'waiting', 'requested'],
        [run.spanId, 'completed', 'approved'],
      ]);
      expect(gates[1]?.attributes['swarm.approval.decided_by']).toBe('ada');
      expect(one(spans, 'step sub').parentSpanId).toBe(run.spanId);
      // The sub-workflow's run: its span under the parent run's, its step under it.
      const child = one(spans, 'invoke_workflow plain');
      expect(child.parentSpanId).toBe(run.spanId);
      expect(child.attributes).toMatchObject({ 'swarm.trigger.kind': 'workflow', 'swarm.run.parent_id': id });
      expect(one(spans, 'step probe').parentSpanId).toBe(child.spanId);
    } finally {
      await swarm.close();
    }
  });

  it('a step running when its run is cancelled ends its span as cancelled, not as a failure', async () => {
    const swarm = await open();
    try {
      const running = new Promise<void>((resolve) => (hangStarted = resolve));
      const id = await swarm.startRun('hung', {});
      const worker = swarm.worker({ runIds: [id] }).start();
      await running;
      await swarm.cancel(id, 'no longer needed');
      await worker;
      await tracing?.forceFlush();
      const step = await otlp.waitFor('the step span', (all) => all.find((s) => s.name === 'step h' && s.attributes['swarm.run.id'] === id));
      expect(step.attributes).toMatchObject({ 'swarm.step.status': 'cancelled', 'swarm.step.reason': 'its run was cancelled' });
      expect(step.attributes['error.type']).toBeUndefined();
      expect(step.status, 'not ERROR').not.toBe(2);
    } finally {
      await swarm.close();
    }
  });

  it("a consensus task's step whose run is cancelled while a proposer answers ends its span as cancelled", async () => {
    const { swarm, runId } = await selfCancellingTask('sqlite', cleanups);
    await swarm.worker({ runIds: [runId] }).start();
    await tracing?.forceFlush();
    const step = await otlp.waitFor('the task step span', (all) => all.find((x) => x.name.startsWith('step ') && x.attributes['swarm.run.id'] === runId));
    expect(step.attributes).toMatchObject({ 'swarm.step.status': 'cancelled', 'swarm.step.reason': 'its run was cancelled' });
    expect(step.attributes['error.type']).toBeUndefined();
    expect(step.status, 'not ERROR').not.toBe(2);
  });

  it("an MCP server gets its tool call's trace context in the call's _meta and, over HTTP, in the traceparent header", async () => {
    const mcp = await serveHttp();
    // A recording proxy in front of the fixture server: what reaches the MCP server.
    const seen: { headers: IncomingHttpHeaders; body: { method?: string; params?: { _meta?: Record<string, unknown> } } }[] = [];
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        let body = {};
        try {
          body = JSON.parse(raw.toString('utf8')) as object;
        } catch {
          // a GET (the SSE stream) or a DELETE has no JSON body
        }
        seen.push({ headers: req.headers, body });
        const up = httpRequest(new URL(req.url ?? '/', mcp.url.replace(/\/mcp$/, '')), { method: req.method ?? 'GET', headers: req.headers }, (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        });
        up.end(raw);
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}${new URL(mcp.url).pathname}`;
    const set = await loadTools([{ mcp: { url }, include: ['echo'] }], { packageDir: dir });
    try {
      const echo = set.tools.find((t) => t.name === 'echo');
      const before = seen.length;
      // The tool call's span, handed to the tool as the loop does (not made active: no context manager here).
      const span = trace.getTracer('test').startSpan('tool call');
      const traceparent = `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`;
      const ctx = { contextVariables: {}, callId: 'c1', agent: 'a', idempotencyKey: 's/c1', signal: new AbortController().signal, traceContext: trace.setSpan(ROOT_CONTEXT, span) };
      expect(await echo?.execute({ text: 'hi' }, ctx)).toBe('hi');
      span.end();
      const calls = seen.slice(before).filter((r) => r.body.method === 'tools/call');
      expect(calls).toHaveLength(1);
      expect(calls[0]?.body.params?._meta?.traceparent).toBe(traceparent);
      expect(calls[0]?.headers.traceparent).toBe(traceparent);
      // A call made outside any span carries none.
      const plain = seen.length;
      expect(await echo?.execute({ text: 'ho' }, { ...ctx, traceContext: undefined })).toBe('ho');
      const untraced = seen.slice(plain).filter((r) => r.body.method === 'tools/call');
      expect(untraced).toHaveLength(1);
      expect(untraced[0]?.body.params?._meta?.traceparent).toBeUndefined();
      expect(untraced[0]?.headers.traceparent).toBeUndefined();
    } finally {
      await set.close();
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
      await mcp.close();
    }
  });

  it("an MCP server over stdio gets its tool call's trace context in the call's _meta", async () => {
    const fixture = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'mcp-server.ts');
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const set = await loadTools([{ mcp: { command: 'node', args: ['--import', tsx, fixture] }, include: ['meta'] }], { packageDir: dir });
    try {
      const meta = set.tools.find((t) => t.name === 'meta');
      const span = trace.getTracer('test').startSpan('tool call');
      const ctx = { contextVariables: {}, callId: 'c1', agent: 'a', idempotencyKey: 's/c1', signal: new AbortController().signal, traceContext: trace.setSpan(ROOT_CONTEXT, span) };
      const seen = JSON.parse(String(await meta?.execute({}, ctx))) as Record<string, unknown>;
      span.end();
      expect(seen.traceparent).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);
      const plain = JSON.parse(String(await meta?.execute({}, { ...ctx, traceContext: undefined }))) as Record<string, unknown>;
      expect(plain.traceparent).toBeUndefined();
    } finally {
      await set.close();
    }
  });

  it("the HTTP API: a run created, started by a webhook delivery or fired by hand, with a traceparent header joins the caller's trace; a malformed one is ignored", async () => {
    const swarm = await open();
    try {
      const app = createApp(swarm, { version: 't' });
      const post = async (headers: Record<string, string>): Promise<string> => {
        const res = await app.request('/api/v1/workflows/plain/runs', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ input: {} }) });
        const body = (await res.json()) as { run_id: string };
        expect(res.status, JSON.stringify(body)).toBe(201);
        return body.run_id;
      };
      const traceId = '0af7651916cd43dd8448eb211c80319c';
      const joined = await post({ traceparent: `00-${traceId}-b7ad6b7169203331-01`, tracestate: 'vendor=abc' });
      const ignored = await post({ traceparent: '00-zzzz-not-a-traceparent' });
      const hook = await app.request('/webhooks/hooked', { method: 'POST', headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-c7ad6b7169203332-01` }, body: '{"x":1}' });
      const delivered = ((await hook.json()) as { run_id: string }).run_id;
      expect(hook.status).toBe(202);
      const tick = await app.request('/api/v1/schedules/ticked/trigger', { method: 'POST', headers: { traceparent: `00-${traceId}-d7ad6b7169203333-01` } });
      const ticked = ((await tick.json()) as { run_id: string }).run_id;
      expect(tick.status).toBe(201);
      await tracing?.forceFlush();
      const runSpan = (runId: string): Promise<ReceivedSpan> => otlp.waitFor(`run ${runId}'s span`, (all) => all.find((s) => s.name === 'invoke_workflow plain' && s.attributes['swarm.run.id'] === runId));
      const a = await runSpan(joined);
      expect([a.traceId, a.parentSpanId]).toEqual([traceId, 'b7ad6b7169203331']);
      expect(await swarm.store.getRunTrace(joined)).toMatchObject({ traceparent: traceparentOf(a), tracestate: 'vendor=abc' });
      const w = await otlp.waitFor('the webhook run span', (all) => all.find((s) => s.name === 'invoke_workflow hooked' && s.attributes['swarm.run.id'] === delivered));
      expect([w.traceId, w.parentSpanId, w.attributes['swarm.trigger.kind']]).toEqual([traceId, 'c7ad6b7169203332', 'webhook']);
      const s = await otlp.waitFor('the schedule run span', (all) => all.find((x) => x.name === 'invoke_workflow ticked' && x.attributes['swarm.run.id'] === ticked));
      expect([s.traceId, s.parentSpanId, s.attributes['swarm.trigger.kind']]).toEqual([traceId, 'd7ad6b7169203333', 'schedule']);
      const b = await runSpan(ignored);
      expect(b.traceId).not.toBe(traceId);
      expect(b.parentSpanId).toBeUndefined();
      // The stored context (with its tracestate) is what the run's steps are children of.
      const ctx = contextFromCarrier({ traceparent: traceparentOf(a), tracestate: 'vendor=abc' });
      expect(trace.getSpanContext(ctx ?? (undefined as never))?.traceState?.get('vendor')).toBe('abc');
    } finally {
      await swarm.close();
    }
  });

  it("an http-runtime step's POST /execute carries its step attempt's span as traceparent", async () => {
    const executor = await fakeExecutor((_r, res) => sendJson(res, 200, { output: { done: true } }));
    // Outside the project's agents/ and workflows/, which every open() registers.
    const extra = join(dir, 'extra');
    const swarm = await open();
    try {
      await swarm.store.putExecutor({ name: 'remote-exec', base_url: executor.url, token_secret: null, public_key: null });
      await swarm.registerAgent(writeAgent(extra, 'remote', 'name: remote\nversion: 1.0.0\nruntime: { type: http, executor: remote-exec, task_type: echo, timeout_seconds: 20 }\n'));
      await swarm.registerWorkflow(writeWorkflow(extra, 'remote-flow', 'name: remote-flow\nversion: 1.0.0\nsteps:\n  - { id: call, agent: remote }\n'));
      const runId = await swarm.startRun('remote-flow', {});
      const d = await swarm.runToCompletion(runId);
      expect(d.run.status, d.run.error ?? '').toBe('completed');
      expect(d.steps[0]?.outputs).toEqual({ done: true });
      await tracing?.forceFlush();
      const step = await otlp.waitFor('the step span', (all) => all.find((x) => x.name === 'step call' && x.attributes['swarm.run.id'] === runId));
      const executes = executor.seen.filter((r) => r.path === '/execute');
      expect(executes).toHaveLength(1);
      expect(executes[0]?.headers.traceparent).toBe(traceparentOf(step));
      // The step's span is the run's child, in the run's trace (not one made up from the run id).
      const run = await otlp.waitFor('the run span', (all) => all.find((x) => x.name === 'invoke_workflow remote-flow' && x.attributes['swarm.run.id'] === runId));
      expect([step.traceId, step.parentSpanId]).toEqual([run.traceId, run.spanId]);
    } finally {
      // The store is the file's: nothing of this test stays in it that points at the closed executor.
      await swarm.store.deleteExecutor('remote-exec');
      await swarm.close();
      await executor.close();
    }
  });

  it("each LLM member of a consensus task runs its agent loop under the task step's span, its model calls under the loop", async () => {
    const model = new ScriptedModel(() => ({ content: JSON.stringify({ answer: 42 }), usage: { input_tokens: 10, output_tokens: 2 } }), { id: 'openai/gpt-4o-mini' });
    const { swarm, dir: cdir } = await consensusProject('sqlite', cleanups, { open: { models: () => model } });
    await swarm.registerAgent(writeAgent(cdir, 'llmsolver', 'name: llmsolver\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: gpt-4o-mini }\ninstructions: Add the numbers.\n'));
    const { task_id: taskId, run_id: runId } = await swarm.submitTask({
      task_type: 'add',
      inputs: { message: 'What is 40 + 2?' },
      proposers: [{ agent: 'llmsolver', samples: 2 }],
      verification: { policy: 'vp.crosscheck.v1' },
      voting: { voters: [{ id: 'v1' }], reveal_deadline_ms: 5000 },
    });
    expect((await settledTask(swarm, taskId)).status).toBe('finalized');
    await swarm.wait(runId);
    await tracing?.forceFlush();
    const ofRun = (all: ReceivedSpan[]): ReceivedSpan[] => {
      const run = all.find((x) => x.name.startsWith('invoke_workflow ') && x.attributes['swarm.run.id'] === runId);
      return run ? all.filter((x) => x.traceId === run.traceId) : [];
    };
    const spans = await otlp.waitFor('the task run, its step, two agent loops and their model calls', (all) => {
      const mine = ofRun(all);
      return named(mine, 'invoke_agent llmsolver').length === 2 && mine.filter((x) => x.name.startsWith('chat ')).length >= 2 ? mine : undefined;
    });
    const steps = spans.filter((x) => x.name.startsWith('step ') && x.attributes['swarm.run.id'] === runId);
    expect(steps).toHaveLength(1);
    const step = steps[0] as ReceivedSpan;
    const loops = named(spans, 'invoke_agent llmsolver');
    for (const loop of loops) {
      expect(loop.parentSpanId).toBe(step.spanId);
      const chats = spans.filter((x) => x.name.startsWith('chat ') && x.parentSpanId === loop.spanId);
      expect(chats.length, `model calls under ${loop.spanId}`).toBeGreaterThanOrEqual(1);
    }
    // Two samples: two sessions, two loops.
    expect(new Set(loops.map((l) => l.attributes['gen_ai.conversation.id'])).size).toBe(2);
  });
});

describe("a program's own spans, with startTracing's default context manager (AsyncLocalStorage)", () => {
  beforeAll(async () => {
    tracing = await startTracing({ endpoint: otlp.url, serviceName: 'swarm-test', scheduledDelayMillis: 50 });
  });
  afterAll(async () => {
    await tracing?.shutdown();
    tracing = undefined;
  });

  it("a run started inside the program's active span joins its trace; a span a built-in agent starts nests under its step's", async () => {
    const swarm = await open();
    try {
      const runId = await trace.getTracer('test').startActiveSpan('program', async (span) => {
        try {
          return await swarm.startRun('mine', {});
        } finally {
          span.end();
        }
      });
      expect((await swarm.runToCompletion(runId)).run.status).toBe('completed');
      await tracing?.forceFlush();
      const spans = await otlp.waitFor('the program, run, step and user spans', (all) => {
        const program = all.find((s) => s.name === 'program' && all.some((r) => r.attributes['swarm.run.id'] === runId && r.traceId === s.traceId));
        const mine = program ? all.filter((s) => s.traceId === program.traceId) : [];
        return mine.some((s) => s.name === 'user work') && mine.some((s) => s.name === 'step work') ? mine : undefined;
      });
      const program = one(spans, 'program');
      const run = one(spans, 'invoke_workflow mine');
      expect(run.parentSpanId).toBe(program.spanId);
      const step = one(spans, 'step work');
      expect(step.parentSpanId).toBe(run.spanId);
      expect(one(spans, 'user work').parentSpanId).toBe(step.spanId);
    } finally {
      await swarm.close();
    }
  });

  it("run() inside the program's active span, given no context, is its child", async () => {
    const model = new ScriptedModel([{ content: 'hello' }], { id: 'openai/gpt-4o-mini' });
    const greeter = agent({ name: 'greeter', model, instructions: 'Greet.' });
    const traceId = await trace.getTracer('test').startActiveSpan('program turn', async (span) => {
      try {
        await new Promise((r) => setTimeout(r, 1));
        expect((await run(greeter, [{ role: 'user', content: 'hi' }])).status).toBe('completed');
        return span.spanContext().traceId;
      } finally {
        span.end();
      }
    });
    await tracing?.forceFlush();
    const spans = await otlp.waitFor('the program span and the loop', (all) => {
      const mine = all.filter((s) => s.traceId === traceId);
      return mine.some((s) => s.name === 'invoke_agent greeter') && mine.some((s) => s.name === 'program turn') ? mine : undefined;
    });
    expect(one(spans, 'invoke_agent greeter').parentSpanId).toBe(one(spans, 'program turn').spanId);
  });
});

describe('which context manager startTracing registers', () => {
  it("asyncContext: false registers none (as the CLI's startTracingFromEnv) and leaves a program's own in place, through shutdown", async () => {
    const key = createContextKey('swarm-test');
    /** The value set around `fn` as the active context has it after an await. */
    const carried = (): Promise<unknown> =>
      context.with(ROOT_CONTEXT.setValue(key, 'v'), async () => {
        await new Promise((r) => setTimeout(r, 1));
        return context.active().getValue(key);
      });
    const cli = await startTracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url });
    try {
      expect(tracingEnabled()).toBe(true);
      expect(await carried()).toBeUndefined();
    } finally {
      await cli?.shutdown();
    }
    const own = new AsyncLocalStorageContextManager().enable();
    expect(context.setGlobalContextManager(own)).toBe(true);
    try {
      const t = await startTracing({ endpoint: otlp.url, asyncContext: false });
      expect(await carried()).toBe('v');
      await t.shutdown();
      expect(await carried()).toBe('v');
    } finally {
      context.disable();
    }
  });
});
