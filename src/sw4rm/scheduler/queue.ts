/**
 * Scheduling tasks on a scope's slots: the pure rules of the SW4RM scheduler.
 *
 * - Order: the urgent lane first (tasks of PRIVILEGED agents), then communication class
 *   (PRIVILEGED > STANDARD > BULK), then priority (-19..20, higher first), then submission time.
 * - A scope (the resource a task names) has `capacity` slots; a free slot goes to the best queued task.
 * - Cooperative preemption: when a queued task outranks a running one (lane, class or priority, not
 *   just age) and no slot is free, the worst running task is asked to yield (`preempting`, visible in
 *   its agent's activity); it yields by purging the task. If it has not when the grace period ends,
 *   it is preempted with FORCED_PREEMPTION and its slot is given away.
 * - Cancellation: a task whose id is a cancelled correlation (see cancellation.ts) stops queuing at
 *   once, and if running gets the cancellation's grace before FORCED_PREEMPTION.
 *
 * No I/O and no clock: `reconcile` takes the scope's tasks and `now` and returns the tasks it changed.
 *
 * @example
 *   const changed = reconcile(tasks, { capacity: 1, graceMs: 5000, now: Date.now(), flags: new Map() });
 */
import { UserError } from '../../core/errors.js';
import { graceExpired, type CancellationFlag } from './cancellation.js';

export type CommClass = 'PRIVILEGED' | 'STANDARD' | 'BULK';
export type TaskStatus = 'queued' | 'running' | 'preempting' | 'preempted' | 'cancelled';

/** A task as the store keeps it (a `task` document grouped by `scope:<scope>`, owned by its agent). */
export interface ScheduledTask {
  agent_id: string;
  task_id: string;
  scope: string;
  priority: number;
  comm_class: CommClass;
  content_type: string;
  /** The task's parameters, base64. */
  params: string;
  status: TaskStatus;
  submitted_at: number;
  started_at?: number;
  /** Set while preempting: why, since when, and when the slot is taken by force. */
  preempt?: { reason: string; requested_at: number; deadline: number };
  ended_at?: number;
  error_code?: string;
  note?: string;
}

export const MIN_PRIORITY = -19;
export const MAX_PRIORITY = 20;
const CLASS_RANK: Record<CommClass, number> = { PRIVILEGED: 0, STANDARD: 1, BULK: 2 };

export const isLive = (t: ScheduledTask) => t.status === 'queued' || t.status === 'running' || t.status === 'preempting';
const holdsSlot = (t: ScheduledTask) => t.status === 'running' || t.status === 'preempting';

/** A communication class name (proto enum name); unspecified or unknown: STANDARD. */
export function commClass(name: unknown): CommClass {
  return name === 'PRIVILEGED' || name === 'BULK' ? name : 'STANDARD';
}

/** Whether `a` outranks `b` by class (the urgent lane is PRIVILEGED) or priority; age alone never preempts. */
export function outranks(a: ScheduledTask, b: ScheduledTask): boolean {
  if (CLASS_RANK[a.comm_class] !== CLASS_RANK[b.comm_class]) return CLASS_RANK[a.comm_class] < CLASS_RANK[b.comm_class];
  return a.priority > b.priority;
}

/** Dispatch order: best first. */
export function compareTasks(a: ScheduledTask, b: ScheduledTask): number {
  return CLASS_RANK[a.comm_class] - CLASS_RANK[b.comm_class] || b.priority - a.priority || a.submitted_at - b.submitted_at || `${a.agent_id}/${a.task_id}`.localeCompare(`${b.agent_id}/${b.task_id}`);
}

/** A new task from a SubmitTask request; SW4RM_TASK_INVALID naming the field when it is not valid. */
export function newTask(req: { agent_id?: unknown; task_id?: unknown; priority?: unknown; params?: Buffer | Uint8Array; content_type?: unknown; scope?: unknown }, comm: CommClass, now: number): ScheduledTask {
  const text = (v: unknown, field: string) => {
    const s = typeof v === 'string' ? v.trim() : '';
    if (!s) throw new UserError('SW4RM_TASK_INVALID', `SubmitTask: ${field} is required`, { field });
    if (s.length > 256) throw new UserError('SW4RM_TASK_INVALID', `SubmitTask: ${field} is longer than 256 characters`, { field });
    return s;
  };
  const priority = Number(req.priority ?? 0);
  if (!Number.isInteger(priority) || priority < MIN_PRIORITY || priority > MAX_PRIORITY) {
    throw new UserError('SW4RM_TASK_INVALID', `SubmitTask: priority must be an integer from ${MIN_PRIORITY} to ${MAX_PRIORITY} (got ${String(req.priority)})`, { field: 'priority' });
  }
  const scope = typeof req.scope === 'string' && req.scope.trim() ? text(req.scope, 'scope') : 'default';
  return {
    agent_id: text(req.agent_id, 'agent_id'),
    task_id: text(req.task_id, 'task_id'),
    scope,
    priority,
    comm_class: comm,
    content_type: typeof req.content_type === 'string' ? req.content_type : '',
    params: Buffer.from(req.params ?? Buffer.alloc(0)).toString('base64'),
    status: 'queued',
    submitted_at: now,
  };
}

/** Ask a running task to yield by `deadline` (an earlier deadline already asked for stays). */
export function askToYield(t: ScheduledTask, reason: string, now: number, deadline: number): ScheduledTask {
  if (t.status === 'preempting' && t.preempt && t.preempt.deadline <= deadline) return t;
  return { ...t, status: 'preempting', preempt: { reason, requested_at: t.preempt?.requested_at ?? now, deadline } };
}

export interface ReconcileOptions {
  /** Slots of the scope. */
  capacity: number;
  /** The grace a preempted task gets to yield. */
  graceMs: number;
  now: number;
  /** Cancellation flags by correlation id (a task's id is its correlation). */
  flags: ReadonlyMap<string, CancellationFlag>;
}

/** Apply the rules to one scope's tasks; returns the tasks that changed (new objects). */
export function reconcile(tasks: readonly ScheduledTask[], o: ReconcileOptions): ScheduledTask[] {
  const cur = new Map(tasks.map((t) => [`${t.agent_id}/${t.task_id}`, t]));
  const changed = new Map<string, ScheduledTask>();
  const set = (t: ScheduledTask) => {
    const k = `${t.agent_id}/${t.task_id}`;
    cur.set(k, t);
    changed.set(k, t);
  };
  for (const t of [...cur.values()].filter(isLive)) {
    const flag = o.flags.get(t.task_id);
    if (!flag) continue;
    if (t.status === 'queued') set({ ...t, status: 'cancelled', ended_at: o.now, note: `cancelled before it started: ${flag.reason || 'no reason given'}` });
    else set(askToYield(t, `cancelled: ${flag.reason || 'no reason given'}`, o.now, flag.cancelled_at + flag.grace_period_ms));
  }
  for (const t of [...cur.values()]) {
    const flag = o.flags.get(t.task_id);
    const expired = t.status === 'preempting' && ((t.preempt && t.preempt.deadline <= o.now) || graceExpired(flag, o.now));
    if (expired) set({ ...t, status: 'preempted', ended_at: o.now, error_code: 'FORCED_PREEMPTION', note: `preempted by force: ${t.preempt?.reason ?? 'grace period over'}` });
  }
  const live = () => [...cur.values()];
  let free = o.capacity - live().filter(holdsSlot).length;
  const queued = live().filter((t) => t.status === 'queued').sort(compareTasks);
  while (free > 0 && queued.length) {
    const t = queued.shift() as ScheduledTask;
    set({ ...t, status: 'running', started_at: o.now });
    free--;
  }
  // Each queued task that outranks a running one needs one slot to come free: a task already
  // yielding counts as one on its way.
  let coming = live().filter((t) => t.status === 'preempting').length;
  for (const q of queued) {
    if (coming > 0) {
      coming--;
      continue;
    }
    const victims = live().filter((t) => t.status === 'running').sort(compareTasks);
    const victim = victims[victims.length - 1];
    if (!victim || !outranks(q, victim)) break;
    set(askToYield(victim, `a higher-ranked task (${q.agent_id}/${q.task_id}, ${q.comm_class}, priority ${q.priority}) needs the slot`, o.now, o.now + o.graceMs));
  }
  return [...changed.values()];
}

/** The activity line an agent reads for its task (PollActivityBuffer's description). */
export function describeTask(t: ScheduledTask): string {
  switch (t.status) {
    case 'queued':
      return `QUEUED scope=${t.scope} priority=${t.priority} class=${t.comm_class}`;
    case 'running':
      return `RUNNING scope=${t.scope}`;
    case 'preempting':
      return `PREEMPT_REQUESTED yield by ${new Date(t.preempt?.deadline ?? 0).toISOString()} (then FORCED_PREEMPTION): ${t.preempt?.reason ?? ''}`;
    case 'preempted':
      return `PREEMPTED ${t.error_code ?? 'FORCED_PREEMPTION'}: ${t.note ?? ''}`;
    case 'cancelled':
      return `CANCELLED ${t.note ?? ''}`;
  }
}
