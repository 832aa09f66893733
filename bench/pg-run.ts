/**
 * Swarm on PostgreSQL, with the floor and the peers measured in the same run on the same server.
 * `npm run bench:pg` (= build + `node dist/bench/pg-run.js`); see bench/README.md.
 *
 *   node dist/bench/pg-run.js [--quick] [--repeat N] [--systems floor,swarm,dbos,graphile]
 *                             [--workloads linear,linear-backlog,fanout,latency] [--workers 1,2,4]
 *                             [--durability full|process|both] [--runs N] [--warmup N] [--stats] [--no-save]
 *
 * The server is an embedded PostgreSQL started for the run (fsync on, the settings in pg-server.ts),
 * or `SWARM_BENCH_DATABASE_URL`. Every measurement runs in a fresh child process (the driver, which
 * forks the worker processes) against a fresh database, dropped afterwards; repetitions are
 * interleaved and medians reported.
 */
import { childMain, gitState, hostInfo, runInChild } from './runner.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchOptions, COMMON_OPTIONS, countsOption, intOption, namesOption } from './args.js';
import { REPO_ROOT } from './harness.js';
import { backlogRuns, linearRuns, pgJobKey, warmupRuns, type PgJob, type PgResult, type System } from './pg-drive.js';
import { backlogRatios, floorTable, latencyTable, medianOfReps, pgTargets, pgTargetsTable, pgTraceTable, ratios, ratioTable, statementsReport, throughputTable, type PgSummary } from './pg-report.js';
import { SERVER_SETTINGS, startBenchServer, type BenchServer } from './pg-server.js';

const SYSTEMS = ['floor', 'swarm', 'dbos', 'graphile'] as const;
const WORKLOADS = ['linear', 'linear-backlog', 'fanout', 'latency'] as const;
type Workload = (typeof WORKLOADS)[number];

interface Options {
  quick: boolean;
  repeat: number;
  systems: Set<System>;
  workloads: Set<Workload>;
  workers: number[];
  durabilities: Array<'full' | 'process'>;
  stats: boolean;
  trace: boolean;
  pollMs: number | undefined;
  commitWindowMs: number | undefined;
  floorConns: number[];
  linearRuns: number | undefined;
  warmupRuns: number | undefined;
  base: string | undefined;
  keep: boolean;
  save: boolean;
}

const USAGE = `usage: node dist/bench/pg-run.js [options]
  --quick                  smaller workloads, 1 repetition, worker processes 1,4, durability full (about a minute)
  --repeat <n>             repetitions of every measurement, medians reported (default 3; --quick 1)
  --systems <list>         subset of: ${SYSTEMS.join(', ')} (default: all)
  --workloads <list>       subset of: ${WORKLOADS.join(', ')} (default: all; backlog = linear-backlog,
                           Swarm only: 2,400 runs queued before the workers start, ÷ linear's steps/s)
  --workers <list>         Swarm and graphile-worker worker process counts (default 1,2,4)
  --durability <d>         full, process or both (default both; with both, process measures linear,
                           and 1-worker backlog and latency only)
  --stats                  load pg_stat_statements and print the top statements of each throughput phase
  --trace                  count and time every query of Swarm's worker processes (round trips per step)
  --profile <dir>          write a V8 CPU profile of each measured phase of every worker process into <dir>
  --poll-ms <n>            Swarm workers' idle poll interval (default: the configured default, 200)
  --commit-window-ms <n>   Swarm workers' group-commit window (default 0)
  --floor-conns <list>     connection counts of the floor (default 1,4,16)
  --runs <n>               linear: runs (chains) to go through, for Swarm and the peers (default 200,
                           --quick 40); larger tables show what a longer life does to each system
  --warmup <n>             linear: unmeasured runs first, in the same processes, for Swarm and the peers
                           (default 32, --quick 8); a few thousand steps leave JIT compilation behind
  --dir <path>             parent of the temp directories and of the embedded server's data directory
  --keep                   keep the temp project directories
  --no-save                do not write bench/results/pg-*.json
environment: SWARM_BENCH_DATABASE_URL=postgres://user:pass@host/db  use that server (the user must be
  allowed to CREATE DATABASE) instead of starting an embedded one`;

function parseOptions(argv: readonly string[]): Options {
  const v = benchOptions(
    argv,
    {
      ...COMMON_OPTIONS,
      systems: { type: 'string' },
      workloads: { type: 'string' },
      workers: { type: 'string' },
      durability: { type: 'string' },
      stats: { type: 'boolean' },
      profile: { type: 'string' },
      'poll-ms': { type: 'string' },
      'commit-window-ms': { type: 'string' },
      'floor-conns': { type: 'string' },
      runs: { type: 'string' },
      warmup: { type: 'string' },
    },
    USAGE,
  );
  const quick = v.quick ?? false;
  let durabilities: Options['durabilities'] = quick ? ['full'] : ['full', 'process'];
  if (v.durability !== undefined) {
    if (v.durability === 'both') durabilities = ['full', 'process'];
    else if (v.durability === 'full' || v.durability === 'process') durabilities = [v.durability];
    else throw new Error(`--durability must be full, process or both, not '${v.durability}'`);
  }
  const commitWindowMs = v['commit-window-ms'] === undefined ? undefined : Number(v['commit-window-ms']);
  if (commitWindowMs !== undefined && !(commitWindowMs >= 0 && commitWindowMs <= 10)) throw new Error('--commit-window-ms needs a number from 0 to 10');
  if (v.profile !== undefined) process.env.SWARM_BENCH_PROFILE_DIR = resolve(v.profile);
  return {
    quick,
    repeat: intOption(v.repeat, '--repeat', 1) ?? (quick ? 1 : 3),
    systems: v.systems === undefined ? new Set(SYSTEMS) : namesOption(v.systems, '--systems', SYSTEMS, { 'graphile-worker': 'graphile' }),
    workloads: v.workloads === undefined ? new Set(WORKLOADS) : namesOption(v.workloads, '--workloads', WORKLOADS, { 'fan-out': 'fanout', backlog: 'linear-backlog' }),
    workers: v.workers === undefined ? (quick ? [1, 4] : [1, 2, 4]) : countsOption(v.workers, '--workers'),
    durabilities,
    stats: v.stats ?? false,
    trace: v.trace ?? false,
    pollMs: intOption(v['poll-ms'], '--poll-ms', 1),
    commitWindowMs,
    floorConns: v['floor-conns'] === undefined ? [1, 4, 16] : countsOption(v['floor-conns'], '--floor-conns'),
    linearRuns: intOption(v.runs, '--runs', 32, 100_000),
    warmupRuns: intOption(v.warmup, '--warmup', 0, 100_000),
    base: v.dir,
    keep: v.keep ?? false,
    save: !(v['no-save'] ?? false),
  };
}

/** A job without its database (each repetition gets a fresh one). */
type PlannedJob = Omit<PgJob, 'url'>;

/**
 * What to measure. Swarm: every workload at every worker count at full; at process (when both are
 * asked for) linear at every worker count, linear-backlog and latency with the fewest. DBOS runs in
 * one process: linear at every durability, latency at full. graphile-worker: linear at full with the
 * smallest and the largest worker count and at process with the largest, latency at full with one
 * worker process.
 */
function plan(o: Options): PlannedJob[] {
  const common = { quick: o.quick, keep: o.keep, stats: o.stats, trace: o.trace, ...(o.linearRuns ? { linearRuns: o.linearRuns } : {}), ...(o.warmupRuns !== undefined ? { warmupRuns: o.warmupRuns } : {}), ...(o.base ? { base: o.base } : {}) };
  const swarmExtra = { ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}), ...(o.commitWindowMs !== undefined ? { commitWindowMs: o.commitWindowMs } : {}) };
  const jobs: PlannedJob[] = [];
  const has = (s: System, w?: Workload): boolean => o.systems.has(s) && (w === undefined || o.workloads.has(w));
  if (has('floor')) jobs.push({ system: 'floor', workload: 'floor', workers: 1, durability: 'full', floorConns: o.floorConns, ...common });
  const both = o.durabilities.length > 1;
  for (const w of WORKLOADS) {
    if (!has('swarm', w)) continue;
    for (const d of o.durabilities) {
      // With both durabilities, `process` is the cheap extra: linear at every worker count, the
      // backlog and latency with the fewest worker processes, no fan-out.
      if (both && d === 'process' && w === 'fanout') continue;
      const workers = both && d === 'process' && (w === 'latency' || w === 'linear-backlog') ? [Math.min(...o.workers)] : o.workers;
      for (const n of workers) jobs.push({ system: 'swarm', workload: w, workers: n, durability: d, ...common, ...swarmExtra });
    }
  }
  if (has('dbos', 'linear')) for (const d of o.durabilities) jobs.push({ system: 'dbos', workload: 'linear', workers: 1, durability: d, ...common });
  if (has('dbos', 'latency') && o.durabilities.includes('full')) jobs.push({ system: 'dbos', workload: 'latency', workers: 1, durability: 'full', ...common });
  if (has('graphile', 'linear')) {
    const ends = [...new Set([Math.min(...o.workers), Math.max(...o.workers)])];
    if (o.durabilities.includes('full')) for (const n of ends) jobs.push({ system: 'graphile', workload: 'linear', workers: n, durability: 'full', ...common });
    if (o.durabilities.includes('process')) jobs.push({ system: 'graphile', workload: 'linear', workers: Math.max(...o.workers), durability: 'process', ...common });
  }
  if (has('graphile', 'latency') && o.durabilities.includes('full')) jobs.push({ system: 'graphile', workload: 'latency', workers: 1, durability: 'full', ...common });
  return jobs;
}


/** Run one measurement in a fresh Node process (same Node flags as this one). */
function inChild(job: PgJob, timeoutMs = 180_000 * Math.max(1, ((job.workload === 'linear-backlog' ? backlogRuns(job) : linearRuns(job)) + warmupRuns(job)) / 200)): Promise<PgResult> {
  return runInChild<PgJob, PgResult>(fileURLToPath(import.meta.url), job, pgJobKey(job), timeoutMs);
}

async function runJob(job: PgJob): Promise<PgResult> {
  // Loaded here, in the child: the parent needs none of the engines.
  const { floor, swarmBacklog, swarmFanout, swarmLatency, swarmLinear } = await import('./pg-workloads.js');
  if (job.system === 'floor') return floor(job);
  if (job.system === 'swarm') {
    if (job.workload === 'linear') return swarmLinear(job);
    if (job.workload === 'linear-backlog') return swarmBacklog(job);
    return job.workload === 'fanout' ? swarmFanout(job) : swarmLatency(job);
  }
  // DBOS's own pool use makes pg print a deprecation warning once per process: not ours to fix.
  if (job.system === 'dbos') process.noDeprecation = true;
  const peers = await import('./pg-peers.js');
  if (job.system === 'dbos') return job.workload === 'latency' ? peers.dbosLatency(job) : peers.dbosLinear(job);
  return job.workload === 'latency' ? peers.graphileLatency(job) : peers.graphileLinear(job);
}

function child(jobJson: string): Promise<void> {
  const job = JSON.parse(jobJson) as PgJob;
  return childMain(() => runJob(job));
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv[0] === '--child') return child(argv[1] ?? '{}');
  const o = parseOptions(argv);
  const jobs = plan(o);
  if (jobs.length === 0) throw new Error('nothing to run');
  const started = new Date();
  const t0 = Date.now();
  console.log(`swarm PostgreSQL bench: ${jobs.length} measurement(s) × ${o.repeat} repetition(s)${o.quick ? ' (quick)' : ''}${o.stats ? ' (pg_stat_statements)' : ''}${o.trace ? ' (traced)' : ''}`);
  const loadBefore = loadavg();
  if ((loadBefore[0] ?? 0) > cpus().length / 2) {
    console.log(`  warning: load average is ${loadBefore.map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} CPUs; other work will skew the numbers`);
  }

  const server: BenchServer = await startBenchServer({ stats: o.stats, ...(o.base ? { base: o.base } : {}), log: (l) => console.log(`  ${l}`) });
  let settings: Record<string, string> = {};
  const reps = new Map<string, PgResult[]>();
  try {
    if (o.stats) await server.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    settings = await server.describe();
    console.log(`  server: ${server.kind} ${server.location}; ${Object.entries(settings).map(([k, v]) => `${k}=${v}`).join(', ')}`);
    for (let r = 1; r <= o.repeat; r++) {
      for (const planned of jobs) {
        const key = pgJobKey(planned);
        const t = Date.now();
        const url = await server.createDatabase(planned.system === 'floor' ? 'floor' : planned.system);
        let result: PgResult;
        try {
          result = await inChild({ ...planned, url });
        } finally {
          await server.dropDatabase(url);
        }
        const l = reps.get(key) ?? [];
        l.push(result);
        reps.set(key, l);
        console.log(`  [${r}/${o.repeat}] ${key.padEnd(31)} ${brief(result)}  (${((Date.now() - t) / 1000).toFixed(1)} s)`);
      }
    }
  } finally {
    await server.stop();
  }

  const summaries: PgSummary[] = jobs.map((job) => {
    const key = pgJobKey(job);
    const l = reps.get(key) ?? [];
    return { key, job, reps: l.length, median: medianOfReps(l) };
  });
  const rs = ratios(summaries);
  const backlog = backlogRatios(summaries, reps);
  const targets = pgTargets(summaries, backlog);
  const elapsed = (Date.now() - t0) / 1000;

  console.log(`\nPostgreSQL ${settings.server_version ?? ''} (${server.kind}); medians of ${o.repeat}; procs = processes executing steps; ÷floor = steps/s ÷ 1-connection INSERT commits/s at the same synchronous_commit\n`);
  for (const t of [floorTable(summaries), throughputTable(summaries), latencyTable(summaries)]) if (t) console.log(`${t}\n`);
  const rt = ratioTable(rs);
  if (rt) console.log(`Ratios (same run, medians)\n\n${rt}\n`);
  console.log(`Targets (this machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'})\n\n${pgTargetsTable(targets)}`);
  for (const b of backlog) console.log(`${b.backlog} ÷ ${b.linear}, steps/s, by repetition: ${b.per_repetition.map((r) => `${r.toFixed(2)}×`).join(', ')}`);
  const tr = pgTraceTable(summaries);
  if (tr) console.log(`\nQueries of Swarm's worker processes during the measured phase (--trace; first repetition's statements)\n\n${tr}`);
  const st = statementsReport(summaries);
  if (st) console.log(`\nTop statements (pg_stat_statements)${st}`);
  console.log(`\ntotal ${elapsed.toFixed(1)} s`);

  if (o.save) {
    const dir = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const doc = {
      started_at: started.toISOString(),
      elapsed_s: elapsed,
      options: { ...o, systems: [...o.systems], workloads: [...o.workloads], base: o.base ? '(set)' : undefined },
      server: { kind: server.kind, settings, configured: server.kind === 'embedded' ? SERVER_SETTINGS : null },
      git: gitState(),
      host: hostInfo(loadBefore),
      summaries,
      ratios: rs,
      backlog_ratios: backlog,
      targets,
      repetitions: Object.fromEntries(reps),
    };
    const text = `${JSON.stringify(doc, null, 2)}\n`;
    const file = join(dir, `pg-${started.toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, text);
    writeFileSync(join(dir, 'pg-latest.json'), text);
    console.log(`wrote bench/results/${file.slice(dir.length + 1)} and bench/results/pg-latest.json`);
  }
}


function brief(r: PgResult): string {
  if (r.workload === 'floor') return Object.keys(r.on).map((c) => `${c}c on ${Math.round(r.on[c] ?? 0)}/off ${Math.round(r.off[c] ?? 0)}`).join(', ') + ' commits/s';
  if (r.workload === 'latency') return `step→next p50 ${r.p50_ms.toFixed(3)} ms p99 ${r.p99_ms.toFixed(3)} ms, start p50 ${r.start_p50_ms.toFixed(1)} ms`;
  return `${Math.round(r.steps_per_s)} steps/s, run p50 ${r.run_p50_ms.toFixed(1)} ms, ${(r.write_xacts / r.steps).toFixed(2)} write xacts/step, CPU ${r.machine_busy_pct.toFixed(0)}%`;
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
