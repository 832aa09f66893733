import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { RUN_ENDED, StepError, errorMessage, isStoreFault, type StoreFaultError } from '../core/errors.js';
import { TERMINAL_RUN, type RunStatus } from '../core/states.js';
import type { Executor } from '../executors/executor.js';
import { lowSpaceFault } from '../store/faults.js';
import { isTransient, type Store } from '../store/store.js';
import type { ClaimedStep, CommitRequest, Completion, CommitResult, StepKey } from '../store/types.js';
import type { Ledger } from './ledger.js';
import type { LogSink } from '../observability/log-fields.js';
import { hostIdentity, reapDeadWorkers } from './reaper.js';
import { OutputCache, runCancellation, type StepRunnerDeps } from './step-runner.js';
import { knownRunTraceId, runStepTraced } from './step-trace.js';
import { pausedOnOutside } from './waits.js';
import { NO_METRICS, type EngineMetrics } from '../observability/engine-metrics.js';

/** How often an idle worker asks its claim to wake due sleeps and waits, besides the due times it knows. */
const WAKE_CHECK_MS = 1000;

export interface WorkerOptions {
  /** Steps this worker runs at once. */
  concurrency: number;
  /** How long a claim is valid without renewal. */
  leaseMs: number;
  /** Wait this long after the first pending completion so that more share its commit (0–10 ms). */
  commitWindowMs: number;
  /** Longest idle wait before looking for work again. */
  pollMs: number;
  /** Only work on these runs, and stop when all of them are finished. */
  runIds?: readonly string[];
  /** Root for per-attempt work directories. */
  workRoot: string;
  /** Step input, output and error-message sizes (default LIMIT_DEFAULTS). */
  limits?: StepRunnerDeps['limits'];
  /** Load stored secrets before a step that references secrets (see StepRunnerDeps.prepareSecrets). */
  prepareSecrets?: StepRunnerDeps['prepareSecrets'];
  /** Named crash points for fault-injection tests, e.g. `after-step-commit:step2`. */
  faults?: ReadonlySet<string>;
  /** Engine messages; those about a step carry its run, step and attempt. */
  log?: LogSink;
  /** Called after every commit (lets in-process watchers wake at once). */
  onCommit?: () => void;
  /** Called when a run this worker's commit finished reaches its final state (with its workflow's name when known). */
  onFinished?: (runId: string, status: string, about?: { workflow?: string; trace_id?: string }) => void;
  /** Called for each step attempt whose result this worker's commit recorded (not for refused ones). */
  onStepFinished?: (step: Completion, about: { workflow?: string; trace_id?: string }) => void;
  /** Steps in flight, lost leases and heartbeats (default: none). */
  metrics?: EngineMetrics;
  /** Runs `kind: consensus` steps (see StepRunnerDeps.consensus). */
  consensus?: StepRunnerDeps['consensus'];
}

interface InFlight {
  step: ClaimedStep;
  abort: AbortController;
  startedAt: number;
}

/** The in-flight map key of a step. */
const key = (s: StepKey): string => `${s.run_id}/${s.step_id}`;

/**
 * A worker: claims ready steps under a lease, runs them, and commits their results. Completions,
 * lease renewals and the next claims share one transaction (group commit), so at `full` durability
 * one fsync covers many steps, and a finished step's successor is claimed in the same commit.
 */
export class Worker {
  readonly id = `w-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  private readonly inflight = new Map<string, InFlight>();
  private completions: Completion[] = [];
  private firstPendingAt = 0;
  private stopping = false;
  private mayHaveWork = true;
  /** When this worker last asked its claim to wake due sleeps and waits, and the next due time it saw. */
  private lastWakeAt = 0;
  private wakeDueAt: number | null = null;
  private wakeIdle: (() => void) | undefined;
  private lastRenewAt = Date.now();
  private lastHeartbeatAt = 0;
  private lastReapAt = 0;
  private lastYieldAt = Date.now();
  private lastCheckpointAt = Date.now();
  private readonly scope: Set<string> | undefined;
  readonly outputs = new OutputCache();
  private loopPromise: Promise<void> | undefined;
  /** A disk or permission fault met by a step: the loop stops with it. */
  private fault: StoreFaultError | undefined;
  /** The step attempts running now (settled ones removed), awaited for a moment after a fault. */
  private readonly running = new Set<Promise<unknown>>();
  /** Steps completed by this worker (committed), for reporting. */
  completedCount = 0;
  private readonly metrics: EngineMetrics;

  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly executorFor: (runtimeType: string) => Executor,
    private readonly secrets: (name: string, workflow?: string) => string | undefined,
    private readonly options: WorkerOptions,
  ) {
    this.scope = options.runIds ? new Set(options.runIds) : undefined;
    this.metrics = options.metrics ?? NO_METRICS;
  }

  /** Start the loop; the returned promise settles when the worker has stopped. */
  start(): Promise<void> {
    this.loopPromise ??= this.loop();
    return this.loopPromise;
  }

  /**
   * Stop claiming. In-flight steps get `graceMs` to finish and commit; after that they are aborted
   * and released (their leases expire at once so another worker can take them).
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    this.wake();
    const timer = setTimeout(() => {
      for (const f of this.inflight.values()) f.abort.abort(new StepError('WORKER_STOPPING', 'worker is shutting down', true));
    }, graceMs);
    timer.unref();
    try {
      // A loop that ended with an error (a store fault) reports it to whoever awaits start().
      await this.loopPromise?.catch(() => undefined);
    } finally {
      clearTimeout(timer);
    }
  }

  private wake(): void {
    this.wakeIdle?.();
  }

  /** New work may exist (a run was started or retried in this process): look now, not at the next poll. */
  poke(): void {
    this.mayHaveWork = true;
    this.wake();
  }

  private async loop(): Promise<void> {
    const now = await this.store.now();
    await this.store.registerWorker({
      id: this.id,
      hostname: hostname(),
      host_id: hostIdentity(),
      pid: process.pid,
      concurrency: this.options.concurrency,
      scope: this.options.runIds ? this.options.runIds.join(',') : null,
      started_at: now,
      heartbeat_at: now,
      stopped_at: null,
    });
    this.lastHeartbeatAt = Date.now();
    let faulted = false;
    try {
      await this.reap();
      if (this.scope) await this.dropFinishedScope();
      while (true) {
        if (this.stopping && this.inflight.size === 0 && this.completions.length === 0) break;
        if (this.scope && this.scope.size === 0 && this.inflight.size === 0 && this.completions.length === 0) break;
        try {
          if (this.fault) throw this.fault;
          await this.tick();
        } catch (e) {
          // A full disk, an I/O error, a read-only or forbidden file: retrying on the spot cannot
          // help and would only hide it. Stop, and let whoever started the worker say so.
          if (isStoreFault(e)) {
            faulted = true;
            throw e;
          }
          // A read that failed (a busy or briefly unavailable store): the worker carries on.
          this.options.log?.(`worker: ${errorMessage(e)}; retrying`, { err: e });
          await sleep(100);
        }
      }
    } finally {
      for (const f of this.inflight.values()) f.abort.abort(new StepError('WORKER_STOPPING', 'worker stopped', true));
      // Their agent processes are being stopped: give them a moment (not more) before the caller exits.
      if (this.running.size) await Promise.race([Promise.allSettled(this.running), sleep(3000)]);
      // After a store fault, steps this worker holds could not be given back by their completion: hand
      // their leases back now, so the next worker takes them at once. Should even that write fail, the
      // worker is left unstopped, and the next process on this machine reaps it as dead (its pid gone)
      // instead of waiting for the leases to expire.
      const released = this.fault || faulted ? await this.store.expireLeasesOf([this.id]).then(() => true, () => false) : true;
      if (released) await this.store.stopWorker(this.id).catch(() => undefined);
    }
  }

  private async tick(): Promise<void> {
    let now = Date.now();
    // In-process steps can complete in microtasks alone; let timers, signals and I/O in now and then.
    if (now - this.lastYieldAt >= 10) {
      await new Promise((r) => setImmediate(r));
      this.lastYieldAt = now = Date.now();
    }
    // Group commit: let completions that arrive within the window share one transaction.
    if (this.completions.length && this.options.commitWindowMs > 0 && this.inflight.size > 0) {
      const wait = this.firstPendingAt + this.options.commitWindowMs - now;
      if (wait > 0) await sleep(wait);
    }
    const completions = this.completions;
    this.completions = [];
    const free = this.stopping ? 0 : this.options.concurrency - this.inflight.size;
    const renewEvery = Math.min(this.options.leaseMs / 3, 250);
    const renewSteps = now - this.lastRenewAt >= renewEvery ? [...this.inflight.values()].filter((f) => now - f.startedAt >= renewEvery).map((f) => f.step) : [];
    if (renewSteps.length || now - this.lastRenewAt >= renewEvery) this.lastRenewAt = now;
    // A worker limited to some runs claims nothing once they are all finished.
    const wantClaim = free > 0 && (this.mayHaveWork || completions.length > 0) && (!this.scope || this.scope.size > 0);

    // Waking due sleeps and waits costs one indexed read: asked when something may be due, and once a second.
    const wakeDue = wantClaim && (now - this.lastWakeAt >= WAKE_CHECK_MS || (this.wakeDueAt !== null && now >= this.wakeDueAt));
    if (completions.length || wantClaim || renewSteps.length) {
      this.crash('before-step-commit', completions);
      let result: CommitResult;
      try {
        const req: CommitRequest = {
          completions,
          ...(wantClaim ? { claim: { worker_id: this.id, max: free, lease_ms: this.options.leaseMs, ...(this.scope ? { run_ids: [...this.scope] } : {}), ...(wakeDue ? { wake_due: true } : {}) } } : {}),
          ...(renewSteps.length ? { renew: { worker_id: this.id, lease_ms: this.options.leaseMs, steps: renewSteps } } : {}),
        };
        result = await this.store.transaction((tx) => this.ledger.commit(tx, req), this.ledger.commitHint(req));
      } catch (e) {
        if (isStoreFault(e)) throw e;
        if (isTransient(e) || completions.length === 0) {
          // The store is busy or away: keep the completions and try again shortly.
          this.completions = [...completions, ...this.completions];
          this.options.log?.(`commit failed, retrying: ${errorMessage(e)}`);
          await sleep(100);
          return;
        }
        // Something in this batch cannot be recorded: commit each completion alone so one bad
        // result cannot hold back the others (nor the leases and claims riding with them).
        result = await this.commitOneByOne(completions);
      }
      if (wakeDue) {
        this.lastWakeAt = now;
        this.wakeDueAt = null;
      }
      this.afterCommit(completions, result, wantClaim ? free : 0);
      this.options.onCommit?.();
      this.crash('after-step-commit', completions);
      await this.housekeeping();
      if (result.claimed.length || completions.length) return;
    } else {
      await this.housekeeping();
    }
    await this.idle();
  }

  /** Commit completions one at a time; one that still fails is recorded as a failed step instead. */
  private async commitOneByOne(completions: Completion[]): Promise<CommitResult> {
    const all: CommitResult = { claimed: [], refused: [], lost: [], finished: [], created: [], messages: [] };
    for (const c of completions) {
      let r: CommitResult;
      try {
        r = await this.store.transaction((tx) => this.ledger.commit(tx, { completions: [c] }), this.ledger.commitHint({ completions: [c] }));
      } catch (e) {
        if (isStoreFault(e)) throw e;
        const failed: Completion = { ...c, result: { kind: 'failed', retryable: false, error: { code: 'RESULT_UNRECORDABLE', message: `the step's result could not be recorded: ${errorMessage(e)}` } } };
        try {
          r = await this.store.transaction((tx) => this.ledger.commit(tx, { completions: [failed] }));
        } catch (e2) {
          if (isStoreFault(e2)) throw e2;
          this.options.log?.(`step ${key(c)}: result dropped, it could not be recorded: ${errorMessage(e2)}`, { run_id: c.run_id, step_id: c.step_id, attempt: c.attempt, err: e2 });
          continue;
        }
      }
      for (const k of ['refused', 'finished', 'created', 'messages'] as const) (all[k] as unknown[]).push(...r[k]);
    }
    return all;
  }

  private afterCommit(completions: Completion[], result: CommitResult, asked: number): void {
    // Handler messages are printed only once their commit has happened.
    for (const m of result.messages) {
      if (typeof m === 'string') this.options.log?.(m);
      else {
        // The run's trace, as its step and run lines carry it (after a commit no span is active).
        const traceId = knownRunTraceId(m.run_id);
        this.options.log?.(m.text, { run_id: m.run_id, workflow: m.workflow, ...(traceId ? { trace_id: traceId } : {}) });
      }
    }
    const refused = new Set(result.refused.map(key));
    if (result.lost.length || result.refused.length) this.settleLost(result.lost, result.refused);
    for (const l of result.lost) {
      const f = this.inflight.get(key(l));
      if (!f || f.step.attempt !== l.attempt) continue;
      f.abort.abort(l.cancelled ? new StepError(RUN_ENDED, 'its run was cancelled', false) : new StepError('LEASE_LOST', "the step's lease could not be renewed: another worker took it over, the step was reset, or its run is over", true));
    }
    for (const c of completions) {
      if (refused.has(key(c))) {
        this.options.log?.(`step ${key(c)} attempt ${c.attempt}: result refused (lease lost or run cancelled)`, { run_id: c.run_id, step_id: c.step_id, attempt: c.attempt });
        continue;
      }
      this.completedCount++;
      this.options.onStepFinished?.(c, { workflow: this.workflowOf(c.plan_id), trace_id: knownRunTraceId(c.run_id) });
      // Only completed checkpoints are final (a retry resets failed and skipped steps): cache those.
      if (c.result.kind === 'completed') this.outputs.set(c.run_id, c.step_id, { status: 'completed', outputs: c.result.outputs, error: null });
    }
    // Runs started by the handlers of runs this worker is limited to belong to its work too.
    if (this.scope) for (const id of result.created) this.scope.add(id);
    for (const f of result.finished) {
      this.options.onFinished?.(f.run_id, f.status, { workflow: this.workflowOf(completions.find((c) => c.run_id === f.run_id)?.plan_id), trace_id: knownRunTraceId(f.run_id) });
      this.outputs.forget(f.run_id);
      this.scope?.delete(f.run_id);
    }
    // A worker limited to runs that are all finished (one failed fast) has nothing left to wait for:
    // its in-flight steps are given back, and the failed run cancels them.
    if (this.scope && this.scope.size === 0) {
      for (const f of this.inflight.values()) f.abort.abort(new StepError('WORKER_STOPPING', 'the run is finished', true));
    }
    this.mayHaveWork = (asked > 0 && result.claimed.length >= asked) || (result.woken ?? 0) > 0;
    for (const step of result.claimed) this.launch(step);
  }

  /**
   * What the metrics make of steps whose lease renewal or result was refused (a rare path), once their
   * runs are read after the commit: a result refused because its run was cancelled meanwhile is a
   * cancelled attempt (a running step of a cancelled run is counted when it stops, see `stopped`);
   * the rest are lost leases, but not those of runs that are over (cancelled, or failed fast), whose
   * steps were stopped on purpose.
   */
  private settleLost(lost: CommitResult['lost'], refused: readonly Completion[]): void {
    if (!this.metrics.enabled) return;
    const runIds = [...new Set([...lost, ...refused].map((s) => s.run_id))];
    const statuses = Promise.all(runIds.map((id) => this.store.getRun(id).then((r) => [id, r?.status] as const, () => [id, undefined] as const)));
    const settled = statuses.then((read) => {
      const status = new Map<string, RunStatus | undefined>(read);
      for (const c of refused) if (status.get(c.run_id) === 'cancelled') this.metrics.stepStopped(c.plan_id ?? '', c.step_id, c.duration_ms / 1000);
      const over = (runId: string): boolean => {
        const s = status.get(runId);
        return s !== undefined && TERMINAL_RUN.has(s);
      };
      const n = lost.filter((l) => !l.cancelled && !over(l.run_id)).length + refused.filter((c) => !over(c.run_id)).length;
      if (n > 0) this.metrics.leasesLost(n);
    });
    // Awaited with the steps at stop: a scrape after the worker stopped sees the counts.
    this.running.add(settled);
    void settled.finally(() => this.running.delete(settled));
  }

  /** The workflow of a cached plan (for log lines; no read). */
  private workflowOf(planId: string | undefined): string | undefined {
    return planId ? this.ledger.plans.peek(planId)?.plan.workflow.name : undefined;
  }

  private launch(step: ClaimedStep): void {
    const abort = new AbortController();
    const f: InFlight = { step, abort, startedAt: Date.now() };
    // An older attempt of the same step may still be stopping here (cancelled, then retried): the new
    // attempt holds the newer fencing token, so the old one's result would be refused anyway.
    this.inflight.get(key(step))?.abort.abort(new StepError('LEASE_LOST', 'a newer attempt of this step started', true));
    this.inflight.set(key(step), f);
    this.metrics.stepStarted();
    const running = runStepTraced(
      {
        store: this.store,
        plans: this.ledger.plans,
        outputs: this.outputs,
        executorFor: this.executorFor,
        secrets: this.secrets,
        ...(this.options.prepareSecrets ? { prepareSecrets: this.options.prepareSecrets } : {}),
        redactor: this.ledger.redactor,
        workRoot: this.options.workRoot,
        ...(this.options.limits ? { limits: this.options.limits } : {}),
        ...(this.options.consensus ? { consensus: this.options.consensus } : {}),
        onProcess: (s, pid) => {
          this.store.setStepPid(s.run_id, s.step_id, s.attempt, pid).catch(() => undefined);
        },
        onFault: (fault) => {
          this.fault ??= fault;
          this.wake();
        },
      },
      step,
      this.id,
      abort,
    ).then(async (done) => {
      this.metrics.stepEnded();
      if (this.inflight.get(key(step)) === f) this.inflight.delete(key(step));
      const reason = abort.signal.aborted ? (abort.signal.reason as StepError | undefined)?.code : undefined;
      if (reason === 'LEASE_LOST') return;
      // Its run was cancelled while it ran (the worker stopped it, or a consensus step's fence found
      // out): the step's row is already cancelled, nothing to record.
      // No await on an ordinary attempt's way (the promise exists only when something says cancelled).
      const asked = runCancellation(this.store, step, abort, done.result);
      const cancelled = asked && (await asked);
      if (cancelled !== undefined) return this.stopped(step, done, cancelled);
      // An agent that failed on a full disk most likely failed for that (it could not write its
      // output): not the step's fault either. Give it back and stop, like any other disk fault.
      const lowSpace = done.result.kind === 'failed' ? lowSpaceFault(this.options.workRoot, `running step '${step.step_id}'`) : undefined;
      if (lowSpace) {
        this.fault ??= lowSpace;
        this.wake();
        return;
      }
      // Shutting down is not the step's fault: give it back instead of recording a failure.
      const completion: Completion = reason === 'WORKER_STOPPING' && done.result.kind === 'failed' ? { ...done, result: { kind: 'released', reason: 'worker stopped' } } : done;
      if (this.completions.length === 0) this.firstPendingAt = Date.now();
      this.completions.push(completion);
      this.wake();
    });
    this.running.add(running);
    void running.finally(() => this.running.delete(running));
  }

  /** A step attempt stopped because its run ended: counted as cancelled, and a line in the log. */
  private stopped(step: ClaimedStep, done: Completion, why: string): void {
    this.metrics.stepStopped(step.plan_id, step.step_id, done.duration_ms / 1000);
    const traceId = knownRunTraceId(step.run_id);
    this.options.log?.(`step ${key(step)} attempt ${step.attempt} cancelled: ${why}`, {
      run_id: step.run_id,
      step_id: step.step_id,
      attempt: step.attempt,
      workflow: this.workflowOf(step.plan_id),
      status: 'cancelled',
      duration_ms: Math.round(done.duration_ms),
      ...(traceId ? { trace_id: traceId } : {}),
    });
  }

  /** Worker heartbeat and the reaping of dead local workers, on their own slower clocks. */
  private async housekeeping(): Promise<void> {
    const now = Date.now();
    if (now - this.lastHeartbeatAt >= this.options.leaseMs / 3) {
      this.lastHeartbeatAt = now;
      await this.store.heartbeatWorker(this.id).then(() => this.metrics.heartbeat(), () => undefined);
    }
    if (now - this.lastReapAt >= Math.max(1000, this.options.leaseMs)) await this.reap();
  }

  private async reap(): Promise<void> {
    this.lastReapAt = Date.now();
    try {
      const n = await reapDeadWorkers(this.store, this.id);
      if (n.workers > 0) {
        this.mayHaveWork = true;
        this.options.log?.(`released ${n.leases} lease(s) of ${n.workers} dead worker(s)${n.killed ? `, stopped ${n.killed} orphaned agent process group(s)` : ''}${n.cgroups ? `, removed ${n.cgroups} cgroup(s)` : ''}`);
      }
    } catch (e) {
      this.options.log?.(`reaping failed: ${errorMessage(e)}`, { err: e });
    }
  }

  private async dropFinishedScope(): Promise<void> {
    for (const id of [...(this.scope ?? [])]) {
      const run = await this.store.getRun(id);
      if (!run || TERMINAL_RUN.has(run.status)) this.scope?.delete(id);
      // A run paused for a human (or an event or signal), with nothing else to do: a worker limited to
      // it has done its part. A sleeping step wakes by itself: the worker waits for it.
      else if (run.status === 'waiting' && pausedOnOutside(run, await this.store.getSteps(id))) {
        this.scope?.delete(id);
        this.options.onFinished?.(id, 'waiting');
      }
    }
  }

  private async idle(): Promise<void> {
    if (this.completions.length) return;
    let woken = false;
    const wake = new Promise<void>((resolve) => {
      this.wakeIdle = () => {
        woken = true;
        resolve();
      };
    });
    try {
      let timeout = this.options.pollMs;
      if (this.inflight.size > 0) timeout = Math.min(timeout, Math.min(this.options.leaseMs / 3, 250));
      const now = Date.now();
      if (this.inflight.size === 0 && now - this.lastCheckpointAt > 2000 && this.store.checkpoint) {
        this.lastCheckpointAt = now;
        await this.store.checkpoint().catch(() => undefined);
      }
      const due = await this.store.nextDueAt(now);
      this.wakeDueAt = due;
      if (due !== null) timeout = Math.max(1, Math.min(timeout, due - now + 1));
      // Always wait on a timer, never on promises alone: a loop of resolved promises would starve
      // the event loop (and the very steps we are waiting for).
      await this.store.waitForChange(timeout, wake);
      if (!woken) this.mayHaveWork = true;
      if (this.scope) await this.dropFinishedScope();
    } finally {
      this.wakeIdle = undefined;
    }
  }

  /** Fault injection for durability tests: die on the spot, as a power cut or `kill -9` would. */
  private crash(point: string, completions: readonly Completion[]): void {
    const faults = this.options.faults;
    if (!faults || faults.size === 0) return;
    for (const c of completions) {
      if (faults.has(`${point}:${c.step_id}`) || faults.has(`${point}:*`)) process.kill(process.pid, 'SIGKILL');
    }
  }
}
