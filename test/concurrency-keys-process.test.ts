/**
 * Concurrency keys and idempotent starts through real processes: `swarm run --idempotency-key`,
 * `runs list` / `runs show` with both keys, the CLI's errors, and a worker killed with SIGKILL while
 * key-limited runs are active: a new worker finishes every run, and no two runs of one key ever
 * ran at once (from the events' timestamps), nor did any step complete twice.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { exited, openProject, removeProject, runCli, spawnCli, tempProject, until, writeAgent, writeWorkflow } from './helpers/project.js';

const KEYED = `name: keyed
version: 1.0.0
concurrency: { key: "cust-\${trigger.customer}", limit: 1 }
steps:
  - { id: first, agent: nap@1.0.0, inputs: { ms: "\${trigger.ms}" } }
  - { id: second, agent: nap@1.0.0, depends_on: [first], inputs: { ms: "\${trigger.ms}" } }
`;

function project(): string {
  const dir = tempProject('name: keys\nsandbox: none\n');
  writeAgent(dir, 'nap', 'name: nap\nversion: 1.0.0\nruntime: { type: builtin, entry: sleep }\ninputs:\n  - { name: ms, type: integer, required: true }\noutputs:\n  - { name: slept_ms, type: integer }\n');
  writeWorkflow(dir, 'keyed', KEYED);
  return dir;
}

interface RunJson {
  run_id: string;
  status: string;
  idempotency_key?: string;
  concurrency?: { key: string; limit: number; state: string; active: number; waiting_reason: string | null };
}

describe('concurrency keys and idempotent starts: the CLI', () => {
  let dir: string;
  beforeAll(async () => {
    dir = project();
    // Registered in process: the CLI processes below share the project's store.
    const swarm = await openProject(dir);
    try {
      await swarm.registerAgents();
      await swarm.registerWorkflows();
    } finally {
      await swarm.close();
    }
  });
  afterAll(() => removeProject(dir));

  it('--idempotency-key: a repeat returns the existing run and says so; reserved prefixes and a key that does not resolve exit 2', async () => {
    const first = await runCli(['run', 'keyed', '{"customer": "a", "ms": 1}', '--idempotency-key', 'order-1', '--json'], dir);
    expect(first.code, first.stderr).toBe(0);
    const run = JSON.parse(first.stdout) as RunJson;
    expect(run).toMatchObject({ status: 'completed', idempotency_key: 'order-1', concurrency: { key: 'cust-a', limit: 1, state: 'released', active: 0, waiting_reason: null } });

    const again = await runCli(['run', 'keyed', '{"customer": "a", "ms": 1}', '--idempotency-key', 'order-1', '--json'], dir);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`exists for idempotency key 'order-1' (completed); nothing new was started`);
    expect((JSON.parse(again.stdout) as RunJson).run_id).toBe(run.run_id);

    const reserved = await runCli(['run', 'keyed', '{"customer": "a", "ms": 1}', '--idempotency-key', 'schedule:nightly:1'], dir);
    expect(reserved.code).toBe(2);
    expect(reserved.stderr).toContain("starts with 'schedule:', which is reserved");
    const unresolved = await runCli(['run', 'keyed', '{"ms": 1}'], dir);
    expect(unresolved.code).toBe(2);
    expect(unresolved.stderr).toContain("concurrency key 'cust-${trigger.customer}' does not resolve");
    // Only the one run exists.
    expect((JSON.parse((await runCli(['runs', 'list', '--json'], dir)).stdout) as RunJson[]).map((r) => r.run_id)).toEqual([run.run_id]);

    const show = await runCli(['runs', 'show', run.run_id], dir);
    expect(show.stdout).toContain('idempotency key: order-1');
    expect(show.stdout).toContain('concurrency key: cust-a (limit 1): finished');
  });

  it('a second run of a key waits queued, runs show says why, and it starts when the first is cancelled', async () => {
    const a = (await runCli(['run', 'keyed', '{"customer": "b", "ms": 1}', '--detach'], dir)).stdout.trim();
    const b = (await runCli(['run', 'keyed', '{"customer": "b", "ms": 1}', '--detach'], dir)).stdout.trim();
    const shown = await runCli(['runs', 'show', b], dir);
    expect(shown.stdout.split('\n')[0]).toContain('queued');
    expect(shown.stdout).toContain('concurrency key: cust-b (limit 1): waiting for a concurrency slot: key cust-b, 1 active (limit 1)');
    // The KEYS column: this run's concurrency key, and the first test's idempotency and concurrency keys.
    const list = await runCli(['runs', 'list'], dir);
    expect(list.stdout).toMatch(/KEYS/);
    expect(list.stdout).toContain('queued on cust-b');
    expect(list.stdout).toContain('order-1, key cust-a');
    // Resumed here while a holds the slot and no worker runs a: the CLI says what it waits for.
    const resume = spawnCli(['runs', 'resume', b], dir);
    let err = '';
    resume.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    await until(() => err.includes('waiting for a concurrency slot'), 20_000, 'the resume to say b waits');
    expect(err).toMatch(/and no worker is running to finish one: start one with '(npx )?swarm worker', or resume the run that holds the slot/);
    expect((await runCli(['runs', 'cancel', a], dir)).code).toBe(0);
    // b got the slot a gave back: the same resume runs it to the end.
    expect(await exited(resume), err).toBe(0);
    expect(JSON.parse((await runCli(['runs', 'show', b, '--json'], dir)).stdout) as RunJson).toMatchObject({ status: 'completed', concurrency: { key: 'cust-b', state: 'released', active: 0 } });
  });
});

describe('concurrency keys: a worker killed with SIGKILL', () => {
  let dir: string;
  beforeAll(() => {
    dir = project();
  });
  afterAll(() => removeProject(dir));

  it('while key-limited runs are active: a new worker finishes every run, never two of one key at once, no step completed twice', async () => {
    const swarm = await openProject(dir);
    const ids: string[] = [];
    try {
      await swarm.registerAgents();
      await swarm.registerWorkflows();
      for (const customer of ['x', 'y', 'z']) for (let i = 0; i < 3; i++) ids.push(await swarm.startRun('keyed', { customer, ms: 400 }));
    } finally {
      await swarm.close();
    }
    const db = join(dir, '.swarm', 'swarm.db');
    const read = async <T>(fn: (s: ReturnType<typeof openSqliteStore>) => Promise<T>): Promise<T> => {
      const s = openSqliteStore({ path: db, durability: 'full' });
      try {
        return await fn(s);
      } finally {
        await s.close();
      }
    };
    const statuses = (): Promise<string[]> => read(async (s) => Promise.all(ids.map(async (id) => (await s.getRun(id))?.status ?? 'missing')));
    /** Runs waiting for a slot of their key (a run given a slot stays `queued` until its first step is claimed). */
    const waitingForSlot = (): Promise<number> => read(async (s) => [...(await s.runConcurrency(ids)).values()].filter((c) => c.state === 'queued').length);

    const first = spawnCli(['worker', '--concurrency', '8'], dir);
    // Kill it once every key has an active run with a step under way and later runs still queue.
    await until(async () => (await statuses()).filter((s) => s === 'running').length === 3 && (await waitingForSlot()) >= 3, 20_000, 'a run of each key to be running, others waiting');
    first.kill('SIGKILL');
    await exited(first);
    expect(await waitingForSlot()).toBeGreaterThan(0);
    expect((await statuses()).filter((s) => s === 'completed').length).toBeLessThan(ids.length);

    const second = spawnCli(['worker', '--concurrency', '8'], dir);
    try {
      await until(async () => (await statuses()).every((s) => s === 'completed'), 30_000, 'every run to complete');
    } finally {
      second.kill('SIGTERM');
      await exited(second);
    }

    await read(async (s) => {
      const keyed = await s.runConcurrency(ids);
      const spans = new Map<string, Array<[number, number]>>();
      for (const id of ids) {
        const c = keyed.get(id);
        expect(c, `run ${id}`).toMatchObject({ state: 'released', active: 0 });
        const events = await s.getEvents(id);
        const completed = events.filter((e) => e.type === 'STEP_COMPLETED').map((e) => e.step_id);
        expect(completed.sort(), `steps of run ${id} completed once each`).toEqual(['first', 'second']);
        const start = events.find((e) => e.type === 'STEP_STARTED')?.at as number;
        const end = events.find((e) => e.type === 'RUN_COMPLETED')?.at as number;
        spans.set(c!.key, [...(spans.get(c!.key) ?? []), [start, end]]);
      }
      expect([...spans.keys()].sort()).toEqual(['cust-x', 'cust-y', 'cust-z']);
      // Between its first step's start and its completion, no other run of the key was in that span.
      for (const [key, list] of spans) {
        for (const [t] of list) expect(list.filter(([a, b]) => a <= t && t < b).length, `runs of ${key} active at ${t}`).toBe(1);
      }
    });
  });
});
