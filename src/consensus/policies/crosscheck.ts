/**
 * vp.crosscheck.v1: the candidate agrees with the task's other candidates, or with a second
 * executor's answer, passed in `others` (the caller leaves the candidate itself out; another
 * proposer's identical output is an agreeing other).
 *
 * Params:
 *   fields         field references (JSON pointer or dotted path) to compare; default: the whole
 *                  output, compared canonically (key order does not matter).
 *   min_agreement  the fraction of others that must agree, in [0, 1] (default 0.5).
 *   min_others     how many others are needed for a verdict, an integer ≥ 1 (default 1).
 *   tolerance      numbers agree when they differ by at most this, ≥ 0 (default 0: exactly equal).
 *
 * Two outputs agree when every compared field is present in both and the values are equal (numbers
 * within tolerance, at any depth). Outcomes: passed when agreement ≥ min_agreement (score = the
 * fraction of others that agree); failed CROSSCHECK_DISAGREE below it; failed FIELD_MISSING when the
 * candidate lacks a compared field; inconclusive CROSSCHECK_TOO_FEW with fewer than min_others others;
 * inconclusive EVIDENCE_UNREACHABLE.
 *
 * @example
 *   crosscheck.evaluate({ fields: ['answer'] }, { candidate: { candidate_hash: 'a', output: { answer: 4 } }, others: [{ candidate_hash: 'b', output: { answer: 4, note: 'x' } }] }).status  // 'passed'
 */
import { ReasonCode } from '../core/reason-codes.js';
import { failed, inconclusive, isFieldRef, isNum, passed, readField, unknownParams, unreachableOutcome } from './common.js';
import type { PolicyInput, PolicyOutcome, VerificationPolicy } from './types.js';

export const CROSSCHECK_ID = 'vp.crosscheck.v1';

export const CROSSCHECK_DEFAULTS = { min_agreement: 0.5, min_others: 1, tolerance: 0 } as const;

interface CrosscheckParams {
  fields?: string[];
  min_agreement: number;
  min_others: number;
  tolerance: number;
}

function paramsOf(p: Record<string, unknown>): CrosscheckParams {
  return {
    ...(Array.isArray(p['fields']) ? { fields: p['fields'] as string[] } : {}),
    min_agreement: isNum(p['min_agreement']) ? p['min_agreement'] : CROSSCHECK_DEFAULTS.min_agreement,
    min_others: isNum(p['min_others']) ? p['min_others'] : CROSSCHECK_DEFAULTS.min_others,
    tolerance: isNum(p['tolerance']) ? p['tolerance'] : CROSSCHECK_DEFAULTS.tolerance,
  };
}

/** Deep equality of JSON values, numbers within `tolerance`; object key order does not matter. */
export function agrees(a: unknown, b: unknown, tolerance: number): boolean {
  if (isNum(a) && isNum(b)) return Math.abs(a - b) <= tolerance;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => agrees(x, b[i], tolerance));
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
    const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
    if (ka.length !== kb.length) return false;
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && agrees((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], tolerance));
  }
  return a === b;
}

export const crosscheck: VerificationPolicy = {
  id: CROSSCHECK_ID,
  requiresOutputSchema: false,
  summary: 'agreement with the task\'s other candidates (or a second executor\'s answer)',
  checkParams(params: Record<string, unknown>): string[] {
    const problems = unknownParams(params, ['fields', 'min_agreement', 'min_others', 'tolerance']);
    const f = params['fields'];
    if (f !== undefined) {
      if (!Array.isArray(f) || f.length === 0) problems.push('fields: must be a non-empty list of field references');
      else f.forEach((x, i) => {
        if (!isFieldRef(x)) problems.push(`fields[${i}]: ${JSON.stringify(x)} is not a JSON pointer (/a/b) or a dotted path (a.b)`);
      });
    }
    const ma = params['min_agreement'];
    if (ma !== undefined && (!isNum(ma) || ma < 0 || ma > 1)) problems.push(`min_agreement: ${JSON.stringify(ma)} must be a number from 0 to 1`);
    const mo = params['min_others'];
    if (mo !== undefined && (!Number.isInteger(mo) || (mo as number) < 1)) problems.push(`min_others: ${JSON.stringify(mo)} must be an integer ≥ 1`);
    const t = params['tolerance'];
    if (t !== undefined && (!isNum(t) || t < 0)) problems.push(`tolerance: ${JSON.stringify(t)} must be a number ≥ 0`);
    return problems;
  },
  evaluate(rawParams: Record<string, unknown>, input: PolicyInput): PolicyOutcome {
    const unreachable = unreachableOutcome(input.unreachable_evidence);
    if (unreachable) return unreachable;
    const p = paramsOf(rawParams);
    const others = input.others ?? [];
    if (others.length < p.min_others) {
      return inconclusive([ReasonCode.CROSSCHECK_TOO_FEW], `${others.length} other answer${others.length === 1 ? '' : 's'} to compare with; ${p.min_others} needed`);
    }
    const own = input.candidate.output;
    if (p.fields) {
      const missing = p.fields.filter((f) => !readField(own, f).found);
      if (missing.length > 0) return failed([ReasonCode.FIELD_MISSING], `the candidate has no ${missing.join(', ')}`);
    }
    const fields = p.fields;
    const agreeing = others.filter((o) => {
      if (!fields) return agrees(own, o.output, p.tolerance);
      return fields.every((f) => {
        const mine = readField(own, f);
        const theirs = readField(o.output, f);
        return mine.found && theirs.found && agrees(mine.value, theirs.value, p.tolerance);
      });
    }).length;
    const fraction = agreeing / others.length;
    const what = fields ? `on ${fields.join(', ')}` : 'on the whole output';
    const summary = `${agreeing} of ${others.length} other answers agree ${what} (${Math.round(fraction * 100)}%, ${Math.round(p.min_agreement * 100)}% needed)`;
    return fraction >= p.min_agreement ? passed(summary, fraction) : failed([ReasonCode.CROSSCHECK_DISAGREE], summary, fraction);
  },
};
