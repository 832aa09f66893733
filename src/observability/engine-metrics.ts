/**
 * What the engine, the scheduler, the HTTP server and the LLM loop tell the metrics: one small
 * interface, and a null object for when metrics are off. The call sites hold an `EngineMetrics` and
 * call it unconditionally; with `NO_METRICS` each call is an empty function (no label lookups, no
 * clock reads), and prom-client is never loaded. `src/observability/metrics.ts` implements it.
 *
 * @example
 *   const metrics: EngineMetrics = swarm.metrics ?? NO_METRICS;
 *   metrics.webhookRequest('shop/orders', 'accepted');
 *   const response = await timedModelCall(metrics, model.id, model.generate(request));
 */
import type { CommitObserver } from '../store/commit-observer.js';
import type { Store } from '../store/store.js';

/** Webhook delivery outcomes (the `outcome` label of swarm_webhook_requests_total). */
export type WebhookOutcome = 'accepted' | 'duplicate' | 'bad_signature' | 'invalid' | 'not_found' | 'too_large' | 'disabled' | 'error';

/** Schedule tick outcomes (the `outcome` label of swarm_schedule_fires_total). */
export type ScheduleOutcome = 'started' | 'skipped' | 'missed';

export interface EngineMetrics {
  /** False for the null object: a caller may skip preparing what only metrics would use. */
  readonly enabled: boolean;
  /** What the store reports each transaction to (undefined: the store does no extra work). */
  readonly commits: CommitObserver | undefined;
  /** A step attempt started running in this process (swarm_steps_in_flight). */
  stepStarted(): void;
  /** A step attempt running in this process ended (its result or its abandonment). */
  stepEnded(): void;
  /** A step attempt running in this process was stopped after `seconds` because its run ended (was cancelled). */
  stepStopped(planId: string, stepId: string, seconds: number): void;
  /** This process lost `n` step leases (a renewal refused, a result refused by its fencing token). */
  leasesLost(n: number): void;
  /** A worker of this process wrote its heartbeat. */
  heartbeat(): void;
  scheduleFire(workflow: string, outcome: ScheduleOutcome): void;
  /** A webhook delivery's outcome; `path` is "" when no webhook is registered there. */
  webhookRequest(path: string, outcome: WebhookOutcome): void;
  /** A human decided an approval requested `waitSeconds` ago. */
  approvalDecided(workflow: string, decision: 'approved' | 'rejected', waitSeconds: number): void;
  toolCall(tool: string, outcome: 'ok' | 'error', seconds: number): void;
  /** A model call ended; `modelId` is `provider/model`. */
  modelCall(modelId: string, outcome: 'ok' | 'error', seconds: number): void;
  /** The tokens and cost of a model call. */
  modelUsage(modelId: string, usage: { input_tokens: number; output_tokens: number; cost_usd?: number }): void;
  /** A run's budget warned about, or refused a call for, one of its limits. */
  budgetEvent(limit: string, kind: 'warning' | 'exceeded'): void;
  /** A circuit breaker changed state (`kind`: model, tool, mcp, http_host). */
  circuitTransition(kind: string, breaker: string, to: 'closed' | 'open' | 'half_open'): void;
  /** A call was refused (or sent to a fallback) because its circuit was open. */
  circuitRejected(kind: string, breaker: string): void;
  /** A guardrail fired (injection, content_policy, sensitive_tool, escalation) with this action. */
  guardrailEvent(guardrail: string, action: string): void;
  /** `n` values of a data class were redacted, masked or dropped. */
  redacted(dataClass: string, action: string, n: number): void;
  /** A vector memory operation ended. */
  memoryOperation(op: 'write' | 'search' | 'delete', outcome: 'ok' | 'error', seconds: number): void;
}

const nothing = (): void => undefined;

/** Metrics off: every hook does nothing. */
export const NO_METRICS: EngineMetrics = Object.freeze({
  enabled: false,
  commits: undefined,
  stepStarted: nothing,
  stepEnded: nothing,
  stepStopped: nothing,
  leasesLost: nothing,
  heartbeat: nothing,
  scheduleFire: nothing,
  webhookRequest: nothing,
  approvalDecided: nothing,
  toolCall: nothing,
  modelCall: nothing,
  modelUsage: nothing,
  budgetEvent: nothing,
  circuitTransition: nothing,
  circuitRejected: nothing,
  guardrailEvent: nothing,
  redacted: nothing,
  memoryOperation: nothing,
});

/** `call` as it is, timed into the model-call metrics when they are on. */
export function timedModelCall<T>(metrics: EngineMetrics | undefined, modelId: string, call: Promise<T>): Promise<T> {
  if (!metrics?.enabled) return call;
  const started = performance.now();
  return call.then(
    (v) => {
      metrics.modelCall(modelId, 'ok', (performance.now() - started) / 1000);
      return v;
    },
    (e: unknown) => {
      metrics.modelCall(modelId, 'error', (performance.now() - started) / 1000);
      throw e;
    },
  );
}

/** `call` (a tool call's recorded outcome) as it is, timed into the tool-call metrics when they are on. */
export function timedToolCall<T extends { is_error?: boolean }>(metrics: EngineMetrics | undefined, tool: string, call: Promise<T>): Promise<T> {
  if (!metrics?.enabled) return call;
  const started = performance.now();
  return call.then(
    (rec) => {
      metrics.toolCall(tool, rec.is_error ? 'error' : 'ok', (performance.now() - started) / 1000);
      return rec;
    },
    (e: unknown) => {
      metrics.toolCall(tool, 'error', (performance.now() - started) / 1000);
      throw e;
    },
  );
}

/**
 * After a decision committed: the wait of each decided approval of `steps` (request to decision),
 * read back from the store. Decisions come at a human's pace: the two reads cost nothing that matters,
 * and only when metrics are on.
 */
export async function observeApprovalWaits(
  metrics: EngineMetrics,
  store: Pick<Store, 'getRun' | 'listApprovals'>,
  runId: string,
  steps: readonly string[],
): Promise<void> {
  if (!metrics.enabled || steps.length === 0) return;
  const [run, approvals] = await Promise.all([store.getRun(runId), store.listApprovals({ run_id: runId })]);
  // One per step, its latest decision: a step that asked for several tool calls waited once, and
  // one asked again (a retried run) has its earlier decisions on record too.
  const latest = new Map<string, (typeof approvals)[number]>();
  for (const a of approvals) {
    if (!steps.includes(a.step_id) || a.status === 'pending' || a.decided_at === null) continue;
    const seen = latest.get(a.step_id);
    if (!seen || (seen.decided_at ?? 0) < a.decided_at) latest.set(a.step_id, a);
  }
  for (const a of latest.values()) metrics.approvalDecided(run?.workflow_name ?? '', a.status === 'rejected' ? 'rejected' : 'approved', ((a.decided_at ?? a.requested_at) - a.requested_at) / 1000);
}
