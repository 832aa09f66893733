/**
 * The scheduler: fires the schedule triggers of enabled workflows, in exactly one process at a time.
 *
 * - **One firer.** Every `swarm serve` runs a Scheduler; only the holder of the store's `scheduler`
 *   lease fires. The holder renews it every `renewEveryMs` (5 s); the others try to take it at the
 *   same pace and succeed once it has expired (`leaseTtlMs`, 15 s, on the store's clock), so a dead
 *   holder is replaced within about TTL + renew interval. Stopping releases it at once.
 * - **One run per tick.** A tick's run is created with the idempotency key `schedule:<id>:<tick ISO>`
 *   (unique in the store): a holder that fires a tick another already fired, or a holder that
 *   crashed after creating a run but before recording `last_fired_at`, gets the existing run back.
 * - **Bounded catch-up.** The ticks due are decided by `dueTicks` from `last_fired_at` (or the
 *   trigger's creation) and the catch-up policy: at most `max_runs` after any outage.
 * - **Buffered ticks survive failover.** `buffer_one` holds a tick back in the store
 *   (`buffered_tick`, set before the tick is recorded as fired), so whichever process holds the lease
 *   when the active run ends starts it, once: its key is the tick's, like any other.
 * - **Retention.** The holder also prunes custom events past `retention.emitted_events`, at most
 *   once a minute, in short batches (retention.ts).
 * - **Sleeping.** Between passes the loop sleeps until the earliest `next_run_at`, at most `pollMs`
 *   (another process may register a schedule) and never past the next lease renewal; `wake()`
 *   (registrations, pause, resume in this process) cuts the sleep short.
 *
 * The pure decisions live in schedule.ts; this file only reads the store, starts runs and waits.
 *
 * @example
 *   const scheduler = new Scheduler(host, { holder: 'serve-1' });
 *   const done = scheduler.start();
 *   // … on SIGTERM:
 *   await scheduler.stop(); // releases the lease
 *   await done;
 */
import { performance } from 'node:perf_hooks';
import { PolicyError, UserError } from '../core/errors.js';
import type { RunStatus } from '../core/states.js';
import type { LogSink } from '../observability/log-fields.js';
import type { LeaseRecord, RunFilter, RunRecord, TriggerFilter, TriggerRecord } from '../store/types.js';
import { Retention, type RetentionOptions, type RetentionStore } from './retention.js';
import { decideOverlap, DEFAULT_TICK_GRACE_MS, dueTicks, parseScheduleSpec, tickKey, type ScheduleSpec } from './schedule.js';
import type { EngineMetrics } from '../observability/engine-metrics.js';

/** The lease that makes one process the scheduler. */
export const SCHEDULER_LEASE = 'scheduler';
export const SCHEDULER_LEASE_TTL_MS = 15_000;
export const SCHEDULER_RENEW_MS = 5_000;
/** The longest the loop sleeps: how soon a schedule registered by another process is seen. */
export const SCHEDULER_POLL_MS = 1_000;

/** Run statuses that count as "a run of the schedule is still active" for the overlap policy. */
const ACTIVE: readonly RunStatus[] = ['queued', 'running', 'waiting'];

/** The slice of the store the scheduler uses. */
export interface SchedulerStore extends RetentionStore {
  listTriggers(filter?: TriggerFilter): Promise<TriggerRecord[]>;
  updateScheduleState(id: string, state: { last_fired_at?: number; next_run_at: number | null }): Promise<void>;
  swapScheduleBuffer(id: string, expected: number | null, next: number | null): Promise<boolean>;
  acquireLease(name: string, holder: string, ttlMs: number): Promise<LeaseRecord & { acquired: boolean }>;
  releaseLease(name: string, holder: string): Promise<boolean>;
  listRuns(filter: RunFilter): Promise<RunRecord[]>;
}

/** What the scheduler needs from Swarm: its store, and the public way to start and cancel runs. */
export interface SchedulerHost {
  store: SchedulerStore;
  createRun(workflow: string, input: unknown, options: { trigger_type: 'schedule'; idempotencyKey?: string }): Promise<{ runId: string; created: boolean }>;
  cancel(runId: string, reason: string): Promise<unknown>;
}

/** Time as the scheduler sees it: injectable, so tests move it by hours in a millisecond. */
export interface SchedulerClock {
  now(): number;
  /** Wait `ms`, or until `wake` resolves. */
  sleep(ms: number, wake: Promise<void>): Promise<void>;
}

export const systemClock: SchedulerClock = {
  now: () => Date.now(),
  sleep: (ms, wake) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, ms));
      void wake.then(() => {
        clearTimeout(timer);
        resolve();
      });
    }),
};

export interface SchedulerOptions {
  /** Who holds the lease: the serving process's id. */
  holder: string;
  /** How long a lease lasts without renewal (default 15 s). */
  leaseTtlMs?: number;
  /** How often the holder renews and the others try to take over (default 5 s, at most a third of the TTL). */
  renewEveryMs?: number;
  /** The longest sleep between passes (default 1 s). */
  pollMs?: number;
  /** How late a tick may be seen and still count as on time (default 60 s, see schedule.ts). */
  graceMs?: number;
  clock?: SchedulerClock;
  /** Where the scheduler says what it did (a tick fired, skipped, dropped; the lease taken or lost). */
  log?: LogSink;
  /** Counts schedule fires by outcome (default: none). */
  metrics?: Pick<EngineMetrics, 'scheduleFire'>;
  /** What the holder prunes, and after how long (`Swarm.scheduler` passes `retention:` of swarm.yaml); none when absent. */
  retention?: RetentionOptions;
}

/** What one pass did, for tests and logs. */
export interface PassReport {
  holder: boolean;
  /** Runs started (or found, for a tick fired before), by tick key. */
  fired: Array<{ key: string; runId: string; created: boolean }>;
  skipped: string[];
  buffered: string[];
  /** Schedules whose catch-up policy dropped missed ticks. */
  dropped: string[];
  /** The earliest next tick of any schedule (ms), or null. */
  nextAt: number | null;
  /** Custom events pruned by the retention in this pass. */
  pruned: number;
}

export class Scheduler {
  private readonly ttlMs: number;
  private readonly renewMs: number;
  private readonly pollMs: number;
  private readonly clock: SchedulerClock;
  private readonly log: LogSink;
  /** Until when (performance.now()) the lease is ours for sure: its TTL counted from before the request. */
  private leaseValidUntil = 0;
  private lastRenewAt = Number.NEGATIVE_INFINITY;
  private wasHolder = false;
  private stopping = false;
  private wakeUp: () => void = () => undefined;
  private wakePromise: Promise<void>;
  private loop: Promise<void> | undefined;
  private readonly retention: Retention | undefined;

  constructor(
    private readonly host: SchedulerHost,
    private readonly options: SchedulerOptions,
  ) {
    if (options.holder === '') throw new UserError('SCHEDULER_HOLDER_EMPTY', 'the scheduler needs a holder id (the serving process id)');
    this.ttlMs = options.leaseTtlMs ?? SCHEDULER_LEASE_TTL_MS;
    this.renewMs = Math.min(options.renewEveryMs ?? SCHEDULER_RENEW_MS, Math.floor(this.ttlMs / 3));
    this.pollMs = options.pollMs ?? SCHEDULER_POLL_MS;
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? (() => undefined);
    this.wakePromise = this.newWake();
    this.retention = options.retention ? new Retention(host.store, options.retention) : undefined;
  }

  get holder(): string {
    return this.options.holder;
  }

  /** Does this process hold the lease (as of its last renewal, and not expired since)? */
  get isHolder(): boolean {
    return this.wasHolder && performance.now() < this.leaseValidUntil;
  }

  private newWake(): Promise<void> {
    return new Promise((resolve) => {
      this.wakeUp = resolve;
    });
  }

  /** Cut the current sleep short: registrations changed, a schedule was paused or resumed. */
  wake(): void {
    this.wakeUp();
  }

  /** Run passes until `stop()`; resolves once stopped (the lease released). */
  start(): Promise<void> {
    this.loop ??= this.run();
    return this.loop;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      let sleepMs: number;
      try {
        const report = await this.pass();
        failures = 0;
        const now = this.clock.now();
        const untilRenew = this.lastRenewAt + this.renewMs - performance.now();
        sleepMs = Math.min(this.pollMs, Math.max(0, untilRenew), report.nextAt === null ? Number.POSITIVE_INFINITY : Math.max(0, report.nextAt - now));
      } catch (e) {
        // The store is unreachable or busy: back off, keep trying (the lease lapses if it lasts).
        failures++;
        this.log(`scheduler: ${(e as Error).message}`);
        sleepMs = Math.min(this.renewMs, 100 * 2 ** Math.min(failures, 6));
      }
      if (this.stopping) break;
      await this.clock.sleep(sleepMs, this.wakePromise);
      this.wakePromise = this.newWake();
    }
    if (this.wasHolder) {
      this.wasHolder = false;
      await this.host.store.releaseLease(SCHEDULER_LEASE, this.holder).catch(() => false);
      this.log(`scheduler: ${this.holder} released the schedule lease`);
    }
  }

  /** Stop the loop and release the lease (the next process takes over at once, not after the TTL). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    if (this.loop) await this.loop;
    else if (this.wasHolder) await this.host.store.releaseLease(SCHEDULER_LEASE, this.holder).catch(() => false);
  }

  /** Take or renew the lease when it is time to; returns whether this process may fire now. */
  private async holdLease(): Promise<boolean> {
    const started = performance.now();
    // Renew (or, standing by, try to take over) once per renew interval, not on every pass: on
    // SQLite even a refused attempt is a write transaction.
    if (started - this.lastRenewAt < this.renewMs) {
      if (!this.wasHolder) return false;
      if (started < this.leaseValidUntil) return true;
    }
    const lease = await this.host.store.acquireLease(SCHEDULER_LEASE, this.holder, this.ttlMs);
    this.lastRenewAt = started;
    if (lease.acquired) {
      if (!this.wasHolder) this.log(`scheduler: ${this.holder} holds the schedule lease; schedules fire here`);
      this.wasHolder = true;
      this.leaseValidUntil = started + this.ttlMs;
      return true;
    }
    if (this.wasHolder) this.log(`scheduler: ${this.holder} lost the schedule lease to ${lease.holder}`);
    this.wasHolder = false;
    return false;
  }

  /**
   * One pass: hold the lease, then fire every due tick of every enabled, unpaused schedule by its
   * overlap policy, and record `last_fired_at` / `next_run_at`.
   */
  async pass(): Promise<PassReport> {
    const report: PassReport = { holder: false, fired: [], skipped: [], buffered: [], dropped: [], nextAt: null, pruned: 0 };
    if (!(await this.holdLease())) return report;
    report.holder = true;
    const schedules = await this.host.store.listTriggers({ type: 'schedule' });
    for (const t of schedules) {
      const parsed = parseScheduleSpec(t.config);
      if (!t.enabled || t.paused || !parsed.ok) {
        // A schedule disabled or paused drops its buffered tick (as one removed does, with its row).
        if (t.buffered_tick !== null) await this.host.store.swapScheduleBuffer(t.id, t.buffered_tick, null);
        if (!parsed.ok && t.enabled && !t.paused) this.log(`scheduler: schedule of ${t.workflow_name} is not valid (${parsed.problems[0]?.problem ?? '?'}); register it again`);
        continue;
      }
      const buffered = await this.fireBuffered(t, parsed.spec, report);
      const now = this.clock.now();
      if (t.next_run_at !== null && t.next_run_at > now && (t.last_fired_at ?? 0) <= now) {
        report.nextAt = Math.min(report.nextAt ?? t.next_run_at, t.next_run_at);
        continue;
      }
      await this.fireDue(t, parsed.spec, now, buffered, report);
    }
    await this.prune(report);
    return report;
  }

  /** Fire (or skip, or buffer) the ticks due; `buffered`: a tick of this schedule is held back already. */
  /** The retention, after the schedules (a failure is logged: it must not hold up the ticks). */
  private async prune(report: PassReport): Promise<void> {
    if (!this.retention) return;
    try {
      report.pruned = await this.retention.prune();
      if (report.pruned > 0) this.log(`scheduler: pruned ${report.pruned} custom event(s) past retention.emitted_events`);
    } catch (e) {
      this.log(`scheduler: pruning custom events failed: ${(e as Error).message}`);
    }
  }

  private async fireDue(t: TriggerRecord, spec: ScheduleSpec, now: number, buffered: boolean, report: PassReport): Promise<void> {
    const { due, dropped, nextRunAt } = dueTicks(spec, {
      lastFiredAt: t.last_fired_at === null ? null : new Date(t.last_fired_at),
      createdAt: new Date(t.created_at),
      now: new Date(now),
      graceMs: this.options.graceMs ?? DEFAULT_TICK_GRACE_MS,
    });
    if (dropped) {
      report.dropped.push(t.id);
      this.options.metrics?.scheduleFire(t.workflow_name, 'missed');
      this.log(`scheduler: ${t.workflow_name}: missed ticks dropped by catchup policy ${spec.catchup.policy}${due.length ? `; firing ${due.length}` : ''}`);
    }
    const next = nextRunAt?.getTime() ?? null;
    for (const tick of due) {
      const key = tickKey(t.id, tick);
      let action = spec.overlap === 'allow_all' ? 'start' : decideOverlap(spec.overlap, { active: (await this.activeRuns(t)).length > 0, buffered });
      // Held back in the store before the tick counts as fired: a crash in between loses nothing
      // (the tick is decided again, and finds itself buffered). Refused: another scheduler buffered one.
      if (action === 'buffer' && !(await this.host.store.swapScheduleBuffer(t.id, null, tick.getTime()))) action = 'skip';
      if (action === 'skip') {
        report.skipped.push(key);
        this.options.metrics?.scheduleFire(t.workflow_name, 'skipped');
        this.log(`scheduler: ${t.workflow_name}: tick ${tick.toISOString()} skipped (a run is still active; overlap ${spec.overlap})`);
      } else if (action === 'buffer') {
        buffered = true;
        report.buffered.push(key);
      } else {
        if (action === 'cancel_others') {
          for (const run of await this.activeRuns(t)) await this.host.cancel(run.id, `replaced by the run of tick ${tick.toISOString()} (overlap cancel_other)`).catch(() => undefined);
        }
        await this.startTick(t, tick, report);
      }
      // The tick is decided: a skipped or buffered one counts as fired too (it is not missed).
      await this.host.store.updateScheduleState(t.id, { last_fired_at: tick.getTime(), next_run_at: next });
    }
    if (!due.length) await this.host.store.updateScheduleState(t.id, { next_run_at: next });
    if (next !== null) report.nextAt = Math.min(report.nextAt ?? next, next);
  }

  /**
   * `buffer_one`: start the buffered tick once the schedule's active run has ended, then clear it.
   * Started but not cleared (a crash, a lost lease): the next pass finds the tick's own run active,
   * waits for it, and its start returns that run (same key) before clearing. Returns whether a
   * tick is still held back.
   */
  private async fireBuffered(t: TriggerRecord, spec: ScheduleSpec, report: PassReport): Promise<boolean> {
    if (t.buffered_tick === null) return false;
    if (spec.overlap === 'buffer_one') {
      if ((await this.activeRuns(t)).length > 0) return true;
      await this.startTick(t, new Date(t.buffered_tick), report);
    }
    await this.host.store.swapScheduleBuffer(t.id, t.buffered_tick, null);
    return false;
  }

  private async startTick(t: TriggerRecord, tick: Date, report: PassReport): Promise<void> {
    const key = tickKey(t.id, tick);
    const input = { scheduled_at: tick.toISOString(), fired_at: new Date(this.clock.now()).toISOString() };
    try {
      const { runId, created } = await this.host.createRun(t.workflow_name, input, { trigger_type: 'schedule', idempotencyKey: key });
      report.fired.push({ key, runId, created });
      if (created) this.options.metrics?.scheduleFire(t.workflow_name, 'started');
      if (created) this.log(`scheduler: ${t.workflow_name}: tick ${tick.toISOString()} started run ${runId}`, { run_id: runId, workflow: t.workflow_name });
    } catch (e) {
      // A refusal (disabled meanwhile, input the workflow does not accept) would be refused again:
      // the tick is recorded as fired and the reason logged. Anything else (the store) is retried.
      if (!(e instanceof UserError || e instanceof PolicyError)) throw e;
      report.skipped.push(key);
      this.options.metrics?.scheduleFire(t.workflow_name, 'skipped');
      this.log(`scheduler: ${t.workflow_name}: tick ${tick.toISOString()} not started: ${e.message}`);
    }
  }

  /** Runs this schedule started that are still active (newest first). */
  private async activeRuns(t: TriggerRecord): Promise<RunRecord[]> {
    const out: RunRecord[] = [];
    for (const status of ACTIVE) {
      for (const run of await this.host.store.listRuns({ workflow: t.workflow_name, status, limit: 100 })) if (run.trigger_type === 'schedule') out.push(run);
    }
    return out;
  }
}
