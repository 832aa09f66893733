import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { byteLength, LIMIT_DEFAULTS, LimitExceededError } from '../core/limits.js';
import pc from 'picocolors';
import { setViewRedactor } from './render.js';
import { UserError } from '../core/errors.js';
import type { Swarm } from '../swarm.js';
import type { SwarmConfig } from '../config/config.js';
import type { LoopEvent } from '../agents/loop.js';
import { startTracingFromEnv, type TracingHandle } from '../observability/otel-sdk.js';
import { configureTracing } from '../observability/tracing.js';
import { createLogger, type Logger, type LogFormat } from '../observability/logger.js';
import { exitQuietlyOnClosedPipe } from './closed-pipe.js';
import { parseTime, TIME } from '../core/time.js';

/** What every command gets: output functions and a lazily opened Swarm. */
export interface CliContext {
  out: (line: string) => void;
  err: (line: string) => void;
  /** True when stderr is a terminal (live progress). */
  tty: boolean;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Open the store (once). With `retryUnreachable`, wait for a database that cannot be reached yet. */
  swarm(options?: { retryUnreachable?: boolean }): Promise<Swarm>;
  /** Set by commands that decide the exit code themselves. */
  exitCode: number;
  /** Print the engine's own log lines (handler messages, reaped workers): on for `swarm worker`. */
  engineLog: boolean;
  /** LLM loop events of steps run in this process (set before the first `swarm()`: it turns streaming on). */
  llmEvents?: (runId: string, stepId: string, e: LoopEvent) => void;
  /**
   * The log of a long-running command (`serve`, `worker`): the text format (out/err as they are) until
   * `useLogFormat('json')`. The engine's lines (with `engineLog`) go through it too.
   */
  logger: Logger;
  /** Log in this format from now on (secret values redacted in every field). */
  useLogFormat(format: LogFormat): void;
}

export function createContext(cwd: string, env: NodeJS.ProcessEnv): CliContext & { close(): Promise<void> } {
  exitQuietlyOnClosedPipe();
  let opened: Promise<Swarm> | undefined;
  // OpenTelemetry, when the OTEL_* environment configures it (docs/observability.md#traces): started
  // before the store opens, flushed and stopped after it closes.
  let tracing: Promise<TracingHandle | undefined> | undefined;
  // Once the store is open, every line printed has the known secrets' values replaced by their
  // markers: what was stored before values were redacted, or given as run input, is not shown either.
  let redact: (s: string) => string = (s) => s;
  const ctx: CliContext & { close(): Promise<void> } = {
    out: (line: string) => process.stdout.write(`${redact(line)}\n`),
    err: (line: string) => process.stderr.write(`${redact(line)}\n`),
    tty: Boolean(process.stderr.isTTY) && env.CI !== 'true' && env.TERM !== 'dumb',
    cwd,
    env,
    exitCode: 0,
    engineLog: false,
    logger: createLogger({ format: 'text', text: { out: (l) => ctx.out(l), err: (l) => ctx.err(l) } }),
    useLogFormat(format: LogFormat): void {
      ctx.logger = createLogger({ format, text: { out: (l) => ctx.out(l), err: (l) => ctx.err(l) }, write: (s) => void process.stdout.write(s), redact: (s) => redact(s) });
    },
    swarm(options: { retryUnreachable?: boolean } = {}): Promise<Swarm> {
      // Loaded here, not at start-up: `--version`, `--help` and commands without a store skip it.
      const open = async (): Promise<Swarm> =>
        (await import('../swarm.js')).Swarm.open({
          cwd,
          env,
          log: (line, fields) => {
            // A line with an error (a failed read, reaping) is a warning: the engine carries on.
            if (ctx.engineLog) ctx.logger[fields?.err ? 'warn' : 'info'](line, fields, { text: pc.dim(line) });
          },
          ...(ctx.llmEvents ? { onLlmEvent: (r: string, s: string, e: LoopEvent) => ctx.llmEvents?.(r, s, e) } : {}),
        });
      tracing ??= startTracingFromEnv(env, (m) => ctx.err(`warning: ${m}`)).catch((e: unknown) => {
        ctx.err(`warning: tracing is off: the OpenTelemetry SDK did not start: ${(e as Error).message}`);
        return undefined;
      });
      opened ??= tracing.then(() => (options.retryUnreachable ? openWithRetry(open, (line) => ctx.logger.warn(line, {}, { text: line })) : open())).then((swarm) => {
        // The key is in the resolved configuration now: agents started by this process (whose
        // environment is inherited from it) must not find it in theirs.
        if (env === process.env) delete process.env.SWARM_MASTER_KEY;
        // Always: the redactor also learns the values of stored secrets this process loads.
        redact = (s) => swarm.redactor.text(s);
        // Message content on spans (when opted in) hides the known secrets' values as well.
        configureTracing({ redact });
        setViewRedactor(redact);
        return swarm;
      });
      return opened;
    },
    async close(): Promise<void> {
      try {
        if (opened) await (await opened).close();
      } finally {
        await (await tracing)?.shutdown();
      }
    },
  };
  return ctx;
}

/** How the user started us, for the commands we suggest: `npx swarm` when through npx. */
export function swarmCommand(ctx: Pick<CliContext, 'env'>): string {
  return ctx.env.npm_command === 'exec' ? 'npx swarm' : 'swarm';
}

/**
 * The SQLite file of a store that does not exist yet, or undefined (it exists; the store is
 * PostgreSQL; or the file cannot be looked at, which opening it then reports). Opening a SQLite
 * store (`ctx.swarm()`) creates it, with its directory and master key: a command that only reads or
 * prunes (`swarm gc`) asks this first and writes nothing when there is no store.
 *
 * @example
 *   const missing = missingSqliteStore(resolveConfig({ cwd: ctx.cwd, env: ctx.env }));
 *   if (missing) return ctx.out(`nothing to do: no store at ${missing} yet`);
 */
export function missingSqliteStore(config: Pick<SwarmConfig, 'databaseUrl' | 'dbPath'>): string | undefined {
  if (config.databaseUrl) return undefined;
  try {
    statSync(config.dbPath);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? config.dbPath : undefined;
  }
}

/** A database that is down or unreachable (not one that refuses us: wrong password, not Swarm's). */
function unreachable(e: unknown): boolean {
  const cause = (e as { cause?: { code?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? cause.code : '';
  return /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|57P03|08)/.test(code);
}

/** Keep trying to open the store while its database cannot be reached, saying so; other errors stop. */
async function openWithRetry(open: () => Promise<Swarm>, log: (line: string) => void): Promise<Swarm> {
  for (let delay = 1000; ; delay = Math.min(delay * 2, 30_000)) {
    try {
      return await open();
    } catch (e) {
      if (!unreachable(e)) throw e;
      log(`database unreachable (${(e as Error).message}); retrying in ${delay / 1000}s`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * Parse a run's input: inline JSON, `@file.json`, or `-` for standard input. Errors name the source
 * and the position of the problem. Input larger than `maxBytes` (`limits.run_input_bytes`) is
 * refused without being held in memory: a file's size is read from its metadata, a stream is
 * counted as it is read and only its first `maxBytes` are kept.
 */
export function parseInput(arg: string | undefined, maxBytes: number = LIMIT_DEFAULTS.run_input_bytes): unknown {
  if (arg === undefined || arg === '') return {};
  let text: string;
  let source: string;
  if (arg === '-') {
    source = 'standard input';
    text = readBounded(0, maxBytes, 'run input from standard input');
  } else if (arg.startsWith('@')) {
    const file = arg.slice(1);
    source = file;
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (e) {
      throw new UserError('INPUT_FILE_UNREADABLE', `cannot read input file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
    }
    try {
      text = readBounded(fd, maxBytes, `run input ${file}`);
    } catch (e) {
      if (e instanceof LimitExceededError) throw e;
      throw new UserError('INPUT_FILE_UNREADABLE', `cannot read input file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
    } finally {
      closeSync(fd);
    }
  } else {
    text = arg;
    source = 'the input argument';
    const size = byteLength(text);
    if (size > maxBytes) throw new LimitExceededError('run input', 'run_input_bytes', maxBytes, size);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError('JSON_INVALID', `${source} is not valid JSON: ${(e as Error).message}`, { source });
  }
}

/** Parse `--since` values: an ISO date, or a duration like 30m, 2h, 7d. */
export function parseSince(value: string): number {
  const m = /^(\d+)\s*(s|m|h|d)$/.exec(value.trim());
  if (m) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
    return Date.now() - Number(m[1]) * unit;
  }
  // An ISO date is read strictly (2026-02-30 is refused, not rolled over); other forms as Date reads them.
  const t = TIME.test(value.trim()) ? parseTime(value.trim()) : Date.parse(value);
  if (Number.isNaN(t)) throw new UserError('ARGUMENT_INVALID', `--since '${value}' is not a date (2026-01-31) or a duration (30m, 2h, 7d)`);
  return t;
}

export function parseSeconds(value: string, name: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 86_400) throw new UserError('ARGUMENT_INVALID', `${name} must be a number of seconds from 0 to 86400, not '${value}'`);
  return n;
}

/** A TCP port number (0: any free port). */
export function parsePort(value: string, name: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65_535) throw new UserError('ARGUMENT_INVALID', `${name} must be a port number from 0 to 65535, not '${value}'`);
  return n;
}

export function parsePositiveInt(value: string, name: string, max?: number): number {
  // Digits only: Number() would also read ' 5', '1e3' and '0x10'.
  const n = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || (max !== undefined && n > max)) {
    throw new UserError('ARGUMENT_INVALID', `${name} must be ${max === undefined ? 'a positive whole number' : `a whole number from 1 to ${max}`}, not '${value}'`);
  }
  return n;
}

/** Read a file descriptor as UTF-8 text, refusing (with the whole size) more than `maxBytes`. */
function readBounded(fd: number, maxBytes: number, what: string): string {
  const st = fstatSync(fd);
  if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
  if (st.isFile() && st.size > maxBytes) throw new LimitExceededError(what, 'run_input_bytes', maxBytes, st.size);
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let total = 0;
  const chunk = Buffer.alloc(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, chunk, 0, chunk.length, null);
    } catch (e) {
      // A non-blocking standard input with nothing yet: wait for it.
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        continue;
      }
      if ((e as NodeJS.ErrnoException).code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    total += n;
    // Past the limit the rest is only counted, so the message can give the size.
    if (total <= maxBytes) {
      kept.push(Buffer.from(chunk.subarray(0, n)));
      keptBytes += n;
    }
  }
  if (total > maxBytes) throw new LimitExceededError(what, 'run_input_bytes', maxBytes, total);
  return Buffer.concat(kept, keptBytes).toString('utf8');
}
