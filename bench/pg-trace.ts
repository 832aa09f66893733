/**
 * `--trace` of the PostgreSQL bench: count and time every query a worker process sends through pg,
 * without touching src/. A pg query is a round trip: the time from `client.query()` to its result is
 * the server's work plus the network and scheduling between the processes; for COMMIT at `full` it
 * includes the WAL flush. Installed in the worker processes only; traced numbers are reported
 * separately from the timed ones.
 */
import pg from 'pg';

export interface PgQueryStat {
  sql: string;
  calls: number;
  ms: number;
}

export interface PgTraceReport {
  queries: number;
  query_ms: number;
  /** Transactions begun (BEGIN …) and the COMMITs, with the time waiting for them. */
  begins: number;
  commits: number;
  commit_ms: number;
  /** Every distinct statement text (whitespace collapsed, first 140 characters), most time first. */
  statements: PgQueryStat[];
}

const stats = new Map<string, PgQueryStat>();
let installed = false;

function textOf(arg: unknown): string {
  if (typeof arg === 'string') return arg;
  if (arg && typeof arg === 'object' && 'text' in arg && typeof arg.text === 'string') return arg.text;
  return '?';
}

function record(sql: string, ms: number): void {
  let s = stats.get(sql);
  if (!s) {
    s = { sql, calls: 0, ms: 0 };
    stats.set(sql, s);
  }
  s.calls++;
  s.ms += ms;
}

/** Wrap `pg.Client.prototype.query` (promise form, which is all Swarm uses). */
export function installPgTrace(): void {
  if (installed) return;
  installed = true;
  type QueryFn = (this: pg.Client, ...args: unknown[]) => unknown;
  const proto = pg.Client.prototype as unknown as { query: QueryFn };
  const original = proto.query;
  proto.query = function (this: pg.Client, ...args: unknown[]): unknown {
    const result = original.apply(this, args);
    if (result && typeof (result as Promise<unknown>).then === 'function' && typeof args[args.length - 1] !== 'function') {
      const t0 = process.hrtime.bigint();
      const sql = textOf(args[0]).replace(/\s+/g, ' ').trim().slice(0, 140);
      const done = (): void => record(sql, Number(process.hrtime.bigint() - t0) / 1e6);
      (result as Promise<unknown>).then(done, done);
    }
    return result;
  };
}

export function resetPgTrace(): void {
  stats.clear();
}

export function pgTraceReport(): PgTraceReport {
  const all = [...stats.values()].sort((a, b) => b.ms - a.ms);
  const sum = (f: (s: PgQueryStat) => boolean, k: 'calls' | 'ms'): number => all.filter(f).reduce((a, s) => a + s[k], 0);
  const isBegin = (s: PgQueryStat): boolean => s.sql.startsWith('BEGIN');
  const isCommit = (s: PgQueryStat): boolean => /(^|; )COMMIT$/.test(s.sql);
  return {
    queries: sum(() => true, 'calls'),
    query_ms: sum(() => true, 'ms'),
    begins: sum(isBegin, 'calls'),
    commits: sum(isCommit, 'calls'),
    commit_ms: sum(isCommit, 'ms'),
    statements: all.slice(0, 25),
  };
}

/** Several worker processes' reports as one (sums; statements merged by text). */
export function mergePgTraces(reports: readonly PgTraceReport[]): PgTraceReport {
  const merged = new Map<string, PgQueryStat>();
  for (const r of reports) {
    for (const s of r.statements) {
      const m = merged.get(s.sql) ?? { sql: s.sql, calls: 0, ms: 0 };
      m.calls += s.calls;
      m.ms += s.ms;
      merged.set(s.sql, m);
    }
  }
  const total = (k: 'queries' | 'query_ms' | 'begins' | 'commits' | 'commit_ms'): number => reports.reduce((a, r) => a + r[k], 0);
  return {
    queries: total('queries'),
    query_ms: total('query_ms'),
    begins: total('begins'),
    commits: total('commits'),
    commit_ms: total('commit_ms'),
    statements: [...merged.values()].sort((a, b) => b.ms - a.ms).slice(0, 25),
  };
}
