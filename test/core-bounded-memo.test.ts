import { describe, expect, it } from 'vitest';
import { BoundedMemo } from '../src/core/bounded-memo.js';

describe('BoundedMemo', () => {
  it('makes a value once per key, remembers null and undefined too, and starts again when full', () => {
    const memo = new BoundedMemo<string, string | null | undefined>(3);
    let made = 0;
    const make = (v: string | null | undefined) => () => {
      made++;
      return v;
    };
    expect(memo.get('a', make('A'))).toBe('A');
    expect(memo.get('a', make('other'))).toBe('A');
    expect(memo.get('n', make(null))).toBeNull();
    expect(memo.get('n', make('other'))).toBeNull();
    expect(memo.get('u', make(undefined))).toBeUndefined();
    expect(memo.get('u', make('other'))).toBeUndefined();
    expect(made).toBe(3);
    // Full (3 entries): a fourth key empties it, so 'a' is made again.
    expect(memo.get('d', make('D'))).toBe('D');
    expect(memo.get('a', make('A2'))).toBe('A2');
    expect(made).toBe(5);
  });

  it('remembers nothing when making throws', () => {
    const memo = new BoundedMemo<string, number>(8);
    expect(() => memo.get('x', () => { throw new Error('bad'); })).toThrow('bad');
    expect(memo.get('x', () => 1)).toBe(1);
    memo.clear();
    expect(memo.get('x', () => 2)).toBe(2);
  });
});
