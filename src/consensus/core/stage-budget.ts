/**
 * Stage budgets (source 002's hard gate): each stage spends from its bucket (`propose` from
 * `explore`, `verify` from `verify`, `vote` and `finalize` from `finalize`), in USD. A stage may
 * start another call while its bucket has room: spent + the call's estimate (0 when unknown) must stay
 * within the budget, and spent must be below it (so a bucket of 0 admits no call). A bucket with no
 * budget is unlimited. When the gate says no, the stage stops with STAGE_BUDGET_EXHAUSTED
 * (TASK_STAGE_STOPPED with the bucket). Pure.
 *
 * @example
 *   let spent = emptySpend();
 *   spent = addSpend(spent, 'explore', 0.02);
 *   const g = gateStage({ explore: 0.03 }, spent, 'propose', 0.02);
 *   if (!g.ok) stop(g.bucket, g.code, g.reason);   // 0.02 + 0.02 > 0.03
 */
import { ReasonCode } from './reason-codes.js';
import type { BudgetBucket, StageBudgets, TaskStage } from './types.js';
import { BUDGET_BUCKETS } from './types.js';

export type BucketSpend = Record<BudgetBucket, number>;

/** The bucket a stage spends from. */
export const STAGE_BUCKET: Readonly<Record<TaskStage, BudgetBucket>> = { propose: 'explore', verify: 'verify', vote: 'finalize', finalize: 'finalize' };

export function emptySpend(): BucketSpend {
  return { explore: 0, verify: 0, finalize: 0 };
}

/** `spent` with `usd` added to `bucket` (negative or non-finite amounts count as 0). */
export function addSpend(spent: BucketSpend, bucket: BudgetBucket, usd: number): BucketSpend {
  const add = Number.isFinite(usd) && usd > 0 ? usd : 0;
  return { ...spent, [bucket]: spent[bucket] + add };
}

export type GateVerdict =
  | { ok: true; bucket: BudgetBucket; remaining_usd: number | null }
  | { ok: false; bucket: BudgetBucket; code: number; reason: string; spent_usd: number; budget_usd: number };

/** Whether `stage` may start another call costing about `estimate_usd`. */
export function gateStage(budget: StageBudgets | undefined, spent: BucketSpend, stage: TaskStage, estimate_usd = 0): GateVerdict {
  const bucket = STAGE_BUCKET[stage];
  const limit = budget?.[bucket];
  const used = spent[bucket];
  if (limit === undefined) return { ok: true, bucket, remaining_usd: null };
  const estimate = Number.isFinite(estimate_usd) && estimate_usd > 0 ? estimate_usd : 0;
  if (used >= limit || used + estimate > limit) {
    const why = used >= limit ? `spent ${fmt(used)} of ${fmt(limit)}` : `spent ${fmt(used)} of ${fmt(limit)}; the next call (about ${fmt(estimate)}) would pass it`;
    return { ok: false, bucket, code: ReasonCode.STAGE_BUDGET_EXHAUSTED, reason: `the ${bucket} budget is exhausted: ${why}`, spent_usd: used, budget_usd: limit };
  }
  return { ok: true, bucket, remaining_usd: limit - used };
}

/** The buckets whose spend has reached their budget. */
export function exhaustedBuckets(budget: StageBudgets | undefined, spent: BucketSpend): BudgetBucket[] {
  return BUDGET_BUCKETS.filter((b) => budget?.[b] !== undefined && spent[b] >= (budget[b]));
}

function fmt(usd: number): string {
  return `$${usd.toFixed(usd !== 0 && Math.abs(usd) < 0.01 ? 6 : 4)}`;
}
