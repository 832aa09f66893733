/**
 * HTTP for tools: one bounded request (shared by the `http_fetch` built-in and HTTP tools), and the
 * HTTP tool itself, which sends the model's arguments to a fixed endpoint.
 */
import { errorMessage } from '../../core/errors.js';
import { withTraceHeaders } from '../../observability/tracing.js';
import { NetworkGuard, NetworkRefusedError } from '../../net/guard.js';
import { tool, type Tool, type ToolContext } from '../agent.js';
import { ToolCallError, ToolLoadError } from './errors.js';
import { describeSpec, scalarMapToStrings, type HttpToolSpec } from './spec.js';

export const TOOL_HTTP_DEFAULT_MAX_BYTES = 100_000;
export const TOOL_HTTP_DEFAULT_TIMEOUT_MS = 30_000;
/** How much of an error response's body goes into the error message. */
const ERROR_BODY_CHARS = 1000;

export interface BoundedRequest {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  maxBytes: number;
  signal: AbortSignal;
  /** The network policy the request (and each redirect) must pass; default: public addresses only. */
  guard?: NetworkGuard;
}

/** The guard of requests whose caller gives none: nothing private, loopback or link-local. */
const PUBLIC_ONLY = new NetworkGuard();

export interface BoundedResponse {
  status: number;
  statusText: string;
  contentType: string;
  /** The body as text, cut at `maxBytes`. */
  text: string;
  truncated: boolean;
}

/**
 * One HTTP request whose response is read up to `maxBytes` (the rest is dropped and `truncated`
 * set): a model is better served by the start of a large page than by an error. Network failures
 * and timeouts throw `ToolCallError`; an abort of `signal` rethrows its reason.
 */
export async function boundedRequest(req: BoundedRequest): Promise<BoundedResponse> {
  const what = `${req.method} ${req.url.href}`;
  const signal = AbortSignal.any([req.signal, AbortSignal.timeout(req.timeoutMs)]);
  let res: Awaited<ReturnType<NetworkGuard['fetch']>>;
  try {
    res = await (req.guard ?? PUBLIC_ONLY).fetch(req.url, { method: req.method, headers: req.headers, ...(req.body !== undefined ? { body: req.body } : {}), signal });
  } catch (e) {
    throw requestFailure(e, req, what);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  try {
    if (res.body) {
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (size + value.byteLength > req.maxBytes) {
          chunks.push(value.subarray(0, req.maxBytes - size));
          size = req.maxBytes;
          truncated = true;
          await reader.cancel().catch(() => undefined);
          break;
        }
        chunks.push(value);
        size += value.byteLength;
      }
    }
  } catch (e) {
    throw requestFailure(e, req, what);
  }
  return {
    status: res.status,
    statusText: res.statusText,
    contentType: res.headers.get('content-type') ?? '',
    text: Buffer.concat(chunks).toString('utf8'),
    truncated,
  };
}

function requestFailure(e: unknown, req: BoundedRequest, what: string): unknown {
  if (req.signal.aborted) return req.signal.reason;
  if (e instanceof NetworkRefusedError) return new ToolCallError('NETWORK_REFUSED', e.message, e.context, { cause: e });
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) {
    return new ToolCallError('TOOL_HTTP_TIMEOUT', `${what} timed out after ${req.timeoutMs} ms`);
  }
  const cause = e instanceof Error && e.cause !== undefined ? e.cause : e;
  return new ToolCallError('TOOL_HTTP_FAILED', `${what} failed: ${errorMessage(cause)}`, {}, { cause: e });
}

/** The body as the model should see it: parsed JSON when the response is JSON (and complete), else text. */
export function responseBody(res: BoundedResponse, maxBytes: number): unknown {
  if (res.truncated) return `${res.text}\n[truncated: the response is larger than ${maxBytes} bytes]`;
  if (/\bjson\b/i.test(res.contentType)) {
    try {
      return JSON.parse(res.text) as unknown;
    } catch {
      return res.text;
    }
  }
  return res.text;
}

/** Parse a URL the tool may call: http and https only. */
export function httpUrl(text: string): URL | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `'${text}' is not a valid URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `only http and https URLs are allowed, not '${url.protocol}'`;
  return url;
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((h) => h.toLowerCase() === name);
}

/** Headers for a request that has side effects: the call's idempotency key, unless the configuration sets one. */
export function withIdempotencyKey(headers: Record<string, string>, method: string, ctx: ToolContext): Record<string, string> {
  if (method === 'GET' || method === 'HEAD' || hasHeader(headers, 'idempotency-key')) return headers;
  return { ...headers, 'idempotency-key': ctx.idempotencyKey };
}

/** An argument as text for a URL: objects as JSON, anything else as is. */
function argumentText(v: unknown): string {
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}

/** Append arguments to a URL's query string: arrays repeat the key, objects are sent as JSON. */
function addQuery(url: URL, args: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(args)) {
    if (v === undefined || v === null) continue;
    const values = Array.isArray(v) ? (v as unknown[]) : [v];
    for (const item of values) url.searchParams.append(k, argumentText(item));
  }
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** An HTTP tool (`{ http: { url, method, headers }, name, description, parameters }`). */
export function httpTool(spec: HttpToolSpec, index: number, guard?: NetworkGuard): Tool {
  const where = describeSpec(spec, index);
  const template = spec.http.url;
  const probe = httpUrl(template.replace(PLACEHOLDER, 'x'));
  if (typeof probe === 'string') throw new ToolLoadError('TOOL_SPEC_INVALID', `${where}: http.url: ${probe}`, false, { tool: spec.name });
  const method = spec.http.method ?? 'POST';
  const configured = scalarMapToStrings(spec.http.headers);
  const timeoutMs = spec.http.timeout_seconds !== undefined ? spec.http.timeout_seconds * 1000 : TOOL_HTTP_DEFAULT_TIMEOUT_MS;
  const maxBytes = spec.http.max_bytes ?? TOOL_HTTP_DEFAULT_MAX_BYTES;
  return tool({
    name: spec.name,
    description: spec.description,
    parameters: spec.parameters ?? { type: 'object', properties: {}, additionalProperties: false },
    ...(spec.needs_approval !== undefined ? { needsApproval: spec.needs_approval } : {}),
    async execute(args, ctx) {
      const rest: Record<string, unknown> = { ...args };
      const missing: string[] = [];
      const filled = template.replace(PLACEHOLDER, (_m, key: string) => {
        const v = rest[key];
        delete rest[key];
        if (v === undefined || v === null) {
          missing.push(key);
          return '';
        }
        return encodeURIComponent(argumentText(v));
      });
      if (missing.length) throw new ToolCallError('TOOL_ARGUMENTS_INVALID', `missing ${missing.map((m) => `'${m}'`).join(', ')} for the URL`);
      const url = new URL(filled);
      // The tool call's span travels with the request (W3C trace context), when tracing is on.
      let headers = withTraceHeaders(withIdempotencyKey({ ...configured }, method, ctx), ctx.traceContext);
      let body: string | undefined;
      if (method === 'GET' || method === 'DELETE') addQuery(url, rest);
      else {
        body = JSON.stringify(rest);
        if (!hasHeader(headers, 'content-type')) headers = { ...headers, 'content-type': 'application/json' };
      }
      if (!hasHeader(headers, 'accept')) headers = { ...headers, accept: 'application/json, text/plain;q=0.9, */*;q=0.8' };
      const res = await boundedRequest({ url, method, headers, ...(body !== undefined ? { body } : {}), timeoutMs, maxBytes, signal: ctx.signal, ...(guard ? { guard } : {}) });
      if (res.status < 200 || res.status > 299) {
        const text = res.text.length > ERROR_BODY_CHARS ? `${res.text.slice(0, ERROR_BODY_CHARS)}…` : res.text;
        throw new ToolCallError('TOOL_HTTP_STATUS', `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${text.trim() ? `: ${text.trim()}` : ''}`, { status: res.status });
      }
      return responseBody(res, maxBytes);
    },
  });
}
