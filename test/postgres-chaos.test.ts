/**
 * Faults on the PostgreSQL backend, with real processes: worker processes killed with SIGKILL at
 * random while hundreds of runs progress; the PostgreSQL server itself shut down (fast) and started
 * again under load; and, through a TCP proxy that places a fault at an exact point of the protocol,
 * an outage longer than the store's own retries while a step is being prepared, and a connection
 * terminated by a shutdown just as the worker sets it up. Each step's agent records a side effect
 * (a row keyed by the step's idempotency key) in the runs' own database, so that repeated work is
 * visible.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RUN_COLUMNS } from '../src/store/rows.js';
import { Swarm } from '../src/swarm.js';
import { restartablePgTestServer, stopPgTestServer, type RestartablePgTestServer } from './helpers/pg.js';
import { ROOT, removeProject, runCli, spawnCli, tempProject, until, writeAgent, writeWorkflow } from './helpers/project.js';

let server: RestartablePgTestServer;
beforeAll(async () => {
  server = await restartablePgTestServer();
});
afterAll(async () => {
  await stopPgTestServer();
});

/**
 * The agent's side effect: one row per attempt in `chaos.side_effects`, keyed by
 * SWARM_IDEMPOTENCY_KEY, in the database the worker uses (the agent declares CHAOS_DATABASE_URL
 * from a secret each worker is given: agents do not inherit the worker's environment). It tries
 * again while the server is unreachable (a restart), as an agent talking to a flaky service would.
 * `psql` from bash when it is installed (a few ms of CPU per step); otherwise node with the `pg`
 * package (about 0.1 s per step).
 */
const PSQL = (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, 'psql')));

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
function project(steps: number, firstReadsTrigger = false): string {
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
async function prepare(dir: string, url: string): Promise<void> {
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
async function startRuns(dir: string, url: string, runs: number): Promise<string[]> {
  const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_DATABASE_URL: url } });
  try {
    const ids: string[] = [];
    for (let i = 0; i < runs; i++) ids.push(await swarm.startRun('chain', { n: i }));
    return ids;
  } finally {
    await swarm.close();
  }
}

async function submit(dir: string, url: string, runs: number): Promise<string[]> {
  await prepare(dir, url);
  return startRuns(dir, url, runs);
}

/** A `swarm worker` process and everything it wrote to stderr. */
interface WorkerProcess {
  child: ChildProcess;
  stderr: string;
  /** Resolves when the process has exited and its output is read. */
  closed: Promise<number | null>;
}

function startWorker(dir: string, env: Record<string, string>): WorkerProcess {
  const child = spawnCli(['worker', '--concurrency', '4', '--grace', '5'], dir, { ...env, ...(env.SWARM_DATABASE_URL ? { SWARM_SECRET_CHAOS_DATABASE_URL: env.SWARM_DATABASE_URL } : {}) });
  const w: WorkerProcess = { child, stderr: '', closed: new Promise((res) => child.once('close', (code) => res(code))) };
  child.stderr?.on('data', (c: Buffer) => (w.stderr += c.toString()));
  child.stdout?.resume();
  return w;
}

async function count(url: string, sql: string, values?: unknown[]): Promise<number> {
  return Number((await server.query(url, sql, values)).rows[0]?.n ?? 0);
}

async function runStatuses(url: string): Promise<Record<string, number>> {
  const r = await server.query(url, `SELECT status, count(*)::int AS n FROM workflow_runs GROUP BY status`);
  return Object.fromEntries((r.rows as Array<{ status: string; n: number }>).map((x) => [x.status, x.n]));
}

/** Fail at once if a worker process has exited (crashed), with what it wrote to stderr. */
function expectAlive(workers: WorkerProcess[]): void {
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
async function allFinished(url: string, runs: number, stallMs: number, note = '', workers: WorkerProcess[] = []): Promise<Record<string, number>> {
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

interface Started {
  run_id: string;
  step_id: string;
  attempt: number;
  worker: string;
  reclaimed_from?: string;
}

/** Every STEP_STARTED event, by `run/step` key, in order. */
async function startedByKey(url: string): Promise<Map<string, Started[]>> {
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
async function expectCompletedOnceAndVerified(dir: string, url: string, runIds: string[], steps: number): Promise<void> {
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
async function stopAll(workers: WorkerProcess[]): Promise<Array<number | null>> {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  return Promise.all(workers.map((w) => w.closed));
}

/** PostgreSQL's ErrorResponse for a fast shutdown, as the server sends it to every session. */
function adminShutdownMessage(): Buffer {
  const fields = Buffer.from('SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0');
  const head = Buffer.alloc(5);
  head.write('E');
  head.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([head, fields]);
}

/** ReadyForQuery (idle): the end of the server's answer to a simple query. */
const READY_IDLE = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);

/**
 * A TCP proxy to the PostgreSQL server that forwards everything, except for two faults a test can
 * arm at a chosen point of the protocol:
 * - `holdOn(text)`: the next connection whose client sends `text` (a statement, as in its Parse or
 *   Query message) is held there: nothing more of it is forwarded, until `release` closes it.
 * - `terminateAfter(text)`: the server's complete answer to the next query containing `text` is
 *   passed on together with a FATAL 57P01 (what a fast shutdown sends every session), in one
 *   write, and the connection is closed, as when the server shuts down just as that query finishes.
 */
class PgProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private hold: Buffer | undefined;
  private held: Socket | undefined;
  private terminate: Buffer | undefined;
  port = 0;
  /** Has the armed fault happened? */
  tripped = false;

  constructor(private readonly target: number) {
    this.server = createServer((client) => this.accept(client));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        const addr = this.server.address();
        this.port = typeof addr === 'object' && addr ? addr.port : 0;
        resolve();
      });
    });
  }

  holdOn(text: string): void {
    this.hold = Buffer.from(text);
    this.tripped = false;
  }

  terminateAfter(text: string): void {
    this.terminate = Buffer.from(text);
    this.tripped = false;
  }

  /** Close the held connection (its statement never reached the server). */
  release(): void {
    this.held?.destroy();
  }

  /** Close every connection (the clients see their connections dropped). */
  dropAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(client: Socket): void {
    const upstream = connect(this.target, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    let tail = Buffer.alloc(0);
    let terminating = false;
    let answer = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      if (this.held === client) return;
      const seen = Buffer.concat([tail, chunk]);
      tail = seen.subarray(Math.max(0, seen.length - 1024));
      if (this.hold && seen.includes(this.hold)) {
        this.hold = undefined;
        this.tripped = true;
        this.held = client;
        return;
      }
      if (this.terminate && seen.includes(this.terminate)) {
        this.terminate = undefined;
        terminating = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!terminating) {
        client.write(chunk);
        return;
      }
      answer = Buffer.concat([answer, chunk]);
      if (answer.includes(READY_IDLE)) {
        terminating = false;
        this.tripped = true;
        client.end(Buffer.concat([answer, adminShutdownMessage()]));
        upstream.destroy();
      }
    });
  }
}

describe('PostgreSQL under faults', () => {
  it('chaos: 4 workers, 80 runs of 5 steps, workers killed with SIGKILL at random and restarted: every run completes, nothing completes twice, only killed work repeats', async () => {
    // 400 steps: the 8 kills land in the first quarter of them, with every worker busy.
    const RUNS = 80;
    const STEPS = 5;
    const KILLS = 8;
    const url = await server.createDatabase();
    const dir = project(STEPS);
    const env = { SWARM_DATABASE_URL: url, SWARM_LEASE_TTL_MS: '5000' };
    const workers: WorkerProcess[] = [];
    const all: WorkerProcess[] = [];
    const killedPids = new Set<number>();
    try {
      const runIds = await submit(dir, url, RUNS);
      for (let i = 0; i < 4; i++) workers.push(startWorker(dir, env));
      all.push(...workers);
      await until(async () => (await count(url, `SELECT count(*)::int AS n FROM events WHERE type = 'STEP_COMPLETED'`)) >= 40, 90_000, 'the first steps to complete');

      // Kill a random worker every 300-600 ms, each replaced at once by a new process.
      for (let k = 0; k < KILLS; k++) {
        await sleep(300 + Math.random() * 300);
        const i = Math.floor(Math.random() * workers.length);
        const victim = workers[i]!;
        killedPids.add(victim.child.pid!);
        victim.child.kill('SIGKILL');
        await victim.closed;
        expect(victim.child.signalCode).toBe('SIGKILL');
        workers[i] = startWorker(dir, env);
        all.push(workers[i]);
      }
      const progressAtLastKill = await runStatuses(url);

      // The node agent (no psql) costs about 0.1 s of CPU per step: allow it more time.
      await allFinished(url, RUNS, 30_000, 'after the kills', workers);
      await expectCompletedOnceAndVerified(dir, url, runIds, STEPS);

      // The workers that were killed, by id (a worker's id is recorded with its pid).
      const killed = new Set(
        ((await server.query(url, 'SELECT id, pid FROM workers')).rows as Array<{ id: string; pid: number }>).filter((w) => killedPids.has(w.pid)).map((w) => w.id),
      );
      expect(killed.size).toBeGreaterThan(0);

      const started = await startedByKey(url);
      const completedAttempt = new Map(
        ((await server.query(url, `SELECT run_id, step_id, data FROM events WHERE type = 'STEP_COMPLETED'`)).rows as Array<{ run_id: string; step_id: string; data: string }>).map((r) => [
          `${r.run_id}/${r.step_id}`,
          (JSON.parse(r.data) as { attempt: number }).attempt,
        ]),
      );
      expect(started.size).toBe(RUNS * STEPS);
      let reclaimed = 0;
      for (const [k, attempts] of started) {
        // Attempts 1, 2, … in order; every attempt before the last was lost with a killed worker and
        // taken over from it; the last one is the one that completed.
        expect(attempts.map((a) => a.attempt), k).toEqual(attempts.map((_, i) => i + 1));
        for (let i = 0; i < attempts.length - 1; i++) {
          expect(killed.has(attempts[i]!.worker), `${k}: attempt ${i + 1} was interrupted, so its worker was killed`).toBe(true);
          expect(attempts[i + 1]!.reclaimed_from, `${k}: attempt ${i + 2} took over from the killed worker`).toBe(attempts[i]!.worker);
        }
        expect(completedAttempt.get(k), `${k}: the last attempt completed`).toBe(attempts.length);
        if (attempts.length > 1) reclaimed++;
      }
      // The kills did hit steps in flight (each worker runs up to 4 at a time under this load).
      expect(reclaimed, `steps taken over from killed workers (runs at the last kill: ${JSON.stringify(progressAtLastKill)})`).toBeGreaterThan(0);

      // Side effects: one row per attempt that got as far as its side effect, keyed by its step's key.
      const effects = (await server.query(url, 'SELECT key, attempt FROM chaos.side_effects')).rows as Array<{ key: string; attempt: number }>;
      const rowsByKey = new Map<string, number[]>();
      for (const e of effects) rowsByKey.set(e.key, [...(rowsByKey.get(e.key) ?? []), e.attempt]);
      for (const [k, got] of rowsByKey) {
        const attempts = started.get(k);
        expect(attempts, `side effect ${k} belongs to a real step`).toBeDefined();
        // No attempt wrote its side effect twice, and each row is from an attempt that was started.
        expect(new Set(got).size, `${k}: one side effect per attempt`).toBe(got.length);
        for (const a of got) expect(a >= 1 && a <= (attempts?.length ?? 0), `${k}: attempt ${a} was started`).toBe(true);
        if (got.length > 1) {
          // Duplicated only for a step that was in flight at a kill: it has more than one attempt, and
          // every duplicate is from an attempt whose worker was killed.
          expect(attempts!.length, `${k}: duplicated side effect, so it was in flight at a kill`).toBeGreaterThan(1);
          for (const a of got) if (a !== attempts!.length) expect(killed.has(attempts![a - 1]!.worker), `${k}: attempt ${a}'s worker was killed`).toBe(true);
        }
      }
      // Every step's completed attempt did its side effect.
      for (const [k, a] of completedAttempt) expect(rowsByKey.get(k) ?? [], `${k}: the completed attempt's side effect`).toContain(a);

      // A sample through the CLI too: a run with a step taken over from a killed worker.
      const sample = [...started.values()].find((a) => a.length > 1)![0]!.run_id;
      const verified = await runCli(['runs', 'verify', sample], dir, { SWARM_DATABASE_URL: url });
      expect(verified.code, verified.stderr).toBe(0);

      // The survivors (and the replacements) stop cleanly on SIGTERM.
      expect(await stopAll(workers)).toEqual(workers.map(() => 0));
    } finally {
      for (const w of all) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await Promise.all(all.map((w) => w.closed));
      removeProject(dir);
      await server.dropDatabase(url);
    }
  }, 420_000);

  it('PostgreSQL restarted under load (fast shutdown, then started again): the same workers reconnect and every run finishes', async () => {
    const RUNS = 50;
    const STEPS = 3;
    const url = await server.createDatabase();
    const dir = project(STEPS);
    const env = { SWARM_DATABASE_URL: url };
    const workers: WorkerProcess[] = [];
    try {
      const runIds = await submit(dir, url, RUNS);
      workers.push(startWorker(dir, env), startWorker(dir, env));
      await until(async () => (await count(url, `SELECT count(*)::int AS n FROM events WHERE type = 'STEP_COMPLETED'`)) >= 20, 30_000, 'the first steps to complete');
      const before = await runStatuses(url);
      expect(before.completed ?? 0, 'the restart happens in the middle of the load').toBeLessThan(RUNS);
      const ids = workers.map((w) => /worker (\S+) started/.exec(w.stderr)?.[1]);

      // Down for about a second, as in a quick restart; well within the store's own retries of
      // lost connections (about 3 s or more), so the workers ride it out without losing anything.
      const downAt = Date.now();
      await server.shutdown();
      await sleep(1000);
      await server.startAgain();
      const downMs = Date.now() - downAt;
      const upAt = await count(url, `SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS n`);

      await allFinished(url, RUNS, 30_000, `after ${downMs} ms down`, workers);
      await expectCompletedOnceAndVerified(dir, url, runIds, STEPS);
      // Every step's side effect happened (the agents waited for the server as well).
      expect(await count(url, 'SELECT count(DISTINCT key)::int AS n FROM chaos.side_effects')).toBe(RUNS * STEPS);

      // The same processes throughout: neither worker exited or started again, and both went on
      // claiming steps after the restart (on new connections).
      for (const w of workers) {
        expect(w.child.exitCode).toBeNull();
        expect(w.child.signalCode).toBeNull();
        expect(w.stderr.match(/worker \S+ started/g)).toHaveLength(1);
      }
      const after = await server.query(url, `SELECT DISTINCT data::json->>'worker' AS worker FROM events WHERE type = 'STEP_STARTED' AND at >= $1`, [upAt]);
      expect(new Set((after.rows as Array<{ worker: string }>).map((r) => r.worker)), 'workers that claimed steps after the restart').toEqual(new Set(ids));
      expect(await stopAll(workers)).toEqual([0, 0]);
    } finally {
      if (!server.running) await server.startAgain();
      for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await Promise.all(workers.map((w) => w.closed));
      removeProject(dir);
      await server.dropDatabase(url);
    }
  }, 300_000);

  it('PostgreSQL down for longer than the store retries, just as a step is being prepared: the worker says it is retrying, stays up, and the runs still complete', async () => {
    const RUNS = 3;
    const STEPS = 2;
    const url = await server.createDatabase();
    const dir = project(STEPS, true);
    // The worker reaches the server through a proxy that holds the worker's first read of a run's
    // trigger data, which it makes while preparing a run's first step (its condition reads the
    // trigger), just after claiming it.
    const proxy = new PgProxy(Number(new URL(url).port));
    await proxy.listen();
    proxy.holdOn(`SELECT ${RUN_COLUMNS} FROM workflow_runs WHERE id = $1\0`);
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    let worker: WorkerProcess | undefined;
    try {
      const runIds = await submit(dir, url, RUNS);
      worker = startWorker(dir, { SWARM_DATABASE_URL: viaProxy.toString() });
      await until(() => proxy.tripped, 30_000, "the worker's read of a run's trigger data (a step being prepared)");
      // Then the server goes down for 8 s: longer than the store retries a lost connection (6
      // attempts with backoff, 3.1-6.2 s), so the worker's own retry loop has to carry on.
      const downAt = Date.now();
      await server.shutdown();
      proxy.release();
      await sleep(8000);
      await server.startAgain();
      const downMs = Date.now() - downAt;

      let statuses: Record<string, number> = {};
      await until(
        async () => {
          expectAlive([worker!]);
          statuses = await runStatuses(url);
          return (statuses.queued ?? 0) + (statuses.running ?? 0) === 0;
        },
        60_000,
        'every run to finish',
      ).catch(async (e: unknown) => {
        if (/worker process \d+ exited/.test((e as Error).message)) throw e;
        const steps = (await server.query(url, `SELECT step_id, status, attempt, lease_owner, lease_until, error FROM step_executions ORDER BY run_id, step_index`)).rows;
        const now = await count(url, `SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS n`);
        throw new Error(`${(e as Error).message} (${downMs} ms down): runs ${JSON.stringify(statuses)}; database clock ${now}; steps ${JSON.stringify(steps)}; worker stderr:\n${worker?.stderr}`, { cause: e });
      });
      // The worker rode out the outage: same process, and it said so.
      expect(worker.child.exitCode).toBeNull();
      expect(worker.child.signalCode).toBeNull();
      expect(worker.stderr).toMatch(/retrying/);
      // A store outage is not the step's fault: the step being prepared must not fail because of it.
      const failed = (await server.query(url, `SELECT run_id, step_id, error FROM step_executions WHERE status = 'failed'`)).rows;
      expect({ statuses, failed }, `steps failed by a store outage while they were being prepared (after ${downMs} ms down)`).toEqual({ statuses: { completed: RUNS }, failed: [] });
      await expectCompletedOnceAndVerified(dir, url, runIds, STEPS);
      expect(await stopAll([worker])).toEqual([0]);
    } finally {
      if (!server.running) await server.startAgain();
      if (worker && worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
      await worker?.closed;
      await proxy.close();
      removeProject(dir);
      await server.dropDatabase(url);
    }
  }, 300_000);

  it('the server ends a connection (fast shutdown) just as the worker finishes setting it up: the worker does not crash, and goes on', async () => {
    const url = await server.createDatabase();
    const dir = project(2);
    const proxy = new PgProxy(Number(new URL(url).port));
    await proxy.listen();
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    let worker: WorkerProcess | undefined;
    try {
      const first = await submit(dir, url, 2);
      worker = startWorker(dir, { SWARM_DATABASE_URL: viaProxy.toString() });
      await allFinished(url, first.length, 20_000, 'before the fault', [worker]);
      // Every new connection of the store starts with one query of session settings. The next one
      // is answered, then the connection is terminated as by a fast shutdown, in the same packet
      // (as happens when the server shuts down just then); the worker's connections are dropped so
      // that it opens new ones at once.
      proxy.terminateAfter('SET search_path TO');
      proxy.dropAll();
      await until(() => proxy.tripped, 20_000, 'the worker to set up a new connection');
      const more = await startRuns(dir, url, 2);
      await allFinished(url, first.length + more.length, 20_000, 'after the fault', [worker]);
      expectAlive([worker]);
      await expectCompletedOnceAndVerified(dir, url, [...first, ...more], 2);
      expect(await stopAll([worker])).toEqual([0]);
    } finally {
      if (worker && worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
      await worker?.closed;
      await proxy.close();
      removeProject(dir);
      await server.dropDatabase(url);
    }
  }, 240_000);
});
