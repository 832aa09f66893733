/**
 * Medians over repetitions, the targets, and the printed tables.
 */
import type { Durability } from '../src/index.js';
import { median } from './harness.js';
import type { TraceReport } from './sql-trace.js';
import type { FanoutResult, FloorResult, Job, LatencyResult, LinearResult, WorkloadResult } from './workloads.js';

/** A stable name for a job's configuration, e.g. `linear/full/w2`. */
export function jobKey(job: Pick<Job, 'workload' | 'durability' | 'commitWindowMs' | 'variant'>): string {
  const parts: string[] = [job.workload + (job.variant ? `-${job.variant}` : '')];
  if (job.durability) parts.push(job.durability);
  if (job.commitWindowMs !== undefined) parts.push(`w${job.commitWindowMs}`);
  return parts.join('/');
}

/** Field-wise median of numeric fields over repetitions of one job; other fields from the first. */
export function medianOf<T extends WorkloadResult>(reps: readonly T[]): T {
  const first = reps[0];
  if (!first) throw new Error('no repetitions');
  const out: Record<string, unknown> = { ...first };
  for (const [k, v] of Object.entries(first)) {
    if (typeof v === 'number') out[k] = median(reps.map((r) => (r as unknown as Record<string, number>)[k] ?? Number.NaN));
  }
  return out as T;
}

export interface Target {
  name: string;
  job: string;
  metric: string;
  op: '>=' | '<=';
  goal: number;
  unit: string;
  value: number | null;
  met: boolean | null;
}

export interface Summary {
  key: string;
  job: Job;
  reps: number;
  median: WorkloadResult;
  /** Steps/s ÷ the floor's commits/s at the matching synchronous level. */
  floor_ratio?: number;
}

function floorFor(summaries: readonly Summary[], durability: Durability | undefined): number | undefined {
  const f = summaries.find((s) => s.median.workload === 'floor')?.median as FloorResult | undefined;
  if (!f) return undefined;
  return durability === 'process' ? f.normal_commits_per_s : f.full_commits_per_s;
}

export function addFloorRatios(summaries: Summary[]): void {
  for (const s of summaries) {
    const m = s.median;
    if (m.workload !== 'linear' && m.workload !== 'fanout') continue;
    const f = floorFor(summaries, m.durability);
    if (f) s.floor_ratio = m.steps_per_s / f;
  }
}

const STEP_GOAL: Record<Durability, number> = { full: 5000, process: 15000 };

/**
 * Backlog ÷ 200-run linear throughput at the same durability, per repetition (the two are measured
 * back to back, so a busy machine slows both), then the median of those ratios.
 */
export function backlogRatio(reps: ReadonlyMap<string, readonly WorkloadResult[]>, durability: Durability, base: 'linear' | 'linear-precreated' = 'linear'): number | undefined {
  const backlog = reps.get(`linear-backlog/${durability}/w0`) ?? [];
  const linear = reps.get(`${base}/${durability}/w0`) ?? [];
  const n = Math.min(backlog.length, linear.length);
  if (n === 0) return undefined;
  const ratios = Array.from({ length: n }, (_, i) => (backlog[i] as LinearResult).steps_per_s / (linear[i] as LinearResult).steps_per_s);
  return median(ratios);
}

export const BACKLOG_GOAL = 0.9;

export function evaluateTargets(summaries: readonly Summary[], reps?: ReadonlyMap<string, readonly WorkloadResult[]>): Target[] {
  const out: Target[] = [];
  const add = (name: string, s: Summary, metric: string, op: Target['op'], goal: number, unit: string, value: number): void => {
    const ok = Number.isFinite(value) ? (op === '>=' ? value >= goal : value <= goal) : null;
    out.push({ name, job: s.key, metric, op, goal, unit, value: Number.isFinite(value) ? value : null, met: ok });
  };
  for (const s of summaries) {
    const m = s.median;
    if ((m.workload === 'linear' && !m.variant) || m.workload === 'fanout') {
      const what = m.workload === 'fanout' ? 'fan-out' : m.commit_window_ms ? `linear, window ${m.commit_window_ms} ms` : 'linear';
      add(`${m.durability} no-op steps/s, ${what}`, s, 'steps_per_s', '>=', STEP_GOAL[m.durability], 'steps/s', m.steps_per_s);
    }
    if (m.workload === 'linear' && m.variant === 'backlog' && reps) {
      const r = backlogRatio(reps, m.durability);
      if (r !== undefined) add(`${m.durability} backlog of ${m.runs} runs ÷ 200-run linear, steps/s`, s, 'backlog_ratio', '>=', BACKLOG_GOAL, '×', r);
    }
    if (m.workload === 'latency') add(`step→next p50, ${m.durability}`, s, 'p50_ms', '<=', 1, 'ms', m.p50_ms);
    if (m.workload === 'fanout') add(`fan-out peak RSS, ${m.durability}`, s, 'rss_peak_mb', '<=', 300, 'MB', m.rss_peak_mb);
  }
  return out;
}

// ---------------------------------------------------------------- printing

const int = (n: number | null | undefined): string => (n === null || n === undefined || !Number.isFinite(n) ? '-' : Math.round(n).toLocaleString('en-US'));
const fix = (n: number | null | undefined, d = 2): string => (n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(d));

export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>, rightAlignFrom = 1): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i >= rightAlignFrom ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** CPU time of the process ÷ wall time of the phase: ~100% means one core kept busy (CPU-bound). */
const util = (m: { cpu_user_ms: number; cpu_sys_ms: number }, wallMs: number): string => `${fix((100 * (m.cpu_user_ms + m.cpu_sys_ms)) / wallMs, 0)}%`;

export function resultsTable(summaries: readonly Summary[]): string {
  const rows: string[][] = [];
  for (const s of summaries) {
    const m = s.median;
    const reps = String(s.reps);
    if (m.workload === 'floor') {
      const f: FloorResult = m;
      rows.push([`floor (sqlite INSERT, WAL, sync=FULL)`, 'full', '-', `${int(f.full_commits_per_s)} commits/s`, '-', '-', '-', '-', '-', '-', reps]);
      rows.push([`floor (sqlite INSERT, WAL, sync=NORMAL)`, 'process', '-', `${int(f.normal_commits_per_s)} commits/s`, '-', '-', '-', '-', '-', '-', reps]);
    } else if (m.workload === 'linear') {
      const l: LinearResult = m;
      const label =
        l.variant === 'precreated' ? `linear, runs pre-created (diagnostic)` : l.variant === 'backlog' ? `linear backlog: ${l.runs}×10 queued first` : `linear ${l.runs}×10 noop, ${l.in_flight} in flight`;
      rows.push([label, l.durability, String(l.commit_window_ms), `${int(l.steps_per_s)} steps/s`, fix(s.floor_ratio, 3), fix(l.run_p50_ms, 1), fix(l.run_p99_ms, 1), int(l.wall_ms), '-', util(l, l.wall_ms), reps]);
    } else if (m.workload === 'fanout') {
      const f: FanoutResult = m;
      rows.push([`fan-out 1→${f.width}→1 noop`, f.durability, '0', `${int(f.steps_per_s)} steps/s`, fix(s.floor_ratio, 3), '-', '-', int(f.makespan_ms), fix(f.rss_peak_mb, 0), util(f, f.makespan_ms), reps]);
    } else {
      const l: LatencyResult = m;
      rows.push([`latency step→next (${l.samples} samples)`, l.durability, '0', `p90 ${fix(l.p90_ms, 3)} ms`, '-', fix(l.p50_ms, 3), fix(l.p99_ms, 3), '-', '-', '-', reps]);
      rows.push([`  run start on idle worker (poll ${l.poll_ms} ms)`, l.durability, '0', `max ${fix(l.start_max_ms, 1)} ms`, '-', fix(l.start_p50_ms, 1), '-', '-', '-', '-', reps]);
    }
  }
  return table(['workload', 'durability', 'window ms', 'throughput', '÷floor', 'p50 ms', 'p99 ms', 'wall/makespan ms', 'peak RSS MB', 'CPU/wall', 'reps'], rows, 2);
}

export function targetsTable(targets: readonly Target[]): string {
  const rows = targets.map((t) => [
    t.name,
    `${t.op === '>=' ? '≥' : '≤'} ${t.unit === '×' ? fix(t.goal, 2) : int(t.goal)} ${t.unit}`,
    t.unit === 'ms' ? `${fix(t.value, 3)} ms` : t.unit === '×' ? `${fix(t.value, 2)}×` : `${t.unit === 'MB' ? fix(t.value, 0) : int(t.value)} ${t.unit}`,
    t.met === null ? '?' : t.met ? 'met' : 'MISSED',
  ]);
  return table(['target', 'goal', 'median', ''], rows, 1);
}

export function traceTable(summaries: readonly Summary[]): string | undefined {
  const rows: string[][] = [];
  const detail: string[] = [];
  for (const s of summaries) {
    const m = s.median as WorkloadResult & { trace?: TraceReport };
    if (!m.trace) continue;
    const steps = m.workload === 'latency' ? m.runs * m.chain_length : m.workload === 'floor' ? 0 : m.steps;
    const wall = m.workload === 'linear' ? m.wall_ms : m.workload === 'fanout' ? m.makespan_ms : Number.NaN;
    const t = m.trace;
    rows.push([
      s.key,
      int(t.commits),
      fix(steps / t.commits, 1),
      fix(t.total_calls / steps, 1),
      fix(t.commit_ms, 0),
      fix(t.commit_ms / t.commits, 3),
      fix(t.commit_max_ms, 1),
      fix(t.wal_frames / t.commits, 1),
      fix(t.wal_frames / steps, 1),
      int(t.wal_restarts),
      fix(t.total_ms - t.commit_ms, 0),
      fix(wall, 0),
      Number.isFinite(wall) ? `${fix((100 * t.commit_ms) / wall, 0)}% / ${fix((100 * (t.total_ms - t.commit_ms)) / wall, 0)}%` : '-',
    ]);
    detail.push(`\n${s.key}: top statements by time (calls, total ms, max ms, calls/step)`);
    for (const st of t.statements.slice(0, 14)) {
      detail.push(`  ${String(st.calls).padStart(7)}  ${st.ms.toFixed(1).padStart(8)}  ${st.max_ms.toFixed(2).padStart(7)}  ${(st.calls / steps).toFixed(2).padStart(6)}  ${st.sql.slice(0, 100)}`);
    }
  }
  if (rows.length === 0) return undefined;
  return (
    table(['traced job (first rep)', 'commits', 'steps/commit', 'stmts/step', 'COMMIT ms', 'ms/COMMIT', 'max COMMIT ms', 'WAL pages/commit', 'WAL pages/step', 'checkpoints', 'other SQL ms', 'wall ms', 'COMMIT / other SQL % of wall'], rows, 1) +
    '\n' +
    detail.join('\n')
  );
}
