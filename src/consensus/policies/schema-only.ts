/**
 * vp.schema_only.v1: the candidate's output matches the task's `output_schema` (JSON Schema, draft-07
 * unless `$schema` names 2019-09 or 2020-12; formats are not checked).
 *
 * Params: none.
 * Outcomes: passed (score 1); failed SCHEMA_MISMATCH (score 0); inconclusive EVIDENCE_UNREACHABLE.
 * A task without `output_schema` is refused when it is submitted; should one reach evaluation anyway,
 * the result is failed with POLICY_PARAMS_INVALID.
 *
 * @example
 *   schemaOnly.evaluate({}, { output_schema: { type: 'object', required: ['a'] }, candidate: { candidate_hash: h, output: { a: 1 } } }).status  // 'passed'
 */
import { ReasonCode } from '../core/reason-codes.js';
import { failed, passed, schemaOutcome, unknownParams, unreachableOutcome } from './common.js';
import type { PolicyInput, PolicyOutcome, VerificationPolicy } from './types.js';

export const SCHEMA_ONLY_ID = 'vp.schema_only.v1';

export const schemaOnly: VerificationPolicy = {
  id: SCHEMA_ONLY_ID,
  requiresOutputSchema: true,
  summary: "the candidate's output matches the task's output_schema",
  checkParams(params: Record<string, unknown>): string[] {
    return unknownParams(params, []);
  },
  evaluate(_params: Record<string, unknown>, input: PolicyInput): PolicyOutcome {
    const unreachable = unreachableOutcome(input.unreachable_evidence);
    if (unreachable) return unreachable;
    if (!input.output_schema) return failed([ReasonCode.POLICY_PARAMS_INVALID], `${SCHEMA_ONLY_ID} needs the task's output_schema, and this task has none`);
    return schemaOutcome(input.output_schema, input.candidate.output) ?? passed('the output matches output_schema');
  },
};
