/**
 * `runtime.type: http` agents as workflow steps: each attempt is one `POST /execute` to the
 * registered executor the agent names (docs/executors.md). The request carries:
 *
 *   task_id          `<run id>/<step id>`
 *   task_type        `runtime.task_type` (default: the agent's name)
 *   inputs           the step's inputs with the run's `shared_inputs` merged and `prompt`/`agent_id` injected
 *   idempotency_key  the step's key (`<run id>/<step id>`, what process agents get as SWARM_IDEMPOTENCY_KEY):
 *                    the same on every retry and re-execution, so an executor does the work once
 *   deadline_ms      now + the step's timeout (less a margin, so the executor's timeout is reported first)
 *   proposer_id      `executor:<name>`, round 1 (what a signed answer is signed for)
 *   traceparent      the step span's (tracing on), else one whose trace id is the run id
 *
 * The answer's `output` becomes the step's outputs (an object as it is, anything else as
 * `{value}`), checked against the agent's `outputs:` by the engine. Its `cost_usd` is counted like
 * an llm step's model call (one `model_calls`, its `cost_usd`) against the run's, the step's and
 * the deployment's budgets (a budget whose model_calls or wall_clock is spent refuses the call with
 * BUDGET_EXCEEDED; the cost is known only after it). Failures: the
 * client's codes (EXECUTOR_UNREACHABLE, EXECUTOR_TIMEOUT and 5xx EXECUTOR_HTTP_ERROR are retried
 * by the step's `retry:` policy; 4xx and EXECUTOR_BAD_RESPONSE are not), EXECUTOR_UNKNOWN,
 * EXECUTOR_TOKEN_MISSING and EXECUTOR_SIGNATURE_INVALID (a signed answer that does not verify
 * against the executor's pinned key; not retried).
 *
 * @example
 *   # agents/summarize-remote/agent.yaml
 *   name: summarize-remote
 *   version: 1.0.0
 *   runtime: { type: http, executor: rt, task_type: summarize, timeout_seconds: 60 }
 */
import { StepError, isSwarmError } from '../../core/errors.js';
import { budgetGuard } from '../../guardrails/budget.js';
import type { GuardDeps } from '../../guardrails/index.js';
import type { ModelCallGate } from '../../guardrails/guard.js';
import { withTraceHeaders } from '../../observability/tracing.js';
import type { Store } from '../../store/store.js';
import type { ExecutionContext, ExecutionResult, Executor } from '../executor.js';
import { newTraceparent } from './client.js';
import type { ExecuteRequest, ExecuteResponse } from './contract.js';
import { executorClientFor } from './resolver.js';
import { mergeSharedInputs } from './shared-inputs.js';
import { candidateFieldsOf } from './signing.js';
import { verifyRecord } from '../../consensus/core/crypto.js';

/** How much earlier than the step's timeout the executor's deadline is. */
const DEADLINE_MARGIN_MS = 250;

export interface HttpExecutorOptions {
  store: Store;
  /** A secret's value for a step of `workflow` (the executor's bearer token). */
  secrets: (name: string, workflow?: string) => Promise<string | undefined> | string | undefined;
  /** Budgets (src/guardrails/): the executor's cost counts against them. None: not counted. */
  guardDeps?: GuardDeps;
  fetch?: typeof fetch;
}

export class HttpExecutor implements Executor {
  /** Runs' shared_inputs, read once per run and process (they never change). */
  private readonly shared = new Map<string, Promise<unknown>>();

  constructor(private readonly o: HttpExecutorOptions) {}

  async execute(ctx: ExecutionContext): Promise<ExecutionResult> {
    const manifest = ctx.agent.manifest;
    const spec = manifest.http;
    if (!spec) return { ok: false, error: new StepError('MANIFEST_INVALID', `agent '${manifest.name}' has runtime.type http but no runtime.executor`, false) };
    const started = Date.now();
    let settle: ModelCallGate['settle'];
    let endGuard: (() => Promise<void>) | undefined;
    try {
      const client = await executorClientFor(this.o.store, (n) => this.o.secrets(n, ctx.workflow), spec.executor, this.o.fetch ? { fetch: this.o.fetch } : {});
      const inputs = mergeSharedInputs(await this.sharedInputs(ctx.runId), ctx.inputs, { agent_id: manifest.name, prompt: spec.prompt });
      // The budget gate: refused before the call when a budget is spent; the cost counted after.
      if (this.o.guardDeps) {
        const guard = await budgetGuard(this.o.guardDeps, {
          runId: ctx.runId,
          stepId: ctx.stepId,
          attempt: ctx.attempt,
          workflow: ctx.workflow ?? '',
          sessionId: `${ctx.runId}/${ctx.stepId}`,
          agents: new Map([[manifest.name, manifest]]),
          inputs: ctx.inputs,
          ...(ctx.budget ? { budget: ctx.budget } : {}),
        });
        if (guard?.beforeModelCall) {
          const state = {};
          const turn = {
            agent: { name: manifest.name },
            turn: 0,
            sessionId: `${ctx.runId}/${ctx.stepId}`,
            messages: [],
            state,
            tell: () => undefined,
            model: { id: `executor:${spec.executor}` },
            request: { model: `executor:${spec.executor}`, system: '', messages: [], tools: [], maxOutputTokens: 0 },
          };
          const gate = await guard.beforeModelCall(turn as unknown as Parameters<NonNullable<typeof guard.beforeModelCall>>[0]);
          settle = gate?.settle;
          if (guard.onEnd) endGuard = async () => void (await guard.onEnd?.({ state }));
        }
      }
      const deadline = Date.now() + Math.max(1, ctx.timeoutMs - DEADLINE_MARGIN_MS);
      const req: ExecuteRequest = {
        task_id: `${ctx.runId}/${ctx.stepId}`,
        task_type: spec.task_type,
        inputs,
        idempotency_key: ctx.idempotencyKey,
        deadline_ms: deadline,
        proposer_id: `executor:${spec.executor}`,
        round: 1,
        ...(hasProperties(manifest.outputs) ? { output_schema: manifest.outputs } : {}),
      };
      const traceparent = withTraceHeaders({}, ctx.trace).traceparent ?? newTraceparent(ctx.runId);
      let res: ExecuteResponse;
      try {
        res = await client.execute(req, { signal: ctx.signal, traceparent });
      } catch (e) {
        await settle?.({ ok: false, error: e });
        settle = undefined;
        throw e;
      }
      // A signed answer from an executor whose key is pinned must verify (signing.ts): an answer altered
      // on the way, or signed by another key, is refused. Unsigned answers are accepted (signing is optional).
      const pinned = client.record.public_key;
      if (pinned && res.signature && !verifyRecord(pinned, 'candidate', candidateFieldsOf(req as { task_id: string; proposer_id: string; round: number }, res), res.signature)) {
        throw new StepError('EXECUTOR_SIGNATURE_INVALID', `executor '${spec.executor}' signed its answer with a key other than the one pinned when it was added, or the answer was altered; check it with 'swarm executors check ${spec.executor}'`, false, { executor: spec.executor });
      }
      const cost = res.cost_usd ?? 0;
      await settle?.({ ok: true, response: {} as never, usage: { input_tokens: 0, output_tokens: 0, cost_usd: cost } });
      settle = undefined;
      const o = res.output;
      const outputs = o !== null && typeof o === 'object' && !Array.isArray(o) ? o : { value: o };
      const note = `executor ${spec.executor}: POST /execute answered in ${Date.now() - started} ms; cost $${cost}${res.candidate_hash ? `; candidate ${res.candidate_hash}` : ''}${res.evidence?.length ? `; ${res.evidence.length} evidence reference(s)` : ''}\n`;
      return { ok: true, outputs, logs: { stdout: note, stderr: '', truncated: false } };
    } catch (e) {
      await settle?.({ ok: false, error: e });
      if (ctx.signal.aborted) {
        const reason: unknown = ctx.signal.reason;
        if (reason instanceof StepError) return { ok: false, error: reason };
      }
      if (e instanceof StepError) return { ok: false, error: e };
      // EXECUTOR_UNKNOWN, EXECUTOR_TOKEN_MISSING: the same next time; a retry cannot help.
      if (isSwarmError(e) && e.exitCode === 2) return { ok: false, error: new StepError(e.code, e.message, false, e.context, { cause: e }) };
      throw e;
    } finally {
      await endGuard?.().catch(() => undefined);
    }
  }

  private sharedInputs(runId: string): Promise<unknown> {
    let hit = this.shared.get(runId);
    if (!hit) {
      hit = this.o.store.getRunSharedInputs(runId).then((json) => (json ? (JSON.parse(json) as unknown) : undefined));
      if (this.shared.size >= 1000) this.shared.clear();
      this.shared.set(runId, hit);
      hit.catch(() => this.shared.delete(runId));
    }
    return hit;
  }
}

function hasProperties(schema: unknown): boolean {
  const p = (schema as { properties?: unknown } | null)?.properties;
  return p !== null && typeof p === 'object' && Object.keys(p).length > 0;
}
