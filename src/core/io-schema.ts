import type { Ajv, ValidateFunction } from 'ajv';
import { ajvDraft7 } from './ajv-lazy.js';

/** One declared input or output of an agent, as written in agent.yaml's list form. */
export interface FieldSpec {
  name: string;
  type: FieldType;
  required?: boolean;
  description?: string;
  default?: unknown;
}

export const FIELD_TYPES = ['string', 'number', 'integer', 'boolean', 'object', 'array', 'any'] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

/** JSON Schema of an agent's inputs or outputs, derived from a field list or given as is. */
export type IoSchema = Record<string, unknown>;

/** Turn agent.yaml's `inputs:`/`outputs:` (a field list or a JSON Schema) into one JSON Schema. */
export function toJsonSchema(spec: FieldSpec[] | IoSchema | undefined): IoSchema {
  if (spec === undefined) return { type: 'object' };
  if (!Array.isArray(spec)) return spec;
  const properties: Record<string, unknown> = {};
  const required: string[] = [];
  for (const f of spec) {
    const prop: Record<string, unknown> = f.type === 'any' ? {} : { type: f.type };
    if (f.description) prop.description = f.description;
    if (f.default !== undefined) prop.default = f.default;
    properties[f.name] = prop;
    if (f.required) required.push(f.name);
  }
  return { type: 'object', properties, ...(required.length ? { required } : {}) };
}

/** The names a schema declares at top level, or undefined when it allows anything. */
export function declaredFields(schema: IoSchema): string[] | undefined {
  const props = schema.properties;
  if (!props || typeof props !== 'object') return undefined;
  if (schema.additionalProperties === false || schema['x-swarm-closed'] === true) return Object.keys(props);
  return undefined;
}

let ajv: Ajv | undefined;
/** Compiled validators by schema object (plans are cached, so the same object comes back)… */
const byObject = new WeakMap<object, ValidateFunction>();
/** …and by schema text, for schemas that arrive as fresh objects (bounded). */
const byText = new Map<string, ValidateFunction>();

function compiled(schema: IoSchema): ValidateFunction {
  let validate = byObject.get(schema);
  if (validate) return validate;
  const text = JSON.stringify(schema);
  validate = byText.get(text);
  if (!validate) {
    ajv ??= new (ajvDraft7())({ allErrors: true, strict: false, useDefaults: true, allowUnionTypes: true });
    validate = ajv.compile(schema);
    byText.set(text, validate);
    if (byText.size > 1000) byText.delete(byText.keys().next().value as string);
  }
  byObject.set(schema, validate);
  return validate;
}

/**
 * Validate (and fill defaults into) a value against a schema. Returns a list of readable problems,
 * empty when valid. Validators are cached by the schema's content, never by name: an agent
 * re-registered with a new schema gets a new validator.
 */
export function validateAgainst(schema: IoSchema, value: unknown): string[] {
  return fieldProblems(schema, value).map((p) => (p.problem === 'is required' ? `${p.field} is required` : `${p.field || '(value)'} ${p.problem}`));
}

/** What is wrong with `value` under `schema`, field by field (`field` is a dotted path, '' for the value itself). */
export function fieldProblems(schema: IoSchema, value: unknown): Array<{ field: string; problem: string }> {
  const validate = compiled(schema);
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => {
    const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '';
    if (e.keyword === 'required') {
      const p = (e.params as { missingProperty: string }).missingProperty;
      return { field: `${where ? `${where}.` : ''}${p}`, problem: 'is required' };
    }
    return { field: where, problem: e.message ?? 'is invalid' };
  });
}
