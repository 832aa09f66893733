/**
 * The SW4RM services on the scheduler port (50053): SchedulerService, SchedulerPolicyService,
 * NegotiationService, NegotiationRoomService, HitlService, WorktreeService and HandoffService, as
 * the project's protos define them, over the durable rules of tasks.ts, negotiation.ts and hitl.ts.
 * The RPCs Swarm leaves out answer UNIMPLEMENTED naming themselves (docs/sw4rm.md lists them).
 *
 * @example
 *   const handle = addSchedulerServices(server, deps);   // then bind the server's port
 */
import type * as grpc from '@grpc/grpc-js';
import { UserError } from '../../core/errors.js';
import { sw4rmProtos } from '../proto.js';
import type { Sw4rmServiceDeps, Sw4rmServiceHandle } from '../service-types.js';
import { HitlBridge } from './hitl.js';
import { callSignal, durationMs, meta, unary } from './grpc-util.js';
import { describeTask, commClass } from './queue.js';
import { addNegotiationServices, policyStore } from './negotiation-service.js';
import { TaskScheduler } from './tasks.js';
import { addHandoffService, addWorktreeService } from './handoff-service.js';
import type { AgentIdRequest, HitlInvocation, PreemptRequest, PurgeActivityRequest, ShutdownAgentRequest, SubmitTaskRequest } from './wire.js';

/** Tunables of the scheduler port (defaults suit production; tests shorten them). */
export interface SchedulerServiceOptions {
  /** Slots per scope (default 1). */
  scopeCapacity?: number;
  /** How long a task asked to yield has before FORCED_PREEMPTION (default 5 s, the protocol's minimum grace). */
  preemptGraceMs?: number;
  /** How often a HITL waiter and a room waiter look at the store (default 250 ms). */
  pollMs?: number;
}

export function addSchedulerServices(server: grpc.Server, deps: Sw4rmServiceDeps, options: SchedulerServiceOptions = {}): Sw4rmServiceHandle {
  const protos = sw4rmProtos();
  const store = deps.swarm.store;
  const pollMs = options.pollMs ?? 250;
  const tasks = new TaskScheduler(store, { capacity: options.scopeCapacity ?? 1, graceMs: options.preemptGraceMs ?? 5000, now: () => deps.now() });
  const hitl = new HitlBridge(deps.swarm, { pollMs, now: () => deps.now() });
  const closing = new AbortController();

  server.addService(protos.scheduler.SchedulerService.service, {
    SubmitTask: unary<SubmitTaskRequest>(async (req, call) => {
      // The agent's communication class: the caller says it in metadata (its registered class).
      const { task, created } = await tasks.submit(req, commClass(meta(call, 'sw4rm-communication-class').toUpperCase()));
      return { accepted: true, reason: `${created ? '' : 'already submitted: '}${describeTask(task)}` };
    }),
    RequestPreemption: unary<PreemptRequest>(async (req) => {
      const t = await tasks.preempt(String(req.agent_id ?? ''), String(req.task_id ?? ''), String(req.reason ?? ''));
      return { enqueued: t !== undefined };
    }),
    ShutdownAgent: unary<ShutdownAgentRequest>(async (req) => {
      const agent = String(req.agent_id ?? '').trim();
      if (!agent) throw new UserError('SW4RM_TASK_INVALID', 'ShutdownAgent: agent_id is required', { field: 'agent_id' });
      await tasks.shutdownAgent(agent, durationMs(req.grace_period));
      return { ok: true };
    }),
    PollActivityBuffer: unary<AgentIdRequest>(async (req) => {
      const agent = String(req.agent_id ?? '').trim();
      if (!agent) throw new UserError('SW4RM_TASK_INVALID', 'PollActivityBuffer: agent_id is required', { field: 'agent_id' });
      const entries = (await tasks.activity(agent)).map((t) => ({ task_id: t.task_id, repo_id: '', worktree_id: '', branch: t.scope, description: describeTask(t), timestamp: new Date(t.ended_at ?? t.preempt?.requested_at ?? t.started_at ?? t.submitted_at).toISOString() }));
      return { entries };
    }),
    PurgeActivity: unary<PurgeActivityRequest>(async (req) => ({ purged: await tasks.purge(String(req.agent_id ?? '').trim(), req.task_ids ?? []) })),
  });

  addNegotiationServices(server, { store, now: () => deps.now(), pollMs, closing: closing.signal, policies: policyStore(store, () => deps.now()) });

  server.addService(protos.hitl.HitlService.service, {
    Decide: unary<HitlInvocation>(async (req, call) => {
      const signal = AbortSignal.any([callSignal(call), closing.signal]);
      const { id } = await hitl.invoke(
        { reason_type: String(req.reason_type ?? 'HITL_REASON_UNSPECIFIED'), context: Buffer.from(req.context ?? []), proposed_actions: req.proposed_actions ?? [], priority: Number(req.priority ?? 0) },
        meta(call, 'sw4rm-hitl-id') || undefined,
      );
      return hitl.awaitDecision(id, signal);
    }),
  });

  addWorktreeService(server, { store, now: () => deps.now() });
  addHandoffService(server, { store, now: () => deps.now(), tasks });

  return {
    close: async () => {
      closing.abort();
    },
  };
}
