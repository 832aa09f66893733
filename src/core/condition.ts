import jsep from 'jsep';
import { isMissing, lookup, REFERENCE_ROOTS, type PathSegment, type ResolveContext } from './template.js';

/**
 * The step condition language: literals (numbers, strings, true, false, null), references
 * (`steps.a.outputs.ok`, optionally written `${steps.a.outputs.ok}`), comparisons (== != < <= > >=),
 * `&&`, `||`, `!`, unary minus, `+ - * / %`, parentheses and `a ? b : c`. There are no calls, no
 * assignment and no `eval`: the expression is parsed into a tree and only these nodes are evaluated.
 * A reference to something absent evaluates to `null`, so `steps.a.outputs.x != null` tests presence.
 *
 * @example
 *   evaluateCondition("steps.check.outputs.score >= 0.5 && trigger.mode != 'dry'", ctx) // → true
 */
export type Condition = jsep.Expression;

const BINARY = new Set(['==', '!=', '===', '!==', '<', '<=', '>', '>=', '&&', '||', '+', '-', '*', '/', '%']);
const UNARY = new Set(['!', '-', '+']);

/**
 * Parse a condition; throws an Error whose message names the position of the problem. `roots` are the
 * names it may read (a wait step's `match:` may read `event` too).
 */
export function parseCondition(text: string, roots: readonly string[] = REFERENCE_ROOTS): Condition {
  const src = text.replace(/\$\{([^}]*)\}/g, '($1)');
  let ast: Condition;
  try {
    ast = jsep(src);
  } catch (e) {
    throw new Error(`invalid condition '${text}': ${(e as Error).message}`);
  }
  check(ast, text, roots);
  return ast;
}

function check(node: Condition, text: string, roots: readonly string[] = REFERENCE_ROOTS): void {
  switch (node.type) {
    case 'Literal':
      return;
    case 'Identifier': {
      const name = (node as jsep.Identifier).name;
      if (!roots.includes(name)) {
        throw new Error(`invalid condition '${text}': unknown name '${name}' (use ${roots.join(', ')}, or quote a string)`);
      }
      return;
    }
    case 'MemberExpression': {
      const m = node as jsep.MemberExpression;
      memberPath(m, text, roots);
      return;
    }
    case 'UnaryExpression': {
      const u = node as jsep.UnaryExpression;
      if (!UNARY.has(u.operator)) throw new Error(`invalid condition '${text}': operator '${u.operator}' is not allowed`);
      check(u.argument, text, roots);
      return;
    }
    case 'BinaryExpression': {
      const b = node as jsep.BinaryExpression;
      if (!BINARY.has(b.operator)) throw new Error(`invalid condition '${text}': operator '${b.operator}' is not allowed`);
      check(b.left, text, roots);
      check(b.right, text, roots);
      return;
    }
    case 'ConditionalExpression': {
      const c = node as jsep.ConditionalExpression;
      check(c.test, text, roots);
      check(c.consequent, text, roots);
      check(c.alternate, text, roots);
      return;
    }
    default:
      throw new Error(`invalid condition '${text}': ${node.type.replace(/Expression$/, '').toLowerCase()} expressions are not allowed`);
  }
}

/** The reference path a member expression denotes (`steps.a.outputs['x']` → steps,a,outputs,x). */
function memberPath(node: Condition, text: string, roots: readonly string[] | null = REFERENCE_ROOTS): PathSegment[] {
  if (node.type === 'Identifier') {
    // null: a tree parseCondition has checked already.
    if (roots) check(node, text, roots);
    return [(node as jsep.Identifier).name];
  }
  if (node.type !== 'MemberExpression') throw new Error(`invalid condition '${text}': only names can be followed by '.' or '[…]'`);
  const m = node as jsep.MemberExpression;
  const base = memberPath(m.object, text, roots);
  if (!m.computed) return [...base, (m.property as jsep.Identifier).name];
  if (m.property.type !== 'Literal') throw new Error(`invalid condition '${text}': '[…]' takes a number or a quoted name`);
  const v = (m.property as jsep.Literal).value;
  if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`invalid condition '${text}': '[…]' takes a number or a quoted name`);
  return [...base, v];
}

/** All reference paths a condition reads (for dependency analysis at register time). */
export function conditionReferences(ast: Condition): PathSegment[][] {
  const out: PathSegment[][] = [];
  const visit = (n: Condition): void => {
    if (n.type === 'Identifier' || n.type === 'MemberExpression') out.push(memberPath(n, '', null));
    else if (n.type === 'UnaryExpression') visit((n as jsep.UnaryExpression).argument);
    else if (n.type === 'BinaryExpression') {
      visit((n as jsep.BinaryExpression).left);
      visit((n as jsep.BinaryExpression).right);
    } else if (n.type === 'ConditionalExpression') {
      const c = n as jsep.ConditionalExpression;
      visit(c.test);
      visit(c.consequent);
      visit(c.alternate);
    }
  };
  visit(ast);
  return out;
}

/** Evaluate a parsed condition; the result's truthiness decides whether the step runs. */
export function evaluate(ast: Condition, ctx: ResolveContext): unknown {
  switch (ast.type) {
    case 'Literal':
      return (ast as jsep.Literal).value;
    case 'Identifier':
    case 'MemberExpression': {
      const v = lookup(ctx, memberPath(ast, '', null));
      return isMissing(v) ? null : v;
    }
    case 'UnaryExpression': {
      const u = ast as jsep.UnaryExpression;
      const v = evaluate(u.argument, ctx);
      return u.operator === '!' ? !v : u.operator === '-' ? -Number(v) : Number(v);
    }
    case 'ConditionalExpression': {
      const c = ast as jsep.ConditionalExpression;
      return evaluate(c.test, ctx) ? evaluate(c.consequent, ctx) : evaluate(c.alternate, ctx);
    }
    case 'BinaryExpression': {
      const b = ast as jsep.BinaryExpression;
      if (b.operator === '&&') return evaluate(b.left, ctx) && evaluate(b.right, ctx);
      if (b.operator === '||') return evaluate(b.left, ctx) || evaluate(b.right, ctx);
      const l = evaluate(b.left, ctx);
      const r = evaluate(b.right, ctx);
      return binary(b.operator, l, r);
    }
    default:
      throw new Error(`cannot evaluate ${ast.type}`);
  }
}

function binary(op: string, l: unknown, r: unknown): unknown {
  switch (op) {
    case '==':
    case '===':
      return looseEqual(l, r);
    case '!=':
    case '!==':
      return !looseEqual(l, r);
    case '<':
      return (l as number) < (r as number);
    case '<=':
      return (l as number) <= (r as number);
    case '>':
      return (l as number) > (r as number);
    case '>=':
      return (l as number) >= (r as number);
    case '+':
      return typeof l === 'string' || typeof r === 'string' ? `${String(l)}${String(r)}` : Number(l) + Number(r);
    case '-':
      return Number(l) - Number(r);
    case '*':
      return Number(l) * Number(r);
    case '/':
      return Number(l) / Number(r);
    case '%':
      return Number(l) % Number(r);
    default:
      throw new Error(`operator ${op} not allowed`);
  }
}

/** Equality without JavaScript's coercion surprises: same type and value, or deep-equal JSON. */
function looseEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Parse and evaluate in one call, returning a boolean. */
export function evaluateCondition(text: string, ctx: ResolveContext): boolean {
  return Boolean(evaluate(parseCondition(text), ctx));
}
