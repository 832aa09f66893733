import { expect } from 'vitest';
import { UserError } from '../../src/core/errors.js';

/** The UserError `fn` throws (the test fails if it throws nothing, or something else). */
export function thrown(fn: () => unknown): UserError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected a throw');
}
