/**
 * What a store tells an observer about its write transactions (the metrics registry listens; see
 * src/observability/metrics.ts). Optional everywhere: a store with no observer does no extra work,
 * not even a clock read.
 *
 * @example
 *   store.observeCommits({
 *     flushed: (tx, work) => pending.set(tx, work),
 *     committed: (kind, seconds, txs) => histogram.observe({ store: kind }, seconds),
 *   });
 */
import type { CommitResult, Completion, EventRow, LedgerTx, RunState } from './types.js';

/** One ledger operation's work, as it was flushed into its transaction (not yet committed). */
export interface FlushedWork {
  readonly events: readonly EventRow[];
  /** The run states the operation read or created, by id (as they are after it). */
  readonly runs: ReadonlyMap<string, RunState>;
  readonly result: CommitResult;
  /** A worker commit's completions (their measured durations). */
  readonly completions?: readonly Completion[] | undefined;
  /** Steps claimed fresh, with when each became ready (ms, the store's clock). */
  readonly claims?: ReadonlyArray<{ run_id: string; ready_at: number }> | undefined;
}

export interface CommitObserver {
  /** Inside a transaction: a ledger operation flushed its work (called before COMMIT). */
  flushed(tx: LedgerTx, work: FlushedWork): void;
  /**
   * After COMMIT: the transactions that committed together (a group commit lists several; one rolled
   * back to its savepoint is not listed), and how long the write transaction took, BEGIN to COMMIT.
   */
  committed(store: 'sqlite' | 'postgres', seconds: number, txs: readonly LedgerTx[]): void;
}

/** Store-wide numbers for the metrics' gauges, each read by an indexed query (see Store.queueGauges). */
export interface QueueGauges {
  /** Steps ready to run now (available) and not claimed. */
  ready_steps: number;
  /** When the oldest of them became available (ms, the store's clock), or null when none is. */
  oldest_ready_at: number | null;
  /** Workers not stopped whose heartbeat is recent (see Store.queueGauges). */
  live_workers: number;
  /** Approvals waiting for a decision. */
  pending_approvals: number;
  /** The store's clock when the numbers were read (ms). */
  now: number;
}
