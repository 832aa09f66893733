/**
 * Tools that ship with Swarm (`{ builtin: <name> }` in agent.yaml): `http_fetch`, `current_time`
 * and `calculator`.
 */
import jsep from 'jsep';
import { tool, type Tool } from '../agent.js';
import { ToolCallError } from './errors.js';
import type { NetworkGuard } from '../../net/guard.js';
import { boundedRequest, httpUrl, responseBody, TOOL_HTTP_DEFAULT_MAX_BYTES, TOOL_HTTP_DEFAULT_TIMEOUT_MS, withIdempotencyKey } from './http.js';
import type { BuiltinToolName } from './spec.js';

/**
 * `http_fetch`: GET or POST a URL. Returns `{ status, content_type, body }` (body: parsed JSON for a
 * JSON response, else text, cut at 100000 bytes with a note); `truncated: true` when it was cut. A
 * status outside 2xx is returned, not thrown: the model decides what a 404 means.
 */
export const httpFetchTool = (guard?: NetworkGuard): Tool => tool({
  name: 'http_fetch',
  description:
    'Fetch a URL over HTTP(S) with GET or POST. Returns the status, the content type and the body (parsed JSON for JSON responses, ' +
    `otherwise text; responses longer than ${TOOL_HTTP_DEFAULT_MAX_BYTES} bytes are cut).`,
  parameters: {
    type: 'object',
    properties: {
      url: { type: 'string', description: 'The http:// or https:// URL.' },
      method: { type: 'string', enum: ['GET', 'POST'], description: 'Default GET.' },
      headers: { type: 'object', additionalProperties: { type: 'string' }, description: 'Request headers.' },
      body: { description: 'POST body: a string, or any JSON value (sent as application/json).' },
    },
    required: ['url'],
    additionalProperties: false,
  },
  async execute(args, ctx) {
    const url = httpUrl(typeof args.url === 'string' ? args.url : '');
    if (typeof url === 'string') throw new ToolCallError('TOOL_ARGUMENTS_INVALID', url);
    const method = typeof args.method === 'string' ? args.method.toUpperCase() : 'GET';
    if (method !== 'GET' && method !== 'POST') throw new ToolCallError('TOOL_ARGUMENTS_INVALID', `method must be GET or POST, not '${method}'`);
    let headers: Record<string, string> = {};
    for (const [k, v] of Object.entries((args.headers as Record<string, unknown> | undefined) ?? {})) headers[k] = String(v);
    let body: string | undefined;
    if (method === 'POST' && args.body !== undefined && args.body !== null) {
      if (typeof args.body === 'string') body = args.body;
      else {
        body = JSON.stringify(args.body);
        if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
      }
    }
    headers = withIdempotencyKey(headers, method, ctx);
    const maxBytes = TOOL_HTTP_DEFAULT_MAX_BYTES;
    const res = await boundedRequest({ url, method, headers, ...(body !== undefined ? { body } : {}), timeoutMs: TOOL_HTTP_DEFAULT_TIMEOUT_MS, maxBytes, signal: ctx.signal, ...(guard ? { guard } : {}) });
    return { status: res.status, content_type: res.contentType, body: responseBody(res, maxBytes), ...(res.truncated ? { truncated: true } : {}) };
  },
});

/** `current_time`: the time now, in UTC or an IANA time zone. */
const currentTime: Tool = tool({
  name: 'current_time',
  description: 'The current date and time as ISO 8601, in UTC or in an IANA time zone (like Europe/Paris), with the weekday.',
  parameters: {
    type: 'object',
    properties: { time_zone: { type: 'string', description: 'An IANA time zone name such as America/New_York. Default UTC.' } },
    additionalProperties: false,
  },
  execute(args) {
    const zone = typeof args.time_zone === 'string' && args.time_zone.trim() ? args.time_zone.trim() : 'UTC';
    return zonedTime(new Date(), zone);
  },
});

/** `{ time_zone, iso (local time with its UTC offset), utc, weekday }` for a moment in a time zone. */
export function zonedTime(date: Date, timeZone: string): { time_zone: string; iso: string; utc: string; weekday: string } {
  let fmt: Intl.DateTimeFormat;
  try {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      weekday: 'long',
    });
  } catch {
    throw new ToolCallError('TOOL_ARGUMENTS_INVALID', `unknown time zone '${timeZone}' (use an IANA name such as Europe/Paris, or UTC)`);
  }
  const parts: Record<string, string> = {};
  for (const p of fmt.formatToParts(date)) parts[p.type] = p.value;
  const [y, mo, d, h, mi, s] = (['year', 'month', 'day', 'hour', 'minute', 'second'] as const).map((k) => Number(parts[k]));
  const wholeSeconds = Math.floor(date.getTime() / 1000) * 1000;
  const offsetMin = Math.round((Date.UTC(y!, mo! - 1, d, h, mi, s) - wholeSeconds) / 60_000);
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  const offset = offsetMin === 0 ? 'Z' : `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  const iso = `${String(y).padStart(4, '0')}-${pad(mo!)}-${pad(d!)}T${pad(h!)}:${pad(mi!)}:${pad(s!)}${offset}`;
  return { time_zone: fmt.resolvedOptions().timeZone, iso, utc: date.toISOString(), weekday: parts.weekday ?? '' };
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

const MAX_EXPRESSION = 1000;
const CONSTANTS: Readonly<Record<string, number>> = { pi: Math.PI, PI: Math.PI, e: Math.E, E: Math.E, tau: 2 * Math.PI, inf: Infinity };
const FUNCTIONS: Readonly<Record<string, { fn: (...xs: number[]) => number; arity: [number, number] }>> = {
  abs: { fn: Math.abs, arity: [1, 1] },
  sign: { fn: Math.sign, arity: [1, 1] },
  sqrt: { fn: Math.sqrt, arity: [1, 1] },
  cbrt: { fn: Math.cbrt, arity: [1, 1] },
  exp: { fn: Math.exp, arity: [1, 1] },
  ln: { fn: Math.log, arity: [1, 1] },
  log: { fn: (x, base) => (base === undefined ? Math.log(x) : Math.log(x) / Math.log(base)), arity: [1, 2] },
  log10: { fn: Math.log10, arity: [1, 1] },
  log2: { fn: Math.log2, arity: [1, 1] },
  floor: { fn: Math.floor, arity: [1, 1] },
  ceil: { fn: Math.ceil, arity: [1, 1] },
  trunc: { fn: Math.trunc, arity: [1, 1] },
  round: { fn: (x, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits, arity: [1, 2] },
  min: { fn: Math.min, arity: [1, Infinity] },
  max: { fn: Math.max, arity: [1, Infinity] },
  pow: { fn: Math.pow, arity: [2, 2] },
  hypot: { fn: Math.hypot, arity: [1, Infinity] },
  sin: { fn: Math.sin, arity: [1, 1] },
  cos: { fn: Math.cos, arity: [1, 1] },
  tan: { fn: Math.tan, arity: [1, 1] },
  asin: { fn: Math.asin, arity: [1, 1] },
  acos: { fn: Math.acos, arity: [1, 1] },
  atan: { fn: Math.atan, arity: [1, 1] },
  atan2: { fn: Math.atan2, arity: [2, 2] },
};
const BINARY: Readonly<Record<string, (a: number, b: number) => number>> = {
  '+': (a, b) => a + b,
  '-': (a, b) => a - b,
  '*': (a, b) => a * b,
  '/': (a, b) => a / b,
  '%': (a, b) => a % b,
  '**': (a, b) => a ** b,
};

/**
 * Evaluate arithmetic safely: the text is parsed with jsep and only numbers, the constants, the
 * functions above, `+ - * / % **` (`^` is a power too), unary minus and parentheses are evaluated.
 * There is no `eval` and no access to anything else. `-2^2` is -4, as in mathematics.
 */
export function calculate(expression: string): number {
  if (expression.length > MAX_EXPRESSION) throw new ToolCallError('TOOL_ARGUMENTS_INVALID', `the expression is longer than ${MAX_EXPRESSION} characters`);
  let ast: jsep.Expression;
  try {
    ast = jsep(expression.replace(/\^/g, '**'));
  } catch (e) {
    throw new ToolCallError('TOOL_ARGUMENTS_INVALID', `cannot parse '${expression}': ${(e as Error).message}`);
  }
  const value = evaluate(ast, expression);
  if (Number.isNaN(value)) throw new ToolCallError('TOOL_RESULT_INVALID', `'${expression}' is not a number (NaN)`);
  if (!Number.isFinite(value)) throw new ToolCallError('TOOL_RESULT_INVALID', `'${expression}' is infinite (division by zero or overflow)`);
  // 0.1 + 0.2 is 0.3 to a reader: 15 significant digits hide binary rounding noise.
  return Number(value.toPrecision(15));
}

function evaluate(node: jsep.Expression, text: string): number {
  const bad = (what: string): never => {
    throw new ToolCallError('TOOL_ARGUMENTS_INVALID', `cannot evaluate '${text}': ${what}`);
  };
  switch (node.type) {
    case 'Literal': {
      const v = (node as jsep.Literal).value;
      return typeof v === 'number' ? v : bad(`${JSON.stringify(v)} is not a number`);
    }
    case 'Identifier': {
      const name = (node as jsep.Identifier).name;
      // Own properties only: 'constructor' or 'toString' must not reach Object.prototype.
      const v = Object.hasOwn(CONSTANTS, name) ? CONSTANTS[name] : undefined;
      return v !== undefined ? v : bad(`unknown name '${name}' (constants: ${Object.keys(CONSTANTS).join(', ')})`);
    }
    case 'UnaryExpression': {
      const u = node as jsep.UnaryExpression;
      const v = evaluate(u.argument, text);
      if (u.operator === '-') return -v;
      if (u.operator === '+') return v;
      return bad(`operator '${u.operator}' is not supported`);
    }
    case 'BinaryExpression': {
      const b = node as jsep.BinaryExpression;
      const op = Object.hasOwn(BINARY, b.operator) ? BINARY[b.operator] : undefined;
      if (!op) return bad(`operator '${b.operator}' is not supported (use + - * / % ** or ^)`);
      // jsep binds a unary minus tighter than **: -2**2 parses as (-2)**2, but means -(2**2).
      if (b.operator === '**' && b.left.type === 'UnaryExpression') {
        const u = b.left as jsep.UnaryExpression;
        const inner = op(evaluate(u.argument, text), evaluate(b.right, text));
        return u.operator === '-' ? -inner : u.operator === '+' ? inner : bad(`operator '${u.operator}' is not supported`);
      }
      return op(evaluate(b.left, text), evaluate(b.right, text));
    }
    case 'CallExpression': {
      const c = node as jsep.CallExpression;
      const name = c.callee.type === 'Identifier' ? (c.callee as jsep.Identifier).name : bad('only named functions can be called');
      const f = Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name] : undefined;
      if (!f) return bad(`unknown function '${name}' (functions: ${Object.keys(FUNCTIONS).join(', ')})`);
      const [lo, hi] = f.arity;
      if (c.arguments.length < lo || c.arguments.length > hi) {
        return bad(`${name}() takes ${lo === hi ? lo : hi === Infinity ? `at least ${lo}` : `${lo} or ${hi}`} argument${hi === 1 ? '' : 's'}`);
      }
      return f.fn(...c.arguments.map((a) => evaluate(a, text)));
    }
    case 'Compound':
      return bad('give one expression (no commas or semicolons between expressions)');
    default:
      return bad(`${node.type.replace(/Expression$/, '').toLowerCase()} expressions are not supported`);
  }
}

/** `calculator`: evaluate an arithmetic expression. */
const calculator: Tool = tool({
  name: 'calculator',
  description:
    'Evaluate an arithmetic expression exactly as written and return the number. Supports + - * / % and ** or ^ (power), parentheses, ' +
    'the constants pi, e and tau, and the functions abs, sign, sqrt, cbrt, exp, ln, log (natural, or log(x, base)), log10, log2, floor, ceil, ' +
    'trunc, round (round(x, digits)), min, max, pow, hypot, sin, cos, tan, asin, acos, atan, atan2 (radians).',
  parameters: {
    type: 'object',
    properties: { expression: { type: 'string', description: 'For example: (2 + 3) * sqrt(16) / 4' } },
    required: ['expression'],
    additionalProperties: false,
  },
  execute(args) {
    if (typeof args.expression !== 'string' || !args.expression.trim()) throw new ToolCallError('TOOL_ARGUMENTS_INVALID', 'expression must be a non-empty string');
    return calculate(args.expression);
  },
});

/** The built-in tools by name. Each `loadTools` call returns copies, so a flag set on one agent's tool does not leak. */
export const BUILTIN_TOOLS: Readonly<Record<BuiltinToolName, Tool>> = Object.freeze({
  http_fetch: httpFetchTool(),
  current_time: currentTime,
  calculator,
});
