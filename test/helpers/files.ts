import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Every file under `dir`, counted, with those whose raw bytes contain any of `needles` (a planted
 * secret, say): one hit per file and needle, as `<relative path>: <needle's start>…`.
 */
export function filesContaining(dir: string, needles: string | string[]): { files: number; hits: string[] } {
  const wanted = (Array.isArray(needles) ? needles : [needles]).map((n) => [n, Buffer.from(n)] as const);
  let files = 0;
  const hits: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) {
        files++;
        const bytes = readFileSync(p);
        for (const [n, b] of wanted) if (bytes.includes(b)) hits.push(`${relative(dir, p)}: ${n.slice(0, 12)}…`);
      }
    }
  };
  walk(dir);
  return { files, hits };
}
