/**
 * Plumbing of the PostgreSQL measurements: worker processes, keeping runs in flight, what the server
 * did during a measured phase (write transactions, WAL, CPU), and the shapes of the results.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Durability } from '../src/index.js';
import { nowMs, percentile } from './harness.js';
import { mergePgTraces, type PgTraceReport } from './pg-trace.js';
import type { Stamp, ToParent, ToWorker, WorkerConfig } from './pg-worker.js';

export type System = 'floor' | 'swarm' | 'dbos' | 'graphile';
export type PgWorkload = 'floor' | 'linear' | 'linear-backlog' | 'fanout' | 'latency';

/** One measurement, run in its own process against its own fresh database. */
export interface PgJob {
  system: System;
  workload: PgWorkload;
  /** Processes executing steps (Swarm and graphile-worker: worker processes; DBOS runs in the driver). */
  workers: number;
  durability: Durability;
  quick: boolean;
  /** linear: how many runs (chains) to go through; default 200, 40 with `quick`. */
  linearRuns?: number;
  /** linear and linear-backlog: unmeasured runs first, in the same processes; default 32, 8 with `quick`. */
  warmupRuns?: number;
  /** The fresh database of this measurement. */
  url: string;
  /** Parent directory for temp project directories. */
  base?: string;
  keep: boolean;
  /** Collect pg_stat_statements for the measured phase (the server must load it: --stats). */
  stats: boolean;
  /** Count and time the queries of Swarm's worker processes (pg-trace.ts). */
  trace: boolean;
  /** Swarm worker overrides. */
  pollMs?: number;
  commitWindowMs?: number;
  /** Floor: connection counts to measure. */
  floorConns?: number[];
}

/** What the server and the machine did during a measured phase. */
export interface PhaseCounters {
  /** Transactions that wrote (took a transaction id) on the whole server. */
  write_xacts: number;
  /** WAL generated on the whole server, in bytes. */
  wal_bytes: number;
  /** All CPUs of the machine: share of time busy (100 = every core busy). */
  machine_busy_pct: number;
  /** CPU time of the processes executing steps (worker processes, or the driver for DBOS). */
  workers_cpu_ms: number;
  /** CPU time of the process starting runs (for DBOS: the same process as the workers). */
  driver_cpu_ms: number;
  /** CPU time of the PostgreSQL server's processes on this machine (NaN when it cannot be read). */
  server_cpu_ms: number;
  /** Top statements of the phase (`--stats`). */
  statements?: StatementStat[];
  /**
   * `--stats`: what the database's non-idle sessions were doing, sampled every 10 ms during the phase
   * (`state/wait_event_type:wait_event` from pg_stat_activity, e.g. `active/Lock:transactionid` for a
   * row-lock wait, `idle in transaction/Client:ClientRead` for a transaction waiting on its client),
   * as session-samples per sample.
   */
  waits?: Record<string, number>;
}

export interface StatementStat {
  calls: number;
  total_ms: number;
  mean_ms: number;
  rows: number;
  query: string;
}

export interface FloorResult {
  system: 'floor';
  workload: 'floor';
  seconds_each: number;
  /** Single-row INSERT autocommits per second, by connection count, at synchronous_commit on / off. */
  on: Record<string, number>;
  off: Record<string, number>;
}

export interface ThroughputResult extends PhaseCounters {
  system: Exclude<System, 'floor'>;
  workload: 'linear' | 'linear-backlog' | 'fanout';
  durability: Durability;
  workers: number;
  runs: number;
  steps: number;
  in_flight: number;
  /** Steps each worker process may run at once (DBOS: not limited). */
  worker_concurrency: number;
  /** First start → the last run finished (for Swarm and DBOS: its final commit; graphile-worker: the job table empty). */
  wall_ms: number;
  steps_per_s: number;
  /** Run start called → the driver heard it finished (linear-backlog: the run's first claim → its completion, from the run rows). */
  run_p50_ms: number;
  run_p99_ms: number;
  /** Largest resident set of one worker process (ru_maxrss). */
  rss_max_mb: number;
  /** Queries of the worker processes during the phase (`--trace`, Swarm only). */
  trace?: PgTraceReport;
}

export interface LatencyResult {
  system: Exclude<System, 'floor'>;
  workload: 'latency';
  durability: Durability;
  workers: number;
  method: string;
  runs: number;
  chain_length: number;
  samples: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  mean_ms: number;
  /** Run start called → entry of its first step. */
  start_p50_ms: number;
  start_max_ms: number;
}

export type PgResult = FloorResult | ThroughputResult | LatencyResult;

/** A stable name for a job, e.g. `swarm/linear/full/4w`. */
export function pgJobKey(job: Pick<PgJob, 'system' | 'workload' | 'durability' | 'workers'>): string {
  if (job.system === 'floor') return 'floor';
  return `${job.system}/${job.workload}/${job.durability}/${job.workers}w`;
}

// ---------------------------------------------------------------- worker processes

export interface Collected {
  cpu_ms: number;
  rss_mb: number;
  stamps: Stamp[];
  trace?: PgTraceReport;
}

const WORKER_ENTRY = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './pg-worker.ts' : './pg-worker.js', import.meta.url));

/**
 * N worker processes with the same configuration. `finished` is called for each run (chain) a worker
 * reports finished; `failed` rejects if a worker dies or reports an error while the set is running.
 */
export class WorkerSet {
  finished: (id: string, status: string) => void = () => undefined;
  readonly failed: Promise<never>;
  private fail: (e: Error) => void = () => undefined;
  private stopping = false;
  private readonly collectWaiters = new Map<ChildProcess, (m: Collected) => void>();
  private readonly pauseWaiters = new Map<ChildProcess, () => void>();

  private constructor(private readonly children: ChildProcess[]) {
    this.failed = new Promise<never>((_, reject) => {
      this.fail = reject;
    });
    this.failed.catch(() => undefined);
  }

  static async start(n: number, config: WorkerConfig): Promise<WorkerSet> {
    const children: ChildProcess[] = [];
    const env = { ...process.env, ...(config.kind === 'graphile' ? { NO_LOG_SUCCESS: '1' } : {}) };
    for (let i = 0; i < n; i++) children.push(fork(WORKER_ENTRY, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env }));
    const set = new WorkerSet(children);
    const ready = children.map(
      (child, i) =>
        new Promise<void>((resolve, reject) => {
          child.on('message', (m: ToParent) => {
            if (m.type === 'ready') resolve();
            else if (m.type === 'finished') set.finished(m.id, m.status);
            else if (m.type === 'collected') set.collectWaiters.get(child)?.({ cpu_ms: m.cpu_ms, rss_mb: m.rss_mb, stamps: m.stamps, ...(m.trace ? { trace: m.trace } : {}) });
            else if (m.type === 'paused') set.pauseWaiters.get(child)?.();
            else {
              const e = new Error(`worker ${i}: ${m.error}`);
              reject(e);
              set.fail(e);
            }
          });
          child.on('exit', (code, signal) => {
            const e = new Error(`worker ${i} exited with ${signal ?? code}`);
            reject(e);
            if (!set.stopping) set.fail(e);
          });
        }),
    );
    try {
      await Promise.all(ready);
    } catch (e) {
      await set.stop();
      throw e;
    }
    return set;
  }

  private post(m: ToWorker): void {
    for (const c of this.children) if (c.connected) c.send(m);
  }

  /** Start of the measured phase: the workers reset their CPU counters. */
  mark(): void {
    this.post({ type: 'mark' });
  }

  /**
   * Stop the Swarm worker of every process (its steps in flight finish first) and wait until they
   * have; the processes stay up, with their connections and compiled code, for `resume`.
   */
  async pause(): Promise<void> {
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            this.pauseWaiters.set(c, resolve);
            c.send({ type: 'pause' } satisfies ToWorker);
          }),
      ),
    );
    this.pauseWaiters.clear();
  }

  /** A new Swarm worker in every process, with this concurrency each. */
  resume(concurrency: number): void {
    this.post({ type: 'resume', concurrency });
  }

  /** CPU time since `mark` (summed), the largest RSS, and every tick stamp the workers recorded (then forgotten). */
  async collect(): Promise<Collected> {
    const answers = await Promise.all(
      this.children.map(
        (c) =>
          new Promise<Collected>((resolve) => {
            this.collectWaiters.set(c, resolve);
            c.send({ type: 'collect' } satisfies ToWorker);
          }),
      ),
    );
    this.collectWaiters.clear();
    const traces = answers.flatMap((a) => (a.trace ? [a.trace] : []));
    return {
      cpu_ms: answers.reduce((a, b) => a + b.cpu_ms, 0),
      rss_mb: Math.max(...answers.map((a) => a.rss_mb)),
      stamps: answers.flatMap((a) => a.stamps),
      ...(traces.length ? { trace: mergePgTraces(traces) } : {}),
    };
  }

  /** Stop every worker gracefully (SIGKILL after 15 s) and wait for them to exit. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const timer = setTimeout(() => c.kill('SIGKILL'), 15_000);
            c.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            if (c.connected) c.send({ type: 'stop' } satisfies ToWorker);
            else c.kill('SIGTERM');
          }),
      ),
    );
  }
}

// ---------------------------------------------------------------- keeping runs in flight

export interface FlowResult {
  t0: number;
  t1: number;
  wallMs: number;
  /** Start called → finish heard, per run, in ms. */
  latencies: number[];
  ids: string[];
}

/**
 * Keep `inFlight` runs going until `total` have finished: a new one starts as each finishes. `start`
 * starts one run and resolves with its id; whoever learns that a run finished calls `finish`.
 */
export class Flow {
  private started = 0;
  private finishedCount = 0;
  private failedCount = 0;
  private readonly startedAt = new Map<string, number>();
  private readonly finishedAt = new Map<string, number>();
  private readonly latencies: number[] = [];
  private readonly ids: string[] = [];
  private resolve: (r: FlowResult) => void = () => undefined;
  private reject: (e: Error) => void = () => undefined;
  private t0 = 0;

  constructor(
    private readonly total: number,
    private readonly inFlight: number,
    private readonly start: () => Promise<string>,
    private readonly label: string,
  ) {}

  run(failed?: Promise<never>): Promise<FlowResult> {
    const done = new Promise<FlowResult>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.t0 = nowMs();
    for (let i = 0; i < Math.min(this.inFlight, this.total); i++) this.startOne();
    return failed ? Promise.race([done, failed]) : done;
  }

  private startOne(): void {
    this.started++;
    const t = nowMs();
    this.start().then(
      (id) => {
        this.ids.push(id);
        const f = this.finishedAt.get(id);
        if (f !== undefined) this.latencies.push(f - t);
        else this.startedAt.set(id, t);
      },
      (e: unknown) => this.reject(e instanceof Error ? e : new Error(String(e))),
    );
  }

  finish = (id: string, status: string): void => {
    const t = nowMs();
    const s = this.startedAt.get(id);
    if (s !== undefined) {
      this.latencies.push(t - s);
      this.startedAt.delete(id);
    } else this.finishedAt.set(id, t);
    this.finishedCount++;
    if (status !== 'completed') this.failedCount++;
    if (this.started < this.total) this.startOne();
    if (this.finishedCount === this.total) {
      if (this.failedCount) this.reject(new Error(`${this.label}: ${this.failedCount} of ${this.total} runs did not complete`));
      else this.resolve({ t0: this.t0, t1: t, wallMs: t - this.t0, latencies: this.latencies, ids: this.ids });
    }
  };
}

export function runLatencies(r: FlowResult): { run_p50_ms: number; run_p99_ms: number } {
  return { run_p50_ms: percentile(r.latencies, 50), run_p99_ms: percentile(r.latencies, 99) };
}

// ---------------------------------------------------------------- the server during a phase

/** Busy and total jiffies of all CPUs (/proc/stat); undefined off Linux. */
function cpuTimes(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/**
 * CPU time (ms) of the PostgreSQL server's processes on this machine (every process named
 * `postgres`: the postmaster, the backends, the WAL writer…), from /proc; undefined off Linux. With a
 * server on another machine it reads 0. Backends that exit during a phase take their time with them;
 * the pools keep theirs open.
 */
function serverCpuMs(): number | undefined {
  try {
    let ticks = 0;
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        continue;
      }
      const close = stat.lastIndexOf(')');
      if (stat.slice(stat.indexOf('(') + 1, close) !== 'postgres') continue;
      const f = stat.slice(close + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    }
    return ticks * 10; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/**
 * Counters around a measured phase, read from the server without disturbing it: transaction ids
 * handed out (one per transaction that wrote) and the WAL position, both exact at once (the
 * statistics views lag by up to a second).
 */
export class PhaseProbe {
  private before: { xmax: number; lsn: string; cpu: ReturnType<typeof cpuTimes>; driver: NodeJS.CpuUsage; server: number | undefined } | undefined;
  private sampling: Promise<void> | undefined;
  private sample = false;
  private samples = 0;
  private readonly waits = new Map<string, number>();

  private constructor(
    private readonly client: pg.Client,
    /** A second connection for the wait-event sampler (`--stats`). */
    private readonly sampler: pg.Client | undefined,
  ) {}

  static async open(url: string, stats: boolean): Promise<PhaseProbe> {
    const connect = async (): Promise<pg.Client> => {
      const c = new pg.Client({ connectionString: url, application_name: 'bench-probe' });
      c.on('error', () => undefined);
      await c.connect();
      return c;
    };
    const client = await connect();
    if (stats) await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    return new PhaseProbe(client, stats ? await connect() : undefined);
  }

  private get stats(): boolean {
    return this.sampler !== undefined;
  }

  private async sampleWaits(c: pg.Client): Promise<void> {
    while (this.sample) {
      const r = await c.query<{ w: string; n: number }>(
        `SELECT state || '/' || coalesce(wait_event_type || ':' || wait_event, 'on CPU') AS w, count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND application_name <> 'bench-probe' AND state IS NOT NULL AND state <> 'idle' GROUP BY 1`,
      );
      this.samples++;
      for (const row of r.rows) this.waits.set(row.w, (this.waits.get(row.w) ?? 0) + row.n);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  private async read(): Promise<{ xmax: number; lsn: string }> {
    const r = await this.client.query<{ xmax: string; lsn: string }>('SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xmax, pg_current_wal_lsn()::text AS lsn');
    const row = r.rows[0];
    return { xmax: Number(row?.xmax), lsn: row?.lsn ?? '0/0' };
  }

  async start(): Promise<void> {
    if (this.stats) await this.client.query('SELECT pg_stat_statements_reset()');
    const r = await this.read();
    this.before = { ...r, cpu: cpuTimes(), driver: process.cpuUsage(), server: serverCpuMs() };
    if (this.sampler) {
      this.sample = true;
      this.sampling = this.sampleWaits(this.sampler).catch(() => undefined);
    }
  }

  /** `workersCpuMs`: CPU time of the step-executing processes (undefined: they are this process). */
  async end(workersCpuMs?: number): Promise<PhaseCounters> {
    const b = this.before;
    if (!b) throw new Error('PhaseProbe.end before start');
    const driver = process.cpuUsage(b.driver);
    const cpu = cpuTimes();
    const server = serverCpuMs();
    this.sample = false;
    await this.sampling;
    const r = await this.read();
    const wal = await this.client.query<{ d: string }>('SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::text AS d', [r.lsn, b.lsn]);
    const driverMs = (driver.user + driver.system) / 1000;
    const out: PhaseCounters = {
      // The probe's own two reads take no transaction id.
      write_xacts: r.xmax - b.xmax,
      wal_bytes: Number(wal.rows[0]?.d ?? Number.NaN),
      machine_busy_pct: cpu && b.cpu ? (100 * (cpu.busy - b.cpu.busy)) / Math.max(1, cpu.total - b.cpu.total) : Number.NaN,
      workers_cpu_ms: workersCpuMs ?? driverMs,
      driver_cpu_ms: driverMs,
      server_cpu_ms: server !== undefined && b.server !== undefined ? server - b.server : Number.NaN,
    };
    if (this.stats) {
      const s = await this.client.query<{ calls: string; total: number; mean: number; rows: string; query: string }>(
        `SELECT calls::text, total_exec_time AS total, mean_exec_time AS mean, rows::text, query FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT LIKE '%pg_stat_statements%'
         ORDER BY total_exec_time DESC LIMIT 20`,
      );
      out.statements = s.rows.map((row) => ({ calls: Number(row.calls), total_ms: row.total, mean_ms: row.mean, rows: Number(row.rows), query: row.query.replace(/\s+/g, ' ').slice(0, 200) }));
      out.waits = Object.fromEntries([...this.waits].sort((a, b) => b[1] - a[1]).map(([k, n]) => [k, n / Math.max(1, this.samples)]));
    }
    return out;
  }

  async close(): Promise<void> {
    this.sample = false;
    await this.sampling;
    await this.client.end().catch(() => undefined);
    await this.sampler?.end().catch(() => undefined);
  }
}

/** The number of linear runs (chains) a job goes through. */
export function linearRuns(job: PgJob): number {
  return job.linearRuns ?? (job.quick ? 40 : 200);
}

/** linear-backlog: the runs queued before the workers start (2,400; 400 with `quick`). */
export const BACKLOG_RUNS = 2400;

export function backlogRuns(job: PgJob): number {
  return job.quick ? 400 : BACKLOG_RUNS;
}

/** linear: the unmeasured runs before the measured ones (JIT, prepared statements, table growth). */
export function warmupRuns(job: PgJob): number {
  return job.warmupRuns ?? (job.quick ? 8 : 32);
}
