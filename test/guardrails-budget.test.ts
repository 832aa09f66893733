/**
 * Run budgets: the store's reserve and settle on both stores (a real SQLite file and PostgreSQL),
 * and the guard in llm steps with the scripted model, in process: a call that would cross a limit
 * is not made, handoffs, steps and sub-workflows draw from one budget, warnings fire once, bad
 * limits are refused with file, field and line, and runs show / the API report the usage.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ManifestError } from '../src/core/errors.js';
import { parseWorkflowManifest } from '../src/core/manifest/workflow.js';
import { resolveConfig } from '../src/config/config.js';
import { createApp } from '../src/server/app.js';
import { Swarm } from '../src/swarm.js';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { BudgetScopeKey, Store } from '../src/store/store.js';
import { ScriptedModel, type ScriptedReply } from '../src/testing/scripted-model.js';
import { agent, tool } from '../src/agents/agent.js';
import { memoryJournal, run } from '../src/agents/loop.js';
import { budgetGuard } from '../src/guardrails/budget.js';
import type { GuardDeps, LoopGuard } from '../src/guardrails/index.js';
import { NO_METRICS } from '../src/observability/engine-metrics.js';
import { request } from './helpers/http.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { removeProject, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => stopPgTestServer());

// ---------------------------------------------------------------- the store, both backends

interface Backend {
  name: string;
  /** A fresh store; `again()` opens the same database once more (a restart, or a second worker). */
  open(): Promise<{ store: Store; again: () => Promise<Store> }>;
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    open: async () => {
      const dir = tempProject();
      cleanups.push(() => removeProject(dir));
      const path = join(dir, 'swarm.db');
      const opened: Store[] = [];
      cleanups.push(async () => {
        for (const s of opened) await s.close().catch(() => undefined);
      });
      const make = (): Store => {
        const s = openSqliteStore({ path, durability: 'full' });
        opened.push(s);
        return s;
      };
      return { store: make(), again: async () => make() };
    },
  },
  {
    name: 'postgres',
    open: async () => {
      const server = await pgTestServer();
      const url = await server.createDatabase();
      const opened: Store[] = [];
      cleanups.push(async () => {
        for (const s of opened) await s.close().catch(() => undefined);
        await server.dropDatabase(url);
      });
      const make = async (): Promise<Store> => {
        const s = await openPostgresStore({ url, durability: 'full' });
        opened.push(s);
        return s;
      };
      return { store: await make(), again: make };
    },
  },
];

const scope = (id: string, limits: BudgetScopeKey['limits'], started_at = Date.now()): BudgetScopeKey => ({ id, root_run_id: 'root-1', limits, started_at });

describe.each(backends)('budget store contract: $name', (backend) => {
  it('reserves the worst case, settles the actual usage, refuses what would cross a limit, and survives a reopen', async () => {
    const { store, again } = await backend.open();
    const run = scope('run:root-1', { tokens_out: 1000, model_calls: 10 });
    const r1 = await store.reserveBudget({ reservation_id: 'a', scopes: [run], amount: { tokens_out: 600, model_calls: 1 }, ttl_ms: 60_000 });
    expect(r1).toEqual({ ok: true, warnings: [] });
    // 600 held: another 600 would cross 1000 while the first is in flight.
    const r2 = await store.reserveBudget({ reservation_id: 'b', scopes: [run], amount: { tokens_out: 600, model_calls: 1 }, ttl_ms: 60_000 });
    expect(r2).toEqual({ ok: false, exceeded: { scope: 'run:root-1', limit: 'tokens_out', used: 0, reserved: 600, requested: 600, allowed: 1000 } });
    expect(await store.settleBudget({ reservation_id: 'a', scope_ids: [run.id], actual: { tokens_out: 150, model_calls: 1 } })).toEqual([]);
    const [s] = await store.getBudgetScopes('root-1');
    expect(s).toMatchObject({ id: 'run:root-1', used: { tokens_out: 150, model_calls: 1 }, reserved: { tokens_out: 0, model_calls: 0 } });
    await store.close();
    // A restart: the usage is in the store, and the next call sees it.
    const reopened = await again();
    expect((await reopened.getBudgetScopes('root-1'))[0]?.used.tokens_out).toBe(150);
    const r3 = await reopened.reserveBudget({ reservation_id: 'c', scopes: [run], amount: { tokens_out: 900, model_calls: 1 }, ttl_ms: 60_000 });
    expect(r3).toMatchObject({ ok: false, exceeded: { limit: 'tokens_out', used: 150, reserved: 0, requested: 900, allowed: 1000 } });
  });

  it("a crashed call's reservation expires and is given back; a warning is reported once per limit; every scope must allow the call", async () => {
    const { store } = await backend.open();
    const run = scope('run:root-1', { tool_calls: 10, warn_at: 0.5 });
    const step = scope('step:root-1/s', { tokens_in: 100 });
    // Held by a worker that died: expired at once (ttl 0), released by the next reservation.
    expect((await store.reserveBudget({ reservation_id: 'dead', scopes: [step], amount: { tokens_in: 100 }, ttl_ms: 0 })).ok).toBe(true);
    expect(await store.reserveBudget({ reservation_id: 'next', scopes: [step], amount: { tokens_in: 100 }, ttl_ms: 60_000 })).toEqual({ ok: true, warnings: [] });
    const warnings = [];
    for (let i = 0; i < 6; i++) {
      const r = await store.reserveBudget({ reservation_id: `t${i}`, scopes: [run], amount: { tool_calls: 1 }, commit: true, ttl_ms: 60_000 });
      expect(r.ok).toBe(true);
      if (r.ok) warnings.push(...r.warnings);
    }
    expect(warnings).toEqual([{ scope: 'run:root-1', limit: 'tool_calls', used: 5, allowed: 10 }]);
    // The run allows the call, the step does not (its 100 tokens are held): nothing is taken from either.
    const both = await store.reserveBudget({ reservation_id: 'x', scopes: [run, step], amount: { tokens_in: 1, tool_calls: 1 }, commit: true, ttl_ms: 60_000 });
    expect(both).toMatchObject({ ok: false, exceeded: { scope: 'step:root-1/s', limit: 'tokens_in' } });
    const scopes = await store.getBudgetScopes('root-1');
    expect(scopes.map((s) => [s.id, s.used.tool_calls, s.reserved.tokens_in])).toEqual([
      ['run:root-1', 6, 0],
      ['step:root-1/s', 0, 100],
    ]);
    // Wall clock counts from the scope's start.
    const old = scope('run:root-2', { wall_clock: 1 }, Date.now() - 5000);
    expect(await store.reserveBudget({ reservation_id: 'w', scopes: [{ ...old, root_run_id: 'root-2' }], amount: { model_calls: 1 }, ttl_ms: 1000 })).toMatchObject({ ok: false, exceeded: { limit: 'wall_clock', allowed: 1 } });
  });

  it("a scope's first use makes its row with what that call applied: a grant, a warning, a refusal, a replaced lease", async () => {
    const { store } = await backend.open();
    // Refused on first use: the row exists, with nothing used or held.
    const tight = scope('run:root-1', { tokens_out: 50 });
    expect(await store.reserveBudget({ reservation_id: 'big', scopes: [tight], amount: { tokens_out: 60 }, ttl_ms: 60_000 })).toMatchObject({ ok: false, exceeded: { scope: 'run:root-1', used: 0, reserved: 0, requested: 60 } });
    expect((await store.getBudgetScopes('root-1')).map((s) => [s.id, s.used.tokens_out, s.reserved.tokens_out])).toEqual([['run:root-1', 0, 0]]);
    // A fresh scope beside an existing one; the first call crosses the fresh one's warning at once, and it is saved (not given again).
    const step = scope('step:root-1/s', { tool_calls: 4, warn_at: 0.5 });
    const first = await store.reserveBudget({ reservation_id: 't1', scopes: [tight, step], amount: { tokens_out: 10, tool_calls: 3 }, commit: true, ttl_ms: 60_000 });
    expect(first).toEqual({ ok: true, warnings: [{ scope: 'step:root-1/s', limit: 'tool_calls', used: 3, allowed: 4 }] });
    expect(await store.reserveBudget({ reservation_id: 't2', scopes: [step], amount: { tool_calls: 1 }, commit: true, ttl_ms: 60_000 })).toEqual({ ok: true, warnings: [] });
    expect(await store.reserveBudget({ reservation_id: 't3', scopes: [step], amount: { tool_calls: 1 }, commit: true, ttl_ms: 60_000 })).toMatchObject({ ok: false, exceeded: { limit: 'tool_calls', used: 4 } });
    // A lease on a fresh scope holds what it was granted; one replacing a lease the scope never saw counts that lease's usage.
    const agent = scope('agent:root-1/s/a', { model_calls: 100 });
    expect(await store.reserveBudget({ reservation_id: 'l1', scopes: [agent], amount: { model_calls: 8 }, min: { model_calls: 1 }, ttl_ms: 60_000 })).toMatchObject({ ok: true, granted: { model_calls: 8 } });
    const other = scope('agent:root-1/s/b', { model_calls: 100 });
    expect((await store.reserveBudget({ reservation_id: 'l2', scopes: [other], amount: { model_calls: 8 }, min: { model_calls: 1 }, replaces: { reservation_id: 'lost', actual: { model_calls: 5 } }, ttl_ms: 60_000 })).ok).toBe(true);
    const usedOf = async (id: string) => (await store.getBudgetScopes('root-1')).find((s) => s.id === id)?.used.model_calls;
    expect(await usedOf(other.id)).toBe(5);
    // Settled once: its step settling it again later changes nothing.
    await store.settleBudget({ reservation_id: 'lost', scope_ids: [other.id], actual: { model_calls: 5 }, once: true });
    expect(await usedOf(other.id)).toBe(5);
    const byId = new Map((await store.getBudgetScopes('root-1')).map((s) => [s.id, s]));
    expect([byId.get('run:root-1')?.used.tokens_out, byId.get('step:root-1/s')?.used.tool_calls, byId.get('step:root-1/s')?.warned]).toEqual([10, 4, ['tool_calls']]);
    expect([byId.get(agent.id)?.reserved.model_calls, byId.get(agent.id)?.used.model_calls]).toEqual([8, 0]);
    expect([byId.get(other.id)?.reserved.model_calls, byId.get(other.id)?.used.model_calls]).toEqual([8, 5]);
  });

  it('concurrent reservations from several connections never overspend: exactly as many win as the budget holds', async () => {
    const { store, again } = await backend.open();
    const other = await again();
    const run = scope('run:root-1', { tokens_out: 500 });
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? other : store).reserveBudget({ reservation_id: `r${i}`, scopes: [run], amount: { tokens_out: 100 }, ttl_ms: 60_000 })),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(5);
    expect((await store.getBudgetScopes('root-1'))[0]?.reserved.tokens_out).toBe(500);
  });

  it('a lease gets what the budget allows (an eighth of what is left, not past a warning, at least the call), replaces its predecessor in one transaction, and is settled once', async () => {
    const { store } = await backend.open();
    const run = scope('run:root-1', { tokens_out: 16_000, tool_calls: 100, warn_at: 0.5 });
    // Wants 16 × 100 tokens: gets an eighth of 16,000; tool calls: an eighth of 100, rounded down.
    const a = await store.reserveBudget({ reservation_id: 'a', scopes: [run], amount: { tokens_out: 1600, tool_calls: 16 }, min: { tokens_out: 100 }, ttl_ms: 60_000 });
    expect(a).toMatchObject({ ok: true, warnings: [], granted: { tokens_out: 1600, tool_calls: 12 } });
    expect(a.ok && typeof a.now).toBe('number');
    // The next lease replaces it: a's 1,500 used are added and its hold given back in the same transaction.
    const b = await store.reserveBudget({ reservation_id: 'b', scopes: [run], amount: { tokens_out: 8000 }, min: { tokens_out: 100 }, replaces: { reservation_id: 'a', actual: { tokens_out: 1500, tool_calls: 3 } }, ttl_ms: 60_000 });
    // An eighth of 14,500 left is 1,812; the warning at 8,000 is 6,500 away: 1,812.
    expect(b).toMatchObject({ ok: true, granted: { tokens_out: 1812 } });
    let [s] = await store.getBudgetScopes('root-1');
    expect(s).toMatchObject({ used: { tokens_out: 1500, tool_calls: 3 }, reserved: { tokens_out: 1812, tool_calls: 0 } });
    // Settled once: settling it again (a resumed step, from its checkpoint) changes nothing.
    for (let i = 0; i < 2; i++) await store.settleBudget({ reservation_id: 'b', scope_ids: [run.id], actual: { tokens_out: 1000 }, once: true });
    [s] = await store.getBudgetScopes('root-1');
    expect(s).toMatchObject({ used: { tokens_out: 2500 }, reserved: { tokens_out: 0 } });
    // Near a warning a lease gets only what is left before it (then the call): usage never passes it unseen.
    const c = await store.reserveBudget({ reservation_id: 'c', scopes: [run], amount: { tokens_out: 100_000 }, min: { tokens_out: 100 }, ttl_ms: 60_000 });
    expect(c).toMatchObject({ ok: true, granted: { tokens_out: 1687 } });
    const d = await store.reserveBudget({ reservation_id: 'd', scopes: [run], amount: { tokens_out: 100_000 }, min: { tokens_out: 100 }, replaces: { reservation_id: 'c', actual: { tokens_out: 5500 } }, ttl_ms: 60_000 });
    // Settling c crossed the warning (reported here); past it, an eighth of what is left again.
    expect(d).toMatchObject({ ok: true, granted: { tokens_out: 1000 }, warnings: [{ scope: 'run:root-1', limit: 'tokens_out', used: 8000, allowed: 16_000 }] });
    // Past what is left, the call itself: refused as a per-call reservation is, and the replaced lease is settled all the same.
    const e = await store.reserveBudget({ reservation_id: 'e', scopes: [run], amount: { tokens_out: 100_000 }, min: { tokens_out: 9000 }, replaces: { reservation_id: 'd', actual: { tokens_out: 50 } }, ttl_ms: 60_000 });
    expect(e).toEqual({ ok: false, exceeded: { scope: 'run:root-1', limit: 'tokens_out', used: 8050, reserved: 0, requested: 9000, allowed: 16_000 } });
    [s] = await store.getBudgetScopes('root-1');
    expect(s).toMatchObject({ used: { tokens_out: 8050 }, reserved: { tokens_out: 0 } });
  });

  it('an expired lease is given back, and settling it later still counts its usage once', async () => {
    const { store, again } = await backend.open();
    const run = scope('run:root-1', { model_calls: 100 });
    // A worker leased and died: the lease expired (ttl 0) and the next reservation gives it back.
    expect(await store.reserveBudget({ reservation_id: 'dead', scopes: [run], amount: { model_calls: 16 }, min: { model_calls: 1 }, ttl_ms: 0 })).toMatchObject({ ok: true, granted: { model_calls: 12 } });
    expect(await store.reserveBudget({ reservation_id: 'other', scopes: [run], amount: { model_calls: 1 }, ttl_ms: 60_000 })).toEqual({ ok: true, warnings: [] });
    expect((await store.getBudgetScopes('root-1'))[0]).toMatchObject({ used: { model_calls: 0 }, reserved: { model_calls: 1 } });
    // The step resumes elsewhere and settles the dead lease from its checkpoint: 5 calls, counted once.
    const other = await again();
    await other.settleBudget({ reservation_id: 'dead', scope_ids: [run.id], actual: { model_calls: 5 }, once: true });
    await store.settleBudget({ reservation_id: 'dead', scope_ids: [run.id], actual: { model_calls: 5 }, once: true });
    // The marker is not a hold: later reservations do not release or count it.
    expect((await store.reserveBudget({ reservation_id: 'later', scopes: [run], amount: { model_calls: 1 }, commit: true, ttl_ms: 60_000 })).ok).toBe(true);
    expect((await store.getBudgetScopes('root-1'))[0]).toMatchObject({ used: { model_calls: 6 }, reserved: { model_calls: 1 } });
  });

  it('concurrent leases from several connections never overspend', async () => {
    const { store, again } = await backend.open();
    const other = await again();
    const run = scope('run:root-1', { tokens_out: 500 });
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? other : store).reserveBudget({ reservation_id: `l${i}`, scopes: [run], amount: { tokens_out: 1600 }, min: { tokens_out: 100 }, ttl_ms: 60_000 })),
    );
    const granted = results.reduce((n, r) => n + (r.ok ? (r.granted?.tokens_out ?? 0) : 0), 0);
    expect(granted).toBeLessThanOrEqual(500);
    expect((await store.getBudgetScopes('root-1'))[0]?.reserved.tokens_out).toBe(granted);
    // Each got the call (100) or nothing: an eighth of what was left was never more than a call here.
    expect(results.filter((r) => r.ok)).toHaveLength(5);
  });
});

// ---------------------------------------------------------------- llm steps with the scripted model

const AGENT = (name: string, extra = ''): string => `name: ${name}
version: 1.0.0
runtime: { type: llm, provider: openai, model: gpt-4o-mini, max_output_tokens: 100 }
instructions: "Be brief."
${extra}`;

async function project(swarmYaml = 'name: budgets\n'): Promise<{ dir: string; open: (model: ScriptedModel) => Promise<Swarm> }> {
  const dir = tempProject(swarmYaml);
  cleanups.push(() => removeProject(dir));
  return {
    dir,
    open: async (model) => {
      const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') }, models: () => model });
      cleanups.push(() => swarm.close());
      return swarm;
    },
  };
}

const answer = (content: string, output_tokens: number): ScriptedReply => ({ content, usage: { input_tokens: 20, output_tokens } });

describe('budgets in llm steps', () => {
  it('a model call that would cross the run budget is not made; the step fails with BUDGET_EXCEEDED naming the limit; two steps share the budget; the warning fires once', async () => {
    const { dir, open } = await project();
    writeAgent(dir, 'writer', AGENT('writer'));
    writeWorkflow(
      dir,
      'two',
      `name: two\nversion: 1.0.0\nbudget: { tokens_out: 150, warn_at: 0.5 }\nsteps:\n  - id: first\n    agent: writer\n    inputs: { message: "one" }\n  - id: second\n    agent: writer\n    depends_on: first\n    inputs: { message: "two" }\n`,
    );
    const model = new ScriptedModel([answer('one done', 80), answer('never', 1)]);
    const swarm = await open(model);
    await swarm.registerAgent(join(dir, 'agents', 'writer'));
    await swarm.registerWorkflow(join(dir, 'workflows', 'two'));
    const d = await swarm.runToCompletion(await swarm.startRun('two', {}));
    expect(d.run.status).toBe('failed');
    // The second step's call needed up to 100 more tokens out: 80 + 100 > 150, so it was never sent.
    expect(model.calls).toBe(1);
    const second = d.steps.find((s) => s.step_id === 'second');
    expect(second?.status).toBe('failed');
    expect(second?.error).toContain('budget exceeded: tokens_out of the run budget: 80 used, this call needs up to 100, 150 allowed');
    expect(second?.attempt).toBe(1);
    const events = await swarm.store.getEvents(d.run.id);
    expect(events.filter((e) => e.type === 'BUDGET_WARNING').map((e) => [e.step_id, e.data.limit, e.data.used])).toEqual([['first', 'tokens_out', 80]]);
    expect(events.filter((e) => e.type === 'BUDGET_EXCEEDED').map((e) => [e.step_id, e.data.limit, e.data.allowed])).toEqual([['second', 'tokens_out', 150]]);
    expect(d.budget?.limits.tokens_out).toEqual({ used: 80, reserved: 0, allowed: 150 });
    expect((await swarm.verify(d.run.id)).ok).toBe(true);
  });

  it('handoffs draw from the same budget and are bounded by handoff_depth', async () => {
    const { dir, open } = await project('name: budgets\nguardrails:\n  budget: { model_calls: 3, handoff_depth: 1 }\n');
    writeAgent(dir, 'triage', AGENT('triage', 'handoffs: [expert]\n'));
    writeAgent(dir, 'expert', AGENT('expert', 'handoffs: [triage]\n'));
    writeWorkflow(dir, 'ask', 'name: ask\nversion: 1.0.0\nsteps:\n  - id: ask\n    agent: triage\n    inputs: { message: "help" }\n');
    // triage → expert (depth 1, allowed), expert → triage (depth 2: refused before the third call).
    const model = new ScriptedModel([{ toolCalls: [{ name: 'transfer_to_expert', arguments: {} }] }, { toolCalls: [{ name: 'transfer_to_triage', arguments: {} }] }, answer('never', 1)]);
    const swarm = await open(model);
    await swarm.registerAgent(join(dir, 'agents', 'expert'));
    await swarm.registerAgent(join(dir, 'agents', 'triage'));
    await swarm.registerWorkflow(join(dir, 'workflows', 'ask'));
    const d = await swarm.runToCompletion(await swarm.startRun('ask', {}));
    expect(d.run.status).toBe('failed');
    expect(model.calls).toBe(2);
    expect(d.steps[0]?.error).toContain('budget exceeded: handoff_depth of the run budget: this handoff would be number 2, 1 allowed');
    expect(d.budget?.limits).toMatchObject({ model_calls: { used: 2, reserved: 0, allowed: 3 }, handoff_depth: { used: 1, allowed: 1 } });

    // The same model-call budget, three calls: the third is refused, not made.
    const again = new ScriptedModel([{ toolCalls: [{ name: 'transfer_to_expert', arguments: {} }] }, answer('done', 5)]);
    const swarm2 = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') }, models: () => again });
    cleanups.push(() => swarm2.close());
    const ok = await swarm2.runToCompletion(await swarm2.startRun('ask', {}));
    expect(ok.run.status).toBe('completed');
    expect(ok.budget?.limits.model_calls).toEqual({ used: 2, reserved: 0, allowed: 3 });
  });

  it('a tool call counts against tool_calls before it runs: the one past the limit is not run and stops the step', async () => {
    const { dir, open } = await project();
    writeAgent(dir, 'calc', AGENT('calc', 'tools:\n  - builtin: calculator\n'));
    writeWorkflow(dir, 'sum', 'name: sum\nversion: 1.0.0\nbudget: { tool_calls: 1 }\nsteps:\n  - id: s\n    agent: calc\n    inputs: { message: "add" }\n');
    const model = new ScriptedModel([{ toolCalls: [{ name: 'calculator', arguments: { expression: '1+1' } }] }, { toolCalls: [{ name: 'calculator', arguments: { expression: '2+2' } }] }, answer('never', 1)]);
    const swarm = await open(model);
    await swarm.registerAgent(join(dir, 'agents', 'calc'));
    await swarm.registerWorkflow(join(dir, 'workflows', 'sum'));
    const d = await swarm.runToCompletion(await swarm.startRun('sum', {}));
    expect(d.run.status).toBe('failed');
    expect(d.steps[0]?.error).toContain('budget exceeded: tool_calls of the run budget: 1 used, this call needs up to 1, 1 allowed');
    expect(model.calls).toBe(2);
    // The first calculation ran and was recorded; the second never ran.
    const calls = await swarm.store.listToolCalls(`${d.run.id}/s`);
    expect(calls.map((c) => c.arguments)).toEqual([JSON.stringify({ expression: '1+1' })]);
  });

  it('a limit used up exactly refuses only the calls that draw on it: the last answer needs no tool call, a tool call no model call', async () => {
    const { dir, open } = await project();
    writeAgent(dir, 'calc', AGENT('calc', 'tools:\n  - builtin: calculator\n'));
    // tool_calls used up by the one tool call; the answer after it is a model call only.
    writeWorkflow(dir, 'one-tool', 'name: one-tool\nversion: 1.0.0\nbudget: { tool_calls: 1, tokens_out: 1000 }\nsteps:\n  - id: s\n    agent: calc\n    inputs: { message: "add" }\n');
    // model_calls used up by the first call; the tool call it asked for is a tool call only.
    writeWorkflow(dir, 'one-call', 'name: one-call\nversion: 1.0.0\nbudget: { model_calls: 1, tool_calls: 5 }\nsteps:\n  - id: s\n    agent: calc\n    inputs: { message: "add" }\n');
    const model = new ScriptedModel([{ toolCalls: [{ name: 'calculator', arguments: { expression: '2+3' } }] }, answer('5', 4), { toolCalls: [{ name: 'calculator', arguments: { expression: '4+4' } }] }, answer('never', 1)]);
    const swarm = await open(model);
    await swarm.registerAgent(join(dir, 'agents', 'calc'));
    await swarm.registerWorkflow(join(dir, 'workflows', 'one-tool'));
    await swarm.registerWorkflow(join(dir, 'workflows', 'one-call'));
    const first = await swarm.runToCompletion(await swarm.startRun('one-tool', {}));
    expect([first.run.status, first.steps[0]?.error ?? null]).toEqual(['completed', null]);
    expect(first.budget?.limits.tool_calls).toEqual({ used: 1, reserved: 0, allowed: 1 });
    const second = await swarm.runToCompletion(await swarm.startRun('one-call', {}));
    // The tool call ran (tool_calls 1 of 5); the second model call is the one refused.
    expect(second.run.status).toBe('failed');
    expect(second.steps[0]?.error).toContain('budget exceeded: model_calls of the run budget: 1 used, this call needs up to 1, 1 allowed');
    expect(second.budget?.limits).toMatchObject({ model_calls: { used: 1, allowed: 1 }, tool_calls: { used: 1, allowed: 5 } });
    expect(model.calls).toBe(3);
  });

  it('a retried run keeps the limits its budget was first used with; with the default removed its retry runs unbudgeted', async () => {
    const { dir, open } = await project('name: budgets\nguardrails:\n  budget: { model_calls: 1 }\n');
    writeAgent(dir, 'calc', AGENT('calc', 'tools:\n  - builtin: calculator\n'));
    writeWorkflow(dir, 'sum', 'name: sum\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: calc\n    inputs: { message: "add" }\n');
    const script = (): ScriptedModel => new ScriptedModel([{ toolCalls: [{ name: 'calculator', arguments: { expression: '2+3' } }] }, answer('5', 4)]);
    const swarm = await open(script());
    await swarm.registerAgent(join(dir, 'agents', 'calc'));
    await swarm.registerWorkflow(join(dir, 'workflows', 'sum'));
    const d = await swarm.runToCompletion(await swarm.startRun('sum', {}));
    expect(d.steps[0]?.error).toContain('budget exceeded: model_calls of the run budget: 1 used');
    await swarm.close();
    const reopen = async (yaml: string): Promise<Swarm> => {
      writeFileSync(join(dir, 'swarm.yaml'), yaml);
      const s = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') }, models: () => script() });
      cleanups.push(() => s.close());
      return s;
    };
    // The default raised: the run's budget keeps the limit it was first used with.
    const raised = await reopen('name: budgets\nguardrails:\n  budget: { model_calls: 5 }\n');
    await raised.retry(d.run.id);
    const again = await raised.runToCompletion(d.run.id);
    expect(again.run.status).toBe('failed');
    expect(again.budget?.limits.model_calls).toEqual({ used: 1, reserved: 0, allowed: 1 });
    await raised.close();
    // The default removed: the retry runs with no budget; the budget line keeps what it counted.
    const none = await reopen('name: budgets\n');
    await none.retry(d.run.id);
    const done = await none.runToCompletion(d.run.id);
    expect(done.run.status).toBe('completed');
    expect(done.budget?.limits.model_calls).toEqual({ used: 1, reserved: 0, allowed: 1 });
  });

  it("a sub-workflow's llm steps draw from the root run's budget; gc deletes it with the tree", async () => {
    const { dir, open } = await project();
    writeAgent(dir, 'writer', AGENT('writer'));
    writeWorkflow(dir, 'kid', 'name: kid\nversion: 1.0.0\nsteps:\n  - id: write\n    agent: writer\n    inputs: { message: "kid" }\n');
    writeWorkflow(dir, 'parent', 'name: parent\nversion: 1.0.0\nbudget: { tokens_out: 150 }\nsteps:\n  - id: first\n    agent: writer\n    inputs: { message: "one" }\n  - id: child\n    workflow: kid\n    depends_on: first\n    inputs: {}\n');
    const model = new ScriptedModel([answer('one', 80), answer('never', 1)]);
    const swarm = await open(model);
    await swarm.registerAgent(join(dir, 'agents', 'writer'));
    await swarm.registerWorkflow(join(dir, 'workflows', 'kid'));
    await swarm.registerWorkflow(join(dir, 'workflows', 'parent'));
    const d = await swarm.runToCompletion(await swarm.startRun('parent', {}));
    expect(d.run.status).toBe('failed');
    expect(model.calls).toBe(1);
    const kids = await swarm.listRuns({ parent: d.run.id });
    expect(kids).toHaveLength(1);
    const kid = await swarm.getRun(kids[0]!.id);
    expect(kid.steps[0]?.error).toContain(`budget exceeded: tokens_out of the run budget of run ${d.run.id}: 80 used`);
    expect(kid.budget).toMatchObject({ root_run_id: d.run.id, limits: { tokens_out: { used: 80, allowed: 150 } } });
    // The tree's budget goes with the tree when the runs are collected.
    expect(await swarm.store.getBudgetScopes(d.run.id)).toHaveLength(1);
    await swarm.gc({ ages: { failed: 0 }, pauseMs: 0 });
    expect(await swarm.store.getBudgetScopes(d.run.id)).toEqual([]);
  });

  it('a step budget and an agent budget are narrower limits; the API and runs show --json report the usage', async () => {
    const { dir, open } = await project();
    writeAgent(dir, 'writer', AGENT('writer', 'guardrails:\n  budget: { model_calls: 5 }\n'));
    writeWorkflow(dir, 'one', 'name: one\nversion: 1.0.0\nbudget: { tokens_out: 10000 }\nsteps:\n  - id: s\n    agent: writer\n    budget: { model_calls: 1 }\n    inputs: { message: "go" }\n');
    const model = new ScriptedModel([{ toolCalls: [{ name: 'nothing', arguments: {} }], usage: { input_tokens: 5, output_tokens: 7 } }, answer('never', 1)]);
    const swarm = await open(model);
    await swarm.registerAgent(join(dir, 'agents', 'writer'));
    await swarm.registerWorkflow(join(dir, 'workflows', 'one'));
    const d = await swarm.runToCompletion(await swarm.startRun('one', {}));
    expect(d.run.status).toBe('failed');
    expect(model.calls).toBe(1);
    expect(d.steps[0]?.error).toContain("budget exceeded: model_calls of the budget of step 's': 1 used, this call needs up to 1, 1 allowed");
    const app = createApp(swarm, { version: 'test' });
    const shown = await request(app, 'GET', `/api/v1/runs/${d.run.id}`);
    expect(shown.status).toBe(200);
    expect(shown.json.budget).toEqual({
      root_run_id: d.run.id,
      limits: { tokens_out: { used: 7, reserved: 0, allowed: 10000 } },
      scopes: [
        { scope: 'step:s', limits: { model_calls: { used: 1, reserved: 0, allowed: 1 } } },
        { scope: 'agent:s/writer', limits: { model_calls: { used: 1, reserved: 0, allowed: 5 } } },
      ],
    });
  });

  it('no budget anywhere: no guard, no budget rows, no budget in the run document', async () => {
    const { dir, open } = await project();
    writeAgent(dir, 'writer', AGENT('writer'));
    writeWorkflow(dir, 'free', 'name: free\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: writer\n    inputs: { message: "go" }\n');
    const swarm = await open(new ScriptedModel([answer('fine', 3)]));
    await swarm.registerAgent(join(dir, 'agents', 'writer'));
    await swarm.registerWorkflow(join(dir, 'workflows', 'free'));
    const d = await swarm.runToCompletion(await swarm.startRun('free', {}));
    expect(d.run.status).toBe('completed');
    expect(d.budget).toBeUndefined();
    expect(await swarm.store.getBudgetScopes(d.run.id)).toEqual([]);
  });
});

// ---------------------------------------------------------------- bad limits

describe('bad budget values', () => {
  it('are refused with file, field and line, in workflow.yaml (run and step), agent.yaml and swarm.yaml', () => {
    const yaml = `name: bad
version: 1.0.0
budget:
  tokens_in: -5
  wall_clock: soon
  warn_at: 2
  cost_usd: lots
steps:
  - id: s
    agent: writer
    budget: { model_calls: 0, tool_calls: 1.5, handoff_depth: -1, tokens_out: .inf }
`;
    let err: unknown;
    try {
      parseWorkflowManifest(yaml, 'workflows/bad/workflow.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ManifestError);
    const problems = (err as ManifestError).problems.map((p) => [p.field, p.line, p.problem]);
    expect(problems).toEqual([
      ['budget.tokens_in', 4, 'tokens_in must be more than 0, not -5'],
      ['budget.wall_clock', 5, 'wall_clock is a duration (seconds, or like 90s, 10m, 2h, 1d), not "soon"'],
      ['budget.warn_at', 6, 'warn_at is a fraction of a limit, more than 0 and at most 1 (like 0.8), not 2'],
      ['budget.cost_usd', 7, 'cost_usd is a number, not "lots"'],
      ['steps[0].budget.model_calls', 11, 'model_calls must be more than 0, not 0'],
      ['steps[0].budget.tool_calls', 11, 'tool_calls is a whole number, not 1.5'],
      ['steps[0].budget.handoff_depth', 11, 'handoff_depth must be at least 0, not -1'],
      // YAML's infinity is shown as YAML writes it (JSON would print null).
      ['steps[0].budget.tokens_out', 11, 'tokens_out is a number, not .inf'],
    ]);
    expect((err as ManifestError).problems.every((p) => p.file === 'workflows/bad/workflow.yaml')).toBe(true);

    // An unknown limit: the schema names the ones allowed.
    expect(() => parseWorkflowManifest('name: x\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: w\n    budget: { dollars: 3 }\n', 'x.yaml')).toThrow('x.yaml:6: steps[0].budget.dollars: unknown field (allowed: tokens_in, tokens_out, cost_usd, model_calls, tool_calls, wall_clock, handoff_depth, warn_at)');
    const ok = parseWorkflowManifest('name: ok\nversion: 1.0.0\nbudget: { wall_clock: 10m, cost_usd: 0.5 }\nsteps:\n  - id: s\n    agent: w\n    budget: { wall_clock: 90 }\n', 'w.yaml');
    expect(ok.budget).toEqual({ wall_clock: 600, cost_usd: 0.5 });
    expect(ok.steps[0]?.budget).toEqual({ wall_clock: 90 });

    const dir = tempProject('name: t\nguardrails:\n  budget:\n    model_calls: many\n');
    cleanups.push(() => removeProject(dir));
    expect(() => resolveConfig({ cwd: dir, env: {} })).toThrow('swarm.yaml:4: guardrails.budget.model_calls: model_calls is a number, not "many"');
  });

  it('a budget with warn_at and no limit is refused wherever a budget goes: it would limit nothing', () => {
    let err: unknown;
    try {
      parseWorkflowManifest('name: w\nversion: 1.0.0\nbudget:\n  warn_at: 0.5\nsteps:\n  - id: s\n    agent: w\n    budget: { warn_at: 0.9 }\n', 'workflows/w/workflow.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ManifestError);
    const needs = 'a budget needs at least one limit (tokens_in, tokens_out, cost_usd, model_calls, tool_calls, wall_clock, handoff_depth); warn_at alone limits nothing';
    expect((err as ManifestError).problems.map((p) => [p.file, p.field, p.line, p.problem])).toEqual([
      ['workflows/w/workflow.yaml', 'budget', 3, needs],
      ['workflows/w/workflow.yaml', 'steps[0].budget', 8, needs],
    ]);
    // With a limit (even a bad one: that is the problem then), warn_at is fine.
    expect(parseWorkflowManifest('name: w\nversion: 1.0.0\nbudget: { warn_at: 0.5, model_calls: 3 }\nsteps:\n  - id: s\n    agent: w\n', 'w.yaml').budget).toEqual({ warn_at: 0.5, model_calls: 3 });
    expect(() => parseWorkflowManifest('name: w\nversion: 1.0.0\nbudget: { warn_at: 0.5, model_calls: 0 }\nsteps:\n  - id: s\n    agent: w\n', 'w.yaml')).toThrow(/^w\.yaml:3: budget\.model_calls: model_calls must be more than 0, not 0$/);
    const dir = tempProject('name: t\nguardrails:\n  budget:\n    warn_at: 0.5\n');
    cleanups.push(() => removeProject(dir));
    expect(() => resolveConfig({ cwd: dir, env: {} })).toThrow(`swarm.yaml:3: guardrails.budget: ${needs}`);
  });

  it('a step budget on a step that makes no model calls is refused: sleep, wait, consensus and sub-workflow steps, and a non-llm agent at registration', async () => {
    let err: unknown;
    try {
      parseWorkflowManifest(
        'name: w\nversion: 1.0.0\nsteps:\n  - { id: nap, kind: sleep, for: 1m, budget: { model_calls: 1 } }\n  - { id: kid, workflow: other, budget: { model_calls: 1 } }\n  - id: ok\n    agent: writer\n    budget: { model_calls: 1 }\n',
        'workflows/w/workflow.yaml',
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ManifestError);
    expect((err as ManifestError).problems.map((p) => [p.field, p.line, p.problem])).toEqual([
      ['steps[0].budget', 4, 'a sleep step makes no model or tool calls: a budget limits nothing here'],
      ['steps[1].budget', 5, "a sub-workflow step's calls are made by its child run, which a step budget does not limit: set budget: at the top of other's workflow.yaml (its calls draw on this run's budget too)"],
    ]);

    // An agent known at registration to make no model calls (a built-in, a process).
    const { dir, open } = await project();
    writeAgent(dir, 'echo', 'name: echo\nversion: 1.0.0\nruntime: { type: builtin, entry: echo }\n');
    writeAgent(dir, 'writer', AGENT('writer'));
    writeWorkflow(dir, 'flow', 'name: flow\nversion: 1.0.0\nsteps:\n  - id: say\n    agent: echo\n    budget: { model_calls: 2 }\n  - id: write\n    agent: writer\n    budget: { model_calls: 2 }\n');
    const swarm = await open(new ScriptedModel([]));
    await swarm.registerAgent(join(dir, 'agents', 'echo'));
    await swarm.registerAgent(join(dir, 'agents', 'writer'));
    const e = await swarm.registerWorkflow(join(dir, 'workflows', 'flow')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ManifestError);
    expect((e as ManifestError).problems).toEqual([
      expect.objectContaining({ field: 'steps[0].budget', line: 6, problem: "step 'say': agent echo@1.0.0 is a 'builtin' agent, which makes no model calls: a step budget limits only llm and http agents' steps" }),
    ]);
    expect(await swarm.store.listWorkflows()).toEqual([]);
  });

  it('an agent with a bad budget is refused at registration', async () => {
    const { dir, open } = await project();
    writeAgent(dir, 'writer', AGENT('writer', 'guardrails:\n  budget: { tokens_out: -1 }\n'));
    const swarm = await open(new ScriptedModel([]));
    const e = await swarm.registerAgent(join(dir, 'agents', 'writer')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ManifestError);
    expect((e as ManifestError).problems).toMatchObject([{ field: 'guardrails.budget.tokens_out', line: 6, problem: 'tokens_out must be more than 0, not -1' }]);
  });
});

describe('the budget guard across an approval', () => {
  it('a call paused for approval and resumed counts one tool call, not one per pass', async () => {
    const dir = tempProject();
    cleanups.push(() => removeProject(dir));
    const store = openSqliteStore({ path: join(dir, 'swarm.db'), durability: 'full' });
    cleanups.push(() => store.close());
    const deps: GuardDeps = { store, config: {}, metrics: () => NO_METRICS, recordEvents: async () => undefined, providers: {}, modelFor: async () => { throw new Error('no fallback'); }, now: () => Date.now() };
    const ctx = { runId: 'approve-run', stepId: 's', attempt: 1, workflow: 'w', sessionId: 'approve-run/s', agents: new Map(), inputs: {}, budget: { workflow: { tool_calls: 5 } } };
    const journal = memoryJournal();
    const gated = tool({ name: 'pay', description: 'pay', parameters: { type: 'object', properties: {} }, needsApproval: true, execute: () => 'paid' });
    const model = new ScriptedModel([{ toolCalls: [{ id: 'p1', name: 'pay', arguments: {} }] }, { content: 'done' }]);
    const go = async () => run(agent({ name: 'a', model, tools: [gated] }), [{ role: 'user', content: 'go' }], { guard: (await budgetGuard(deps, ctx)) as LoopGuard, journal });
    expect((await go()).status).toBe('waiting');
    expect((await go()).status).toBe('waiting');
    journal.approvals.set('p1', { decision: 'approved' });
    expect((await go()).status).toBe('completed');
    const [scope] = await store.getBudgetScopes('approve-run');
    expect(scope?.used.tool_calls).toBe(1);
  });
});

describe('budget leases in the loop', () => {
  const lookup = tool({ name: 'lookup', description: 'look up', parameters: { type: 'object', properties: {} }, execute: () => 'found' });
  // `turns` tool-calling turns, then the answer; 10 tokens out per call.
  const script = (turns: number) => (_req: unknown, i: number): ScriptedReply => (i < turns ? { toolCalls: [{ id: `c${i}`, name: 'lookup', arguments: {} }], usage: { input_tokens: 50, output_tokens: 10 } } : answer('done', 10));
  const setup = () => {
    const dir = tempProject();
    cleanups.push(() => removeProject(dir));
    const store = openSqliteStore({ path: join(dir, 'swarm.db'), durability: 'full' });
    cleanups.push(() => store.close());
    const visits = { reserve: 0, settle: 0 };
    // The store, counting the budget's round trips.
    const counted = new Proxy(store, {
      get(target, key, receiver) {
        if (key === 'reserveBudget') visits.reserve++;
        if (key === 'settleBudget') visits.settle++;
        const v: unknown = Reflect.get(target, key, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const deps: GuardDeps = { store: counted, config: {}, metrics: () => NO_METRICS, recordEvents: async () => undefined, providers: {}, modelFor: async () => { throw new Error('no fallback'); }, now: () => Date.now() };
    const ctx = { runId: 'lease-run', stepId: 's', attempt: 1, workflow: 'w', sessionId: 'lease-run/s', agents: new Map(), inputs: {}, budget: { workflow: { tokens_out: 1_000_000, model_calls: 1000, tool_calls: 1000 } } };
    return { store, visits, guard: async () => (await budgetGuard(deps, ctx)) as LoopGuard };
  };

  it('a conversation draws on one lease: one store visit to take it, one to settle it; the usage is exact and nothing stays reserved', async () => {
    const { store, visits, guard } = setup();
    const model = new ScriptedModel(script(6));
    const r = await run(agent({ name: 'a', model, tools: [lookup] }), [{ role: 'user', content: 'go' }], { guard: await guard(), journal: memoryJournal(), maxTurns: 20 });
    expect(r.status).toBe('completed');
    expect(visits).toEqual({ reserve: 1, settle: 1 });
    const [s] = await store.getBudgetScopes('lease-run');
    expect(s).toMatchObject({ used: { tokens_out: 70, model_calls: 7, tool_calls: 6 }, reserved: { tokens_out: 0, model_calls: 0, tool_calls: 0, tokens_in: 0 } });
  });

  it('a worker that dies holding a lease: the step resumed from its checkpoint settles it with the usage saved there, once', async () => {
    const { store, guard } = setup();
    const journal = memoryJournal();
    const a = agent({ name: 'a', model: new ScriptedModel(script(3)), tools: [lookup] });
    // The first worker makes three turns and dies: its loop ends without giving its lease back.
    const { onEnd: _lost, ...dying } = await guard();
    expect((await run(a, [{ role: 'user', content: 'go' }], { guard: dying, journal, maxTurns: 3 })).status).toBe('max_turns');
    let [s] = await store.getBudgetScopes('lease-run');
    expect(s?.used.model_calls).toBe(0);
    expect(s?.reserved.model_calls).toBeGreaterThan(0);
    const checkpoint = journal.envelope?.payload.guard ?? {};
    // Another worker resumes the conversation: it settles the dead lease (3 calls, 3 tools) and its own (the answer).
    const b = agent({ name: 'a', model: new ScriptedModel([answer('done', 10)]), tools: [lookup] });
    expect((await run(b, [{ role: 'user', content: 'go' }], { guard: await guard(), journal, maxTurns: 10 })).status).toBe('completed');
    [s] = await store.getBudgetScopes('lease-run');
    expect(s).toMatchObject({ used: { tokens_out: 40, model_calls: 4, tool_calls: 3 }, reserved: { tokens_out: 0, model_calls: 0, tool_calls: 0 } });
    // A third settles the dead lease again from the same checkpoint: it counts once.
    await (await guard()).onEnd?.({ state: JSON.parse(JSON.stringify(checkpoint)) as Record<string, unknown> });
    [s] = await store.getBudgetScopes('lease-run');
    expect(s).toMatchObject({ used: { tokens_out: 40, model_calls: 4, tool_calls: 3 } });
  });
});
