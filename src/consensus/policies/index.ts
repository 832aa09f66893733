/**
 * The verification policies (source 002's policy engine): each a versioned module with its own tests.
 * The id carries the version: a changed rule is a new id, so a recorded result always names the
 * rule it was made under.
 *
 *   vp.schema_only.v1        the output matches the task's output schema          (schema-only.ts)
 *   vp.schema_thresholds.v1  schema, plus numeric thresholds on named fields       (schema-thresholds.ts)
 *   vp.crosscheck.v1         agreement between candidates (or with a second executor's answer) (crosscheck.ts)
 *
 * Pure: no I/O (evidence reachability is checked by the caller and passed in).
 *
 * @example
 *   const r = evaluatePolicy('vp.schema_only.v1', {}, { output_schema, candidate: { candidate_hash: h, output } });
 *   r.status  // 'passed' | 'failed' | 'inconclusive'
 */
import { errorMessage } from '../../core/errors.js';
import { ReasonCode } from '../core/reason-codes.js';
import { failed, inconclusive } from './common.js';
import { crosscheck } from './crosscheck.js';
import { schemaOnly } from './schema-only.js';
import { schemaThresholds } from './schema-thresholds.js';
import type { PolicyInput, PolicyOutcome, VerificationPolicy } from './types.js';

export type { PolicyInput, PolicyOutcome, VerificationPolicy } from './types.js';
export { schemaOnly, SCHEMA_ONLY_ID } from './schema-only.js';
export { schemaThresholds, SCHEMA_THRESHOLDS_ID } from './schema-thresholds.js';
export { crosscheck, CROSSCHECK_ID, CROSSCHECK_DEFAULTS } from './crosscheck.js';

/** The built-in policies by id. */
export const POLICIES: ReadonlyMap<string, VerificationPolicy> = new Map([schemaOnly, schemaThresholds, crosscheck].map((p) => [p.id, p]));

/**
 * Evaluate a policy. An unknown id is `failed` with POLICY_UNKNOWN; params its `checkParams` refuses
 * are `failed` with POLICY_PARAMS_INVALID; a policy that throws is `inconclusive` with VERIFIER_ERROR
 * (a fault of the verifier, not of the candidate).
 */
export function evaluatePolicy(policyId: string, params: Record<string, unknown>, input: PolicyInput): PolicyOutcome {
  const policy = POLICIES.get(policyId);
  if (!policy) return failed([ReasonCode.POLICY_UNKNOWN], `unknown verification policy '${policyId}' (known: ${[...POLICIES.keys()].join(', ')})`);
  const problems = policy.checkParams(params ?? {});
  if (problems.length > 0) return failed([ReasonCode.POLICY_PARAMS_INVALID], `${policyId} params: ${problems.join('; ')}`);
  try {
    return policy.evaluate(params ?? {}, input);
  } catch (e) {
    return inconclusive([ReasonCode.VERIFIER_ERROR], `${policyId} failed to evaluate: ${errorMessage(e)}`);
  }
}
