/**
 * What the built-in verification policies share: schema validation (ajv, draft-07 unless the schema's
 * `$schema` names 2019-09 or 2020-12), field lookup by JSON pointer or dotted path, and the outcome
 * shapes. Pure; compiled validators are cached by schema text.
 *
 * @example
 *   readField({ a: { b: [1, 2] } }, 'a.b.1')   // { found: true, value: 2 }
 *   readField({ a: { b: [1, 2] } }, '/a/b/0')  // { found: true, value: 1 }
 */
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import type { Ajv2019 } from 'ajv/dist/2019.js';
import type { Ajv2020 } from 'ajv/dist/2020.js';
import { ajvDraft2019, ajvDraft2020, ajvDraft7 } from '../../core/ajv-lazy.js';
import { canonicalJson } from '../../core/canonical-json.js';
import { truncateSummary } from '../core/limits.js';
import { ReasonCode } from '../core/reason-codes.js';
import type { PolicyOutcome } from './types.js';

// Formats are not checked: an output schema's `format` is advisory, as with tool schemas.
const options = { allErrors: true, strict: false, allowUnionTypes: true, validateFormats: false } as const;
let draft7: Ajv | undefined;
let draft2019: Ajv2019 | undefined;
let draft2020: Ajv2020 | undefined;

function ajvFor(schema: Record<string, unknown>): Ajv | Ajv2019 | Ajv2020 {
  const dialect = typeof schema['$schema'] === 'string' ? schema['$schema'] : '';
  if (dialect.includes('2020-12')) return (draft2020 ??= new (ajvDraft2020())(options));
  if (dialect.includes('2019-09')) return (draft2019 ??= new (ajvDraft2019())(options));
  return (draft7 ??= new (ajvDraft7())(options));
}

type Compiled = { ok: true; validate: ValidateFunction } | { ok: false; problem: string };
const cache = new Map<string, Compiled>();

/** The compiled validator of a schema, or why it cannot be compiled. */
export function compileSchema(schema: Record<string, unknown>): Compiled {
  const text = canonicalJson(schema);
  let hit = cache.get(text);
  if (!hit) {
    try {
      hit = { ok: true, validate: ajvFor(schema).compile(schema) };
    } catch (e) {
      hit = { ok: false, problem: `is not a usable JSON Schema: ${(e as Error).message}` };
    }
    cache.set(text, hit);
    if (cache.size > 500) cache.delete(cache.keys().next().value as string);
  }
  return hit;
}

/** Why a schema cannot be used, or undefined when it compiles. */
export function schemaProblem(schema: unknown): string | undefined {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return 'must be a JSON Schema object';
  const c = compileSchema(schema as Record<string, unknown>);
  return c.ok ? undefined : c.problem;
}

function describe(err: ErrorObject): string {
  const at = err.instancePath || '(the output)';
  if (err.keyword === 'required') return `${at}: missing '${String((err.params as { missingProperty: string }).missingProperty)}'`;
  if (err.keyword === 'additionalProperties') return `${at}: unexpected '${String((err.params as { additionalProperty: string }).additionalProperty)}'`;
  return `${at} ${err.message ?? 'is not valid'}`;
}

/**
 * Validate an output against a schema: undefined when it matches, else failed with SCHEMA_MISMATCH
 * (the problems in words), or POLICY_PARAMS_INVALID when the schema itself cannot be compiled.
 */
export function schemaOutcome(schema: Record<string, unknown>, output: unknown): PolicyOutcome | undefined {
  const c = compileSchema(schema);
  if (!c.ok) return failed([ReasonCode.POLICY_PARAMS_INVALID], `output_schema ${c.problem}`);
  if (c.validate(output)) return undefined;
  const errors = (c.validate.errors ?? []).slice(0, 5).map(describe);
  return failed([ReasonCode.SCHEMA_MISMATCH], `the output does not match output_schema: ${errors.join('; ') || 'not valid'}`);
}

/** Split a field reference into segments: a JSON pointer (`/a/b/0`, RFC 6901 escapes) or a dotted path (`a.b.0`). */
export function fieldPath(field: string): string[] {
  if (field.startsWith('/')) return field.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  return field.split('.');
}

/** Whether a string names a field: a JSON pointer, or a dotted path without empty segments. */
export function isFieldRef(field: unknown): field is string {
  if (typeof field !== 'string' || field === '' || field === '/') return false;
  return field.startsWith('/') || !field.split('.').some((s) => s === '');
}

/** The value at a field of a JSON value (own properties only; array items by index). */
export function readField(value: unknown, field: string): { found: true; value: unknown } | { found: false } {
  let cur: unknown = value;
  for (const seg of fieldPath(field)) {
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(seg) || Number(seg) >= cur.length) return { found: false };
      cur = cur[Number(seg)];
    } else if (cur !== null && typeof cur === 'object' && Object.prototype.hasOwnProperty.call(cur, seg)) {
      cur = (cur as Record<string, unknown>)[seg];
    } else return { found: false };
  }
  return cur === undefined ? { found: false } : { found: true, value: cur };
}

export function passed(reason: string, score = 1): PolicyOutcome {
  return { status: 'passed', reason_codes: [], reason: truncateSummary(reason), score };
}

export function failed(codes: number[], reason: string, score = 0): PolicyOutcome {
  return { status: 'failed', reason_codes: [...new Set(codes)], reason: truncateSummary(reason), score };
}

export function inconclusive(codes: number[], reason: string, score = 0): PolicyOutcome {
  return { status: 'inconclusive', reason_codes: [...new Set(codes)], reason: truncateSummary(reason), score };
}

/** Unreachable evidence makes any policy's result inconclusive (source 002's three-state rule). */
export function unreachableOutcome(unreachable: readonly string[] | undefined): PolicyOutcome | undefined {
  if (!unreachable || unreachable.length === 0) return undefined;
  const shown = unreachable.slice(0, 5).join(', ');
  return inconclusive([ReasonCode.EVIDENCE_UNREACHABLE], `evidence could not be reached or did not match its digest: ${shown}${unreachable.length > 5 ? ` and ${unreachable.length - 5} more` : ''}`);
}

/** Problems with params that are not among `known`. */
export function unknownParams(params: Record<string, unknown>, known: readonly string[]): string[] {
  return Object.keys(params)
    .filter((k) => !known.includes(k))
    .map((k) => `${k}: unknown parameter (known: ${known.length ? known.join(', ') : 'none'})`);
}

/** A finite number check. */
export function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}
