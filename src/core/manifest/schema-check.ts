import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { ProblemList } from './problems.js';
import { pathToField, pointerToPath, type YamlSource } from './yaml-source.js';

const require = createRequire(import.meta.url);

/** The options every manifest schema is compiled with (at build time too: scripts/precompile-schemas.mjs). */
export const MANIFEST_AJV_OPTIONS = { allErrors: true, strict: false, allowUnionTypes: true, verbose: true } as const;

let ajv: Ajv | undefined;
const compiled = new WeakMap<object, ValidateFunction>();

/**
 * Swarm's own manifest schemas (swarm.yaml, agents, workflows, …), registered where they are defined
 * with `builtinSchema`. The build compiles them ahead of time into precompiled-schemas/<key>.cjs beside
 * this module (ajv's standalone code: the same validators, errors included), so that a `swarm` process
 * neither loads ajv nor compiles them (with the meta-schema, about 0.2 CPU-seconds for swarm.yaml's
 * alone). A schema the build did not see (run from the sources, or built at run time) is compiled here.
 */
export const BUILTIN_SCHEMAS: object[] = [];

export function builtinSchema<T extends object>(schema: T): T {
  BUILTIN_SCHEMAS.push(schema);
  return schema;
}

/** The name of a schema's precompiled validator: a digest of its JSON (an identifier). */
export function schemaKey(schema: object): string {
  return `s${createHash('sha256').update(JSON.stringify(schema)).digest('hex').slice(0, 32)}`;
}

function precompiledFor(schema: object): ValidateFunction | undefined {
  try {
    return require(`./precompiled-schemas/${schemaKey(schema)}.cjs`) as ValidateFunction;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
    return undefined;
  }
}

function compile(schema: object): ValidateFunction {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = precompiledFor(schema);
    if (!validate) {
      ajv ??= new (require('ajv') as typeof import('ajv')).Ajv(MANIFEST_AJV_OPTIONS);
      validate = ajv.compile(schema);
    }
    compiled.set(schema, validate);
  }
  return validate;
}

/**
 * Validate a YAML document against a JSON Schema; every problem is collected (into `problems` when
 * given, else thrown together as one ManifestError), each with its field and line.
 */
export function checkManifest(source: YamlSource, schema: object, problems?: ProblemList): boolean {
  const validate = compile(schema);
  if (validate(source.value)) return true;
  const list = problems ?? new ProblemList(source.file);
  if (source.value === null || typeof source.value !== 'object' || Array.isArray(source.value)) {
    list.add(undefined, 'must be a YAML mapping (key: value pairs)', 1);
  } else {
    const errors = pickErrors(validate.errors ?? []);
    if (errors.length === 0) list.add(undefined, 'is not valid');
    for (const err of errors) report(source, err, list);
  }
  if (!problems) list.throwIfAny();
  return false;
}

function report(source: YamlSource, err: ErrorObject, list: ProblemList): void {
  const path = pointerToPath(err.instancePath);
  if (err.keyword === 'required') {
    const missing = String((err.params as { missingProperty: string }).missingProperty);
    list.add(pathToField([...path, missing]), 'is required', source.lineOf(path));
    return;
  }
  if (err.keyword === 'additionalProperties') {
    const extra = String((err.params as { additionalProperty: string }).additionalProperty);
    const at = [...path, extra];
    list.add(pathToField(at), `unknown field (allowed: ${allowedKeys(err)})`, source.lineOf(at));
    return;
  }
  let problem = err.message ?? 'is not valid';
  if (err.keyword === 'enum') {
    const allowed = (err.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ');
    problem = `must be one of ${allowed}`;
  }
  list.add(pathToField(path) || undefined, problem, source.lineOf(path));
}

/**
 * The errors worth showing. Within an `anyOf`/`oneOf` the branches' errors are noise around the real
 * cause: of each such group only the most specific one is kept (the deepest names the field that is
 * wrong: a bad `store.schema` rather than "store must be a string"). Errors outside such groups are
 * independent problems and are all kept.
 */
function pickErrors(errors: ErrorObject[]): ErrorObject[] {
  const groups = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  const within = (e: ErrorObject, g: ErrorObject): boolean =>
    e.schemaPath.startsWith(`${g.schemaPath}/`) && (e.instancePath === g.instancePath || e.instancePath.startsWith(`${g.instancePath}/`));
  // The outermost group each error belongs to.
  const outer = (e: ErrorObject): ErrorObject | undefined => {
    let best: ErrorObject | undefined;
    for (const g of groups) if (g !== e && within(e, g) && (!best || g.schemaPath.length < best.schemaPath.length)) best = g;
    return best;
  };
  const byGroup = new Map<ErrorObject, ErrorObject[]>();
  const out: ErrorObject[] = [];
  for (const e of errors) {
    if (e.keyword === 'if') continue;
    const g = outer(e);
    if (g) {
      if (e.keyword !== 'anyOf' && e.keyword !== 'oneOf') byGroup.set(g, [...(byGroup.get(g) ?? []), e]);
    } else if (e.keyword !== 'anyOf' && e.keyword !== 'oneOf') out.push(e);
    else if (!byGroup.has(e)) byGroup.set(e, []);
  }
  const depth = (e: ErrorObject): number => (e.instancePath === '' ? 0 : e.instancePath.split('/').length);
  for (const [g, members] of byGroup) {
    // Every branch wants another type of the value itself (true or a list): name them all, not the first.
    const types = members.filter((e) => e.keyword === 'type' && e.instancePath === g.instancePath).map((e) => String((e.params as { type: unknown }).type));
    if (types.length > 1 && types.length === members.length) {
      const names = [...new Set(types)].flatMap(typeNames);
      out.push({ ...(members[0] as ErrorObject), message: `must be ${names.slice(0, -1).join(', ')} or ${names[names.length - 1] ?? ''}` });
      continue;
    }
    let best: ErrorObject | undefined;
    for (const e of members) if (best === undefined || depth(e) > depth(best)) best = e;
    out.push(best ?? g);
  }
  return out;
}

/** A JSON Schema type as a manifest's reader knows it. */
function typeNames(t: string): string[] {
  return t === 'array' ? ['a list'] : t === 'object' ? ['a mapping'] : t === 'boolean' ? ['true', 'false'] : t === 'integer' ? ['a whole number'] : [`a ${t}`];
}

function allowedKeys(err: ErrorObject): string {
  const props = (err.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return props ? Object.keys(props).join(', ') : 'see the reference';
}
