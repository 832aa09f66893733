import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import type { Alias, Document, Node } from 'yaml';
import { ProblemList } from './problems.js';

// The yaml package (about 70 modules) loads on the first parse, not with every `swarm` process:
// most commands read no YAML. It is CommonJS, so `require` loads it synchronously.
const require = createRequire(import.meta.url);
let yamlModule: typeof Yaml | undefined;
const yaml = (): typeof Yaml => (yamlModule ??= require('yaml') as typeof Yaml);

/** The most times the nodes of one anchor may be repeated through aliases (the `yaml` package's `maxAliasCount`). */
export const YAML_MAX_ALIAS_COUNT = 100;

/** A parsed YAML file that can still tell the line of any field, for error messages. */
export interface YamlSource {
  readonly file: string;
  readonly value: unknown;
  /** The 1-based line of the node at `path`, or of its nearest existing parent. */
  lineOf(path: ReadonlyArray<string | number>): number | undefined;
}

/**
 * The offset of the `{` or `[` that a "flow map/sequence … must end with a }" error is about, when
 * it is never closed; undefined for any other error, and when the closing character is there but
 * on a line indented too little (that line is the one to blame, where the parser points).
 */
function unclosedFlowStart(doc: Document, text: string, pos: number, message: string): number | undefined {
  const end = /^Flow (map|sequence)\b.*\bend with a ([}\]])$/.exec(message);
  if (!end) return undefined;
  if (text[pos] === end[2]) return undefined;
  const wantMap = end[1] === 'map';
  let start: number | undefined;
  yaml().visit(doc, (_key, node) => {
    const isMap = yaml().isMap(node);
    if (!isMap && !yaml().isSeq(node)) return;
    const { flow, range } = node as { flow?: boolean; range?: [number, number, number] };
    // The collection the error is about ends where the error is; the innermost one starts last.
    if (flow && isMap === wantMap && range && range[1] === pos && text[range[0]] === (wantMap ? '{' : '[') && (start === undefined || range[0] > start)) start = range[0];
  });
  return start;
}

/**
 * Parse YAML text. Syntax errors, aliases to anchors that do not exist and alias expansions past
 * YAML_MAX_ALIAS_COUNT (an "alias bomb") become one ManifestError naming the file and each line.
 */
export function parseYaml(text: string, file: string): YamlSource {
  const lineCounter = new (yaml().LineCounter)();
  const doc: Document = yaml().parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const problems = new ProblemList(file);
  // Only the first syntax error: the parser's later ones are mostly its confusion after it.
  const first = doc.errors[0];
  if (first) {
    const message = first.message.split('\n')[0] ?? first.message;
    const opener = unclosedFlowStart(doc, text, first.pos[0], message);
    if (opener !== undefined) {
      // The parser notices a `{` or `[` that is never closed where the collection's content runs
      // out (the next line, or later): the line to fix is the one with the opening character.
      const at = lineCounter.linePos(opener);
      const [what, close] = text[opener] === '{' ? ['mapping', '}'] : ['sequence', ']'];
      problems.add(undefined, `invalid YAML: the ${text[opener]} in column ${at.col} opens a flow ${what} that is never closed with ${close}`, at.line);
    } else {
      const line = first.linePos?.[0]?.line ?? lineCounter.linePos(first.pos[0]).line;
      problems.add(undefined, `invalid YAML: ${message}`, line);
    }
  }
  problems.throwIfAny();
  const lineAt = (node: { range?: unknown } | null | undefined): number | undefined => {
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    return range ? lineCounter.linePos(range[0]).line : undefined;
  };
  checkAliases(doc, problems, lineAt);
  problems.throwIfAny();
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: YAML_MAX_ALIAS_COUNT });
  } catch (e) {
    // checkAliases mirrors the parser's own accounting; this is the backstop should they differ.
    if (!(e instanceof ReferenceError)) throw e;
    problems.add(undefined, `invalid YAML: ${e.message}`, 1);
    problems.throwIfAny();
  }
  return {
    file,
    value,
    lineOf(path) {
      for (let n = path.length; n >= 0; n--) {
        // A mapping entry is reported at its key (`runtime:`), not at its value's first line.
        if (n > 0) {
          const parent: unknown = n === 1 ? doc.contents : doc.getIn(path.slice(0, n - 1), true);
          if (yaml().isMap(parent)) {
            const pair = parent.items.find((p) => yaml().isScalar(p.key) && p.key.value === path[n - 1]);
            if (pair && yaml().isNode(pair.key) && pair.key.range) return lineCounter.linePos(pair.key.range[0]).line;
          }
        }
        const node: unknown = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
        if (yaml().isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
      }
      return undefined;
    },
  };
}

/** Split a JSON-pointer-like instance path (`/steps/2/agent`) into YAML path segments. */
export function pointerToPath(pointer: string): Array<string | number> {
  if (!pointer) return [];
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** Render a path as a field name users recognise: `steps[2].agent`. */
export function pathToField(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

/**
 * Find aliases that name no earlier anchor, and the alias at which the parser would stop expanding:
 * the same count as `yaml`'s `maxAliasCount` (uses of an anchor × the aliases nested in it), kept in
 * document order so the line given is the alias that crosses the limit.
 */
function checkAliases(doc: Document, problems: ProblemList, lineAt: (n: Node | null | undefined) => number | undefined): void {
  // One walk in document order: an alias refers to the last anchor of its name before it.
  const aliases: Array<{ alias: Alias; source: Node | undefined; inside: boolean }> = [];
  const anchors = new Map<string, Node>();
  yaml().visit(doc, {
    Node: (_k, node, path) => {
      if (yaml().isAlias(node)) {
        const source = anchors.get(node.source);
        aliases.push({ alias: node, source, inside: source !== undefined && path.includes(source) });
      } else if (node.anchor) anchors.set(node.anchor, node);
    },
  });
  if (aliases.length === 0) return;
  const target = new Map(aliases.map((a) => [a.alias, a.source]));
  const uses = new Map<Node, { count: number; aliasCount: number }>();
  const aliasCount = (node: unknown): number => {
    if (yaml().isAlias(node)) {
      const source = target.get(node);
      const u = source ? uses.get(source) : undefined;
      return u ? u.count * u.aliasCount : 0;
    }
    if (yaml().isCollection(node)) return node.items.reduce<number>((m, item) => Math.max(m, aliasCount(item)), 0);
    if (yaml().isPair(node)) return Math.max(aliasCount(node.key), aliasCount(node.value));
    return 1;
  };
  for (const { alias, source, inside } of aliases) {
    if (!source) {
      problems.add(undefined, `invalid YAML: alias *${alias.source} names no anchor &${alias.source} defined before it`, lineAt(alias));
      continue;
    }
    if (inside) {
      problems.add(undefined, `invalid YAML: alias *${alias.source} is inside the node its anchor names (a cycle)`, lineAt(alias));
      continue;
    }
    let u = uses.get(source);
    if (!u) uses.set(source, (u = { count: 0, aliasCount: 0 }));
    u.count += 1;
    if (u.aliasCount === 0) u.aliasCount = aliasCount(source);
    if (u.count * u.aliasCount > YAML_MAX_ALIAS_COUNT) {
      problems.add(undefined, `invalid YAML: alias *${alias.source} expands anchor &${alias.source} too often (more than ${YAML_MAX_ALIAS_COUNT} repeated nodes: an alias bomb?)`, lineAt(alias));
      return;
    }
  }
}
