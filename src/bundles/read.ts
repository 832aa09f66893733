/**
 * Read a bundle's tar into its entries, refusing bytes that are not a bundle at all (not a tar, no
 * manifest.json, another format): NotABundleError, exit 2. Reading checks nothing else; verify.ts
 * does. `swarm runs import` and the verifier both start here.
 *
 * @example
 *   const b = await readBundle(await readFile('run.tar'));
 *   b.manifest.run_id;  b.json('run.json');  b.text('events.jsonl')
 */
import { UserError } from '../core/errors.js';
import { BUNDLE_FORMAT, BUNDLE_PATHS, type BundleManifest } from './layout.js';
import { readTar, type ReadTarEntry } from './tar.js';

/**
 * Bytes that are not a run bundle (exit 2), or, `damaged`, a bundle's tar cut short or corrupt before
 * its manifest could be read: the same verdict as one cut after it, which verify reports (exit 3).
 */
export class NotABundleError extends UserError {
  constructor(
    message: string,
    readonly damaged = false,
  ) {
    super('BUNDLE_INVALID', message);
  }
}

/** A bundle as read: its entries in tar order, and readers for them. */
export interface ParsedBundle {
  /** The tar's entries, in the order they are in the file. */
  entries: ReadTarEntry[];
  /** Set when the tar ended early or is corrupt after some entries: what the tar reader said. */
  tarError?: string;
  manifest: BundleManifest;
  /** The entry of a path (the first of that name), or undefined. */
  get(path: string): ReadTarEntry | undefined;
  /** An entry's text (UTF-8); throws NotABundleError if there is none. */
  text(path: string): string;
  /** An entry parsed as JSON; throws NotABundleError if there is none or it is no JSON. */
  json<T = unknown>(path: string): T;
}

/** Parse bundle bytes. A tar cut short after manifest.json still parses (with `tarError`): verify reports it. */
export async function readBundle(bytes: Buffer): Promise<ParsedBundle> {
  const { entries, error } = await readTar(bytes);
  if (entries.length === 0) throw new NotABundleError(`not a bundle: not a tar archive${error ? ` (${error})` : ''}`);
  const byPath = new Map<string, ReadTarEntry>();
  for (const e of entries) if (!byPath.has(e.path)) byPath.set(e.path, e);
  const manifestEntry = byPath.get(BUNDLE_PATHS.manifest);
  if (!manifestEntry) {
    // Entries were read and then the tar broke off: a bundle cut short (a partial download), whatever its first entry is.
    if (error) throw new NotABundleError(`the archive is cut short or corrupt after entry ${entries[entries.length - 1]?.path ?? '-'} (${error}), before its ${BUNDLE_PATHS.manifest}`, true);
    throw new NotABundleError(`not a bundle: the tar has no ${BUNDLE_PATHS.manifest}`);
  }
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(manifestEntry.data.toString('utf8')) as BundleManifest;
  } catch {
    throw new NotABundleError(`not a bundle: ${BUNDLE_PATHS.manifest} is not JSON`);
  }
  if (manifest === null || typeof manifest !== 'object' || manifest.format !== BUNDLE_FORMAT) {
    const format = (manifest as { format?: unknown } | null)?.format;
    const newer = typeof format === 'string' ? /^swarm-run-bundle\/(\d+)$/.exec(format) : null;
    if (newer && Number(newer[1]) > Number(BUNDLE_FORMAT.slice(BUNDLE_FORMAT.lastIndexOf('/') + 1))) {
      throw new NotABundleError(`the bundle is format ${newer[0]}, written by a newer Swarm; this one reads ${BUNDLE_FORMAT}: upgrade Swarm to verify or import it`);
    }
    throw new NotABundleError(`not a bundle: ${BUNDLE_PATHS.manifest} format is ${JSON.stringify(format)}, expected ${BUNDLE_FORMAT}`);
  }
  const text = (path: string): string => {
    const e = byPath.get(path);
    if (!e) throw new NotABundleError(`the bundle has no ${path}`);
    return e.data.toString('utf8');
  };
  return {
    entries,
    ...(error ? { tarError: error } : {}),
    manifest,
    get: (path) => byPath.get(path),
    text,
    json<T>(path: string): T {
      try {
        return JSON.parse(text(path)) as T;
      } catch (e) {
        if (e instanceof NotABundleError) throw e;
        throw new NotABundleError(`${path} is not JSON`);
      }
    },
  };
}
