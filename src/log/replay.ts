/**
 * Replay of a run's event log into the state its rows should hold: the run's status and head, each
 * step's status, attempt and outputs digest, its sleep/wait registrations, kept signals and approval
 * decisions, as far as the events carry them. Pure: events (and the run's frozen plan) in, state
 * out; `compare.ts` sets it against what the store holds.
 *
 * It mirrors the ledger's transitions (src/engine/ledger.ts, nesting.ts, waits.ts,
 * concurrency-gate.ts): each event is the record of one of them, and the few row changes that have
 * no event of their own (a map element handed its slot, registrations closed with their run) follow
 * from the events that caused them. A run imported from a bundle (src/branching/import.ts) folds the
 * same way: STEP_COPIED for the steps its bundle completed, the step events of the others with the
 * bundle's attempt, and a terminal event that carries the times the run had where it ran.
 *
 * @example
 *   const state = replayRun({ events: await store.getEvents(id), plan: planShape(planJson) });
 *   state.status; // 'completed'
 *   state.steps.get('join')?.outputs_sha256;
 */
import type { RunEvent } from '../core/events.js';
import type { RunStatus, StepStatus } from '../core/states.js';

/** What the replay needs of a run's plan: its steps, their dependencies and kinds. */
export interface ReplayPlan {
  steps: ReadonlyArray<{ id: string; deps: readonly string[]; kind?: string | undefined }>;
}

export interface ReplayInput {
  events: readonly RunEvent[];
  /** The run's plan; without it only steps the events name are replayed (a retry then cannot tell ready from pending). */
  plan?: ReplayPlan | undefined;
}

/** A step as the log says it should be. `undefined` fields: the events do not tell. */
export interface ReplayedStep {
  step_id: string;
  status: StepStatus;
  attempt: number;
  retry_count: number | undefined;
  /** The digest of its outputs recorded in STEP_COMPLETED (a completed step). */
  outputs_sha256: string | undefined;
  /** The error text a failed or skipped step's row holds. */
  error: string | undefined;
  /** A map step waiting for its elements, or a sub-workflow step waiting for its child run. */
  parked: boolean;
  /** A map element's position. */
  map_index: number | undefined;
}

export interface ReplayedRun {
  status: RunStatus | undefined;
  started_at: number | null;
  completed_at: number | null;
  error: string | null;
  error_step: string | null;
  event_seq: number;
  event_hash: string | null;
  running_steps: number;
  /** Plan steps not finished, counted as the ledger counts them (undefined without the plan). */
  steps_remaining: number | undefined;
  steps: Map<string, ReplayedStep>;
  /** Sleep and wait registrations by step: `waiting`, `delivered`, `due` or `cancelled`. */
  waits: Map<string, 'waiting' | 'delivered' | 'due' | 'cancelled'>;
  /** Signals sent to the run by sequence number, and the wait step that took each (null: kept). */
  signals: Map<number, { name: string; consumed_by: string | null }>;
  /** The last approval decision recorded for each step. */
  approvals: Map<string, 'approved' | 'rejected'>;
  /** What the replay could not settle from the events (a list trimmed to fit an event). */
  notes: string[];
}

const TERMINAL_RUN = new Set<string>(['completed', 'failed', 'cancelled']);
const TERMINAL_STEP = new Set<string>(['completed', 'failed', 'skipped', 'cancelled']);
const ELEMENT_ID = /^(.+)\[(\d+)\]$/;

function elementOf(stepId: string): { base: string; index: number } | undefined {
  const m = ELEMENT_ID.exec(stepId);
  return m ? { base: m[1] as string, index: Number(m[2]) } : undefined;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Replay a run's events (in sequence order) into the state its rows should hold. */
export function replayRun(input: ReplayInput): ReplayedRun {
  const r = new Replay(input.plan);
  for (const e of input.events) r.apply(e);
  return r.state;
}

class Replay {
  readonly state: ReplayedRun = {
    status: undefined,
    started_at: null,
    completed_at: null,
    error: null,
    error_step: null,
    event_seq: 0,
    event_hash: null,
    running_steps: 0,
    steps_remaining: undefined,
    steps: new Map(),
    waits: new Map(),
    signals: new Map(),
    approvals: new Map(),
    notes: [],
  };
  private readonly deps = new Map<string, readonly string[]>();
  private readonly kinds = new Map<string, string>();
  /** A map step's `max_concurrency`, as its STEP_WAITING said. */
  private readonly mapConcurrency = new Map<string, number>();

  constructor(private readonly plan: ReplayPlan | undefined) {
    for (const s of plan?.steps ?? []) {
      this.deps.set(s.id, s.deps);
      if (s.kind) this.kinds.set(s.id, s.kind);
    }
  }

  private step(id: string): ReplayedStep {
    let s = this.state.steps.get(id);
    if (!s) {
      const el = elementOf(id);
      s = { step_id: id, status: 'pending', attempt: 0, retry_count: 0, outputs_sha256: undefined, error: undefined, parked: false, map_index: el?.index };
      this.state.steps.set(id, s);
    }
    return s;
  }

  private isPlanStep(id: string): boolean {
    return this.plan ? this.deps.has(id) : elementOf(id) === undefined;
  }

  private set(id: string, status: StepStatus): ReplayedStep {
    const s = this.step(id);
    if (s.status === 'running' && status !== 'running') this.state.running_steps--;
    if (status === 'running' && s.status !== 'running') this.state.running_steps++;
    s.status = status;
    if (status !== 'waiting') s.parked = false;
    if (status !== 'completed') s.outputs_sha256 = undefined;
    return s;
  }

  /** Steps a list in the event made ready (`ready`, trimmed to its first entries when long). */
  private ready(e: RunEvent, key = 'ready'): void {
    for (const id of strings(e.data[key])) this.set(id, 'ready');
    this.trimmed(e, key);
  }

  private trimmed(e: RunEvent, key: string): void {
    const total = num(e.data[`${key}_total`]);
    if (total !== undefined) this.state.notes.push(`event ${e.seq} (${e.type}) lists ${strings(e.data[key]).length} of ${total} steps in '${key}': the rest are not replayed`);
  }

  private finished(id: string): void {
    if (this.state.steps_remaining !== undefined && this.isPlanStep(id)) this.state.steps_remaining--;
  }

  private runWaiting(): boolean {
    return this.state.status === 'waiting';
  }

  apply(e: RunEvent): void {
    const st = this.state;
    st.event_seq = e.seq;
    st.event_hash = e.hash;
    const d = e.data;
    const id = e.step_id;
    switch (e.type) {
      case 'RUN_CREATED':
        st.status = 'queued';
        if (this.plan) {
          for (const s of this.plan.steps) this.step(s.id);
          st.steps_remaining = this.plan.steps.length;
        }
        this.ready(e);
        break;
      case 'RUN_STARTED':
        st.status = 'running';
        st.started_at ??= e.at;
        break;
      case 'RUN_ADMITTED':
        this.ready(e);
        break;
      case 'STEP_STARTED':
        if (id) this.set(id, 'running').attempt = num(d.attempt) ?? this.step(id).attempt + 1;
        break;
      case 'STEP_COMPLETED':
        if (id) this.completed(e, id);
        break;
      case 'STEP_FAILED':
        if (id) this.failed(e, id);
        break;
      case 'STEP_RETRY_SCHEDULED':
        if (id) {
          const s = this.set(id, 'ready');
          s.retry_count = num(d.failures) ?? s.retry_count;
          s.error = str(d.error);
        }
        break;
      case 'STEP_SKIPPED':
        if (id) {
          const s = this.ended(e, id, 'skipped');
          s.error = str(d.reason);
          this.finished(id);
          this.ready(e);
        }
        break;
      case 'STEP_COPIED':
        // A fork's step taken from its parent, or an imported run's step its bundle completed:
        // completed, with the parent's (or the replaced) output. Its retry count is the row's it was
        // copied from, which the event records only when it says `retry_count`.
        if (id) {
          const s = this.set(id, 'completed');
          s.outputs_sha256 = str(d.output_sha256);
          s.error = undefined;
          s.attempt = num(d.attempt) ?? s.attempt;
          s.retry_count = num(d.retry_count);
          this.finished(id);
          this.ready(e);
        }
        break;
      case 'STEP_CANCELLED':
        if (id) this.ended(e, id, 'cancelled');
        break;
      case 'STEP_RELEASED':
        if (id) this.set(id, 'ready');
        break;
      case 'STEP_WAITING':
        if (id) this.waiting(e, id);
        break;
      case 'WAIT_RESOLVED':
        if (id) this.waitResolved(e, id);
        break;
      case 'SIGNAL_RECEIVED': {
        const seq = num(d.seq);
        if (seq !== undefined) st.signals.set(seq, { name: str(d.name) ?? '', consumed_by: null });
        break;
      }
      case 'APPROVAL_DECIDED':
        if (id) {
          this.set(id, 'ready').error = undefined;
          if (d.decision === 'approved' || d.decision === 'rejected') st.approvals.set(id, d.decision);
          if (this.runWaiting() && ![...st.steps.values()].some((s) => s.status === 'waiting' && !s.parked)) st.status = 'running';
        }
        break;
      case 'RUN_COMPLETED':
        st.status = 'completed';
        this.runEnded(e);
        break;
      case 'RUN_FAILED':
        st.status = 'failed';
        this.runEnded(e);
        st.error = str(d.error) ?? null;
        st.error_step = str(d.step) ?? null;
        this.cancelList(e);
        break;
      case 'RUN_CANCELLED':
        st.status = 'cancelled';
        this.runEnded(e);
        // A local cancel records its reason; an imported run's end, the error its bundle holds.
        st.error = str(d.reason) ?? str(d.error) ?? null;
        if (d.step !== undefined) st.error_step = str(d.step) ?? null;
        this.cancelList(e);
        break;
      case 'RUN_RETRIED':
        this.retried(e);
        break;
      default:
        // Handler, trigger, budget, guardrail and consensus events change no run or step row.
        break;
    }
  }

  /**
   * A step's final event other than its completion. The attempt is the event's when it says one
   * (an imported step has no STEP_STARTED: its event carries the bundle's attempt and retry count).
   */
  private ended(e: RunEvent, id: string, status: 'skipped' | 'cancelled'): ReplayedStep {
    const s = this.set(id, status);
    s.attempt = num(e.data.attempt) ?? s.attempt;
    s.retry_count = num(e.data.retry_count) ?? s.retry_count;
    return s;
  }

  /**
   * The run's terminal event: it ended when the event was recorded, or, for a run imported from a
   * bundle, when its terminal event says it started and ended where it ran (`started_at`,
   * `completed_at`: the times its rows keep).
   */
  private runEnded(e: RunEvent): void {
    this.state.completed_at = num(e.data.completed_at) ?? e.at;
    if (e.data.started_at !== undefined) this.state.started_at = num(e.data.started_at) ?? null;
  }

  private completed(e: RunEvent, id: string): void {
    const s = this.set(id, 'completed');
    s.outputs_sha256 = str(e.data.outputs_sha256);
    s.error = undefined;
    const attempt = num(e.data.attempt);
    if (attempt !== undefined) s.attempt = attempt;
    const el = elementOf(id);
    if (el && this.isPlanStep(el.base)) {
      // Element i hands its slot to element i + max_concurrency (no event of its own).
      const mc = this.mapConcurrency.get(el.base);
      if (mc !== undefined && !TERMINAL_RUN.has(this.state.status ?? '')) {
        const next = this.state.steps.get(`${el.base}[${el.index + mc}]`);
        if (next?.status === 'pending') this.set(next.step_id, 'ready');
      }
      return;
    }
    this.finished(id);
    this.ready(e);
  }

  private failed(e: RunEvent, id: string): void {
    const s = this.set(id, 'failed');
    s.error = str(e.data.error);
    s.attempt = num(e.data.attempt) ?? s.attempt;
    const failures = num(e.data.failures);
    if (failures !== undefined) s.retry_count = failures;
    if (elementOf(id) && this.isPlanStep(elementOf(id)?.base ?? '')) return;
    if (e.data.element !== undefined) {
      // A map step failed by an element: the elements not started were cancelled with it.
      for (const x of this.state.steps.values()) if (elementOf(x.step_id)?.base === id && (x.status === 'pending' || x.status === 'ready')) this.set(x.step_id, 'cancelled');
    }
    this.finished(id);
    this.ready(e);
  }

  private waiting(e: RunEvent, id: string): void {
    const s = this.set(id, 'waiting');
    s.error = str(e.data.reason);
    const n = num(e.data.elements);
    if (n !== undefined) {
      s.parked = true;
      // A map step parks with one row per element; rows of an earlier expansion are gone.
      for (const x of [...this.state.steps.keys()]) if (elementOf(x)?.base === id) this.state.steps.delete(x);
      const mc = num(e.data.max_concurrency);
      if (mc !== undefined) this.mapConcurrency.set(id, mc);
      else this.mapConcurrency.delete(id);
      for (let i = 0; i < n; i++) this.step(`${id}[${i}]`).status = i < (mc ?? n) ? 'ready' : 'pending';
      return;
    }
    if (e.data.child_run_id !== undefined) {
      s.parked = true;
      return;
    }
    this.state.status = 'waiting';
    const kind = this.kinds.get(id);
    if (kind === 'sleep' || kind === 'wait') {
      const w = this.state.waits.get(id);
      if (w === undefined || w === 'cancelled') this.state.waits.set(id, 'waiting');
    }
  }

  private waitResolved(e: RunEvent, id: string): void {
    this.set(id, 'ready').error = undefined;
    const outcome = e.data.outcome;
    this.state.waits.set(id, outcome === 'delivered' ? 'delivered' : 'due');
    const sig = str(e.data.signal);
    if (sig?.startsWith('signal:')) {
      const seq = Number(sig.slice('signal:'.length));
      const kept = this.state.signals.get(seq);
      if (kept) kept.consumed_by = id;
    }
    if (this.runWaiting() && ![...this.state.steps.values()].some((s) => s.status === 'waiting')) this.state.status = 'running';
  }

  private cancelList(e: RunEvent): void {
    const cancelled = strings(e.data.cancelled);
    for (const id of cancelled) {
      this.set(id, 'cancelled');
      this.finished(id);
    }
    this.trimmed(e, 'cancelled');
    if (e.type === 'RUN_CANCELLED') {
      // Cancelling stops running steps too: their workers notice and stop.
      this.state.running_steps = 0;
    }
    // A run that ends closes its open sleep and wait registrations.
    if (cancelled.length) for (const [k, w] of this.state.waits) if (w === 'waiting') this.state.waits.set(k, 'cancelled');
  }

  private retried(e: RunEvent): void {
    const st = this.state;
    const reset = new Set(strings(e.data.reset));
    this.trimmed(e, 'reset');
    st.status = 'queued';
    st.completed_at = null;
    st.error = null;
    st.error_step = null;
    let open = 0;
    for (const [id, s] of st.steps) {
      if (!this.isPlanStep(id)) continue;
      if (!reset.has(id)) {
        if (!TERMINAL_STEP.has(s.status)) open++;
        continue;
      }
      const deps = this.deps.get(id) ?? [];
      const pending = deps.filter((dep) => reset.has(dep) || !TERMINAL_STEP.has(st.steps.get(dep)?.status ?? 'completed')).length;
      this.set(id, pending === 0 ? 'ready' : 'pending');
      s.retry_count = 0;
      s.error = undefined;
      open++;
    }
    if (!this.plan) st.notes.push(`event ${e.seq} (RUN_RETRIED): without the run's plan, reset steps are taken as ready`);
    if (st.steps_remaining !== undefined) st.steps_remaining = open;
    const c = e.data.concurrency as { state?: unknown } | undefined;
    // Queued behind its concurrency key again: the steps the retry made ready are held back.
    if (c?.state === 'queued') for (const s of st.steps.values()) if (s.status === 'ready') this.set(s.step_id, 'pending');
  }
}
