/**
 * What observability costs: the SQLite `linear` and `fan-out` workloads of bench/workloads.ts with
 * each observability mode against `off`, every measurement in a fresh child process, the modes
 * interleaved within each repetition (so load on the machine falls on all of them alike). Reports the
 * median steps/s per workload and mode, and each mode's throughput as a ratio of `off`'s.
 *
 *   npm run bench:observability          (= build + node dist/bench/observability.js)
 *   node dist/bench/observability.js [--quick] [--repeat N] [--modes metrics,tracing] [--only linear,fanout]
 *                                    [--scrape-ms 1000] [--scale 10] [--warm-up 5] [--profile <dir>]
 *                                    [--dir <temp base>] [--keep] [--no-save]
 *
 * Results go to bench/results/observability-<timestamp>.json and observability-latest.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchOptions, COMMON_OPTIONS, intOption, namesOption } from './args.js';
import { median, REPO_ROOT } from './harness.js';
import { table } from './report.js';
import { childMain, gitState, hostInfo, runInChild } from './runner.js';
import { runJob, type FanoutResult, type Job, type LinearResult } from './workloads.js';
import { decodeOtlpTraces } from '../src/testing/otlp-traces.js';

/**
 * The modes measured. Each says what its child does before the workload: the Job fields it sets
 * (`metrics` turns the registry on) and, optionally, something to start first. `tracing` starts the
 * OpenTelemetry SDK as the CLI does (src/observability/otel-sdk.ts: batch span processor, OTLP/HTTP
 * exporter in the default encoding, binary protobuf, or OTEL_EXPORTER_OTLP_PROTOCOL's; 100% sampling)
 * sending to a receiver in the parent process, which reads each request and answers at once, and
 * decodes and counts the spans once every measurement is done (see startReceiver).
 */
interface Mode {
  job: Pick<Job, 'metrics'>;
  /** Start what the mode needs in the child before the workload; returns how to stop it, and what the workload calls around its measured phase. */
  start?: (o: { scrapeMs: number; otlpEndpoint?: string }) => Promise<{ stop: () => Promise<void>; hooks?: Job['hooks'] }>;
}

const MODE_NAMES = ['off', 'metrics', 'tracing'] as const;
type ModeName = (typeof MODE_NAMES)[number];

function modeOf(name: ModeName, scrapeMs: number): Mode {
  const modes: Record<ModeName, Mode> = {
    off: { job: {} },
    metrics: { job: { metrics: { scrapeMs } } },
    tracing: {
      job: {},
      start: async ({ otlpEndpoint }) => {
        const { otlpProtocolFromEnv, startTracing } = await import('../src/observability/otel-sdk.js');
        // The encoding as the CLI reads it: OTEL_EXPORTER_OTLP_PROTOCOL=http/json measures JSON.
        const protocol = otlpProtocolFromEnv(process.env, (m) => console.error(`warning: ${m}`));
        // No context manager, as the CLI starts it (startTracingFromEnv): Swarm passes its spans' contexts itself.
        const tracing = await startTracing({ endpoint: otlpEndpoint, serviceName: 'swarm-bench', asyncContext: false, ...(protocol ? { protocol } : {}) });
        // One span exported before the workload: the exporter loads its HTTP transport and compiles
        // its path at its first export, which would otherwise fall inside the measured phase (the
        // warm-up's first spans, fewer than a batch, are not sent before it starts).
        const { trace } = await import('@opentelemetry/api');
        trace.getTracer('swarm-bench').startSpan('warm-up').end();
        await tracing.forceFlush();
        // The warm-up's spans are sent before the clock starts, and the measured runs' last ones
        // (those still in the batch when the last run finished) before it stops: the measured phase
        // exports exactly its own spans.
        const flush = (): Promise<void> => tracing.forceFlush();
        return { stop: () => tracing.shutdown(), hooks: { beforeMeasure: flush, afterMeasure: flush } };
      },
    },
  };
  return modes[name];
}

/**
 * Rounds of warm-up before each measured phase (Job.fullWarmUp: 200 linear runs, or one full-width
 * fan-out, a round). A worker that has been up a while runs code V8 has optimized; a fresh process
 * is still compiling it. With one round, V8's optimizing compiler still spent 450 ms (off) and
 * 590 ms (tracing) on fan-out's engine and SDK code inside a measured phase of about 0.8 s, on
 * threads that take turns with the event loop on a 2-core machine, and 370 and 425 ms inside
 * linear's 2.3 s;
 * functions it had optimized were thrown away and compiled again as new object shapes reached them.
 * With five, about 75 ms in each mode on fan-out, and 120–135 ms on linear (counted with
 * `node --trace-opt`: the "took" times of the compilations between the phase's start and end).
 */
const WARM_UP_ROUNDS = 5;

/** The most throughput a mode may lose against `off` (ratio on/off at least 1 - this). */
const MAX_LOSS: Record<ModeName, number> = { off: 0, metrics: 0.05, tracing: 0.15 };

/**
 * An OTLP/HTTP receiver that reads every POST /v1/traces whole (protobuf or JSON) and answers at
 * once. `take()` hands over the requests received since the last call; they are decoded and their
 * spans counted (`countSpans`) only after the last measurement. Decoding while a child runs would
 * take this machine's CPU from the measured process (a collector runs elsewhere, or at least does
 * not take its turn on the same cores); decoding between measurements put that work, and the
 * collection of its garbage on V8's helper threads, right at the start of the next measurement:
 * which one that is depends on the repetition and the workloads measured (with both, fan-out's
 * `off` after linear's tracing in odd repetitions, each workload's metrics after its tracing in even
 * ones), so it weighed on some modes more than others. Each measurement's requests are kept until
 * then (a few MB a tracing measurement).
 */
async function startReceiver(): Promise<{ url: string; take: () => OtlpRequest[]; close: () => Promise<void> }> {
  let pending: OtlpRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const type = req.headers['content-type'] ?? '';
      pending.push({ body: Buffer.concat(chunks), type });
      // An empty ExportTraceServiceResponse, in the request's encoding.
      if (type.startsWith('application/x-protobuf')) res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  const take = (): OtlpRequest[] => {
    const got = pending;
    pending = [];
    return got;
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, take, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

interface OtlpRequest {
  body: Buffer;
  type: string;
}

/** The spans in OTLP/HTTP export requests. */
function countSpans(requests: readonly OtlpRequest[]): number {
  let spans = 0;
  for (const { body, type } of requests) {
    const doc = decodeOtlpTraces(body, type);
    for (const r of doc.resourceSpans ?? []) for (const sc of r.scopeSpans ?? []) spans += sc.spans?.length ?? 0;
  }
  return spans;
}

const WORKLOAD_NAMES = ['linear', 'fanout'] as const;
type WorkloadName = (typeof WORKLOAD_NAMES)[number];

interface ChildJob {
  mode: ModeName;
  scrapeMs: number;
  otlpEndpoint?: string;
  job: Job;
}

type Result = LinearResult | FanoutResult;

const USAGE = `usage: node dist/bench/observability.js [options]
  --quick              short smoke: fewer runs, narrower fan-out, 1 repetition
  --repeat <n>         repetitions, interleaved, medians reported (default 5; --quick 1)
  --modes <names>      comma-separated subset of: ${MODE_NAMES.join(', ')} (off is always measured)
  --only <names>       comma-separated subset of: ${WORKLOAD_NAMES.join(', ')}
  --scrape-ms <n>      how often the metrics mode renders the exposition, as a scraper would (default 1000)
  --scale <n>          measured phase n times the workloads' own (linear: n × 200 runs; fan-out: n runs
                       of 1,000 steps); default 10, --quick 1
  --warm-up <n>        rounds of warm-up on the workload itself before each measured phase (a round:
                       200 linear runs, or one fan-out of 1,000 steps); default ${WARM_UP_ROUNDS}; --quick
                       has its own short warm-up
  --dir <path>         where to create the temp directories (default: the OS temp dir)
  --profile <dir>      write a V8 CPU profile of each measured phase into <dir>
                       (summarise with: node dist/bench/profile-summary.js <dir>/*.cpuprofile)
  --keep               keep the temp directories
  --no-save            do not write bench/results/observability-*.json`;

async function child(json: string): Promise<void> {
  const c = JSON.parse(json) as ChildJob;
  const mode = modeOf(c.mode, c.scrapeMs);
  return childMain(async () => {
    const started = mode.start ? await mode.start({ scrapeMs: c.scrapeMs, ...(c.otlpEndpoint ? { otlpEndpoint: c.otlpEndpoint } : {}) }) : undefined;
    try {
      return (await runJob({ ...c.job, ...mode.job, ...(started?.hooks ? { hooks: started.hooks } : {}) })) as Result;
    } finally {
      await started?.stop();
    }
  });
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv[0] === '--child') return child(argv[1] ?? '{}');
  const v = benchOptions(argv, { ...COMMON_OPTIONS, modes: { type: 'string' }, only: { type: 'string' }, 'scrape-ms': { type: 'string' }, scale: { type: 'string' }, 'warm-up': { type: 'string' }, profile: { type: 'string' } }, USAGE);
  const quick = v.quick ?? false;
  const repeat = intOption(v.repeat, '--repeat', 1) ?? (quick ? 1 : 5);
  const scrapeMs = intOption(v['scrape-ms'], '--scrape-ms', 10) ?? 1000;
  // Each measurement is a fresh process: at the workloads' own length (200 runs, one fan-out: well
  // under a second) much of it is the process's first second, while V8 compiles the paths a mode
  // adds (the SDK's span and export code) on threads that take turns with the measured work on a
  // small machine. A long-running worker pays that once; five times the length weighs it less.
  const scale = intOption(v.scale, '--scale', 1) ?? (quick ? 1 : 10);
  const modes: ModeName[] = ['off', ...[...(v.modes === undefined ? MODE_NAMES : namesOption(v.modes, '--modes', MODE_NAMES))].filter((m) => m !== 'off')];
  const workloads = [...(v.only === undefined ? WORKLOAD_NAMES : namesOption(v.only, '--only', WORKLOAD_NAMES, { 'fan-out': 'fanout' }))];
  const warmUp = intOption(v['warm-up'], '--warm-up', 1, 100) ?? WARM_UP_ROUNDS;
  // Warmed up on the workload itself: the engine and the tracing mode's SDK compiled before the clock starts, as in a long-running worker.
  const common = { quick, keep: v.keep ?? false, trace: false, durability: 'full' as const, scale, ...(quick ? {} : { fullWarmUp: warmUp }), ...(v.dir ? { base: v.dir } : {}), ...(v.profile ? { profileDir: resolve(v.profile) } : {}) };
  const started = new Date();
  const t0 = Date.now();
  const loadBefore = loadavg();
  console.log(`observability overhead: ${workloads.join(', ')} × ${modes.join(', ')} × ${repeat} repetition(s)${quick ? ' (quick)' : ''}, warm-up ${quick ? 'short' : `${warmUp} rounds`}, measured phase × ${scale}; SQLite, durability full; temp dirs under ${v.dir ?? tmpdir()}`);
  if ((loadBefore[0] ?? 0) > cpus().length / 2) console.log(`  note: load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} CPUs: compare the ratios, not the absolute numbers`);

  const receiver = modes.includes('tracing') ? await startReceiver() : undefined;
  // Each tracing measurement's export requests, decoded once all are done.
  const exported = new Map<string, OtlpRequest[][]>();
  const reps = new Map<string, Result[]>();
  for (let r = 1; r <= repeat; r++) {
    for (const w of workloads) {
      // Interleaved: each repetition measures every mode of a workload back to back, in turn.
      const order = r % 2 === 0 ? [...modes].reverse() : modes;
      for (const mode of order) {
        const key = `${w} ${mode}`;
        const job: Job = { workload: w, ...(w === 'linear' ? { commitWindowMs: 0 } : {}), ...common, ...(v.profile ? { profileLabel: `${w}-${mode}-r${r}` } : {}) };
        const t = Date.now();
        receiver?.take();
        const result = await runInChild<ChildJob, Result>(fileURLToPath(import.meta.url), { mode, scrapeMs, job, ...(receiver ? { otlpEndpoint: receiver.url } : {}) }, key, 180_000);
        reps.set(key, [...(reps.get(key) ?? []), result]);
        // The child flushed its spans before it exited: all of them have arrived.
        const requests = receiver?.take() ?? [];
        if (mode === 'tracing') exported.set(key, [...(exported.get(key) ?? []), requests]);
        console.log(`  [${r}/${repeat}] ${key.padEnd(16)} ${Math.round(result.steps_per_s)} steps/s  (${((Date.now() - t) / 1000).toFixed(1)} s)${mode === 'tracing' ? `, ${requests.length} export requests` : ''}`);
      }
    }
  }

  await receiver?.close();
  const spansReceived = new Map([...exported].map(([key, list]) => [key, list.map(countSpans)]));
  for (const [key, counts] of spansReceived) console.log(`  ${key}: ${counts.join(', ')} spans received`);

  const rows: Array<{ workload: WorkloadName; mode: ModeName; reps: number; steps_per_s: number; ratio: number; loss: number; cpu_ms_per_step: number; cpu_ratio: number; main_ms_per_step: number | null; main_ratio: number | null; max_loss: number; ok: boolean }> = [];
  // CPU time per step (the process's user + system time over the measured phase) is less disturbed
  // by other work on a busy machine than throughput: a second view of the same cost.
  const cpuPerStep = (x: Result): number => (x.cpu_user_ms + x.cpu_sys_ms) / x.steps;
  // The main thread's alone (Linux): the event loop's own work, which bounds the throughput, without
  // V8's compiler and GC helper threads (whose share varies from one process to the next).
  const mainPerStep = (list: Result[]): number | null => (list.every((x) => x.cpu_main_ms !== undefined) && list.length ? median(list.map((x) => (x.cpu_main_ms ?? 0) / x.steps)) : null);
  for (const w of workloads) {
    const base = median((reps.get(`${w} off`) ?? []).map((x) => x.steps_per_s));
    const baseCpu = median((reps.get(`${w} off`) ?? []).map(cpuPerStep));
    const baseMain = mainPerStep(reps.get(`${w} off`) ?? []);
    for (const mode of modes) {
      const list = reps.get(`${w} ${mode}`) ?? [];
      const s = median(list.map((x) => x.steps_per_s));
      const cpu = median(list.map(cpuPerStep));
      const ratio = s / base;
      const main = mainPerStep(list);
      const mainRatio = main !== null && baseMain !== null ? main / baseMain : null;
      rows.push({ workload: w, mode, reps: list.length, steps_per_s: s, ratio, loss: 1 - ratio, cpu_ms_per_step: cpu, cpu_ratio: cpu / baseCpu, main_ms_per_step: main, main_ratio: mainRatio, max_loss: MAX_LOSS[mode], ok: mode === 'off' || 1 - ratio <= MAX_LOSS[mode] });
    }
  }
  console.log(`\nMedians of ${repeat} (ratio = the mode's steps/s ÷ off's; cpu ratio = its CPU time per step ÷ off's, all threads; main = the main thread's alone; the metrics mode renders the exposition every ${scrapeMs} ms)\n`);
  console.log(
    table(
      ['workload', 'mode', 'steps/s', 'ratio', 'loss', 'cpu ms/step', 'cpu ratio', 'main ms/step', 'main ratio', 'goal'],
      rows.map((x) => [
        x.workload,
        x.mode,
        String(Math.round(x.steps_per_s)),
        x.ratio.toFixed(3),
        `${(x.loss * 100).toFixed(1)}%`,
        x.cpu_ms_per_step.toFixed(3),
        x.cpu_ratio.toFixed(3),
        x.main_ms_per_step === null ? '' : x.main_ms_per_step.toFixed(3),
        x.main_ratio === null ? '' : x.main_ratio.toFixed(3),
        x.mode === 'off' ? '' : `≤ ${(x.max_loss * 100).toFixed(0)}% ${x.ok ? 'met' : 'MISSED'}`,
      ]),
      2,
    ),
  );
  const elapsed = (Date.now() - t0) / 1000;
  console.log(`\ntotal ${elapsed.toFixed(1)} s`);
  if (!(v['no-save'] ?? false)) {
    const dir = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const doc = { started_at: started.toISOString(), elapsed_s: elapsed, options: { quick, repeat, modes, workloads, scrape_ms: scrapeMs, scale, warm_up_rounds: quick ? null : warmUp }, git: gitState(), host: hostInfo(loadBefore), rows, spans_received: Object.fromEntries(spansReceived), repetitions: Object.fromEntries(reps) };
    const text = `${JSON.stringify(doc, null, 2)}\n`;
    const file = join(dir, `observability-${started.toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, text);
    writeFileSync(join(dir, 'observability-latest.json'), text);
    console.log(`wrote ${file} and bench/results/observability-latest.json`);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
