import { describe, expect, it } from 'vitest';
import { conditionReferences, evaluate, evaluateCondition, parseCondition } from '../src/core/condition.js';
import type { ResolveContext } from '../src/core/template.js';

const ctx: ResolveContext = {
  trigger: { mode: 'live', n: 5, s: '1', flag: true, off: false, zero: 0, list: [1, 2], obj: { k: [1, { z: 2 }] } },
  variables: { limit: 10 },
  steps: {
    check: { outputs: { score: 0.7, ok: true, label: 'good' }, status: 'completed', error: null },
    bad: { outputs: {}, status: 'failed', error: 'boom' },
  },
};

const ev = (text: string): boolean => evaluateCondition(text, ctx);
const val = (text: string): unknown => evaluate(parseCondition(text), ctx);

describe('condition evaluation', () => {
  it('comparisons', () => {
    expect(ev('steps.check.outputs.score >= 0.5')).toBe(true);
    expect(ev('steps.check.outputs.score > 0.7')).toBe(false);
    expect(ev('steps.check.outputs.score <= 0.7')).toBe(true);
    expect(ev('trigger.n < variables.limit')).toBe(true);
    expect(ev("trigger.mode == 'live'")).toBe(true);
    expect(ev("trigger.mode != 'live'")).toBe(false);
    expect(ev("steps.bad.status == 'failed'")).toBe(true);
    expect(ev("steps.bad.error == 'boom'")).toBe(true);
  });

  it('&&, || and ! combine and short-circuit', () => {
    expect(ev("steps.check.outputs.ok && trigger.mode != 'dry'")).toBe(true);
    expect(ev('trigger.off && trigger.flag')).toBe(false);
    expect(ev('trigger.off || trigger.flag')).toBe(true);
    expect(ev('!trigger.off')).toBe(true);
    expect(ev('!(trigger.n > 3)')).toBe(false);
    expect(val('trigger.zero || trigger.mode')).toBe('live');
    expect(val('trigger.off && trigger.mode')).toBe(false);
  });

  it('ternary', () => {
    expect(val("trigger.flag ? 'a' : 'b'")).toBe('a');
    expect(val("trigger.zero ? 'a' : 'b'")).toBe('b');
    expect(ev('trigger.n > 3 ? steps.check.outputs.ok : false')).toBe(true);
  });

  it('arithmetic and unary minus', () => {
    expect(val('trigger.n * 2 + 1')).toBe(11);
    expect(val('trigger.n % 2')).toBe(1);
    expect(val('-trigger.n')).toBe(-5);
    expect(val("trigger.mode + '!'")).toBe('live!');
  });

  it('${…}-wrapped references work like bare ones', () => {
    expect(ev('${steps.check.outputs.score} >= 0.5')).toBe(true);
    expect(ev("${trigger.mode} == 'live' && ${steps.check.outputs.ok}")).toBe(true);
  });

  it('indexes and quoted keys', () => {
    expect(val('trigger.list[1]')).toBe(2);
    expect(val("trigger.obj['k'][1].z")).toBe(2);
  });

  it('a missing path evaluates to null', () => {
    expect(val('steps.check.outputs.missing')).toBeNull();
    expect(val('steps.nostep.outputs.x')).toBeNull();
    expect(ev('steps.check.outputs.missing == null')).toBe(true);
    expect(ev('steps.check.outputs.score != null')).toBe(true);
    expect(ev('steps.check.outputs.missing')).toBe(false);
  });

  it('equality does not coerce types', () => {
    expect(ev('trigger.s == 1')).toBe(false);
    expect(ev("'1' == 1")).toBe(false);
    expect(ev('trigger.s != 1')).toBe(true);
    expect(ev('trigger.zero == false')).toBe(false);
    expect(ev('null == 0')).toBe(false);
    expect(ev('true == 1')).toBe(false);
    expect(ev("trigger.s == '1'")).toBe(true);
    expect(ev('trigger.n === 5')).toBe(true);
  });

  it('objects and arrays compare by value', () => {
    expect(ev('trigger.list == trigger.list')).toBe(true);
    const c: ResolveContext = { trigger: { a: { x: [1] }, b: { x: [1] }, c: { x: [2] } } };
    expect(evaluateCondition('trigger.a == trigger.b', c)).toBe(true);
    expect(evaluateCondition('trigger.a == trigger.c', c)).toBe(false);
  });

  it('inherited properties are not reachable', () => {
    expect(val('trigger.constructor')).toBeNull();
    expect(val("trigger['__proto__']")).toBeNull();
  });
});

describe('condition parsing rejects what is not allowed', () => {
  it.each([
    ["steps.check.outputs.label.startsWith('g')", /call expressions are not allowed/],
    ['process.exit(1)', /call expressions are not allowed|unknown name 'process'/],
    ['trigger.n = 1', /invalid condition/],
    ['trigger.n += 1', /invalid condition/],
    ['trigger.n++', /invalid condition/],
    ['foo == 1', /unknown name 'foo'/],
    ['undefined == null', /unknown name 'undefined'/],
    ['this.x', /invalid condition/],
    ['[1, 2]', /array expressions are not allowed/],
    ['trigger.a, trigger.b', /compound expressions are not allowed/],
    ['~trigger.n', /operator '~' is not allowed/],
    ['trigger.n & 1', /operator '&' is not allowed/],
    ['trigger.n >> 1', /operator '>>' is not allowed/],
    ['trigger.n ?? 1', /operator '\?\?' is not allowed/],
    ['trigger[trigger.mode]', /takes a number or a quoted name/],
    ["'abc'.length", /only names can be followed/],
    ['steps.check.outputs.score >', /invalid condition/],
  ])('%s', (text, message) => {
    expect(() => parseCondition(text)).toThrow(message);
  });

  it('the error names the condition text', () => {
    expect(() => parseCondition('foo == 1')).toThrow("invalid condition 'foo == 1'");
  });
});

describe('conditionReferences', () => {
  it('lists every path a condition reads', () => {
    const refs = conditionReferences(parseCondition("${steps.a.outputs.x} > 1 && (!steps.b.status ? trigger['k y'] : variables.v[0])"));
    expect(refs).toEqual([
      ['steps', 'a', 'outputs', 'x'],
      ['steps', 'b', 'status'],
      ['trigger', 'k y'],
      ['variables', 'v', 0],
    ]);
  });
});
