/**
 * PostgreSQL benchmark: medians over repetitions, ratios (against the floor and the peers, all from
 * the same run), the targets, and the printed tables.
 */
import type { Durability } from '../src/index.js';
import { median } from './harness.js';
import type { FloorResult, LatencyResult, PgJob, PgResult, ThroughputResult } from './pg-drive.js';
import { table } from './report.js';

export interface PgSummary {
  key: string;
  job: Omit<PgJob, 'url'>;
  reps: number;
  median: PgResult;
}

/** Field-wise median of numbers (recursing into plain objects); everything else from the first repetition. */
export function medianOfReps<T>(reps: readonly T[]): T {
  const first = reps[0];
  if (first === undefined) throw new Error('no repetitions');
  const walk = (items: readonly unknown[]): unknown => {
    const f = items[0];
    if (typeof f === 'number') return median(items.map((x) => (typeof x === 'number' ? x : Number.NaN)));
    if (f && typeof f === 'object' && !Array.isArray(f)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(f)) out[k] = walk(items.map((x) => (x as Record<string, unknown> | undefined)?.[k]));
      return out;
    }
    return f;
  };
  return walk(reps) as T;
}

const find = <T extends PgResult>(summaries: readonly PgSummary[], key: string): T | undefined => summaries.find((s) => s.key === key)?.median as T | undefined;

export function floorOf(summaries: readonly PgSummary[]): FloorResult | undefined {
  return find<FloorResult>(summaries, 'floor');
}

/** Raw single-connection commits/s at the synchronous_commit a durability uses. */
export function floorRate(summaries: readonly PgSummary[], durability: Durability, conns = 1): number | undefined {
  const f = floorOf(summaries);
  return f ? (durability === 'full' ? f.on : f.off)[String(conns)] : undefined;
}

export interface Ratio {
  name: string;
  numerator: string;
  denominator: string;
  value: number | null;
}

/** Swarm against the floor and the peers, for every pair measured in this run. */
export function ratios(summaries: readonly PgSummary[]): Ratio[] {
  const out: Ratio[] = [];
  const add = (name: string, num: string, a: number | undefined, den: string, b: number | undefined): void => {
    const v = a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null;
    if (a !== undefined && b !== undefined) out.push({ name, numerator: num, denominator: den, value: v });
  };
  const swarmRows = summaries.filter((s) => s.median.system === 'swarm');
  for (const s of swarmRows) {
    const m = s.median;
    if (m.workload === 'linear') {
      const dbos = find<ThroughputResult>(summaries, `dbos/linear/${m.durability}/1w`);
      add('steps/s: Swarm ÷ DBOS', s.key, m.steps_per_s, `dbos/linear/${m.durability}/1w`, dbos?.steps_per_s);
      const gw = find<ThroughputResult>(summaries, `graphile/linear/${m.durability}/${m.workers}w`);
      add('steps/s: Swarm ÷ graphile-worker', s.key, m.steps_per_s, `graphile/linear/${m.durability}/${m.workers}w`, gw?.steps_per_s);
    }
    if (m.workload === 'latency') {
      for (const peer of ['dbos', 'graphile'] as const) {
        const p = find<LatencyResult>(summaries, `${peer}/latency/${m.durability}/1w`);
        add(`step→next p50: Swarm ÷ ${peer === 'dbos' ? 'DBOS' : 'graphile-worker'}`, s.key, m.p50_ms, `${peer}/latency/${m.durability}/1w`, p?.p50_ms);
      }
    }
  }
  return out;
}

/** A linear-backlog measurement ÷ the linear one of the same durability and worker count. */
export interface BacklogRatio {
  backlog: string;
  linear: string;
  durability: Durability;
  workers: number;
  backlog_runs: number;
  linear_runs: number;
  /** Median of the per-repetition ratios. */
  value: number;
  /** Backlog steps/s ÷ linear steps/s, repetition by repetition. */
  per_repetition: number[];
}

/**
 * Backlog ÷ linear steps/s at the same durability and worker count, per repetition (the two are
 * measured back to back, so load on the machine slows both), then the median of those ratios.
 */
export function backlogRatios(summaries: readonly PgSummary[], reps: ReadonlyMap<string, readonly PgResult[]>): BacklogRatio[] {
  const out: BacklogRatio[] = [];
  for (const s of summaries) {
    const m = s.median;
    if (m.system !== 'swarm' || m.workload !== 'linear-backlog') continue;
    const linearKey = `swarm/linear/${m.durability}/${m.workers}w`;
    const backlog = reps.get(s.key) ?? [];
    const linear = reps.get(linearKey) ?? [];
    const n = Math.min(backlog.length, linear.length);
    if (n === 0) continue;
    const perRep = Array.from({ length: n }, (_, i) => (backlog[i] as ThroughputResult).steps_per_s / (linear[i] as ThroughputResult).steps_per_s);
    out.push({
      backlog: s.key,
      linear: linearKey,
      durability: m.durability,
      workers: m.workers,
      backlog_runs: m.runs,
      linear_runs: (linear[0] as ThroughputResult).runs,
      value: median(perRep),
      per_repetition: perRep,
    });
  }
  return out;
}

export const BACKLOG_GOAL = 0.9;

export interface PgTarget {
  name: string;
  job: string;
  op: '>=' | '<=';
  goal: number;
  unit: string;
  value: number | null;
  met: boolean | null;
}

/**
 * The targets: ≥ 3,000 no-op steps/s with 4 worker processes at `full`, idle step → next step p50 ≤
 * 5 ms, ≥ 2× DBOS's steps/s on the same workload (Swarm with 1 worker process, like for like, and
 * with 4), and a backlog's steps/s ≥ 0.9× linear's (same durability and worker processes).
 */
export function pgTargets(summaries: readonly PgSummary[], backlog: readonly BacklogRatio[] = []): PgTarget[] {
  const out: PgTarget[] = [];
  const add = (name: string, job: string, op: PgTarget['op'], goal: number, unit: string, value: number | undefined): void => {
    if (value === undefined) return;
    const ok = Number.isFinite(value) ? (op === '>=' ? value >= goal : value <= goal) : null;
    out.push({ name, job, op, goal, unit, value: Number.isFinite(value) ? value : null, met: ok });
  };
  for (const w of ['linear', 'fanout'] as const) {
    const key = `swarm/${w}/full/4w`;
    add(`full, 4 worker processes, ${w === 'fanout' ? 'fan-out' : 'linear'}: no-op steps/s`, key, '>=', 3000, 'steps/s', find<ThroughputResult>(summaries, key)?.steps_per_s);
  }
  for (const s of summaries) {
    const m = s.median;
    if (m.system === 'swarm' && m.workload === 'latency' && m.durability === 'full') add(`full, ${m.workers} worker process(es): step→next p50`, s.key, '<=', 5, 'ms', m.p50_ms);
  }
  for (const n of [1, 4]) {
    for (const d of ['full', 'process'] as const) {
      const swarm = find<ThroughputResult>(summaries, `swarm/linear/${d}/${n}w`);
      const dbos = find<ThroughputResult>(summaries, `dbos/linear/${d}/1w`);
      if (swarm && dbos) add(`${d}, linear: Swarm (${n} worker process${n > 1 ? 'es' : ''}) ÷ DBOS steps/s`, `swarm/linear/${d}/${n}w`, '>=', 2, '×', swarm.steps_per_s / dbos.steps_per_s);
    }
  }
  for (const b of backlog) {
    const procs = `${b.workers} worker process${b.workers > 1 ? 'es' : ''}`;
    add(`${b.durability}, ${procs}: backlog of ${int(b.backlog_runs)} runs ÷ ${int(b.linear_runs)}-run linear, steps/s`, b.backlog, '>=', BACKLOG_GOAL, '×', b.value);
  }
  return out;
}

// ---------------------------------------------------------------- printing

const int = (n: number | null | undefined): string => (n === null || n === undefined || !Number.isFinite(n) ? '-' : Math.round(n).toLocaleString('en-US'));
const fix = (n: number | null | undefined, d = 2): string => (n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(d));
const NAMES: Record<string, string> = { swarm: 'Swarm', dbos: 'DBOS', graphile: 'graphile-worker', floor: 'floor' };

export function floorTable(summaries: readonly PgSummary[]): string | undefined {
  const f = floorOf(summaries);
  if (!f) return undefined;
  const reps = String(summaries.find((s) => s.key === 'floor')?.reps ?? '');
  const rows = Object.keys(f.on).map((c) => [`pg INSERT autocommit, ${c} connection${c === '1' ? '' : 's'}`, `${int(f.on[c])} commits/s`, `${int(f.off[c])} commits/s`, reps]);
  return table(['floor (no Swarm)', 'synchronous_commit=on (full)', 'off (process)', 'reps'], rows, 1);
}

export function throughputTable(summaries: readonly PgSummary[]): string | undefined {
  const rows: string[][] = [];
  for (const s of summaries) {
    const m = s.median;
    if (m.workload !== 'linear' && m.workload !== 'linear-backlog' && m.workload !== 'fanout') continue;
    const f = floorRate(summaries, m.durability);
    const what =
      m.workload === 'linear' ? `linear ${m.runs}×10, ${m.in_flight} in flight` : m.workload === 'linear-backlog' ? `linear backlog: ${m.runs}×10 queued first` : `fan-out 1→${m.steps - 2}→1`;
    rows.push([
      NAMES[m.system] ?? m.system,
      what,
      m.durability,
      String(m.workers),
      `${int(m.steps_per_s)}`,
      fix(f ? m.steps_per_s / f : undefined, 2),
      fix(m.run_p50_ms, 1),
      fix(m.run_p99_ms, 1),
      int(m.wall_ms),
      fix(m.write_xacts / m.steps, 2),
      int(m.wal_bytes / m.steps),
      `${fix(m.machine_busy_pct, 0)}%`,
      `${fix((100 * m.workers_cpu_ms) / m.wall_ms, 0)}%`,
      // CPU time per step: the step-executing processes / the process starting runs / the server.
      [m.workers_cpu_ms, m.system === 'dbos' ? Number.NaN : m.driver_cpu_ms, m.server_cpu_ms].map((ms) => (Number.isFinite(ms) ? int((1000 * ms) / m.steps) : '-')).join(' / '),
      String(s.reps),
    ]);
  }
  if (rows.length === 0) return undefined;
  return table(['system', 'workload', 'durability', 'procs', 'steps/s', '÷floor', 'run p50 ms', 'run p99 ms', 'wall ms', 'write xacts/step', 'WAL B/step', 'machine CPU', 'worker CPU', 'CPU µs/step w/d/s', 'reps'], rows, 2);
}

export function latencyTable(summaries: readonly PgSummary[]): string | undefined {
  const rows: string[][] = [];
  for (const s of summaries) {
    const m = s.median;
    if (m.workload !== 'latency') continue;
    rows.push([NAMES[m.system] ?? m.system, m.durability, String(m.workers), String(m.samples), fix(m.p50_ms, 3), fix(m.p90_ms, 3), fix(m.p99_ms, 3), fix(m.max_ms, 1), fix(m.start_p50_ms, 2), fix(m.start_max_ms, 1), String(s.reps)]);
  }
  if (rows.length === 0) return undefined;
  return table(['system (step→next)', 'durability', 'procs', 'samples', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'start p50 ms', 'start max ms', 'reps'], rows, 1);
}

export function ratioTable(rs: readonly Ratio[]): string | undefined {
  if (rs.length === 0) return undefined;
  return table(['ratio', 'Swarm', 'against', 'value'], rs.map((r) => [r.name, r.numerator, r.denominator, r.value === null ? '-' : `${fix(r.value, 2)}×`]), 3);
}

export function pgTargetsTable(targets: readonly PgTarget[]): string {
  const rows = targets.map((t) => [
    t.name,
    `${t.op === '>=' ? '≥' : '≤'} ${t.unit === '×' ? `${t.goal}×` : `${int(t.goal)} ${t.unit}`}`,
    t.unit === 'ms' ? `${fix(t.value, 3)} ms` : t.unit === '×' ? `${fix(t.value, 2)}×` : `${int(t.value)} ${t.unit}`,
    t.met === null ? '?' : t.met ? 'met' : 'MISSED',
  ]);
  return table(['target', 'goal', 'median', ''], rows, 1);
}

export function statementsReport(summaries: readonly PgSummary[]): string | undefined {
  const out: string[] = [];
  for (const s of summaries) {
    const m = s.median;
    if (m.workload !== 'linear' && m.workload !== 'linear-backlog' && m.workload !== 'fanout') continue;
    if (!m.statements?.length) continue;
    if (m.waits) {
      const w = Object.entries(m.waits).slice(0, 8).map(([k, n]) => `${k} ${n.toFixed(2)}`);
      out.push(`\n${s.key} (first repetition): busy sessions per sample, by state/wait: ${w.join(', ')}`);
    }
    out.push(`\n${s.key} (first repetition): calls, total ms, mean ms, calls/step, statement`);
    for (const st of m.statements.slice(0, 15)) {
      out.push(`  ${String(st.calls).padStart(7)}  ${st.total_ms.toFixed(1).padStart(8)}  ${st.mean_ms.toFixed(3).padStart(7)}  ${(st.calls / m.steps).toFixed(2).padStart(6)}  ${st.query.slice(0, 140)}`);
    }
  }
  return out.length ? out.join('\n') : undefined;
}

/** `--trace`: round trips of Swarm's worker processes per step and per transaction, and where the wall time went. */
export function pgTraceTable(summaries: readonly PgSummary[]): string | undefined {
  const rows: string[][] = [];
  const detail: string[] = [];
  for (const s of summaries) {
    const m = s.median;
    if ((m.workload !== 'linear' && m.workload !== 'linear-backlog' && m.workload !== 'fanout') || !m.trace) continue;
    const t = m.trace;
    const workerWall = m.wall_ms * m.workers;
    rows.push([
      s.key,
      int(t.begins),
      fix(m.steps / t.begins, 1),
      fix(t.queries / m.steps, 1),
      fix(t.queries / t.begins, 1),
      fix(t.query_ms / t.queries, 3),
      fix(t.commit_ms / t.commits, 3),
      `${fix((100 * t.query_ms) / workerWall, 0)}%`,
      `${fix((100 * t.commit_ms) / workerWall, 0)}%`,
    ]);
    detail.push(`\n${s.key}: statements by time (calls, total ms, mean ms, calls/step)`);
    for (const st of t.statements.slice(0, 12)) {
      detail.push(`  ${String(st.calls).padStart(7)}  ${st.ms.toFixed(1).padStart(8)}  ${(st.ms / st.calls).toFixed(3).padStart(7)}  ${(st.calls / m.steps).toFixed(2).padStart(6)}  ${st.sql.slice(0, 110)}`);
    }
  }
  if (rows.length === 0) return undefined;
  return (
    table(['traced job', 'transactions', 'steps/txn', 'queries/step', 'queries/txn', 'ms/query', 'ms/COMMIT', 'waiting on queries (% of worker wall)', 'in COMMIT'], rows, 1) +
    '\n' +
    detail.join('\n')
  );
}
