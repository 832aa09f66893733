/**
 * `guardrails.breakers` (swarm.yaml, agent.yaml): Circuit breakers: thresholds, window, cool-down, probes, fallback models.
 * Pure parsing and validation; the behaviour is in src/guardrails/.
 */
import type { GuardrailSection } from './section.js';

export const BREAKERS_SCHEMA: Record<string, unknown> = { type: 'object' };

/** `guardrails.breakers` as validated. */
export type BreakersSpec = Record<string, unknown>;

/** Validate `guardrails.breakers` (its JSON Schema has passed); problems go to `s.problems` with file, field and line. */
export function parseBreakersSpec(s: GuardrailSection): BreakersSpec {
  return s.value as BreakersSpec;
}
