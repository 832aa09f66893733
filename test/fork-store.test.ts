/**
 * Forks on SQLite and PostgreSQL through the library: a fork at a step copies what the step does not
 * depend on (outputs equal the parent's), runs the step and what follows it once more (siblings are
 * not run again), its log starts RUN_CREATED, RUN_FORKED, STEP_COPIED… and verifies; a fork of a fork
 * makes a lineage two deep; and the refusals (running run, unknown step, replacing an output that is
 * not copied or that its agent's schema rejects).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Swarm } from '../src/swarm.js';
import { replayStoredRun } from '../src/log/log-service.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { builtinAgent, openProject, removeProject, tempProject, writeWorkflow } from './helpers/project.js';

afterAll(async () => {
  await stopPgTestServer();
});

const BACKENDS = [
  { name: 'SQLite', env: async (): Promise<Record<string, string>> => ({}) },
  { name: 'PostgreSQL', env: async (): Promise<Record<string, string>> => ({ SWARM_DATABASE_URL: await (await pgTestServer()).createDatabase() }) },
];

// a → b → c; a → d (a sibling of b); e stands alone.
const DAG = `name: dag
version: 1.0.0
inputs:
  - {name: seed, type: integer}
steps:
  - id: a
    agent: num
    inputs: { n: "\${trigger.seed}" }
  - id: b
    agent: num
    inputs: { n: "\${steps.a.outputs.n}" }
  - id: c
    agent: num
    inputs: { n: "\${steps.b.outputs.n}" }
  - id: d
    agent: num
    inputs: { n: "\${steps.a.outputs.n}" }
  - id: e
    agent: num
    inputs: { n: 100 }
`;

async function project(env: Record<string, string>): Promise<{ swarm: Swarm; dir: string; calls: Map<string, number> }> {
  const dir = tempProject('name: fork-test\nsandbox: none\n');
  const swarm = await openProject(dir, { env: { SWARM_HOME: `${dir}/.swarm`, ...env } });
  const calls = new Map<string, number>();
  // Each execution counts per step and adds one, with a nonce so a rerun's output differs.
  swarm.defineBuiltin('num', async (inputs, ctx) => {
    const step = (ctx as { stepId?: string } | undefined)?.stepId ?? '?';
    calls.set(step, (calls.get(step) ?? 0) + 1);
    return { n: Number(inputs.n) + 1, nonce: Math.random() };
  });
  await swarm.registerAgent(builtinAgent(dir, 'num', 'num', 'outputs:\n  - {name: n, type: integer}\n  - {name: nonce, type: number}\n'));
  await swarm.registerWorkflow(writeWorkflow(dir, 'dag', DAG));
  return { swarm, dir, calls };
}

function outputsOf(steps: Array<{ step_id: string; outputs: unknown }>): Record<string, unknown> {
  return Object.fromEntries(steps.map((s) => [s.step_id, s.outputs]));
}

describe.each(BACKENDS)('fork on $name', ({ env }) => {
  it('copies what the step does not depend on, reruns the step and its descendants once, verifies, and forks of forks make a lineage', async () => {
    const { swarm, dir, calls } = await project(await env());
    try {
      const parentId = await swarm.startRun('dag', { seed: 1 });
      const parent = await swarm.runToCompletion(parentId);
      expect(parent.run.status).toBe('completed');
      const before = new Map(calls);
      calls.clear();

      const f = await swarm.fork(parentId, { at: 'b' });
      expect(f).toMatchObject({ parent_run_id: parentId, at: 'b', rerun: ['b', 'c'], fresh: [], replaced: [] });
      expect([...f.copied].sort()).toEqual(['a', 'd', 'e']);
      const fork = await swarm.runToCompletion(f.run_id);
      expect(fork.run.status).toBe('completed');
      expect(fork.run).toMatchObject({ parent_run_id: parentId, fork_step_id: 'b', fork_turn: null, trigger_type: 'fork' });
      // b and c ran once more; a, d, e did not run again.
      expect(Object.fromEntries(calls)).toEqual({ b: 1, c: 1 });
      expect(before.get('a')).toBe(1);
      const po = outputsOf(parent.steps);
      const fo = outputsOf(fork.steps);
      for (const s of ['a', 'd', 'e']) expect(fo[s]).toEqual(po[s]);
      for (const s of ['b', 'c']) expect(fo[s]).not.toEqual(po[s]);
      expect((fo.c as { n: number }).n).toBe(4);

      const events = await swarm.events(f.run_id);
      expect(events.slice(0, 5).map((e) => [e.type, e.step_id])).toEqual([['RUN_CREATED', null], ['RUN_FORKED', null], ...f.copied.map((s) => ['STEP_COPIED', s])]);
      expect(events[1]?.data).toMatchObject({ parent_run_id: parentId, parent_head_hash: parent.run.event_hash, at_step: 'b', copied_steps: f.copied });
      const parentEvents = await swarm.events(parentId);
      const aDone = parentEvents.find((e) => e.type === 'STEP_COMPLETED' && e.step_id === 'a');
      expect(events.find((e) => e.type === 'STEP_COPIED' && e.step_id === 'a')?.data).toMatchObject({ from_run_id: parentId, output_sha256: aDone?.data.outputs_sha256, parent_event_hash: aDone?.hash, replaced: false, ready: ['b'] });
      expect(events.filter((e) => e.type === 'STEP_STARTED').map((e) => e.step_id)).toEqual(['b', 'c']);
      expect((await swarm.verify(f.run_id)).ok).toBe(true);
      // Replaying the fork's log gives the state its rows hold (copied steps completed with their digests).
      const replay = await replayStoredRun(swarm, f.run_id);
      expect(replay.differences).toEqual([]);

      // A fork of the fork, with a replaced output of a copied step: b and c see it.
      calls.clear();
      const g = await swarm.fork(f.run_id, { at: 'c', replaceOutputs: { b: { n: 40, nonce: 0 } } });
      expect(g).toMatchObject({ rerun: ['c'], replaced: ['b'] });
      expect([...g.copied].sort()).toEqual(['a', 'b', 'd', 'e']);
      const grand = await swarm.runToCompletion(g.run_id);
      expect(Object.fromEntries(calls)).toEqual({ c: 1 });
      expect(outputsOf(grand.steps).c).toMatchObject({ n: 41 });
      const copiedB = (await swarm.events(g.run_id)).find((e) => e.type === 'STEP_COPIED' && e.step_id === 'b');
      expect(copiedB?.data).toMatchObject({ replaced: true });
      expect(copiedB?.data.parent_output_sha256).not.toBe(copiedB?.data.output_sha256);
      expect((await swarm.verify(g.run_id)).ok).toBe(true);

      // The lineage, from any run of the tree: root, fork, fork of fork.
      for (const id of [parentId, f.run_id, g.run_id]) {
        const tree = await swarm.lineage(id);
        expect(tree.map((n) => [n.run_id, n.parent_run_id, n.fork_step_id, n.depth])).toEqual([
          [parentId, null, null, 0],
          [f.run_id, parentId, 'b', 1],
          [g.run_id, f.run_id, 'c', 2],
        ]);
      }
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });

  it('refuses a running run, an unknown step, a replaced output of a step that is not copied or does not fit the schema, and bad input', async () => {
    const { swarm, dir } = await project(await env());
    try {
      const queued = await swarm.startRun('dag', { seed: 1 });
      await expect(swarm.fork(queued, { at: 'b' })).rejects.toMatchObject({ code: 'RUN_NOT_FINISHED', exitCode: 2 });
      await swarm.runToCompletion(queued);
      const unknown = await swarm.fork(queued, { at: 'zz' }).catch((e: unknown) => e as Error & { code: string; exitCode: number });
      expect(unknown).toMatchObject({ code: 'UNKNOWN_STEP', exitCode: 2 });
      for (const s of ['a', 'b', 'c', 'd', 'e']) expect((unknown as Error).message).toContain(`${s}`);
      await expect(swarm.fork(queued, { at: 'b', replaceOutputs: { c: { n: 1, nonce: 0 } } })).rejects.toMatchObject({ code: 'REPLACE_OUTPUT_NOT_COPIED', exitCode: 2 });
      await expect(swarm.fork(queued, { at: 'b', replaceOutputs: { a: { n: 'x' } } })).rejects.toMatchObject({ code: 'OUTPUT_INVALID', exitCode: 2 });
      // Outputs declared as a list are the whole set: a field beside them is refused, naming it.
      await expect(swarm.fork(queued, { at: 'b', replaceOutputs: { a: { bad: 1 } } })).rejects.toMatchObject({ code: 'OUTPUT_INVALID', message: expect.stringContaining("'bad' is not one of its outputs (n, nonce)") as unknown });
      await expect(swarm.fork(queued, { at: 'b', input: { seed: 'x' } })).rejects.toMatchObject({ code: 'INPUT_INVALID', exitCode: 2 });
      await expect(swarm.fork(queued, { at: 'b', turn: 1 })).rejects.toMatchObject({ code: 'TURN_NOT_LLM', exitCode: 2 });
      // Nothing was created by the refusals.
      expect((await swarm.listRuns({ workflow: 'dag' })).length).toBe(1);
      // --input changes the trigger data for what runs again.
      const f = await swarm.fork(queued, { at: 'a', input: { seed: 10 } });
      const done = await swarm.runToCompletion(f.run_id);
      expect(outputsOf(done.steps).c).toMatchObject({ n: 13 });
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });
});
