/**
 * The retention policy (`retention:` in swarm.yaml) that `swarm serve` applies: every `interval`, one
 * process at a time runs the same garbage collection as `swarm gc` (gc.ts) with the policy's ages,
 * archive and batch size, and logs what it did.
 *
 * One at a time: a pass first takes the store's `retention` lease (the mechanism of the schedule
 * lease, src/triggers/scheduler.ts), renews it after every batch and releases it at the end. A serve
 * that does not get it skips the pass; one that loses it mid-pass (it stalled longer than the lease)
 * stops after the batch in hand. Every serve keeps its own timer, so whichever is alive does the work.
 *
 * @example
 *   const policy = new RetentionPolicy(swarm.store, { holder: 'serve-1', ages: { completed: 30 * DAY_MS }, intervalMs: 3_600_000 });
 *   const done = policy.start();
 *   // … on SIGTERM:
 *   await policy.stop();
 *   await done;
 */
import type { Store } from '../store/store.js';
import { collectGarbage, type GcOptions, type GcReport } from './gc.js';
import { describeSize } from './report.js';

export const RETENTION_LEASE = 'retention';
/** How long the lease lasts unrenewed: a pass renews it after every batch (each a short transaction). */
export const RETENTION_LEASE_TTL_MS = 60_000;

export interface RetentionPolicyOptions {
  /** Who holds the lease: the serving process's id. */
  holder: string;
  /** How long runs are kept after they finish, per status (ms). */
  ages: GcOptions['ages'];
  /** Time between passes (ms). */
  intervalMs: number;
  archive?: string | undefined;
  batch?: number | undefined;
  leaseTtlMs?: number;
  /** Compact checkpoints of sessions idle this long (default gc's). */
  compactAfterMs?: number;
  log?: (line: string) => void;
}

export class RetentionPolicy {
  private stopping = false;
  private wake: () => void = () => undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly options: RetentionPolicyOptions,
  ) {}

  /** Run passes until `stop()`: the first at once, then every interval. */
  start(): Promise<void> {
    this.loop ??= (async () => {
      while (!this.stopping) {
        await this.pass().catch((e: unknown) => this.log(`retention: the pass failed: ${(e as Error).message}`));
        if (this.stopping) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.options.intervalMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    })();
    return this.loop;
  }

  /** Stop after the batch in hand and release the lease. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.wake();
    await this.loop;
  }

  /** One pass, if this process gets the lease; the report, or undefined when another holds it. */
  async pass(): Promise<GcReport | undefined> {
    const { holder } = this.options;
    const ttl = this.options.leaseTtlMs ?? RETENTION_LEASE_TTL_MS;
    if (!(await this.store.acquireLease(RETENTION_LEASE, holder, ttl)).acquired) return undefined;
    const lost = new AbortController();
    const stopped = (): void => lost.abort();
    this.abort.signal.addEventListener('abort', stopped);
    try {
      const report = await collectGarbage(this.store, {
        ages: this.options.ages,
        archive: this.options.archive,
        ...(this.options.batch !== undefined ? { batch: this.options.batch } : {}),
        ...(this.options.compactAfterMs !== undefined ? { compactAfterMs: this.options.compactAfterMs } : {}),
        signal: lost.signal,
        onBatch: async () => {
          if (!(await this.store.acquireLease(RETENTION_LEASE, holder, ttl)).acquired) {
            this.log('retention: lost the retention lease to another process; stopping this pass');
            lost.abort();
          }
        },
      });
      if (report.runs > 0 || report.checkpoints.compacted > 0) {
        this.log(
          `retention: deleted ${report.runs} finished run(s) (${report.trees} top-level) in ${report.batches} batch(es)` +
            `${report.archived ? `, archived to ${this.options.archive ?? ''}` : ''}; ${report.checkpoints.compacted} checkpoint(s) compacted; ` +
            `database ${describeSize(report.size_before)} before, ${describeSize(report.size_after)} after`,
        );
      }
      return report;
    } finally {
      this.abort.signal.removeEventListener('abort', stopped);
      await this.store.releaseLease(RETENTION_LEASE, holder).catch(() => false);
    }
  }

  private log(line: string): void {
    this.options.log?.(line);
  }
}
