/**
 * The verification policies (source 002's policy engine): each a versioned module with its own tests.
 *
 *   vp.schema_only.v1        the output matches the task's output schema
 *   vp.schema_thresholds.v1  schema, plus numeric thresholds on named fields
 *   vp.crosscheck.v1         agreement between candidates (or with a second executor's answer)
 *
 * Pure: no I/O (evidence reachability is checked by the caller and passed in).
 *
 * @example
 *   const r = evaluatePolicy('vp.schema_only.v1', {}, { output_schema, candidate: { candidate_hash: h, output } });
 *   r.status  // 'passed' | 'failed' | 'inconclusive'
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
}

/** The built-in policies by id. */
export const POLICIES: ReadonlyMap<string, VerificationPolicy> = new Map();

/** Evaluate a policy; an unknown id is `failed` with POLICY_UNKNOWN. */
export function evaluatePolicy(policyId: string, params: Record<string, unknown>, input: PolicyInput): PolicyOutcome {
  void policyId;
  void params;
  void input;
  throw new Error('not implemented yet (consensus core)');
}
