/**
 * The cost of a consensus task against the same executor calls made by a plain workflow.
 * `npm run bench:consensus` (= build + `node dist/bench/consensus.js`); see bench/README.md, "Consensus".
 *
 *   node dist/bench/consensus.js [--quick] [--tasks N] [--inflight 1,4] [--targets sqlite,postgres]
 *                                [--repeat N] [--dir PATH] [--keep] [--no-save]
 *
 * How it is driven: everything in this process, through the library API. Eight fake executors are
 * HTTP servers here (node:http, speaking docs/executor-api.yaml): five proposers (`POST /execute`,
 * answering at once with a candidate signed by their own Ed25519 key over the consensus core's field
 * list, as the reference executor does) and three verifiers (`POST /verify`, a signed `passed`). They
 * are registered with the store as `swarm executors add` does, public keys pinned. A Swarm is opened
 * on SQLite (`durability: full`) or on PostgreSQL (an embedded server, fsync on), with one worker in
 * this process (concurrency 8, poll 5 ms). A task is `swarm.submitTask(contract)` → `swarm.wait(run)`:
 * 5 executor proposers (one candidate hash: they all answer alike), 3 executor verifiers, 5
 * kernel-managed `best_verified` voters (commit-reveal with kernel keys, no executor call), quorum 3,
 * knowledge lookup off. The baseline is one run of a workflow of 5 independent steps, each an http
 * agent on one of the proposer executors (`runtime: {type: http, executor: pN}`): the same five
 * `/execute` calls, in parallel as the driver makes them.
 *
 * Measured: the median wall time per task and per baseline run (one at a time), their ratio (target
 * ≤ 3×), the kernel's own overhead per task (task time minus the time spent inside the executors'
 * handlers, measured at the fake executors, summed over the task's calls), and tasks per second with
 * 1 and 4 tasks in flight (closed loop). Medians of the repetitions.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Swarm } from '../src/index.js';
import { candidateHash, generateIdentity, signRecord } from '../src/consensus/core/crypto.js';
import { candidateFieldsOf, verifierResultFieldsOf } from '../src/executors/http/signing.js';
import type { ExecuteRequest, VerifyRequest } from '../src/executors/http/contract.js';
import { benchOptions, COMMON_OPTIONS, countsOption, intOption, namesOption } from './args.js';
import { freshDir, median, nowMs, REPO_ROOT, writePackage, type BenchDir } from './harness.js';
import { startBenchServer, type BenchServer } from './pg-server.js';
import { table } from './report.js';
import pg from 'pg';
import { gitState, hostInfo } from './runner.js';

const USAGE = `usage: node dist/bench/consensus.js [options]
  --quick              smoke: 5 tasks and 5 baseline runs per measurement, 1 repetition
  --tasks <n>          tasks (and baseline runs) per measurement (default 30)
  --inflight <list>    tasks in flight for the throughput measurement (default 1,4)
  --targets <list>     of sqlite, postgres (default: both)
  --repeat <n>         repetitions (default 3; --quick 1); medians are reported
  --trace              then count the database round trips of a few more tasks and baseline runs (PostgreSQL)
  --dir <path>         temp directories here
  --keep               keep the temp directories
  --no-save            do not write bench/results/consensus-*.json`;

const TARGETS = ['sqlite', 'postgres'] as const;
type TargetKind = (typeof TARGETS)[number];
const GOAL_RATIO = 3;
const PROPOSERS = 5;
const VERIFIERS = 3;
const VOTERS = 5;

/** Time spent inside the fake executors' handlers, per task id (a consensus task, or a baseline run). */
const executorMs = new Map<string, number>();
const executorCalls = new Map<string, number>();

interface FakeExecutor {
  name: string;
  url: string;
  publicKey: string;
  close(): Promise<void>;
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
    req.on('error', reject);
  });
}

/** An executor that answers at once: a signed candidate for /execute, a signed `passed` for /verify. */
async function startFakeExecutor(name: string): Promise<FakeExecutor> {
  const id = generateIdentity();
  const send = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const t0 = nowMs();
    let key: string | undefined;
    try {
      if (req.method === 'GET' && req.url === '/health') return send(res, 200, { status: 'ok', version: 'bench' });
      if (req.method === 'GET' && req.url === '/capabilities') return send(res, 200, { name, task_types: ['bench'], policies: ['vp.schema_only.v1'], public_key: id.publicKey, protocol_version: '1' });
      if (req.method === 'POST' && req.url === '/execute') {
        const r = (await readJson(req)) as ExecuteRequest;
        key = r.task_id.includes('/') && !r.proposer_id ? r.task_id.slice(0, r.task_id.indexOf('/')) : r.task_id;
        const answer = { output: { answer: 42, task_type: r.task_type }, evidence: [], cost_usd: 0 };
        const fields = candidateFieldsOf({ task_id: r.task_id, proposer_id: r.proposer_id ?? name, round: r.round ?? 1 }, answer);
        return send(res, 200, { ...answer, candidate_hash: fields.candidate_hash as string, signature: signRecord(id.privateKey, 'candidate', fields) });
      }
      if (req.method === 'POST' && req.url === '/verify') {
        const r = (await readJson(req)) as VerifyRequest;
        key = r.task_id;
        if (candidateHash(r.candidate.output) !== r.candidate.candidate_hash) return send(res, 400, { code: 'INPUT_INVALID', message: 'candidate_hash mismatch', retryable: false });
        const answer = { status: 'passed' as const, reason_codes: [] as number[], score: 1, evidence: [], cost_usd: 0 };
        const fields = verifierResultFieldsOf({ task_id: r.task_id, candidate_hash: r.candidate.candidate_hash, verifier_id: r.verifier_id ?? name, policy_id: r.policy_id }, answer);
        return send(res, 200, { ...answer, signature: signRecord(id.privateKey, 'verifier_result', fields) });
      }
      send(res, 404, { code: 'NOT_FOUND', message: `${req.method} ${req.url}`, retryable: false });
    } finally {
      if (key !== undefined) {
        executorMs.set(key, (executorMs.get(key) ?? 0) + (nowMs() - t0));
        executorCalls.set(key, (executorCalls.get(key) ?? 0) + 1);
      }
    }
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => send(res, 500, { code: 'EXECUTOR_ERROR', message: String(e), retryable: false }));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    publicKey: id.publicKey,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Env {
  swarm: Swarm;
  stop(): Promise<void>;
}

async function openTarget(kind: TargetKind, pg: BenchServer | undefined, executors: readonly FakeExecutor[], base: string | undefined, keep: boolean): Promise<Env> {
  const dir: BenchDir = freshDir(`consensus-${kind}`, base, keep);
  const db = kind === 'postgres' ? await pg!.createDatabase('consensus') : undefined;
  const swarm = await Swarm.open({ cwd: dir.root, env: { SWARM_HOME: dir.home, ...(db ? { SWARM_DATABASE_URL: db } : {}) }, overrides: { durability: 'full', pollMs: 5 } });
  // As `swarm executors add` does: the record with the public key pinned.
  for (const e of executors) await swarm.store.putExecutor({ name: e.name, base_url: e.url, token_secret: null, public_key: e.publicKey });
  const steps: string[] = [];
  for (let i = 1; i <= PROPOSERS; i++) {
    writePackage(dir, 'agents', `remote-p${i}`, 'agent.yaml', `name: remote-p${i}\nversion: 1.0.0\ndescription: benchmark probe\nruntime:\n  type: http\n  executor: p${i}\n  task_type: bench\n  timeout_seconds: 30\noutputs: []\n`);
    await swarm.registerAgent(join(dir.root, 'agents', `remote-p${i}`));
    steps.push(`  - id: s${i}`, `    agent: remote-p${i}`);
  }
  const wf = writePackage(dir, 'workflows', 'plain5', 'workflow.yaml', ['name: plain5', 'version: 1.0.0', 'description: baseline', 'trigger:', '  type: manual', `concurrency: ${PROPOSERS}`, 'steps:', ...steps, ''].join('\n'));
  await swarm.registerWorkflow(wf);
  const worker = swarm.worker({ concurrency: 8 });
  return {
    swarm,
    stop: async () => {
      await worker.stop(5_000);
      await swarm.close();
      if (db) await pg!.dropDatabase(db);
      dir.remove();
    },
  };
}

let taskSeq = 0;
function contract(): Record<string, unknown> {
  taskSeq += 1;
  return {
    task_id: `bench-${process.pid}-${taskSeq}`,
    task_type: 'bench',
    inputs: { n: taskSeq },
    output_schema: { type: 'object', required: ['answer'], properties: { answer: { type: 'integer' } } },
    proposers: Array.from({ length: PROPOSERS }, (_, i) => ({ executor: `p${i + 1}` })),
    verification: { policy: 'vp.schema_only.v1', verifiers: Array.from({ length: VERIFIERS }, (_, i) => ({ executor: `v${i + 1}` })) },
    voting: { voters: Array.from({ length: VOTERS }, (_, i) => ({ id: `voter-${i + 1}` })), quorum: 3 },
    knowledge: { lookup: 'off' },
  };
}

interface Sample {
  ms: number;
  /** Time inside the executors' handlers. */
  exec_ms: number;
  calls: number;
  /** Events in the run's log (a diagnostic: each is a row, most in their own transaction). */
  events: number;
  /** This process's CPU time (user + system) over the task: the kernel's JavaScript and the fake executors' handlers; not the database server's. */
  cpu_ms: number;
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** One consensus task to its decision: wall ms and the ms spent inside the executors. */
async function oneTask(swarm: Swarm): Promise<Sample> {
  const c0 = cpuMs();
  const t0 = nowMs();
  const sub = await swarm.submitTask(contract());
  const run = await swarm.wait(sub.run_id);
  const ms = nowMs() - t0;
  const cpu = cpuMs() - c0;
  if (run.run.status !== 'completed') throw new Error(`task ${sub.task_id}: run ${run.run.id} ended ${run.run.status}`);
  const d = await swarm.taskDecision(sub.task_id);
  if (d.status !== 'finalized') throw new Error(`task ${sub.task_id} is ${d.status}`);
  return { ms, exec_ms: executorMs.get(sub.task_id) ?? 0, calls: executorCalls.get(sub.task_id) ?? 0, events: (await swarm.events(sub.run_id)).length, cpu_ms: cpu };
}

async function oneBaseline(swarm: Swarm): Promise<Sample> {
  const c0 = cpuMs();
  const t0 = nowMs();
  const id = await swarm.startRun('plain5');
  const run = await swarm.wait(id);
  const ms = nowMs() - t0;
  const cpu = cpuMs() - c0;
  if (run.run.status !== 'completed') throw new Error(`baseline run ${id} ended ${run.run.status}`);
  return { ms, exec_ms: executorMs.get(id) ?? 0, calls: executorCalls.get(id) ?? 0, events: (await swarm.events(id)).length, cpu_ms: cpu };
}

async function throughput(swarm: Swarm, inflight: number, tasks: number): Promise<number> {
  let left = tasks;
  const t0 = nowMs();
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (left > 0) {
        left -= 1;
        await oneTask(swarm);
      }
    }),
  );
  return (tasks * 1000) / (nowMs() - t0);
}

/**
 * `--trace`: every `pg.Client.query` of this process counted while `on`. The store sends a
 * transaction's statements pipelined (several per query string), so one call is one round trip.
 */
const rt = { on: false, trips: 0, transactions: 0, texts: new Map<string, number>() };
function installRoundTripCounter(): void {
  type QueryFn = (this: pg.Client, ...args: unknown[]) => unknown;
  const proto = pg.Client.prototype as unknown as { query: QueryFn };
  const original = proto.query;
  const names = new Map<string, string>();
  proto.query = function (this: pg.Client, ...args: unknown[]): unknown {
    const a = args[0];
    const text = typeof a === 'string' ? a : a && typeof a === 'object' && 'text' in a && typeof a.text === 'string' ? a.text : '?';
    if (text.includes('PREPARE ')) for (const m of text.matchAll(/PREPARE (\w+) AS ([^]*?)(?:;\n|$)/g)) names.set(m[1]!, m[2]!);
    if (rt.on) {
      rt.trips++;
      if (/\bCOMMIT\b/.test(text)) rt.transactions++;
      // What the round trip is for: its statements without the values, BEGIN's clock and PREPAREs left out.
      const key = text
        .split(';\n')
        .filter((x) => !x.startsWith('PREPARE ') && !x.startsWith('BEGIN') && !x.startsWith('SELECT set_config'))
        .map((x) => (x.startsWith('EXECUTE ') ? (names.get(x.slice(8).replace(/\(.*$/s, '')) ?? x) : x).replace(/\s+/g, ' ').slice(0, 70))
        .join(' | ');
      rt.texts.set(key, (rt.texts.get(key) ?? 0) + 1);
    }
    return original.apply(this, args);
  };
}

interface RoundTrips {
  per_task: number;
  transactions_per_task: number;
  per_baseline: number;
  transactions_per_baseline: number;
  /** The task's round trips by what they carry (per task). */
  task_kinds: Array<[string, number]>;
}

async function countRoundTrips(swarm: Swarm, n: number): Promise<RoundTrips> {
  const one = async (f: () => Promise<unknown>): Promise<{ trips: number; transactions: number; texts: Map<string, number> }> => {
    rt.trips = 0;
    rt.transactions = 0;
    rt.texts = new Map();
    rt.on = true;
    try {
      for (let i = 0; i < n; i++) await f();
    } finally {
      rt.on = false;
    }
    return { trips: rt.trips / n, transactions: rt.transactions / n, texts: rt.texts };
  };
  const b = await one(() => oneBaseline(swarm));
  const t = await one(() => oneTask(swarm));
  return {
    per_task: t.trips,
    transactions_per_task: t.transactions,
    per_baseline: b.trips,
    transactions_per_baseline: b.transactions,
    task_kinds: [...t.texts.entries()].sort((x, y) => y[1] - x[1]).map(([k, c]) => [k, c / n]),
  };
}

interface Measurement {
  target: TargetKind;
  task_ms: number;
  baseline_ms: number;
  ratio: number;
  kernel_ms_per_task: number;
  exec_ms_per_task: number;
  calls_per_task: number;
  baseline_kernel_ms: number;
  events_per_task: number;
  events_per_baseline: number;
  tasks_per_s: Record<string, number>;
  /** This process's CPU ms per task and per baseline run (medians). */
  task_cpu_ms: number;
  baseline_cpu_ms: number;
  round_trips?: RoundTrips;
}

async function measure(kind: TargetKind, env: Env, tasks: number, inflights: readonly number[], trace: boolean): Promise<Measurement> {
  const { swarm } = env;
  // Warm-up: JIT, connections, kernel keys created on first use.
  await oneBaseline(swarm);
  await oneTask(swarm);
  const base = [];
  const task = [];
  // Interleaved, so load from the neighbours hits both alike.
  for (let i = 0; i < tasks; i++) {
    base.push(await oneBaseline(swarm));
    task.push(await oneTask(swarm));
  }
  const tps: Record<string, number> = {};
  for (const n of inflights) tps[String(n)] = await throughput(swarm, n, Math.max(tasks, n * 3));
  const trips = trace && kind === 'postgres' ? await countRoundTrips(swarm, Math.min(tasks, 10)) : undefined;
  const taskMs = median(task.map((t) => t.ms));
  const baseMs = median(base.map((t) => t.ms));
  return {
    target: kind,
    task_ms: taskMs,
    baseline_ms: baseMs,
    ratio: taskMs / baseMs,
    kernel_ms_per_task: median(task.map((t) => t.ms - t.exec_ms)),
    exec_ms_per_task: median(task.map((t) => t.exec_ms)),
    calls_per_task: median(task.map((t) => t.calls)),
    baseline_kernel_ms: median(base.map((t) => t.ms - t.exec_ms)),
    events_per_task: median(task.map((t) => t.events)),
    events_per_baseline: median(base.map((t) => t.events)),
    tasks_per_s: tps,
    task_cpu_ms: median(task.map((t) => t.cpu_ms)),
    baseline_cpu_ms: median(base.map((t) => t.cpu_ms)),
    ...(trips ? { round_trips: trips } : {}),
  };
}

async function main(): Promise<void> {
  const v = benchOptions(process.argv.slice(2), { ...COMMON_OPTIONS, tasks: { type: 'string' }, inflight: { type: 'string' }, targets: { type: 'string' } }, USAGE);
  const quick = v.quick ?? false;
  const tasks = intOption(v.tasks, '--tasks', 1) ?? (quick ? 5 : 30);
  const repeat = intOption(v.repeat, '--repeat', 1) ?? (quick ? 1 : 3);
  const inflights = v.inflight ? countsOption(v.inflight, '--inflight') : [1, 4];
  const trace = v.trace ?? false;
  if (trace) installRoundTripCounter();
  const kinds = v.targets ? namesOption(v.targets, '--targets', TARGETS) : new Set<TargetKind>(TARGETS);
  const loadBefore = loadavg();
  const executors = await Promise.all([...Array.from({ length: PROPOSERS }, (_, i) => `p${i + 1}`), ...Array.from({ length: VERIFIERS }, (_, i) => `v${i + 1}`)].map(startFakeExecutor));
  const pg = kinds.has('postgres') ? await startBenchServer({ base: v.dir, stats: false, log: (l) => console.log(l) }) : undefined;
  const reps = new Map<TargetKind, Measurement[]>();
  try {
    for (let rep = 0; rep < repeat; rep++) {
      for (const kind of TARGETS.filter((k) => kinds.has(k))) {
        const env = await openTarget(kind, pg, executors, v.dir, v.keep ?? false);
        try {
          const m = await measure(kind, env, tasks, inflights, trace);
          reps.set(kind, [...(reps.get(kind) ?? []), m]);
          if (m.round_trips) {
            const r = m.round_trips;
            console.log(`  round trips: ${r.per_task} per task (${r.transactions_per_task} transactions), ${r.per_baseline} per baseline run (${r.transactions_per_baseline} transactions); per task by kind:`);
            for (const [k, c] of r.task_kinds.slice(0, 30)) console.log(`    ${c.toFixed(1).padStart(5)}  ${k}`);
          }
          console.log(`  rep ${rep + 1}/${repeat} ${kind}: task ${m.task_ms.toFixed(1)} ms, baseline ${m.baseline_ms.toFixed(1)} ms (${m.ratio.toFixed(2)}×), kernel ${m.kernel_ms_per_task.toFixed(1)} ms/task, CPU ${m.task_cpu_ms.toFixed(1)} / ${m.baseline_cpu_ms.toFixed(1)} ms, ${Object.entries(m.tasks_per_s).map(([n, t]) => `${t.toFixed(1)} tasks/s @${n}`).join(', ')}`);
        } finally {
          await env.stop();
        }
      }
    }
  } finally {
    await pg?.stop();
    await Promise.all(executors.map((e) => e.close()));
  }
  const medians = [...reps.entries()].map(([target, ms]) => ({
    target,
    task_ms: median(ms.map((m) => m.task_ms)),
    baseline_ms: median(ms.map((m) => m.baseline_ms)),
    ratio: median(ms.map((m) => m.ratio)),
    kernel_ms_per_task: median(ms.map((m) => m.kernel_ms_per_task)),
    exec_ms_per_task: median(ms.map((m) => m.exec_ms_per_task)),
    calls_per_task: median(ms.map((m) => m.calls_per_task)),
    baseline_kernel_ms: median(ms.map((m) => m.baseline_kernel_ms)),
    events_per_task: median(ms.map((m) => m.events_per_task)),
    events_per_baseline: median(ms.map((m) => m.events_per_baseline)),
    tasks_per_s: Object.fromEntries(inflights.map((n) => [String(n), median(ms.map((m) => m.tasks_per_s[String(n)] ?? Number.NaN))])),
    task_cpu_ms: median(ms.map((m) => m.task_cpu_ms)),
    baseline_cpu_ms: median(ms.map((m) => m.baseline_cpu_ms)),
  }));
  const load = loadavg()[0]!;
  console.log(`\n${tasks} tasks and ${tasks} baseline runs per measurement, ${repeat} repetition(s), medians; load average ${load.toFixed(1)} on ${cpus().length} cores`);
  if (load > cpus().length) console.log('warning: the machine is busier than its cores: times measure the neighbours too; compare the ratio');
  console.log('');
  const rows = medians.map((m) => [m.target, m.task_ms.toFixed(1), m.baseline_ms.toFixed(1), `${m.ratio.toFixed(2)}×`, m.kernel_ms_per_task.toFixed(1), m.baseline_kernel_ms.toFixed(1), m.exec_ms_per_task.toFixed(2), `${m.task_cpu_ms.toFixed(1)} / ${m.baseline_cpu_ms.toFixed(1)} (${(m.task_cpu_ms / m.baseline_cpu_ms).toFixed(2)}×)`, String(m.calls_per_task), `${m.events_per_task} / ${m.events_per_baseline}`, ...inflights.map((n) => (m.tasks_per_s[String(n)] ?? Number.NaN).toFixed(1))]);
  console.log(table(['target', 'task ms', 'baseline ms', 'ratio', 'kernel ms/task', 'kernel ms/baseline', 'in executors ms/task', 'CPU ms task / baseline', 'calls/task', 'events task / baseline', ...inflights.map((n) => `tasks/s @${n}`)], rows));
  const goals = medians.map((m) => ({ target: m.target, goal_ratio: GOAL_RATIO, ratio: m.ratio, met: m.ratio <= GOAL_RATIO }));
  for (const g of goals) console.log(`target ≤ ${GOAL_RATIO}× the baseline on ${g.target}: ${g.ratio.toFixed(2)}× — ${g.met ? 'met' : 'missed'}`);
  const result = { bench: 'consensus', tasks, repeat, inflight: inflights, shape: { proposers: PROPOSERS, verifiers: VERIFIERS, voters: VOTERS }, medians, repetitions: Object.fromEntries(reps), goals, postgres: pg ? { kind: pg.kind } : null, host: hostInfo(loadBefore), git: gitState() };
  if (!(v['no-save'] ?? false)) {
    const out = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const file = join(out, `consensus-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2));
    writeFileSync(join(out, 'consensus-latest.json'), JSON.stringify(result, null, 2));
    console.log(`wrote ${file}`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
