/**
 * HandoffService (handoff.proto) and WorktreeService (worktree.proto) on the scheduler port, kept
 * in the store's documents (migration 22):
 * - a handoff is a `handoff` document owned by its target agent: RequestHandoff records it PENDING
 *   (and, with the `sw4rm-correlation-id` metadata, registers its request_id as a child delegation
 *   of that correlation); Accept/Reject/Complete move it on; CancelDelegation flags a correlation
 *   and its direct children (SW4-004) and preempts their tasks after the grace.
 * - a worktree binding is a `worktree` document per agent: Bind (BOUND_HOME), Unbind (UNBOUND),
 *   RequestSwitch (SWITCH_PENDING when it requires HITL, else BOUND_NON_HOME), ApproveSwitch
 *   (BOUND_NON_HOME for ttl_ms, then home again), RejectSwitch, Status.
 *
 * @example
 *   addHandoffService(server, { store, now: Date.now, tasks });
 */
import type * as grpc from '@grpc/grpc-js';
import { UserError } from '../../core/errors.js';
import type { Store } from '../../store/store.js';
import type { Sw4rmDoc } from '../../store/sw4rm-sched-types.js';
import { sw4rmProtos } from '../proto.js';
import { durationMs, meta, unary } from './grpc-util.js';
import type { TaskScheduler } from './tasks.js';
import type { AgentIdRequest, BindRequest, CancelDelegationMsg, CompleteHandoffRequest, HandoffRequestMsg, HandoffResponseMsg, SwitchApprove, SwitchReject, SwitchRequest } from './wire.js';

function need(v: unknown, field: string, code = 'SW4RM_HANDOFF_INVALID'): string {
  const s = typeof v === 'string' ? v.trim() : '';
  if (!s) throw new UserError(code, `${field} is required`, { field });
  return s;
}

interface HandoffDoc {
  request_id: string;
  from_agent: string;
  to_agent: string;
  reason: string;
  context_snapshot: string;
  capabilities_required: string[];
  priority: number;
  timeout_ms: number;
  budget: unknown;
  delegation_policy: unknown;
  status: 'PENDING' | 'ACCEPTED' | 'REJECTED' | 'COMPLETED' | 'EXPIRED';
  accepting_agent?: string;
  rejection_reason?: string;
  requested_at: number;
}

export function addHandoffService(server: grpc.Server, deps: { store: Store; now: () => number; tasks: TaskScheduler }): void {
  const { store, now } = deps;
  const doc = (h: HandoffDoc): Sw4rmDoc => ({ kind: 'handoff', key: h.request_id, grp: `handoff:${h.request_id}`, owner: h.to_agent, status: h.status, doc: h, updated_at: now() });
  const move = (id: string, to: HandoffDoc['status'], from: ReadonlyArray<HandoffDoc['status']>, extra: Partial<HandoffDoc> = {}) =>
    store.updateSw4rmGroup(`handoff:${id}`, ['handoff'], (docs) => {
      const h = docs[0]?.doc as HandoffDoc | undefined;
      if (!h) throw new UserError('SW4RM_HANDOFF_UNKNOWN', `no handoff '${id}'`, { field: 'request_id' });
      if (!from.includes(h.status)) throw new UserError('SW4RM_HANDOFF_NOT_PENDING', `handoff '${id}' is ${h.status}; it cannot become ${to}`, { field: 'request_id' });
      return { put: [doc({ ...h, ...extra, status: to })], remove: [] };
    });

  server.addService(sw4rmProtos().handoff.HandoffService.service, {
    RequestHandoff: unary<HandoffRequestMsg>(async (req, call) => {
      const h: HandoffDoc = {
        request_id: need(req.request_id, 'request_id'),
        from_agent: need(req.from_agent, 'from_agent'),
        to_agent: need(req.to_agent, 'to_agent'),
        reason: String(req.reason ?? ''),
        context_snapshot: Buffer.from(req.context_snapshot ?? []).toString('base64'),
        capabilities_required: req.capabilities_required ?? [],
        priority: Number(req.priority ?? 0),
        timeout_ms: durationMs(req.timeout),
        budget: req.budget ?? null,
        delegation_policy: req.delegation_policy ?? null,
        status: 'PENDING',
        requested_at: now(),
      };
      const parent = meta(call, 'sw4rm-correlation-id');
      if (parent) await deps.tasks.registerChild(parent, h.request_id);
      await store.updateSw4rmGroup(`handoff:${h.request_id}`, ['handoff'], (docs) => {
        const prev = docs[0]?.doc as HandoffDoc | undefined;
        if (prev && (prev.from_agent !== h.from_agent || prev.to_agent !== h.to_agent)) throw new UserError('SW4RM_HANDOFF_EXISTS', `handoff '${h.request_id}' exists between other agents`, { field: 'request_id' });
        return prev ? { put: [], remove: [] } : { put: [doc(h)], remove: [] };
      });
      return {};
    }),
    AcceptHandoff: unary<HandoffResponseMsg>(async (req) => {
      await move(need(req.request_id, 'request_id'), 'ACCEPTED', ['PENDING'], { accepting_agent: String(req.accepting_agent ?? '') });
      return {};
    }),
    RejectHandoff: unary<HandoffResponseMsg>(async (req) => {
      await move(need(req.request_id, 'request_id'), 'REJECTED', ['PENDING'], { rejection_reason: String(req.rejection_reason ?? '') });
      return {};
    }),
    GetPendingHandoffs: unary<AgentIdRequest>(async (req) => {
      const docs = await store.listSw4rmDocs('handoff', { owner: need(req.agent_id, 'agent_id') });
      const pending = docs.map((d) => d.doc as HandoffDoc).filter((h) => h.status === 'PENDING');
      return {
        pending_requests: pending.map((h) => ({ ...h, context_snapshot: Buffer.from(h.context_snapshot, 'base64'), timeout: { seconds: Math.floor(h.timeout_ms / 1000), nanos: (h.timeout_ms % 1000) * 1e6 }, budget: h.budget ?? undefined, delegation_policy: h.delegation_policy ?? undefined })),
      };
    }),
    CompleteHandoff: unary<CompleteHandoffRequest>(async (req) => {
      const status = String(req.status ?? '');
      if (status !== 'COMPLETED' && status !== 'EXPIRED' && status !== 'REJECTED') {
        throw new UserError('SW4RM_HANDOFF_INVALID', `status must be COMPLETED, EXPIRED or REJECTED (got ${status || 'HANDOFF_STATUS_UNSPECIFIED'})`, { field: 'status' });
      }
      await move(need(req.request_id, 'request_id'), status, ['PENDING', 'ACCEPTED']);
      return { success: true, message: `handoff ${String(req.request_id)} is ${status}` };
    }),
    CancelDelegation: unary<CancelDelegationMsg>(async (req) => {
      const out = await deps.tasks.cancel({ correlation_id: req.correlation_id, reason: req.reason, grace_period_ms: Number(req.grace_period_ms ?? 0) });
      return { acknowledged: out.acknowledged, message: out.message };
    }),
  });
}

interface Binding {
  agent_id: string;
  repo_id: string;
  home_worktree_id: string;
  worktree_id: string;
  state: 'UNBOUND' | 'BOUND_HOME' | 'SWITCH_PENDING' | 'BOUND_NON_HOME' | 'BIND_FAILED';
  pending_target?: string;
  /** When a BOUND_NON_HOME switch ends (0: never). */
  until?: number;
}

export function addWorktreeService(server: grpc.Server, deps: { store: Store; now: () => number }): void {
  const { store, now } = deps;
  const key = (agent: string) => `worktree:${agent}`;
  /** The binding as of now: a timed switch past its TTL is back home. */
  const current = (b: Binding | undefined, agent: string): Binding => {
    if (!b) return { agent_id: agent, repo_id: '', home_worktree_id: '', worktree_id: '', state: 'UNBOUND' };
    if (b.state === 'BOUND_NON_HOME' && b.until && now() >= b.until) return { ...b, state: 'BOUND_HOME', worktree_id: b.home_worktree_id, until: 0 };
    return b;
  };
  const change = async (agentId: unknown, fn: (b: Binding) => Binding): Promise<Binding> => {
    const agent = need(agentId, 'agent_id', 'SW4RM_WORKTREE_INVALID');
    let out: Binding | undefined;
    await store.updateSw4rmGroup(key(agent), ['worktree'], (docs) => {
      out = fn(current(docs[0]?.doc as Binding | undefined, agent));
      return { put: [{ kind: 'worktree', key: agent, grp: key(agent), owner: out.repo_id, status: out.state, doc: out, updated_at: now() }], remove: [] };
    });
    return out as Binding;
  };
  const status = (b: Binding) => ({ repo_id: b.repo_id, worktree_id: b.worktree_id, state: b.state });
  const bound = (b: Binding) => {
    if (b.state === 'UNBOUND') throw new UserError('SW4RM_WORKTREE_UNBOUND_CLOSED', `agent '${b.agent_id}' is not bound to a worktree: Bind first`, { field: 'agent_id' });
    return b;
  };

  server.addService(sw4rmProtos().worktree.WorktreeService.service, {
    Bind: unary<BindRequest>(async (req) => {
      const repo = need(req.repo_id, 'repo_id', 'SW4RM_WORKTREE_INVALID');
      const wt = need(req.worktree_id, 'worktree_id', 'SW4RM_WORKTREE_INVALID');
      await change(req.agent_id, (b) => ({ ...b, repo_id: repo, home_worktree_id: wt, worktree_id: wt, state: 'BOUND_HOME', until: 0, pending_target: '' }));
      return { ok: true, reason: '' };
    }),
    Unbind: unary<AgentIdRequest>(async (req) => {
      await change(req.agent_id, (b) => ({ agent_id: b.agent_id, repo_id: '', home_worktree_id: '', worktree_id: '', state: 'UNBOUND' }));
      return { ok: true };
    }),
    RequestSwitch: unary<SwitchRequest>(async (req) => {
      const target = need(req.target_worktree_id, 'target_worktree_id', 'SW4RM_WORKTREE_INVALID');
      return status(await change(req.agent_id, (b) => {
        bound(b);
        if (target === b.home_worktree_id) return { ...b, state: 'BOUND_HOME', worktree_id: target, pending_target: '', until: 0 };
        return req.requires_hitl ? { ...b, state: 'SWITCH_PENDING', pending_target: target } : { ...b, state: 'BOUND_NON_HOME', worktree_id: target, pending_target: '', until: 0 };
      }));
    }),
    ApproveSwitch: unary<SwitchApprove>(async (req) => {
      const target = need(req.target_worktree_id, 'target_worktree_id', 'SW4RM_WORKTREE_INVALID');
      const ttl = Number(req.ttl_ms ?? 0);
      return status(await change(req.agent_id, (b) => {
        if (b.state !== 'SWITCH_PENDING' || b.pending_target !== target) throw new UserError('SW4RM_WORKTREE_SWITCH_CLOSED', `agent '${b.agent_id}' has no pending switch to '${target}' (state ${b.state})`, { field: 'target_worktree_id' });
        return { ...b, state: 'BOUND_NON_HOME', worktree_id: target, pending_target: '', until: ttl > 0 ? now() + ttl : 0 };
      }));
    }),
    RejectSwitch: unary<SwitchReject>(async (req) =>
      status(await change(req.agent_id, (b) => {
        if (b.state !== 'SWITCH_PENDING') throw new UserError('SW4RM_WORKTREE_SWITCH_CLOSED', `agent '${b.agent_id}' has no pending switch (state ${b.state})`, { field: 'agent_id' });
        return { ...b, state: b.worktree_id === b.home_worktree_id ? 'BOUND_HOME' : 'BOUND_NON_HOME', pending_target: '' };
      })),
    ),
    Status: unary<AgentIdRequest>(async (req) => {
      const agent = need(req.agent_id, 'agent_id', 'SW4RM_WORKTREE_INVALID');
      return status(current((await store.getSw4rmDocs('worktree', [agent]))[0]?.doc as Binding | undefined, agent));
    }),
  });
}
