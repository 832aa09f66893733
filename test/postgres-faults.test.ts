/**
 * Faults of the PostgreSQL server itself, with real worker processes: the server shut down (fast)
 * and started again under load; and, through a TCP proxy that places a fault at an exact point of
 * the protocol, an outage longer than the store's own retries while a step is being prepared, and a
 * connection terminated by a shutdown just as the worker sets it up. Each step's agent records a side
 * effect (a row keyed by the step's idempotency key) in the runs' own database, so that repeated
 * work is visible. (Workers killed with SIGKILL under load: test/postgres-chaos.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { RUN_COLUMNS } from '../src/store/rows.js';
import {
  allFinished,
  count,
  expectAlive,
  expectCompletedOnceAndVerified,
  project,
  runStatuses,
  startRuns,
  startWorker,
  stopAll,
  submit,
  restartableServerOfFile,
  type WorkerProcess,
} from './helpers/pg-faults.js';
import { removeProject, until } from './helpers/project.js';

const server = restartableServerOfFile();

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
  it('PostgreSQL restarted under load (fast shutdown, then started again): the same workers reconnect and every run finishes', async () => {
    const RUNS = 50;
    const STEPS = 3;
    const url = await server().createDatabase();
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
      await server().shutdown();
      await sleep(1000);
      await server().startAgain();
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
      const after = await server().query(url, `SELECT DISTINCT data::json->>'worker' AS worker FROM events WHERE type = 'STEP_STARTED' AND at >= $1`, [upAt]);
      expect(new Set((after.rows as Array<{ worker: string }>).map((r) => r.worker)), 'workers that claimed steps after the restart').toEqual(new Set(ids));
      expect(await stopAll(workers)).toEqual([0, 0]);
    } finally {
      if (!server().running) await server().startAgain();
      for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await Promise.all(workers.map((w) => w.closed));
      removeProject(dir);
      await server().dropDatabase(url);
    }
  }, 300_000);

  it('PostgreSQL down for longer than the store retries, just as a step is being prepared: the worker says it is retrying, stays up, and the runs still complete', async () => {
    const RUNS = 3;
    const STEPS = 2;
    const url = await server().createDatabase();
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
      await server().shutdown();
      proxy.release();
      await sleep(8000);
      await server().startAgain();
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
        const steps = (await server().query(url, `SELECT step_id, status, attempt, lease_owner, lease_until, error FROM step_executions ORDER BY run_id, step_index`)).rows;
        const now = await count(url, `SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS n`);
        throw new Error(`${(e as Error).message} (${downMs} ms down): runs ${JSON.stringify(statuses)}; database clock ${now}; steps ${JSON.stringify(steps)}; worker stderr:\n${worker?.stderr}`, { cause: e });
      });
      // The worker rode out the outage: same process, and it said so.
      expect(worker.child.exitCode).toBeNull();
      expect(worker.child.signalCode).toBeNull();
      expect(worker.stderr).toMatch(/retrying/);
      // A store outage is not the step's fault: the step being prepared must not fail because of it.
      const failed = (await server().query(url, `SELECT run_id, step_id, error FROM step_executions WHERE status = 'failed'`)).rows;
      expect({ statuses, failed }, `steps failed by a store outage while they were being prepared (after ${downMs} ms down)`).toEqual({ statuses: { completed: RUNS }, failed: [] });
      await expectCompletedOnceAndVerified(dir, url, runIds, STEPS);
      expect(await stopAll([worker])).toEqual([0]);
    } finally {
      if (!server().running) await server().startAgain();
      if (worker && worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
      await worker?.closed;
      await proxy.close();
      removeProject(dir);
      await server().dropDatabase(url);
    }
  }, 300_000);

  it('the server ends a connection (fast shutdown) just as the worker finishes setting it up: the worker does not crash, and goes on', async () => {
    const url = await server().createDatabase();
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
      await server().dropDatabase(url);
    }
  }, 240_000);
});
