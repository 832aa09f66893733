/** vp.schema_thresholds.v1: every state and reason code, fields by JSON pointer and dotted path. */
import { describe, expect, it } from 'vitest';
import { candidateHash } from '../src/consensus/core/crypto.js';
import { ReasonCode } from '../src/consensus/core/reason-codes.js';
import { schemaThresholds } from '../src/consensus/policies/schema-thresholds.js';

const schema = { type: 'object', required: ['confidence'] };
const cand = (output: unknown): { candidate_hash: string; output: unknown } => ({ candidate_hash: candidateHash(output), output });
const params = { thresholds: { confidence: { min: 0.8 }, '/metrics/latency_ms': { max: 200 }, 'scores.1': { min: 0, max: 10 } } };

describe('vp.schema_thresholds.v1', () => {
  it('passed when the schema matches and every threshold is met (bounds inclusive)', () => {
    const out = { confidence: 0.8, metrics: { latency_ms: 200 }, scores: [99, 10] };
    expect(schemaThresholds.evaluate(params, { output_schema: schema, candidate: cand(out) })).toEqual({ status: 'passed', reason_codes: [], reason: 'the output matches output_schema and all 3 thresholds', score: 1 });
  });
  it('THRESHOLD_NOT_MET, score = the fraction met', () => {
    const r = schemaThresholds.evaluate(params, { output_schema: schema, candidate: cand({ confidence: 0.5, metrics: { latency_ms: 250 }, scores: [0, 3] }) });
    expect(r).toMatchObject({ status: 'failed', reason_codes: [ReasonCode.THRESHOLD_NOT_MET] });
    expect(r.score).toBeCloseTo(1 / 3);
    expect(r.reason).toBe('1 of 3 thresholds met: confidence = 0.5 is below 0.8; /metrics/latency_ms = 250 is above 200');
  });
  it('FIELD_MISSING for an absent field or one that is not a number', () => {
    const r = schemaThresholds.evaluate(params, { output_schema: schema, candidate: cand({ confidence: 0.9, metrics: { latency_ms: '5' } }) });
    expect(r).toMatchObject({ status: 'failed', reason_codes: [ReasonCode.FIELD_MISSING] });
    expect(r.reason).toBe('1 of 3 thresholds met: /metrics/latency_ms is not a number; scores.1 is missing');
    expect(r.score).toBeCloseTo(1 / 3);
  });
  it('SCHEMA_MISMATCH first; EVIDENCE_UNREACHABLE inconclusive', () => {
    expect(schemaThresholds.evaluate(params, { output_schema: schema, candidate: cand({}) })).toMatchObject({ status: 'failed', reason_codes: [ReasonCode.SCHEMA_MISMATCH], score: 0 });
    expect(schemaThresholds.evaluate(params, { output_schema: schema, candidate: cand({ confidence: 1 }), unreachable_evidence: ['d'] })).toMatchObject({ status: 'inconclusive', reason_codes: [ReasonCode.EVIDENCE_UNREACHABLE] });
    expect(schemaThresholds.evaluate(params, { candidate: cand({ confidence: 1 }) })).toMatchObject({ status: 'failed', reason_codes: [ReasonCode.POLICY_PARAMS_INVALID] });
  });
  it('params are checked', () => {
    expect(schemaThresholds.checkParams(params)).toEqual([]);
    expect(schemaThresholds.checkParams({})).toEqual(['thresholds: is required (an object from field to {min, max})']);
    expect(schemaThresholds.checkParams({ thresholds: [] })).toEqual(['thresholds: must be an object from field to {min, max}']);
    expect(schemaThresholds.checkParams({ thresholds: {} })).toEqual(['thresholds: names no field']);
    expect(schemaThresholds.checkParams({ thresholds: { 'a..b': { min: 1 }, x: {}, y: { min: 'low', avg: 1 }, z: { min: 5, max: 1 }, w: 3 }, other: 1 })).toEqual([
      'other: unknown parameter (known: thresholds)',
      "thresholds.a..b: 'a..b' is not a JSON pointer (/a/b) or a dotted path (a.b)",
      'thresholds.x: needs min, max or both',
      'thresholds.y.avg: unknown (allowed: min, max)',
      'thresholds.y.min: must be a number',
      'thresholds.z: min 5 is more than max 1',
      'thresholds.w: must be {min, max}',
    ]);
  });
});
