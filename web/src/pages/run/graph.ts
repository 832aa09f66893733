/**
 * What the run page draws, from the workflow's static DAG, the run's step rows and its events: one
 * node per workflow step (a map step is one node with its elements' progress), labelled by kind.
 */
import type { DagNode } from '../../components/Dag';
import { moment } from '../../format';
import type { RunEvent, RunSummary, Step } from '../../types';
import type { WorkflowNode } from './types';

/** `7s`, `2m`, `1h 30m`, `7d`: a duration spec as people write it. */
export function span(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** What a step runs, in a few words: the agent, `sleep 2s`, `wait event order.paid`, `workflow child@1`. */
export function kindLabel(n: WorkflowNode): string {
  if (n.workflow) return `workflow ${n.workflow}`;
  if (n.sleep) return n.sleep.for_ms !== undefined ? `sleep ${span(n.sleep.for_ms)}` : `sleep until ${String(n.sleep.until)}`;
  if (n.wait) return `wait ${n.wait.event ? `event ${n.wait.event}` : `signal ${n.wait.signal ?? ''}`}`;
  const agent = n.agent ?? '';
  return n.map ? `map · ${agent}` : agent;
}

/** The elements of a map step (`resize[0]`, `resize[1]`, …), in order. */
export function elementsOf(steps: readonly Step[], id: string): Step[] {
  return steps.filter((s) => s.map_index !== undefined && s.id.startsWith(`${id}[`));
}

const BAR_ORDER = ['completed', 'running', 'waiting', 'ready', 'pending', 'failed', 'cancelled', 'skipped'];

/** How many elements are in each state, in a stable order (the node's small bar). */
export function stateCounts(elements: readonly Step[]): Array<{ status: string; count: number }> {
  const counts = new Map<string, number>();
  for (const e of elements) counts.set(e.status, (counts.get(e.status) ?? 0) + 1);
  return BAR_ORDER.filter((s) => counts.has(s)).map((status) => ({ status, count: counts.get(status) ?? 0 }));
}

/** The reason of each step's latest STEP_WAITING event (`sleeping until …`, `waiting for signal packed …`). */
export function waitingReasons(events: readonly RunEvent[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of events) {
    const reason = (e.data as { reason?: unknown } | null)?.reason;
    if (e.type === 'STEP_WAITING' && e.step) out.set(e.step, typeof reason === 'string' ? reason : '');
  }
  return out;
}

/** The time in a `sleeping until <ISO>` / `(until <ISO>)` reason. */
export function untilOf(reason: string | undefined): string | undefined {
  return reason ? /until (\d{4}-\d{2}-\d{2}T[\d:.]+Z)/.exec(reason)?.[1] : undefined;
}

const TIME = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** A time of day in the user's locale (one formatter for every row of a long list). */
export function timeOfDay(value: string | number): string {
  return TIME.format(new Date(value));
}

/**
 * The same node objects as `previous` where nothing changed, so the DAG redraws only the nodes a
 * live update touched.
 */
export function keepUnchanged(next: DagNode[], previous: readonly DagNode[]): DagNode[] {
  const old = new Map(previous.map((n) => [n.id, n]));
  return next.map((n) => {
    const o = old.get(n.id);
    return o && JSON.stringify(o) === JSON.stringify(n) ? o : n;
  });
}

/** A step's time on the run's axis, from its events: from its first start to its end. */
export interface StepSpan {
  start: number;
  end: number | null;
}

const STEP_FINISHES = new Set(['STEP_COMPLETED', 'STEP_FAILED', 'STEP_SKIPPED', 'STEP_CANCELLED', 'STEP_COPIED']);

/**
 * Each step's span from its events: from its first STEP_STARTED to the event that finished it. A
 * step that waits (an event, a signal, an approval, a sleep) is started again when it resumes, and
 * the step row's `started_at` and `duration_ms` are those of that last attempt (a few ms); the span
 * covers the wait. A step started again after it finished (a retried run) begins a new span.
 *
 * @example
 *   stepSpans(events).get('paid') // { start: <STEP_STARTED 1 at>, end: <STEP_COMPLETED at> }
 */
export function stepSpans(events: readonly RunEvent[]): Map<string, StepSpan> {
  const spans = new Map<string, StepSpan>();
  for (const e of events) {
    if (!e.step) continue;
    const span = spans.get(e.step);
    if (e.type === 'STEP_STARTED') {
      if (!span || span.end !== null) spans.set(e.step, { start: Date.parse(e.at), end: null });
    } else if (STEP_FINISHES.has(e.type)) {
      const at = Date.parse(e.at);
      if (span && span.end === null) span.end = at;
      else spans.set(e.step, { start: at, end: at });
    }
  }
  return spans;
}

const EVENT_STATUS: Readonly<Record<string, Step['status']>> = {
  STEP_STARTED: 'running',
  STEP_WAITING: 'waiting',
  STEP_COMPLETED: 'completed',
  // A fork's step taken from its parent.
  STEP_COPIED: 'completed',
  STEP_FAILED: 'failed',
  STEP_SKIPPED: 'skipped',
  STEP_CANCELLED: 'cancelled',
};

/**
 * The steps with the states their events tell (in order), the same objects where no event touched
 * a step: a live page repaints a step as soon as its event arrives, before the run is read again.
 *
 * @example
 *   applyStepEvents(steps, [{ type: 'STEP_COMPLETED', step: 'gate', … }]) // gate's status is 'completed'
 */
export function applyStepEvents<S extends Step>(steps: readonly S[], events: readonly RunEvent[]): S[] {
  const status = new Map<string, Step['status']>();
  for (const e of events) {
    const next = EVENT_STATUS[e.type];
    if (next && e.step) status.set(e.step, next);
  }
  if (status.size === 0) return steps as S[];
  return steps.map((s) => {
    const next = status.get(s.id);
    return next && next !== s.status ? { ...s, status: next } : s;
  });
}

/** The DAG's nodes with their states and notes. */
export function dagNodes(nodes: readonly WorkflowNode[], steps: readonly Step[], reasons: ReadonlyMap<string, string>, children: readonly RunSummary[], approvals: ReadonlySet<string>): DagNode[] {
  const byId = new Map(steps.map((s) => [s.id, s]));
  return nodes.map((n) => {
    const step = byId.get(n.id);
    const status = step?.status ?? 'pending';
    const out: DagNode = { id: n.id, label: n.id, sublabel: kindLabel(n), status };
    if (n.map) {
      const elements = elementsOf(steps, n.id);
      if (elements.length) {
        out.note = `${elements.filter((e) => e.status === 'completed').length}/${elements.length}`;
        out.bar = stateCounts(elements);
      }
    } else if (n.sleep) {
      const until = status === 'waiting' ? untilOf(reasons.get(n.id)) : undefined;
      if (until) out.note = `wakes ${moment(until)}`;
    } else if (n.wait) {
      const until = status === 'waiting' ? untilOf(reasons.get(n.id)) : undefined;
      if (until) out.note = `until ${moment(until)}`;
      else if (n.wait.timeout_ms !== undefined) out.note = `timeout ${span(n.wait.timeout_ms)}`;
    } else if (n.workflow) {
      const child = children.find((c) => c.parent_step_id === n.id);
      if (child) out.link = { to: `/runs/${child.run_id}`, label: 'child run' };
    }
    if (approvals.has(n.id)) out.note = 'awaiting approval';
    return out;
  });
}
