/**
 * The deterministic tar of a bundle (layout.ts): POSIX ustar through tar-stream with every header
 * field fixed (mtime 0, uid/gid 0, empty owner names, mode 0644, regular files only), entries in the
 * bundle's order. The same entries always give the same bytes, on any machine, so a digest of the
 * tar is a digest of its contents.
 *
 * @example
 *   const bytes = await writeTar([{ path: 'a.json', data: Buffer.from('{}\n') }]);
 *   (await readTar(bytes)).entries[0].path  // 'a.json'
 */
import tar from 'tar-stream';
import { ATTESTATION_PATHS } from './layout.js';

/** One file of a tar: its path and bytes. */
export interface TarEntry {
  path: string;
  data: Buffer;
}

/** The header fields a canonical entry has (besides name and size). */
export const CANONICAL_HEADER = { mode: 0o644, uid: 0, gid: 0, mtime: 0, uname: '', gname: '', type: 'file' } as const;

/** An entry as read, with the header fields the canonical form fixes, to say which one differs. */
export interface ReadTarEntry extends TarEntry {
  header: { mode: number; uid: number; gid: number; mtime: number; uname: string; gname: string; type: string };
}

/** What readTar got: the entries, and the error that stopped it early (a truncated or corrupt tar). */
export interface ReadTarResult {
  entries: ReadTarEntry[];
  error?: string;
}

/**
 * The bundle's order of entries: by path (code unit order), except the attestation entries, which
 * come last in their fixed order (result.json, then certificate.json).
 */
export function compareBundlePaths(a: string, b: string): number {
  const ia = (ATTESTATION_PATHS as readonly string[]).indexOf(a);
  const ib = (ATTESTATION_PATHS as readonly string[]).indexOf(b);
  if (ia !== ib) return ia === -1 ? -1 : ib === -1 ? 1 : ia - ib;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Entries in the bundle's order (a copy). */
export function sortEntries<T extends { path: string }>(entries: readonly T[]): T[] {
  return [...entries].sort((x, y) => compareBundlePaths(x.path, y.path));
}

/** The canonical tar of these entries, in the order given (sort them first with sortEntries). */
export async function writeTar(entries: readonly TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(Buffer.from(c as Uint8Array));
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      pack.entry(
        { name: e.path, size: e.data.length, mode: CANONICAL_HEADER.mode, uid: 0, gid: 0, mtime: new Date(0), uname: '', gname: '', type: 'file' },
        e.data,
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/**
 * Every entry of a tar, with the header fields that matter for the canonical form. A tar cut short
 * or corrupt after some entries returns those and `error`; bytes that are no tar at all return no
 * entries and `error`.
 */
export function readTar(bytes: Buffer): Promise<ReadTarResult> {
  return new Promise((resolve) => {
    const extract = tar.extract();
    const entries: ReadTarEntry[] = [];
    let settled = false;
    const finish = (error?: string): void => {
      if (settled) return;
      settled = true;
      resolve(error === undefined ? { entries } : { entries, error });
    };
    extract.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => void chunks.push(Buffer.from(c as Uint8Array)));
      stream.on('end', () => {
        entries.push({
          path: h.name,
          data: Buffer.concat(chunks),
          header: { mode: h.mode ?? 0, uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: h.mtime ? Math.floor(h.mtime.getTime() / 1000) : 0, uname: h.uname ?? '', gname: h.gname ?? '', type: h.type ?? 'file' },
        });
        next();
      });
    });
    extract.on('finish', () => finish());
    extract.on('close', () => finish('unexpected end of data'));
    extract.on('error', (e: unknown) => finish(e instanceof Error ? e.message : String(e)));
    extract.end(bytes);
  });
}
