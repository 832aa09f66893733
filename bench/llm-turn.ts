/**
 * The agent loop's per-turn overhead. `npm run bench:llm` (= build + `node dist/bench/llm-turn.js`);
 * see bench/README.md.
 *
 *   node dist/bench/llm-turn.js [--quick] [--systems memory,full,process,openai-agents,floor]
 *   node dist/bench/llm-turn.js [--quick] [--systems memory,full,process,pg,openai-agents,floor]
 *                               [--trace] [--profile <dir>] [--dir <temp base>] [--keep] [--no-save]
 *
 * Every measurement runs in a fresh child process after an unmeasured warm-up; repetitions are
 * interleaved and the medians reported, with the ratios between systems taken from the same run.
 * Node flags given to this process (e.g. --cpu-prof) are passed on to the children.
 */
import { benchOptions, COMMON_OPTIONS, intOption, namesOption } from './args.js';
import { childMain, gitState, hostInfo, runInChild } from './runner.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { llmJobKey, runLlmJob, type LlmJob, type LlmResult } from './llm-workloads.js';
import { startBenchServer, type BenchServer } from './pg-server.js';
import { median, REPO_ROOT } from './harness.js';
import { table } from './report.js';
import { installSqlTrace, type TraceReport } from './sql-trace.js';
import { runJob, type FloorResult } from './workloads.js';

/** What --systems can select: the letters of the brief, by name. */
const SELECTABLE = ['memory', 'full', 'process', 'pg', 'openai-agents', 'floor'] as const;
type Selectable = (typeof SELECTABLE)[number];
const DEFAULT_SYSTEMS: readonly Selectable[] = ['memory', 'full', 'process', 'pg', 'openai-agents', 'floor'];

/** The per-turn target of `durability: full` (the durable checkpoint included). */
const TARGET_MS_PER_TURN = 1;

interface Options {
  quick: boolean;
  systems: Set<Selectable>;
  conversations: number;
  turns: number;
  inFlight: number;
  repeat: number;
  trace: boolean;
  base: string | undefined;
  profileDir: string | undefined;
  keep: boolean;
  save: boolean;
}

const USAGE = `usage: node dist/bench/llm-turn.js [options]
  --quick              smoke: a fifth of the conversations, 1 repetition
  --systems <names>    comma-separated subset of: ${SELECTABLE.join(', ')} (default: all)
                       pg starts an embedded PostgreSQL (or uses SWARM_BENCH_DATABASE_URL);
                       when it cannot start, pg is skipped with a warning
  --conversations <n>  conversations per measurement (default: memory 2000, process 800,
                       openai-agents 400, full and pg 100)
  --turns <n>          tool-calling turns per conversation (default 10), then one final answer
  --in-flight <n>      conversations running at once (default 1: one after another)
  --repeat <n>         repetitions, medians reported (default 3; --quick 1)
  --trace              count and time every SQLite call of the measured phase
  --profile <dir>      write a V8 CPU profile of each measured phase into <dir>
  --dir <path>         where to create the temp directories (default: the OS temp dir)
  --keep               keep the temp directories
  --no-save            do not write bench/results/llm-*.json`;

function parseOptions(argv: readonly string[]): Options {
  const v = benchOptions(
    argv,
    {
      ...COMMON_OPTIONS,
      systems: { type: 'string' },
      conversations: { type: 'string' },
      turns: { type: 'string' },
      'in-flight': { type: 'string' },
      profile: { type: 'string' },
    },
    USAGE,
  );
  const quick = v.quick ?? false;
  return {
    quick,
    systems: v.systems === undefined ? new Set(DEFAULT_SYSTEMS) : namesOption(v.systems, '--systems', SELECTABLE),
    conversations: intOption(v.conversations, '--conversations', 1) ?? 0,
    turns: intOption(v.turns, '--turns', 1) ?? 10,
    inFlight: intOption(v['in-flight'], '--in-flight', 1) ?? 1,
    repeat: intOption(v.repeat, '--repeat', 1) ?? (quick ? 1 : 3),
    trace: v.trace ?? false,
    base: v.dir,
    profileDir: v.profile === undefined ? undefined : resolve(v.profile),
    keep: v.keep ?? false,
    save: !(v['no-save'] ?? false),
  };
}

type PlannedJob = { kind: 'llm'; job: LlmJob } | { kind: 'floor'; quick: boolean; base?: string };

function plan(o: Options): PlannedJob[] {
  const common = {
    turns: o.turns,
    inFlight: o.inFlight,
    keep: o.keep,
    trace: o.trace,
    ...(o.base ? { base: o.base } : {}),
    ...(o.profileDir ? { profileDir: o.profileDir } : {}),
  };
  // Conversations per measurement: enough for a measured phase of a second or more. A turn at `full`
  // waits for fsyncs, so those measure fewer; every number is per turn whatever the count.
  const count = (sys: 'memory' | 'fsync' | 'process' | 'openai-agents'): number =>
    o.conversations || { memory: 2000, process: 800, 'openai-agents': 400, fsync: 100 }[sys] / (o.quick ? 5 : 1);
  const warm = (n: number): number => Math.max(5, Math.round(n / 5));
  const llm = (job: Omit<LlmJob, 'turns' | 'inFlight' | 'keep' | 'trace' | 'warmup'>): PlannedJob => ({ kind: 'llm', job: { ...common, ...job, warmup: warm(job.conversations) } });
  const jobs: PlannedJob[] = [];
  if (o.systems.has('memory')) jobs.push(llm({ system: 'swarm-memory', conversations: count('memory') }));
  if (o.systems.has('full')) jobs.push(llm({ system: 'swarm-sqlite', durability: 'full', conversations: count('fsync') }));
  if (o.systems.has('process')) jobs.push(llm({ system: 'swarm-sqlite', durability: 'process', conversations: count('process') }));
  if (o.systems.has('pg')) jobs.push(llm({ system: 'swarm-pg', durability: 'full', conversations: count('fsync') }));
  if (o.systems.has('openai-agents')) jobs.push(llm({ system: 'openai-agents', conversations: count('openai-agents') }));
  if (o.systems.has('floor')) jobs.push({ kind: 'floor', quick: o.quick, ...(o.base ? { base: o.base } : {}) });
  return jobs;
}

const keyOf = (p: PlannedJob): string => (p.kind === 'floor' ? 'floor' : llmJobKey(p.job));

type ChildResult = { kind: 'llm'; result: LlmResult } | { kind: 'floor'; result: FloorResult };

function inChild(p: PlannedJob, timeoutMs = 150_000): Promise<ChildResult> {
  return runInChild<PlannedJob, ChildResult>(fileURLToPath(import.meta.url), p, keyOf(p), timeoutMs);
}

function child(json: string): Promise<void> {
  const p = JSON.parse(json) as PlannedJob;
  return childMain<ChildResult>(async () => {
    if (p.kind === 'floor') {
      return { kind: 'floor', result: (await runJob({ workload: 'floor', quick: p.quick, keep: false, trace: false, ...(p.base ? { base: p.base } : {}) })) as FloorResult };
    }
    if (p.job.trace) installSqlTrace();
    return { kind: 'llm', result: await runLlmJob(p.job) };
  });
}

// ---------------------------------------------------------------- report

/** Field-wise median of the numeric fields over repetitions; other fields from the first. */
function medianOf<T extends object>(reps: readonly T[]): T {
  const first = reps[0];
  if (!first) throw new Error('no repetitions');
  const out = { ...first } as Record<string, unknown>;
  for (const [k, v] of Object.entries(first)) {
    if (typeof v === 'number') out[k] = median(reps.map((r) => (r as unknown as Record<string, number>)[k] ?? Number.NaN));
  }
  return out as unknown as T;
}

const fix = (n: number | null | undefined, d = 3): string => (n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(d));

const LABELS: Record<string, string> = {
  'swarm-memory': '(a) Swarm loop, memoryJournal()',
  'swarm-sqlite/full': '(b) Swarm loop, storeJournal, SQLite full',
  'swarm-sqlite/process': '(c) Swarm loop, storeJournal, SQLite process',
  'swarm-pg/full': '(d) Swarm loop, storeJournal, PostgreSQL full',
  'openai-agents': '(e) @openai/agents Runner, in memory',
};

function label(r: LlmResult): string {
  const base = llmJobKey({ system: r.system, inFlight: 1, ...(r.durability ? { durability: r.durability } : {}) });
  return `${LABELS[base] ?? base}${r.in_flight > 1 ? `, ${r.in_flight} in flight` : ''}`;
}

function resultsTable(results: ReadonlyArray<{ r: LlmResult; reps: number }>): string {
  const rows = results.map(({ r, reps }) => [
    label(r),
    `${r.conversations}×${r.turns}`,
    fix(r.ms_per_turn),
    fix(r.turn_p50_ms),
    fix(r.turn_p99_ms),
    fix(r.conv_p99_ms_per_turn),
    fix(r.cpu_ms_per_turn),
    `${fix((100 * (r.cpu_user_ms + r.cpu_sys_ms)) / r.wall_ms, 0)}%`,
    fix(r.journal_writes_per_turn, 2),
    String(reps),
  ]);
  return table(['system', 'conv×turns', 'ms/turn', 'turn p50', 'turn p99', 'conv p99 ms/turn', 'CPU ms/turn', 'CPU/wall', 'journal writes/turn', 'reps'], rows, 1);
}

interface Ratios {
  /** Wall time per turn. */
  b_over_e?: number;
  a_over_e?: number;
  c_over_e?: number;
  d_over_e?: number;
  checkpoint_full_ms?: number;
  checkpoint_process_ms?: number;
  checkpoint_pg_ms?: number;
  fsync_floor_ms_per_turn?: number;
  /** CPU time per turn: the same comparisons without waiting (fsync, and other load on the machine). */
  cpu_b_over_e?: number;
  cpu_a_over_e?: number;
  cpu_c_over_e?: number;
}

function ratios(by: Map<string, LlmResult>, floor: FloorResult | undefined): Ratios {
  const a = by.get('swarm-memory')?.ms_per_turn;
  const b = by.get('swarm-sqlite/full')?.ms_per_turn;
  const c = by.get('swarm-sqlite/process')?.ms_per_turn;
  const d = by.get('swarm-pg/full')?.ms_per_turn;
  const e = by.get('openai-agents')?.ms_per_turn;
  const out: Ratios = {};
  if (b !== undefined && e) out.b_over_e = b / e;
  if (a !== undefined && e) out.a_over_e = a / e;
  if (c !== undefined && e) out.c_over_e = c / e;
  if (d !== undefined && e) out.d_over_e = d / e;
  if (a !== undefined && b !== undefined) out.checkpoint_full_ms = b - a;
  if (a !== undefined && c !== undefined) out.checkpoint_process_ms = c - a;
  if (a !== undefined && d !== undefined) out.checkpoint_pg_ms = d - a;
  const cpu = (key: string): number | undefined => by.get(key)?.cpu_ms_per_turn;
  const ce = cpu('openai-agents');
  if (ce) {
    const cb = cpu('swarm-sqlite/full');
    const ca = cpu('swarm-memory');
    const cc = cpu('swarm-sqlite/process');
    if (cb !== undefined) out.cpu_b_over_e = cb / ce;
    if (ca !== undefined) out.cpu_a_over_e = ca / ce;
    if (cc !== undefined) out.cpu_c_over_e = cc / ce;
  }
  const writes = by.get('swarm-sqlite/full')?.journal_writes_per_turn;
  if (floor && writes) out.fsync_floor_ms_per_turn = (writes * 1000) / floor.full_commits_per_s;
  return out;
}

function ratioLines(r: Ratios, floor: FloorResult | undefined): string[] {
  const lines: string[] = [];
  const x = (v: number | undefined, what: string): void => {
    if (v !== undefined) lines.push(`  ${what.padEnd(52)} ${v.toFixed(2)}×`);
  };
  const ms = (v: number | undefined, what: string): void => {
    if (v !== undefined) lines.push(`  ${what.padEnd(52)} ${v.toFixed(3)} ms/turn`);
  };
  x(r.b_over_e, '(b) SQLite full ÷ (e) @openai/agents');
  x(r.a_over_e, '(a) memory ÷ (e) @openai/agents');
  x(r.c_over_e, '(c) SQLite process ÷ (e) @openai/agents');
  x(r.d_over_e, '(d) PostgreSQL full ÷ (e) @openai/agents');
  x(r.cpu_b_over_e, 'CPU per turn: (b) ÷ (e)');
  x(r.cpu_a_over_e, 'CPU per turn: (a) ÷ (e)');
  x(r.cpu_c_over_e, 'CPU per turn: (c) ÷ (e)');
  ms(r.checkpoint_full_ms, 'durable checkpoint cost, full: (b) − (a)');
  ms(r.checkpoint_process_ms, 'durable checkpoint cost, process: (c) − (a)');
  ms(r.checkpoint_pg_ms, 'durable checkpoint cost, PostgreSQL: (d) − (a)');
  if (floor) {
    lines.push(`  ${'one fsynced SQLite commit on this disk (floor)'.padEnd(52)} ${(1000 / floor.full_commits_per_s).toFixed(3)} ms (${Math.round(floor.full_commits_per_s)} commits/s)`);
    ms(r.fsync_floor_ms_per_turn, "(b)'s commits per turn × that commit");
  }
  return lines;
}

interface TargetLine {
  name: string;
  goal_ms: number;
  value_ms: number | null;
  met: boolean | null;
}

/** The target is on the mean (wall ÷ turns); the median turn is shown beside it. */
function targets(by: Map<string, LlmResult>): TargetLine[] {
  const b = by.get('swarm-sqlite/full');
  const line = (name: string, v: number | undefined): TargetLine => ({ name, goal_ms: TARGET_MS_PER_TURN, value_ms: v ?? null, met: v === undefined ? null : v <= TARGET_MS_PER_TURN });
  return [line('(b) Swarm loop + durable checkpoint, SQLite full: ms/turn', b?.ms_per_turn), line('(b) the same, median turn (turn p50)', b?.turn_p50_ms)];
}

function traceLines(results: ReadonlyArray<{ r: LlmResult }>): string[] {
  const lines: string[] = [];
  for (const { r } of results) {
    const t = (r as LlmResult & { trace?: TraceReport }).trace;
    if (!t || t.total_calls === 0) continue;
    const turns = r.conversations * r.turns;
    // The tool record is an autocommit INSERT: its commit (and fsync) is inside that statement's time.
    lines.push(
      `${label(r)}: ${fix(t.total_calls / turns, 1)} SQLite calls/turn, ${fix(t.commits / turns, 2)} COMMIT/turn at ${fix(t.commit_ms / t.commits, 3)} ms each, ` +
        `SQL ${fix(t.total_ms / turns, 3)} ms/turn (${fix((100 * t.total_ms) / r.wall_ms, 0)}% of wall)`,
    );
    for (const st of t.statements.slice(0, 8)) lines.push(`  ${String(st.calls).padStart(7)}  ${st.ms.toFixed(1).padStart(8)} ms  ${(st.calls / turns).toFixed(2).padStart(5)}/turn  ${st.sql.slice(0, 90)}`);
  }
  return lines;
}

// ---------------------------------------------------------------- main

async function main(argv: readonly string[]): Promise<void> {
  if (argv[0] === '--child') return child(argv[1] ?? '{}');
  const o = parseOptions(argv);
  const jobs = plan(o);
  if (jobs.length === 0) throw new Error('nothing to run');
  const started = new Date();
  const t0 = Date.now();
  console.log(
    `swarm llm-turn bench: ${jobs.length} measurement(s) × ${o.repeat} repetition(s), ${o.turns} tool turns + 1 answer per conversation, ` +
      `${o.inFlight} in flight${o.quick ? ' (quick)' : ''}${o.trace ? ' (traced)' : ''}; temp dirs under ${o.base ?? tmpdir()}`,
  );
  const loadBefore = loadavg();
  if ((loadBefore[0] ?? 0) > cpus().length / 2) {
    console.log(`  warning: load average is ${loadBefore.map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} CPUs; other work will skew the numbers`);
  }

  let server: BenchServer | undefined;
  const isPg = (p: PlannedJob): boolean => p.kind === 'llm' && p.job.system === 'swarm-pg';
  if (jobs.some(isPg)) {
    try {
      server = await startBenchServer({ stats: false, ...(o.base ? { base: o.base } : {}), log: (l) => console.log(`  ${l}`) });
      console.log(`  PostgreSQL: ${server.kind} at ${server.location}`);
    } catch (e) {
      console.log(`  warning: no PostgreSQL server (${e instanceof Error ? e.message : String(e)}); skipping (d)`);
      jobs.splice(0, jobs.length, ...jobs.filter((p) => !isPg(p)));
    }
  }
  const llmReps = new Map<string, LlmResult[]>();
  const floorReps: FloorResult[] = [];
  try {
    for (let rep = 1; rep <= o.repeat; rep++) {
      for (const p of jobs) {
        const t = Date.now();
        let url: string | undefined;
        if (p.kind === 'llm' && p.job.system === 'swarm-pg' && server) url = await server.createDatabase('llm');
        try {
          const res = await inChild(p.kind === 'llm' && url ? { kind: 'llm', job: { ...p.job, pgUrl: url } } : p);
          let brief: string;
          if (res.kind === 'floor') {
            floorReps.push(res.result);
            brief = `one fsynced commit ${(1000 / res.result.full_commits_per_s).toFixed(3)} ms, unsynced ${(1000 / res.result.normal_commits_per_s).toFixed(3)} ms`;
          } else {
            const list = llmReps.get(keyOf(p)) ?? [];
            list.push(res.result);
            llmReps.set(keyOf(p), list);
            brief = `${res.result.ms_per_turn.toFixed(3)} ms/turn, turn p50 ${res.result.turn_p50_ms.toFixed(3)} p99 ${res.result.turn_p99_ms.toFixed(3)} ms, CPU ${res.result.cpu_ms_per_turn.toFixed(3)} ms/turn`;
          }
          console.log(`  [${rep}/${o.repeat}] ${keyOf(p).padEnd(26)} ${brief}  (${((Date.now() - t) / 1000).toFixed(1)} s)`);
        } finally {
          if (url && server) await server.dropDatabase(url);
        }
      }
    }
  } finally {
    await server?.stop();
  }

  const results = [...llmReps.entries()].map(([key, list]) => ({ key, r: medianOf(list), reps: list.length }));
  // Every measurement of a run has the same in-flight count: the ratios compare them by system.
  const by = new Map(results.map((x) => [llmJobKey({ system: x.r.system, inFlight: 1, ...(x.r.durability ? { durability: x.r.durability } : {}) }), x.r]));
  const floor = floorReps.length ? medianOf(floorReps) : undefined;
  const rat = ratios(by, floor);
  const tgt = targets(by);

  console.log(`\nResults (medians of ${o.repeat}; ms/turn = wall ÷ (conversations × turns); turn = model call k → model call k+1; CPU = user + system)\n`);
  console.log(resultsTable(results));
  console.log('\nRatios (same run)\n');
  console.log(ratioLines(rat, floor).join('\n'));
  console.log('\nTarget (this machine: %d × %s)\n', cpus().length, cpus()[0]?.model ?? 'cpu');
  console.log(
    table(
      ['target', 'goal', 'median', ''],
      tgt.map((t) => [t.name, `≤ ${t.goal_ms} ms/turn`, t.value_ms === null ? '-' : `${t.value_ms.toFixed(3)} ms`, t.met === null ? '?' : t.met ? 'met' : 'MISSED']),
      1,
    ),
  );
  const trace = traceLines(results);
  if (trace.length) console.log(`\nSQLite trace of the measured phases\n\n${trace.join('\n')}`);
  const elapsed = (Date.now() - t0) / 1000;
  console.log(`\ntotal ${elapsed.toFixed(1)} s`);

  if (o.save) {
    const dir = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const doc = {
      started_at: started.toISOString(),
      elapsed_s: elapsed,
      options: { ...o, systems: [...o.systems] },
      git: gitState(),
      host: hostInfo(loadBefore),
      results: Object.fromEntries(results.map((x) => [x.key, { reps: x.reps, median: x.r }])),
      floor: floor ?? null,
      ratios: rat,
      targets: tgt,
      repetitions: { ...Object.fromEntries(llmReps), ...(floorReps.length ? { floor: floorReps } : {}) },
    };
    const text = `${JSON.stringify(doc, null, 2)}\n`;
    const file = join(dir, `llm-${started.toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, text);
    writeFileSync(join(dir, 'llm-latest.json'), text);
    console.log(`wrote ${file} and bench/results/llm-latest.json`);
  }
}


main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
