/**
 * The scheduler's durable side: tasks, delegations and cancellations kept in Swarm's store
 * (migration 22), changed with the pure rules of queue.ts and cancellation.ts. Every change of a
 * scope is one transaction with the scope locked, so two servers on one database agree on who holds
 * a slot; nothing is kept in memory, so a restarted server carries on where the store says.
 *
 * @example
 *   const tasks = new TaskScheduler(swarm.store, { capacity: 1, graceMs: 5000, now: Date.now });
 *   await tasks.submit({ agent_id: 'a', task_id: 't1', priority: 5, scope: 'gpu' }, 'STANDARD');
 */
import type { Store } from '../../store/store.js';
import type { Sw4rmDoc } from '../../store/sw4rm-sched-types.js';
import { cancellationFlags, normalizeCorrelationId, type CancelOutcome, type CancelRequest, type CancellationFlag } from './cancellation.js';
import { askToYield, isLive, newTask, reconcile, type CommClass, type ScheduledTask } from './queue.js';

export interface TaskSchedulerOptions {
  /** Slots per scope. */
  capacity: number;
  /** How long a task asked to yield has before FORCED_PREEMPTION. */
  graceMs: number;
  now: () => number;
}

const taskKey = (agent: string, task: string) => `${agent}/${task}`;
const scopeGroup = (scope: string) => `scope:${scope}`;
const corrGroup = (parent: string) => `corr:${parent}`;

function taskDoc(t: ScheduledTask, now: number): Sw4rmDoc {
  return { kind: 'task', key: taskKey(t.agent_id, t.task_id), grp: scopeGroup(t.scope), owner: t.agent_id, status: t.status, doc: t, updated_at: now };
}

/** The index entry of a task by its id: owner is the task id, the group its scope's (changed with it). */
function idIndexDoc(t: ScheduledTask, now: number): Sw4rmDoc {
  return { kind: 'task-id', key: taskKey(t.agent_id, t.task_id), grp: scopeGroup(t.scope), owner: t.task_id, status: '', doc: { agent_id: t.agent_id }, updated_at: now };
}

export class TaskScheduler {
  constructor(
    private readonly store: Store,
    private readonly o: TaskSchedulerOptions,
  ) {}

  /** The flags of these correlations (read before a scope's transaction; a later flag is seen at the next change). */
  private async flagsOf(ids: readonly string[]): Promise<Map<string, CancellationFlag>> {
    const docs = await this.store.getSw4rmDocs('cancel', [...new Set(ids)]);
    return new Map(docs.map((d) => [d.key, d.doc as CancellationFlag]));
  }

  /**
   * Apply the rules to a scope; `edit` may add or change tasks first (inside the same transaction).
   * Returns every task of the scope after the change.
   */
  private async change(scope: string, extraIds: readonly string[], edit?: (tasks: ScheduledTask[]) => ScheduledTask[]): Promise<ScheduledTask[]> {
    const before = await this.store.listSw4rmDocs('task', { group: scopeGroup(scope) });
    const flags = await this.flagsOf([...before.map((d) => (d.doc as ScheduledTask).task_id), ...extraIds]);
    const now = this.o.now();
    let after: ScheduledTask[] = [];
    await this.store.updateSw4rmGroup(scopeGroup(scope), ['task'], (docs) => {
      const tasks = docs.map((d) => d.doc as ScheduledTask);
      const edited = edit ? edit(tasks) : [];
      const byKey = new Map(tasks.map((t) => [taskKey(t.agent_id, t.task_id), t]));
      // A new task also gets an index entry by its id (its correlation), for cancellations.
      const index = edited.filter((t) => !byKey.has(taskKey(t.agent_id, t.task_id))).map((t) => idIndexDoc(t, now));
      for (const t of edited) byKey.set(taskKey(t.agent_id, t.task_id), t);
      const changed = reconcile([...byKey.values()], { capacity: this.o.capacity, graceMs: this.o.graceMs, now, flags });
      for (const t of changed) byKey.set(taskKey(t.agent_id, t.task_id), t);
      after = [...byKey.values()];
      const put = new Map([...edited, ...changed].map((t) => [taskKey(t.agent_id, t.task_id), t]));
      return { put: [...[...put.values()].map((t) => taskDoc(byKey.get(taskKey(t.agent_id, t.task_id)) as ScheduledTask, now)), ...index], remove: [] };
    });
    return after;
  }

  /**
   * SubmitTask: queue the task (it may start at once, or ask a lower-ranked one to yield). A task id
   * the agent submitted before answers with that task as it is (a retried submit changes nothing).
   */
  async submit(req: Parameters<typeof newTask>[0], comm: CommClass): Promise<{ task: ScheduledTask; created: boolean }> {
    const task = newTask(req, comm, this.o.now());
    const existing = (await this.store.getSw4rmDocs('task', [taskKey(task.agent_id, task.task_id)]))[0];
    if (existing) return { task: existing.doc as ScheduledTask, created: false };
    let created = true;
    const after = await this.change(task.scope, [task.task_id], (tasks) => {
      if (tasks.some((t) => t.agent_id === task.agent_id && t.task_id === task.task_id)) {
        created = false;
        return [];
      }
      return [task];
    });
    return { task: after.find((t) => t.agent_id === task.agent_id && t.task_id === task.task_id) as ScheduledTask, created };
  }

  async get(agentId: string, taskId: string): Promise<ScheduledTask | undefined> {
    return (await this.store.getSw4rmDocs('task', [taskKey(agentId, taskId)]))[0]?.doc as ScheduledTask | undefined;
  }

  /** The agent's tasks, after applying the rules to their scopes (so expired graces show as preempted). */
  async activity(agentId: string): Promise<ScheduledTask[]> {
    const mine = (await this.store.listSw4rmDocs('task', { owner: agentId })).map((d) => d.doc as ScheduledTask);
    for (const scope of new Set(mine.filter(isLive).map((t) => t.scope))) await this.change(scope, []);
    return (await this.store.listSw4rmDocs('task', { owner: agentId })).map((d) => d.doc as ScheduledTask).sort((a, b) => a.submitted_at - b.submitted_at);
  }

  /** RequestPreemption: a running task is asked to yield within the grace; a queued one is preempted now. */
  async preempt(agentId: string, taskId: string, reason: string): Promise<ScheduledTask | undefined> {
    const t = await this.get(agentId, taskId);
    if (!t || !isLive(t)) return undefined;
    const now = this.o.now();
    const why = reason.trim() || 'preemption requested';
    const after = await this.change(t.scope, [], (tasks) => {
      const cur = tasks.find((x) => x.agent_id === agentId && x.task_id === taskId);
      if (!cur || !isLive(cur)) return [];
      if (cur.status === 'queued') return [{ ...cur, status: 'preempted', ended_at: now, error_code: 'FORCED_PREEMPTION', note: `preempted before it started: ${why}` }];
      return [askToYield(cur, why, now, now + this.o.graceMs)];
    });
    return after.find((x) => x.agent_id === agentId && x.task_id === taskId);
  }

  /** ShutdownAgent: every live task of the agent is cancelled (queued) or asked to yield within `graceMs`. */
  async shutdownAgent(agentId: string, graceMs: number): Promise<number> {
    const mine = (await this.store.listSw4rmDocs('task', { owner: agentId })).map((d) => d.doc as ScheduledTask).filter(isLive);
    const now = this.o.now();
    for (const scope of new Set(mine.map((t) => t.scope))) {
      await this.change(scope, [], (tasks) =>
        tasks
          .filter((t) => t.agent_id === agentId && isLive(t))
          .map((t) => (t.status === 'queued' ? { ...t, status: 'cancelled' as const, ended_at: now, note: 'the agent is shutting down' } : askToYield(t, 'the agent is shutting down', now, now + Math.max(0, graceMs)))),
      );
    }
    return mine.length;
  }

  /** PurgeActivity: forget the agent's tasks (a running one yields its slot: this is how a task ends or yields). */
  async purge(agentId: string, taskIds: readonly string[]): Promise<number> {
    const docs = await this.store.getSw4rmDocs('task', taskIds.map((id) => taskKey(agentId, id)));
    let purged = 0;
    for (const scope of new Set(docs.map((d) => (d.doc as ScheduledTask).scope))) {
      const now = this.o.now();
      const flags = await this.flagsOf([]);
      await this.store.updateSw4rmGroup(scopeGroup(scope), ['task'], (rows) => {
        const tasks = rows.map((d) => d.doc as ScheduledTask);
        const gone = tasks.filter((t) => t.agent_id === agentId && taskIds.includes(t.task_id));
        const rest = tasks.filter((t) => !gone.includes(t));
        purged += gone.length;
        const changed = reconcile(rest, { capacity: this.o.capacity, graceMs: this.o.graceMs, now, flags });
        return { put: changed.map((t) => taskDoc(t, now)), remove: gone.flatMap((t) => [{ kind: 'task', key: taskKey(t.agent_id, t.task_id) }, { kind: 'task-id', key: taskKey(t.agent_id, t.task_id) }]) };
      });
      // Freed slots may go to tasks whose correlations were cancelled meanwhile: one more pass with their flags.
      await this.change(scope, []);
    }
    return purged;
  }

  /** Register `child` as a delegation of `parent` (cancelling the parent flags it too). */
  async registerChild(parent: string, child: string): Promise<void> {
    const p = normalizeCorrelationId(parent, 'parent correlation id');
    const c = normalizeCorrelationId(child, 'child correlation id');
    const now = this.o.now();
    await this.store.updateSw4rmGroup(corrGroup(p), ['child'], () => ({ put: [{ kind: 'child', key: `${p}\n${c}`, grp: corrGroup(p), owner: '', status: '', doc: { parent: p, child: c }, updated_at: now }], remove: [] }));
  }

  /** CancelDelegation: flag the correlation and its direct children, then apply the flags to the scopes that hold them. */
  async cancel(req: CancelRequest): Promise<CancelOutcome> {
    const correlation = normalizeCorrelationId(req.correlation_id);
    const now = this.o.now();
    let outcome: CancelOutcome | undefined;
    let flags: CancellationFlag[] = [];
    await this.store.updateSw4rmGroup(corrGroup(correlation), ['child'], (docs) => {
      const children = docs.map((d) => (d.doc as { child: string }).child);
      ({ outcome, flags } = cancellationFlags({ ...req, correlation_id: correlation }, children, now));
      return { put: flags.map((f) => ({ kind: 'cancel', key: f.correlation_id, grp: corrGroup(correlation), owner: '', status: 'cancelled', doc: f, updated_at: now })), remove: [] };
    });
    for (const scope of await this.scopesOf(flags.map((f) => f.correlation_id))) await this.change(scope, []);
    return outcome as CancelOutcome;
  }

  /** The cancellation flag of a correlation, if any. */
  async flag(correlationId: string): Promise<CancellationFlag | undefined> {
    return (await this.flagsOf([correlationId])).get(correlationId);
  }

  /** Scopes holding live tasks whose ids are among `ids` (any agent). */
  private async scopesOf(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const scopes = new Set<string>();
    for (const id of ids) for (const d of await this.store.listSw4rmDocs('task-id', { owner: id })) scopes.add(d.grp.slice('scope:'.length));
    return [...scopes];
  }
}
