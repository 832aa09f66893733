/**
 * Retention: what the store keeps only for a while. Today that is custom events (`emitted_events`,
 * `swarm events emit`, `POST /api/v1/events`), kept `retention.emitted_events` (30 days by default)
 * so that a repeated event id is recognised; runs are kept until deleted.
 *
 * The schedule holder prunes (one process at a time, see scheduler.ts), at most once a minute, in
 * batches of `batchSize` rows, each its own short transaction, so neither writers nor the other
 * processes wait behind one long delete. A backlog larger than a pass may take (`budgetMs`) goes on
 * at the next pass instead of a minute later.
 *
 * An event id repeated after its record is pruned counts as a new event, but the runs it would
 * start are found by their idempotency keys (`event:<id>:<trigger>`) for as long as they exist: it
 * never starts a second run per trigger.
 *
 * @example
 *   const retention = new Retention(store, { emittedEventsMs: 30 * 86_400_000 });
 *   await retention.prune(); // 0 when the last pruning was less than a minute ago
 */
import { performance } from 'node:perf_hooks';

/** The slice of the store the retention uses. */
export interface RetentionStore {
  pruneEmittedEvents(before: number, limit: number): Promise<number>;
}

export interface RetentionOptions {
  /** How long custom events are kept, in ms (`retention.emitted_events`). */
  emittedEventsMs: number;
  /** Rows deleted per transaction (default 1,000). */
  batchSize?: number;
  /** The least time between two prunings (default 60 s). */
  everyMs?: number;
  /** How long one pruning may go on before leaving the rest to the next pass (default 500 ms). */
  budgetMs?: number;
  /** The wall clock the cutoff is computed from (default `Date.now`; `created_at` is written with it). */
  now?: () => number;
}

export const RETENTION_BATCH_SIZE = 1_000;
export const RETENTION_EVERY_MS = 60_000;
export const RETENTION_BUDGET_MS = 500;

export class Retention {
  private readonly batchSize: number;
  private readonly everyMs: number;
  private readonly budgetMs: number;
  private readonly now: () => number;
  /** When (`now()`) the next pruning may start; 0: at once. */
  private nextAt = 0;

  constructor(
    private readonly store: RetentionStore,
    private readonly options: RetentionOptions,
  ) {
    this.batchSize = options.batchSize ?? RETENTION_BATCH_SIZE;
    this.everyMs = options.everyMs ?? RETENTION_EVERY_MS;
    this.budgetMs = options.budgetMs ?? RETENTION_BUDGET_MS;
    this.now = options.now ?? Date.now;
  }

  /** Prune what is past its retention, if it is time to; returns how many rows were deleted. */
  async prune(): Promise<number> {
    const now = this.now();
    if (now < this.nextAt) return 0;
    const before = now - this.options.emittedEventsMs;
    const started = performance.now();
    let deleted = 0;
    for (;;) {
      const n = await this.store.pruneEmittedEvents(before, this.batchSize);
      deleted += n;
      if (n < this.batchSize) {
        this.nextAt = now + this.everyMs;
        return deleted;
      }
      // More to do: past the budget, the next pass (not the next minute) goes on with it.
      if (performance.now() - started >= this.budgetMs) return deleted;
    }
  }
}
