/**
 * A run's budget as `swarm runs show` and GET /api/v1/runs/{id} report it: usage against each limit
 * of the run's budget (its root run's, which sub-workflows share) and of the narrower step, agent and
 * sub-workflow budgets of this run that have been drawn on.
 *
 * @example
 *   budgetReport('r1', await store.getBudgetScopes('r1'), Date.now());
 *   // { root_run_id: 'r1', limits: { tokens_out: { used: 830, reserved: 0, allowed: 1000 } }, scopes: [] }
 */
import { BUDGET_LIMITS, type BudgetLimit } from '../core/manifest/guardrails/budget.js';
import type { BudgetScopeUsage } from '../store/budget-types.js';
import { amount } from './budget.js';

export interface LimitUsage {
  used: number;
  /** Held by model calls in flight (their worst case, until they settle). */
  reserved: number;
  allowed: number;
}

export interface BudgetReport {
  root_run_id: string;
  /** The run budget (shared by the whole run tree); empty when only narrower budgets apply. */
  limits: Partial<Record<BudgetLimit, LimitUsage>>;
  /** Narrower budgets of this run: `step:<id>`, `agent:<step>/<agent>`, `run:<id>` (a sub-workflow's own). */
  scopes: Array<{ scope: string; limits: Partial<Record<BudgetLimit, LimitUsage>> }>;
}

function limitsOf(s: BudgetScopeUsage, now: number): Partial<Record<BudgetLimit, LimitUsage>> {
  const out: Partial<Record<BudgetLimit, LimitUsage>> = {};
  for (const l of BUDGET_LIMITS) {
    const allowed = s.limits[l];
    if (allowed === undefined) continue;
    if (l === 'wall_clock') out[l] = { used: Math.round(Math.max(0, now - s.started_at)) / 1000, reserved: 0, allowed };
    else if (l === 'handoff_depth') out[l] = { used: s.used.handoff_depth, reserved: 0, allowed };
    else out[l] = { used: round(s.used[l]), reserved: round(s.reserved[l]), allowed };
  }
  return out;
}

// Cost sums in floating point: 0.30000000000000004 reads badly.
const round = (n: number): number => Number(n.toFixed(9));

/** The report of run `runId` from its root's scopes (undefined: no budget has been drawn on). */
export function budgetReport(runId: string, rootRunId: string, scopes: readonly BudgetScopeUsage[], now: number): BudgetReport | undefined {
  const root = scopes.find((s) => s.id === `run:${rootRunId}`);
  const mine = scopes.filter((s) => s !== root && (s.id === `run:${runId}` || s.id.startsWith(`step:${runId}/`) || s.id.startsWith(`agent:${runId}/`)));
  if (!root && mine.length === 0) return undefined;
  return {
    root_run_id: rootRunId,
    limits: root ? limitsOf(root, now) : {},
    scopes: mine.map((s) => ({ scope: s.id.replace(`${runId}/`, '').replace(`run:${runId}`, 'run'), limits: limitsOf(s, now) })),
  };
}

/** One line per budget scope for `swarm runs show`: `tokens_out 830/1000 (83%), cost_usd $0.01/$0.5 (2%)`. */
export function budgetLines(b: BudgetReport): string[] {
  const fmt = (limits: Partial<Record<BudgetLimit, LimitUsage>>): string =>
    Object.entries(limits)
      .map(([l, u]) => {
        const limit = l as BudgetLimit;
        const pct = u.allowed > 0 ? ` (${Math.round((u.used / u.allowed) * 100)}%)` : '';
        return `${limit} ${amount(limit, u.used)}/${amount(limit, u.allowed)}${pct}${u.reserved > 0 ? ` +${amount(limit, u.reserved)} reserved` : ''}`;
      })
      .join(', ');
  const lines: string[] = [];
  if (Object.keys(b.limits).length) lines.push(`budget${b.root_run_id ? ` (run ${b.root_run_id})` : ''}: ${fmt(b.limits)}`);
  for (const s of b.scopes) lines.push(`budget of ${s.scope}: ${fmt(s.limits)}`);
  return lines;
}
