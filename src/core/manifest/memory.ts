/**
 * `memory:` in agent.yaml: the agent's vector memory (namespace, what to remember, retrieval policy).
 * Pure parsing and validation; the behaviour is in src/memory/.
 */
import type { GuardrailSection } from './guardrails/section.js';

export const MEMORY_SCHEMA: Record<string, unknown> = { type: 'object' };

/** `memory:` as validated. */
export type MemorySpec = Record<string, unknown>;

/** Validate `memory:` (its JSON Schema has passed); problems go to `s.problems` with file, field and line. */
export function parseMemorySpec(s: GuardrailSection): MemorySpec {
  return s.value as MemorySpec;
}
