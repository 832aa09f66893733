/**
 * The `approval` built-in: a workflow step that pauses its run (status `waiting`) until a human runs
 * `swarm approve <run> [step]` (the step completes with `approved: true`) or `swarm reject <run>
 * [step] --reason …` (the step fails with APPROVAL_REJECTED). The request survives restarts: it is a
 * row in the store, and the waiting step holds no lease.
 */
import { StepError } from '../core/errors.js';
import type { Store } from '../store/store.js';
import type { BuiltinAgent } from './builtins.js';
import { Waiting } from './executor.js';
import { setSpanAttributes } from '../observability/tracing.js';

/** The call id an approval step's request is recorded under. */
export const APPROVAL_STEP_CALL = 'step';

export function approvalAgent(store: Store): BuiltinAgent {
  return async (inputs, ctx) => {
    const decision = await store.getApproval(ctx.runId, ctx.stepId, APPROVAL_STEP_CALL);
    // On the step attempt's span (tracing on): the request, and the decision with how long it took.
    setSpanAttributes(ctx.trace, () => ({
      'swarm.approval.status': decision?.status ?? 'requested',
      ...(decision?.decided_by ? { 'swarm.approval.decided_by': decision.decided_by } : {}),
      ...(decision?.decided_at ? { 'swarm.approval.wait_ms': decision.decided_at - decision.requested_at } : {}),
    }));
    if (!decision) {
      const message = typeof inputs.message === 'string' ? inputs.message : 'approve this step';
      await store.requestApprovals([{ run_id: ctx.runId, step_id: ctx.stepId, call_id: APPROVAL_STEP_CALL, tool: 'approval', arguments: JSON.stringify({ message, ...(inputs.data !== undefined ? { data: inputs.data } : {}) }), requested_at: Date.now() }]);
      return new Waiting(`waiting for approval: ${message}`);
    }
    if (decision.status === 'pending') return new Waiting('waiting for approval');
    if (decision.status === 'rejected') {
      throw new StepError('APPROVAL_REJECTED', `rejected${decision.decided_by ? ` by ${decision.decided_by}` : ''}: ${decision.reason ?? 'no reason given'}`, false);
    }
    return { approved: true, decided_by: decision.decided_by, reason: decision.reason, decided_at: decision.decided_at };
  };
}
