import { ManifestError, type ManifestProblem } from '../errors.js';

/** The most problems one ManifestError lists; past this the rest are counted, not shown. */
export const MAX_REPORTED_PROBLEMS = 50;

/**
 * Names that must never become the key of a plain object: a step id, an agent name or a field
 * named like this would reach `Object.prototype` through `obj[id]`.
 */
export const RESERVED_NAMES: readonly string[] = ['__proto__', 'constructor', 'prototype'];

export function isReservedName(name: unknown): boolean {
  return typeof name === 'string' && RESERVED_NAMES.includes(name);
}

export function reservedProblem(name: string, what: string): string {
  return `'${name}' is reserved and cannot be used as ${what} (reserved: ${RESERVED_NAMES.join(', ')})`;
}

/**
 * Collects the problems of one manifest so that all of them are reported together, not only the
 * first: checks `add()` and go on; `throwIfAny()` ends the validation with one ManifestError.
 */
export class ProblemList {
  private readonly list: ManifestProblem[] = [];
  private readonly seen = new Set<string>();

  constructor(readonly file: string) {}

  add(field: string | undefined, problem: string, line?: number): void {
    const key = `${line ?? ''}\u0000${field ?? ''}\u0000${problem}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.list.push({ file: this.file, field, problem, line });
  }

  /** Add the problems of a ManifestError (other errors are rethrown). */
  addError(e: unknown): void {
    if (!(e instanceof ManifestError)) throw e;
    for (const p of e.problems) this.add(p.field, p.problem, p.line);
  }

  /** Run `check`; a ManifestError it throws is recorded and the validation goes on. */
  guard<T>(check: () => T): T | undefined {
    try {
      return check();
    } catch (e) {
      this.addError(e);
      return undefined;
    }
  }

  get size(): number {
    return this.list.length;
  }

  throwIfAny(): void {
    if (this.list.length === 0) return;
    // In file order: a user reads them top to bottom.
    const sorted = this.list
      .map((p, i) => ({ p, i }))
      .sort((a, b) => (a.p.line ?? Number.MAX_SAFE_INTEGER) - (b.p.line ?? Number.MAX_SAFE_INTEGER) || a.i - b.i)
      .map((x) => x.p);
    const shown = sorted.slice(0, MAX_REPORTED_PROBLEMS);
    if (sorted.length > shown.length) shown.push({ file: this.file, problem: `and ${sorted.length - shown.length} more problems` });
    throw new ManifestError(shown);
  }
}

/**
 * A value read from YAML as an error message shows it: strings in quotes, numbers YAML cannot write
 * in JSON as YAML spells them (`.inf`, `-.inf`, `.nan`, which JSON would print as `null`), the rest
 * as JSON.
 *
 * @example
 *   shownValue(Number.POSITIVE_INFINITY); // '.inf'
 */
export function shownValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? '.nan' : v > 0 ? '.inf' : '-.inf';
  return JSON.stringify(v) ?? String(v);
}
