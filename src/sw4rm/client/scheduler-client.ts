/**
 * A client of the SW4RM SchedulerService (scheduler.proto): submit tasks with a priority and a
 * resource scope, ask for cooperative preemption, shut an agent down, read and purge the agents'
 * activity. (The policy, negotiation and HITL services live on the same port; see docs/sw4rm.md.)
 *
 * @example
 *   const scheduler = new SchedulerClient();          // SW4RM_SCHEDULER_ADDR or localhost:50053
 *   await scheduler.submitTask({ agent_id: 'worker-1', task_id: 't-1', priority: 5, params: { file: 'a.ts' } });
 *   await scheduler.requestPreemption('worker-1', 't-0', 'urgent work');
 */
import { sw4rmProtos } from '../proto.js';
import { ServiceClientBase, type Sw4rmClientOptions } from './base.js';
import { Sw4rmClientError } from './errors.js';

export interface SubmitTaskInput {
  agent_id: string;
  task_id: string;
  /** -19..20, higher runs first (default 0). */
  priority?: number;
  /** Bytes as they are; a string as UTF-8; anything else as JSON (content_type application/json). */
  params?: Buffer | string | object;
  content_type?: string;
  /** The resource the task needs a slot of. */
  scope?: string;
}

export interface ActivityEntry {
  task_id: string;
  repo_id: string;
  worktree_id: string;
  branch: string;
  description: string;
  timestamp: string;
}

export class SchedulerClient extends ServiceClientBase {
  constructor(options: Sw4rmClientOptions = {}) {
    super('scheduler', sw4rmProtos().scheduler.SchedulerService, options);
  }

  /** Submit a task; fails with SW4RM_REJECTED (the scheduler's reason) when it is refused. */
  async submitTask(task: SubmitTaskInput): Promise<void> {
    const p = task.params;
    const params = p === undefined ? Buffer.alloc(0) : Buffer.isBuffer(p) ? p : Buffer.from(typeof p === 'string' ? p : JSON.stringify(p));
    const contentType = task.content_type ?? (p !== undefined && !Buffer.isBuffer(p) && typeof p !== 'string' ? 'application/json' : '');
    const res = await this.unary<{ accepted: boolean; reason: string }>('SubmitTask', { agent_id: task.agent_id, task_id: task.task_id, priority: task.priority ?? 0, params, content_type: contentType, scope: task.scope ?? '' });
    if (!res.accepted) throw new Sw4rmClientError('SW4RM_REJECTED', `the scheduler at ${this.address} refused task '${task.task_id}' for '${task.agent_id}': ${res.reason || 'no reason given'}`, { ...this.info('SubmitTask'), reason: res.reason });
  }

  /** Ask `agentId` to yield `taskId` (cooperative: FORCED_PREEMPTION); true when the request was queued. */
  async requestPreemption(agentId: string, taskId: string, reason = ''): Promise<boolean> {
    return (await this.unary<{ enqueued: boolean }>('RequestPreemption', { agent_id: agentId, task_id: taskId, reason })).enqueued;
  }

  /** Ask `agentId` to shut down within `graceMs`. */
  async shutdownAgent(agentId: string, graceMs = 0): Promise<boolean> {
    const seconds = Math.floor(graceMs / 1000);
    return (await this.unary<{ ok: boolean }>('ShutdownAgent', { agent_id: agentId, grace_period: { seconds, nanos: (graceMs - seconds * 1000) * 1e6 } })).ok;
  }

  /** `agentId`'s activity entries as the scheduler holds them. */
  async pollActivityBuffer(agentId: string): Promise<ActivityEntry[]> {
    return (await this.unary<{ entries: ActivityEntry[] }>('PollActivityBuffer', { agent_id: agentId })).entries;
  }

  /** Remove `taskIds` from `agentId`'s activity; how many were removed. */
  async purgeActivity(agentId: string, taskIds: string[]): Promise<number> {
    return (await this.unary<{ purged: number }>('PurgeActivity', { agent_id: agentId, task_ids: taskIds })).purged;
  }
}
