/**
 * One measurement per process: the parent forks its own script with `--child <job JSON>` (same Node
 * flags as the parent, so --cpu-prof reaches the children) and waits for the one message it sends.
 */
import { fork } from 'node:child_process';

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
