import { isMap, isNode, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { ManifestError } from '../errors.js';

/** A parsed YAML file that can still tell the line of any field, for error messages. */
export interface YamlSource {
  readonly file: string;
  readonly value: unknown;
  /** The 1-based line of the node at `path`, or of its nearest existing parent. */
  lineOf(path: ReadonlyArray<string | number>): number | undefined;
}

/** Parse YAML text; a syntax error becomes a ManifestError naming the file and line. */
export function parseYaml(text: string, file: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const first = doc.errors[0];
  if (first) {
    const line = first.linePos?.[0]?.line ?? lineCounter.linePos(first.pos[0]).line;
    const problem = first.message.split('\n')[0] ?? first.message;
    throw new ManifestError(file, undefined, `invalid YAML: ${problem}`, line);
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  return {
    file,
    value,
    lineOf(path) {
      for (let n = path.length; n >= 0; n--) {
        // A mapping entry is reported at its key (`runtime:`), not at its value's first line.
        if (n > 0) {
          const parent: unknown = n === 1 ? doc.contents : doc.getIn(path.slice(0, n - 1), true);
          if (isMap(parent)) {
            const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path[n - 1]);
            if (pair && isNode(pair.key) && pair.key.range) return lineCounter.linePos(pair.key.range[0]).line;
          }
        }
        const node: unknown = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
        if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
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
