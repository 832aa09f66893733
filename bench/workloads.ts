/**
 * The workloads. Each one runs in its own process (see run.ts), in a fresh temp directory, and
 * returns plain numbers. Times are wall-clock: `process.hrtime` in-process, millisecond `created_at` /
 * `completed_at` from the run rows where the brief asks for run latency.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import type { Durability, Swarm } from '../src/index.js';
import { Phase, type PhaseResult } from './phase.js';
import { jobKey } from './report.js';
import {
  chainSteps,
  fanOutSteps,
  freshDir,
  MB,
  NOOP_AGENT_DIR,
  nowMs,
  openSwarm,
  percentile,
  procStatus,
  RssSampler,
  writeBuiltinAgent,
  writeWorkflow,
  type BenchDir,
} from './harness.js';

export const WORKLOADS = ['floor', 'linear', 'fanout', 'latency'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

/** One measurement, run in a child process. */
export interface Job {
  workload: WorkloadName;
  durability?: Durability;
  commitWindowMs?: number;
  quick: boolean;
  /** Parent directory for the temp project directories. */
  base?: string;
  keep: boolean;
  /** Count and time every SQLite call of the measured phase (see sql-trace.ts). */
  trace: boolean;
  /** Write a CPU profile of the measured phase here (see phase.ts). */
  profileDir?: string;
  /** The profile's file name (before the pid), when jobKey's would not tell measurements apart (bench/observability.ts: the mode). */
  profileLabel?: string;
  /** Worker poll interval override (the workloads choose their own otherwise). */
  pollMs?: number;
  /**
   * linear only: `precreated` creates every run before the clock starts (isolates the worker's
   * per-step cost); `backlog` does the same with 2,400 runs (a queue the claim must not scan).
   */
  variant?: 'precreated' | 'backlog';
  /** Keep Prometheus metrics, and render them every `scrapeMs` as a scraper would (bench/observability.ts). */
  metrics?: { scrapeMs: number };
  /**
   * In the measuring process only (bench/observability.ts): `beforeMeasure` runs after the warm-up,
   * before the clock starts (a tracing mode exports the warm-up's spans there, so they are not sent
   * in the measured phase); `afterMeasure` runs when the last run finished, inside the measured time
   * (it exports the measured runs' last spans, so each measured span's export is counted, once).
   */
  hooks?: { beforeMeasure?: () => Promise<void>; afterMeasure?: () => Promise<void> };
  /**
   * linear and fan-out: a measured phase this many times longer (linear: `scale` × 200 runs; fan-out:
   * `scale` fan-out runs, one after another), for a mode whose cost lies partly in the code it adds
   * being compiled during a process's first second (bench/observability.ts). Default 1.
   */
  scale?: number;
  /**
   * linear and fan-out: warm up on the measured workload itself, this many rounds (a round: 200
   * linear runs, or one full-width fan-out run), instead of the short default (32 runs; two fan-outs
   * of 64), so that V8 has compiled the engine's hot paths and the code a mode adds (an
   * OpenTelemetry SDK: its spans, its protobuf encoder, its HTTP export) before the clock starts, as
   * in a worker that has been up a while. bench/observability.ts sets it (default 5: one round left
   * V8's optimizing compiler busy inside the measured phase, see its WARM_UP_ROUNDS).
   */
  fullWarmUp?: number;
}

export interface FloorResult {
  workload: 'floor';
  /** Autocommit single-row INSERTs per second, WAL + synchronous=FULL (what `durability: full` uses). */
  full_commits_per_s: number;
  /** The same at synchronous=NORMAL (what `durability: process` uses). */
  normal_commits_per_s: number;
  seconds_each: number;
}

export interface LinearResult extends PhaseResult {
  workload: 'linear';
  variant?: 'precreated' | 'backlog';
  durability: Durability;
  commit_window_ms: number;
  runs: number;
  steps: number;
  in_flight: number;
  worker_concurrency: number;
  wall_ms: number;
  steps_per_s: number;
  /** Run latency (created_at → completed_at of the run rows, millisecond resolution). */
  run_p50_ms: number;
  run_p99_ms: number;
}

export interface FanoutResult extends PhaseResult {
  workload: 'fanout';
  durability: Durability;
  width: number;
  steps: number;
  worker_concurrency: number;
  /** startRun called → the worker's commit that finished the run (the last run, with `scale`). */
  makespan_ms: number;
  /** created_at → completed_at of the (first) run's row. */
  run_row_ms: number;
  steps_per_s: number;
  rss_baseline_mb: number;
  /** Peak of process.memoryUsage().rss sampled every 10 ms during the run. */
  rss_peak_mb: number;
  /** /proc/self/status VmHWM at the end (whole process life, warm-up included). */
  vm_hwm_mb: number | null;
}

export interface LatencyResult extends PhaseResult {
  workload: 'latency';
  durability: Durability;
  method: string;
  runs: number;
  chain_length: number;
  samples: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  mean_ms: number;
  /** startRun called on an idle worker → entry of the run's first step (waits for the worker's poll). */
  start_p50_ms: number;
  start_max_ms: number;
  poll_ms: number;
}

export type WorkloadResult = FloorResult | LinearResult | FanoutResult | LatencyResult;

export async function runJob(job: Job): Promise<WorkloadResult> {
  switch (job.workload) {
    case 'floor':
      return floor(job);
    case 'linear':
      return linear(job);
    case 'fanout':
      return fanout(job);
    case 'latency':
      return latency(job);
  }
}

// ---------------------------------------------------------------- floor

/** Raw better-sqlite3: one single-row INSERT per commit, WAL mode, FULL then NORMAL, in the same process. */
async function floor(job: Job): Promise<FloorResult> {
  const seconds = job.quick ? 0.3 : 1.5;
  const rate = (sync: 'FULL' | 'NORMAL'): number => {
    const dir = freshDir(`floor-${sync.toLowerCase()}`, job.base, job.keep);
    try {
      const db = new Database(join(dir.root, 'floor.db'));
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${sync}`);
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
      const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
      for (let i = 0; i < 200; i++) ins.run('warm-up');
      const t0 = nowMs();
      const until = t0 + seconds * 1000;
      let n = 0;
      let t = t0;
      while (t < until) {
        for (let i = 0; i < 16; i++) ins.run('0123456789abcdef0123456789abcdef');
        n += 16;
        t = nowMs();
      }
      db.close();
      return n / ((t - t0) / 1000);
    } finally {
      dir.remove();
    }
  };
  return { workload: 'floor', full_commits_per_s: rate('FULL'), normal_commits_per_s: rate('NORMAL'), seconds_each: seconds };
}

// ---------------------------------------------------------------- helpers

interface Env {
  dir: BenchDir;
  swarm: Swarm;
  /** Replaced per phase; the worker calls it when a run it committed reaches its final state. */
  onFinished: (runId: string, status: string) => void;
  /** The metrics' scraper (job.metrics), stopped at tear-down. */
  scraper?: NodeJS.Timeout;
}

async function setUp(job: Job, label: string, pollMs?: number): Promise<Env> {
  const durability = job.durability ?? 'full';
  const dir = freshDir(`${label}-${durability}`, job.base, job.keep);
  const poll = job.pollMs ?? pollMs;
  const swarm = await openSwarm(dir, { durability, ...(job.commitWindowMs !== undefined ? { commitWindowMs: job.commitWindowMs } : {}), ...(poll !== undefined ? { pollMs: poll } : {}), ...(job.metrics ? { metrics: true } : {}) });
  // A scrape renders every metric and reads the store's gauges: part of what metrics cost.
  const metrics = swarm.metrics;
  const scraper = job.metrics && metrics ? setInterval(() => void metrics.render(), job.metrics.scrapeMs) : undefined;
  return { dir, swarm, onFinished: () => undefined, ...(scraper ? { scraper } : {}) };
}

async function tearDown(env: Env): Promise<void> {
  clearInterval(env.scraper);
  await env.swarm.close();
  env.dir.remove();
}

/** How long `fn` takes (ms; 0 without it). */
async function timed(fn: (() => Promise<void>) | undefined): Promise<number> {
  if (!fn) return 0;
  const t0 = nowMs();
  await fn();
  return nowMs() - t0;
}

/**
 * Keep `inFlight` runs of `workflow` going until `total` have finished (a new run starts as each one
 * finishes). Resolves with the run ids and the wall time from the first start to the last finish.
 */
async function drive(env: Env, workflow: string, total: number, inFlight: number): Promise<{ ids: string[]; wallMs: number }> {
  const ids: string[] = [];
  let started = 0;
  let finished = 0;
  let failed = 0;
  const t0 = nowMs();
  let t1 = t0;
  await new Promise<void>((resolveAll, rejectAll) => {
    const startOne = (): void => {
      started++;
      env.swarm.startRun(workflow).then(
        (id) => {
          ids.push(id);
        },
        (e: unknown) => rejectAll(e instanceof Error ? e : new Error(String(e))),
      );
    };
    // Phases do not overlap, so every run finishing now is one of ours.
    env.onFinished = (_runId, status) => {
      finished++;
      if (status !== 'completed') failed++;
      if (started < total) startOne();
      if (finished === total) {
        t1 = nowMs();
        if (failed) rejectAll(new Error(`${failed} of ${total} ${workflow} runs did not complete`));
        else resolveAll();
      }
    };
    for (let i = 0; i < Math.min(inFlight, total); i++) startOne();
  });
  env.onFinished = () => undefined;
  return { ids, wallMs: t1 - t0 };
}

// ---------------------------------------------------------------- linear

/**
 * Throughput workloads poll every 5 ms when idle. startRun in the same process does not wake an idle
 * worker, so with the default 200 ms the first batch of a measured phase would wait for the poll; in
 * steady state the worker is never idle and the poll is not involved. (The latency workload keeps the
 * default and reports that wait as start latency.)
 */
const THROUGHPUT_POLL_MS = 5;

/**
 * 200 runs of a 10-step chain of noop steps, 32 runs in flight, one in-process worker.
 *
 * Variant `precreated` (a diagnostic, not in the brief): all 200 runs are created before the clock
 * starts and a fresh worker with concurrency 32 drains them, so run creation (one transaction per
 * startRun) is out of the measurement and what is left is the per-step cost of the worker alone.
 *
 * Variant `backlog`: the same with 2,400 runs queued before the worker starts (400 with --quick).
 * Each claim then has thousands of active runs to choose from; its throughput over the 200-run
 * workload's, measured in the same run, shows whether a claim's cost grows with the queue.
 */
export const BACKLOG_RUNS = 2400;

async function linear(job: Job): Promise<LinearResult> {
  const backlog = job.variant === 'backlog';
  const runs = (backlog ? (job.quick ? 400 : BACKLOG_RUNS) : job.quick ? 40 : 200) * (job.scale ?? 1);
  const stepsPerRun = 10;
  const inFlight = 32;
  const precreated = job.variant === 'precreated' || backlog;
  const concurrency = precreated ? inFlight : 64;
  const env = await setUp(job, 'linear', THROUGHPUT_POLL_MS);
  try {
    const { swarm } = env;
    await swarm.registerAgent(NOOP_AGENT_DIR);
    await swarm.registerWorkflow(writeWorkflow(env.dir, 'linear10', 'noop@1.0.0', chainSteps(stepsPerRun)));
    const warmWorker = swarm.worker({ concurrency, onFinished: (id, status) => env.onFinished(id, status) });
    // Warm-up (JIT, statement cache, file growth): not measured.
    await drive(env, 'linear10', job.quick ? 8 : job.fullWarmUp ? 200 * job.fullWarmUp : 32, inFlight);
    await job.hooks?.beforeMeasure?.();
    const phase = new Phase({ trace: job.trace, label: job.profileLabel ?? jobKey(job), ...(job.profileDir ? { profileDir: job.profileDir } : {}) });
    let ids: string[];
    let wallMs: number;
    if (precreated) {
      await warmWorker.stop();
      ids = [];
      for (let i = 0; i < runs; i++) ids.push(await swarm.startRun('linear10'));
      let finished = 0;
      let failed = 0;
      let t1 = 0;
      const done = new Promise<void>((resolveAll) => {
        env.onFinished = (_id, status) => {
          if (status !== 'completed') failed++;
          if (++finished === runs) {
            t1 = nowMs();
            resolveAll();
          }
        };
      });
      await phase.start();
      const t0 = nowMs();
      swarm.worker({ concurrency, onFinished: (id, status) => env.onFinished(id, status) });
      await done;
      wallMs = t1 - t0;
      if (failed) throw new Error(`${failed} of ${runs} runs did not complete`);
    } else {
      await phase.start();
      ({ ids, wallMs } = await drive(env, 'linear10', runs, inFlight));
    }
    wallMs += await timed(job.hooks?.afterMeasure);
    const measured = await phase.end();
    const wanted = new Set(ids);
    const rows = (await swarm.listRuns({ workflow: 'linear10', limit: 100_000 })).filter((r) => wanted.has(r.id));
    // Pre-created runs wait in the queue by design, so their latency is counted from their first claim.
    const lat = rows.map((r) => (r.completed_at ?? Number.NaN) - (precreated ? (r.started_at ?? Number.NaN) : r.created_at));
    const steps = runs * stepsPerRun;
    return {
      workload: 'linear',
      ...(job.variant ? { variant: job.variant } : {}),
      durability: job.durability ?? 'full',
      commit_window_ms: swarm.config.commitWindowMs,
      runs,
      steps,
      in_flight: inFlight,
      worker_concurrency: concurrency,
      wall_ms: wallMs,
      steps_per_s: steps / (wallMs / 1000),
      run_p50_ms: percentile(lat, 50),
      run_p99_ms: percentile(lat, 99),
      ...measured,
    };
  } finally {
    await tearDown(env);
  }
}

// ---------------------------------------------------------------- fan-out

/** One run: start → 1000 parallel noop steps → join; workflow concurrency 1000, worker concurrency 256. */
async function fanout(job: Job): Promise<FanoutResult> {
  const width = job.quick ? 200 : 1000;
  const concurrency = 256;
  const env = await setUp(job, 'fanout', THROUGHPUT_POLL_MS);
  try {
    const { swarm } = env;
    await swarm.registerAgent(NOOP_AGENT_DIR);
    await swarm.registerWorkflow(writeWorkflow(env.dir, 'fanout', 'noop@1.0.0', fanOutSteps(width), width));
    await swarm.registerWorkflow(writeWorkflow(env.dir, 'fanout-warm', 'noop@1.0.0', fanOutSteps(64), 64));
    swarm.worker({ concurrency, onFinished: (id, status) => env.onFinished(id, status) });
    await (job.fullWarmUp && !job.quick ? drive(env, 'fanout', job.fullWarmUp, 1) : drive(env, 'fanout-warm', 2, 1));
    await job.hooks?.beforeMeasure?.();

    const phase = new Phase({ trace: job.trace, label: job.profileLabel ?? jobKey(job), ...(job.profileDir ? { profileDir: job.profileDir } : {}) });
    await phase.start();
    const sampler = new RssSampler(10);
    const repeats = job.scale ?? 1;
    const driven = await drive(env, 'fanout', repeats, 1);
    const ids = driven.ids;
    const wallMs = driven.wallMs + (await timed(job.hooks?.afterMeasure));
    const rss = sampler.stop();
    const measured = await phase.end();
    const row = (await swarm.getRun(ids[0] as string)).run;
    const hwm = procStatus()?.hwm;
    const steps = (width + 2) * repeats;
    return {
      workload: 'fanout',
      durability: job.durability ?? 'full',
      width,
      steps,
      worker_concurrency: concurrency,
      makespan_ms: wallMs,
      run_row_ms: (row.completed_at ?? Number.NaN) - row.created_at,
      steps_per_s: steps / (wallMs / 1000),
      rss_baseline_mb: rss.baseline / MB,
      rss_peak_mb: rss.peak / MB,
      vm_hwm_mb: hwm !== undefined && Number.isFinite(hwm) ? hwm / MB : null,
      ...measured,
    };
  } finally {
    await tearDown(env);
  }
}

// ---------------------------------------------------------------- latency

/**
 * Idle step → next step latency: chains of 101 `tick` steps, one run at a time, so each step's
 * successor is the only work in the system. `tick` is a built-in registered with
 * `swarm.defineBuiltin` that stamps `process.hrtime` on entry and just before it returns; a sample is
 * (entry of step n+1) − (return of step n). The event log cannot measure this: STEP_COMPLETED of n and
 * STEP_STARTED of n+1 are written by the same transaction and carry the same millisecond `at`.
 */
async function latency(job: Job): Promise<LatencyResult> {
  const runs = job.quick ? 2 : 10;
  const chain = 101;
  // Default configuration (poll_interval_ms 200): the step→next path never waits on the poll, but a run
  // started on an idle worker does (startRun does not wake a worker in the same process), which is
  // reported separately as start latency.
  const env = await setUp(job, 'latency');
  try {
    const { swarm } = env;
    const stamps = new Map<string, { start: bigint; end: bigint }>();
    swarm.defineBuiltin('tick', async (_inputs, ctx) => {
      const start = process.hrtime.bigint();
      const key = `${ctx.runId}/${ctx.stepId}`;
      stamps.set(key, { start, end: process.hrtime.bigint() });
      return {};
    });
    await swarm.registerAgent(writeBuiltinAgent(env.dir, 'tick', 'tick'));
    const steps = chainSteps(chain);
    await swarm.registerWorkflow(writeWorkflow(env.dir, 'chain', 'tick@1.0.0', steps));
    swarm.worker({ concurrency: 16, onFinished: (id, status) => env.onFinished(id, status) });
    await drive(env, 'chain', 1, 1); // warm-up

    const samples: number[] = [];
    const starts: number[] = [];
    const phase = new Phase({ trace: job.trace, label: job.profileLabel ?? jobKey(job), ...(job.profileDir ? { profileDir: job.profileDir } : {}) });
    await phase.start();
    for (let r = 0; r < runs; r++) {
      const t0 = process.hrtime.bigint();
      const { ids } = await drive(env, 'chain', 1, 1);
      const runId = ids[0] as string;
      const first = stamps.get(`${runId}/${steps[0]?.id}`);
      if (first) starts.push(Number(first.start - t0) / 1e6);
      for (let i = 1; i < steps.length; i++) {
        const prev = stamps.get(`${runId}/${steps[i - 1]?.id}`);
        const next = stamps.get(`${runId}/${steps[i]?.id}`);
        if (!prev || !next) throw new Error(`missing tick stamps in run ${runId} at step ${i}`);
        samples.push(Number(next.start - prev.end) / 1e6);
      }
    }
    const measured = await phase.end();
    return {
      workload: 'latency',
      durability: job.durability ?? 'full',
      method: 'in-process hrtime: tick builtin entry of step n+1 minus return of step n',
      runs,
      chain_length: chain,
      samples: samples.length,
      p50_ms: percentile(samples, 50),
      p90_ms: percentile(samples, 90),
      p99_ms: percentile(samples, 99),
      max_ms: Math.max(...samples),
      mean_ms: samples.reduce((a, b) => a + b, 0) / samples.length,
      start_p50_ms: percentile(starts, 50),
      start_max_ms: Math.max(...starts),
      poll_ms: swarm.config.pollMs,
      ...measured,
    };
  } finally {
    await tearDown(env);
  }
}
