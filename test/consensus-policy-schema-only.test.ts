/** vp.schema_only.v1: every state and reason code. */
import { describe, expect, it } from 'vitest';
import { candidateHash } from '../src/consensus/core/crypto.js';
import { ReasonCode } from '../src/consensus/core/reason-codes.js';
import { schemaOnly } from '../src/consensus/policies/schema-only.js';

const schema = { type: 'object', required: ['summary'], properties: { summary: { type: 'string', minLength: 3 } }, additionalProperties: false };
const cand = (output: unknown): { candidate_hash: string; output: unknown } => ({ candidate_hash: candidateHash(output), output });

describe('vp.schema_only.v1', () => {
  it('passed when the output matches the schema', () => {
    expect(schemaOnly.evaluate({}, { output_schema: schema, candidate: cand({ summary: 'fine' }) })).toEqual({ status: 'passed', reason_codes: [], reason: 'the output matches output_schema', score: 1 });
  });
  it('failed with SCHEMA_MISMATCH, naming what is wrong', () => {
    const r = schemaOnly.evaluate({}, { output_schema: schema, candidate: cand({ summary: 'no', extra: 1 }) });
    expect(r).toMatchObject({ status: 'failed', reason_codes: [ReasonCode.SCHEMA_MISMATCH], score: 0 });
    expect(r.reason).toContain("unexpected 'extra'");
    expect(r.reason).toContain('/summary must NOT have fewer than 3 characters');
    expect(schemaOnly.evaluate({}, { output_schema: schema, candidate: cand('text') }).reason).toContain('(the output) must be object');
    expect(schemaOnly.evaluate({}, { output_schema: schema, candidate: cand({}) }).reason).toContain("missing 'summary'");
  });
  it('2020-12 schemas too', () => {
    const s = { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'array', prefixItems: [{ type: 'number' }] };
    expect(schemaOnly.evaluate({}, { output_schema: s, candidate: cand([1]) }).status).toBe('passed');
    expect(schemaOnly.evaluate({}, { output_schema: s, candidate: cand(['x']) }).status).toBe('failed');
  });
  it('inconclusive with EVIDENCE_UNREACHABLE when evidence could not be checked', () => {
    expect(schemaOnly.evaluate({}, { output_schema: schema, candidate: cand({ summary: 'fine' }), unreachable_evidence: ['https://x/1'] })).toMatchObject({ status: 'inconclusive', reason_codes: [ReasonCode.EVIDENCE_UNREACHABLE], score: 0 });
  });
  it('no schema, a broken schema, unknown params', () => {
    expect(schemaOnly.requiresOutputSchema).toBe(true);
    expect(schemaOnly.evaluate({}, { candidate: cand({}) })).toMatchObject({ status: 'failed', reason_codes: [ReasonCode.POLICY_PARAMS_INVALID], reason: "vp.schema_only.v1 needs the task's output_schema, and this task has none" });
    expect(schemaOnly.evaluate({}, { output_schema: { type: 'bogus' }, candidate: cand({}) })).toMatchObject({ status: 'failed', reason_codes: [ReasonCode.POLICY_PARAMS_INVALID] });
    expect(schemaOnly.checkParams({})).toEqual([]);
    expect(schemaOnly.checkParams({ strict: true })).toEqual(['strict: unknown parameter (known: none)']);
  });
});
