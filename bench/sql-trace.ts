/**
 * `--trace`: count and time every SQLite call the engine makes, without touching src/. better-sqlite3
 * is synchronous, so the time spent inside a call is time the event loop is blocked in SQLite (for
 * COMMIT at synchronous=FULL that is mostly the WAL fsync). Wrapping costs ~0.2 µs per call; traced
 * runs are reported separately from the timed ones.
 */
import Database from 'better-sqlite3';
import { existsSync, openSync, readSync } from 'node:fs';

export interface SqlStat {
  sql: string;
  calls: number;
  ms: number;
  /** The slowest single call. */
  max_ms: number;
}

export interface TraceReport {
  /** Every distinct statement (whitespace collapsed), most time first. */
  statements: SqlStat[];
  total_calls: number;
  total_ms: number;
  /** COMMIT executions and the time inside them (the fsync at `full`). */
  commits: number;
  commit_ms: number;
  commit_max_ms: number;
  begins: number;
  /** WAL frames (pages) appended by the traced COMMITs: the write volume behind each commit. */
  wal_frames: number;
  /** COMMITs after which the WAL had restarted, i.e. an automatic checkpoint ran in between. */
  wal_restarts: number;
}

const stats = new Map<string, SqlStat>();
let installed = false;
let walFrames = 0;
let walRestarts = 0;

/**
 * Frames currently in a database's WAL: `mxFrame` of the wal-index header (bytes 16–19 of the -shm
 * file, native byte order), read without going through SQLite. Undefined when there is no -shm file.
 */
const shmFds = new Map<string, number>();
function walFrameCount(dbFile: string): number | undefined {
  let fd = shmFds.get(dbFile);
  if (fd === undefined) {
    if (!existsSync(`${dbFile}-shm`)) return undefined;
    fd = openSync(`${dbFile}-shm`, 'r');
    shmFds.set(dbFile, fd);
  }
  const buf = Buffer.alloc(4);
  readSync(fd, buf, 0, 4, 16);
  return buf.readUInt32LE(0);
}

function record(sql: string, ns: bigint): void {
  let s = stats.get(sql);
  if (!s) {
    s = { sql, calls: 0, ms: 0, max_ms: 0 };
    stats.set(sql, s);
  }
  const ms = Number(ns) / 1e6;
  s.calls++;
  s.ms += ms;
  if (ms > s.max_ms) s.max_ms = ms;
}

const norm = (sql: string): string => sql.replace(/\s+/g, ' ').trim();

type Fn = (this: unknown, ...args: unknown[]) => unknown;

function wrap(proto: Record<string, unknown>, method: string, label: (self: unknown, args: unknown[]) => string): void {
  const original = proto[method] as Fn;
  proto[method] = function (this: unknown, ...args: unknown[]): unknown {
    const t0 = process.hrtime.bigint();
    try {
      return original.apply(this, args);
    } finally {
      record(label(this, args), process.hrtime.bigint() - t0);
    }
  };
}

/** Patch better-sqlite3's prototypes (once per process) so every statement is counted and timed. */
export function installSqlTrace(): void {
  if (installed) return;
  installed = true;
  const probe = new Database(':memory:');
  const stmtProto = Object.getPrototypeOf(probe.prepare('SELECT 1')) as Record<string, unknown>;
  probe.close();
  const dbProto = Database.prototype as unknown as Record<string, unknown>;
  const source = (self: unknown): string => norm((self as { source: string }).source);
  for (const m of ['run', 'get', 'all']) wrap(stmtProto, m, source);
  // db.pragma() is JavaScript that prepares and runs a statement, so the statement wrappers see it.
  wrap(dbProto, 'exec', (_self, args) => norm(String(args[0])));
  // Count the WAL frames each COMMIT appends (wraps the timing wrapper, so it is not timed itself).
  const timedExec = dbProto.exec as Fn;
  dbProto.exec = function (this: unknown, ...args: unknown[]): unknown {
    const name = (this as { name?: string }).name;
    const isCommit = typeof args[0] === 'string' && args[0].trim().toUpperCase() === 'COMMIT' && name !== undefined && name !== ':memory:';
    const before = isCommit ? walFrameCount(name) : undefined;
    const out = timedExec.apply(this, args);
    if (isCommit && before !== undefined) {
      const after = walFrameCount(name) ?? before;
      if (after >= before) walFrames += after - before;
      else {
        walFrames += after;
        walRestarts++;
      }
    }
    return out;
  };
}

/** Forget everything counted so far (call at the start of the measured phase). */
export function resetSqlTrace(): void {
  stats.clear();
  walFrames = 0;
  walRestarts = 0;
}

export function sqlTraceReport(): TraceReport {
  const statements = [...stats.values()].sort((a, b) => b.ms - a.ms);
  const commit = stats.get('COMMIT');
  return {
    statements,
    total_calls: statements.reduce((n, s) => n + s.calls, 0),
    total_ms: statements.reduce((n, s) => n + s.ms, 0),
    commits: commit?.calls ?? 0,
    commit_ms: commit?.ms ?? 0,
    commit_max_ms: commit?.max_ms ?? 0,
    begins: stats.get('BEGIN IMMEDIATE')?.calls ?? 0,
    wal_frames: walFrames,
    wal_restarts: walRestarts,
  };
}
