import { setTimeout as sleep } from 'node:timers/promises';
import { StepError, errorMessage } from '../core/errors.js';
import { NetworkGuard, NetworkRefusedError } from '../net/guard.js';
import { Waiting, type ExecutionContext, type ExecutionResult, type Executor } from './executor.js';

/** A built-in agent: a function of its inputs, run inside the worker process. */
export type BuiltinAgent = (inputs: Record<string, unknown>, ctx: ExecutionContext) => Promise<unknown>;

export const HTTP_FETCH_DEFAULT_MAX_BYTES = 1024 * 1024;
export const HTTP_FETCH_DEFAULT_TIMEOUT_MS = 30_000;

/** `echo`: outputs `echoed` = input `message` (and passes every other input through under `inputs`). */
const echo: BuiltinAgent = async (inputs) => ({ echoed: inputs.message ?? null });

/** `noop`: does nothing, outputs `{}`. Used by benchmarks to measure the engine alone. */
const noop: BuiltinAgent = async () => ({});

/** `sleep`: waits `ms` milliseconds (abortable), outputs `slept_ms`. */
const sleepAgent: BuiltinAgent = async (inputs, ctx) => {
  const ms = Number(inputs.ms ?? 0);
  await sleep(ms, undefined, { signal: ctx.signal });
  return { slept_ms: ms };
};

/**
 * `http-fetch`: one HTTP request. Inputs: url, method (GET), headers, body (a string, or JSON for
 * objects), timeout_ms (30 s), max_bytes (1 MiB). Outputs: status, headers, body (text), json (parsed
 * when the response is JSON, else null). A response larger than max_bytes fails the step. The
 * request, and every redirect, goes through `guard`: private and special addresses are refused
 * unless allow-listed (a refusal fails the step, not retryably).
 */
export const httpFetchAgent = (guard: NetworkGuard): BuiltinAgent => async (inputs, ctx) => {
  const url = typeof inputs.url === 'string' ? inputs.url : '';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StepError('INPUT_INVALID', `http-fetch: '${url}' is not a valid URL`, false);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new StepError('INPUT_INVALID', `http-fetch: only http and https URLs are allowed, not '${parsed.protocol}'`, false);
  }
  const method = (typeof inputs.method === 'string' ? inputs.method : 'GET').toUpperCase();
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries((inputs.headers as Record<string, unknown> | undefined) ?? {})) headers[k] = String(v);
  let body: string | undefined;
  if (inputs.body !== undefined && inputs.body !== null) {
    if (typeof inputs.body === 'string') body = inputs.body;
    else {
      body = JSON.stringify(inputs.body);
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    }
  }
  const timeoutMs = Number(inputs.timeout_ms ?? HTTP_FETCH_DEFAULT_TIMEOUT_MS);
  const maxBytes = Number(inputs.max_bytes ?? HTTP_FETCH_DEFAULT_MAX_BYTES);
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]);
  let res: Awaited<ReturnType<NetworkGuard['fetch']>>;
  try {
    res = await guard.fetch(parsed, { method, headers, ...(body !== undefined ? { body } : {}), signal });
  } catch (e) {
    if (e instanceof NetworkRefusedError) throw new StepError('NETWORK_REFUSED', `http-fetch: ${e.message}`, false, e.context, { cause: e });
    if (signal.aborted && !ctx.signal.aborted) throw new StepError('HTTP_TIMEOUT', `http-fetch: ${method} ${url} timed out after ${timeoutMs} ms`, true);
    throw new StepError('HTTP_ERROR', `http-fetch: ${method} ${url} failed: ${errorMessage((e as Error).cause ?? e)}`, true);
  }
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw new StepError('HTTP_RESPONSE_TOO_LARGE', `http-fetch: response of ${declared} bytes exceeds max_bytes=${maxBytes}`, false);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > maxBytes) {
        await res.body.cancel().catch(() => undefined);
        throw new StepError('HTTP_RESPONSE_TOO_LARGE', `http-fetch: response exceeds max_bytes=${maxBytes}`, false);
      }
      chunks.push(chunk);
    }
  }
  const text = Buffer.concat(chunks).toString('utf8');
  let json: unknown = null;
  if ((res.headers.get('content-type') ?? '').includes('json')) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  return { status: res.status, headers: Object.fromEntries(res.headers.entries()), body: text, json };
};

/** The built-in agents; `http-fetch` here uses a guard without an allow-list (public addresses only). */
export const BUILTIN_AGENTS: Readonly<Record<string, BuiltinAgent>> = { echo, noop, sleep: sleepAgent, 'http-fetch': httpFetchAgent(new NetworkGuard()) };

export interface BuiltinExecutorOptions {
  /** The network policy of `http-fetch` (default: public addresses only). */
  network?: NetworkGuard;
}

/** Runs `runtime.type: builtin` agents, plus any functions an embedding application registers. */
export class BuiltinExecutor implements Executor {
  private readonly agents: Map<string, BuiltinAgent>;

  constructor(options: BuiltinExecutorOptions = {}) {
    this.agents = new Map(Object.entries({ ...BUILTIN_AGENTS, ...(options.network ? { 'http-fetch': httpFetchAgent(options.network) } : {}) }));
  }

  register(name: string, fn: BuiltinAgent): void {
    this.agents.set(name, fn);
  }

  has(name: string): boolean {
    return this.agents.has(name);
  }

  names(): string[] {
    return [...this.agents.keys()];
  }

  async execute(ctx: ExecutionContext): Promise<ExecutionResult> {
    const name = ctx.agent.manifest.runtime.entry;
    const fn = this.agents.get(name);
    if (!fn) return { ok: false, error: new StepError('BUILTIN_UNKNOWN', `no built-in agent named '${name}' (have: ${this.names().join(', ')})`, false) };
    try {
      // A function that ignores its signal must still not outlive a timeout or a cancel.
      let onAbort = (): void => undefined;
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(ctx.signal.reason as Error);
        if (ctx.signal.aborted) onAbort();
        else ctx.signal.addEventListener('abort', onAbort, { once: true });
      });
      try {
        const outputs = await Promise.race([fn(ctx.inputs, ctx), aborted]);
        if (outputs instanceof Waiting) return { ok: 'waiting', reason: outputs.reason };
        return { ok: true, outputs };
      } finally {
        ctx.signal.removeEventListener('abort', onAbort);
        aborted.catch(() => undefined);
      }
    } catch (e) {
      if (e instanceof StepError) return { ok: false, error: e };
      if (ctx.signal.aborted) return { ok: false, error: abortError(ctx) };
      return { ok: false, error: new StepError('AGENT_ERROR', errorMessage(e), true, {}, { cause: e }) };
    }
  }
}

export function abortError(ctx: ExecutionContext): StepError {
  const reason: unknown = ctx.signal.reason;
  if (reason instanceof StepError) return reason;
  return new StepError('STEP_ABORTED', errorMessage(reason ?? 'aborted'), true);
}
