/**
 * Disk and permission faults through the real CLI: SWARM_HOME on a small tmpfs that fills up during a
 * run, then is read-only, and a store this user may not write. Each gives one line naming the path
 * and the cause, exit 4, quickly; after space is freed `runs resume` finishes the run, which then
 * verifies, in a database that passes `PRAGMA integrity_check`. (Tests run as root: they mount.)
 */
import Database from 'better-sqlite3';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli.js';

const STEPS = 12;
/** Each step's output; 12 of them do not fit in the tmpfs. */
const OUTPUT_BYTES = 500_000;
const TMPFS_SIZE = '4m';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  /** When the last line before the error was printed → exit, in ms. */
  quietMs: number;
  ms: number;
}

let root: string;
let home: string;
let project: string;
let effects: string;

/** Run the CLI in the project with SWARM_HOME on the tmpfs; noting when stderr last moved before the end. */
function swarm(args: string[], options: { timeoutMs?: number; asUser?: number; home?: string } = {}): Promise<Result> {
  // Leases of two minutes: a worker that stops on a fault must hand its steps back itself (or be
  // reaped as dead), or the next command would wait for the lease to expire.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', SWARM_HOME: options.home ?? home, EFFECTS_DIR: effects, SWARM_LEASE_TTL_MS: '120000' };
  const bin = join(REPO_ROOT, 'bin', 'swarm.js');
  const [cmd, argv] = options.asUser === undefined ? [process.execPath, [bin, ...args]] : ['setpriv', [`--reuid=${options.asUser}`, `--regid=${options.asUser}`, '--clear-groups', process.execPath, bin, ...args]];
  const began = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let lastProgressAt = began;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (!d.includes("swarm: ")) lastProgressAt = Date.now();
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const end = Date.now();
      resolve({ code, stdout, stderr, quietMs: end - lastProgressAt, ms: end - began });
    });
  });
}

const show = (r: Result): string => `exit ${String(r.code)} after ${r.ms} ms\n--- stdout\n${r.stdout.slice(0, 2000)}\n--- stderr\n${r.stderr.slice(-3000)}`;

/** How many times each step's agent ran (files outside the tmpfs). */
function executions(): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of readdirSync(effects)) out.set(f.split('-').pop() as string, readFileSync(join(effects, f), 'utf8').length);
  return out;
}

function sql<T>(query: string): T[] {
  const db = new Database(join(home, 'swarm.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare(query).all() as T[];
  } finally {
    db.close();
  }
}

function mount(...args: string[]): void {
  execFileSync('mount', args, { stdio: 'pipe' });
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'swarm-disk-faults-'));
  home = join(root, 'home');
  project = join(root, 'project');
  effects = join(root, 'effects');
  for (const d of [home, effects, join(project, 'agents', 'big'), join(project, 'workflows', 'big-chain')]) mkdirSync(d, { recursive: true });
  mount('-t', 'tmpfs', '-o', `size=${TMPFS_SIZE}`, 'tmpfs', home);
  // The agents write marker files into the test's own directory, which a sandbox would hide.
  writeFileSync(join(project, 'swarm.yaml'), 'name: disk-faults\nsandbox: none\n');
  writeFileSync(
    join(project, 'agents', 'big', 'agent.yaml'),
    'name: big\nversion: 1.0.0\nruntime: { type: node, entry: main.js }\ninputs: [{ name: n, type: integer }]\noutputs: [{ name: blob, type: string }]\n',
  );
  writeFileSync(join(project, 'agents', 'big', 'package.json'), '{"type":"commonjs"}');
  writeFileSync(
    join(project, 'agents', 'big', 'main.js'),
    `const fs = require('fs');
const [, , inFile, outFile] = process.argv;
const { n } = JSON.parse(fs.readFileSync(inFile, 'utf8'));
fs.appendFileSync(require('path').join(${JSON.stringify(effects)}, process.env.SWARM_RUN_ID + '-' + process.env.SWARM_STEP_ID), 'x');
fs.writeFileSync(outFile, JSON.stringify({ blob: 'x'.repeat(${OUTPUT_BYTES}) + n }));
`,
  );
  const steps = Array.from({ length: STEPS }, (_, i) => `  - id: s${i + 1}\n    agent: big@1.0.0\n    inputs: { n: ${i + 1} }\n${i ? `    depends_on: [s${i}]\n` : ''}`).join('');
  writeFileSync(join(project, 'workflows', 'big-chain', 'workflow.yaml'), `name: big-chain\nversion: 1.0.0\nsteps:\n${steps}`);
  for (const args of [['agent', 'register', 'agents/big'], ['workflow', 'register', 'workflows/big-chain']]) {
    const r = await swarm(args);
    if (r.code !== 0) throw new Error(show(r));
  }
}, 60_000);

afterAll(() => {
  if (home && existsSync(home)) {
    try {
      execFileSync('umount', [home], { stdio: 'pipe' });
    } catch {
      // Not mounted (beforeAll failed before mounting).
    }
  }
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('disk and permission faults', () => {
  let runId: string;
  let completedBefore = new Set<string>();

  async function completedSteps(): Promise<Set<string>> {
    const r = await swarm(['runs', 'show', runId, '--json'], { timeoutMs: 20_000 });
    expect(r.code, show(r)).toBe(0);
    return new Set((JSON.parse(r.stdout) as { steps: Array<{ id: string; status: string }> }).steps.filter((s) => s.status === 'completed').map((s) => s.id));
  }

  it('a disk that fills up during a run: one line naming the database and the cause, exit 4, at once', async () => {
    const r = await swarm(['run', 'big-chain', '{}']);
    expect(r.code, show(r)).toBe(4);
    const line = r.stderr.trim().split('\n').pop() ?? '';
    // The commit of a step's output (SQLITE_FULL) or the next step's work directory (ENOSPC) meets the full disk.
    expect(line, show(r)).toMatch(/^swarm: the (database \S+swarm\.db|work directory \S+): disk full \((SQLITE_FULL|ENOSPC)[^)]*\) while \w+.*; free space and run 'swarm runs resume ([0-9a-f-]{36})'$/);
    expect(r.stderr).not.toMatch(/unexpected error/);
    // "Does not hang": it stops soon after the last step it started (not after retrying for a minute).
    expect(r.quietMs, show(r)).toBeLessThan(5_000);
    runId = /runs resume ([0-9a-f-]{36})/.exec(line)?.[1] as string;
    // Through the CLI: a read-only connection opened on a full disk can make SQLite's next writer
    // spin in its WAL read retries (SQLITE_PROTOCOL) for seconds; a user reads with swarm anyway.
    completedBefore = await completedSteps();
    expect(completedBefore.size).toBeGreaterThan(0);
    expect(completedBefore.size).toBeLessThan(STEPS);
  }, 90_000);

  it('resuming while the disk is still full fails the same way, without hanging', async () => {
    const r = await swarm(['runs', 'resume', runId]);
    expect(r.code, show(r)).toBe(4);
    expect(r.stderr, show(r)).toMatch(/^swarm: the (database|work directory|directory) \S+: disk full \((SQLITE_FULL|ENOSPC)[^)]*\) while /m);
    expect(r.stderr).not.toMatch(/unexpected error/);
    // "Does not hang": the step the faulted worker held was handed back, so this worker takes it at
    // once (not when its two-minute lease expires) and meets the full disk again.
    expect(r.ms, show(r)).toBeLessThan(20_000);
  }, 60_000);

  it('after space is freed, `runs resume` completes the run: every step completed once, the chain verifies, the file is intact', async () => {
    mount('-o', 'remount,size=64m', home);
    const r = await swarm(['runs', 'resume', runId, '--json']);
    expect(r.ms, show(r)).toBeLessThan(20_000);
    expect(r.code, show(r)).toBe(0);
    const doc = JSON.parse(r.stdout) as { status: string; steps: Array<{ id: string; status: string }> };
    expect(doc.status).toBe('completed');
    expect(doc.steps.map((s) => s.status)).toEqual(Array.from({ length: STEPS }, () => 'completed'));
    const verify = await swarm(['runs', 'verify', runId]);
    expect(verify.code, show(verify)).toBe(0);
    expect(sql<{ integrity_check: string }>('PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
    const completions = sql<{ step_id: string; n: number }>(`SELECT step_id, COUNT(*) AS n FROM events WHERE run_id = '${runId}' AND type = 'STEP_COMPLETED' GROUP BY step_id`);
    expect(completions).toHaveLength(STEPS);
    expect(completions.every((c) => c.n === 1)).toBe(true);
    // A step completed before the fault never ran again; the one whose result met the full disk ran
    // again (at least once, with the same idempotency key); no other step ran twice.
    const ran = executions();
    for (let i = 1; i <= STEPS; i++) expect(ran.get(`s${i}`), `s${i}`).toBeGreaterThanOrEqual(1);
    for (const s of completedBefore) expect(ran.get(s), `${s} completed before the fault`).toBe(1);
    expect([...ran.values()].filter((n) => n > 1).length).toBeLessThanOrEqual(1);
    expect([...ran.values()].every((n) => n <= 2)).toBe(true);
  }, 90_000);

  it('a read-only file system: one line naming the database and the cause, exit 4', async () => {
    mount('-o', 'remount,ro', home);
    try {
      const r = await swarm(['run', 'big-chain', '{}'], { timeoutMs: 20_000 });
      expect(r.code, show(r)).toBe(4);
      expect(r.stderr.trim(), show(r)).toMatch(/^swarm: the database \S+swarm\.db: read-only file system \(SQLITE_\w+: EROFS\) while \w+/);
      expect(r.stderr).not.toMatch(/unexpected error/);
      expect(r.ms).toBeLessThan(15_000);
    } finally {
      mount('-o', 'remount,rw', home);
    }
    expect(sql<{ integrity_check: string }>('PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
  }, 60_000);

  it('a store this user may not read or write: one line naming the path and the cause, exit 4', async () => {
    // Root ignores file modes: run the CLI as nobody (65534) on a copy of the store in a directory of root's.
    const locked = join(root, 'locked');
    mkdirSync(locked, { mode: 0o755 });
    chmodSync(root, 0o755);
    const src = new Database(join(home, 'swarm.db'), { readonly: true });
    await src.backup(join(locked, 'swarm.db'));
    src.close();
    chmodSync(join(locked, 'swarm.db'), 0o600);
    const unreadable = await swarm(['runs', 'list'], { asUser: 65534, home: locked, timeoutMs: 20_000 });
    expect(unreadable.code, show(unreadable)).toBe(4);
    expect(unreadable.stderr.trim()).toMatch(new RegExp(`^swarm: the database ${locked}/swarm\\.db: permission denied \\(EACCES\\) while opening it; `));
    // Readable, but neither it nor its directory writable: SQLite opens it read-only and cannot use WAL.
    chmodSync(join(locked, 'swarm.db'), 0o644);
    const readOnly = await swarm(['run', 'big-chain', '{}'], { asUser: 65534, home: locked, timeoutMs: 20_000 });
    expect(readOnly.code, show(readOnly)).toBe(4);
    expect(readOnly.stderr.trim()).toMatch(new RegExp(`^swarm: the database ${locked}/swarm\\.db: permission denied \\(SQLITE_\\w+: EACCES\\) while opening it; `));
    // A home that cannot be created.
    const nested = await swarm(['runs', 'list'], { asUser: 65534, home: join(locked, 'sub'), timeoutMs: 20_000 });
    expect(nested.code, show(nested)).toBe(4);
    expect(nested.stderr.trim()).toMatch(new RegExp(`^swarm: the directory ${locked}/sub: permission denied \\(EACCES\\) while opening it; `));
    for (const r of [unreadable, readOnly, nested]) expect(r.stderr).not.toMatch(/unexpected error/);
  }, 60_000);
});
