/** vp.crosscheck.v1: agreement on fields or the whole output, tolerance, min_agreement, min_others; every state. */
import { describe, expect, it } from 'vitest';
import { candidateHash } from '../src/consensus/core/crypto.js';
import { ReasonCode } from '../src/consensus/core/reason-codes.js';
import { agrees, crosscheck } from '../src/consensus/policies/crosscheck.js';

const cand = (output: unknown): { candidate_hash: string; output: unknown } => ({ candidate_hash: candidateHash(output), output });

describe('vp.crosscheck.v1', () => {
  it('whole output, compared canonically: key order does not matter', () => {
    const r = crosscheck.evaluate({}, { candidate: cand({ a: 1, b: [1, { c: 2 }] }), others: [cand({ b: [1, { c: 2 }], a: 1 })] });
    expect(r).toEqual({ status: 'passed', reason_codes: [], reason: '1 of 1 other answers agree on the whole output (100%, 50% needed)', score: 1 });
  });
  it('named fields (pointer or dotted), numbers within tolerance; score = fraction agreeing', () => {
    const params = { fields: ['answer', '/meta/unit'], tolerance: 0.01, min_agreement: 0.6 };
    const others = [cand({ answer: 42.005, meta: { unit: 'm' }, note: 'x' }), cand({ answer: 42, meta: { unit: 'm' } }), cand({ answer: 40, meta: { unit: 'm' } })];
    const r = crosscheck.evaluate(params, { candidate: cand({ answer: 42, meta: { unit: 'm' } }), others });
    expect(r.status).toBe('passed');
    expect(r.score).toBeCloseTo(2 / 3);
    expect(r.reason).toBe('2 of 3 other answers agree on answer, /meta/unit (67%, 60% needed)');
    const strict = crosscheck.evaluate({ ...params, tolerance: 0 }, { candidate: cand({ answer: 42, meta: { unit: 'm' } }), others });
    expect(strict).toMatchObject({ status: 'failed', reason_codes: [ReasonCode.CROSSCHECK_DISAGREE] });
    expect(strict.score).toBeCloseTo(1 / 3);
  });
  it('CROSSCHECK_DISAGREE below min_agreement (default 0.5)', () => {
    const r = crosscheck.evaluate({}, { candidate: cand({ a: 1 }), others: [cand({ a: 2 }), cand({ a: 3 })] });
    expect(r).toMatchObject({ status: 'failed', reason_codes: [ReasonCode.CROSSCHECK_DISAGREE], score: 0 });
    // An other lacking a compared field disagrees.
    expect(crosscheck.evaluate({ fields: ['a'] }, { candidate: cand({ a: 1 }), others: [cand({ b: 1 })] }).status).toBe('failed');
  });
  it('CROSSCHECK_TOO_FEW (inconclusive) with fewer than min_others others', () => {
    expect(crosscheck.evaluate({}, { candidate: cand({ a: 1 }) })).toEqual({ status: 'inconclusive', reason_codes: [ReasonCode.CROSSCHECK_TOO_FEW], reason: '0 other answers to compare with; 1 needed', score: 0 });
    expect(crosscheck.evaluate({ min_others: 3 }, { candidate: cand({ a: 1 }), others: [cand({ a: 1 }), cand({ a: 1 })] })).toMatchObject({ status: 'inconclusive', reason_codes: [ReasonCode.CROSSCHECK_TOO_FEW] });
  });
  it('FIELD_MISSING when the candidate lacks a compared field; EVIDENCE_UNREACHABLE', () => {
    expect(crosscheck.evaluate({ fields: ['a', 'b.c'] }, { candidate: cand({ a: 1 }), others: [cand({ a: 1 })] })).toMatchObject({ status: 'failed', reason_codes: [ReasonCode.FIELD_MISSING], reason: 'the candidate has no b.c' });
    expect(crosscheck.evaluate({}, { candidate: cand({ a: 1 }), others: [cand({ a: 1 })], unreachable_evidence: ['x'] })).toMatchObject({ status: 'inconclusive', reason_codes: [ReasonCode.EVIDENCE_UNREACHABLE] });
  });
  it('agrees: deep, tolerant on numbers only', () => {
    expect(agrees([1, 2], [1, 2.5], 0.5)).toBe(true);
    expect(agrees([1, 2], [1, 2, 3], 10)).toBe(false);
    expect(agrees({ a: 1 }, { a: 1, b: undefined }, 0)).toBe(true);
    expect(agrees({ a: 1 }, { b: 1 }, 0)).toBe(false);
    expect(agrees('1', 1, 5)).toBe(false);
    expect(agrees(null, null, 0)).toBe(true);
    expect(agrees(null, {}, 0)).toBe(false);
  });
  it('params are checked', () => {
    expect(crosscheck.checkParams({ fields: ['a', '/b'], min_agreement: 1, min_others: 2, tolerance: 0 })).toEqual([]);
    expect(crosscheck.checkParams({ fields: [], min_agreement: -0.1, min_others: 0.5, tolerance: -1 })).toEqual([
      'fields: must be a non-empty list of field references',
      'min_agreement: -0.1 must be a number from 0 to 1',
      'min_others: 0.5 must be an integer ≥ 1',
      'tolerance: -1 must be a number ≥ 0',
    ]);
    expect(crosscheck.checkParams({ fields: ['ok', 3, ''] })).toEqual(['fields[1]: 3 is not a JSON pointer (/a/b) or a dotted path (a.b)', 'fields[2]: "" is not a JSON pointer (/a/b) or a dotted path (a.b)']);
    expect(crosscheck.requiresOutputSchema).toBe(false);
  });
});
