import { describe, expect, it } from 'vitest';
import { StepError } from '../src/core/errors.js';
import { findReferences, parsePath, resolveValue, type ResolveContext } from '../src/core/template.js';

const ctx: ResolveContext = {
  trigger: { count: 2, ratio: 0.5, obj: { a: 1, b: [true, null] }, list: [10, 'x', { deep: 'y' }], yes: true, no: false, nothing: null, text: 'hi', 'a key': 'spaced' },
  variables: { greeting: 'hello' },
  config: { region: 'eu' },
  steps: { s1: { outputs: { echoed: 'one', n: 0, arr: [1, 2] }, status: 'completed', error: null } },
  run: { id: 'r-1' },
  secrets: (name) => (name === 'API_KEY' ? 's3cr3t' : undefined),
};

function resolveError(value: unknown, where?: string): StepError {
  let caught: unknown;
  try {
    resolveValue(value, ctx, where);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(StepError);
  return caught as StepError;
}

describe('resolveValue: whole-string references keep their type', () => {
  it.each([
    ['${trigger.count}', 2],
    ['${trigger.ratio}', 0.5],
    ['${trigger.yes}', true],
    ['${trigger.no}', false],
    ['${trigger.nothing}', null],
    ['${trigger.text}', 'hi'],
    ['${steps.s1.outputs.n}', 0],
  ])('%s → %j', (ref, expected) => {
    expect(resolveValue(ref, ctx)).toStrictEqual(expected);
  });

  it('objects and arrays come back as the same structures', () => {
    expect(resolveValue('${trigger.obj}', ctx)).toStrictEqual({ a: 1, b: [true, null] });
    expect(resolveValue('${steps.s1.outputs.arr}', ctx)).toStrictEqual([1, 2]);
  });

  it('surrounding whitespace inside the braces is allowed', () => {
    expect(resolveValue('${ trigger.count }', ctx)).toBe(2);
  });
});

describe('resolveValue: embedded references are stringified', () => {
  it('numbers, booleans and null become their text; objects and arrays become JSON', () => {
    expect(resolveValue('n=${trigger.count} y=${trigger.yes} z=${trigger.nothing}', ctx)).toBe('n=2 y=true z=null');
    expect(resolveValue('obj=${trigger.obj}', ctx)).toBe('obj={"a":1,"b":[true,null]}');
    expect(resolveValue('${steps.s1.outputs.arr}!', ctx)).toBe('[1,2]!');
  });

  it('strings are inserted as is (not JSON-quoted)', () => {
    expect(resolveValue('${variables.greeting}, ${trigger.text}', ctx)).toBe('hello, hi');
  });

  it('two references side by side', () => {
    expect(resolveValue('${trigger.count}${trigger.text}', ctx)).toBe('2hi');
  });

  it('resolves deeply in objects and arrays, leaving non-strings alone', () => {
    const out = resolveValue({ a: ['${trigger.count}', 3, { b: 'r=${run.id}' }], c: true, d: null, e: 'plain' }, ctx);
    expect(out).toStrictEqual({ a: [2, 3, { b: 'r=r-1' }], c: true, d: null, e: 'plain' });
  });
});

describe('resolveValue: escapes, indexes, quoted keys, roots', () => {
  it('$${ is a literal ${', () => {
    expect(resolveValue('$${trigger.count}', ctx)).toBe('${trigger.count}');
    expect(resolveValue('cost: $${x} and ${trigger.count}', ctx)).toBe('cost: ${x} and 2');
  });

  it('array indexes and quoted keys', () => {
    expect(resolveValue('${trigger.list[1]}', ctx)).toBe('x');
    expect(resolveValue('${trigger.list[2].deep}', ctx)).toBe('y');
    expect(resolveValue("${trigger['a key']}", ctx)).toBe('spaced');
    expect(resolveValue('${trigger["a key"]}', ctx)).toBe('spaced');
  });

  it('variables, config, run and step outputs', () => {
    expect(resolveValue(['${variables.greeting}', '${config.region}', '${run.id}', '${steps.s1.outputs.echoed}', '${steps.s1.status}'], ctx)).toStrictEqual([
      'hello',
      'eu',
      'r-1',
      'one',
      'completed',
    ]);
  });

  it('secrets are read through the function, only when used', () => {
    const asked: string[] = [];
    const c: ResolveContext = { trigger: {}, secrets: (n) => (asked.push(n), n === 'API_KEY' ? 's3cr3t' : undefined) };
    expect(resolveValue({ a: 'plain' }, c)).toStrictEqual({ a: 'plain' });
    expect(asked).toEqual([]);
    expect(resolveValue('Bearer ${secrets.API_KEY}', c)).toBe('Bearer s3cr3t');
    expect(asked).toEqual(['API_KEY']);
  });

  it('inherited properties are not reachable', () => {
    const err = resolveError('${trigger.constructor}');
    expect(err.code).toBe('REFERENCE_UNRESOLVED');
  });
});

describe('resolveValue: unresolvable references', () => {
  it('a missing output throws REFERENCE_UNRESOLVED naming the reference and where it is', () => {
    const err = resolveError({ msg: { parts: ['ok', 'got ${steps.s1.outputs.nope}'] } }, 'inputs');
    expect(err.code).toBe('REFERENCE_UNRESOLVED');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('inputs.msg.parts[1]');
    expect(err.message).toContain('${steps.s1.outputs.nope}');
    expect(err.message).toContain("'steps.s1.outputs.nope' is not set");
    expect(err.context.reference).toBe('steps.s1.outputs.nope');
  });

  it('a missing step names the first absent part', () => {
    const err = resolveError('${steps.s2.outputs.x}', 'where');
    expect(err.message).toMatch(/^where: /);
    expect(err.message).toContain("'steps.s2' is not set");
  });

  it('a missing secret', () => {
    const err = resolveError('${secrets.NOPE}');
    expect(err.code).toBe('REFERENCE_UNRESOLVED');
    expect(err.message).toContain("no secret named 'NOPE'");
  });

  it('an unknown root', () => {
    const err = resolveError('${env.HOME}');
    expect(err.code).toBe('REFERENCE_UNRESOLVED');
    expect(err.message).toContain("unknown root 'env'");
  });

  it('indexing into a scalar does not resolve', () => {
    expect(resolveError('${trigger.count.x}').code).toBe('REFERENCE_UNRESOLVED');
    expect(resolveError('${trigger.list[9]}').code).toBe('REFERENCE_UNRESOLVED');
  });

  it('bad syntax is REFERENCE_INVALID', () => {
    const err = resolveError('${trigger.[0}');
    expect(err.code).toBe('REFERENCE_INVALID');
    expect(err.message).toContain("bad reference '${trigger.[0}'");
  });
});

describe('parsePath and findReferences', () => {
  it('parses dotted names, indexes and quoted keys', () => {
    expect(parsePath("steps.a-b.outputs['x y'][3].z")).toEqual(['steps', 'a-b', 'outputs', 'x y', 3, 'z']);
  });

  it('rejects unquoted or unterminated brackets', () => {
    expect(() => parsePath('trigger[abc]')).toThrow(/must be a number or a quoted name/);
    expect(() => parsePath('trigger[0')).toThrow(/missing '\]'/);
    expect(() => parsePath('trigger..x')).toThrow(/expected a name/);
  });

  it('finds references deep in a value and skips escaped ones', () => {
    const refs = findReferences({ a: '${trigger.x} and $${not.this}', b: ['${steps.s.outputs.y}'], c: 3 });
    expect(refs.map((r) => r.path)).toEqual([
      ['trigger', 'x'],
      ['steps', 's', 'outputs', 'y'],
    ]);
  });
});

describe('resolveValue: llm instructions (inputs and context roots)', () => {
  it('resolves inputs and context variables, and names what is missing', () => {
    const ctx = { inputs: { customer: 'Ada' }, context: { plan: 'pro' }, config: {} };
    expect(resolveValue('Help ${inputs.customer} (${context.plan})', ctx)).toBe('Help Ada (pro)');
    expect(() => resolveValue('Hi ${context.name}', ctx, 'instructions')).toThrow("instructions: '${context.name}' does not resolve ('context.name' is not set)");
    expect(() => resolveValue('Hi ${trigger.x}', ctx, 'instructions')).toThrow(/unknown root 'trigger'; use one of inputs, context, config, run/);
  });
});
