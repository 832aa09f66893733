import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { UserError } from '../core/errors.js';
import { deriveKey, KeyPurpose } from './master-key.js';

/**
 * Envelope encryption of stored secrets (AES-256-GCM twice):
 *
 * - each secret gets a fresh random 32-byte data key, which encrypts the value;
 * - the data key is wrapped (encrypted) with the key-encryption key (KEK), derived from the master
 *   key with HKDF (`KeyPurpose.SECRETS_KEK`);
 * - both encryptions bind the secret's name and scope as additional authenticated data, so a
 *   ciphertext copied to another name or scope does not decrypt.
 *
 * Rotating the master key re-wraps the data keys only (`rewrapSecret`); values are not re-encrypted.
 */

/** The sealed form of one secret, as the store keeps it. Nothing in it reveals the value. */
export interface SealedSecret {
  /** AES-256-GCM ciphertext of the value, followed by its 16-byte tag. */
  encrypted_value: Buffer;
  /** The 12-byte nonce of the value's encryption. */
  value_nonce: Buffer;
  /** The data key wrapped under the KEK: 12-byte nonce, 32-byte ciphertext, 16-byte tag. */
  wrapped_key: Buffer;
  /** Which KEK wrapped the data key (`kekId`): tells "another master key" apart from tampering. */
  kek_id: string;
}

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const DATA_KEY_BYTES = 32;

/** The key-encryption key and its public id, derived from a master key. */
export interface SecretsKek {
  readonly key: Buffer;
  /** 16 hex digits naming the key without revealing it (an HMAC of a fixed label). */
  readonly id: string;
}

/** The KEK of a master key. */
export function secretsKek(master: Buffer): SecretsKek {
  const key = deriveKey(master, KeyPurpose.SECRETS_KEK);
  return { key, id: createHmac('sha256', key).update('swarm secrets kek id').digest('hex').slice(0, 16) };
}

/** The authenticated data binding a ciphertext to its secret: a NUL cannot occur in a name or scope. */
function aad(part: 'value' | 'key', name: string, scope: string): Buffer {
  return Buffer.from(`swarm-secret/v1\0${part}\0${scope}\0${name}`, 'utf8');
}

function encrypt(key: Buffer, plain: Buffer, ad: Buffer): { nonce: Buffer; sealed: Buffer } {
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(ad);
  const sealed = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
  return { nonce, sealed };
}

/** Undefined when the tag does not verify (wrong key, wrong name or scope, altered bytes). */
function decrypt(key: Buffer, nonce: Buffer, sealed: Buffer, ad: Buffer): Buffer | undefined {
  if (nonce.length !== NONCE_BYTES || sealed.length < TAG_BYTES) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAAD(ad);
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - TAG_BYTES)), d.final()]);
  } catch {
    return undefined;
  }
}

function wrapKey(kek: SecretsKek, dataKey: Buffer, name: string, scope: string): Buffer {
  const { nonce, sealed } = encrypt(kek.key, dataKey, aad('key', name, scope));
  return Buffer.concat([nonce, sealed]);
}

function unwrapKey(kek: SecretsKek, sealed: SealedSecret, name: string, scope: string): Buffer | undefined {
  const w = sealed.wrapped_key;
  if (w.length !== NONCE_BYTES + DATA_KEY_BYTES + TAG_BYTES) return undefined;
  return decrypt(kek.key, w.subarray(0, NONCE_BYTES), w.subarray(NONCE_BYTES), aad('key', name, scope));
}

/** Encrypt a value for the secret `name` in `scope` ('' = global, else a workflow name). */
export function sealSecret(kek: SecretsKek, name: string, scope: string, value: string): SealedSecret {
  const dataKey = randomBytes(DATA_KEY_BYTES);
  try {
    const { nonce, sealed } = encrypt(dataKey, Buffer.from(value, 'utf8'), aad('value', name, scope));
    return { encrypted_value: sealed, value_nonce: nonce, wrapped_key: wrapKey(kek, dataKey, name, scope), kek_id: kek.id };
  } finally {
    dataKey.fill(0);
  }
}

/** What a scope is called in messages. */
export function scopeLabel(scope: string): string {
  return scope === '' ? 'global' : `workflow '${scope}'`;
}

function unreadable(kek: SecretsKek, sealed: SealedSecret, name: string, scope: string): UserError {
  const why =
    sealed.kek_id !== kek.id
      ? `it was sealed under another master key (key id ${sealed.kek_id}; this process's is ${kek.id}): use the store's master key, or set the secret again`
      : 'its ciphertext does not belong to this name and scope, or was altered: set it again with swarm secrets set';
  return new UserError('SECRET_UNREADABLE', `secret ${name} (${scopeLabel(scope)}) cannot be decrypted: ${why}`, { secret: name, scope });
}

/** Decrypt a secret's value; a wrong key, a moved or an altered ciphertext throws SECRET_UNREADABLE. */
export function openSecret(kek: SecretsKek, name: string, scope: string, sealed: SealedSecret): string {
  const dataKey = unwrapKey(kek, sealed, name, scope);
  if (!dataKey) throw unreadable(kek, sealed, name, scope);
  try {
    const plain = decrypt(dataKey, sealed.value_nonce, sealed.encrypted_value, aad('value', name, scope));
    if (!plain) throw unreadable(kek, sealed, name, scope);
    return plain.toString('utf8');
  } finally {
    dataKey.fill(0);
  }
}

/** The same secret with its data key wrapped under another KEK (master key rotation); the value's ciphertext is unchanged. */
export function rewrapSecret(from: SecretsKek, to: SecretsKek, name: string, scope: string, sealed: SealedSecret): SealedSecret {
  const dataKey = unwrapKey(from, sealed, name, scope);
  if (!dataKey) throw unreadable(from, sealed, name, scope);
  try {
    return { ...sealed, wrapped_key: wrapKey(to, dataKey, name, scope), kek_id: to.id };
  } finally {
    dataKey.fill(0);
  }
}

/** Secret names: what an environment variable may be called (so SWARM_SECRET_<NAME> can hold the same). */
export const SECRET_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The largest secret value, in bytes: a token, a key, a certificate; not a file store. */
export const SECRET_VALUE_MAX_BYTES = 64 * 1024;

/** Check a secret name; a bad one is a one-line UserError (exit 2). */
export function checkSecretName(name: string): void {
  if (!SECRET_NAME_PATTERN.test(name) || name.length > 200) {
    throw new UserError('SECRET_NAME_INVALID', `secret name '${name}' is not valid: use letters, digits and _ and do not start with a digit (like API_KEY)`, { secret: name });
  }
}

/** Check a secret value: not empty, not too large, valid text. The message never includes the value. */
export function checkSecretValue(name: string, value: string): void {
  if (value === '') throw new UserError('SECRET_VALUE_EMPTY', `secret ${name}: the value is empty; give it on standard input`, { secret: name });
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > SECRET_VALUE_MAX_BYTES) throw new UserError('SECRET_VALUE_TOO_LARGE', `secret ${name}: the value is ${bytes} bytes; the largest is ${SECRET_VALUE_MAX_BYTES}`, { secret: name });
  if (value.includes('\0')) throw new UserError('SECRET_VALUE_INVALID', `secret ${name}: the value contains a NUL byte`, { secret: name });
}
