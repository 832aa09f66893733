/**
 * Checking a model's tool arguments against the tool's JSON Schema, with messages a model can act
 * on: each names the argument that is wrong and what was expected.
 */
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import type { Ajv2019 } from 'ajv/dist/2019.js';
import type { Ajv2020 } from 'ajv/dist/2020.js';
import { ajvDraft2019, ajvDraft2020, ajvDraft7 } from '../../core/ajv-lazy.js';
import type { Tool } from '../agent.js';
import type { JsonSchema } from '../types.js';

/** The parameter Swarm fills itself (the model neither sees nor sends it). */
const CONTEXT_PARAM = 'context_variables';
const MAX_PROBLEMS = 5;

// Formats are not checked (the providers do not enforce them either); defaults are filled in.
const options = { allErrors: true, strict: false, useDefaults: true, allowUnionTypes: true, validateFormats: false, verbose: true } as const;
let draft7: Ajv | undefined;
let draft2019: Ajv2019 | undefined;
let draft2020: Ajv2020 | undefined;

/** The validator for a schema's dialect (`$schema`); draft-07 when it names none. */
function ajvFor(schema: JsonSchema): Ajv | Ajv2019 | Ajv2020 {
  const dialect = typeof schema.$schema === 'string' ? schema.$schema : '';
  if (dialect.includes('2020-12')) return (draft2020 ??= new (ajvDraft2020())(options));
  if (dialect.includes('2019-09')) return (draft2019 ??= new (ajvDraft2019())(options));
  return (draft7 ??= new (ajvDraft7())(options));
}

type Compiled = ValidateFunction | 'unusable';
/** Compiled validators by parameters object (a tool's schema is one object for its lifetime)… */
const byObject = new WeakMap<object, Compiled>();
/** …and by schema text, for schemas that arrive as fresh objects (bounded). */
const byText = new Map<string, Compiled>();

/** The schema the model is shown: without `context_variables`. */
function modelSchema(schema: JsonSchema): JsonSchema {
  const props = schema.properties as Record<string, unknown> | undefined;
  if (!props || typeof props !== 'object' || !(CONTEXT_PARAM in props)) return schema;
  const { [CONTEXT_PARAM]: _hidden, ...rest } = props;
  const required = Array.isArray(schema.required) ? (schema.required as unknown[]).filter((r) => r !== CONTEXT_PARAM) : undefined;
  return { ...schema, properties: rest, ...(required ? { required } : {}) };
}

function compiled(schema: JsonSchema): Compiled {
  const hit = byObject.get(schema);
  if (hit) return hit;
  const effective = modelSchema(schema);
  const text = JSON.stringify(effective);
  let validate = byText.get(text);
  if (!validate) {
    try {
      validate = ajvFor(effective).compile(effective);
    } catch {
      // A schema this validator cannot compile (an unknown dialect, a broken $ref) is left to the tool.
      validate = 'unusable';
    }
    byText.set(text, validate);
    if (byText.size > 1000) byText.delete(byText.keys().next().value as string);
  }
  byObject.set(schema, validate);
  return validate;
}

export type ArgumentsCheck = { ok: true; value: Record<string, unknown> } | { ok: false; message: string };

/**
 * Check a model's arguments for a tool: the raw JSON text of the tool call (empty means `{}`) or the
 * parsed value. On success `value` is a copy with the schema's defaults filled in; the input is not
 * changed. On failure `message` names each offending argument (`'units' must be one of "c", "f"`),
 * ready to be sent back to the model. A schema that cannot be compiled accepts any object.
 *
 * @example
 *   const check = validateToolArguments(weather, call.arguments);
 *   if (!check.ok) return `Error: invalid arguments for tool 'weather': ${check.message}`;
 */
export function validateToolArguments(t: Tool, args: unknown): ArgumentsCheck {
  let value: unknown = args;
  if (typeof args === 'string') {
    if (args.trim() === '') value = {};
    else {
      try {
        value = JSON.parse(args);
      } catch (e) {
        return { ok: false, message: `the arguments are not valid JSON (${(e as Error).message})` };
      }
    }
  }
  if (value === undefined || value === null) value = {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, message: `the arguments must be a JSON object, not ${Array.isArray(value) ? 'an array' : typeof value}` };
  }
  const copy = structuredClone(value) as Record<string, unknown>;
  const validate = compiled(t.parameters);
  if (validate === 'unusable' || validate(copy)) return { ok: true, value: copy };
  const problems = [...new Set(relevantErrors(validate.errors ?? []).map(describe))];
  const shown = problems.slice(0, MAX_PROBLEMS);
  const more = problems.length - shown.length;
  return { ok: false, message: `${shown.join('; ')}${more > 0 ? `; and ${more} more problem${more === 1 ? '' : 's'}` : ''}` };
}

/**
 * The errors worth telling: anyOf/oneOf/if summaries are dropped when a branch says something more
 * specific, and type errors at one place are merged (`'x' must be string or number`).
 */
function relevantErrors(errors: readonly ErrorObject[]): ErrorObject[] {
  const summary = (e: ErrorObject): boolean => e.keyword === 'anyOf' || e.keyword === 'oneOf' || e.keyword === 'if';
  const out: ErrorObject[] = [];
  const types = new Map<string, ErrorObject>();
  for (const e of errors) {
    if (e.keyword === 'if') continue;
    if (summary(e) && errors.some((o) => !summary(o) && o.instancePath.startsWith(e.instancePath))) continue;
    if (e.keyword === 'type') {
      const seen = types.get(e.instancePath);
      if (seen) {
        const p = seen.params as { type: string };
        const t = String((e.params as { type: unknown }).type);
        if (!p.type.split(',').includes(t)) p.type = `${p.type},${t}`;
        continue;
      }
      const copy = { ...e, params: { ...e.params } };
      types.set(e.instancePath, copy);
      out.push(copy);
      continue;
    }
    out.push(e);
  }
  return out;
}

/** `/items/2/name` → `items[2].name`. */
function fieldOf(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(seg) ? `[${seg}]` : out ? `.${seg}` : seg;
  }
  return out;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function describe(e: ErrorObject): string {
  const field = fieldOf(e.instancePath);
  const at = field ? `'${field}'` : 'the arguments';
  const child = (name: string): string => `'${field ? `${field}.` : ''}${name}'`;
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return `${child(String(p.missingProperty))} is required`;
    case 'additionalProperties': {
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return `${child(String(p.additionalProperty))} is not an accepted argument${allowed.length ? ` (accepted: ${allowed.join(', ')})` : ''}`;
    }
    case 'type':
      return `${at} must be ${String(p.type).replace(/,/g, ' or ')}${e.data !== undefined ? ` (got ${show(e.data)})` : ''}`;
    case 'enum':
      return `${at} must be one of ${(p.allowedValues as unknown[]).map(show).join(', ')}${e.data !== undefined ? ` (got ${show(e.data)})` : ''}`;
    case 'const':
      return `${at} must be ${show(p.allowedValue)}`;
    default:
      return `${at} ${e.message ?? 'is invalid'}`;
  }
}
