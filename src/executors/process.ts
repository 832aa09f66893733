import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { isSwarmError, StepError } from '../core/errors.js';
import { EventType } from '../core/events.js';
import type { AgentRuntime } from '../core/manifest/agent.js';
import { decodeEnvelope, issueNetCap, parseNetCapabilities, summarizeEnvelope, type NetCapability } from '../sandbox/capabilities.js';
import { BRIDGE_PORT, proxyEnvironment } from '../sandbox/net-bridge.js';
import { startNetProxy, type NetConnectionRecord, type NetProxy } from '../sandbox/net-proxy.js';
import { noneSandbox, sandboxForAgent, type Sandbox, type SandboxMode } from '../sandbox/sandbox.js';
import type { Redactor } from '../secrets/redactor.js';
import type { ExecutionContext, ExecutionResult, Executor, StepIsolation, StepLogs } from './executor.js';
import { createMemoryCage, type MemoryCage } from './memory-limit.js';
import { traceEnvironment } from '../observability/tracing.js';

/** How much of each of stdout and stderr is kept (the tail), unless `logCaptureBytes` says otherwise. */
export const LOG_LIMIT_BYTES = 64 * 1024;
/** After SIGTERM on timeout or cancel, how long the group has before SIGKILL. */
export const KILL_GRACE_MS = 2000;

/** NET_CONNECTION events one attempt records one by one; past this, one summary event counts the rest. */
export const MAX_NET_EVENTS_PER_ATTEMPT = 1000;

/** Appends events to a run's log (its own transaction), as guardrail events are. */
export type RecordEvents = (runId: string, stepId: string | null, events: ReadonlyArray<{ type: EventType; data: Record<string, unknown> }>) => Promise<void>;

export interface ProcessExecutorOptions {
  /** The deployment's sandbox driver, agents' default (default: none). */
  sandbox?: Sandbox;
  /**
   * The deployment's `sandbox:` setting: its `bubblewrap` is a floor that an agent's `sandbox: none`
   * does not lower (default: `bubblewrap` when `sandbox` isolates, else `auto`).
   */
  sandboxMode?: SandboxMode;
  /** Where NET_CONNECTION events go; without it a sandboxed agent with net capabilities cannot run (nothing would record its connections). */
  recordEvents?: RecordEvents;
  /** Put each attempt in a memory cgroup where one can be made (default true; false forces the fallbacks). */
  cgroups?: boolean;
  /** `PATH` and `LANG` for agents (default: the worker's own). */
  path?: string;
  lang?: string;
  /** Keep each attempt's work directory after success (it is always kept after a failure). */
  keepWorkDirs?: boolean;
  /** How much of each of stdout and stderr is kept, the tail (`limits.log_capture_bytes`; default LOG_LIMIT_BYTES). */
  logCaptureBytes?: number;
  /** Replaces secret values in the captured logs before they are cut to size, so a cut never leaves part of one. */
  redactor?: Redactor;
}

/**
 * Runs `node`, `python`, `bash` and `process` agents as child processes, one process group each,
 * inside the configured sandbox driver.
 *
 * Contract: `<command> <entry> <input.json> <output.json>` with the package directory as the working
 * directory. The agent reads its inputs from input.json and writes a JSON object to output.json;
 * exit code 0 means success. Environment (an allow-list, nothing else of the worker's): SWARM_RUN_ID,
 * SWARM_STEP_ID, SWARM_ATTEMPT, SWARM_IDEMPOTENCY_KEY, SWARM_INPUT_FILE, SWARM_OUTPUT_FILE,
 * SWARM_WORK_DIR, PATH, HOME (the work directory), LANG, the agent's declared `env:`, and TRACEPARENT
 * (TRACESTATE) naming the step attempt's span when tracing is on.
 */
export class ProcessExecutor implements Executor {
  private readonly sandbox: Sandbox;

  constructor(private readonly options: ProcessExecutorOptions = {}) {
    this.sandbox = options.sandbox ?? noneSandbox;
  }

  async execute(ctx: ExecutionContext): Promise<ExecutionResult> {
    const runtime = ctx.agent.manifest.runtime;
    // The attempt's files are the worker's alone: resolved inputs may hold secret values.
    mkdirSync(ctx.workDir, { recursive: true, mode: 0o700 });
    chmodSync(ctx.workDir, 0o700);
    const inputFile = join(ctx.workDir, 'input.json');
    const outputFile = join(ctx.workDir, 'output.json');
    rmSync(outputFile, { force: true });
    rmSync(inputFile, { force: true });

    const manifest = ctx.agent.manifest;
    let sandbox: Sandbox;
    let net: NetCapability[];
    try {
      net = parseNetCapabilities(manifest.capabilities);
      const mode = this.options.sandboxMode ?? (this.sandbox.isolated ? 'bubblewrap' : 'auto');
      sandbox = sandboxForAgent(mode, { sandbox: this.sandbox }, { name: manifest.name, ...(manifest.sandbox ? { sandbox: manifest.sandbox } : {}), net: net.length > 0 });
      if (net.length > 0 && !this.options.recordEvents) throw new StepError('NET_CAP_UNAVAILABLE', `agent '${manifest.name}' declares net: capabilities, but this executor records no events: its connections could not be logged`, false);
    } catch (e) {
      const code = isSwarmError(e) ? e.code : 'SANDBOX_UNAVAILABLE';
      cleanWorkDir(ctx.workDir, true);
      return { ok: false, error: new StepError(code, (e as Error).message, false) };
    }

    const cage = createMemoryCage(runtime.memory_mb, { cgroups: this.options.cgroups !== false });
    const isolation = isolationOf(sandbox, runtime, cage);
    isolation.network = sandbox.isolated ? (net.length > 0 ? 'proxy' : 'none') : 'host';
    let { cmd, args } = commandFor(runtime, ctx.agent.path, [inputFile, outputFile], cage === undefined);
    const spec = { packageDir: ctx.agent.path, workDir: ctx.workDir, readOnly: readOnlyPaths(runtime, ctx.agent.path, cmd) };
    const netlog = sandbox.isolated && net.length > 0 ? new NetLog(ctx, this.options.recordEvents as RecordEvents) : undefined;
    let proxy: NetProxy | undefined;
    let proxyDir: string | undefined;
    let netEnv: Record<string, string> = {};
    if (netlog) {
      // The worker issues the attempt's net_cap and the proxy enforces what the envelope says.
      const token = issueNetCap(net, { run_id: ctx.runId, step_id: ctx.stepId, attempt: ctx.attempt }, ctx.timeoutMs);
      const envelope = decodeEnvelope(token, { kind: 'net_cap' });
      const allow = parseNetCapabilities((envelope.net?.destinations ?? []).map((d) => `net:${d}`));
      isolation.net_cap = summarizeEnvelope(token);
      // A Unix socket path holds at most 107 bytes: a deep work directory gets a private one under the temp directory.
      let socketPath = join(ctx.workDir, 'net.sock');
      if (Buffer.byteLength(socketPath) > 100) socketPath = join((proxyDir = mkdtempSync(join(tmpdir(), 'swarm-net-'))), 'proxy.sock');
      try {
        proxy = await startNetProxy({ socketPath, allow, expiresAt: Date.parse(envelope.expires_at), onConnection: (r) => netlog.add(r) });
      } catch (e) {
        if (proxyDir) rmSync(proxyDir, { recursive: true, force: true });
        await cage?.release();
        cleanWorkDir(ctx.workDir, true);
        return { ok: false, error: new StepError('NET_PROXY_FAILED', `cannot start the network proxy on ${socketPath}: ${(e as Error).message}`, true), isolation };
      }
      netEnv = proxyEnvironment(BRIDGE_PORT);
      ({ cmd, args } = sandbox.wrap(cmd, args, { ...spec, net: { socketPath, port: BRIDGE_PORT } }));
    } else ({ cmd, args } = sandbox.wrap(cmd, args, spec));
    if (cage) ({ cmd, args } = cage.wrap(cmd, args));

    const logs = new LogCapture(this.options.logCaptureBytes ?? LOG_LIMIT_BYTES, this.options.redactor);
    const env: Record<string, string> = {
      PATH: this.options.path ?? process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      ...((this.options.lang ?? process.env.LANG) ? { LANG: (this.options.lang ?? process.env.LANG) as string } : {}),
      // What the agent declares under env: (it may set its own PATH or LANG); HOME and SWARM_* are Swarm's.
      ...ctx.env,
      HOME: ctx.workDir,
      SWARM_RUN_ID: ctx.runId,
      SWARM_STEP_ID: ctx.stepId,
      SWARM_ATTEMPT: String(ctx.attempt),
      SWARM_IDEMPOTENCY_KEY: ctx.idempotencyKey,
      SWARM_INPUT_FILE: inputFile,
      SWARM_OUTPUT_FILE: outputFile,
      SWARM_WORK_DIR: ctx.workDir,
      // The step attempt's span (W3C trace context), when tracing is on: the agent's own spans join the run's trace.
      ...traceEnvironment(ctx.trace),
      // Last: the proxy variables name the bridge (inside the sandbox nothing else leads out anyway).
      ...netEnv,
    };
    // Whatever the agent left running dies with it: the PID namespace (bubblewrap), else the
    // attempt's cgroup, else every process that still carries this attempt's work directory.
    // Inside a sandbox, SIGTERM goes to the agent's processes but not to the sandbox's own monitor
    // (its death would SIGKILL them at once): the agent gets its grace period.
    const spareOnTerm = sandbox.killsTree && cage !== undefined;
    const killTree = (sig: NodeJS.Signals, childPid: number): void => {
      if (cage) cage.signalAll(sig, spareOnTerm && sig !== 'SIGKILL' ? childPid : undefined);
      else if (!sandbox.killsTree) signalByEnviron(`SWARM_WORK_DIR=${ctx.workDir}`, sig);
    };
    let ok = false;
    try {
      // Inside the try: should writing fail (a full disk), the finally removes what was written.
      writeFileSync(inputFile, JSON.stringify(ctx.inputs), { mode: 0o600 });
      const exit = await runGroup(cmd, args, { cwd: ctx.agent.path, env, signal: ctx.signal, logs, killTree, spareOnTerm, ...(ctx.onProcess ? { onSpawn: ctx.onProcess } : {}) });
      ctx.onProcess?.(null);
      const captured = logs.result();
      const fail = (code: string, message: string, retryable: boolean): ExecutionResult => ({
        ok: false,
        error: new StepError(code, withTail(message, captured.stderr), retryable),
        logs: captured,
        isolation,
      });
      if (exit.spawnError) return fail('SPAWN_FAILED', `cannot start '${cmd}': ${exit.spawnError}`, false);
      if (netlog) {
        // Every connection is in the run's log before the step's outcome is.
        await proxy?.close();
        proxy = undefined;
        const lost = await netlog.flush();
        if (lost) return fail('NET_EVENTS_NOT_RECORDED', `the agent's network connections could not be recorded (${lost})`, true);
      }
      if (ctx.signal.aborted) {
        const reason: unknown = ctx.signal.reason;
        return { ok: false, error: reason instanceof StepError ? reason : new StepError('STEP_ABORTED', 'aborted', true), logs: captured, isolation };
      }
      if (cage?.oomKilled()) return fail('STEP_OUT_OF_MEMORY', `exceeded memory_mb=${runtime.memory_mb} and was killed by the OS`, true);
      if (isolation.memory === 'node-heap' && exit.code !== 0 && /JavaScript heap out of memory|Reached heap limit/.test(captured.stderr)) {
        return fail('STEP_OUT_OF_MEMORY', `exceeded memory_mb=${runtime.memory_mb} (node's heap limit; the OS does not enforce memory_mb here)`, true);
      }
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
      ok = true;
      return { ok: true, outputs, logs: captured, isolation };
    } finally {
      if (proxy) {
        await proxy.close();
        await netlog?.flush();
      }
      if (proxyDir) rmSync(proxyDir, { recursive: true, force: true });
      await cage?.release();
      cleanWorkDir(ctx.workDir, ok && !this.options.keepWorkDirs);
    }
  }
}

/**
 * The attempt's NET_CONNECTION events: appended one by one as connections end (in order, one at a
 * time), so a crash loses at most the open ones; past MAX_NET_EVENTS_PER_ATTEMPT, counted into one
 * summary event written at the end (`summary: true`).
 */
class NetLog {
  private chain: Promise<void> = Promise.resolve();
  private written = 0;
  private error: string | undefined;
  private rest = { connections: 0, refused: 0, bytes_out: 0, bytes_in: 0 };

  constructor(
    private readonly ctx: ExecutionContext,
    private readonly record: RecordEvents,
  ) {}

  add(r: NetConnectionRecord): void {
    if (this.written >= MAX_NET_EVENTS_PER_ATTEMPT) {
      this.rest.connections++;
      if (!r.allowed) this.rest.refused++;
      this.rest.bytes_out += r.bytes_out;
      this.rest.bytes_in += r.bytes_in;
      return;
    }
    this.written++;
    const data = { ...r, attempt: this.ctx.attempt } as Record<string, unknown>;
    this.chain = this.chain.then(() => this.write(data));
  }

  /** Wait for what was added; the first failure as text (undefined when all were written). */
  async flush(): Promise<string | undefined> {
    if (this.rest.connections > 0) {
      const data = { summary: true, attempt: this.ctx.attempt, ...this.rest, reason: `more than ${MAX_NET_EVENTS_PER_ATTEMPT} connections: the rest counted here` };
      this.rest = { connections: 0, refused: 0, bytes_out: 0, bytes_in: 0 };
      this.chain = this.chain.then(() => this.write(data));
    }
    await this.chain;
    return this.error;
  }

  private async write(data: Record<string, unknown>): Promise<void> {
    try {
      await this.record(this.ctx.runId, this.ctx.stepId, [{ type: EventType.NET_CONNECTION, data }]);
    } catch (e) {
      this.error ??= (e as Error).message;
    }
  }
}

/**
 * After the agent exited: input.json (resolved inputs, maybe secrets) goes at once, whatever the
 * outcome; after success the whole directory goes; a failed attempt keeps what the agent left for
 * inspection (output.json readable by the worker's user only). Empty directories are not left behind.
 */
function cleanWorkDir(workDir: string, all: boolean): void {
  try {
    if (all) rmSync(workDir, { recursive: true, force: true });
    else {
      rmSync(join(workDir, 'input.json'), { force: true });
      if (existsSync(join(workDir, 'output.json'))) chmodSync(join(workDir, 'output.json'), 0o600);
    }
    // `<root>/<run>/<step>/<attempt>`: the attempt, step and run directories, while empty.
    let dir = workDir;
    for (let i = 0; i < 3; i++) {
      if (existsSync(dir) && readdirSync(dir).length > 0) break;
      try {
        rmdirSync(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') break;
      }
      dir = dirname(dir);
    }
  } catch {
    /* best effort: a leftover directory is not the step's failure */
  }
}

/** What enforces memory_mb for this attempt, and the plain warning when it is not the OS. */
function isolationOf(sandbox: Sandbox, runtime: AgentRuntime, cage: MemoryCage | undefined): StepIsolation {
  if (cage) return { sandbox: sandbox.name, memory: cage.mechanism };
  const mb = runtime.memory_mb;
  if (runtime.type === 'node') {
    return { sandbox: sandbox.name, memory: 'node-heap', warning: `memory_mb=${mb} is not enforced by the OS (no memory cgroup): only node's heap is limited (--max-old-space-size=${mb})` };
  }
  if (hasPrlimit()) {
    return { sandbox: sandbox.name, memory: 'rlimit', warning: `memory_mb=${mb} is not enforced by the OS as a memory limit (no memory cgroup): only each process's address space is limited (RLIMIT_AS)` };
  }
  return { sandbox: sandbox.name, memory: 'none', warning: `memory_mb=${mb} is not enforced (no memory cgroup, no prlimit)` };
}

/** Paths outside the package the agent must see read-only: its interpreter's directory, an absolute entry. */
function readOnlyPaths(runtime: AgentRuntime, pkgDir: string, cmd: string): string[] {
  const paths = new Set<string>();
  const system = /^\/(usr|bin|sbin|lib|lib32|lib64|libx32|etc)(\/|$)/;
  const add = (p: string): void => {
    if (isAbsolute(p) && !system.test(p) && existsSync(p) && !p.startsWith(`${pkgDir}/`)) paths.add(p);
  };
  if (runtime.type === 'node') add(dirname(process.execPath));
  if (isAbsolute(cmd)) add(dirname(cmd));
  if (isAbsolute(runtime.entry)) add(runtime.entry);
  return [...paths];
}

/**
 * Signal every process whose environment holds `marker` (the attempt's own SWARM_WORK_DIR): the
 * last resort for children that detached themselves when neither a PID namespace nor a cgroup holds
 * the tree. A process that cleared its environment escapes it; docs/isolation.md says so.
 */
function signalByEnviron(marker: string, sig: NodeJS.Signals): void {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return;
  }
  const needle = `\0${marker}\0`;
  for (const p of pids) {
    const pid = Number(p);
    if (pid === process.pid) continue;
    try {
      if (`\0${readFileSync(`/proc/${p}/environ`, 'latin1')}`.includes(needle)) process.kill(pid, sig);
    } catch {
      /* gone, or not ours */
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

/** Keeps the last `limit` bytes of each stream, secret values redacted. */
class LogCapture {
  constructor(
    private readonly limit: number,
    private readonly redactor?: Redactor,
  ) {}

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
    const r = this.redactor?.active ? this.redactor : undefined;
    // With secrets to redact, keep enough before the cut to see a secret that straddles it whole,
    // redact, then cut: a cut through a marker is harmless, one through a value would leak its end.
    const slack = r ? Math.min(r.longestBytes, this.limit) : 0;
    const tail = (list: Buffer[]): string => {
      const all = Buffer.concat(list);
      if (all.length > this.limit) this.truncated = true;
      if (!r) return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
      const redacted = Buffer.from(r.text(all.subarray(Math.max(0, all.length - this.limit - slack)).toString('utf8')));
      return redacted.subarray(Math.max(0, redacted.length - this.limit)).toString('utf8');
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
  o: { cwd: string; env: NodeJS.ProcessEnv; signal: AbortSignal; logs: LogCapture; killTree: (sig: NodeJS.Signals, childPid: number) => void; spareOnTerm: boolean; onSpawn?: (pid: number) => void },
): Promise<GroupExit> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      // The tree first (so the agent itself gets SIGTERM inside a sandbox), then the group.
      o.killTree(sig, child.pid);
      if (sig === 'SIGTERM' && o.spareOnTerm) return;
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
