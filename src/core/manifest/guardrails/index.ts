/**
 * `guardrails:` in swarm.yaml (the deployment's defaults) and agent.yaml (one agent's): budgets,
 * circuit breakers, the injection and content policy, escalation, and redaction. Each section is
 * parsed by its own module; this one composes them.
 *
 * ```yaml
 * guardrails:
 *   budget: { ... }       # budget.ts
 *   breakers: { ... }     # breakers.ts
 *   policy: { ... }       # policy.ts: injection, content policy, sensitive tools, escalation
 *   redaction: { ... }    # redaction.ts
 * ```
 */
import { BREAKERS_SCHEMA, parseBreakersSpec, type BreakersSpec } from './breakers.js';
import { BUDGET_SCHEMA, parseBudgetSpec, type BudgetSpec } from './budget.js';
import { parsePolicySpec, POLICY_SCHEMA, type PolicySpec } from './policy.js';
import { parseRedactionSpec, REDACTION_SCHEMA, type RedactionSpec } from './redaction.js';
import type { GuardrailSection } from './section.js';

export type { GuardrailSection } from './section.js';
export type { BudgetSpec } from './budget.js';
export type { BreakersSpec } from './breakers.js';
export type { PolicySpec } from './policy.js';
export type { RedactionSpec } from './redaction.js';

export interface GuardrailsSpec {
  budget?: BudgetSpec;
  breakers?: BreakersSpec;
  /** Injection policy, content policy and escalation. */
  policy?: PolicySpec;
  redaction?: RedactionSpec;
}

export const GUARDRAILS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    budget: BUDGET_SCHEMA,
    breakers: BREAKERS_SCHEMA,
    policy: POLICY_SCHEMA,
    redaction: REDACTION_SCHEMA,
  },
};

/** Parse `guardrails:` (validated against GUARDRAILS_SCHEMA already); problems go to `s.problems`. */
export function parseGuardrails(s: GuardrailSection): GuardrailsSpec {
  const raw = (s.value ?? {}) as Record<string, unknown>;
  const at = (key: string): GuardrailSection => ({ ...s, value: raw[key], path: [...s.path, key] });
  return {
    ...(raw.budget !== undefined ? { budget: parseBudgetSpec(at('budget')) } : {}),
    ...(raw.breakers !== undefined ? { breakers: parseBreakersSpec(at('breakers')) } : {}),
    ...(raw.policy !== undefined ? { policy: parsePolicySpec(at('policy')) } : {}),
    ...(raw.redaction !== undefined ? { redaction: parseRedactionSpec(at('redaction')) } : {}),
  };
}
