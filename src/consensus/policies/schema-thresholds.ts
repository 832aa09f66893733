/**
 * vp.schema_thresholds.v1: the candidate's output matches the task's `output_schema`, and named
 * numeric fields lie within bounds.
 *
 * Params:
 *   thresholds  (required) an object from field to `{ min?, max? }` (inclusive bounds, at least one
 *               of them); a field is a JSON pointer (`/scores/0`) or a dotted path (`metrics.f1`).
 *
 * Outcomes: passed when the schema matches and every threshold is met (score 1); failed with
 * SCHEMA_MISMATCH (score 0) when the schema does not match; failed with FIELD_MISSING for a field that
 * is absent or not a number, THRESHOLD_NOT_MET for a value out of bounds (score = the fraction of
 * thresholds met); inconclusive EVIDENCE_UNREACHABLE. Needs the task's output_schema.
 *
 * @example
 *   schemaThresholds.evaluate({ thresholds: { confidence: { min: 0.8 } } }, { output_schema, candidate: { candidate_hash: h, output: { confidence: 0.9 } } }).status  // 'passed'
 */
import { ReasonCode } from '../core/reason-codes.js';
import { failed, isFieldRef, isNum, passed, readField, schemaOutcome, unknownParams, unreachableOutcome } from './common.js';
import type { PolicyInput, PolicyOutcome, VerificationPolicy } from './types.js';

export const SCHEMA_THRESHOLDS_ID = 'vp.schema_thresholds.v1';

export interface Threshold {
  min?: number;
  max?: number;
}

function thresholdsOf(params: Record<string, unknown>): Record<string, Threshold> {
  return (params['thresholds'] ?? {}) as Record<string, Threshold>;
}

export const schemaThresholds: VerificationPolicy = {
  id: SCHEMA_THRESHOLDS_ID,
  requiresOutputSchema: true,
  summary: "output_schema, plus numeric thresholds {min, max} on named fields",
  checkParams(params: Record<string, unknown>): string[] {
    const problems = unknownParams(params, ['thresholds']);
    const t = params['thresholds'];
    if (t === undefined) return [...problems, 'thresholds: is required (an object from field to {min, max})'];
    if (t === null || typeof t !== 'object' || Array.isArray(t)) return [...problems, 'thresholds: must be an object from field to {min, max}'];
    const entries = Object.entries(t as Record<string, unknown>);
    if (entries.length === 0) problems.push('thresholds: names no field');
    for (const [field, b] of entries) {
      const at = `thresholds.${field}`;
      const ref: boolean = isFieldRef(field);
      if (!ref) problems.push(`${at}: '${field}' is not a JSON pointer (/a/b) or a dotted path (a.b)`);
      if (b === null || typeof b !== 'object' || Array.isArray(b)) {
        problems.push(`${at}: must be {min, max}`);
        continue;
      }
      const bounds = b as Record<string, unknown>;
      for (const k of Object.keys(bounds)) if (k !== 'min' && k !== 'max') problems.push(`${at}.${k}: unknown (allowed: min, max)`);
      if (bounds['min'] === undefined && bounds['max'] === undefined) problems.push(`${at}: needs min, max or both`);
      if (bounds['min'] !== undefined && !isNum(bounds['min'])) problems.push(`${at}.min: must be a number`);
      if (bounds['max'] !== undefined && !isNum(bounds['max'])) problems.push(`${at}.max: must be a number`);
      if (isNum(bounds['min']) && isNum(bounds['max']) && bounds['min'] > bounds['max']) problems.push(`${at}: min ${bounds['min']} is more than max ${bounds['max']}`);
    }
    return problems;
  },
  evaluate(params: Record<string, unknown>, input: PolicyInput): PolicyOutcome {
    const unreachable = unreachableOutcome(input.unreachable_evidence);
    if (unreachable) return unreachable;
    if (!input.output_schema) return failed([ReasonCode.POLICY_PARAMS_INVALID], `${SCHEMA_THRESHOLDS_ID} needs the task's output_schema, and this task has none`);
    const schema = schemaOutcome(input.output_schema, input.candidate.output);
    if (schema) return schema;
    const thresholds = Object.entries(thresholdsOf(params));
    if (thresholds.length === 0) return passed('the output matches output_schema (no thresholds)');
    const codes: number[] = [];
    const misses: string[] = [];
    let met = 0;
    for (const [field, { min, max }] of thresholds) {
      const got = readField(input.candidate.output, field);
      if (!got.found || !isNum(got.value)) {
        codes.push(ReasonCode.FIELD_MISSING);
        misses.push(got.found ? `${field} is not a number` : `${field} is missing`);
        continue;
      }
      const v = got.value;
      if (min !== undefined && v < min) {
        codes.push(ReasonCode.THRESHOLD_NOT_MET);
        misses.push(`${field} = ${v} is below ${min}`);
      } else if (max !== undefined && v > max) {
        codes.push(ReasonCode.THRESHOLD_NOT_MET);
        misses.push(`${field} = ${v} is above ${max}`);
      } else met++;
    }
    const score = met / thresholds.length;
    if (misses.length === 0) return passed(`the output matches output_schema and all ${thresholds.length} thresholds`);
    return failed(codes, `${met} of ${thresholds.length} thresholds met: ${misses.join('; ')}`, score);
  },
};
