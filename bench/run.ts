/**
 * Swarm benchmark suite. `npm run bench` (= build + `node dist/bench/run.js`); see bench/README.md.
 *
 *   node dist/bench/run.js [--quick] [--only floor,linear,linear-backlog,fanout,latency] [--durability full|process]
 *                          [--repeat N] [--trace] [--dir <temp base>] [--keep] [--no-save]
 *
 * Every measurement runs in a fresh child process (so RSS, JIT and caches never leak between
 * workloads) in a fresh temp directory; repetitions are interleaved and the medians reported.
 * Node flags given to this process (e.g. --cpu-prof) are passed on to the children.
 */
import { benchOptions, COMMON_OPTIONS, intOption, namesOption } from './args.js';
import { childMain, gitState, hostInfo, runInChild } from './runner.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from './harness.js';
import { addFloorRatios, backlogRatio, evaluateTargets, jobKey, medianOf, resultsTable, targetsTable, traceTable, type Summary } from './report.js';
import { installSqlTrace } from './sql-trace.js';
import { runJob, type Job, type WorkloadResult } from './workloads.js';

/** What --only can select: the workloads, plus the diagnostic linear variant on its own. */
const SELECTABLE = ['floor', 'linear', 'linear-precreated', 'linear-backlog', 'fanout', 'latency'] as const;
type Selectable = (typeof SELECTABLE)[number];

interface Options {
  quick: boolean;
  only: Set<Selectable>;
  durability: 'full' | 'process' | undefined;
  repeat: number;
  trace: boolean;
  base: string | undefined;
  profileDir: string | undefined;
  pollMs: number | undefined;
  keep: boolean;
  save: boolean;
}

const USAGE = `usage: node dist/bench/run.js [options]
  --quick              short smoke: fewer runs, narrower fan-out, 1 repetition
  --only <names>       comma-separated subset of: ${SELECTABLE.join(', ')} (fan-out = fanout)
  --durability <d>     only measure full or process (the floor always measures both)
  --repeat <n>         repetitions of every measurement, medians reported (default 3; --quick 1)
  --trace              count and time every SQLite call (slightly perturbs timings; see README)
  --profile <dir>      write a V8 CPU profile of each measured phase into <dir>
                       (summarise with: node dist/bench/profile-summary.js <dir>/*.cpuprofile)
  --poll-ms <n>        override the worker poll interval of every workload
  --dir <path>         where to create the temp directories (default: the OS temp dir)
  --keep               keep the temp directories
  --no-save            do not write bench/results/*.json`;

function parseOptions(argv: readonly string[]): Options {
  const v = benchOptions(
    argv,
    {
      ...COMMON_OPTIONS,
      only: { type: 'string' },
      durability: { type: 'string' },
      profile: { type: 'string' },
      'poll-ms': { type: 'string' },
    },
    USAGE,
  );
  const quick = v.quick ?? false;
  if (v.durability !== undefined && v.durability !== 'full' && v.durability !== 'process') throw new Error(`--durability must be full or process, not '${v.durability}'`);
  return {
    quick,
    only: v.only === undefined ? new Set(SELECTABLE) : namesOption(v.only, '--only', SELECTABLE, { 'fan-out': 'fanout' }),
    durability: v.durability,
    repeat: intOption(v.repeat, '--repeat', 1) ?? (quick ? 1 : 3),
    trace: v.trace ?? false,
    base: v.dir,
    profileDir: v.profile === undefined ? undefined : resolve(v.profile),
    pollMs: intOption(v['poll-ms'], '--poll-ms', 1),
    keep: v.keep ?? false,
    save: !(v['no-save'] ?? false),
  };
}

function plan(o: Options): Job[] {
  const common = {
    quick: o.quick,
    keep: o.keep,
    trace: o.trace,
    ...(o.base ? { base: o.base } : {}),
    ...(o.profileDir ? { profileDir: o.profileDir } : {}),
    ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
  };
  const durabilities = (['full', 'process'] as const).filter((d) => !o.durability || o.durability === d);
  const jobs: Job[] = [];
  if (o.only.has('floor')) jobs.push({ workload: 'floor', ...common });
  for (const d of durabilities) {
    if (o.only.has('linear')) {
      jobs.push({ workload: 'linear', durability: d, commitWindowMs: 0, ...common });
      if (d === 'full') jobs.push({ workload: 'linear', durability: d, commitWindowMs: 2, ...common });
    }
    if (o.only.has('linear-precreated')) jobs.push({ workload: 'linear', variant: 'precreated', durability: d, commitWindowMs: 0, ...common });
    if (o.only.has('linear-backlog')) jobs.push({ workload: 'linear', variant: 'backlog', durability: d, commitWindowMs: 0, ...common });
  }
  if (o.only.has('fanout')) for (const d of durabilities) jobs.push({ workload: 'fanout', durability: d, ...common });
  if (o.only.has('latency')) for (const d of durabilities) jobs.push({ workload: 'latency', durability: d, ...common });
  return jobs;
}


/** Run one job in a fresh Node process (same Node flags as this one) and return its result. */
function inChild(job: Job, timeoutMs = 150_000): Promise<WorkloadResult> {
  return runInChild<Job, WorkloadResult>(fileURLToPath(import.meta.url), job, jobKey(job), timeoutMs);
}

function child(jobJson: string): Promise<void> {
  const job = JSON.parse(jobJson) as Job;
  if (job.trace) installSqlTrace();
  return childMain(() => runJob(job));
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv[0] === '--child') return child(argv[1] ?? '{}');
  const o = parseOptions(argv);
  const jobs = plan(o);
  if (jobs.length === 0) throw new Error('nothing to run');
  const started = new Date();
  const t0 = Date.now();
  console.log(`swarm bench: ${jobs.length} measurement(s) × ${o.repeat} repetition(s)${o.quick ? ' (quick)' : ''}${o.trace ? ' (traced)' : ''}; temp dirs under ${o.base ?? tmpdir()}`);

  const loadBefore = loadavg();
  if ((loadBefore[0] ?? 0) > cpus().length / 2) {
    console.log(`  warning: load average is ${loadBefore.map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} CPUs; other work will skew the numbers`);
  }
  const reps = new Map<string, WorkloadResult[]>();
  for (let r = 1; r <= o.repeat; r++) {
    for (const job of jobs) {
      const key = jobKey(job);
      const t = Date.now();
      const result = await inChild(job);
      const list = reps.get(key) ?? [];
      list.push(result);
      reps.set(key, list);
      console.log(`  [${r}/${o.repeat}] ${key.padEnd(29)} ${brief(result)}  (${((Date.now() - t) / 1000).toFixed(1)} s)`);
    }
  }

  const summaries: Summary[] = jobs.map((job) => {
    const list = reps.get(jobKey(job)) ?? [];
    return { key: jobKey(job), job, reps: list.length, median: medianOf(list) };
  });
  addFloorRatios(summaries);
  const targets = evaluateTargets(summaries, reps);

  console.log(`\nResults (medians of ${o.repeat}; ÷floor = steps/s ÷ raw single-row commits/s at the same synchronous level)\n`);
  console.log(resultsTable(summaries));
  console.log('\nTargets (this machine: %d × %s)\n', cpus().length, cpus()[0]?.model ?? 'cpu');
  console.log(targetsTable(targets));
  for (const d of ['full', 'process'] as const) {
    const pre = backlogRatio(reps, d, 'linear-precreated');
    if (pre !== undefined) console.log(`backlog ÷ 200 pre-created runs (${d}, same worker, creation out of both): ${pre.toFixed(2)}×`);
  }
  const trace = traceTable(summaries);
  if (trace) console.log(`\nSQLite trace of the measured phases\n\n${trace}`);
  const elapsed = (Date.now() - t0) / 1000;
  console.log(`\ntotal ${elapsed.toFixed(1)} s`);

  if (o.save) {
    const dir = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const doc = {
      started_at: started.toISOString(),
      elapsed_s: elapsed,
      options: { ...o, only: [...o.only] },
      git: gitState(),
      host: hostInfo(loadBefore),
      summaries,
      targets,
      repetitions: Object.fromEntries(reps),
    };
    const text = `${JSON.stringify(doc, null, 2)}\n`;
    const file = join(dir, `${started.toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, text);
    writeFileSync(join(dir, 'latest.json'), text);
    console.log(`wrote ${file} and bench/results/latest.json`);
  }
}


function brief(r: WorkloadResult): string {
  switch (r.workload) {
    case 'floor':
      return `FULL ${Math.round(r.full_commits_per_s)} commits/s, NORMAL ${Math.round(r.normal_commits_per_s)} commits/s`;
    case 'linear':
      return `${Math.round(r.steps_per_s)} steps/s, run p50 ${r.run_p50_ms} ms p99 ${r.run_p99_ms} ms`;
    case 'fanout':
      return `${Math.round(r.steps_per_s)} steps/s, makespan ${r.makespan_ms.toFixed(0)} ms, peak RSS ${r.rss_peak_mb.toFixed(0)} MB`;
    case 'latency':
      return `step→next p50 ${r.p50_ms.toFixed(3)} ms p99 ${r.p99_ms.toFixed(3)} ms`;
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
