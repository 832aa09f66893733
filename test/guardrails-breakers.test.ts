/**
 * Circuit breakers: the pure state machine, `guardrails.breakers` parsing, the guard in the agent
 * loop on both stores (two store connections stand for two workers of one deployment), and end to
 * end through a Swarm whose model calls go to the fake vendor server answering 500s.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { agent, tool, type Tool } from '../src/agents/agent.js';
import { run } from '../src/agents/loop.js';
import { ModelCallError } from '../src/agents/providers/errors.js';
import { resolveConfig } from '../src/config/config.js';
import { parseAgentManifest, type AgentManifest } from '../src/core/manifest/agent.js';
import type { BreakersSpec } from '../src/core/manifest/guardrails/breakers.js';
import { breakerGuard, modelOutcome, toolOutcome } from '../src/guardrails/breakers.js';
import { listBreakerViews } from '../src/guardrails/breaker-admin.js';
import { claimProbe, closedRow, peek, recordOutcome, resolveBreaker } from '../src/guardrails/circuit.js';
import type { GuardDeps, GuardEvent } from '../src/guardrails/index.js';
import { composeGuards, type LoopGuard } from '../src/guardrails/guard.js';
import { NO_METRICS, type EngineMetrics } from '../src/observability/engine-metrics.js';
import type { Store } from '../src/store/store.js';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { Swarm } from '../src/swarm.js';
import { startFakeLlmServer, type FakeLlmServer } from '../src/testing/fake-llm-server.js';
import { ScriptedModel } from '../src/testing/scripted-model.js';
import type { ChatModel } from '../src/agents/types.js';
import { pgTestServer, stopPgTestServer, type PgTestServer } from './helpers/pg.js';
import { createApp } from '../src/server/app.js';
import { ProgressReporter } from '../src/cli/render.js';
import type { RunEvent } from '../src/core/events.js';
import { main } from '../src/cli/main.js';
import { removeProject, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';

describe('the state machine', () => {
  const s = resolveBreaker({ failures: 3, window_ms: 1000, cooldown_ms: 500, half_open_probes: 2 });
  const k = (row = closedRow('model:a/b', 'model', 0)) => row;

  it('opens after N failures within the window, not when the window passed in between', () => {
    let row = k();
    row = recordOutcome(row, s, 'failure', false, 0, 10);
    row = recordOutcome(row, s, 'failure', false, 0, 20);
    expect(row).toMatchObject({ state: 'closed', failures: 2 });
    // It keeps the failures that opened it while it is open: `swarm breakers list` shows why.
    expect(recordOutcome(row, s, 'failure', false, 0, 30)).toMatchObject({ state: 'open', opened_at: 30, failures: 3, window_started_at: 0 });
    // The third failure after the window: a fresh window with one failure.
    expect(recordOutcome(row, s, 'failure', false, 0, 1010)).toMatchObject({ state: 'closed', failures: 1, window_started_at: 1010 });
    // Successes and the caller's own errors change nothing (and write nothing: the same object).
    expect(recordOutcome(row, s, 'success', false, 0, 40)).toBe(row);
    expect(recordOutcome(row, s, 'neutral', false, 0, 40)).toBe(row);
  });

  it('a failure rate over min_calls opens it', () => {
    const r = resolveBreaker({ failures: 100, failure_rate: { threshold: 0.5, min_calls: 4 } });
    let row = recordOutcome(k(), r, 'failure', false, 1, 1);
    expect(row).toMatchObject({ state: 'closed', failures: 1, successes: 1 });
    row = recordOutcome(row, r, 'failure', false, 0, 2); // 2 of 3: under min_calls
    expect(row.state).toBe('closed');
    expect(recordOutcome(row, r, 'failure', false, 0, 3)).toMatchObject({ state: 'open', failures: 3, successes: 1 }); // 3 of 4
    expect(recordOutcome(row, r, 'failure', false, 5, 3).state).toBe('closed'); // 3 of 9
  });

  it('cool-down, then a limited number of probes; a probe success closes, a probe failure re-opens', () => {
    const open = { ...k(), state: 'open' as const, opened_at: 100, failures: 3 };
    expect(peek(open, s, 599)).toBe('reject');
    expect(peek(open, s, 600)).toBe('claim');
    expect(claimProbe(open, s, 599).admitted).toBe(false);
    const p1 = claimProbe(open, s, 600);
    expect(p1).toMatchObject({ admitted: true, row: { state: 'half_open', probes: 1 } });
    const p2 = claimProbe(p1.row, s, 601);
    expect(p2).toMatchObject({ admitted: true, row: { probes: 2 } });
    expect(claimProbe(p2.row, s, 602).admitted).toBe(false);
    // A probe that never settled (its worker died) frees its slot after one more cool-down.
    expect(claimProbe(p2.row, s, 601 + 500).admitted).toBe(true);
    // Only probes settle a half-open breaker.
    expect(recordOutcome(p2.row, s, 'success', false, 0, 700)).toBe(p2.row);
    expect(recordOutcome(p2.row, s, 'success', true, 0, 700)).toMatchObject({ state: 'closed', failures: 0, probes: 0 });
    // A failed probe re-opens it with one more failure; a success (above) closes it with none.
    expect(p2.row.failures).toBe(3);
    expect(recordOutcome(p2.row, s, 'failure', true, 0, 700)).toMatchObject({ state: 'open', opened_at: 700, failures: 4 });
    expect(recordOutcome(p2.row, s, 'neutral', true, 0, 700)).toMatchObject({ state: 'half_open', probes: 1 });
  });

  it('classifies outcomes: unavailability fails, the caller’s own errors count nothing', () => {
    const err = (status: number | undefined, retryable = true) => modelOutcome({ ok: false, error: new ModelCallError('x', { model: 'a/b', retryable, ...(status ? { status } : {}) }) });
    expect([err(500), err(503), err(429), err(408), err(undefined), err(400, false), err(401, false)]).toEqual(['failure', 'failure', 'failure', 'failure', 'failure', 'neutral', 'neutral']);
    expect(modelOutcome({ ok: false, error: new Error('aborted') })).toBe('neutral');
    const rec = (output: string, is_error = true) => toolOutcome({ turn: 1, call_id: 'c', name: 't', arguments: '{}', output, is_error });
    expect([rec("Error: tool 't' failed: boom"), rec("Error: tool 't' failed: HTTP 503 Service Unavailable"), rec("Error: tool 't' failed: HTTP 404 Not Found"), rec('ok', false)]).toEqual(['failure', 'failure', 'neutral', 'success']);
  });
});

describe('swarm run’s line for CIRCUIT_CHANGED', () => {
  it('names the breaker, the states and why', () => {
    const lines: string[] = [];
    const r = new ProgressReporter('t', [{ id: 'q' }], false, (l) => lines.push(l));
    r.onEvent({ seq: 3, run_id: 'r', step_id: 'q', type: 'CIRCUIT_CHANGED', at: 0, data: { breaker: 'model:openai/gpt-4o-mini', from: 'open', to: 'half_open', reason: 'cool-down over: probing' } } as unknown as RunEvent);
    expect(lines).toEqual(['circuit breaker model:openai/gpt-4o-mini: open → half-open (cool-down over: probing)']);
  });
});

describe('guardrails.breakers in swarm.yaml and agent.yaml', () => {
  it('parses durations, defaults and per-target overrides', () => {
    const dir = tempProject(
      'name: t\nguardrails:\n  breakers:\n    failures: 3\n    window: 2m\n    cooldown: 500ms\n    failure_rate: { threshold: 0.25 }\n    models:\n      openai/gpt-4o-mini: { fallback: anthropic/claude-haiku-4-5, half_open_probes: 2 }\n    mcp: { github: { enabled: false } }\n',
    );
    try {
      expect(resolveConfig({ cwd: dir, env: {} }).guardrails.breakers).toEqual({
        failures: 3,
        window_ms: 120_000,
        cooldown_ms: 500,
        failure_rate: { threshold: 0.25, min_calls: 10 },
        models: { 'openai/gpt-4o-mini': { fallback: 'anthropic/claude-haiku-4-5', half_open_probes: 2 } },
        mcp: { github: { enabled: false } },
      });
    } finally {
      removeProject(dir);
    }
  });

  it('refuses bad values with file, field and line', () => {
    const dir = tempProject('name: t\nguardrails:\n  breakers:\n    failures: -1\n    window: soon\n    tools:\n      search: { cooldown: 10, half_open_probes: 0 }\n    models:\n      gpt-4o: { fallback: 12 }\n');
    try {
      let message = '';
      try {
        resolveConfig({ cwd: dir, env: {} });
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toContain('swarm.yaml');
      expect(message).toMatch(/swarm\.yaml:4: guardrails\.breakers\.failures: must be a whole number from 1/);
      expect(message).toMatch(/swarm\.yaml:5: guardrails\.breakers\.window: must be a duration such as 500ms/);
      expect(message).toMatch(/swarm\.yaml:7: guardrails\.breakers\.tools\.search\.cooldown: must be a duration/);
      expect(message).toMatch(/guardrails\.breakers\.tools\.search\.half_open_probes/);
      expect(message).toMatch(/swarm\.yaml:9: guardrails\.breakers\.models\.gpt-4o: 'gpt-4o' is not a model reference/);
      expect(message).toMatch(/guardrails\.breakers\.models\.gpt-4o\.fallback/);
    } finally {
      removeProject(dir);
    }
    const agentYaml = 'name: a\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: gpt-4o-mini }\nguardrails:\n  breakers:\n    failure_rate: { threshold: 2 }\n    nonsense: 1\n';
    expect(() => parseAgentManifest(agentYaml, 'agents/a/agent.yaml')).toThrow(/agents\/a\/agent\.yaml/);
    expect(() => parseAgentManifest(agentYaml.replace('    nonsense: 1\n', ''), 'agents/a/agent.yaml')).toThrow(/agent\.yaml:6: guardrails\.breakers\.failure_rate\.threshold: must be a share of failed calls above 0 and at most 1, not 2/);
  });
});

// ---- the guard on both stores ----

interface Backend {
  name: string;
  /** Two connections to one fresh store (two workers of a deployment). */
  pair(): Promise<[Store, Store]>;
}

let server: PgTestServer | undefined;
const dirs: string[] = [];
const opened: Store[] = [];
afterAll(async () => {
  for (const d of dirs) removeProject(d);
  await stopPgTestServer();
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

const backends: Backend[] = [
  {
    name: 'sqlite',
    async pair() {
      const dir = tempProject();
      dirs.push(dir);
      const path = join(dir, 'swarm.db');
      const a = openSqliteStore({ path, durability: 'full' });
      const b = openSqliteStore({ path, durability: 'full' });
      opened.push(a, b);
      return [a, b];
    },
  },
  {
    name: 'postgres',
    async pair() {
      server ??= await pgTestServer();
      const url = await server.createDatabase();
      const a = await openPostgresStore({ url, durability: 'full' });
      const b = await openPostgresStore({ url, durability: 'full' });
      opened.push(a, b);
      return [a, b];
    },
  },
];

/** A worker's guard deps: its own store connection, its own cache, a clock the test moves. */
function worker(store: Store, breakers: BreakersSpec, clock: { t: number }, models: Record<string, ChatModel> = {}, agents = new Map<string, AgentManifest>()) {
  const events: GuardEvent[] = [];
  const transitions: string[] = [];
  const rejected: string[] = [];
  const metrics: EngineMetrics = {
    ...NO_METRICS,
    circuitTransition: (kind, breaker, to) => transitions.push(`${kind} ${breaker} ${to}`),
    circuitRejected: (kind, breaker) => rejected.push(`${kind} ${breaker}`),
  };
  const deps: GuardDeps = {
    store,
    config: { breakers },
    metrics: () => metrics,
    recordEvents: async (_run, _step, e) => void events.push(...e),
    providers: {},
    modelFor: async (ref) => {
      const m = models[ref];
      if (!m) throw new Error(`no model ${ref}`);
      return m;
    },
    now: () => clock.t,
  };
  const ctx = { runId: 'r1', stepId: 's1', attempt: 1, workflow: 'w', sessionId: 'r1/s1', agents, inputs: {} };
  return { deps, ctx, events, transitions, rejected, guard: () => breakerGuard(deps, ctx) };
}

const down = () => new ModelCallError('openai/gpt-4o-mini: 503 after 3 attempts', { model: 'openai/gpt-4o-mini', status: 503, retryable: true, attempts: 3 });
/** A model that fails with 503 while `failing.on`, else answers. */
function flaky(id = 'openai/gpt-4o-mini', failing = { on: true }) {
  return new ScriptedModel(() => {
    if (failing.on) throw down();
    return { content: 'fine' };
  }, { id });
}
const ask = (m: ChatModel, guard: ReturnType<typeof breakerGuard>, tools: Tool[] = []) =>
  run(agent({ name: 'clerk', model: m, tools }), [{ role: 'user', content: 'hi' }], { ...(guard ? { guard } : {}), maxTurns: 3 });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

describe.each(backends)('circuit breakers on $name', (backend) => {
  it('opens after N failures; the next call is refused without reaching the model, on this worker and another', async () => {
    const [a, b] = await backend.pair();
    const clock = { t: 1_000 };
    const cfg: BreakersSpec = { failures: 2, window_ms: 10_000, cooldown_ms: 5_000 };
    const w1 = worker(a, cfg, clock);
    const w2 = worker(b, cfg, clock);
    const m = flaky();
    expect(await codeOf(ask(m, w1.guard()))).toBe('MODEL_CALL_FAILED');
    expect(await a.getBreaker('model:openai/gpt-4o-mini')).toMatchObject({ state: 'closed', failures: 1 });
    expect(await codeOf(ask(m, w1.guard()))).toBe('MODEL_CALL_FAILED');
    expect(m.calls).toBe(2);
    expect(await b.getBreaker('model:openai/gpt-4o-mini')).toMatchObject({ state: 'open', opened_at: 1_000, kind: 'model' });
    // Refused at once, here and on the other worker (which never saw a failure itself).
    const refused = ask(m, w1.guard());
    await expect(refused).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', retryable: true, context: { breaker: 'model:openai/gpt-4o-mini', retry_at: 6_000 } });
    expect(await codeOf(ask(m, w2.guard()))).toBe('CIRCUIT_OPEN');
    expect(m.calls).toBe(2);
    expect(w1.events).toEqual([{ type: 'CIRCUIT_CHANGED', data: expect.objectContaining({ breaker: 'model:openai/gpt-4o-mini', from: 'closed', to: 'open', cooldown_ms: 5_000 }) }]);
    expect(w1.transitions).toEqual(['model openai/gpt-4o-mini open']);
    expect(w1.rejected).toEqual(['model openai/gpt-4o-mini']);
    expect(w2.rejected).toEqual(['model openai/gpt-4o-mini']);
    expect((await a.listBreakers()).map((r) => r.key)).toEqual(['model:openai/gpt-4o-mini']);
  });

  it('two workers seeing the Nth failure at once open it once', async () => {
    const [a, b] = await backend.pair();
    const clock = { t: 1_000 };
    const cfg: BreakersSpec = { failures: 2, window_ms: 10_000, cooldown_ms: 5_000 };
    const w1 = worker(a, cfg, clock);
    const w2 = worker(b, cfg, clock);
    await Promise.all([ask(flaky(), w1.guard()), ask(flaky(), w2.guard()), ask(flaky(), w1.guard()), ask(flaky(), w2.guard())].map(codeOf));
    const opens = [...w1.transitions, ...w2.transitions].filter((t) => t.endsWith(' open'));
    // Four failures, two to open: one transition (later failures of calls already in flight change nothing).
    expect(opens).toEqual(['model openai/gpt-4o-mini open']);
    expect([...w1.events, ...w2.events]).toHaveLength(1);
  });

  it('cool-down → half-open with limited probes across workers; a probe success closes, a probe failure re-opens', async () => {
    const [a, b] = await backend.pair();
    const clock = { t: 1_000 };
    const cfg: BreakersSpec = { failures: 1, window_ms: 10_000, cooldown_ms: 100 };
    const w1 = worker(a, cfg, clock);
    const w2 = worker(b, cfg, clock);
    const failing = { on: true };
    const m = flaky('openai/gpt-4o-mini', failing);
    expect(await codeOf(ask(m, w1.guard()))).toBe('MODEL_CALL_FAILED');
    clock.t += 100;
    // Two workers race for the one probe slot: one gets it (and fails: open again), the other is refused.
    const both = await Promise.all([codeOf(ask(m, w1.guard())), codeOf(ask(m, w2.guard()))]);
    expect(both.sort()).toEqual(['CIRCUIT_OPEN', 'MODEL_CALL_FAILED']);
    expect(m.calls).toBe(2);
    expect(await a.getBreaker('model:openai/gpt-4o-mini')).toMatchObject({ state: 'open', opened_at: 1_100 });
    clock.t += 100;
    failing.on = false;
    expect(await codeOf(ask(m, w2.guard()))).toBe('ok');
    expect(await a.getBreaker('model:openai/gpt-4o-mini')).toMatchObject({ state: 'closed', failures: 0, probes: 0 });
    const steps = [...w1.events, ...w2.events].map((e) => `${String(e.data.from)}→${String(e.data.to)}`);
    expect(steps).toEqual(['closed→open', 'open→half_open', 'half_open→open', 'open→half_open', 'half_open→closed']);
    expect(await codeOf(ask(m, w1.guard()))).toBe('ok');
  });

  it('a configured fallback model answers while the breaker is open', async () => {
    const [a] = await backend.pair();
    const clock = { t: 1_000 };
    const backup = new ScriptedModel([{ content: 'from the backup' }], { id: 'anthropic/claude-haiku-4-5' });
    const w = worker(a, { failures: 1, cooldown_ms: 60_000, models: { 'openai/gpt-4o-mini': { fallback: 'anthropic/claude-haiku-4-5' } } }, clock, { 'anthropic/claude-haiku-4-5': backup });
    const m = flaky();
    expect(await codeOf(ask(m, w.guard()))).toBe('MODEL_CALL_FAILED');
    const r = await ask(m, w.guard());
    expect(r.content).toBe('from the backup');
    expect(m.calls).toBe(1);
    expect(backup.requests[0]?.model).toBe('anthropic/claude-haiku-4-5');
    expect(w.rejected).toEqual(['model openai/gpt-4o-mini']);
  });

  it('tools: a failing MCP server or HTTP host opens its breaker for every tool it serves', async () => {
    const [a] = await backend.pair();
    const clock = { t: 1_000 };
    const w = worker(a, { failures: 2, cooldown_ms: 60_000, tools: { lookup: { failures: 10 } } }, clock);
    let executed = 0;
    const broken = (name: string, origin: Tool['origin']): Tool =>
      tool({ name, description: name, parameters: { type: 'object', properties: {} }, origin, execute: () => { executed++; throw new Error('connection reset'); } });
    const mcpTools = [broken('issues', { kind: 'mcp', server: 'github' }), broken('pulls', { kind: 'mcp', server: 'github' })];
    const calls = (names: string[]) => new ScriptedModel([{ toolCalls: names.map((name) => ({ name, arguments: {} })) }, { content: 'done' }], { id: 'scripted/model' });
    expect(await codeOf(ask(calls(['issues', 'pulls']), w.guard(), mcpTools))).toBe('ok');
    expect(executed).toBe(2);
    expect(await a.getBreaker('mcp:github')).toMatchObject({ state: 'open', kind: 'mcp' });
    expect(await a.getBreaker('tool:issues')).toMatchObject({ state: 'closed', failures: 1 });
    // Another tool of the same server: the step fails at once with CIRCUIT_OPEN, the tool not run.
    await expect(ask(calls(['pulls']), w.guard(), mcpTools)).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', retryable: true, context: { breaker: 'mcp:github' } });
    expect(executed).toBe(2);
    // HTTP tools by host; a 4xx (the arguments' fault) counts nothing.
    const http = (name: string, status: number): Tool =>
      tool({ name, description: name, parameters: { type: 'object', properties: {} }, origin: { kind: 'http', host: 'api.example.com' }, execute: () => { executed++; throw new Error(`HTTP ${status} Oops`); } });
    const httpTools = [http('lookup', 404), http('fetch', 502)];
    expect(await codeOf(ask(calls(['lookup', 'lookup', 'lookup']), w.guard(), httpTools))).toBe('ok');
    expect(await a.getBreaker('http_host:api.example.com')).toBeUndefined();
    expect(await codeOf(ask(calls(['fetch', 'fetch']), w.guard(), httpTools))).toBe('ok');
    expect(await a.getBreaker('http_host:api.example.com')).toMatchObject({ state: 'open' });
    expect(await codeOf(ask(calls(['lookup']), w.guard(), httpTools))).toBe('CIRCUIT_OPEN');
    expect(w.transitions).toEqual(['mcp github open', 'tool fetch open', 'http_host api.example.com open']);
    // Reset: closed again.
    expect(await a.deleteBreaker('mcp:github')).toMatchObject({ state: 'open' });
    expect(await a.getBreaker('mcp:github')).toBeUndefined();
  });

  it('a probe slot taken for a call that a later guard refuses, or that waits for a human, is given back at once', async () => {
    const [a] = await backend.pair();
    const clock = { t: 1_000 };
    const w = worker(a, { failures: 1, cooldown_ms: 5_000, half_open_probes: 1 }, clock);
    let executed = 0;
    const flakyTool = tool({ name: 'send', description: 'send', parameters: { type: 'object', properties: {} }, execute: () => { executed++; throw new Error('connection reset'); } });
    const gated = tool({ ...flakyTool, needsApproval: true, execute: () => { executed++; return 'sent'; } });
    const calls = () => new ScriptedModel([{ toolCalls: [{ id: 'c1', name: 'send', arguments: {} }] }, { content: 'done' }], { id: 'scripted/model' });
    expect(await codeOf(ask(calls(), w.guard(), [flakyTool]))).toBe('ok');
    expect(await a.getBreaker('tool:send')).toMatchObject({ state: 'open' });
    clock.t += 5_000;
    const refuse: LoopGuard = { beforeToolCall: () => ({ verdict: { action: 'refuse', output: 'Error: refused by policy' } }) };
    expect(await codeOf(ask(calls(), composeGuards([w.guard(), refuse]), [flakyTool]))).toBe('ok');
    expect(await a.getBreaker('tool:send')).toMatchObject({ state: 'half_open', probes: 0 });
    const paused = await run(agent({ name: 'clerk', model: calls(), tools: [gated] }), [{ role: 'user', content: 'hi' }], { guard: w.guard() as LoopGuard });
    expect(paused.status).toBe('waiting');
    expect(await a.getBreaker('tool:send')).toMatchObject({ state: 'half_open', probes: 0 });
    expect(executed).toBe(1);
  });

  it('enabled: false turns them off, for all or for one target; a per-target enabled: true turns one back on', async () => {
    const [a] = await backend.pair();
    const clock = { t: 1_000 };
    expect(worker(a, { enabled: false }, clock).guard()).toBeUndefined();
    const w = worker(a, { failures: 1, models: { 'openai/gpt-4o-mini': { enabled: false } } }, clock);
    const m = flaky();
    for (let i = 0; i < 3; i++) expect(await codeOf(ask(m, w.guard()))).toBe('MODEL_CALL_FAILED');
    expect(await a.listBreakers()).toEqual([]);
    // Off for the deployment, on again for one model.
    const on = worker(a, { enabled: false, failures: 1, models: { 'openai/gpt-4o-mini': { enabled: true } } }, clock);
    expect(await codeOf(ask(m, on.guard()))).toBe('MODEL_CALL_FAILED');
    expect(await codeOf(ask(m, on.guard()))).toBe('CIRCUIT_OPEN');
  });

  it('an agent’s own guardrails.breakers refine the deployment’s for its calls', async () => {
    const [a] = await backend.pair();
    const clock = { t: 1_000 };
    const clerk = parseAgentManifest('name: clerk\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: gpt-4o-mini }\nguardrails:\n  breakers:\n    models:\n      openai/gpt-4o-mini: { failures: 2 }\n', 'agent.yaml');
    const w = worker(a, { failures: 10 }, clock, {}, new Map([['clerk', clerk]]));
    const m = flaky();
    expect(await codeOf(ask(m, w.guard()))).toBe('MODEL_CALL_FAILED');
    expect(await codeOf(ask(m, w.guard()))).toBe('MODEL_CALL_FAILED');
    expect(await codeOf(ask(m, w.guard()))).toBe('CIRCUIT_OPEN');
  });

  it('an open breaker keeps the cool-down it opened with: the list shows that probe time, and an agent with other settings waits the same', async () => {
    const [a, b] = await backend.pair();
    const clock = { t: 1_000 };
    const deployment: BreakersSpec = { failures: 1, cooldown_ms: 30_000 };
    const clerk = parseAgentManifest('name: clerk\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: gpt-4o-mini }\nguardrails:\n  breakers:\n    models:\n      openai/gpt-4o-mini: { cooldown: 5m }\n', 'agent.yaml');
    const own = worker(a, deployment, clock, {}, new Map([['clerk', clerk]]));
    // Another worker whose step's agent has no settings of its own: the deployment's 30 s.
    const other = worker(b, deployment, clock);
    const failing = { on: true };
    const m = flaky('openai/gpt-4o-mini', failing);
    expect(await codeOf(ask(m, own.guard()))).toBe('MODEL_CALL_FAILED');
    expect(await b.getBreaker('model:openai/gpt-4o-mini')).toMatchObject({ state: 'open', opened_at: 1_000, cooldown_ms: 300_000 });
    expect(own.events).toEqual([{ type: 'CIRCUIT_CHANGED', data: expect.objectContaining({ to: 'open', cooldown_ms: 300_000, retry_at: 301_000 }) }]);
    // What swarm breakers list and GET /api/v1/breakers show (read with the deployment's settings only).
    expect((await listBreakerViews(b, deployment)).map((v) => v.probe_at)).toEqual([new Date(301_000).toISOString()]);
    // Past the deployment's cool-down, not the breaker's: still refused, on either worker, with the same retry_at.
    clock.t = 1_000 + 30_000;
    await expect(ask(m, other.guard())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', context: { retry_at: 301_000 } });
    expect(m.calls).toBe(1);
    // At the probe time shown, a probe goes through; it fails, and the breaker opens again with the cool-down of that call.
    clock.t = 301_000;
    expect(await codeOf(ask(m, other.guard()))).toBe('MODEL_CALL_FAILED');
    expect(m.calls).toBe(2);
    expect(await a.getBreaker('model:openai/gpt-4o-mini')).toMatchObject({ state: 'open', opened_at: 301_000, cooldown_ms: 30_000 });
    expect((await listBreakerViews(a, deployment)).map((v) => v.probe_at)).toEqual([new Date(331_000).toISOString()]);
    // A probe that succeeds closes it and forgets the cool-down.
    clock.t = 331_000;
    failing.on = false;
    expect(await codeOf(ask(m, own.guard()))).toBe('ok');
    expect(await a.getBreaker('model:openai/gpt-4o-mini')).toMatchObject({ state: 'closed', opened_at: null, cooldown_ms: null });
    expect(await listBreakerViews(a, deployment)).toEqual([expect.objectContaining({ state: 'closed', probe_at: null })]);
  });
});

// ---- end to end: a Swarm, the real OpenAI client, the fake vendor answering 500 ----

describe('circuit breakers in a Swarm', () => {
  let fake: FakeLlmServer;
  let dir: string;
  beforeAll(async () => {
    fake = await startFakeLlmServer();
  });
  afterAll(async () => {
    await fake.close();
  });
  afterEach(() => removeProject(dir));

  it('500s through the real client open the breaker; a CIRCUIT_OPEN step is retried and succeeds once a probe closes it; events and metrics', async () => {
    dir = tempProject('name: t\nproviders:\n  openai: { max_retries: 1, backoff_ms: 1 }\nguardrails:\n  breakers: { failures: 2, cooldown: 400ms }\n');
    writeAgent(dir, 'clerk', 'name: clerk\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: gpt-4o-mini }\ninstructions: "Help."\n');
    writeWorkflow(dir, 'ask', 'name: ask\nversion: 1.0.0\nsteps:\n  - id: q\n    agent: clerk\n    inputs: { message: "hi" }\n');
    writeWorkflow(dir, 'patient', 'name: patient\nversion: 1.0.0\nsteps:\n  - id: q\n    agent: clerk\n    inputs: { message: "hi" }\n    retry: { max_attempts: 30, backoff_ms: 150, max_backoff_ms: 150 }\n');
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') }, metrics: true, providerEnv: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl } });
    try {
      await swarm.registerAgent(join(dir, 'agents', 'clerk'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'ask'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'patient'));
      fake.push({ status: 500 }, { status: 500 }, { status: 503 }, { status: 503 });
      const first = await swarm.runToCompletion(await swarm.startRun('ask'));
      expect(first.steps[0]?.error).toMatch(/500/);
      const second = await swarm.runToCompletion(await swarm.startRun('ask'));
      expect(fake.requests).toHaveLength(4); // two calls, each tried twice by the client
      expect((await swarm.events(second.run.id)).filter((e) => e.type === 'CIRCUIT_CHANGED').map((e) => e.data)).toEqual([
        expect.objectContaining({ breaker: 'model:openai/gpt-4o-mini', from: 'closed', to: 'open' }),
      ]);
      // Open: refused without a request to the vendor.
      const third = await swarm.runToCompletion(await swarm.startRun('ask'));
      expect(third.run.status).toBe('failed');
      expect(third.steps[0]?.error).toMatch(/circuit breaker 'model:openai\/gpt-4o-mini' is open/);
      expect(fake.requests).toHaveLength(4);
      // A step that retries: refused while open, then the probe after the cool-down answers and closes it.
      fake.push({ content: 'back again' });
      const started = Date.now();
      const patient = await swarm.runToCompletion(await swarm.startRun('patient'));
      expect(patient.run.status).toBe('completed');
      expect(patient.steps[0]?.outputs).toMatchObject({ content: 'back again' });
      expect(patient.steps[0]?.attempt).toBeGreaterThan(1);
      expect(Date.now() - started).toBeGreaterThanOrEqual(100);
      expect(fake.requests).toHaveLength(5);
      const changes = (await swarm.events(patient.run.id)).filter((e) => e.type === 'CIRCUIT_CHANGED').map((e) => `${String(e.data.from)}→${String(e.data.to)}`);
      expect(changes).toEqual(['open→half_open', 'half_open→closed']);
      expect(await swarm.store.getBreaker('model:openai/gpt-4o-mini')).toMatchObject({ state: 'closed' });
      if (!swarm.metrics) throw new Error('metrics are on');
      const text = await swarm.metrics.render();
      expect(text).toMatch(/swarm_circuit_transitions_total\{kind="model",breaker="openai\/gpt-4o-mini",to="open"\} 1/);
      expect(text).toMatch(/swarm_circuit_transitions_total\{kind="model",breaker="openai\/gpt-4o-mini",to="closed"\} 1/);
      expect(text).toMatch(/swarm_circuit_rejected_calls_total\{kind="model",breaker="openai\/gpt-4o-mini"\} [1-9]/);
    } finally {
      await swarm.close();
    }
  });

  it('a tool refused by its open breaker fails the step (retryable); the retry resumes the conversation and finished tools are not run again', async () => {
    dir = tempProject('name: t\nguardrails:\n  breakers: { cooldown: 1s }\n');
    const tools = `import { appendFileSync } from 'node:fs';
export const charge = { name: 'charge', description: 'Charge', parameters: { type: 'object', properties: {} }, execute: () => { appendFileSync(process.env.BREAKER_EFFECTS, 'charged\\n'); return { ok: true }; } };
export const search = { name: 'search', description: 'Search', parameters: { type: 'object', properties: {} }, execute: () => ({ hits: 3 }) };
`;
    writeAgent(dir, 'clerk', 'name: clerk\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: gpt-4o-mini }\ninstructions: "Help."\ntools:\n  - module: tools.mjs\n', { 'tools.mjs': tools });
    writeWorkflow(dir, 'shop', 'name: shop\nversion: 1.0.0\nsteps:\n  - id: q\n    agent: clerk\n    inputs: { message: "hi" }\n    retry: { max_attempts: 30, backoff_ms: 200, max_backoff_ms: 200 }\n');
    process.env.BREAKER_EFFECTS = join(dir, 'effects.log');
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') }, providerEnv: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl } });
    try {
      await swarm.registerAgent(join(dir, 'agents', 'clerk'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'shop'));
      // A first run loads the provider's client and the tools, so the second is quick next to the cool-down.
      fake.push({ content: 'warm' });
      expect((await swarm.runToCompletion(await swarm.startRun('shop'))).run.status).toBe('completed');
      const before = fake.requests.length;
      fake.push({ toolCalls: [{ id: 'c1', name: 'charge', arguments: {} }] }, { toolCalls: [{ id: 'c2', name: 'search', arguments: {} }] }, { content: 'Charged, and found 3.' });
      // The search tool's breaker is open (another worker found it failing just now).
      const now = Date.now();
      await swarm.store.updateBreaker('tool:search', 'tool', (r) => ({ ...r, state: 'open', opened_at: now, updated_at: now }));
      const { run, steps } = await swarm.runToCompletion(await swarm.startRun('shop'));
      expect(run.status).toBe('completed');
      expect(steps[0]?.outputs).toMatchObject({ content: 'Charged, and found 3.' });
      expect(steps[0]?.attempt).toBeGreaterThan(1);
      expect(fake.requests.length - before).toBe(3); // the model was not asked again
      expect(readFileSync(join(dir, 'effects.log'), 'utf8')).toBe('charged\n'); // nor was charge run again
      const events = await swarm.events(run.id);
      expect(events.some((e) => e.type === 'STEP_RETRY_SCHEDULED' && e.data.code === 'CIRCUIT_OPEN')).toBe(true);
      expect(events.filter((e) => e.type === 'CIRCUIT_CHANGED').map((e) => `${String(e.data.breaker)} ${String(e.data.to)}`)).toEqual(['tool:search half_open', 'tool:search closed']);
    } finally {
      await swarm.close();
    }
  });

  it('swarm breakers list | reset and GET /api/v1/breakers, POST /api/v1/breakers/{key}/reset', async () => {
    dir = tempProject('name: t\nguardrails:\n  breakers: { cooldown: 45s }\n');
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') } });
    const printed: string[] = [];
    const cli = async (...argv: string[]): Promise<number> => {
      const out = process.stdout.write.bind(process.stdout);
      const err = process.stderr.write.bind(process.stderr);
      process.stdout.write = ((s: string) => (printed.push(String(s)), true));
      process.stderr.write = ((s: string) => (printed.push(String(s)), true));
      const listeners = { out: process.stdout.listeners('error'), err: process.stderr.listeners('error') };
      try {
        return await main(argv, { SWARM_HOME: join(dir, '.swarm') }, dir);
      } finally {
        process.stdout.write = out;
        process.stderr.write = err;
        // main() adds an EPIPE handler to both streams per call; keep the process's as they were.
        for (const [stream, before] of [[process.stdout, listeners.out], [process.stderr, listeners.err]] as const) {
          for (const l of stream.listeners('error')) if (!before.includes(l)) stream.removeListener('error', l as (e: Error) => void);
        }
      }
    };
    try {
      const at = Date.UTC(2026, 0, 1);
      // Opened by the state machine (the deployment's 5 failures): an open breaker shows the failures that opened it.
      const settings = resolveBreaker(swarm.config.guardrails.breakers);
      for (let i = 0; i < 5; i++) await swarm.store.updateBreaker('model:openai/gpt-4o-mini', 'model', (r) => recordOutcome(r, settings, 'failure', false, 0, at));
      const app = createApp(swarm);
      const list = await app.request('/api/v1/breakers');
      expect(list.status).toBe(200);
      expect(await list.json()).toEqual({
        breakers: [{ key: 'model:openai/gpt-4o-mini', kind: 'model', name: 'openai/gpt-4o-mini', state: 'open', failures: 5, opened_at: '2026-01-01T00:00:00.000Z', probe_at: '2026-01-01T00:00:45.000Z', probes: 0, updated_at: '2026-01-01T00:00:00.000Z' }],
      });
      expect(await cli('breakers', 'list')).toBe(0);
      expect(printed.join('')).toMatch(/model:openai\/gpt-4o-mini\s+open\s+5\s+2026-01-01T00:00:00/);
      printed.length = 0;
      expect(await cli('breakers', 'list', '--json')).toBe(0);
      expect(JSON.parse(printed.join(''))).toMatchObject([{ key: 'model:openai/gpt-4o-mini', state: 'open', failures: 5 }]);
      const reset = await app.request(`/api/v1/breakers/${encodeURIComponent('model:openai/gpt-4o-mini')}/reset`, { method: 'POST' });
      expect(reset.status).toBe(200);
      expect(await reset.json()).toMatchObject({ key: 'model:openai/gpt-4o-mini', state: 'open' });
      expect(await swarm.store.getBreaker('model:openai/gpt-4o-mini')).toBeUndefined();
      const again = await app.request(`/api/v1/breakers/${encodeURIComponent('model:openai/gpt-4o-mini')}/reset`, { method: 'POST' });
      expect(again.status).toBe(404);
      expect(await again.json()).toMatchObject({ code: 'BREAKER_NOT_FOUND' });
      printed.length = 0;
      expect(await cli('breakers', 'reset', 'tool:search')).toBe(2);
      expect(printed.join('')).toMatch(/no circuit breaker 'tool:search' has state/);
      expect(await cli('breakers', 'list', '--json')).toBe(0);
      expect(printed.join('')).toContain('[]');
    } finally {
      await swarm.close();
    }
  });
});
