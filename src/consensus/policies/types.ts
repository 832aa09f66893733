/**
 * The types of a verification policy (re-exported by index.ts, where the built-in policies are).
 *
 * @example
 *   const policy: VerificationPolicy = POLICIES.get('vp.schema_only.v1')!;
 *   policy.checkParams({})  // []
 */
import type { EvidenceRef, VerificationStatus } from '../core/types.js';

export interface PolicyInput {
  output_schema?: Record<string, unknown>;
  candidate: { candidate_hash: string; output: unknown; evidence?: EvidenceRef[] };
  /** The task's other candidates (crosscheck). */
  others?: ReadonlyArray<{ candidate_hash: string; output: unknown }>;
  /** Evidence the caller could not reach or whose digest did not match (makes the result inconclusive). */
  unreachable_evidence?: readonly string[];
}

export interface PolicyOutcome {
  status: VerificationStatus;
  reason_codes: number[];
  reason: string;
  score: number;
}

export interface VerificationPolicy {
  id: string;
  /** Problems with `params` (empty when valid), checked when a task is submitted. */
  checkParams(params: Record<string, unknown>): string[];
  evaluate(params: Record<string, unknown>, input: PolicyInput): PolicyOutcome;
  /** Whether the task's contract must have an `output_schema` (checked when a task is submitted). */
  readonly requiresOutputSchema?: boolean;
  /** One line on what the policy checks, for docs and `--help`. */
  readonly summary?: string;
}
