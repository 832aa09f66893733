import type { ProblemList } from '../problems.js';

/** One section of `guardrails:` being parsed: its value, and where it is (for problems with file, field and line). */
export interface GuardrailSection {
  value: unknown;
  file: string;
  /** The section's path in the file, e.g. ['guardrails', 'budget'] or ['steps', 2, 'budget']. */
  path: Array<string | number>;
  /** The line of a path in the file (absolute path, e.g. [...s.path, 'tokens']). */
  lineOf(path: ReadonlyArray<string | number>): number | undefined;
  problems: ProblemList;
}

/** `a.b[2].c`: a path as a field name in problems. */
export function fieldName(path: ReadonlyArray<string | number>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}
