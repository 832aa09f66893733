import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { ManifestError } from '../errors.js';
import { pathToField, pointerToPath, type YamlSource } from './yaml-source.js';

const ajv = new Ajv({ allErrors: false, strict: false, allowUnionTypes: true, verbose: true });
const compiled = new WeakMap<object, ValidateFunction>();

/** Validate a YAML document against a JSON Schema; the first problem becomes a ManifestError with its line. */
export function checkManifest(source: YamlSource, schema: object): void {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  if (validate(source.value)) return;
  const err = pickError(validate.errors ?? []);
  if (!err) throw new ManifestError(source.file, undefined, 'is not valid');
  const path = pointerToPath(err.instancePath);
  let problem = err.message ?? 'is not valid';
  if (err.keyword === 'required') {
    const missing = String((err.params as { missingProperty: string }).missingProperty);
    throw new ManifestError(source.file, pathToField([...path, missing]), 'is required', source.lineOf(path));
  }
  if (err.keyword === 'additionalProperties') {
    const extra = String((err.params as { additionalProperty: string }).additionalProperty);
    const at = [...path, extra];
    throw new ManifestError(source.file, pathToField(at), `unknown field (allowed: ${allowedKeys(err)})`, source.lineOf(at));
  }
  if (err.keyword === 'enum') {
    const allowed = (err.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ');
    problem = `must be one of ${allowed}`;
  }
  if (source.value === null || typeof source.value !== 'object') {
    throw new ManifestError(source.file, undefined, 'must be a YAML mapping (key: value pairs)', 1);
  }
  throw new ManifestError(source.file, pathToField(path) || undefined, problem, source.lineOf(path));
}

/**
 * Prefer the most specific error: oneOf/anyOf noise hides the real cause, and of the branches' errors
 * the deepest one names the field that is wrong (a bad `store.schema` rather than "store must be a string").
 */
function pickError(errors: ErrorObject[]): ErrorObject | undefined {
  const specific = errors.filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'anyOf' && e.keyword !== 'if');
  const depth = (e: ErrorObject): number => (e.instancePath === '' ? 0 : e.instancePath.split('/').length);
  let best: ErrorObject | undefined;
  for (const e of specific) if (best === undefined || depth(e) > depth(best)) best = e;
  return best ?? errors[0];
}

function allowedKeys(err: ErrorObject): string {
  const props = (err.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return props ? Object.keys(props).join(', ') : 'see the reference';
}
