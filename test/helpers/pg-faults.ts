/**
 * What the PostgreSQL fault tests share (test/postgres-chaos.test.ts, test/postgres-faults.test.ts):
 * a project whose steps record a side effect in the runs' own database, `swarm worker` processes,
 * and checks on what the runs did. Each file's server is its own restartable one
 * (`restartablePgTestServer`, started by the file before its tests).
 */
import { type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { Swarm } from '../../src/swarm.js';
import { restartablePgTestServer, stopPgTestServer, type RestartablePgTestServer } from './pg.js';
import { ROOT, spawnCli, tempProject, until, writeAgent, writeWorkflow } from './project.js';

/**
 * The agent's side effect: one row per attempt in `chaos.side_effects`, keyed by
 * SWARM_IDEMPOTENCY_KEY, in the database the worker uses (the agent declares CHAOS_DATABASE_URL
 * from a secret each worker is given: agents do not inherit the worker's environment). It tries
 * again while the server is unreachable (a restart), as an agent talking to a flaky service would.
 * `psql` from bash when it is installed (a few ms of CPU per step); otherwise node with the `pg`
 * package (about 0.1 s per step).
 */
/**
 * The restartable PostgreSQL server of a test file: started before its tests, stopped after them.
 *
 * @example
 *   const server = restartableServerOfFile();
 *   it('…', async () => { const url = await server().createDatabase(); });
 */
export function restartableServerOfFile(): () => RestartablePgTestServer {
  let server: RestartablePgTestServer | undefined;
  beforeAll(async () => {
    server = await restartablePgTestServer();
  });
  afterAll(async () => {
    await stopPgTestServer();
  });
  return () => {
    if (!server) throw new Error('the PostgreSQL server is started in beforeAll');
    return server;
  };
}

export const PSQL = (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, 'psql')));

const BASH_AGENT = `#!/usr/bin/env bash
for i in $(seq 1 150); do
  if PGCONNECT_TIMEOUT=2 psql -X -q -v ON_ERROR_STOP=1 "$CHAOS_DATABASE_URL" \\
       -c "INSERT INTO chaos.side_effects (key, attempt, pid) VALUES ('$SWARM_IDEMPOTENCY_KEY', $SWARM_ATTEMPT, $$)" >/dev/null; then
    echo '{"done": true}' > "$2"
    exit 0
  fi
  sleep 0.2
done
exit 1
`;

const NODE_AGENT = `const fs = require('fs');
const { Client } = require(${JSON.stringify(join(ROOT, 'node_modules', 'pg'))});
const out = process.argv[3];
(async () => {
  for (let i = 0; i < 150; i++) {
    const c = new Client({ connectionString: process.env.CHAOS_DATABASE_URL, connectionTimeoutMillis: 2000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('INSERT INTO chaos.side_effects (key, attempt, pid) VALUES ($1, $2, $3)', [process.env.SWARM_IDEMPOTENCY_KEY, Number(process.env.SWARM_ATTEMPT), process.pid]);
      await c.end();
      fs.writeFileSync(out, '{"done": true}');
      return;
    } catch {
      await c.end().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  process.exit(1);
})();
`;

/** A project with the side-effect agent and a workflow `chain` of `steps` steps, each after the one before. */
/** `firstReadsTrigger`: the first step's condition reads the run's trigger data (a read of the store while it is prepared). */
export function project(steps: number, firstReadsTrigger = false): string {
  // The node agent loads pg from this repository's node_modules: it runs unsandboxed.
  const dir = tempProject('name: test\nsandbox: none\n');
  writeAgent(
    dir,
    'effect',
    `name: effect
version: 1.0.0
runtime: { type: ${PSQL ? 'bash, entry: run.sh' : 'node, entry: main.js'}, timeout_seconds: 60 }
outputs:
  - { name: done, type: boolean }
env:
  CHAOS_DATABASE_URL: "\${secrets.CHAOS_DATABASE_URL}"
`,
    PSQL ? { 'run.sh': BASH_AGENT } : { 'main.js': NODE_AGENT },
  );
  const ids = Array.from({ length: steps }, (_, i) => `s${i + 1}`);
  const body = ids
    .map((s, i) => `  - id: ${s}\n    agent: effect@1.0.0${i ? `\n    depends_on: [${ids[i - 1]}]` : firstReadsTrigger ? '\n    condition: "trigger.skip != true"' : ''}`)
    .join('\n');
  writeWorkflow(dir, 'chain', `name: chain\nversion: 1.0.0\nsteps:\n${body}\n`);
  return dir;
}

/** Create the side-effect table and register the project's agent and workflow. */
export async function prepare(dir: string, url: string): Promise<void> {
  const server = await restartablePgTestServer();
  // In a schema of its own: Swarm refuses a schema holding tables that are not its own.
  await server.query(url, `CREATE SCHEMA chaos; CREATE TABLE chaos.side_effects (key text NOT NULL, attempt int NOT NULL, pid int, at timestamptz NOT NULL DEFAULT clock_timestamp())`);
  const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_DATABASE_URL: url } });
  try {
    for (const r of [...(await swarm.registerAgents()), ...(await swarm.registerWorkflows())]) if ('error' in r) throw r.error;
  } finally {
    await swarm.close();
  }
}

/** Start `runs` runs of `chain` through the library. */
export async function startRuns(dir: string, url: string, runs: number): Promise<string[]> {
  const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_DATABASE_URL: url } });
  try {
    const ids: string[] = [];
    for (let i = 0; i < runs; i++) ids.push(await swarm.startRun('chain', { n: i }));
    return ids;
  } finally {
    await swarm.close();
  }
}

export async function submit(dir: string, url: string, runs: number): Promise<string[]> {
  await prepare(dir, url);
  return startRuns(dir, url, runs);
}

/** A `swarm worker` process and everything it wrote to stderr. */
export interface WorkerProcess {
  child: ChildProcess;
  stderr: string;
  /** Resolves when the process has exited and its output is read. */
  closed: Promise<number | null>;
}

export function startWorker(dir: string, env: Record<string, string>): WorkerProcess {
  const child = spawnCli(['worker', '--concurrency', '4', '--grace', '5'], dir, { ...env, ...(env.SWARM_DATABASE_URL ? { SWARM_SECRET_CHAOS_DATABASE_URL: env.SWARM_DATABASE_URL } : {}) });
  const w: WorkerProcess = { child, stderr: '', closed: new Promise((res) => child.once('close', (code) => res(code))) };
  child.stderr?.on('data', (c: Buffer) => (w.stderr += c.toString()));
  child.stdout?.resume();
  return w;
}

export async function count(url: string, sql: string, values?: unknown[]): Promise<number> {
  const server = await restartablePgTestServer();
  return Number((await server.query(url, sql, values)).rows[0]?.n ?? 0);
}

export async function runStatuses(url: string): Promise<Record<string, number>> {
  const server = await restartablePgTestServer();
  const r = await server.query(url, `SELECT status, count(*)::int AS n FROM workflow_runs GROUP BY status`);
  return Object.fromEntries((r.rows as Array<{ status: string; n: number }>).map((x) => [x.status, x.n]));
}

/** Fail at once if a worker process has exited (crashed), with what it wrote to stderr. */
export function expectAlive(workers: WorkerProcess[]): void {
  for (const w of workers) {
    if (w.child.exitCode !== null || w.child.signalCode !== null) {
      throw new Error(`worker process ${w.child.pid} exited (code ${w.child.exitCode}, signal ${w.child.signalCode}); its stderr:\n${w.stderr.split('\n').filter((l) => !/^run \S+ /.test(l)).join('\n')}`);
    }
  }
}

/**
 * Wait until every run is finished (fail at once if one failed); returns the statuses. The bound is on
 * progress, not on the total: it fails when no run has completed for `stallMs` (a stuck run), so a
 * slow, loaded machine is not mistaken for a lost run.
 */
export async function allFinished(url: string, runs: number, stallMs: number, note = '', workers: WorkerProcess[] = []): Promise<Record<string, number>> {
  const server = await restartablePgTestServer();
  let last: Record<string, number> = {};
  let progress = -1;
  let progressAt = Date.now();
  try {
    await until(
      async () => {
        expectAlive(workers);
        last = await runStatuses(url);
        if (last.failed || last.cancelled) throw new Error('a run did not complete');
        const done = last.completed ?? 0;
        if (done !== progress) {
          progress = done;
          progressAt = Date.now();
        } else if (Date.now() - progressAt > stallMs) {
          throw new Error(`no run completed in the last ${stallMs} ms`);
        }
        return done === runs;
      },
      // The overall bound only guards against a livelock; the stall check above is the real one.
      stallMs * 6,
      `all ${runs} runs to complete`,
    );
  } catch (e) {
    const failed = (await server.query(url, `SELECT run_id, step_id, attempt, error FROM step_executions WHERE status = 'failed' LIMIT 5`)).rows;
    throw new Error(`${(e as Error).message}${note ? ` (${note})` : ''}; runs by status: ${JSON.stringify(last)}; failed steps: ${JSON.stringify(failed)}`, { cause: e });
  }
  return last;
}

export interface Started {
  run_id: string;
  step_id: string;
  attempt: number;
  worker: string;
  reclaimed_from?: string;
}

/** Every STEP_STARTED event, by `run/step` key, in order. */
export async function startedByKey(url: string): Promise<Map<string, Started[]>> {
  const server = await restartablePgTestServer();
  const r = await server.query(url, `SELECT run_id, step_id, data FROM events WHERE type = 'STEP_STARTED' ORDER BY run_id, seq`);
  const out = new Map<string, Started[]>();
  for (const row of r.rows as Array<{ run_id: string; step_id: string; data: string }>) {
    const d = JSON.parse(row.data) as { attempt: number; worker: string; reclaimed_from?: string };
    const k = `${row.run_id}/${row.step_id}`;
    out.set(k, [...(out.get(k) ?? []), { run_id: row.run_id, step_id: row.step_id, ...d }]);
  }
  return out;
}

/** Each run completed every step exactly once, and its event chain and checkpoints verify. */
export async function expectCompletedOnceAndVerified(dir: string, url: string, runIds: string[], steps: number): Promise<void> {
  const server = await restartablePgTestServer();
  const completed = await server.query(url, `SELECT run_id, step_id, count(*)::int AS n FROM events WHERE type = 'STEP_COMPLETED' GROUP BY run_id, step_id`);
  expect(completed.rows).toHaveLength(runIds.length * steps);
  const twice = (completed.rows as Array<{ run_id: string; step_id: string; n: number }>).filter((r) => r.n !== 1);
  expect(twice, 'steps completed more than once').toEqual([]);
  const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_DATABASE_URL: url } });
  try {
    for (const id of runIds) {
      const events = await swarm.store.getEvents(id);
      expect(events.filter((e) => e.type === 'RUN_COMPLETED'), `run ${id} completed once`).toHaveLength(1);
      expect((await swarm.verify(id)).problems, `run ${id} verifies (chain, head, checkpoints)`).toEqual([]);
    }
  } finally {
    await swarm.close();
  }
}

/** SIGTERM every worker: each exits 0 (graceful stop). */
export async function stopAll(workers: WorkerProcess[]): Promise<Array<number | null>> {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  return Promise.all(workers.map((w) => w.closed));
}

