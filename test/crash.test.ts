/**
 * Durability under real faults: the process running a workflow is killed with SIGKILL (mid-step, and
 * right after a step's commit), then another process resumes. Nothing completed runs twice; the
 * interrupted step runs again with the same idempotency key; the event chain verifies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyChain } from '../src/core/events.js';
import { deriveKey, fileKeySource, KeyPurpose } from '../src/secrets/master-key.js';
import { pidAlive } from '../src/engine/reaper.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { cliEnv, exited, registerPackages, removeProject, runCli, spawnCli, tempProject, until, writeAgent, writeWorkflow } from './helpers/project.js';

const STEPS = ['s1', 's2', 's3', 's4', 's5'];

/** A node agent that records its side effects (start/done lines keyed by idempotency key) in a file. */
function project(): string {
  // The agent appends to a log file of the test's: it runs unsandboxed (the sandbox would hide the file).
  const dir = tempProject('name: test\nsandbox: none\n');
  writeAgent(
    dir,
    'effect',
    `name: effect
version: 1.0.0
runtime: { type: node, entry: main.js, timeout_seconds: 60 }
inputs:
  - { name: log, type: string, required: true }
  - { name: slow_first_attempt_ms, type: integer, default: 0 }
outputs:
  - { name: step, type: string }
`,
    {
      'main.js': `const fs = require('fs');
const [i, o] = process.argv.slice(2);
const input = JSON.parse(fs.readFileSync(i, 'utf8'));
const key = process.env.SWARM_IDEMPOTENCY_KEY, attempt = process.env.SWARM_ATTEMPT;
fs.appendFileSync(input.log, 'start ' + key + ' ' + attempt + ' ' + process.pid + '\\n');
const ms = attempt === '1' ? input.slow_first_attempt_ms : 20;
setTimeout(() => {
  fs.appendFileSync(input.log, 'done ' + key + ' ' + attempt + '\\n');
  fs.writeFileSync(o, JSON.stringify({ step: process.env.SWARM_STEP_ID }));
}, ms);
`,
    },
  );
  const steps = (s3Ms: number): string =>
    STEPS.map(
      (s, i) => `  - id: ${s}\n    agent: effect@1.0.0\n    inputs:\n      log: "\${trigger.log}"\n      slow_first_attempt_ms: ${s === 's3' ? s3Ms : 20}${i ? `\n    depends_on: [${STEPS[i - 1]}]` : ''}`,
    ).join('\n');
  writeWorkflow(dir, 'chain5', `name: chain5\nversion: 1.0.0\nsteps:\n${steps(4000)}\n`);
  // The same chain whose s3 first attempt sleeps 50 s (under its 60 s timeout): an orphaned attempt
  // that must still be running when the next process, started seconds later on a busy machine,
  // reaps its dead worker.
  writeWorkflow(dir, 'chain5-long', `name: chain5-long\nversion: 1.0.0\nsteps:\n${steps(50_000)}\n`);
  return dir;
}

interface Effects {
  starts: Map<string, Array<{ key: string; attempt: number; pid: number }>>;
  dones: Map<string, number>;
}

function effects(file: string): Effects {
  const starts = new Map<string, Array<{ key: string; attempt: number; pid: number }>>();
  const dones = new Map<string, number>();
  if (!existsSync(file)) return { starts, dones };
  for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
    const [kind, key = '', attempt, pid] = line.split(' ');
    const step = key.split('/').pop() ?? '';
    if (kind === 'start') starts.set(step, [...(starts.get(step) ?? []), { key, attempt: Number(attempt), pid: Number(pid) }]);
    if (kind === 'done') dones.set(step, (dones.get(step) ?? 0) + 1);
  }
  return { starts, dones };
}

async function runState(dir: string, runId: string): Promise<{ status: string; completedEvents: Map<string, number>; started: Array<Record<string, unknown>> }> {
  const store = openSqliteStore({ path: join(dir, '.swarm', 'swarm.db'), durability: 'full' });
  try {
    const run = await store.getRun(runId);
    const events = await store.getEvents(runId);
    const completedEvents = new Map<string, number>();
    for (const e of events) if (e.type === 'STEP_COMPLETED' && e.step_id) completedEvents.set(e.step_id, (completedEvents.get(e.step_id) ?? 0) + 1);
    const started = events.filter((e) => e.type === 'STEP_STARTED').map((e) => ({ step: e.step_id, ...e.data }));
    return { status: run?.status ?? 'missing', completedEvents, started };
  } finally {
    await store.close();
  }
}

async function onlyRunId(dir: string): Promise<string> {
  const r = await runCli(['runs', 'list', '--json'], dir);
  const runs = JSON.parse(r.stdout) as Array<{ id: string }>;
  expect(runs).toHaveLength(1);
  return runs[0]?.id as string;
}

describe('crash safety (SIGKILL)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = project();
    expect(await registerPackages(dir, cliEnv(dir))).toEqual(['effect', 'chain5', 'chain5-long']);
  });
  afterAll(() => removeProject(dir));

  it('kill -9 mid-step, then `swarm runs resume`: the interrupted step reruns with the same key, nothing else does', async () => {
    const log = join(dir, 'effects-mid.log');
    const child = spawnCli(['run', 'chain5-long', JSON.stringify({ log })], dir);
    await until(() => effects(log).starts.get('s3')?.length, 20_000, 's3 to start');
    child.kill('SIGKILL');
    await exited(child);
    const runId = await onlyRunId(dir);
    const orphan = effects(log).starts.get('s3')?.[0]?.pid as number;
    expect((await runState(dir, runId)).status).toBe('running');

    const resumed = await runCli(['runs', 'resume', runId], dir);
    expect(resumed.stderr).toContain('completed');
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toEqual({ s5: { step: 's5' } });

    const state = await runState(dir, runId);
    expect(state.status).toBe('completed');
    for (const s of STEPS) expect(state.completedEvents.get(s), `${s} completed once`).toBe(1);
    const fx = effects(log);
    for (const s of ['s1', 's2', 's4', 's5']) {
      expect(fx.starts.get(s)?.length, `${s} executed once`).toBe(1);
      expect(fx.dones.get(s), `${s} side effect once`).toBe(1);
    }
    const s3 = fx.starts.get('s3') ?? [];
    expect(s3.map((x) => x.attempt)).toEqual([1, 2]);
    expect(new Set(s3.map((x) => x.key))).toEqual(new Set([`${runId}/s3`]));
    // The orphaned first attempt was stopped when its dead worker was reaped: it never finished.
    expect(fx.dones.get('s3')).toBe(1);
    expect(pidAlive(orphan)).toBe(false);
    const reclaimed = state.started.find((e) => e.step === 's3' && e.attempt === 2);
    expect(reclaimed?.reclaimed_from).toBeTruthy();
    expect((await runCli(['runs', 'verify', runId], dir)).code).toBe(0);
  });

  it('kill -9 right after a step commits, then `swarm worker` finishes the run; SIGTERM stops the worker cleanly', async () => {
    const log = join(dir, 'effects-commit.log');
    await runCli(['runs', 'list'], dir);
    const before = new Set((JSON.parse((await runCli(['runs', 'list', '--json'], dir)).stdout) as Array<{ id: string }>).map((r) => r.id));
    const child = spawnCli(['run', 'chain5', JSON.stringify({ log })], dir, { SWARM_FAULT: 'after-step-commit:s2' });
    await exited(child);
    expect(child.signalCode).toBe('SIGKILL');
    const runs = JSON.parse((await runCli(['runs', 'list', '--json'], dir)).stdout) as Array<{ id: string }>;
    const runId = runs.map((r) => r.id).find((id) => !before.has(id)) as string;
    const mid = await runState(dir, runId);
    expect(mid.status).toBe('running');
    expect([...mid.completedEvents.keys()]).toEqual(['s1', 's2']);

    const worker = spawnCli(['worker', '--concurrency', '4'], dir);
    let workerErr = '';
    worker.stderr?.on('data', (c: Buffer) => (workerErr += c.toString()));
    await until(async () => (await runState(dir, runId)).status === 'completed', 30_000, 'the worker to finish the run');
    worker.kill('SIGTERM');
    expect(await exited(worker)).toBe(0);
    expect(workerErr).toMatch(/released 1 lease\(s\) of 1 dead worker/);

    const state = await runState(dir, runId);
    for (const s of STEPS) expect(state.completedEvents.get(s), `${s} completed once`).toBe(1);
    const fx = effects(log);
    for (const s of STEPS) {
      expect(fx.dones.get(s), `${s} side effect once`).toBe(1);
      expect(new Set((fx.starts.get(s) ?? []).map((x) => x.key))).toEqual(new Set([`${runId}/${s}`]));
    }
    // s1 and s2 committed before the kill: never run again.
    expect(fx.starts.get('s1')).toHaveLength(1);
    expect(fx.starts.get('s2')).toHaveLength(1);
    // s3 was claimed in the same commit by the process that died; the worker took it over.
    const s3Claims = state.started.filter((e) => e.step === 's3');
    expect(s3Claims.map((e) => e.attempt)).toEqual([1, 2]);
    expect(s3Claims[1]?.reclaimed_from).toBe(s3Claims[0]?.worker);
    expect((await runCli(['runs', 'verify', runId], dir)).code).toBe(0);
  });

  it('SIGTERM on a worker releases its in-flight step within the grace period; another process resumes it', async () => {
    const log = join(dir, 'effects-term.log');
    const worker = spawnCli(['worker', '--grace', '0.3'], dir);
    const submitted = await runCli(['run', 'chain5', JSON.stringify({ log }), '--detach'], dir);
    expect(submitted.code).toBe(0);
    const runId = submitted.stdout.trim();
    await until(() => effects(log).starts.get('s3')?.length, 20_000, 's3 to start');
    worker.kill('SIGTERM');
    expect(await exited(worker)).toBe(0);
    const events = JSON.parse(`[${(await runCli(['runs', 'events', runId, '--json'], dir)).stdout.trim().split('\n').join(',')}]`) as Array<{ type: string; step: string }>;
    expect(events.filter((e) => e.type === 'STEP_RELEASED').map((e) => e.step)).toEqual(['s3']);
    const resumed = await runCli(['runs', 'resume', runId], dir);
    expect(resumed.code).toBe(0);
    const state = await runState(dir, runId);
    for (const s of STEPS) expect(state.completedEvents.get(s)).toBe(1);
    expect(effects(log).dones.get('s3')).toBe(1);
  });

  it('an attached `swarm run` takes the run over when the worker executing it is killed', async () => {
    const log = join(dir, 'effects-takeover.log');
    const worker = spawnCli(['worker'], dir);
    await until(async () => (await runCli(['runs', 'list', '--json'], dir)).code === 0 && worker.pid, 10_000, 'worker');
    await new Promise((r) => setTimeout(r, 500));
    const attached = runCli(['run', 'chain5', JSON.stringify({ log }), '--json'], dir);
    await until(() => effects(log).starts.get('s3')?.length, 20_000, 's3 to start in the worker');
    worker.kill('SIGKILL');
    const r = await attached;
    expect(r.stderr).toContain('continuing the run here');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { run_id: string; status: string };
    expect(doc.status).toBe('completed');
    const state = await runState(dir, doc.run_id);
    for (const s of STEPS) expect(state.completedEvents.get(s)).toBe(1);
    expect(effects(log).starts.get('s3')?.map((x) => x.attempt)).toEqual([1, 2]);
  });

  it('two workers and several CLI processes share one SQLite file: every step runs exactly once', async () => {
    const log = join(dir, 'effects-shared.log');
    const workers = [spawnCli(['worker', '--concurrency', '8'], dir), spawnCli(['worker', '--concurrency', '8'], dir)];
    await until(async () => (await runCli(['runs', 'list'], dir)).code === 0 && workers.every((w) => w.pid), 10_000, 'workers');
    const submits = await Promise.all(Array.from({ length: 8 }, () => runCli(['run', 'chain5', JSON.stringify({ log }), '--detach'], dir)));
    const ids = submits.map((s) => s.stdout.trim());
    expect(submits.every((s) => s.code === 0)).toBe(true);
    // An attached `swarm run` while workers are alive only watches: a worker executes it.
    const attached = await runCli(['run', 'chain5', JSON.stringify({ log }), '--json'], dir);
    expect(attached.code).toBe(0);
    const doc = JSON.parse(attached.stdout) as { run_id: string; status: string };
    expect(doc.status).toBe('completed');
    ids.push(doc.run_id);
    await until(async () => (await Promise.all(ids.map((id) => runState(dir, id)))).every((s) => s.status === 'completed'), 60_000, 'all runs');
    const workerIds = new Set<string>();
    const store = openSqliteStore({ path: join(dir, '.swarm', 'swarm.db'), durability: 'full' });
    const chainKey = deriveKey(fileKeySource(join(dir, '.swarm', 'master.key')).load(), KeyPurpose.EVENT_CHAIN);
    try {
      for (const id of ids) {
        const state = await runState(dir, id);
        for (const s of STEPS) expect(state.completedEvents.get(s)).toBe(1);
        for (const e of state.started) workerIds.add(String(e.worker));
        expect(verifyChain(chainKey, await store.getEvents(id))).toEqual([]);
      }
    } finally {
      await store.close();
    }
    const workerPids = workers.map((w) => String(w.pid));
    for (const w of workerIds) expect(workerPids.some((p) => w.includes(`-${p}-`))).toBe(true);
    const fx = effects(log);
    for (const id of ids) for (const s of STEPS) expect(fx.starts.get(s)?.filter((x) => x.key === `${id}/${s}`).length).toBe(1);
    for (const w of workers) w.kill('SIGTERM');
    expect(await Promise.all(workers.map(exited))).toEqual([0, 0]);
  });
});
