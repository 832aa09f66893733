/**
 * Budgets: limits on tokens, cost, model calls, tool calls, wall-clock time and handoff depth,
 * enforced before each call. A run's budget is one budget for the whole run tree: every llm step,
 * every handoff and every sub-workflow run draws from the root run's scope in the store, across
 * processes and restarts. A step's and an agent's budgets are narrower scopes of that step's own
 * usage; a call must fit every scope that applies.
 *
 * A model call draws its worst case (the request's estimated input tokens, the agent's
 * `max_output_tokens` or DEFAULT_MAX_OUTPUT_TOKENS, at the model's price) before it is made; if any
 * limit would be crossed the call is not made and the step fails with BUDGET_EXCEEDED (not retried).
 * After the call the worst case is replaced by the actual usage (released when the call failed).
 * A tool call uses one `tool_calls` before it runs; a handoff is checked against `handoff_depth`.
 * Calls draw on a lease of the budget held in the store and are gated in memory while it lasts
 * (budget-lease.ts): the store is visited once per lease, not once per call.
 *
 * @example
 *   const guard = await budgetGuard(deps, ctx); // undefined: no budget applies (the loop pays nothing)
 */
import { randomUUID } from 'node:crypto';
import { StepError } from '../core/errors.js';
import { EventType } from '../core/events.js';
import { hasLimits, type BudgetLimit, type BudgetSpec } from '../core/manifest/guardrails/budget.js';
import { priceOf } from '../agents/providers/prices.js';
import { estimateInputTokens } from '../agents/types.js';
import type { BudgetAmount, BudgetExceeded, BudgetScopeKey, BudgetWarning } from '../store/budget-types.js';
import type { Store } from '../store/store.js';
import { firstTime } from './audit.js';
import { LeasePool, type LeaseHold } from './budget-lease.js';
import type { LoopGuard, ModelCallGate, ToolCallGate } from './guard.js';
import type { GuardDeps, GuardEvent, StepGuardContext } from './index.js';

/** The output a model call reserves when its agent sets no `max_output_tokens`. */
export const DEFAULT_MAX_OUTPUT_TOKENS = 4096;
/** How long an unsettled reservation holds the budget (a crashed worker's is given back after it). */
export const RESERVATION_TTL_MS = 15 * 60_000;

const MODEL_COUNTERS = ['tokens_in', 'tokens_out', 'cost_usd', 'model_calls'] as const;

interface RunRoot {
  root: string;
  rootCreatedAt: number;
  runCreatedAt: number;
  /** The root's workflow budget (undefined: none, the deployment's default applies). */
  rootBudget: BudgetSpec | undefined;
}

// A run's root never changes: one read of the run tree per run and process, never per model call.
const roots = new Map<string, Promise<RunRoot>>();

async function rootOf(store: Store, runId: string, own: BudgetSpec | undefined): Promise<RunRoot> {
  let hit = roots.get(runId);
  if (!hit) {
    hit = (async () => {
      const run = await store.getRun(runId);
      let at = run;
      // A fork (fork_step_id set) is a root of its own: it does not share its parent's budget.
      for (let hops = 0; at?.parent_run_id && !at.fork_step_id && hops < 64; hops++) at = await store.getRun(at.parent_run_id);
      const root = at ?? run;
      const rootId = root?.id ?? runId;
      let rootBudget = own;
      if (rootId !== runId) {
        const plan = await store.getPlanJson(rootId);
        rootBudget = plan ? (JSON.parse(plan) as { workflow?: { budget?: BudgetSpec } }).workflow?.budget : undefined;
      }
      // No run (a chat session stands for one): its wall clock counts from its first guarded call.
      const now = run ? 0 : await store.now();
      return { root: rootId, rootCreatedAt: root?.created_at ?? now, runCreatedAt: run?.created_at ?? now, rootBudget };
    })();
    if (roots.size >= 1000) roots.clear();
    roots.set(runId, hit);
    hit.catch(() => roots.delete(runId));
  }
  return hit;
}


/** The budget guard of one step attempt; undefined when no budget applies to it. */
export async function budgetGuard(deps: GuardDeps, ctx: StepGuardContext): Promise<LoopGuard | undefined> {
  const own = ctx.budget?.workflow;
  const r = await rootOf(deps.store, ctx.runId, own);
  const runLimits = r.rootBudget ?? deps.config.budget;
  const shared: BudgetScopeKey[] = [];
  if (hasLimits(runLimits)) shared.push({ id: `run:${r.root}`, root_run_id: r.root, limits: runLimits, started_at: r.rootCreatedAt });
  // A sub-workflow's own `budget:` is a narrower limit on its run, inside its root's.
  if (r.root !== ctx.runId && hasLimits(own)) shared.push({ id: `run:${ctx.runId}`, root_run_id: r.root, limits: own, started_at: r.runCreatedAt });
  const agentLimits = new Map<string, BudgetSpec>();
  for (const [name, m] of ctx.agents) {
    const b = m.llm?.guardrails?.budget;
    if (hasLimits(b)) agentLimits.set(name, b);
  }
  const step = ctx.budget?.step;
  if (shared.length === 0 && agentLimits.size === 0 && !hasLimits(step)) return undefined;
  // Step and agent scopes count their wall clock from their first call, on the store's clock.
  const startedAt = hasLimits(step) || agentLimits.size > 0 ? await deps.store.now() : 0;
  if (hasLimits(step)) shared.push({ id: `step:${ctx.runId}/${ctx.stepId}`, root_run_id: r.root, limits: step, started_at: startedAt });
  const scopesOf = (agent: string): BudgetScopeKey[] => {
    const b = agentLimits.get(agent);
    return b ? [...shared, { id: `agent:${ctx.runId}/${ctx.stepId}/${agent}`, root_run_id: r.root, limits: b, started_at: startedAt }] : shared;
  };
  // Only the scopes that limit what a call draws on are read and written.
  const limiting = (scopes: BudgetScopeKey[], limits: readonly BudgetLimit[]): BudgetScopeKey[] => scopes.filter((s) => s.limits.wall_clock !== undefined || limits.some((l) => s.limits[l] !== undefined));
  // The scopes of an agent's model calls and tool calls do not change while the step runs: worked out
  // once each (the same array every time, which the lease pool also keys its leases by).
  const callScopes = new Map<string, BudgetScopeKey[]>();
  const scopesOfCall = (agent: string, kind: 'model' | 'tool'): BudgetScopeKey[] => {
    const key = `${kind} ${agent}`;
    let scopes = callScopes.get(key);
    if (!scopes) {
      scopes = limiting(scopesOf(agent), kind === 'model' ? MODEL_COUNTERS : ['tool_calls']);
      callScopes.set(key, scopes);
    }
    return scopes;
  };

  const report = async (warnings: readonly BudgetWarning[], exceeded?: BudgetExceeded): Promise<void> => {
    const events: GuardEvent[] = warnings.map((w) => ({ type: EventType.BUDGET_WARNING, data: { ...w, message: `budget warning: ${describe(w.scope, ctx)} has used ${amount(w.limit, w.used)} of ${amount(w.limit, w.allowed)} ${w.limit}` } }));
    if (exceeded) events.push({ type: EventType.BUDGET_EXCEEDED, data: { ...exceeded, message: exceededMessage(exceeded, ctx) } });
    if (events.length === 0) return;
    const m = deps.metrics();
    for (const w of warnings) m.budgetEvent(w.limit, 'warning');
    if (exceeded) m.budgetEvent(exceeded.limit, 'exceeded');
    await deps.recordEvents(ctx.runId, ctx.stepId, events);
  };
  const use = async (scopes: BudgetScopeKey[], amount: BudgetAmount, handoffDepth?: number): Promise<void> => {
    const res = await deps.store.reserveBudget({ reservation_id: randomUUID(), scopes, amount, commit: true, ttl_ms: RESERVATION_TTL_MS, ...(handoffDepth !== undefined ? { handoff_depth: handoffDepth } : {}) });
    if (!res.ok) {
      await report([], res.exceeded);
      throw budgetExceeded(res.exceeded, ctx);
    }
    await report(res.warnings);
  };

  // Model calls and tool calls draw on leases of the budget, gated in memory (budget-lease.ts).
  const leases = new LeasePool(deps.store, report, (e) => budgetExceeded(e, ctx));

  return {
    // A call the lease in memory covers is answered at once (no promise); the others visit the store.
    beforeModelCall: (t) => {
      const scopes = scopesOfCall(t.agent.name, 'model');
      if (scopes.length === 0) return undefined;
      const tokensIn = estimateInputTokens(t.request);
      const tokensOut = t.request.maxOutputTokens ?? ctx.agents.get(t.agent.name)?.llm?.max_output_tokens ?? DEFAULT_MAX_OUTPUT_TOKENS;
      const price = priceOf(t.model.id, deps.providers);
      const cost = price ? (tokensIn * price.input + tokensOut * price.output) / 1_000_000 : 0;
      const call = { tokens_in: tokensIn, tokens_out: tokensOut, cost_usd: cost, model_calls: 1 };
      const gate = (held: LeaseHold | undefined): ModelCallGate => ({
        // A failed call gives its worst case back: what it may have cost is the provider's retry policy's to bound.
        settle: (o) => held?.settle(o.ok ? { tokens_in: o.usage.input_tokens, tokens_out: o.usage.output_tokens, cost_usd: o.usage.cost_usd, model_calls: 1 } : {}),
      });
      const now = leases.takeNow(scopes, call, true);
      return now ? gate(now.hold) : leases.take(t.state, scopes, call, true).then(gate);
    },
    beforeToolCall: (t) => {
      // Handoffs are counted by depth (onHandoff); an unknown tool runs nothing.
      if (!t.tool) return undefined;
      const scopes = scopesOfCall(t.agent.name, 'tool');
      if (scopes.length === 0) return undefined;
      // A call paused for approval is gated again at each resume: it counts once (the key is saved with the checkpoint).
      if (!firstTime(t.state, t.turn, `budget:${t.call.id}`)) return undefined;
      if (leases.takeNow(scopes, { tool_calls: 1 }, false)) return undefined;
      return leases.take(t.state, scopes, { tool_calls: 1 }, false).then(
        () => undefined,
        (e: unknown): ToolCallGate => ({ verdict: { action: 'stop', error: e as Error } }),
      );
    },
    onToolResult: async (t) => {
      // A result replayed after a crash, of a call counted after the last checkpoint: that count was
      // in the crashed process's lease only, and is not in the usage its checkpoint settles.
      if (!t.replayed || !t.tool) return;
      const scopes = scopesOfCall(t.agent.name, 'tool');
      if (scopes.length && firstTime(t.state, t.turn, `budget:${t.call.id}`)) await leases.take(t.state, scopes, { tool_calls: 1 }, false).catch(() => undefined);
    },
    onEnd: (t) => leases.end(t.state),
    onHandoff: async (t) => {
      const scopes = scopesOf(t.from).filter((s) => s.limits.handoff_depth !== undefined || s.limits.wall_clock !== undefined);
      if (scopes.length) await use(scopes, {}, t.depth);
    },
  };
}

/** The BUDGET_EXCEEDED error of a step: names the limit, the used and the allowed amounts. Not retried (a retry would draw on the same budget). */
export function budgetExceeded(e: BudgetExceeded, ctx: Pick<StepGuardContext, 'runId' | 'stepId'>): StepError {
  return new StepError('BUDGET_EXCEEDED', exceededMessage(e, ctx), false, { limit: e.limit, used: e.used, allowed: e.allowed, scope: e.scope });
}

function exceededMessage(e: BudgetExceeded, ctx: Pick<StepGuardContext, 'runId' | 'stepId'>): string {
  const where = describe(e.scope, ctx);
  if (e.limit === 'wall_clock') return `budget exceeded: wall_clock of ${where}: ${amount('wall_clock', e.used)} used, ${amount('wall_clock', e.allowed)} allowed`;
  if (e.limit === 'handoff_depth') return `budget exceeded: handoff_depth of ${where}: this handoff would be number ${e.requested}, ${e.allowed} allowed`;
  const held = e.reserved > 0 ? ` (+ ${amount(e.limit, e.reserved)} reserved by calls in flight)` : '';
  const need = e.requested > 0 ? `, this call needs up to ${amount(e.limit, e.requested)}` : '';
  return `budget exceeded: ${e.limit} of ${where}: ${amount(e.limit, e.used)} used${held}${need}, ${amount(e.limit, e.allowed)} allowed`;
}

function describe(scope: string, ctx: Pick<StepGuardContext, 'runId' | 'stepId'>): string {
  if (scope.startsWith('run:')) return scope.slice(4) === ctx.runId ? 'the run budget' : `the run budget of run ${scope.slice(4)}`;
  if (scope.startsWith('step:')) return `the budget of step '${ctx.stepId}'`;
  return `the budget of agent '${scope.slice(scope.lastIndexOf('/') + 1)}'`;
}

/** A limit's amount as people read it: dollars, seconds, or a count. */
export function amount(limit: BudgetLimit, n: number): string {
  if (limit === 'cost_usd') return `$${Number(n.toFixed(6))}`;
  if (limit === 'wall_clock') return `${Number(n.toFixed(3))}s`;
  return String(n);
}

