/**
 * What the bench runners share. One measurement per process: the parent forks its own script with
 * `--child <job JSON>` (same Node flags as the parent, so --cpu-prof reaches the children) and waits
 * for the one message it sends. Results record the commit and the host they were measured on.
 */
import { execFileSync, fork } from 'node:child_process';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { REPO_ROOT } from './harness.js';

/** What a child sends back: its result, or why it failed. */
export type ChildMessage<R> = { ok: true; result: R } | { ok: false; error: string };

/** Fork `script --child <job>` and resolve with the result it reports (SIGKILL after `timeoutMs`). */
export function runInChild<J, R>(script: string, job: J, key: string, timeoutMs: number): Promise<R> {
  return new Promise((resolve, reject) => {
    const child = fork(script, ['--child', JSON.stringify(job)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let answer: ChildMessage<R> | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${key}: no result after ${timeoutMs / 1000}s`));
    }, timeoutMs);
    child.on('message', (m: ChildMessage<R>) => {
      answer = m;
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (answer?.ok) resolve(answer.result);
      else reject(new Error(`${key}: ${answer ? answer.error : `child exited with ${signal ?? code} before reporting`}`));
    });
  });
}

/** In the child: run the job, send its result (or its error) to the parent, and exit. */
export async function childMain<R>(run: () => Promise<R>): Promise<void> {
  let message: ChildMessage<R>;
  try {
    message = { ok: true, result: await run() };
  } catch (e) {
    message = { ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  }
  await new Promise<void>((resolve) => process.send?.(message, () => resolve()) ?? resolve());
  // Exit now rather than wait for stray timers; --cpu-prof still writes its profile on exit.
  process.exit(message.ok ? 0 : 1);
}

/** The commit measured, and whether src/ had uncommitted changes (results are only comparable per source state). */
export function gitState(): { commit: string; src_dirty: boolean } | null {
  try {
    const git = (...args: string[]): string => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return { commit: git('rev-parse', 'HEAD'), src_dirty: git('status', '--porcelain', '--', 'src').length > 0 };
  } catch {
    return null;
  }
}

/** The machine, with its load average before the run and now. */
export function hostInfo(loadBefore: number[]): Record<string, unknown> {
  return {
    node: process.version,
    platform: platform(),
    release: release(),
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    mem_mb: Math.round(totalmem() / 2 ** 20),
    exec_argv: process.execArgv,
    loadavg_before: loadBefore,
    loadavg_after: loadavg(),
  };
}
