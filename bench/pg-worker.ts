/**
 * A worker process of the PostgreSQL benchmark: `node dist/bench/pg-worker.js '<config json>'`, forked
 * by a measurement (pg-workloads.ts, pg-peers.ts) with an IPC channel. It runs one of
 *
 *   - a Swarm worker: `Swarm.open` on the database URL, then `swarm.worker({...})`: what `swarm worker`
 *     does, plus a `tick` built-in that stamps its entry and return (the latency workload);
 *   - a graphile-worker runner with one task, `step`, that enqueues the next job of its chain.
 *
 * and tells its parent when a run (a chain) has finished. Messages in: `mark` (start of the measured
 * phase), `collect` (send the CPU time since `mark` and the tick stamps, then forget them), `pause`
 * (Swarm: stop the worker, keep the process, its connections and its compiled code; answered with
 * `paused`), `resume` (Swarm: a new worker with the concurrency given), `stop`.
 */
import { Phase } from './phase.js';
import type { Runner, Task } from 'graphile-worker';
import { Swarm, type Durability, type Worker } from '../src/index.js';
import { installPgTrace, pgTraceReport, resetPgTrace, type PgTraceReport } from './pg-trace.js';

export interface SwarmWorkerConfig {
  kind: 'swarm';
  url: string;
  /** Project directory (holds the stub swarm.yaml) and SWARM_HOME. */
  root: string;
  home: string;
  durability: Durability;
  concurrency: number;
  pollMs?: number;
  commitWindowMs?: number;
  /** Count and time every query this process sends (pg-trace.ts). */
  trace?: boolean;
}

export interface GraphileWorkerConfig {
  kind: 'graphile';
  url: string;
  concurrency: number;
  maxPoolSize: number;
}

export type WorkerConfig = SwarmWorkerConfig | GraphileWorkerConfig;

/** A step's entry and return, on the machine's monotonic clock (comparable across processes). */
export interface Stamp {
  key: string;
  start: number;
  end: number;
}

export type ToParent =
  | { type: 'ready' }
  | { type: 'finished'; id: string; status: string }
  | { type: 'collected'; cpu_ms: number; rss_mb: number; stamps: Stamp[]; trace?: PgTraceReport }
  | { type: 'paused' }
  | { type: 'error'; error: string };

export type ToWorker = { type: 'mark' } | { type: 'collect' } | { type: 'pause' } | { type: 'resume'; concurrency: number } | { type: 'stop' };

/** graphile-worker job payload: chain id, position, chain length, whether to stamp. */
export interface ChainJob {
  c: string;
  i: number;
  n: number;
}

const hrMs = (): number => Number(process.hrtime.bigint()) / 1e6;

function send(m: ToParent): void {
  process.send?.(m);
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
  const stamps: Stamp[] = [];
  let cpuMark = process.cpuUsage();
  let stop: () => Promise<void>;
  let pause: () => Promise<void> = async () => undefined;
  let resume: (concurrency: number) => void = () => undefined;

  const trace = config.kind === 'swarm' && config.trace === true;
  if (trace) installPgTrace();
  if (config.kind === 'swarm') {
    const swarm = await Swarm.open({
      cwd: config.root,
      env: { SWARM_HOME: config.home, SWARM_DATABASE_URL: config.url },
      overrides: {
        durability: config.durability,
        ...(config.pollMs !== undefined ? { pollMs: config.pollMs } : {}),
        ...(config.commitWindowMs !== undefined ? { commitWindowMs: config.commitWindowMs } : {}),
      },
    });
    swarm.defineBuiltin('tick', async (_inputs, ctx) => {
      const start = hrMs();
      stamps.push({ key: `${ctx.runId}/${ctx.stepId}`, start, end: hrMs() });
      return {};
    });
    const startWorker = (concurrency: number): Worker => swarm.worker({ concurrency, onFinished: (id, status) => send({ type: 'finished', id, status }) });
    let worker = startWorker(config.concurrency);
    pause = () => worker.stop();
    resume = (concurrency) => {
      worker = startWorker(concurrency);
    };
    stop = () => swarm.close();
  } else {
    const step: Task = async (payload, helpers) => {
      const start = hrMs();
      const job = payload as ChainJob;
      const end = hrMs();
      stamps.push({ key: `${job.c}/${job.i}`, start, end });
      if (job.i + 1 < job.n) await helpers.addJob('step', { c: job.c, i: job.i + 1, n: job.n } satisfies ChainJob);
      else send({ type: 'finished', id: job.c, status: 'completed' });
    };
    // Loaded only here: a Swarm worker process does not load the peer.
    const { Logger, run } = await import('graphile-worker');
    // Only warnings and errors: the default logger prints a line per job.
    const logger = new Logger(() => (level, message) => {
      const name: string = level;
      if (name === 'error' || name === 'warning') console.error(`graphile-worker ${name}: ${message}`);
    });
    const runner: Runner = await run({
      connectionString: config.url,
      concurrency: config.concurrency,
      maxPoolSize: config.maxPoolSize,
      noHandleSignals: true,
      logger,
      taskList: { step },
    });
    stop = () => runner.stop();
  }

  // `--profile <dir>`: a V8 CPU profile of each measured phase of this process.
  const profileDir = process.env.SWARM_BENCH_PROFILE_DIR;
  let phase: Phase | undefined;
  process.on('message', (m: ToWorker) => {
    if (m.type === 'mark') {
      cpuMark = process.cpuUsage();
      if (trace) resetPgTrace();
      if (profileDir) {
        phase = new Phase({ trace: false, label: `pg-worker-${config.kind}`, profileDir });
        void phase.start();
      }
    }
    else if (m.type === 'collect') {
      const cpu = process.cpuUsage(cpuMark);
      void phase?.end();
      phase = undefined;
      send({ type: 'collected', cpu_ms: (cpu.user + cpu.system) / 1000, rss_mb: process.resourceUsage().maxRSS / 1024, stamps: stamps.splice(0), ...(trace ? { trace: pgTraceReport() } : {}) });
    } else if (m.type === 'pause') {
      pause().then(
        () => send({ type: 'paused' }),
        (e: unknown) => send({ type: 'error', error: `pausing: ${String(e)}` }),
      );
    } else if (m.type === 'resume') {
      resume(m.concurrency);
    } else if (m.type === 'stop') {
      stop().then(
        () => process.exit(0),
        (e: unknown) => {
          send({ type: 'error', error: `stopping: ${String(e)}` });
          process.exit(1);
        },
      );
    }
  });
  // The parent went away: do not linger.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready' });
}

main().catch((e: unknown) => {
  send({ type: 'error', error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  process.exit(1);
});
