import { StepError } from './errors.js';

/** The roots a `${…}` reference may start with. */
export const REFERENCE_ROOTS = ['trigger', 'variables', 'config', 'secrets', 'steps', 'run', 'error'] as const;
export type ReferenceRoot = (typeof REFERENCE_ROOTS)[number];

export type PathSegment = string | number;

/** One `${…}` occurrence. */
export interface Reference {
  text: string;
  path: PathSegment[];
}

/** What references resolve against. `secrets` is a function so secrets are read only when used. */
export interface ResolveContext {
  trigger?: unknown;
  variables?: Record<string, unknown>;
  config?: Record<string, unknown>;
  secrets?: (name: string) => string | undefined;
  steps?: Record<string, { outputs?: unknown; status?: string; error?: string | null }>;
  run?: Record<string, unknown>;
  error?: { message: string; step?: string | null };
  /** An llm agent's instructions: the step's inputs and the loop's context variables. */
  inputs?: Record<string, unknown>;
  context?: Record<string, unknown>;
  /** The event a wait step's `match:` is tested against. */
  event?: unknown;
  /** An element of a map step: `${map.item}` and `${map.index}`. */
  map?: { item: unknown; index: number };
}

/** What an llm agent's `instructions` may reference. */
export const INSTRUCTION_ROOTS = ['inputs', 'context', 'config', 'run'] as const;

const REF = /\$\$\{|\$\{([^}]*)\}/g;

/** Parse `a.b[0]['c d'].e` into segments; throws a readable message on bad syntax. */
export function parsePath(expr: string): PathSegment[] {
  const s = expr.trim();
  const out: PathSegment[] = [];
  let i = 0;
  const ident = /[A-Za-z_][A-Za-z0-9_-]*/y;
  const readIdent = (): string => {
    ident.lastIndex = i;
    const m = ident.exec(s);
    if (!m) throw new Error(`expected a name at position ${i + 1} in '${s}'`);
    i = ident.lastIndex;
    return m[0];
  };
  out.push(readIdent());
  while (i < s.length) {
    const c = s[i];
    if (c === '.') {
      i++;
      out.push(readIdent());
    } else if (c === '[') {
      const close = s.indexOf(']', i);
      if (close < 0) throw new Error(`missing ']' in '${s}'`);
      const inner = s.slice(i + 1, close).trim();
      if (/^\d+$/.test(inner)) out.push(Number(inner));
      else if (/^'[^']*'$|^"[^"]*"$/.test(inner)) out.push(inner.slice(1, -1));
      else throw new Error(`'[${inner}]' must be a number or a quoted name in '${s}'`);
      i = close + 1;
    } else {
      throw new Error(`unexpected '${c}' at position ${i + 1} in '${s}'`);
    }
  }
  return out;
}

/** Every `${…}` in a string, object or array (deep). Throws on syntax errors, naming the text. */
export function findReferences(value: unknown): Reference[] {
  const refs: Reference[] = [];
  walkStrings(value, (str) => {
    for (const m of str.matchAll(REF)) {
      if (m[0] === '$${') continue;
      const text = m[1] ?? '';
      try {
        refs.push({ text, path: parsePath(text) });
      } catch (e) {
        throw new Error(`bad reference '\${${text}}': ${(e as Error).message}`);
      }
    }
  });
  return refs;
}

function walkStrings(value: unknown, fn: (s: string) => void): void {
  if (typeof value === 'string') fn(value);
  else if (Array.isArray(value)) for (const v of value) walkStrings(v, fn);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) walkStrings(v, fn);
}

const MISSING = Symbol('missing');

/** Look a path up in the context; returns MISSING when any segment is absent. */
export function lookup(ctx: ResolveContext, path: PathSegment[]): unknown {
  const [root, ...rest] = path;
  let cur: unknown;
  if (root === 'secrets') {
    const name = rest[0];
    if (typeof name !== 'string' || rest.length !== 1) return MISSING;
    const v = ctx.secrets?.(name);
    return v === undefined ? MISSING : v;
  }
  switch (root) {
    case 'trigger':
    case 'variables':
    case 'config':
    case 'steps':
    case 'run':
    case 'error':
    case 'inputs':
    case 'context':
    case 'event':
    case 'map':
      cur = ctx[root];
      break;
    default:
      return MISSING;
  }
  if (cur === undefined) return MISSING;
  for (const seg of rest) {
    if (cur === null || typeof cur !== 'object') return MISSING;
    if (!Object.prototype.hasOwnProperty.call(cur, seg)) return MISSING;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur === undefined ? MISSING : cur;
}

export function isMissing(v: unknown): boolean {
  return v === MISSING;
}

/**
 * Resolve every `${…}` in a value. A string that is exactly one reference keeps the value's type;
 * references inside longer strings are stringified (objects as JSON). `$${` escapes a literal `${`.
 * An unresolvable reference throws a non-retryable StepError naming it and `where` it was.
 *
 * @example
 *   resolveValue({ n: '${trigger.count}', msg: 'got ${trigger.count}' }, { trigger: { count: 2 } })
 *   // → { n: 2, msg: 'got 2' }
 */
export function resolveValue(value: unknown, ctx: ResolveContext, where = 'value'): unknown {
  if (typeof value === 'string') return resolveString(value, ctx, where);
  if (Array.isArray(value)) return value.map((v, i) => resolveValue(v, ctx, `${where}[${i}]`));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveValue(v, ctx, `${where}.${k}`);
    return out;
  }
  return value;
}

function resolveString(s: string, ctx: ResolveContext, where: string): unknown {
  if (!s.includes('${')) return s;
  const whole = /^\$\{([^}]*)\}$/.exec(s);
  if (whole) return resolveOne(whole[1] ?? '', ctx, where);
  return s.replace(REF, (m, expr: string | undefined) => {
    if (m === '$${') return '${';
    const v = resolveOne(expr ?? '', ctx, where);
    return typeof v === 'string' ? v : JSON.stringify(v);
  });
}

function resolveOne(expr: string, ctx: ResolveContext, where: string): unknown {
  let path: PathSegment[];
  try {
    path = parsePath(expr);
  } catch (e) {
    throw new StepError('REFERENCE_INVALID', `${where}: bad reference '\${${expr}}': ${(e as Error).message}`, false);
  }
  const v = lookup(ctx, path);
  if (v === MISSING) {
    throw new StepError('REFERENCE_UNRESOLVED', `${where}: '\${${expr}}' does not resolve (${explainMissing(ctx, path)})`, false, { reference: expr });
  }
  return v;
}

function explainMissing(ctx: ResolveContext, path: PathSegment[]): string {
  const root = path[0];
  const known: readonly string[] = ctx.inputs !== undefined || ctx.context !== undefined ? INSTRUCTION_ROOTS : REFERENCE_ROOTS;
  if (!known.includes(String(root))) return `unknown root '${String(root)}'; use one of ${known.join(', ')}`;
  if ((root === 'context' || root === 'inputs') && lookup(ctx, [root]) === MISSING) return `there are no ${root === 'context' ? 'context variables' : 'inputs'}`;
  if (root === 'secrets') return `no secret named '${String(path[1])}' (set SWARM_SECRET_${String(path[1])} in the worker's environment)`;
  for (let n = 2; n <= path.length; n++) {
    if (lookup(ctx, path.slice(0, n)) === MISSING) return `'${path.slice(0, n).join('.')}' is not set`;
  }
  return 'value is undefined';
}
