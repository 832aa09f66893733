/**
 * Command-line options of the bench runners, parsed by Node's own `util.parseArgs`: an unknown option
 * or a missing value is an error naming the option, followed by the runner's usage; `--help` prints
 * the usage. The runners check the values themselves with the helpers below.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

/** The options every bench runner has: `--quick`, `--repeat`, `--trace`, `--dir`, `--keep`, `--no-save`. */
export const COMMON_OPTIONS = {
  quick: { type: 'boolean' },
  repeat: { type: 'string' },
  trace: { type: 'boolean' },
  dir: { type: 'string' },
  keep: { type: 'boolean' },
  'no-save': { type: 'boolean' },
} as const satisfies OptionSpecs;
type Values<T extends OptionSpecs> = { [K in keyof T]?: T[K]['type'] extends 'boolean' ? boolean : string };

export function benchOptions<T extends OptionSpecs>(argv: readonly string[], options: T, usage: string): Values<T> {
  let values: Record<string, string | boolean | Array<string | boolean> | undefined>;
  try {
    values = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${usage}`);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  return values as Values<T>;
}

/** An integer option within bounds, or undefined when not given. */
export function intOption(v: string | undefined, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? (min === 1 ? 'a positive integer' : `an integer of at least ${min}`) : `an integer from ${min} to ${max}`;
    throw new Error(`${flag} needs ${range}, not '${v}'`);
  }
  return n;
}

/** A comma-separated list, each item checked against the names allowed (with aliases). */
export function namesOption<N extends string>(v: string, flag: string, allowed: readonly N[], aliases: Record<string, N> = {}): Set<N> {
  const out = new Set<N>();
  for (const raw of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const name = aliases[raw] ?? raw;
    if (!(allowed as readonly string[]).includes(name)) throw new Error(`${flag}: unknown name '${raw}' (have: ${allowed.join(', ')})`);
    out.add(name as N);
  }
  if (out.size === 0) throw new Error(`${flag} needs at least one of: ${allowed.join(', ')}`);
  return out;
}

/** A comma-separated list of counts from 1 to 64, like `1,2,4`. */
export function countsOption(v: string, flag: string): number[] {
  const out = v.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 1 || n > 64)) throw new Error(`${flag} needs positive integers, like 1,2,4`);
  return out;
}
