/**
 * Client-side rate limits per provider: requests per minute and tokens per minute, as token buckets
 * that refill continuously. Vendors enforce their per-minute limits over shorter windows, so a
 * bucket holds one second's worth (at least one request): a burst does not spend a whole minute's
 * budget at once. Callers wait in order; a waiting call gives up when its abort signal fires.
 */

/** Sleep `ms`, or reject with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  if (ms <= 0 && !signal) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** What an aborted call throws: the signal's reason when it is an Error, else an AbortError. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return new DOMException(typeof reason === 'string' ? reason : 'The operation was aborted.', 'AbortError');
}

export class TokenBucket {
  private level: number;
  private last: number;
  private tail: Promise<void> = Promise.resolve();
  private readonly perMs: number;
  readonly capacity: number;

  constructor(
    readonly perMinute: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.perMs = perMinute / 60_000;
    this.capacity = Math.max(1, perMinute / 60);
    this.level = this.capacity;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    this.level = Math.min(this.capacity, this.level + (t - this.last) * this.perMs);
    this.last = t;
  }

  /**
   * Wait until the bucket holds `amount` (or is full, for an amount larger than it), then take it:
   * the level may go below zero, and later callers wait for it to refill. Resolves with the time waited.
   */
  take(amount: number, signal?: AbortSignal): Promise<number> {
    const start = this.now();
    const run = async (): Promise<number> => {
      for (;;) {
        if (signal?.aborted) throw abortReason(signal);
        this.refill();
        const need = Math.min(amount, this.capacity);
        if (this.level >= need) {
          this.level -= amount;
          return this.now() - start;
        }
        await sleep(Math.ceil((need - this.level) / this.perMs), signal);
      }
    };
    const turn = this.tail.then(run);
    this.tail = turn.then(
      () => undefined,
      () => undefined,
    );
    return signal ? raceAbort(turn, signal) : turn;
  }

  /** Put back (positive) or take more (negative) than was taken, once the real amount is known. */
  adjust(delta: number): void {
    this.refill();
    this.level = Math.min(this.capacity, this.level + delta);
  }
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    void p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** A provider's limits. One instance is shared by every model of the provider. */
export class RateLimiter {
  readonly requests: TokenBucket | undefined;
  readonly tokens: TokenBucket | undefined;

  constructor(limits: { requestsPerMinute?: number | undefined; tokensPerMinute?: number | undefined }, now?: () => number) {
    this.requests = limits.requestsPerMinute ? new TokenBucket(limits.requestsPerMinute, now) : undefined;
    this.tokens = limits.tokensPerMinute ? new TokenBucket(limits.tokensPerMinute, now) : undefined;
  }

  /** Wait for one request and `estimatedTokens`; resolves with the time waited. */
  async acquire(estimatedTokens: number, signal?: AbortSignal): Promise<number> {
    let waited = 0;
    if (this.requests) waited += await this.requests.take(1, signal);
    if (this.tokens) waited += await this.tokens.take(estimatedTokens, signal);
    return waited;
  }

  /** Correct the token bucket with what the call really used. */
  settle(estimatedTokens: number, actualTokens: number): void {
    this.tokens?.adjust(estimatedTokens - actualTokens);
  }
}
