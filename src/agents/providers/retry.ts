/**
 * The retry policy of model calls: a 429, a 408, a 5xx or a connection error is retried with
 * exponential backoff and jitter, or after the delay the vendor asks for (`retry-after-ms`,
 * `retry-after` in seconds or as an HTTP date), capped; anything else fails at once.
 */
import { APICallError } from 'ai';

/** What an observer learns before each retry (for logs). */
export interface RetryInfo {
  /** `provider/model`. */
  model: string;
  /** The retry about to happen (1 = the first retry). */
  attempt: number;
  maxRetries: number;
  /** How long the call waits before retrying. */
  delayMs: number;
  /** Whether the delay came from the vendor's Retry-After header. */
  fromRetryAfter: boolean;
  status: number | undefined;
  /** One line: what went wrong. */
  message: string;
}

export interface CallFailure {
  status: number | undefined;
  retryable: boolean;
  headers: Record<string, string> | undefined;
  message: string;
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Classify an error thrown by an AI SDK call. */
export function classifyFailure(e: unknown): CallFailure {
  if (APICallError.isInstance(e)) {
    const status = e.statusCode;
    // Without a status the request never got an answer: the SDK marks connection failures retryable.
    const retryable = status === undefined ? e.isRetryable : isRetryableStatus(status);
    return { status, retryable, headers: e.responseHeaders, message: oneLine(vendorMessage(e)) };
  }
  return { status: undefined, retryable: false, headers: undefined, message: oneLine(e instanceof Error ? e.message : String(e)) };
}

/** The vendor's own error message, when the body has one. */
function vendorMessage(e: APICallError): string {
  if (e.responseBody) {
    try {
      const body = JSON.parse(e.responseBody) as { error?: { message?: unknown } | string; message?: unknown };
      const m = typeof body.error === 'string' ? body.error : body.error?.message ?? body.message;
      if (typeof m === 'string' && m) return m;
    } catch {
      // not JSON: fall back to the SDK's message
    }
  }
  return e.message;
}

export function oneLine(s: string, max = 300): string {
  const line = s.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** The delay the vendor asked for, in ms, from `retry-after-ms` or `retry-after` (seconds or an HTTP date). */
export function retryAfterMs(headers: Record<string, string> | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = headers['retry-after-ms'];
  if (ms !== undefined && ms.trim() !== '') {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return n;
  }
  const after = headers['retry-after'];
  if (after !== undefined && after.trim() !== '') {
    const seconds = Number(after);
    if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
    const date = Date.parse(after);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  return undefined;
}

/**
 * The wait before retry number `attempt` (1-based): the vendor's Retry-After when given, else
 * exponential from `backoffMs` with equal jitter; both capped at `maxBackoffMs`.
 */
export function retryDelayMs(
  attempt: number,
  policy: { backoffMs: number; maxBackoffMs: number },
  headers: Record<string, string> | undefined,
  random: number = Math.random(),
): { delayMs: number; fromRetryAfter: boolean } {
  const asked = retryAfterMs(headers);
  if (asked !== undefined) return { delayMs: Math.min(Math.ceil(asked), policy.maxBackoffMs), fromRetryAfter: true };
  const exp = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** Math.max(0, attempt - 1));
  return { delayMs: Math.round(exp / 2 + (exp / 2) * random), fromRetryAfter: false };
}
