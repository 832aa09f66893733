import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { StepError } from '../core/errors.js';
import type { AgentRuntime } from '../core/manifest/agent.js';
import type { ExecutionContext, ExecutionResult, Executor, StepLogs } from './executor.js';
import { createMemoryCage } from './memory-limit.js';

/** How much of each of stdout and stderr is kept (the tail), unless `logCaptureBytes` says otherwise. */
export const LOG_LIMIT_BYTES = 64 * 1024;
/** After SIGTERM on timeout or cancel, how long the group has before SIGKILL. */
export const KILL_GRACE_MS = 2000;

export interface ProcessExecutorOptions {
  /** Extra environment for every agent process (the worker's own environment is inherited). */
  env?: Record<string, string>;
  /** Keep each attempt's work directory after success (it is always kept after a failure). */
  keepWorkDirs?: boolean;
  /** How much of each of stdout and stderr is kept, the tail (`limits.log_capture_bytes`; default LOG_LIMIT_BYTES). */
  logCaptureBytes?: number;
}

/**
 * Runs `node`, `python`, `bash` and `process` agents as child processes, one process group each.
 *
 * Contract: `<command> <entry> <input.json> <output.json>` with the package directory as the working
 * directory. The agent reads its inputs from input.json and writes a JSON object to output.json;
 * exit code 0 means success. Environment: SWARM_RUN_ID, SWARM_STEP_ID, SWARM_ATTEMPT,
 * SWARM_IDEMPOTENCY_KEY, SWARM_INPUT_FILE, SWARM_OUTPUT_FILE, SWARM_WORK_DIR.
 */
export class ProcessExecutor implements Executor {
  constructor(private readonly options: ProcessExecutorOptions = {}) {}

  async execute(ctx: ExecutionContext): Promise<ExecutionResult> {
    const runtime = ctx.agent.manifest.runtime;
    mkdirSync(ctx.workDir, { recursive: true });
    const inputFile = join(ctx.workDir, 'input.json');
    const outputFile = join(ctx.workDir, 'output.json');
    rmSync(outputFile, { force: true });
    writeFileSync(inputFile, JSON.stringify(ctx.inputs));

    const cage = createMemoryCage(runtime.memory_mb);
    let { cmd, args } = commandFor(runtime, ctx.agent.path, [inputFile, outputFile], cage === undefined);
    if (cage) ({ cmd, args } = cage.wrap(cmd, args));

    const logs = new LogCapture(this.options.logCaptureBytes ?? LOG_LIMIT_BYTES);
    // Secrets reach an agent only through the inputs that reference them, never wholesale.
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SWARM_SECRET_')));
    const env = {
      ...inherited,
      ...this.options.env,
      SWARM_RUN_ID: ctx.runId,
      SWARM_STEP_ID: ctx.stepId,
      SWARM_ATTEMPT: String(ctx.attempt),
      SWARM_IDEMPOTENCY_KEY: ctx.idempotencyKey,
      SWARM_INPUT_FILE: inputFile,
      SWARM_OUTPUT_FILE: outputFile,
      SWARM_WORK_DIR: ctx.workDir,
    };
    try {
      const exit = await runGroup(cmd, args, { cwd: ctx.agent.path, env, signal: ctx.signal, logs, ...(ctx.onProcess ? { onSpawn: ctx.onProcess } : {}) });
      ctx.onProcess?.(null);
      const captured = logs.result();
      const fail = (code: string, message: string, retryable: boolean): ExecutionResult => ({
        ok: false,
        error: new StepError(code, withTail(message, captured.stderr), retryable),
        logs: captured,
      });
      if (exit.spawnError) return fail('SPAWN_FAILED', `cannot start '${cmd}': ${exit.spawnError}`, false);
      if (ctx.signal.aborted) {
        const reason: unknown = ctx.signal.reason;
        return { ok: false, error: reason instanceof StepError ? reason : new StepError('STEP_ABORTED', 'aborted', true), logs: captured };
      }
      if (cage?.oomKilled()) return fail('STEP_OUT_OF_MEMORY', `exceeded memory_mb=${runtime.memory_mb} and was killed by the OS`, true);
      if (exit.signal) return fail('PROCESS_KILLED', `agent process was killed by ${exit.signal}`, true);
      if (exit.code !== 0) return fail('PROCESS_EXIT', `agent process exited with code ${exit.code}`, true);
      let text: string;
      try {
        text = readFileSync(outputFile, 'utf8');
      } catch {
        return fail('OUTPUT_MISSING', `agent exited 0 but wrote no output file: it must write a JSON object to the file named by its second argument (also in SWARM_OUTPUT_FILE), not to stdout`, true);
      }
      let outputs: unknown;
      try {
        outputs = JSON.parse(text);
      } catch (e) {
        return fail('OUTPUT_INVALID', `agent output file is not valid JSON: ${(e as Error).message}`, true);
      }
      if (outputs === null || typeof outputs !== 'object' || Array.isArray(outputs)) {
        return fail('OUTPUT_INVALID', 'agent output file must hold a JSON object', true);
      }
      if (!this.options.keepWorkDirs) rmSync(ctx.workDir, { recursive: true, force: true });
      return { ok: true, outputs, logs: captured };
    } finally {
      await cage?.release();
    }
  }
}

function withTail(message: string, stderr: string): string {
  const tail = stderr.trimEnd().split('\n').slice(-5).join('\n').trim();
  return tail ? `${message}; stderr: ${tail}` : message;
}

/** The command line for a runtime: `<interpreter> <entry> <input> <output>`. */
export function commandFor(runtime: AgentRuntime, pkgDir: string, files: string[], rlimitFallback: boolean): { cmd: string; args: string[] } {
  const entry = isAbsolute(runtime.entry) ? runtime.entry : join(pkgDir, runtime.entry);
  const bytes = runtime.memory_mb * 1024 * 1024;
  const rlimit = (cmd: string, args: string[]): { cmd: string; args: string[] } =>
    rlimitFallback && hasPrlimit() ? { cmd: 'prlimit', args: [`--as=${bytes}`, '--', cmd, ...args] } : { cmd, args };
  switch (runtime.type) {
    case 'node':
      return { cmd: process.execPath, args: [...(rlimitFallback ? [`--max-old-space-size=${runtime.memory_mb}`] : []), entry, ...files] };
    case 'python':
      return rlimit('python3', [entry, ...files]);
    case 'bash':
      return rlimit('bash', [entry, ...files]);
    default: {
      const [cmd, ...rest] = runtime.command ?? [entry];
      const args = runtime.command ? [...rest, entry, ...files] : files;
      return rlimit(cmd ?? entry, args);
    }
  }
}

let prlimitFound: boolean | undefined;

/** Is util-linux's `prlimit` on the PATH? Without it (and without cgroups) memory_mb is not enforced. */
export function hasPrlimit(): boolean {
  prlimitFound ??= (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, 'prlimit')));
  return prlimitFound;
}

/** Keeps the last `limit` bytes of each stream. */
class LogCapture {
  constructor(private readonly limit: number) {}

  private out: Buffer[] = [];
  private err: Buffer[] = [];
  private outLen = 0;
  private errLen = 0;
  private truncated = false;

  push(stream: 'out' | 'err', chunk: Buffer): void {
    const list = stream === 'out' ? this.out : this.err;
    list.push(chunk);
    let len = (stream === 'out' ? (this.outLen += chunk.length) : (this.errLen += chunk.length));
    while (len > this.limit * 2 && list.length > 1) {
      len -= (list.shift() as Buffer).length;
      this.truncated = true;
    }
    if (stream === 'out') this.outLen = len;
    else this.errLen = len;
  }

  result(): StepLogs {
    const tail = (list: Buffer[]): string => {
      const all = Buffer.concat(list);
      if (all.length > this.limit) this.truncated = true;
      return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
    };
    const stdout = tail(this.out);
    const stderr = tail(this.err);
    return { stdout, stderr, truncated: this.truncated };
  }
}

interface GroupExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError?: string;
}

/** Spawn in a new process group; on abort TERM then KILL the group; always KILL leftovers at exit. */
function runGroup(
  cmd: string,
  args: string[],
  o: { cwd: string; env: NodeJS.ProcessEnv; signal: AbortSignal; logs: LogCapture; onSpawn?: (pid: number) => void },
): Promise<GroupExit> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        /* already gone */
      }
    };
    const onAbort = (): void => {
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
      killTimer.unref();
    };
    child.stdout.on('data', (c: Buffer) => o.logs.push('out', c));
    child.stderr.on('data', (c: Buffer) => o.logs.push('err', c));
    child.once('spawn', () => {
      if (child.pid !== undefined) o.onSpawn?.(child.pid);
      if (o.signal.aborted) onAbort();
      else o.signal.addEventListener('abort', onAbort, { once: true });
    });
    child.once('error', (e) => {
      o.signal.removeEventListener('abort', onAbort);
      resolve({ code: null, signal: null, spawnError: e.message });
    });
    // When the agent exits, kill what it left behind in its group: background children would
    // otherwise hold the pipes open and outlive the step.
    child.once('exit', () => killGroup('SIGKILL'));
    child.once('close', (code, signal) => {
      o.signal.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      resolve({ code, signal });
    });
  });
}
