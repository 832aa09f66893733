/**
 * The peers, on the same PostgreSQL server (each measurement in its own fresh database), with the
 * same workloads as Swarm:
 *
 *   - DBOS Transact: workflows of no-op steps (`DBOS.registerWorkflow`, `DBOS.runStep`), started with
 *     `DBOS.startWorkflow` and executed in the same process, which is how DBOS runs workflows (there
 *     is no separate worker process). Default configuration (system database pool of 10).
 *   - graphile-worker: jobs. A chain is 10 jobs of one task, each enqueuing the next with
 *     `helpers.addJob`; the first is added by the driver with `WorkerUtils.addJob`. 1, 2 or 4 worker
 *     processes (`run()` with concurrency 32 and a pool of 34, as graphile-worker recommends for
 *     concurrency 32), otherwise defaults (no local queue, no completion batching).
 *
 * `durability: process` is synchronous_commit=off for every session of the peer (libpq `options` in
 * the connection URL), the setting Swarm uses at that level.
 */
import { randomUUID } from 'node:crypto';
import { DBOS } from '@dbos-inc/dbos-sdk';
import { Logger, makeWorkerUtils, runMigrations, type WorkerUtils } from 'graphile-worker';
import pg from 'pg';
import { chainSteps, nowMs } from './harness.js';
import { Flow, linearRuns, PhaseProbe, runLatencies, warmupRuns, WorkerSet, type LatencyResult, type PgJob, type ThroughputResult } from './pg-drive.js';
import { withSessionSetting } from './pg-server.js';
import type { ChainJob, GraphileWorkerConfig, Stamp } from './pg-worker.js';
import { chainLatency } from './pg-workloads.js';

function peerUrl(job: PgJob): string {
  return job.durability === 'process' ? withSessionSetting(job.url, 'synchronous_commit', 'off') : job.url;
}

const hrMs = (): number => Number(process.hrtime.bigint()) / 1e6;

// ---------------------------------------------------------------- DBOS

const noop = async (): Promise<void> => undefined;

/** Launch DBOS on the job's database with `register` run first (workflows are registered before launch). */
async function launchDbos<T>(job: PgJob, register: () => T): Promise<T> {
  DBOS.setConfig({ name: 'swarm-bench', systemDatabaseUrl: peerUrl(job), logLevel: 'error' });
  const registered = register();
  await DBOS.launch();
  return registered;
}

/** linear: 200 workflows (`--runs`) of 10 no-op steps, 32 in flight. */
export async function dbosLinear(job: PgJob): Promise<ThroughputResult> {
  const runs = linearRuns(job);
  const stepsPerRun = 10;
  const inFlight = 32;
  const linear = await launchDbos(job, () =>
    DBOS.registerWorkflow(
      async (n: number): Promise<void> => {
        for (let i = 0; i < n; i++) await DBOS.runStep(noop, { name: `s${i}` });
      },
      { name: 'linear10' },
    ),
  );
  const probe = await PhaseProbe.open(job.url, job.stats);
  try {
    const drive = (total: number): Promise<Awaited<ReturnType<Flow['run']>>> => {
      const flow: Flow = new Flow(
        total,
        inFlight,
        async () => {
          const handle = await DBOS.startWorkflow(linear)(stepsPerRun);
          handle.getResult().then(
            () => flow.finish(handle.workflowID, 'completed'),
            () => flow.finish(handle.workflowID, 'failed'),
          );
          return handle.workflowID;
        },
        'dbos linear10',
      );
      return flow.run();
    };
    if (warmupRuns(job) > 0) await drive(warmupRuns(job));
    await probe.start();
    const flow = await drive(runs);
    const counters = await probe.end();
    const steps = runs * stepsPerRun;
    return {
      system: 'dbos',
      workload: 'linear',
      durability: job.durability,
      workers: 1,
      runs,
      steps,
      in_flight: inFlight,
      worker_concurrency: inFlight,
      wall_ms: flow.wallMs,
      steps_per_s: steps / (flow.wallMs / 1000),
      ...runLatencies(flow),
      rss_max_mb: process.resourceUsage().maxRSS / 1024,
      ...counters,
    };
  } finally {
    await probe.close();
    await DBOS.shutdown();
  }
}

/** Step → next step: workflows of 101 stamping steps, one at a time (as Swarm's latency workload). */
export async function dbosLatency(job: PgJob): Promise<LatencyResult> {
  const runs = job.quick ? 3 : 10;
  const stepIds = chainSteps(101).map((s) => s.id);
  const stamps: Stamp[] = [];
  const tick = (key: string) => async (): Promise<void> => {
    const start = hrMs();
    stamps.push({ key, start, end: hrMs() });
  };
  const chain = await launchDbos(job, () =>
    DBOS.registerWorkflow(
      async (runKey: string): Promise<void> => {
        for (const id of stepIds) await DBOS.runStep(tick(`${runKey}/${id}`), { name: id });
      },
      { name: 'chain' },
    ),
  );
  try {
    const once = async (): Promise<{ id: string; t0: number }> => {
      const id = randomUUID();
      const t0 = nowMs();
      const handle = await DBOS.startWorkflow(chain, { workflowID: id })(id);
      await handle.getResult();
      return { id, t0 };
    };
    await once();
    stamps.length = 0;
    const starts: Array<{ id: string; t0: number }> = [];
    for (let r = 0; r < runs; r++) starts.push(await once());
    return {
      system: 'dbos',
      workload: 'latency',
      durability: job.durability,
      workers: 1,
      method: 'stamping step functions: entry of step n+1 minus return of step n (in-process, monotonic clock)',
      runs,
      chain_length: stepIds.length,
      ...chainLatency(stamps, starts, stepIds),
    };
  } finally {
    await DBOS.shutdown();
  }
}

// ---------------------------------------------------------------- graphile-worker

const GRAPHILE_CONCURRENCY = 32;

interface GraphileEnv {
  utils: WorkerUtils;
  workers: WorkerSet;
  probe: PhaseProbe;
  url: string;
}

async function graphileSetUp(job: PgJob): Promise<GraphileEnv> {
  const url = peerUrl(job);
  // Migrate once here rather than in every worker process at once.
  await runMigrations({ connectionString: url, logger: quietLogger() });
  const utils = await makeWorkerUtils({ connectionString: url, logger: quietLogger() });
  const config: GraphileWorkerConfig = { kind: 'graphile', url, concurrency: GRAPHILE_CONCURRENCY, maxPoolSize: GRAPHILE_CONCURRENCY + 2 };
  try {
    const workers = await WorkerSet.start(job.workers, config);
    return { utils, workers, url, probe: await PhaseProbe.open(job.url, job.stats) };
  } catch (e) {
    await utils.release();
    throw e;
  }
}

async function graphileTearDown(env: GraphileEnv): Promise<void> {
  await env.workers.stop();
  await env.probe.close();
  await env.utils.release();
}

function quietLogger(): Logger {
  return new Logger(() => (level, message) => {
    const name: string = level;
    if (name === 'error') console.error(`graphile-worker: ${message}`);
  });
}

let chainCounter = 0;

function graphileDrive(env: GraphileEnv, total: number, inFlight: number, length: number): Promise<Awaited<ReturnType<Flow['run']>>> {
  const flow = new Flow(
    total,
    inFlight,
    async () => {
      const c = `c${++chainCounter}`;
      await env.utils.addJob('step', { c, i: 0, n: length } satisfies ChainJob);
      return c;
    },
    'graphile chain',
  );
  env.workers.finished = flow.finish;
  return flow.run(env.workers.failed);
}

/** Until graphile-worker's job table is empty (the last completions are committed after their task returns). */
async function drained(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (;;) {
      const r = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM graphile_worker.jobs');
      if ((r.rows[0]?.n ?? 0) === 0) return nowMs();
    }
  } finally {
    await client.end();
  }
}

/** linear: 200 chains (`--runs`) of 10 jobs, 32 chains in flight. */
export async function graphileLinear(job: PgJob): Promise<ThroughputResult> {
  const runs = linearRuns(job);
  const length = 10;
  const inFlight = 32;
  const env = await graphileSetUp(job);
  try {
    if (warmupRuns(job) > 0) await graphileDrive(env, warmupRuns(job), inFlight, length);
    await drained(env.url);
    await env.probe.start();
    env.workers.mark();
    const flow = await graphileDrive(env, runs, inFlight, length);
    const t1 = await drained(env.url);
    const collected = await env.workers.collect();
    const counters = await env.probe.end(collected.cpu_ms);
    const wallMs = t1 - flow.t0;
    const steps = runs * length;
    return {
      system: 'graphile',
      workload: 'linear',
      durability: job.durability,
      workers: job.workers,
      runs,
      steps,
      in_flight: inFlight,
      worker_concurrency: GRAPHILE_CONCURRENCY,
      wall_ms: wallMs,
      steps_per_s: steps / (wallMs / 1000),
      ...runLatencies(flow),
      rss_max_mb: collected.rss_mb,
      ...counters,
    };
  } finally {
    await graphileTearDown(env);
  }
}

/** Job → next job: chains of 101 jobs, one at a time; a sample is entry of job n+1 − the moment job n enqueues it. */
export async function graphileLatency(job: PgJob): Promise<LatencyResult> {
  const runs = job.quick ? 3 : 10;
  const length = 101;
  const env = await graphileSetUp(job);
  try {
    await graphileDrive(env, 1, 1, length);
    await env.workers.collect();
    const starts: Array<{ id: string; t0: number }> = [];
    for (let r = 0; r < runs; r++) {
      const flow = await graphileDrive(env, 1, 1, length);
      starts.push({ id: flow.ids[0] as string, t0: flow.t0 });
    }
    await drained(env.url);
    const { stamps } = await env.workers.collect();
    const ids = Array.from({ length }, (_, i) => String(i));
    return {
      system: 'graphile',
      workload: 'latency',
      durability: job.durability,
      workers: job.workers,
      method: 'task handler stamps: entry of job n+1 minus the moment job n calls addJob for it (monotonic clock)',
      runs,
      chain_length: length,
      ...chainLatency(stamps, starts, ids),
    };
  } finally {
    await graphileTearDown(env);
  }
}
