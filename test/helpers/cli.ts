/**
 * Spawns the real `swarm` command line (bin/*.js over dist/) in a fresh temporary directory, with
 * SWARM_HOME inside it, and collects its exit code, stdout and stderr.
 *
 * Build first (`npm run build`): the bin scripts import dist/src/cli/main.js.
 */
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const EXAMPLES = { agents: join(REPO_ROOT, 'examples', 'agents'), workflows: join(REPO_ROOT, 'examples', 'workflows') };

export type Bin = 'swarm' | 'swarm-run' | 'swarm-agent' | 'swarm-workflow';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall-clock time the process took. */
  ms: number;
}

export interface RunOptions {
  /** Working directory (absolute, or relative to the sandbox root). Default: the sandbox root. */
  cwd?: string;
  /** Extra environment variables (undefined removes one). */
  env?: Record<string, string | undefined>;
  /** Written to the process's standard input (which is closed after it). */
  input?: string;
  bin?: Bin;
  /**
   * Killed with SIGKILL after this long. Default 60 s: a liveness bound only (a command that should
   * return at once checks its own `ms`); on a loaded machine a plain `swarm` start takes seconds.
   */
  timeoutMs?: number;
}

export interface Sandbox {
  /** The temporary directory (the default working directory). */
  readonly root: string;
  /** SWARM_HOME, or undefined when the sandbox uses the default `<project>/.swarm`. */
  readonly home: string | undefined;
  /** The store file the CLI uses when run from the root. */
  readonly db: string;
  readonly env: NodeJS.ProcessEnv;
  path(...parts: string[]): string;
  /** Write a file under the root (creating directories); returns its absolute path. */
  write(rel: string, text: string, mode?: number): string;
  read(rel: string): string;
  exists(rel: string): boolean;
  run(args: string[], options?: RunOptions): Promise<CliResult>;
  /** Start the CLI and return the child at once (for runs that are cancelled while running). */
  start(args: string[], options?: RunOptions): { child: ChildProcess; done: Promise<CliResult> };
  /** Start from a copy of another store file (e.g. one with the examples registered). */
  copyStore(from: string): void;
  /** Read the sandbox's store directly (read-only), for polling and for checking nothing was written. */
  query<T>(sql: string, ...params: unknown[]): T[];
  /** Run one writing statement on the sandbox's database directly (a row as an older Swarm, or a tamperer, left it). */
  update(sql: string, ...params: unknown[]): void;
  /** Run and parse stdout as JSON; fails with the process's output when it is not JSON. */
  json<T = unknown>(args: string[], options?: RunOptions): Promise<T>;
  cleanup(): void;
}

const sandboxes: Sandbox[] = [];

/** The environment the CLI sees: this process's, minus every SWARM_* variable and colour forcing. */
function cleanEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('SWARM_') || k === 'FORCE_COLOR' || k.startsWith('VITEST') || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  env.NO_COLOR = '1';
  return withOverrides(env, extra);
}

/**
 * A fresh temporary directory. By default SWARM_HOME points inside it (`<root>/swarm-home`); with
 * `{ home: 'default' }` no SWARM_HOME is set and the store is `<project>/.swarm/swarm.db`.
 */
export function makeSandbox(options: { home?: 'sandbox' | 'default'; env?: Record<string, string | undefined> } = {}): Sandbox {
  const root = mkdtempSync(join(tmpdir(), 'swarm-cli-test-'));
  if (existsSync(join(dirname(root), 'swarm.yaml'))) throw new Error(`${dirname(root)} holds a swarm.yaml: the sandbox would not be its own project`);
  const home = options.home === 'default' ? undefined : join(root, 'swarm-home');
  const env = cleanEnv({ ...(home ? { SWARM_HOME: home } : {}), ...(options.env ?? {}) });
  const abs = (p: string): string => resolve(root, p);

  const start = (args: string[], o: RunOptions = {}): { child: ChildProcess; done: Promise<CliResult> } => {
    const bin = join(REPO_ROOT, 'bin', `${o.bin ?? 'swarm'}.js`);
    const began = Date.now();
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: abs(o.cwd ?? '.'),
      env: withOverrides(env, o.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin?.on('error', () => undefined);
    if (o.input !== undefined) child.stdin?.end(o.input);
    else child.stdin?.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    const done = new Promise<CliResult>((resolveDone, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolveDone({ code, signal, stdout, stderr, ms: Date.now() - began });
      });
    });
    return { child, done };
  };

  const sandbox: Sandbox = {
    root,
    home,
    db: join(home ?? join(root, '.swarm'), 'swarm.db'),
    env,
    path: (...parts) => resolve(root, ...parts),
    write(rel, text, mode) {
      const file = abs(rel);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, text, mode === undefined ? undefined : { mode });
      return file;
    },
    read: (rel) => readFileSync(abs(rel), 'utf8'),
    exists: (rel) => existsSync(abs(rel)),
    run: (args, o) => start(args, o).done,
    start,
    async json<T>(args: string[], o?: RunOptions): Promise<T> {
      const r = await start(args, o).done;
      try {
        return JSON.parse(r.stdout) as T;
      } catch {
        throw new Error(`swarm ${args.join(' ')}: stdout is not JSON (exit ${String(r.code)})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      }
    },
    copyStore(from) {
      mkdirSync(dirname(sandbox.db), { recursive: true });
      copyFileSync(from, sandbox.db);
      if (existsSync(`${from}-wal`)) copyFileSync(`${from}-wal`, `${sandbox.db}-wal`);
      // The store records which master key it was set up with: its key file comes with it.
      const key = join(dirname(from), 'master.key');
      if (existsSync(key)) {
        copyFileSync(key, join(dirname(sandbox.db), 'master.key'));
        chmodSync(join(dirname(sandbox.db), 'master.key'), 0o600);
      }
    },
    query<T>(sql: string, ...params: unknown[]): T[] {
      const db = new Database(sandbox.db, { readonly: true, fileMustExist: true });
      try {
        return db.prepare(sql).all(...params) as T[];
      } finally {
        db.close();
      }
    },
    update(sql: string, ...params: unknown[]): void {
      const db = new Database(sandbox.db, { fileMustExist: true });
      try {
        db.prepare(sql).run(...params);
      } finally {
        db.close();
      }
    },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
  sandboxes.push(sandbox);
  return sandbox;
}

function withOverrides(base: NodeJS.ProcessEnv, extra: Record<string, string | undefined> | undefined): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...base };
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

let examplesSeed: Promise<string> | undefined;

/**
 * A store file with the bundled example agents and workflows registered through the CLI, made once
 * per test file; `sandbox.copyStore(await examplesStore())` starts a sandbox from a copy of it. The
 * examples' schedules (examples/workflows/nightly) are paused: a `swarm serve` a test starts on
 * this store must not start a run of its own when the test happens to span the schedule's time.
 */
export function examplesStore(): Promise<string> {
  examplesSeed ??= (async () => {
    const seed = makeSandbox();
    for (const [kind, dir] of [['agent', EXAMPLES.agents], ['workflow', EXAMPLES.workflows]] as const) {
      const r = await seed.run([kind, 'register', '--all', dir]);
      if (r.code !== 0) throw new Error(`cannot register the examples: ${show(r)}`);
    }
    const listed = await seed.run(['schedules', 'list', '--json']);
    if (listed.code !== 0) throw new Error(`cannot list the examples' schedules: ${show(listed)}`);
    for (const { workflow } of JSON.parse(listed.stdout) as Array<{ workflow: string }>) {
      const r = await seed.run(['schedules', 'pause', workflow]);
      if (r.code !== 0) throw new Error(`cannot pause the schedule of example ${workflow}: ${show(r)}`);
    }
    return seed.db;
  })();
  return examplesSeed;
}

/** Remove every sandbox made so far (call from afterAll). */
export function cleanupSandboxes(): void {
  examplesSeed = undefined;
  for (const s of sandboxes.splice(0)) s.cleanup();
}

/** The non-empty lines of a text. */
export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

/** Describe a result for assertion messages. */
export function show(r: CliResult): string {
  return `exit ${String(r.code)}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** Run `swarm <args>` in the sandbox and expect exit 0 (the output shown when not). */
export async function ok(s: Sandbox, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const r = await s.run(args);
  expect(r.code, `swarm ${args.join(' ')}\n${show(r)}`).toBe(0);
  return r;
}

/** Poll `check` until it returns a value other than undefined, or fail after `timeoutMs`. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
