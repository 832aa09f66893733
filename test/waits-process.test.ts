/**
 * Sleeps and waits across a real crash, with real processes on one SQLite file: a `swarm worker` is
 * killed with SIGKILL while runs sleep, wait for an event and wait for a signal; events and signals
 * arrive through the CLI while no worker runs; a new worker finishes everything. Every run finishes
 * exactly once, every step after a wait runs once, and each wait took exactly one event or signal.
 * Also `swarm runs signal`'s output and exit codes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../src/core/events.js';
import { deriveKey, fileKeySource, KeyPurpose } from '../src/secrets/master-key.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import { cliEnv, exited, registerPackages, removeProject, runCli, spawnCli, tempProject, until, writeAgent, writeWorkflow } from './helpers/project.js';

const ENV = { SWARM_POLL_INTERVAL_MS: '200' };
let dir: string;
let log: string;

beforeAll(() => {
  dir = tempProject('name: waits\nsandbox: none\n');
  log = join(dir, 'effects.log');
  // A node agent that appends its idempotency key to a log file: side effects counted exactly.
  writeAgent(dir, 'effect', 'name: effect\nversion: 1.0.0\nruntime: { type: node, entry: main.js }\ninputs:\n  - { name: log, type: string, required: true }\n', {
    'main.js': `const fs = require('fs');
const [i, o] = process.argv.slice(2);
fs.appendFileSync(JSON.parse(fs.readFileSync(i, 'utf8')).log, process.env.SWARM_IDEMPOTENCY_KEY + '\\n');
fs.writeFileSync(o, '{}');
`,
  });
  const effect = '  - { id: effect, agent: effect, depends_on: w, inputs: { log: "${trigger.log}" } }\n';
  writeWorkflow(dir, 'nap', `name: nap\nversion: 1.0.0\nsteps:\n  - { id: w, kind: sleep, for: 6s }\n${effect}`);
  writeWorkflow(dir, 'order', `name: order\nversion: 1.0.0\nsteps:\n  - { id: w, kind: wait, event: order.paid, match: "event.data.order == trigger.order" }\n${effect}`);
  writeWorkflow(dir, 'sig', `name: sig\nversion: 1.0.0\nsteps:\n  - { id: w, kind: wait, signal: go }\n${effect}`);
});

afterAll(() => removeProject(dir));

async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const store = openSqliteStore({ path: join(dir, '.swarm', 'swarm.db'), durability: 'full' });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function detach(workflow: string, input: Record<string, unknown>): Promise<string> {
  const r = await runCli(['run', workflow, JSON.stringify({ log, ...input }), '--detach'], dir, ENV);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe('sleep and wait across SIGKILL', () => {
  it('a worker killed while runs sleep and wait: after a restart every run finishes once, each wait took one event or signal', async () => {
    expect((await registerPackages(dir, cliEnv(dir, ENV))).length).toBeGreaterThanOrEqual(2);
    const worker = spawnCli(['worker'], dir, ENV);
    const orders = [await detach('order', { order: 1 }), await detach('order', { order: 2 }), await detach('order', { order: 3 })];
    const sigs = [await detach('sig', {}), await detach('sig', {})];
    // The sleeps last: they must still be sleeping when the worker dies.
    const naps = [await detach('nap', {}), await detach('nap', {})];
    const all = [...naps, ...orders, ...sigs];
    // Every run parked by the worker: its first step waiting, no lease held.
    await until(() => withStore(async (s) => (await Promise.all(all.map((id) => s.getSteps(id)))).every((steps) => steps[0]?.status === 'waiting' && steps[0].lease_owner === null)), 30_000, 'all runs parked');
    // One order is paid, and one signal sent, while the worker is alive.
    expect((await runCli(['events', 'emit', 'order.paid', '{"order": 1}', '--id', 'pay-1'], dir, ENV)).code).toBe(0);
    expect((await runCli(['runs', 'signal', sigs[0] as string, 'go', '{"n": 0}'], dir, ENV)).code).toBe(0);
    // Those two finish; nothing else runs (no step in flight): the kill finds runs only sleeping and waiting.
    await until(() => withStore(async (s) => (await s.getRun(orders[0] as string))?.status === 'completed' && (await s.getRun(sigs[0] as string))?.status === 'completed'), 30_000, 'the first two runs');
    const asleep = await withStore(async (s) => Promise.all([...naps, ...orders.slice(1), sigs[1] as string].map(async (id) => (await s.getSteps(id))[0]?.status)));
    expect(asleep.every((st) => st === 'waiting')).toBe(true);
    worker.kill('SIGKILL');
    await exited(worker);

    // No worker: events and signals are recorded and delivered all the same; a repeated event id delivers nothing more.
    expect((await runCli(['events', 'emit', 'order.paid', '{"order": 2}', '--id', 'pay-2'], dir, ENV)).code).toBe(0);
    expect((await runCli(['events', 'emit', 'order.paid', '{"order": 2}', '--id', 'pay-2'], dir, ENV)).code).toBe(0);
    expect((await runCli(['events', 'emit', 'order.paid', '{"order": 3}', '--id', 'pay-3'], dir, ENV)).code).toBe(0);
    const sent = await runCli(['runs', 'signal', sigs[1] as string, 'go', '{"n": 1}', '--json'], dir, ENV);
    expect(JSON.parse(sent.stdout)).toMatchObject({ run_id: sigs[1], name: 'go', delivered_to: 'w' });
    // A second signal to the same run is kept: its wait already took one.
    expect((await runCli(['runs', 'signal', sigs[1] as string, 'go', '{"n": 2}'], dir, ENV)).stdout).toContain('kept until a wait step takes it');

    const restarted = spawnCli(['worker'], dir, ENV);
    try {
      await until(() => withStore(async (s) => (await Promise.all(all.map((id) => s.getRun(id)))).every((r) => r?.status === 'completed')), 45_000, 'all runs completed');
    } finally {
      restarted.kill('SIGTERM');
      await exited(restarted);
    }

    const keys = readFileSync(log, 'utf8').trim().split('\n');
    expect(keys.sort()).toEqual(all.map((id) => `${id}/effect`).sort());
    await withStore(async (store) => {
      const chainKey = deriveKey(fileKeySource(join(dir, '.swarm', 'master.key')).load(), KeyPurpose.EVENT_CHAIN);
      for (const id of all) {
        const events = await store.getEvents(id);
        expect(verifyChain(chainKey, events)).toEqual([]);
        expect(events.filter((e) => e.type === 'RUN_COMPLETED')).toHaveLength(1);
        expect(events.filter((e) => e.type === 'WAIT_RESOLVED')).toHaveLength(1);
        expect(events.filter((e) => e.type === 'STEP_COMPLETED' && e.step_id === 'effect')).toHaveLength(1);
      }
      const took = await Promise.all(orders.map((id) => store.getStepWait(id, 'w')));
      expect(took.map((w) => [w?.status, w?.event_id])).toEqual([['delivered', 'pay-1'], ['delivered', 'pay-2'], ['delivered', 'pay-3']]);
      expect((await store.getSteps(orders[1] as string))[0]?.outputs).toEqual({ order: 2 });
      for (const id of naps) expect(await store.getStepWait(id, 'w')).toMatchObject({ status: 'due' });
      expect((await store.listRunSignals(sigs[0] as string)).map((s) => s.consumed_by)).toEqual(['w']);
      expect((await store.listRunSignals(sigs[1] as string)).map((s) => s.consumed_by)).toEqual(['w', null]);
      expect((await store.getSteps(sigs[1] as string))[0]?.outputs).toEqual({ n: 1 });
    });
  });

  it('swarm runs signal: exit 2 for a finished run, data that is not an object, or a bad name', async () => {
    const [done] = (await withStore((s) => s.listRuns({ workflow: 'sig' }))).map((r) => r.id);
    expect(existsSync(log)).toBe(true);
    const finished = await runCli(['runs', 'signal', done as string, 'go', '{}'], dir, ENV);
    expect(finished.code).toBe(2);
    expect(finished.stderr).toContain('takes no more signals');
    const notObject = await runCli(['runs', 'signal', done as string, 'go', '[1]'], dir, ENV);
    expect(notObject.code).toBe(2);
    expect(notObject.stderr).toContain('signal data must be a JSON object');
    const badName = await runCli(['runs', 'signal', done as string, 'no good', '{}'], dir, ENV);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain('is not valid');
  });

  it('swarm run of a workflow that waits for an event returns (exit 0) naming what it waits for and how to send it', async () => {
    const r = await runCli(['run', 'order', JSON.stringify({ log, order: 99 })], dir, ENV);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("step 'w' is waiting for event order.paid");
    expect(r.stderr).toContain('runs signal');
    expect(r.stderr).not.toContain('approve with');
  });
});
