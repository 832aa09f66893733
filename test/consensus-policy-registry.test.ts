/** evaluatePolicy and POLICIES: the registry, unknown ids, bad params, a throwing policy; reason-code names. */
import { describe, expect, it } from 'vitest';
import { candidateHash } from '../src/consensus/core/crypto.js';
import { isReasonCode, ReasonCode, reasonName } from '../src/consensus/core/reason-codes.js';
import { evaluatePolicy, POLICIES } from '../src/consensus/policies/index.js';
import { readField } from '../src/consensus/policies/common.js';

const cand = (output: unknown): { candidate_hash: string; output: unknown } => ({ candidate_hash: candidateHash(output), output });

describe('evaluatePolicy', () => {
  it('knows the three versioned policies', () => {
    expect([...POLICIES.keys()]).toEqual(['vp.schema_only.v1', 'vp.schema_thresholds.v1', 'vp.crosscheck.v1']);
    for (const [id, p] of POLICIES) {
      expect(id).toMatch(/^vp\.[a-z_]+\.v\d+$/);
      expect(p.id).toBe(id);
      expect(p.summary).toBeTruthy();
    }
  });
  it('dispatches, and refuses an unknown id or bad params', () => {
    expect(evaluatePolicy('vp.schema_only.v1', {}, { output_schema: { type: 'object' }, candidate: cand({}) }).status).toBe('passed');
    expect(evaluatePolicy('vp.crosscheck.v1', {}, { candidate: cand(1), others: [cand(1)] }).status).toBe('passed');
    expect(evaluatePolicy('vp.nope.v1', {}, { candidate: cand(1) })).toMatchObject({ status: 'failed', reason_codes: [ReasonCode.POLICY_UNKNOWN] });
    expect(evaluatePolicy('vp.crosscheck.v1', { min_others: 0 }, { candidate: cand(1) })).toMatchObject({ status: 'failed', reason_codes: [ReasonCode.POLICY_PARAMS_INVALID], reason: 'vp.crosscheck.v1 params: min_others: 0 must be an integer ≥ 1' });
  });
  it('a policy that throws is inconclusive with VERIFIER_ERROR', () => {
    const p = POLICIES.get('vp.crosscheck.v1')!;
    const original = p.evaluate.bind(p);
    try {
      p.evaluate = () => {
        throw new Error('boom');
      };
      expect(evaluatePolicy('vp.crosscheck.v1', {}, { candidate: cand(1) })).toMatchObject({ status: 'inconclusive', reason_codes: [ReasonCode.VERIFIER_ERROR], reason: 'vp.crosscheck.v1 failed to evaluate: boom' });
    } finally {
      p.evaluate = original;
    }
  });
  it('reason codes: numbers with UNKNOWN/CUSTOM fallback', () => {
    expect(reasonName(1201)).toBe('REVEAL_MISMATCH');
    expect(reasonName(61000)).toBe('CUSTOM');
    expect(reasonName(4242)).toBe('UNKNOWN');
    expect(reasonName(-1)).toBe('UNKNOWN');
    expect(isReasonCode(65535)).toBe(true);
    expect(isReasonCode(65536)).toBe(false);
    expect(new Set(Object.values(ReasonCode)).size).toBe(Object.values(ReasonCode).length);
  });
  it('field references: pointer escapes, array indexes, own properties only', () => {
    expect(readField({ 'a/b': { '~c': 1 } }, '/a~1b/~0c')).toEqual({ found: true, value: 1 });
    expect(readField({ a: [5, 6] }, 'a.1')).toEqual({ found: true, value: 6 });
    expect(readField({ a: [5, 6] }, 'a.2')).toEqual({ found: false });
    expect(readField({}, 'constructor')).toEqual({ found: false });
    expect(readField({ a: null }, 'a')).toEqual({ found: true, value: null });
  });
});
