/**
 * `runtime.type: sw4rm` agents as workflow steps: the step's inputs go as one SW4RM message (DATA by
 * default, application/json) to the agent named by `runtime.to`, and the step completes when that
 * agent's FULFILLED ACK arrives (`wait: fulfilled`) or its correlated reply (`wait: reply`).
 *
 * Outputs: for `wait: reply`, the reply's JSON payload when it is an object, else `{value}`; for
 * `wait: fulfilled`, `{stage, note, message_id, correlation_id}`. Failures: SW4RM_REJECTED,
 * SW4RM_FAILED, SW4RM_TIMED_OUT, SW4RM_TOOL_ERROR (not retried), SW4RM_ACK_TIMEOUT, SW4RM_NO_ROUTE,
 * SW4RM_UNAVAILABLE (retried by the step's policy without sending twice: the idempotency token is
 * the run's and step's, not the attempt's).
 *
 * @example
 *   # agents/translate/agent.yaml
 *   name: translate
 *   version: 1.0.0
 *   runtime: { type: sw4rm, to: translator, router: 127.0.0.1:50051, wait: reply, timeout: 30s }
 */
import { StepError } from '../../core/errors.js';
import type { ExecutionContext, ExecutionResult, Executor } from '../../executors/executor.js';
import { exchange, ExchangeError, type ExchangeOutcome } from './exchange.js';
import { stepIdentity } from './ids.js';

/** A step's outputs from the outcome of its exchange. */
export function stepOutputs(out: ExchangeOutcome, correlationId: string): Record<string, unknown> {
  if (out.kind === 'fulfilled') return { stage: out.ack.ack_stage, note: out.ack.note, message_id: out.messageId, correlation_id: correlationId };
  const p = out.payload;
  return p !== null && typeof p === 'object' && !Array.isArray(p) ? (p as Record<string, unknown>) : { value: p };
}

/** Runs sw4rm agents: no process, one gRPC exchange with the router per attempt. */
export class Sw4rmExecutor implements Executor {
  async execute(ctx: ExecutionContext): Promise<ExecutionResult> {
    const spec = ctx.agent.manifest.sw4rm;
    if (!spec) return { ok: false, error: new StepError('MANIFEST_INVALID', `agent '${ctx.agent.manifest.name}' has runtime.type sw4rm but no runtime.to`, false) };
    const identity = stepIdentity(ctx.runId, ctx.stepId, ctx.attempt);
    try {
      const out = await exchange({
        router: spec.router,
        to: spec.to,
        identity,
        messageType: spec.message_type,
        payload: ctx.inputs,
        wait: spec.wait,
        waitMs: spec.wait_ms,
        signal: ctx.signal,
        retryCount: Math.max(0, ctx.attempt - 1),
      });
      return { ok: true, outputs: stepOutputs(out, identity.correlationId) };
    } catch (e) {
      if (e instanceof ExchangeError) return { ok: false, error: new StepError(e.code, e.message, e.retryable, { ...e.context, agent_id: identity.agentId }) };
      if (ctx.signal.aborted) {
        const reason: unknown = ctx.signal.reason;
        return { ok: false, error: reason instanceof StepError ? reason : new StepError('STEP_ABORTED', 'aborted', true) };
      }
      throw e;
    }
  }
}
