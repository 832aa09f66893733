import { Ajv, type ValidateFunction } from 'ajv';

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

const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true, allowUnionTypes: true });
const cache = new Map<string, ValidateFunction>();

/**
 * Validate (and fill defaults into) a value against a schema. Returns a list of readable problems,
 * empty when valid. `key` caches the compiled validator (agents are immutable once registered).
 */
export function validateAgainst(key: string, schema: IoSchema, value: unknown): string[] {
  let validate = cache.get(key);
  if (!validate) {
    validate = ajv.compile(schema);
    cache.set(key, validate);
  }
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => {
    const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '';
    if (e.keyword === 'required') {
      const p = (e.params as { missingProperty: string }).missingProperty;
      return `${where ? `${where}.` : ''}${p} is required`;
    }
    return `${where || '(value)'} ${e.message ?? 'is invalid'}`;
  });
}
