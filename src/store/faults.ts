/**
 * Disk and permission faults, from SQLite result codes and from Node's errno codes, as
 * StoreFaultError: one line naming the path, the cause, what Swarm was doing and what to do.
 */
import { accessSync, constants, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { StoreFaultError, type StoreFaultTarget } from '../core/errors.js';

type FaultCode = ConstructorParameters<typeof StoreFaultError>[0];

interface FaultKind {
  code: FaultCode;
  problem: string;
  remedy: string;
}

const DISK_FULL: FaultKind = { code: 'STORE_DISK_FULL', problem: 'disk full', remedy: 'free space' };
const IO_ERROR: FaultKind = { code: 'STORE_IO_ERROR', problem: 'I/O error', remedy: 'check the disk (dmesg)' };
const READ_ONLY: FaultKind = { code: 'STORE_READ_ONLY', problem: 'read-only', remedy: 'make the file and its directory writable' };
const DENIED: FaultKind = { code: 'STORE_ACCESS_DENIED', problem: 'permission denied', remedy: 'give this user read and write access to it and its directory' };
const CANT_OPEN: FaultKind = { code: 'STORE_CANNOT_OPEN', problem: 'cannot be opened', remedy: 'check that it and its directory exist and that this user may read and write them' };

/** SQLite's extended result codes start with the primary one (SQLITE_IOERR_WRITE, SQLITE_READONLY_DBMOVED). */
const SQLITE_FAULTS: ReadonlyArray<[string, FaultKind]> = [
  ['SQLITE_FULL', DISK_FULL],
  ['SQLITE_IOERR', IO_ERROR],
  ['SQLITE_READONLY', READ_ONLY],
  ['SQLITE_CANTOPEN', CANT_OPEN],
  ['SQLITE_PERM', DENIED],
];

const ERRNO_FAULTS: Readonly<Record<string, FaultKind>> = {
  ENOSPC: DISK_FULL,
  EDQUOT: { ...DISK_FULL, problem: 'disk quota exceeded', remedy: 'free space or raise the quota' },
  EIO: IO_ERROR,
  EROFS: { ...READ_ONLY, problem: 'read-only file system', remedy: 'remount it read-write or move SWARM_HOME' },
  EACCES: DENIED,
  EPERM: { ...DENIED, problem: 'operation not permitted' },
};

function codeOf(e: unknown): string {
  const code = (e as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : '';
}

/**
 * A SQLite error (or a file-system error met while opening the database) as a fault of the database
 * at `path`, or undefined when it is something else (a constraint, a bug, a busy lock).
 */
export function sqliteFault(e: unknown, path: string, during: string): StoreFaultError | undefined {
  if (e instanceof StoreFaultError) return e;
  const code = codeOf(e);
  const hit = SQLITE_FAULTS.find(([prefix]) => code === prefix || code.startsWith(`${prefix}_`));
  if (hit) {
    // SQLite cannot say why it could not open or write a file: the file system can.
    const why = hit[1] === CANT_OPEN || hit[1] === READ_ONLY ? accessProblem(path) : undefined;
    const kind = why && Object.hasOwn(ERRNO_FAULTS, why) ? (ERRNO_FAULTS[why] as FaultKind) : hit[1];
    return make(kind, { what: 'database', path }, why ? `${code}: ${why}` : code, during, e);
  }
  // After a write failed on a full disk, SQLite's WAL readers can give up with SQLITE_PROTOCOL (after
  // about 10 s of retries). On a disk that is still full that is the full disk again, not a race.
  if (code.startsWith('SQLITE_PROTOCOL') && freeBytes(dirname(path)) < LOW_SPACE_BYTES) return make(DISK_FULL, { what: 'database', path }, `${code}: ENOSPC`, during, e);
  return fileFault(e, { what: 'database', path }, during);
}

/** Bytes available to this user on the file system holding `path` (Infinity when unknown). */
function freeBytes(path: string): number {
  try {
    const s = statfsSync(path);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/**
 * A Node file-system error (ENOSPC, EACCES, EROFS, …) as a fault of `target`, or undefined. The path
 * in the message is the one the system call failed on when it names one.
 */
export function fileFault(e: unknown, target: StoreFaultTarget, during: string): StoreFaultError | undefined {
  if (e instanceof StoreFaultError) return e;
  const code = codeOf(e);
  const kind = Object.hasOwn(ERRNO_FAULTS, code) ? ERRNO_FAULTS[code] : undefined;
  if (!kind) return undefined;
  const path = (e as { path?: unknown }).path;
  // The call failed on another path than the target's (the database's directory): name that one.
  const where: StoreFaultTarget = typeof path === 'string' && path && path !== target.path ? { what: target.what === 'database' ? 'directory' : target.what, path } : target;
  return make(kind, where, code, during, e);
}

/** The errno of the first access check that fails: the file (read, write), then its directory (write). */
function accessProblem(path: string): string | undefined {
  const checks: Array<[string, number]> = [
    [path, constants.R_OK | constants.W_OK],
    [dirname(path), constants.W_OK],
  ];
  for (const [p, mode] of checks) {
    try {
      accessSync(p, mode);
    } catch (e) {
      const code = codeOf(e);
      if (code !== 'ENOENT') return code;
    }
  }
  return undefined;
}

/** Errors that say the disk itself is full or failing, whoever met them. */
const DISK_ERRNOS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EIO']);

/**
 * A fault met while a step was being prepared or run: the store's (already a StoreFaultError), a
 * full, failing or read-only disk under the executor (a failed write() names no path: the attempt's
 * work directory stands for it), or a permission error on a path under the engine's work root (an
 * agent's own files are its business).
 */
export function stepFault(e: unknown, workRoot: string, workDir: string, during: string): StoreFaultError | undefined {
  if (e instanceof StoreFaultError) return e;
  const path = (e as { path?: unknown } | null | undefined)?.path;
  if (DISK_ERRNOS.has(codeOf(e))) return fileFault(e, { what: 'work directory', path: workDir }, during);
  if (typeof path !== 'string' || !(path === workRoot || path.startsWith(`${workRoot}/`))) return undefined;
  return fileFault(e, { what: 'work directory', path }, during);
}

/** Bytes free below which a failed agent is taken to have failed for want of disk space. */
export const LOW_SPACE_BYTES = 1024 * 1024;

/**
 * The work directory's disk as a fault when it is (nearly) full, else undefined: an agent that
 * failed then most likely could not write its output. Asked only after a failure.
 */
export function lowSpaceFault(workRoot: string, during: string): StoreFaultError | undefined {
  const free = freeBytes(workRoot);
  if (free >= LOW_SPACE_BYTES) return undefined;
  return make(DISK_FULL, { what: 'work directory', path: workRoot }, `ENOSPC: ${free} bytes free`, during, undefined);
}

function make(kind: FaultKind, target: StoreFaultTarget, systemCode: string, during: string, cause: unknown): StoreFaultError {
  return new StoreFaultError(kind.code, target, kind.problem, systemCode, during, kind.remedy, { cause });
}
