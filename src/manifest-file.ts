import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { ManifestError, NotFoundError, UserError } from './core/errors.js';

/** The default largest manifest file read (agent.yaml, workflow.yaml, swarm.yaml): 1 MiB. */
export const MANIFEST_MAX_BYTES = 1024 * 1024;

export interface ReadManifestOptions {
  /** Refuse files larger than this many bytes (default MANIFEST_MAX_BYTES). */
  maxBytes?: number;
}

/**
 * Read a manifest file as UTF-8 text, refusing anything that is not a regular file (a directory, a
 * FIFO, a device such as /dev/zero behind a symlink, a socket) and anything larger than `maxBytes`,
 * before reading a byte of it: nothing here can block or read without end.
 *
 * @example
 *   const text = readManifestFile('agents/echo/agent.yaml');
 */
export function readManifestFile(file: string, options: ReadManifestOptions = {}): string {
  const maxBytes = options.maxBytes ?? MANIFEST_MAX_BYTES;
  let st: Stats;
  try {
    st = statSync(file);
  } catch (e) {
    throw ioError(file, e);
  }
  checkKind(file, st, maxBytes);
  // O_NONBLOCK: should the path have been swapped for a FIFO since the stat, open does not wait for a writer.
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw ioError(file, e);
  }
  try {
    const now = fstatSync(fd);
    checkKind(file, now, maxBytes);
    // Read at most one byte past the limit: a file that grew since the stat is still refused.
    const buf = Buffer.alloc(Math.min(now.size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n === buf.length) break;
    }
    if (n > maxBytes) throw tooLarge(file, n, maxBytes);
    return buf.subarray(0, n).toString('utf8');
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw ioError(file, e);
  } finally {
    closeSync(fd);
  }
}

function checkKind(file: string, st: Stats, maxBytes: number): void {
  if (st.isDirectory()) throw new ManifestError(file, undefined, 'is a directory, not a file');
  if (!st.isFile()) {
    const kind = st.isFIFO() ? 'a FIFO (named pipe)' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isSocket() ? 'a socket' : 'not a regular file';
    throw new ManifestError(file, undefined, `is ${kind}, not a regular file (manifests must be regular files)`);
  }
  if (st.size > maxBytes) throw tooLarge(file, st.size, maxBytes);
}

function tooLarge(file: string, size: number, maxBytes: number): ManifestError {
  return new ManifestError(file, undefined, `is ${formatBytes(size)}, more than the ${formatBytes(maxBytes)} a manifest may be (limits.manifest_bytes in swarm.yaml)`);
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(n % (1024 * 1024) ? 1 : 0)} MiB (${n} bytes)`;
  if (n >= 1024) return `${(n / 1024).toFixed(n % 1024 ? 1 : 0)} KiB (${n} bytes)`;
  return `${n} bytes`;
}

function ioError(file: string, e: unknown): UserError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new NotFoundError('file', file);
  const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'ELOOP' ? 'too many levels of symbolic links' : (code ?? (e as Error).message);
  return new UserError('MANIFEST_UNREADABLE', `${file}: cannot read: ${why}`, { file });
}
