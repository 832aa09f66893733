/**
 * A budget's limits: `guardrails.budget` in swarm.yaml (the deployment's default per run) and in
 * agent.yaml (per agent), `budget:` at the top of workflow.yaml (per run) and on a step (per step).
 * Pure parsing and validation; the enforcement is in src/guardrails/budget.ts.
 *
 * ```yaml
 * budget:
 *   tokens_in: 200000
 *   tokens_out: 20000
 *   cost_usd: 0.50
 *   model_calls: 40
 *   tool_calls: 100
 *   wall_clock: 10m      # or 600 (seconds), 90s, 2h
 *   handoff_depth: 3
 *   warn_at: 0.8         # BUDGET_WARNING when a limit is 80% used (default)
 * ```
 */
import { shownValue } from '../problems.js';
import { fieldName, type GuardrailSection } from './section.js';

/** The counted limits (a running total each); `wall_clock` and `handoff_depth` are measured, not summed. */
export const BUDGET_COUNTERS = ['tokens_in', 'tokens_out', 'cost_usd', 'model_calls', 'tool_calls'] as const;
/** Every limit a budget may set, in the order reports list them. */
export const BUDGET_LIMITS = [...BUDGET_COUNTERS, 'wall_clock', 'handoff_depth'] as const;
export type BudgetCounter = (typeof BUDGET_COUNTERS)[number];
export type BudgetLimit = (typeof BUDGET_LIMITS)[number];

/** The default `warn_at`: a warning when 80% of a limit is used. */
export const DEFAULT_WARN_AT = 0.8;

const INTEGER_LIMITS = new Set<BudgetLimit>(['tokens_in', 'tokens_out', 'model_calls', 'tool_calls', 'handoff_depth']);

// Types are checked by the parser, so a bad value gets a sentence naming the limit, not a schema path.
export const BUDGET_SCHEMA: Record<string, unknown> = {
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries([...BUDGET_LIMITS, 'warn_at'].map((k) => [k, {}])),
};

/** A validated budget: only the limits that were set (`wall_clock` in seconds). */
export interface BudgetSpec {
  tokens_in?: number;
  tokens_out?: number;
  cost_usd?: number;
  model_calls?: number;
  tool_calls?: number;
  /** Seconds, from the run's creation (a run budget) or the scope's first call (a step or agent budget). */
  wall_clock?: number;
  /** Handoffs within one conversation (0: no handoff at all). */
  handoff_depth?: number;
  /** Fraction of a limit (0 < x ≤ 1) past which a BUDGET_WARNING is recorded, once per limit. */
  warn_at?: number;
}

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/**
 * A duration in seconds: a number of seconds, or `90s`, `10m`, `2h`, `1d`, `500ms`; undefined when
 * it is not one.
 *
 * @example
 *   parseDuration('10m'); // 600
 */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(v);
  if (!m) return undefined;
  return Number(m[1]) * (UNIT_SECONDS[m[2] ?? 's'] as number);
}

/**
 * Validate a budget section; every problem goes to `s.problems` with file, field and line, and the
 * limits that are valid are returned (the caller throws when there are problems).
 *
 * @example
 *   parseBudgetSpec({ value: { tokens_out: 1000, wall_clock: '2m' }, file, path: ['budget'], lineOf, problems });
 *   // { tokens_out: 1000, wall_clock: 120 }
 */
export function parseBudgetSpec(s: GuardrailSection): BudgetSpec {
  const out: BudgetSpec = {};
  const at = (key: string): { field: string; line: number | undefined } => ({ field: fieldName([...s.path, key]), line: s.lineOf([...s.path, key]) ?? s.lineOf(s.path) });
  if (s.value === null || typeof s.value !== 'object' || Array.isArray(s.value)) {
    s.problems.add(fieldName(s.path), 'a budget is a mapping of limits (tokens_in, tokens_out, cost_usd, model_calls, tool_calls, wall_clock, handoff_depth, warn_at)', s.lineOf(s.path));
    return out;
  }
  const raw = s.value as Record<string, unknown>;
  for (const [key, v] of Object.entries(raw)) {
    const { field, line } = at(key);
    if (key === 'warn_at') {
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 1) s.problems.add(field, `warn_at is a fraction of a limit, more than 0 and at most 1 (like 0.8), not ${shownValue(v)}`, line);
      else out.warn_at = v;
      continue;
    }
    if (!(BUDGET_LIMITS as readonly string[]).includes(key)) {
      s.problems.add(field, `unknown budget limit '${key}' (known: ${BUDGET_LIMITS.join(', ')}, warn_at)`, line);
      continue;
    }
    const limit = key as BudgetLimit;
    if (limit === 'wall_clock') {
      const seconds = parseDuration(v);
      if (seconds === undefined) s.problems.add(field, `wall_clock is a duration (seconds, or like 90s, 10m, 2h, 1d), not ${shownValue(v)}`, line);
      else if (seconds <= 0) s.problems.add(field, `wall_clock must be more than 0, not ${shownValue(v)}`, line);
      else out.wall_clock = seconds;
      continue;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      s.problems.add(field, `${limit} is a number, not ${shownValue(v)}`, line);
      continue;
    }
    // A handoff depth of 0 means "no handoffs"; any other limit of 0 would refuse every call.
    const min = limit === 'handoff_depth' ? 0 : Number.MIN_VALUE;
    if (v < min) s.problems.add(field, `${limit} must be ${limit === 'handoff_depth' ? 'at least 0' : 'more than 0'}, not ${v}`, line);
    else if (INTEGER_LIMITS.has(limit) && !Number.isInteger(v)) s.problems.add(field, `${limit} is a whole number, not ${v}`, line);
    else out[limit] = v;
  }
  // `warn_at` warns about a limit: alone, it limits nothing (and a workflow's would replace the deployment's default with no budget).
  if (raw.warn_at !== undefined && !Object.keys(raw).some((k) => (BUDGET_LIMITS as readonly string[]).includes(k))) {
    s.problems.add(fieldName(s.path), `a budget needs at least one limit (${BUDGET_LIMITS.join(', ')}); warn_at alone limits nothing`, s.lineOf(s.path));
  }
  return out;
}

/** Does this budget set any limit? (`warn_at` alone limits nothing.) */
export function hasLimits(b: BudgetSpec | undefined): b is BudgetSpec {
  return b !== undefined && BUDGET_LIMITS.some((k) => b[k] !== undefined);
}
