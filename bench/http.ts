/**
 * Runs created over HTTP against the same runs created in process. `npm run bench:http`
 * (= build + `node dist/bench/http.js`); see bench/README.md.
 *
 *   node dist/bench/http.js [--quick] [--runs N] [--warmup 2000] [--connections 32] [--repeat 3] [--dir <temp base>] [--keep] [--no-save] [--profile <dir>] [--pin]
 *
 * The measurements, each in a fresh child process and a fresh project on SQLite `durability: full`:
 * - inproc: `swarm.createRun()` from 32 concurrent callers in one process (the baseline);
 * - inproc-webhook: the same deliveries as `webhook` below, through `swarm.deliverWebhook()` in one
 *   process from 32 concurrent callers (signed before the clock starts): what a delivery costs
 *   without HTTP, for information;
 * - node-http, node-webhook: the same requests as `http` and `webhook` below, to a bare `node:http`
 *   handler around the library (bench/http-bare.ts): the floor any server of this API on Node pays,
 *   for information;
 * - http: `POST /api/v1/workflows/{name}/runs` to a real `swarm serve --no-worker`, keep-alive, 32
 *   connections from autocannon in the measuring process;
 * - webhook: signed Standard Webhooks deliveries (`POST /webhooks/bench`, a fresh delivery id each) to
 *   the same server, the signature verified over the raw body before the run is created;
 * - latency: one request at a time to a `swarm serve` with its worker; the time from the run's
 *   creation to its first step's start, from the store's rows.
 * Repetitions are interleaved and medians reported; the ratio http ÷ inproc is taken per repetition.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchOptions, COMMON_OPTIONS, intOption } from './args.js';
import { freshDir, median, openSwarm, percentile, REPO_ROOT, type BenchDir } from './harness.js';
import { bareFor, cpuOf, HOOK_SECRET, INPUT, pinTo, postRequests, prepare, serveFor, signedDeliveries, stopServe, timedLoad, webhookRequests, WORKFLOW } from './http-project.js';
import { Swarm } from '../src/swarm.js';
import { table } from './report.js';
import { childMain, gitState, hostInfo, runInChild } from './runner.js';

const KINDS = ['inproc', 'inproc-webhook', 'node-http', 'node-webhook', 'http', 'webhook', 'latency'] as const;
type Kind = (typeof KINDS)[number];

interface Job {
  kind: Kind;
  runs: number;
  /** Runs created before the measured ones, the same number on every side (steady state: the server's code compiled, its caches filled). */
  warmup: number;
  connections: number;
  base?: string;
  keep: boolean;
  /** Write a V8 CPU profile of each `swarm serve` here (see bench/profile-summary.ts). */
  profile?: string;
  /** Pin the process creating runs to CPU 0 and the load generator to CPU 1 (`taskset`). */
  pin: boolean;
}

interface Result {
  kind: Kind;
  runs: number;
  seconds: number;
  runs_per_s: number;
  /** Request latency (http) or creation → first step started (latency), ms. */
  p50_ms: number;
  p99_ms: number;
  /** Answers that were not 2xx, and connection errors (http). */
  failed: number;
  /** Runs in the store afterwards: every 2xx made exactly one. */
  stored: number;
  /** CPU time (user + system) of the process that created the runs, per run, µs: robust to a busy machine. */
  cpu_us: number;
}

const TARGET_RUNS_PER_S = 3000;
const TARGET_RATIO = 0.5;
const TARGET_LATENCY_P50_MS = 5;

async function countRuns(dir: BenchDir): Promise<number> {
  const swarm = await openSwarm(dir, { durability: 'full' });
  try {
    return Object.values(await swarm.store.runCounts()).reduce((a, b) => a + b, 0);
  } finally {
    await swarm.close();
  }
}

async function inproc(job: Job, dir: BenchDir): Promise<Result> {
  const swarm = await openSwarm(dir, { durability: 'full' });
  try {
    return await inProcess('inproc', job, () => swarm.createRun(WORKFLOW, INPUT));
  } finally {
    await swarm.close();
  }
}

async function inprocWebhook(job: Job, dir: BenchDir): Promise<Result> {
  // The webhook's secret as `swarm serve` gets it (SWARM_SECRET_BENCH_HOOK).
  const swarm = await Swarm.open({ cwd: dir.root, env: { SWARM_HOME: dir.home, SWARM_SECRET_BENCH_HOOK: HOOK_SECRET }, overrides: { durability: 'full' } });
  try {
    // Signed before the clock starts, as a sender does elsewhere.
    const deliveries = signedDeliveries(job.warmup + job.runs);
    return await inProcess('inproc-webhook', job, (i) => swarm.deliverWebhook('bench', deliveries[i]!));
  } finally {
    await swarm.close();
  }
}

/** `job.warmup` unmeasured calls of `op`, then `job.runs` measured ones from `job.connections` concurrent callers (`op` gets each call's index). */
async function inProcess(kind: Kind, job: Job, op: (i: number) => Promise<unknown>): Promise<Result> {
  if (job.pin) pinTo(process.pid, 0);
  for (let i = 0; i < job.warmup; i++) await op(i);
  let next = job.warmup;
  const end = job.warmup + job.runs;
  const cpu0 = cpuOf(process.pid);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: job.connections }, async () => {
      while (next < end) await op(next++);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu_us = (cpuOf(process.pid) - cpu0) / job.runs;
  return { kind, runs: job.runs, seconds, runs_per_s: job.runs / seconds, p50_ms: NaN, p99_ms: NaN, failed: 0, stored: 0, cpu_us };
}

async function http(job: Job, dir: BenchDir): Promise<Result> {
  return overHttp('http', job, dir, postRequests);
}

async function nodeHttp(job: Job, dir: BenchDir): Promise<Result> {
  return overHttp('node-http', job, dir, postRequests, bareFor);
}

async function nodeWebhook(job: Job, dir: BenchDir): Promise<Result> {
  return overHttp('node-webhook', job, dir, webhookRequests, bareFor);
}

async function webhook(job: Job, dir: BenchDir): Promise<Result> {
  return overHttp('webhook', job, dir, webhookRequests);
}

/** A `swarm serve --no-worker` loaded with `job.warmup` unmeasured requests, then `job.runs` measured ones. */
async function overHttp(kind: Kind, job: Job, dir: BenchDir, requests: typeof postRequests, server: (dir: BenchDir) => ReturnType<typeof serveFor> = (d) => serveFor(d, job.profile ? { profile: job.profile } : {})): Promise<Result> {
  const { url, child } = await server(dir);
  if (job.pin) {
    pinTo(child.pid!, 0);
    pinTo(process.pid, 1);
  }
  try {
    const r = await timedLoad(requests(url), { connections: job.connections, amount: job.runs, warmup: job.warmup, serverPid: child.pid! });
    return { kind, runs: r.ok, seconds: r.seconds, runs_per_s: r.runs_per_s, p50_ms: r.p50_ms, p99_ms: r.p99_ms, failed: r.failed, stored: 0, cpu_us: r.cpu_us };
  } finally {
    await stopServe(child);
  }
}

async function latency(job: Job, dir: BenchDir): Promise<Result> {
  const { url, child } = await serveFor(dir, { worker: true });
  const n = Math.min(job.runs, 300);
  const ids: string[] = [];
  try {
    const t0 = performance.now();
    for (let i = 0; i < n + 20; i++) {
      const res = await fetch(`${url}/api/v1/workflows/${WORKFLOW}/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: INPUT }) });
      const run = (await res.json()) as { run_id: string };
      if (i >= 20) ids.push(run.run_id); // the first 20 warm up
    }
    const seconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 500)); // the last runs' steps start
    const swarm = await openSwarm(dir, { durability: 'full' });
    try {
      const gaps: number[] = [];
      for (const id of ids) {
        const run = await swarm.store.getRun(id);
        const [step] = await swarm.store.getSteps(id);
        if (run && step?.started_at != null) gaps.push(step.started_at - run.created_at);
      }
      return { kind: 'latency', runs: n, seconds, runs_per_s: n / seconds, p50_ms: percentile(gaps, 50), p99_ms: percentile(gaps, 99), failed: n - gaps.length, stored: 0, cpu_us: Number.NaN };
    } finally {
      await swarm.close();
    }
  } finally {
    await stopServe(child);
  }
}

async function runJob(job: Job): Promise<Result> {
  const dir = freshDir(`http-${job.kind}`, job.base, job.keep);
  try {
    await prepare(dir);
    const before = await countRuns(dir);
    const run = { inproc, 'inproc-webhook': inprocWebhook, 'node-http': nodeHttp, 'node-webhook': nodeWebhook, http, webhook, latency }[job.kind];
    const r = await run(job, dir);
    r.stored = (await countRuns(dir)) - before;
    return r;
  } finally {
    dir.remove();
  }
}

const USAGE = 'node dist/bench/http.js [--quick] [--runs N] [--warmup N] [--connections 32] [--repeat 3] [--dir <temp base>] [--keep] [--no-save] [--profile <dir>] [--pin]';

async function main(): Promise<void> {
  const v = benchOptions(process.argv.slice(2), { ...COMMON_OPTIONS, runs: { type: 'string' }, warmup: { type: 'string' }, connections: { type: 'string' }, profile: { type: 'string' }, pin: { type: 'boolean' } }, USAGE);
  const quick = v.quick === true;
  const runs = intOption(v.runs, '--runs', 100) ?? (quick ? 2000 : 10_000);
  const warmup = intOption(v.warmup, '--warmup', 0) ?? (quick ? 500 : 2000);
  const connections = intOption(v.connections, '--connections', 1, 1024) ?? 32;
  const repeat = intOption(v.repeat, '--repeat', 1, 50) ?? (quick ? 1 : 3);
  const base = v.dir ? resolve(v.dir) : undefined;
  const loadBefore = loadavg();
  if (loadBefore[0]! > cpus().length * 0.75) console.error(`warning: load average ${loadBefore[0]!.toFixed(2)} on ${cpus().length} CPUs; compare ratios, not absolute numbers`);

  const reps = new Map<Kind, Result[]>(KINDS.map((k) => [k, []]));
  const ratios: number[] = [];
  const hookRatios: number[] = [];
  const sameHookRatios: number[] = [];
  const floorRatios: number[] = [];
  const overFloorRatios: number[] = [];
  const hookFloorRatios: number[] = [];
  const hookOverFloorRatios: number[] = [];
  const script = fileURLToPath(import.meta.url);
  for (let i = 0; i < repeat; i++) {
    const got: Partial<Record<Kind, Result>> = {};
    for (const kind of KINDS) {
      const r = await runInChild<Job, Result>(script, { kind, runs, warmup, connections, ...(base ? { base } : {}), ...(v.profile ? { profile: resolve(v.profile) } : {}), pin: v.pin === true, keep: v.keep === true }, kind, 300_000);
      got[kind] = r;
      reps.get(kind)!.push(r);
      console.error(`  rep ${i + 1}/${repeat} ${kind}: ${r.runs_per_s.toFixed(0)} runs/s`);
    }
    ratios.push(got.http!.runs_per_s / got.inproc!.runs_per_s);
    hookRatios.push(got.webhook!.runs_per_s / got.inproc!.runs_per_s);
    sameHookRatios.push(got.webhook!.runs_per_s / got['inproc-webhook']!.runs_per_s);
    floorRatios.push(got['node-http']!.runs_per_s / got.inproc!.runs_per_s);
    overFloorRatios.push(got.http!.runs_per_s / got['node-http']!.runs_per_s);
    hookFloorRatios.push(got['node-webhook']!.runs_per_s / got.inproc!.runs_per_s);
    hookOverFloorRatios.push(got.webhook!.runs_per_s / got['node-webhook']!.runs_per_s);
  }

  // NaN crosses the process boundary as null.
  const med = (k: Kind, f: (r: Result) => number): number => median(reps.get(k)!.map((r) => f(r) ?? Number.NaN));
  const fmt = (n: number, d = 0): string => (Number.isFinite(n) ? n.toFixed(d) : '–');
  console.log(
    table(
      ['measurement', 'runs', 'runs/s', 'p50 ms', 'p99 ms', 'CPU µs/run', 'failed', 'stored'],
      KINDS.map((k) => [k, fmt(med(k, (r) => r.runs)), fmt(med(k, (r) => r.runs_per_s)), fmt(med(k, (r) => r.p50_ms), 2), fmt(med(k, (r) => r.p99_ms), 2), fmt(med(k, (r) => r.cpu_us)), fmt(med(k, (r) => r.failed)), fmt(med(k, (r) => r.stored))]),
    ),
  );
  const ratio = median(ratios);
  const hookRatio = median(hookRatios);
  const sameHookRatio = median(sameHookRatios);
  const httpRate = med('http', (r) => r.runs_per_s);
  const p50 = med('latency', (r) => r.p50_ms);
  const targets = [
    ['http ÷ inproc', `≥ ${TARGET_RATIO}×`, `${ratio.toFixed(2)}×`, ratio >= TARGET_RATIO ? 'met' : 'MISSED'],
    ['http runs/s', `≥ ${TARGET_RUNS_PER_S}`, fmt(httpRate), httpRate >= TARGET_RUNS_PER_S ? 'met' : 'MISSED'],
    ['webhook ÷ inproc', `≥ ${TARGET_RATIO}×`, `${hookRatio.toFixed(2)}×`, hookRatio >= TARGET_RATIO ? 'met' : 'MISSED'],
    ['created → first step p50', `≤ ${TARGET_LATENCY_P50_MS} ms`, `${fmt(p50, 2)} ms`, p50 <= TARGET_LATENCY_P50_MS ? 'met' : 'MISSED'],
  ];
  console.log(`\n${table(['target', 'goal', 'measured (median)', ''], targets)}`);
  const floorRatio = median(floorRatios);
  const overFloorRatio = median(overFloorRatios);
  console.log(`\nfor information: webhook ÷ inproc-webhook (the same deliveries without HTTP) ${sameHookRatio.toFixed(2)}×`);
  const hookFloorRatio = median(hookFloorRatios);
  const hookOverFloorRatio = median(hookOverFloorRatios);
  console.log(`for information: node-http ÷ inproc (the floor: a bare node:http server around the library) ${floorRatio.toFixed(2)}×; http ÷ node-http (what swarm serve's stack keeps of it) ${overFloorRatio.toFixed(2)}×`);
  console.log(`for information: node-webhook ÷ inproc (the webhook's floor) ${hookFloorRatio.toFixed(2)}×; webhook ÷ node-webhook ${hookOverFloorRatio.toFixed(2)}×`);
  // Every 2xx made exactly one run (the warm-up requests included).
  const lost = [...reps.get('node-http')!, ...reps.get('node-webhook')!, ...reps.get('http')!, ...reps.get('webhook')!].filter((r) => r.stored !== r.runs + warmup);
  if (lost.length) console.log(`\nwarning: ${lost.length} repetition(s) over HTTP stored a different number of runs than got 2xx answers`);

  if (v['no-save'] !== true) {
    const outDir = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    const doc = { bench: 'http', when: new Date().toISOString(), git: gitState(), host: hostInfo(loadBefore), options: { runs, warmup, connections, repeat, pin: v.pin === true }, medians: Object.fromEntries(KINDS.map((k) => [k, { runs_per_s: med(k, (r) => r.runs_per_s), cpu_us: med(k, (r) => r.cpu_us), p50_ms: med(k, (r) => r.p50_ms), p99_ms: med(k, (r) => r.p99_ms) }])), ratio_http_inproc: ratio, ratios, ratio_webhook_inproc: hookRatio, webhook_ratios: hookRatios, ratio_webhook_inproc_webhook: sameHookRatio, ratio_node_http_inproc: floorRatio, ratio_http_node_http: overFloorRatio, ratio_node_webhook_inproc: hookFloorRatio, ratio_webhook_node_webhook: hookOverFloorRatio, repetitions: Object.fromEntries(reps) };
    const stamp = doc.when.replace(/[:.]/g, '-');
    writeFileSync(join(outDir, `http-${stamp}.json`), `${JSON.stringify(doc, null, 2)}\n`);
    writeFileSync(join(outDir, 'http-latest.json'), `${JSON.stringify(doc, null, 2)}\n`);
  }
}

if (process.argv[2] === '--child') void childMain(() => runJob(JSON.parse(process.argv[3] as string) as Job));
else await main();
