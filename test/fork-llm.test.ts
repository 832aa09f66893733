/**
 * Forking an LLM step at a turn, on SQLite and PostgreSQL, with a scripted model and a tool that
 * records each execution: the fork's loop starts with the parent's conversation up to the turn (the
 * model responses and tool results before it), makes its next model call at that turn, and never runs
 * a tool call of an earlier turn again. The same holds for a run imported from its bundle into
 * another store: the import brings the step's session (transcript and tool ledger) with it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportRun } from '../src/bundles/export.js';
import { Swarm } from '../src/swarm.js';
import { ScriptedModel } from '../src/testing/scripted-model.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { removeProject, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';

afterAll(async () => {
  await stopPgTestServer();
});

const BACKENDS = [
  { name: 'SQLite', env: async (): Promise<Record<string, string>> => ({}) },
  { name: 'PostgreSQL', env: async (): Promise<Record<string, string>> => ({ SWARM_DATABASE_URL: await (await pgTestServer()).createDatabase() }) },
];

function project(): { dir: string; effects: string } {
  const dir = tempProject('name: fork-llm\nsandbox: none\n');
  const effects = join(dir, 'effects.log');
  writeAgent(
    dir,
    'shop',
    `name: shop
version: 1.0.0
runtime: { type: llm, provider: openai, model: m }
instructions: You charge customers.
max_turns: 6
tools:
  - module: tools.mjs
`,
    {
      'tools.mjs': `import { appendFileSync } from 'node:fs';
export const charge = {
  name: 'charge',
  description: 'Charge the customer',
  parameters: { type: 'object', properties: { usd: { type: 'number' } }, required: ['usd'] },
  execute: ({ usd }, ctx) => {
    appendFileSync(${JSON.stringify(effects)}, usd + ' ' + ctx.idempotencyKey + '\\n');
    return { charged: usd };
  },
};
`,
    },
  );
  writeWorkflow(dir, 'buy', 'name: buy\nversion: 1.0.0\nsteps:\n  - id: sell\n    agent: shop\n    inputs: { message: "${trigger.message}" }\n  - id: after\n    agent: echo\n    depends_on: [sell]\n    inputs: { message: "${steps.sell.outputs.content}" }\n');
  writeAgent(dir, 'echo', 'name: echo\nversion: 1.0.0\nruntime: { type: builtin, entry: echo }\ninputs:\n  - {name: message, type: string}\n');
  return { dir, effects };
}

/** The amounts charged, one per tool execution, and the idempotency keys they ran under. */
const charges = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' ')[0] as string) : []);
const keys = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' ')[1] as string) : []);

describe.each(BACKENDS)('LLM fork at a turn on $name', ({ env }) => {
  it('resumes the conversation at turn n with the earlier responses and tool results; finished tool calls never run again', async () => {
    const { dir, effects } = project();
    const model = new ScriptedModel([
      { toolCalls: [{ id: 'c1', name: 'charge', arguments: { usd: 10 } }] },
      { toolCalls: [{ id: 'c2', name: 'charge', arguments: { usd: 20 } }] },
      { content: 'charged 30 in all' },
    ]);
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), ...(await env()) }, providerEnv: { OPENAI_API_KEY: 'sk-test' }, models: () => model });
    try {
      await swarm.registerAgents(join(dir, 'agents'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'buy'));
      const parentId = await swarm.startRun('buy', { message: 'Charge me twice' });
      const parent = await swarm.runToCompletion(parentId);
      expect(parent.run.status).toBe('completed');
      expect(charges(effects)).toEqual(['10', '20']);
      expect(model.calls).toBe(3);

      // Fork at turn 3: the two tool turns are reused; one model call, no tool runs.
      model.push({ content: 'a different ending' });
      const f3 = await swarm.fork(parentId, { at: 'sell', turn: 3 });
      expect(f3).toMatchObject({ at: 'sell', turn: 3, rerun: ['sell', 'after'] });
      const fork3 = await swarm.runToCompletion(f3.run_id);
      expect(fork3.run.status).toBe('completed');
      expect(fork3.run.fork_turn).toBe(3);
      expect(model.calls).toBe(4);
      expect(model.requests[3]?.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'tool']);
      expect(charges(effects)).toHaveLength(2);
      expect(fork3.steps.find((s) => s.step_id === 'sell')?.outputs).toMatchObject({ content: 'a different ending' });
      expect(fork3.steps.find((s) => s.step_id === 'after')?.outputs).toEqual({ echoed: 'a different ending' });
      // The fork's session holds the copied turns and the new one; its tool ledger the two copied calls.
      const session = await swarm.getSession(`${f3.run_id}/sell`);
      expect(session.session.turns).toBe(3);
      expect(session.toolCalls.map((c) => [c.turn, c.call_id])).toEqual([
        [1, 'c1'],
        [2, 'c2'],
      ]);
      expect((await swarm.verify(f3.run_id)).ok).toBe(true);

      // Fork at turn 2: turn 1's charge is reused, turn 2 asks the model again (a new charge runs once).
      model.push({ toolCalls: [{ id: 'c9', name: 'charge', arguments: { usd: 5 } }] }, { content: 'charged 15' });
      const f2 = await swarm.fork(parentId, { at: 'sell', turn: 2 });
      const fork2 = await swarm.runToCompletion(f2.run_id);
      expect(fork2.run.status).toBe('completed');
      expect(model.requests[4]?.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
      expect(charges(effects)).toEqual(['10', '20', '5']);
      expect(keys(effects)[2]).toContain(f2.run_id);

      await expect(swarm.fork(parentId, { at: 'sell', turn: 9 })).rejects.toMatchObject({ code: 'TURN_OUT_OF_RANGE', exitCode: 2 });
      await expect(swarm.fork(parentId, { at: 'after', turn: 1 })).rejects.toMatchObject({ code: 'TURN_NOT_LLM', exitCode: 2 });
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });

  it('a run imported from its bundle into another store brings its session: a fork there at turn 3 reuses both tool turns', async () => {
    const a = project();
    const b = project();
    const model = new ScriptedModel([
      { toolCalls: [{ id: 'c1', name: 'charge', arguments: { usd: 10 } }] },
      { toolCalls: [{ id: 'c2', name: 'charge', arguments: { usd: 20 } }] },
      { content: 'charged 30 in all' },
    ]);
    const open = async (dir: string): Promise<Swarm> => Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), ...(await env()) }, providerEnv: { OPENAI_API_KEY: 'sk-test' }, models: () => model });
    const here = await open(a.dir);
    const there = await open(b.dir);
    try {
      await here.registerAgents(join(a.dir, 'agents'));
      await here.registerWorkflow(join(a.dir, 'workflows', 'buy'));
      const runId = await here.startRun('buy', { message: 'Charge me twice' });
      expect((await here.runToCompletion(runId)).run.status).toBe('completed');
      const source = await here.getSession(`${runId}/sell`);
      const bundle = await exportRun(here, runId);

      await there.registerAgents(join(b.dir, 'agents'));
      expect((await there.importBundle(bundle.bytes)).created).toBe(true);
      // The session as the source store has it: transcript, tool ledger, usage.
      const imported = await there.getSession(`${runId}/sell`);
      expect(imported.session).toMatchObject({ run_id: runId, step_id: 'sell', status: 'completed', turns: 3, agent: 'shop', input_tokens: source.session.input_tokens });
      expect(imported.messages.map((m) => [m.seq, m.role, m.content, m.tool_calls, m.usage])).toEqual(source.messages.map((m) => [m.seq, m.role, m.content, m.tool_calls, m.usage]));
      expect(imported.toolCalls.map((c) => [c.turn, c.call_id, c.output])).toEqual(source.toolCalls.map((c) => [c.turn, c.call_id, c.output]));
      // Exporting it again is still the original file (the sessions written do not change it).
      expect((await exportRun(there, runId)).bytes.equals(bundle.bytes)).toBe(true);

      model.push({ content: 'an imported ending' });
      const f = await there.fork(runId, { at: 'sell', turn: 3 });
      const fork = await there.runToCompletion(f.run_id);
      expect(fork.run.status).toBe('completed');
      expect(model.calls).toBe(4);
      expect(model.requests[3]?.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'tool']);
      // Two charges in all: the source run's; the importing side ran none.
      expect(charges(a.effects)).toEqual(['10', '20']);
      expect(charges(b.effects)).toEqual([]);
      expect(fork.steps.find((s) => s.step_id === 'after')?.outputs).toEqual({ echoed: 'an imported ending' });
      expect((await there.getSession(`${f.run_id}/sell`)).toolCalls.map((c) => c.call_id)).toEqual(['c1', 'c2']);
      await expect(there.fork(runId, { at: 'sell', turn: 4 })).rejects.toMatchObject({ code: 'TURN_OUT_OF_RANGE' });
    } finally {
      await here.close();
      await there.close();
      removeProject(a.dir);
      removeProject(b.dir);
    }
  });
});
