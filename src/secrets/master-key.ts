import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from '../core/errors.js';

/** The master key is 32 bytes; every purpose gets its own key derived from it (HKDF-SHA256). */
export const MASTER_KEY_BYTES = 32;

/**
 * Where the master key comes from: a port, so that the encrypted secrets store can read the same
 * key from the same place (and a KMS driver can sit behind it later). `load` returns the 32 bytes.
 */
export interface MasterKeySource {
  /** For messages: where the key was found, never the key. */
  readonly description: string;
  load(): Buffer;
}

/**
 * The purposes keys are derived for. A new purpose gets a new label; a label never changes meaning,
 * or data made under the old meaning would no longer verify.
 */
export const KeyPurpose = {
  /** HMAC of every run event (the keyed hash chain). */
  EVENT_CHAIN: 'swarm/event-chain/v1',
  /** The check value stored in the database, to refuse a process whose key is not the store's. */
  KEY_CHECK: 'swarm/key-check/v1',
  /** The key-encryption key of the encrypted secrets store: it wraps each secret's data key. */
  SECRETS_KEK: 'swarm/secrets-kek/v1',
  /** HMAC of the short-lived stream tokens of the HTTP API (src/auth/tokens.ts). */
  STREAM_TOKENS: 'swarm/stream-tokens/v1',
} as const;
export type KeyPurpose = (typeof KeyPurpose)[keyof typeof KeyPurpose];

/** A sub-key for one purpose: HKDF-SHA256 over the master key, with the purpose as `info`. */
export function deriveKey(master: Buffer, purpose: KeyPurpose): Buffer {
  return Buffer.from(hkdfSync('sha256', master, 'swarm', purpose, 32));
}

/**
 * The value stored in the database on first use and compared at every open: an HMAC of a fixed
 * label under the key-check sub-key. It tells whether two processes hold the same key without
 * revealing anything about the key.
 */
export function keyCheckValue(master: Buffer): string {
  return createHmac('sha256', deriveKey(master, KeyPurpose.KEY_CHECK)).update('swarm master key check').digest('hex');
}

/**
 * Parse a master key given as text: 64 hex digits, or base64 (standard or URL-safe) of 32 bytes.
 * `where` names the source in errors (an environment variable or a file).
 */
export function parseMasterKey(text: string, where: string): Buffer {
  const s = text.trim();
  if (/^[0-9a-fA-F]+$/.test(s)) {
    if (s.length === MASTER_KEY_BYTES * 2) return Buffer.from(s, 'hex');
    throw new UserError('MASTER_KEY_INVALID', `${where}: a hex master key must be ${MASTER_KEY_BYTES * 2} hex digits (${MASTER_KEY_BYTES} bytes), found ${s.length}; make one with 'openssl rand -hex 32'`, { source: where });
  }
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) {
    const b = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (b.length === MASTER_KEY_BYTES) return b;
    throw new UserError('MASTER_KEY_INVALID', `${where}: a base64 master key must decode to ${MASTER_KEY_BYTES} bytes, found ${b.length}; make one with 'openssl rand -hex 32'`, { source: where });
  }
  throw new UserError('MASTER_KEY_INVALID', `${where}: the master key must be ${MASTER_KEY_BYTES} bytes written as 64 hex digits or as base64; make one with 'openssl rand -hex 32'`, { source: where });
}

/** A key given in the configuration (`SWARM_MASTER_KEY`, already parsed). */
export function configuredKeySource(key: Buffer, description = 'SWARM_MASTER_KEY'): MasterKeySource {
  if (key.length !== MASTER_KEY_BYTES) throw new UserError('MASTER_KEY_INVALID', `${description}: the master key must be ${MASTER_KEY_BYTES} bytes, found ${key.length}`);
  return { description, load: () => key };
}

/**
 * A key kept in a file (`<home>/master.key`, 64 hex digits), created with mode 0600 on first use.
 * Creation is atomic and exclusive (a complete temporary file is hard-linked into place), so two
 * processes starting at once end up with the same key: the loser of the race reads the winner's.
 * A file that others may read is refused, as ssh refuses a private key anyone can read.
 */
export function fileKeySource(path: string): MasterKeySource {
  let cached: Buffer | undefined;
  return {
    description: path,
    load(): Buffer {
      cached ??= readOrCreateKeyFile(path);
      return cached;
    },
  };
}

function readOrCreateKeyFile(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw keyFileError(path, e);
    createKeyFile(path);
    text = readFileSync(path, 'utf8');
  }
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    throw new UserError('MASTER_KEY_EXPOSED', `${path}: the master key file may be read by others (mode ${mode.toString(8).padStart(4, '0')}); run 'chmod 600 ${path}'`, { file: path });
  }
  return parseMasterKey(text, path);
}

function createKeyFile(path: string): void {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(tmp, `${randomBytes(MASTER_KEY_BYTES).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600); // whatever the umask
    try {
      linkSync(tmp, path);
    } catch (e) {
      // Another process made it first: use theirs.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  } catch (e) {
    throw keyFileError(path, e);
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // never created
    }
  }
}

function keyFileError(path: string, e: unknown): UserError {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  return new UserError('MASTER_KEY_UNREADABLE', `cannot read or create the master key file ${path}: ${(e as Error).message}${code === 'EACCES' ? ' (check its owner and permissions)' : ''}`, { file: path }, { cause: e });
}
