/**
 * The client of a remote executor (docs/executor-api.yaml): one HTTP request per call, bounded by a
 * timeout (for `/execute`, the request's deadline), the caller's abort signal, a W3C `traceparent`,
 * and an optional bearer token. Every response is checked against the contract before it is
 * returned. Failures are ExecutorErrors (StepErrors) with stable codes and a `retryable` flag:
 *
 *   EXECUTOR_UNREACHABLE   connection refused, DNS, reset          retryable
 *   EXECUTOR_TIMEOUT       no answer within the timeout/deadline   retryable
 *   EXECUTOR_HTTP_ERROR    a non-2xx status (`status` set)         retryable for 5xx, 408 and 429 only
 *   EXECUTOR_BAD_RESPONSE  not JSON, or not what the contract says not retryable
 *   EXECUTOR_ABORTED       the caller's signal fired               retryable (the caller decides)
 *
 * @example
 *   const client = createExecutorClient({ name: 'rt', base_url: 'http://127.0.0.1:8787' }, { token: 's3cret' });
 *   const caps = await client.capabilities();
 *   const answer = await client.execute({ task_id: 't1', task_type: 'echo', inputs: { prompt: 'hi' }, idempotency_key: 't1/1', deadline_ms: Date.now() + 30_000 });
 */
import { randomBytes } from 'node:crypto';
import { StepError, UserError, errorMessage } from '../../core/errors.js';
import type { ExecuteRequest, ExecuteResponse, ExecutorCallOptions, ExecutorCapabilities, ExecutorClient, ExecutorHealth, ExecutorRecord, VerifyRequest, VerifyResponse } from './contract.js';
import { contractValidator, type ContractSchemaName } from './schemas.js';

/** The stable codes of executor call failures. */
export const EXECUTOR_ERROR_CODES = {
  UNREACHABLE: 'EXECUTOR_UNREACHABLE',
  TIMEOUT: 'EXECUTOR_TIMEOUT',
  HTTP_ERROR: 'EXECUTOR_HTTP_ERROR',
  BAD_RESPONSE: 'EXECUTOR_BAD_RESPONSE',
  ABORTED: 'EXECUTOR_ABORTED',
  UNKNOWN: 'EXECUTOR_UNKNOWN',
} as const;
export type ExecutorErrorCode = (typeof EXECUTOR_ERROR_CODES)[keyof typeof EXECUTOR_ERROR_CODES];

/** Timeout of `/health`, `/capabilities` and `/verify` when the caller gives none. */
export const DEFAULT_EXECUTOR_TIMEOUT_MS = 30_000;
/** The largest response body read from an executor. */
export const MAX_EXECUTOR_RESPONSE_BYTES = 8 * 1024 * 1024;

/** A failed executor call: `code` (EXECUTOR_ERROR_CODES), `retryable`, the HTTP `status` when there was one. */
export class ExecutorError extends StepError {
  readonly status: number | undefined;
  constructor(code: ExecutorErrorCode, message: string, retryable: boolean, context: { executor: string; status?: number; [k: string]: unknown }, options?: { cause?: unknown }) {
    super(code, message, retryable, context, options);
    this.status = context.status;
  }
}

/** An executor name that is not registered (exit 2). */
export class UnknownExecutorError extends UserError {
  constructor(name: string, registered: readonly string[]) {
    const hint = registered.length ? `registered: ${registered.join(', ')}` : 'none is registered';
    super(EXECUTOR_ERROR_CODES.UNKNOWN, `executor '${name}' is not registered (${hint}); add it with 'swarm executors add ${name} <base_url>'`, { executor: name });
  }
}

/** An executor's name: what `swarm executors add` accepts. */
export const EXECUTOR_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Check an executor's base URL: http or https, a host, no credentials (tokens go in a secret,
 * `--token-secret`), no query or fragment. Returns it without trailing slashes; throws UserError
 * EXECUTOR_URL_INVALID naming what is wrong.
 *
 * @example
 *   checkBaseUrl('http://127.0.0.1:8787/');  // 'http://127.0.0.1:8787'
 */
export function checkBaseUrl(raw: string): string {
  const bad = (why: string): UserError => new UserError('EXECUTOR_URL_INVALID', `'${raw}' is not a valid executor URL: ${why}`, { field: 'base_url' });
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw bad('write it as http://host:port or https://host/path');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw bad(`the scheme must be http or https, not ${u.protocol.replace(/:$/, '')}`);
  if (!u.hostname) throw bad('it has no host');
  if (u.username || u.password) throw bad('it must not carry credentials; put a bearer token in a secret and pass --token-secret NAME');
  if (u.search || u.hash) throw bad('it must not have a query or a fragment');
  return u.toString().replace(/\/+$/, '');
}

/** Check an executor's name (UserError EXECUTOR_NAME_INVALID). */
export function checkExecutorName(name: string): void {
  if (!EXECUTOR_NAME_PATTERN.test(name)) {
    throw new UserError('EXECUTOR_NAME_INVALID', `'${name}' is not a valid executor name: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`, { field: 'name' });
  }
}

/** A W3C traceparent for a call made outside any span: the trace id from `seed` (a run id's 32 hex digits) when it has them, else random. */
export function newTraceparent(seed?: string): string {
  const hex = seed?.replace(/-/g, '').toLowerCase();
  const traceId = hex && /^[0-9a-f]{32}$/.test(hex) && !/^0+$/.test(hex) ? hex : randomBytes(16).toString('hex');
  return `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
}

export interface ExecutorClientOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** The fetch to use (tests, a proxy); default the global one. */
  fetch?: typeof fetch;
  /** Timeout of calls that give none (default DEFAULT_EXECUTOR_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** A client with the record it was made from. */
export interface ResolvedExecutorClient extends ExecutorClient {
  readonly record: Pick<ExecutorRecord, 'name' | 'base_url'> & Partial<ExecutorRecord>;
}

/**
 * A typed client of one executor.
 *
 * @example
 *   const client = createExecutorClient({ name: 'rt', base_url: 'http://127.0.0.1:8787' });
 *   await client.health({ timeout_ms: 2000 });
 */
export function createExecutorClient(record: Pick<ExecutorRecord, 'name' | 'base_url'> & Partial<ExecutorRecord>, options: ExecutorClientOptions = {}): ResolvedExecutorClient {
  const base = record.base_url.replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  const defaultTimeout = options.timeoutMs ?? DEFAULT_EXECUTOR_TIMEOUT_MS;
  const name = record.name;

  const call = async <T>(method: 'GET' | 'POST', path: string, schema: ContractSchemaName, body: unknown, opts: ExecutorCallOptions, deadlineMs?: number): Promise<T> => {
    const url = `${base}${path}`;
    const ctx = { executor: name, url };
    let timeoutMs = opts.timeout_ms ?? defaultTimeout;
    if (deadlineMs !== undefined) timeoutMs = Math.min(timeoutMs, deadlineMs - Date.now());
    if (timeoutMs <= 0) throw new ExecutorError(EXECUTOR_ERROR_CODES.TIMEOUT, `executor '${name}': the deadline passed before ${method} ${path} was sent`, true, ctx);
    if (opts.signal?.aborted) throw aborted(opts.signal, name, ctx);
    const timer = new AbortController();
    const t = setTimeout(() => timer.abort(), timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timer.signal]) : timer.signal;
    const headers: Record<string, string> = { accept: 'application/json', traceparent: opts.traceparent ?? newTraceparent() };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let res: Response;
    let text: string;
    try {
      try {
        res = await doFetch(url, { method, headers, signal, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      } catch (e) {
        if (opts.signal?.aborted) throw aborted(opts.signal, name, ctx);
        if (timer.signal.aborted) throw timedOut(name, method, path, timeoutMs, ctx);
        throw new ExecutorError(EXECUTOR_ERROR_CODES.UNREACHABLE, `executor '${name}' at ${base} is unreachable: ${networkReason(e)}`, true, ctx, { cause: e });
      }
      try {
        text = await readLimited(res, MAX_EXECUTOR_RESPONSE_BYTES);
      } catch (e) {
        if (opts.signal?.aborted) throw aborted(opts.signal, name, ctx);
        if (timer.signal.aborted) throw timedOut(name, method, path, timeoutMs, ctx);
        if (e instanceof ExecutorError) throw e;
        throw new ExecutorError(EXECUTOR_ERROR_CODES.UNREACHABLE, `executor '${name}': the connection broke while reading the answer to ${method} ${path}: ${networkReason(e)}`, true, ctx, { cause: e });
      }
    } finally {
      clearTimeout(t);
    }
    if (!res.ok) {
      const detail = problemDetail(text);
      const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
      throw new ExecutorError(
        EXECUTOR_ERROR_CODES.HTTP_ERROR,
        `executor '${name}' answered ${method} ${path} with HTTP ${res.status}${detail ? `: ${detail}` : ''}`,
        retryable,
        { ...ctx, status: res.status, ...(detail ? { detail } : {}) },
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ExecutorError(EXECUTOR_ERROR_CODES.BAD_RESPONSE, `executor '${name}' answered ${method} ${path} with something that is not JSON: ${JSON.stringify(text.slice(0, 120))}`, false, ctx);
    }
    const problems = contractValidator(schema)(parsed);
    if (problems.length) {
      throw new ExecutorError(EXECUTOR_ERROR_CODES.BAD_RESPONSE, `executor '${name}' answered ${method} ${path} with a malformed ${schema}: ${problems.join('; ')}`, false, { ...ctx, problems });
    }
    return parsed as T;
  };

  return {
    name,
    record,
    health: (opts = {}) => call<ExecutorHealth>('GET', '/health', 'ExecutorHealth', undefined, opts),
    capabilities: (opts = {}) => call<ExecutorCapabilities>('GET', '/capabilities', 'ExecutorCapabilities', undefined, opts),
    execute: (req: ExecuteRequest, opts = {}) => call<ExecuteResponse>('POST', '/execute', 'ExecuteResponse', req, opts, req.deadline_ms),
    verify: (req: VerifyRequest, opts = {}) => call<VerifyResponse>('POST', '/verify', 'VerifyResponse', req, opts),
  };
}

function timedOut(name: string, method: string, path: string, ms: number, ctx: { executor: string; url: string }): ExecutorError {
  return new ExecutorError(EXECUTOR_ERROR_CODES.TIMEOUT, `executor '${name}' did not answer ${method} ${path} within ${ms} ms`, true, { ...ctx, timeout_ms: ms });
}

function aborted(signal: AbortSignal, name: string, ctx: { executor: string; url: string }): StepError {
  const reason: unknown = signal.reason;
  // The step's own reason (its timeout, a cancellation) stands as it is.
  if (reason instanceof StepError) return reason;
  return new ExecutorError(EXECUTOR_ERROR_CODES.ABORTED, `call to executor '${name}' aborted: ${errorMessage(reason ?? 'aborted')}`, true, ctx);
}

/** What went wrong on the wire, in a few words (undici hides it in `cause`). */
function networkReason(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } } | null)?.cause;
  if (cause?.code) return `${cause.code}${cause.message ? ` (${cause.message})` : ''}`;
  return errorMessage(cause ?? e);
}

/** The body as text, refusing more than `max` bytes. */
async function readLimited(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw new ExecutorError(EXECUTOR_ERROR_CODES.BAD_RESPONSE, `the answer is ${declared} bytes, more than the ${max} an executor may send`, false, { executor: '' });
  }
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > max) throw new ExecutorError(EXECUTOR_ERROR_CODES.BAD_RESPONSE, `the answer is more than the ${max} bytes an executor may send`, false, { executor: '' });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `detail` (or `title`) of a problem+json body, else the body's start. */
function problemDetail(text: string): string {
  try {
    const p = JSON.parse(text) as { detail?: unknown; title?: unknown; code?: unknown };
    const d = typeof p.detail === 'string' ? p.detail : typeof p.title === 'string' ? p.title : '';
    return `${typeof p.code === 'string' ? `${p.code}: ` : ''}${d}`.slice(0, 500);
  } catch {
    return text.trim().slice(0, 200);
  }
}
