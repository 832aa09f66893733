/**
 * The manifest schemas the build compiles ahead of time (scripts/precompile-schemas.mjs, used by
 * checkManifest in src/core/manifest/schema-check.ts): the built CLI's validators are ajv's own for
 * the same schemas and options, giving the same verdicts and the same errors, and checkManifest uses
 * them (compiling with ajv only the schemas the build did not see).
 */
import { Ajv } from 'ajv';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/project.js';

const DIST = join(ROOT, 'dist', 'src');
const load = async <T>(rel: string): Promise<T> => (await import(pathToFileURL(join(DIST, rel)).href)) as T;

interface SchemaCheck {
  BUILTIN_SCHEMAS: object[];
  MANIFEST_AJV_OPTIONS: object;
  schemaKey(schema: object): string;
  checkManifest(source: { file: string; value: unknown; lineOf(path: unknown): number | undefined }, schema: object): boolean;
}
type Validate = ((value: unknown) => boolean) & { errors?: unknown[] | null };

/** Documents that break a schema in many ways: wrong types everywhere, unknown and missing fields. */
function samples(schema: object): unknown[] {
  const props = Object.keys((schema as { properties?: Record<string, unknown> }).properties ?? {});
  const wrong: unknown[] = [12345, 'text', true, [1, 'a'], { bogus: { deeper: [1] } }, null];
  const out: unknown[] = [{}, [], 'text', null, 7, { unknown_field: 1 }];
  for (const w of wrong) out.push(Object.fromEntries(props.map((p) => [p, w])));
  for (const p of props) for (const w of wrong) out.push({ [p]: w, another_unknown: 'x' });
  return out;
}

describe('precompiled manifest schemas', () => {
  it('every built-in schema is precompiled, and each validator agrees with ajv, errors included', async () => {
    await load('swarm.js');
    const check = await load<SchemaCheck>('core/manifest/schema-check.js');
    const precompiled = (key: string): Validate => createRequire(import.meta.url)(join(DIST, 'core', 'manifest', 'precompiled-schemas', `${key}.cjs`)) as Validate;
    expect(check.BUILTIN_SCHEMAS.length).toBeGreaterThanOrEqual(6);
    const ajv = new Ajv({ ...check.MANIFEST_AJV_OPTIONS });
    let invalid = 0;
    for (const schema of check.BUILTIN_SCHEMAS) {
      const fast = precompiled(check.schemaKey(schema));
      expect(fast, JSON.stringify(schema).slice(0, 200)).toBeTypeOf('function');
      const slow = ajv.compile(schema) as Validate;
      for (const doc of samples(schema)) {
        const verdict = slow(doc);
        expect(fast(doc)).toBe(verdict);
        expect(JSON.parse(JSON.stringify(fast.errors ?? null))).toEqual(JSON.parse(JSON.stringify(slow.errors ?? null)));
        if (!verdict) invalid++;
      }
    }
    expect(invalid).toBeGreaterThan(100);
  });

  it('checkManifest uses the precompiled validator of a built-in schema and compiles any other', async () => {
    const check = await load<SchemaCheck>('core/manifest/schema-check.js');
    const ajvPath = createRequire(import.meta.url).resolve('ajv');
    const require = createRequire(import.meta.url);
    // The test itself loaded ajv above: look at how checkManifest compiles instead, through a schema
    // the build did not see (compiled with ajv) and one it did (no compile).
    const ajvProto = (require(ajvPath) as { Ajv: { prototype: { compile(this: unknown, s: object): unknown } } }).Ajv.prototype;
    // eslint-disable-next-line @typescript-eslint/unbound-method -- put back as it was, below
    const compile = ajvProto.compile;
    const compiled: object[] = [];
    ajvProto.compile = function (this: unknown, s: object) {
      compiled.push(s);
      return compile.call(this, s);
    };
    try {
      const builtin = check.BUILTIN_SCHEMAS[0]!;
      const other = { type: 'object', properties: { only_here: { type: 'string' } } };
      const doc = { file: 'swarm.yaml', value: {}, lineOf: () => undefined };
      expect(check.checkManifest(doc, builtin)).toBe(true);
      expect(check.checkManifest(doc, other)).toBe(true);
      expect(compiled).toEqual([other]);
    } finally {
      ajvProto.compile = compile;
    }
  });
});
