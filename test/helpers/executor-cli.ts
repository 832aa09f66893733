/**
 * CLI helpers of the executors tests: `bin/swarm` with colours stripped, a `swarm executor serve`
 * child with its URL and public key read from its first line, and the fixture the executor CLI tests
 * share (a served reference executor with one agent, and an empty project to run the CLI in).
 *
 * @example
 *   const fx = useServedExecutor();   // at the top of the file: started before its tests, stopped after
 *   it('…', async () => { await runCli(['executors', 'add', 'rt', fx.served.url], fx.dir); });
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { exited, openProject, removeProject, runCli as runCliRaw, spawnCli, tempProject, writeAgent, type CliResult } from './project.js';

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;
export async function runCli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<CliResult> {
  const r = await runCliRaw(args, cwd, env);
  return { ...r, stdout: r.stdout.replace(ANSI, ''), stderr: r.stderr.replace(ANSI, '') };
}

export const show = (r: CliResult): string => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

export interface Served {
  child: ChildProcess;
  url: string;
  publicKey: string;
  output: () => string;
}

export async function serveExecutor(dir: string, stateDir: string): Promise<Served> {
  const child = spawnCli(['executor', 'serve', '--port', '0', '--state-dir', stateDir, '--name', 'ref-cli'], dir);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const m = await new Promise<RegExpExecArray>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`executor serve did not start: ${out}`)), 20_000);
    const check = (): void => {
      const hit = /listening on (http:\/\/127\.0\.0\.1:\d+) .*public key (\S+);/.exec(out);
      if (hit) {
        clearTimeout(t);
        resolve(hit);
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => reject(new Error(`executor serve exited ${code}: ${out}`)));
  });
  return { child, url: m[1] as string, publicKey: m[2] as string, output: () => out };
}


/** What useServedExecutor sets up; `served` may be replaced (a test that restarts the executor). */
export interface ServedExecutorFixture {
  /** The executor's project: agent `echo-a` (builtin echo) registered. */
  execDir: string;
  /** The executor's state directory (identity, remembered answers). */
  stateDir: string;
  /** An empty project for the CLI under test. */
  dir: string;
  served: Served;
}

/**
 * Before the file's tests: a project with agent `echo-a` registered (through the library: the test
 * is about the executor, not `agent register`), `swarm executor serve` on it, and an empty project.
 * After them: the executor is killed (if still running) and both projects removed.
 */
export function useServedExecutor(): ServedExecutorFixture {
  const fx = {} as ServedExecutorFixture;
  beforeAll(async () => {
    fx.execDir = tempProject();
    fx.stateDir = join(fx.execDir, 'state');
    writeAgent(fx.execDir, 'echo-a', 'name: echo-a\nversion: 1.0.0\nruntime: { type: builtin, entry: echo }\n');
    const swarm = await openProject(fx.execDir);
    try {
      await swarm.registerAgent(join(fx.execDir, 'agents', 'echo-a'));
    } finally {
      await swarm.close();
    }
    fx.served = await serveExecutor(fx.execDir, fx.stateDir);
    fx.dir = tempProject();
  });
  afterAll(async () => {
    if (fx.served && fx.served.child.exitCode === null) {
      fx.served.child.kill('SIGKILL');
      await exited(fx.served.child);
    }
    if (fx.dir) removeProject(fx.dir);
    if (fx.execDir) removeProject(fx.execDir);
  });
  return fx;
}
