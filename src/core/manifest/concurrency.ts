/**
 * `concurrency:` at the top of a workflow.yaml: a number (the most steps of one run at once, as
 * before) or a mapping that also limits how many runs with the same key are active at once:
 *
 *   concurrency: { key: "${trigger.customer_id}", limit: 1, default: unknown, steps: 4 }
 *
 * The key is a template over the run's input (`${trigger.*}`) and the workflow's variables
 * (`${variables.*}`) only: it is resolved once, when the run is created, before any step has run.
 * Pure: no I/O.
 */
import { UserError } from '../errors.js';
import { findReferences, resolveValue, type PathSegment } from '../template.js';
import type { ProblemList } from './problems.js';
import type { YamlSource } from './yaml-source.js';

/** The most runs `limit` may allow, and the longest key a run may resolve to (in characters). */
export const MAX_CONCURRENCY_LIMIT = 10_000;
export const MAX_CONCURRENCY_KEY_CHARS = 255;

/**
 * A workflow's concurrency key, as registered: at most `limit` runs of the workflow with the same
 * resolved key are active (running or waiting) at once; the others stay queued, oldest first.
 *
 * @example
 *   const spec: ConcurrencyKeySpec = { key: '${trigger.customer_id}', limit: 1 };
 *   resolveConcurrencyKey(spec, { customer_id: 7 }, {}); // '7'
 */
export interface ConcurrencyKeySpec {
  /** The key as written, with its `${trigger.*}` / `${variables.*}` references. */
  key: string;
  /** Runs with one key value that may be active at once (default 1). */
  limit: number;
  /** The key of a run whose key resolves to nothing (a missing trigger field, null or ''); without it that is an error. */
  default?: string;
}

/** The JSON Schema of `concurrency:` (the details are checked by `checkConcurrency`, with their lines). */
export const concurrencySchema = {
  anyOf: [
    { type: 'integer', minimum: 1, maximum: 10000 },
    {
      // Unknown fields are reported by checkConcurrency: under anyOf the schema's message would be
      // "must be integer" (the other branch) rather than the field's name.
      type: 'object',
      properties: {
        key: { type: 'string', minLength: 1 },
        limit: { type: 'integer', minimum: 1, maximum: MAX_CONCURRENCY_LIMIT },
        default: { type: ['string', 'number', 'boolean'] },
        steps: { type: 'integer', minimum: 1, maximum: 10000 },
      },
    },
  ],
} as const;

/** Roots a concurrency key may reference: what is known when a run is created. */
const KEY_ROOTS = ['trigger', 'variables'];

/**
 * Split a schema-valid `concurrency:` into the per-run step limit and the concurrency key, adding
 * each problem (a missing key, a reference to anything but the trigger data or a declared
 * variable) to `problems` with its line.
 */
export function checkConcurrency(raw: unknown, variables: Record<string, unknown>, src: YamlSource, problems: ProblemList): { steps?: number; key?: ConcurrencyKeySpec } {
  if (raw === undefined) return {};
  if (typeof raw === 'number') return { steps: raw };
  const c = raw as { key?: string; limit?: number; default?: string | number | boolean; steps?: number };
  const at = (...p: PathSegment[]): number | undefined => src.lineOf(['concurrency', ...p]) ?? src.lineOf(['concurrency']);
  const out: { steps?: number; key?: ConcurrencyKeySpec } = c.steps !== undefined ? { steps: c.steps } : {};
  const allowed = Object.keys(concurrencySchema.anyOf[1].properties);
  for (const k of Object.keys(c)) if (!allowed.includes(k)) problems.add(`concurrency.${k}`, `unknown field (allowed: ${allowed.join(', ')})`, at(k));
  if (c.key === undefined) {
    problems.add('concurrency.key', 'is required: the runs to limit, like key: "${trigger.customer_id}" (or a number for the most steps of one run at once)', at());
    return out;
  }
  try {
    for (const ref of findReferences(c.key)) {
      const [root, name] = ref.path;
      if (!KEY_ROOTS.includes(String(root))) {
        problems.add('concurrency.key', `'\${${ref.text}}': a concurrency key may reference only the run's input (\${trigger.*}) and the workflow's variables (\${variables.*}), which are known when the run is created`, at('key'));
      } else if (root === 'variables' && (name === undefined || !Object.hasOwn(variables, String(name)))) {
        problems.add('concurrency.key', `'\${${ref.text}}': variable '${String(name ?? '')}' is not declared under variables:`, at('key'));
      }
    }
  } catch (e) {
    problems.add('concurrency.key', (e as Error).message, at('key'));
  }
  out.key = { key: c.key, limit: c.limit ?? 1, ...(c.default !== undefined ? { default: String(c.default) } : {}) };
  if (out.key.default === '') problems.add('concurrency.default', 'must not be empty', at('default'));
  return out;
}

/**
 * The key of a run, from its trigger data and the workflow's variables. A key that resolves to
 * nothing (a missing field, null, an empty string) takes the workflow's `default`, else it is refused
 * with CONCURRENCY_KEY_UNRESOLVED (exit 2, HTTP 422): the run is not created.
 */
export function resolveConcurrencyKey(spec: ConcurrencyKeySpec, trigger: unknown, variables: Record<string, unknown>, workflow = 'the workflow'): string {
  let value: unknown;
  try {
    value = resolveValue(spec.key, { trigger, variables }, 'concurrency.key');
  } catch (e) {
    if (spec.default !== undefined) return spec.default;
    throw new UserError('CONCURRENCY_KEY_UNRESOLVED', `${workflow}: concurrency key '${spec.key}' does not resolve for this input (${reason(e)}); give the field in the run's input, or a default: under concurrency:`, {
      field: 'concurrency.key',
      key: spec.key,
    });
  }
  if (value === null || value === undefined || value === '') {
    if (spec.default !== undefined) return spec.default;
    throw new UserError('CONCURRENCY_KEY_UNRESOLVED', `${workflow}: concurrency key '${spec.key}' resolves to ${value === '' ? 'an empty string' : 'null'}; give a value in the run's input, or a default: under concurrency:`, {
      field: 'concurrency.key',
      key: spec.key,
    });
  }
  if (typeof value === 'object') {
    throw new UserError('CONCURRENCY_KEY_INVALID', `${workflow}: concurrency key '${spec.key}' resolves to ${Array.isArray(value) ? 'a list' : 'an object'}; a key must be a string, number or boolean`, {
      field: 'concurrency.key',
      key: spec.key,
    });
  }
  // PostgreSQL text holds no NUL (its store writes U+FFFD instead): the same key on both stores, and
  // in the document of a run as created, which is built from this value without a read back.
  const key = (typeof value === 'string' ? value : JSON.stringify(value)).replaceAll('\0', '\uFFFD');
  if (key.length > MAX_CONCURRENCY_KEY_CHARS) {
    throw new UserError('CONCURRENCY_KEY_INVALID', `${workflow}: concurrency key '${spec.key}' resolves to ${key.length} characters; at most ${MAX_CONCURRENCY_KEY_CHARS}`, { field: 'concurrency.key', key: spec.key });
  }
  return key;
}

/** The part of a resolver message after "concurrency.key: ". */
function reason(e: unknown): string {
  return ((e as Error).message ?? String(e)).replace(/^concurrency\.key: /, '');
}
