/**
 * The PostgreSQL measurements of Swarm, and the floor. Each runs in its own process (the driver)
 * against its own fresh database: the driver registers the packages and starts runs through the
 * library API (`Swarm.open` with the database URL, `startRun`), while 1, 2 or 4 worker processes
 * (pg-worker.ts: `Swarm.open` + `swarm.worker()`, what `swarm worker` runs) execute the steps and tell
 * the driver over IPC when a run has finished (their commit that finished it has returned).
 */
import pg from 'pg';
import { Swarm } from '../src/index.js';
import { chainSteps, fanOutSteps, freshDir, NOOP_AGENT_DIR, nowMs, percentile, writeBuiltinAgent, writeWorkflow, type BenchDir } from './harness.js';
import { backlogRuns, Flow, linearRuns, PhaseProbe, runLatencies, warmupRuns, WorkerSet, type FloorResult, type LatencyResult, type PgJob, type ThroughputResult } from './pg-drive.js';
import type { Stamp, SwarmWorkerConfig } from './pg-worker.js';

// ---------------------------------------------------------------- floor

/**
 * Raw pg, no Swarm: single-row INSERT autocommits per second, with 1 connection and with N connections
 * inserting at once (the server flushes concurrent commits together), at synchronous_commit on and
 * off, in this measurement's database.
 */
export async function floor(job: PgJob): Promise<FloorResult> {
  const seconds = job.quick ? 0.3 : 0.6;
  const conns = job.floorConns ?? [1, 4, 16];
  const admin = new pg.Client({ connectionString: job.url });
  await admin.connect();
  await admin.query('CREATE TABLE floor (id BIGSERIAL PRIMARY KEY, v TEXT NOT NULL)');
  await admin.end();
  const rate = async (n: number, sync: 'on' | 'off'): Promise<number> => {
    const clients = await Promise.all(
      Array.from({ length: n }, async () => {
        const c = new pg.Client({ connectionString: job.url, application_name: 'bench-floor' });
        await c.connect();
        await c.query(`SET synchronous_commit TO ${sync}`);
        return c;
      }),
    );
    try {
      const insert = { name: 'floor_insert', text: 'INSERT INTO floor (v) VALUES ($1)', values: ['0123456789abcdef0123456789abcdef'] };
      for (const c of clients) for (let i = 0; i < 50; i++) await c.query(insert);
      const t0 = nowMs();
      const until = t0 + seconds * 1000;
      let count = 0;
      await Promise.all(
        clients.map(async (c) => {
          while (nowMs() < until) {
            await c.query(insert);
            count++;
          }
        }),
      );
      return count / ((nowMs() - t0) / 1000);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  };
  const on: Record<string, number> = {};
  const off: Record<string, number> = {};
  for (const n of conns) {
    on[String(n)] = await rate(n, 'on');
    off[String(n)] = await rate(n, 'off');
  }
  return { system: 'floor', workload: 'floor', seconds_each: seconds, on, off };
}

// ---------------------------------------------------------------- Swarm

interface SwarmEnv {
  dir: BenchDir;
  swarm: Swarm;
  workers: WorkerSet;
  probe: PhaseProbe;
}

async function setUp(job: PgJob, label: string, concurrency: number): Promise<SwarmEnv> {
  const dir = freshDir(`pg-${label}-${job.durability}`, job.base, job.keep);
  const swarm = await Swarm.open({ cwd: dir.root, env: { SWARM_HOME: dir.home, SWARM_DATABASE_URL: job.url }, overrides: { durability: job.durability } });
  const config: SwarmWorkerConfig = {
    kind: 'swarm',
    url: job.url,
    root: dir.root,
    home: dir.home,
    durability: job.durability,
    concurrency,
    ...(job.pollMs !== undefined ? { pollMs: job.pollMs } : {}),
    ...(job.commitWindowMs !== undefined ? { commitWindowMs: job.commitWindowMs } : {}),
    ...(job.trace ? { trace: true } : {}),
  };
  try {
    const workers = await WorkerSet.start(job.workers, config);
    return { dir, swarm, workers, probe: await PhaseProbe.open(job.url, job.stats) };
  } catch (e) {
    await swarm.close();
    dir.remove();
    throw e;
  }
}

async function tearDown(env: SwarmEnv): Promise<void> {
  await env.workers.stop();
  await env.probe.close();
  await env.swarm.close();
  env.dir.remove();
}

/** Runs of `workflow`, `inFlight` at a time, until `total` have finished. */
function drive(env: SwarmEnv, workflow: string, total: number, inFlight: number): ReturnType<Flow['run']> {
  const flow = new Flow(total, inFlight, () => env.swarm.startRun(workflow), workflow);
  env.workers.finished = flow.finish;
  return flow.run(env.workers.failed);
}

/**
 * The measured phase of a throughput workload: `runs` runs of `workflow`, `inFlight` at a time, with
 * the server's counters and the workers' CPU around it.
 */
async function measureThroughput(
  env: SwarmEnv,
  job: PgJob,
  m: { workload: 'linear' | 'fanout'; workflow: string; runs: number; inFlight: number; steps: number; concurrency: number },
): Promise<ThroughputResult> {
  await env.probe.start();
  env.workers.mark();
  const flow = await drive(env, m.workflow, m.runs, m.inFlight);
  const collected = await env.workers.collect();
  const counters = await env.probe.end(collected.cpu_ms);
  return {
    system: 'swarm',
    workload: m.workload,
    durability: job.durability,
    workers: job.workers,
    runs: m.runs,
    steps: m.steps,
    in_flight: m.inFlight,
    worker_concurrency: m.concurrency,
    wall_ms: flow.wallMs,
    steps_per_s: m.steps / (flow.wallMs / 1000),
    ...runLatencies(flow),
    rss_max_mb: collected.rss_mb,
    ...(collected.trace ? { trace: collected.trace } : {}),
    ...counters,
  };
}

/** linear: 200 runs (`--runs`) of a 10-step noop chain, 32 in flight; every worker process has concurrency 64. */
export async function swarmLinear(job: PgJob): Promise<ThroughputResult> {
  const runs = linearRuns(job);
  const stepsPerRun = 10;
  const inFlight = 32;
  const concurrency = 64;
  const env = await setUp(job, 'linear', concurrency);
  try {
    await env.swarm.registerAgent(NOOP_AGENT_DIR);
    await env.swarm.registerWorkflow(writeWorkflow(env.dir, 'linear10', 'noop@1.0.0', chainSteps(stepsPerRun)));
    // Warm-up (JIT, prepared statements on every connection, table growth): not measured.
    if (warmupRuns(job) > 0) await drive(env, 'linear10', warmupRuns(job), inFlight);
    return await measureThroughput(env, job, { workload: 'linear', workflow: 'linear10', runs, inFlight, steps: runs * stepsPerRun, concurrency });
  } finally {
    await tearDown(env);
  }
}

/**
 * linear-backlog: 2,400 runs (400 with --quick) of the same 10-step chain, queued before the workers
 * start. After linear's warm-up the workers are paused (their processes stay up, with their
 * connections and compiled code), the runs are created, then a new worker in every process drains
 * them with concurrency 32 ÷ the number of worker processes: as many steps at once as linear's 32 runs
 * in flight allow. Every claim then chooses among thousands of runs with a ready step; steps/s over
 * linear's, in the same run, shows whether a claim's cost grows with the queue.
 */
export async function swarmBacklog(job: PgJob): Promise<ThroughputResult> {
  const runs = backlogRuns(job);
  const stepsPerRun = 10;
  const inFlight = 32;
  const concurrency = Math.ceil(inFlight / job.workers);
  const env = await setUp(job, 'backlog', 64);
  try {
    await env.swarm.registerAgent(NOOP_AGENT_DIR);
    await env.swarm.registerWorkflow(writeWorkflow(env.dir, 'linear10', 'noop@1.0.0', chainSteps(stepsPerRun)));
    // The same warm-up as linear's, with linear's worker concurrency: not measured.
    if (warmupRuns(job) > 0) await drive(env, 'linear10', warmupRuns(job), inFlight);
    await env.workers.pause();
    const ids: string[] = [];
    for (let i = 0; i < runs; i++) ids.push(await env.swarm.startRun('linear10'));
    const wanted = new Set(ids);
    let finished = 0;
    let failed = 0;
    let t1 = 0;
    const done = new Promise<void>((resolve) => {
      env.workers.finished = (id, status) => {
        if (!wanted.has(id)) return;
        if (status !== 'completed') failed++;
        if (++finished === runs) {
          t1 = nowMs();
          resolve();
        }
      };
    });
    await env.probe.start();
    env.workers.mark();
    const t0 = nowMs();
    env.workers.resume(concurrency);
    await Promise.race([done, env.workers.failed]);
    const wallMs = t1 - t0;
    const collected = await env.workers.collect();
    const counters = await env.probe.end(collected.cpu_ms);
    if (failed) throw new Error(`linear-backlog: ${failed} of ${runs} runs did not complete`);
    // The runs wait in the queue by design, so their latency is counted from their first claim.
    const rows = (await env.swarm.listRuns({ workflow: 'linear10', limit: 100_000 })).filter((r) => wanted.has(r.id));
    const lat = rows.map((r) => (r.completed_at ?? Number.NaN) - (r.started_at ?? Number.NaN));
    const steps = runs * stepsPerRun;
    return {
      system: 'swarm',
      workload: 'linear-backlog',
      durability: job.durability,
      workers: job.workers,
      runs,
      steps,
      in_flight: runs,
      worker_concurrency: concurrency,
      wall_ms: wallMs,
      steps_per_s: steps / (wallMs / 1000),
      run_p50_ms: percentile(lat, 50),
      run_p99_ms: percentile(lat, 99),
      rss_max_mb: collected.rss_mb,
      ...(collected.trace ? { trace: collected.trace } : {}),
      ...counters,
    };
  } finally {
    await tearDown(env);
  }
}

/** fan-out: one run of start → 1000 parallel noop steps → join; workflow concurrency 1000, worker concurrency 256. */
export async function swarmFanout(job: PgJob): Promise<ThroughputResult> {
  const width = job.quick ? 200 : 1000;
  const concurrency = 256;
  const env = await setUp(job, 'fanout', concurrency);
  try {
    await env.swarm.registerAgent(NOOP_AGENT_DIR);
    await env.swarm.registerWorkflow(writeWorkflow(env.dir, 'fanout', 'noop@1.0.0', fanOutSteps(width), width));
    await env.swarm.registerWorkflow(writeWorkflow(env.dir, 'fanout-warm', 'noop@1.0.0', fanOutSteps(64), 64));
    await drive(env, 'fanout-warm', 2, 1);
    return await measureThroughput(env, job, { workload: 'fanout', workflow: 'fanout', runs: 1, inFlight: 1, steps: width + 2, concurrency });
  } finally {
    await tearDown(env);
  }
}

/**
 * Idle step → next step: runs of a 101-step chain of `tick` steps, one run at a time. `tick` (defined
 * in every worker process) stamps its entry and its return on the machine's monotonic clock; a sample
 * is entry of step n+1 − return of step n. With several worker processes the commit that completes
 * step n normally claims step n+1 in the same transaction, but the other workers are woken by every
 * commit's NOTIFY and look for work too.
 */
export async function swarmLatency(job: PgJob): Promise<LatencyResult> {
  const runs = job.quick ? 3 : 10;
  const chain = 101;
  const env = await setUp(job, 'latency', 16);
  try {
    const steps = chainSteps(chain);
    // Registration checks that the built-in exists here; the worker processes run their own `tick`.
    env.swarm.defineBuiltin('tick', async () => ({}));
    await env.swarm.registerAgent(writeBuiltinAgent(env.dir, 'tick', 'tick'));
    await env.swarm.registerWorkflow(writeWorkflow(env.dir, 'chain', 'tick@1.0.0', steps));
    await drive(env, 'chain', 1, 1);
    await env.workers.collect();
    const starts: Array<{ id: string; t0: number }> = [];
    for (let r = 0; r < runs; r++) {
      const flow = await drive(env, 'chain', 1, 1);
      starts.push({ id: flow.ids[0] as string, t0: flow.t0 });
    }
    const { stamps } = await env.workers.collect();
    return {
      system: 'swarm',
      workload: 'latency',
      durability: job.durability,
      workers: job.workers,
      method: 'tick built-in in the worker processes: entry of step n+1 minus return of step n (monotonic clock)',
      runs,
      chain_length: chain,
      ...chainLatency(stamps, starts, steps.map((s) => s.id)),
    };
  } finally {
    await tearDown(env);
  }
}

/**
 * Step → next step samples from stamps keyed `<run>/<step>`, for the runs given with the time their
 * start was called; start latency is that time → entry of the run's first step.
 */
export function chainLatency(
  stamps: readonly Stamp[],
  starts: ReadonlyArray<{ id: string; t0: number }>,
  stepIds: readonly string[],
): Pick<LatencyResult, 'samples' | 'p50_ms' | 'p90_ms' | 'p99_ms' | 'max_ms' | 'mean_ms' | 'start_p50_ms' | 'start_max_ms'> {
  const byKey = new Map(stamps.map((s) => [s.key, s]));
  const samples: number[] = [];
  const startLat: number[] = [];
  for (const { id, t0 } of starts) {
    const first = byKey.get(`${id}/${stepIds[0]}`);
    if (!first) throw new Error(`no stamp for the first step of ${id}`);
    startLat.push(first.start - t0);
    for (let i = 1; i < stepIds.length; i++) {
      const prev = byKey.get(`${id}/${stepIds[i - 1]}`);
      const next = byKey.get(`${id}/${stepIds[i]}`);
      if (!prev || !next) throw new Error(`missing stamps in run ${id} at step ${i}`);
      samples.push(next.start - prev.end);
    }
  }
  return {
    samples: samples.length,
    p50_ms: percentile(samples, 50),
    p90_ms: percentile(samples, 90),
    p99_ms: percentile(samples, 99),
    max_ms: Math.max(...samples),
    mean_ms: samples.reduce((a, b) => a + b, 0) / samples.length,
    start_p50_ms: percentile(startLat, 50),
    start_max_ms: Math.max(...startLat),
  };
}
