/**
 * Encrypted bundles: a bundle (the deterministic tar of src/bundles/layout.ts) sealed as one age v1
 * file (https://age-encryption.org/v1) to one or more X25519 recipients (`age1…`). The envelope is
 * age's own, unchanged: the `age` command line tool decrypts an encrypted bundle
 * (`age -d -i key.txt run.tar.age > run.tar`) and encrypts one Swarm can read
 * (`age -r age1… -o run.tar.age run.tar`). The ASCII-armored form (`age -a`) is read too.
 *
 * Nothing inside the bundle changes: the certificate is over the plaintext digests, so a bundle
 * verifies after decryption exactly as it did before encryption. Encryption is not deterministic
 * (age draws a fresh file key and ephemeral share every time); the plaintext inside is.
 *
 * Errors, with the exit codes the CLI gives them:
 * - an encrypted bundle and no identity: BUNDLE_ENCRYPTED (2);
 * - identities given, none of them a recipient of the file: BUNDLE_IDENTITY_MISMATCH (2): the key
 *   given is the wrong one, which says nothing about the bundle;
 * - a recipient's identity given, but the header's MAC or the payload does not authenticate:
 *   VERIFICATION_FAILED (3, VerificationError): the ciphertext was altered;
 * - a recipient or identity that is not age's X25519 form: AGE_RECIPIENT_INVALID / AGE_IDENTITY_INVALID (2).
 *
 * @example
 *   const sealed = await encryptBundle(tarBytes, ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p']);
 *   const { bytes, encrypted } = await openBundleBytes(sealed, ['AGE-SECRET-KEY-1…']);  // bytes = tarBytes
 */
import { Decrypter, Encrypter, armor, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { UserError, VerificationError } from '../core/errors.js';

/** The first line of a binary age v1 file. */
export const AGE_MAGIC = 'age-encryption.org/v1\n';
/** The first line of an ASCII-armored age file. */
export const AGE_ARMOR_BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';

/** An X25519 recipient: `age1` and 58 Bech32 characters. */
export const AGE_RECIPIENT_PATTERN = /^age1[02-9ac-hj-np-z]{58}$/;
/** An X25519 identity: `AGE-SECRET-KEY-1` and 58 upper-case Bech32 characters. */
export const AGE_IDENTITY_PATTERN = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/;

const startsWith = (bytes: Uint8Array, text: string): boolean => bytes.length >= text.length && Buffer.from(bytes.subarray(0, text.length)).toString('latin1') === text;

/** Whether these bytes are an age file (binary or armored), as opposed to a plain bundle. */
export function isEncryptedBundle(bytes: Uint8Array): boolean {
  return startsWith(bytes, AGE_MAGIC) || startsWith(bytes, AGE_ARMOR_BEGIN);
}

/** Check an `age1…` X25519 recipient; anything else is AGE_RECIPIENT_INVALID (exit 2). */
export function checkRecipient(recipient: string): string {
  const r = recipient.trim();
  if (!AGE_RECIPIENT_PATTERN.test(r)) {
    throw new UserError('AGE_RECIPIENT_INVALID', `${JSON.stringify(recipient)} is not an age X25519 recipient (age1… as 'swarm keys export-public <name>' or 'age-keygen -y' prints it)`, { recipient });
  }
  return r;
}

/**
 * The identities of an age identity file (what `age-keygen` writes): one `AGE-SECRET-KEY-1…` a line; blank lines and `#` comments are skipped. A file with no
 * identity, or a line that is not one, is AGE_IDENTITY_INVALID (exit 2; the message names the line,
 * never its content).
 */
export function parseIdentityFile(text: string, file = 'identity file'): string[] {
  const out: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!AGE_IDENTITY_PATTERN.test(line)) throw new UserError('AGE_IDENTITY_INVALID', `${file}:${i + 1}: not an age X25519 identity (AGE-SECRET-KEY-1…)`, { file, line: i + 1 });
    out.push(line);
  }
  if (out.length === 0) throw new UserError('AGE_IDENTITY_INVALID', `${file}: holds no age identity (AGE-SECRET-KEY-1…)`, { file });
  return out;
}

/** A new X25519 identity and its recipient. */
export async function generateAgeIdentity(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

/** The recipient (`age1…`) of an identity. */
export async function recipientOf(identity: string): Promise<string> {
  return identityToRecipient(identity);
}

/**
 * Encrypt bundle bytes to every recipient (any one of their identities decrypts). At least one
 * recipient; duplicates are dropped.
 */
export async function encryptBundle(bytes: Uint8Array, recipients: readonly string[]): Promise<Uint8Array> {
  const list = [...new Set(recipients.map(checkRecipient))];
  if (list.length === 0) throw new UserError('AGE_RECIPIENT_INVALID', 'encrypting a bundle needs at least one recipient (age1…)');
  const e = new Encrypter();
  for (const r of list) e.addRecipient(r);
  return e.encrypt(bytes);
}

/** Decrypt an age file (binary or armored) with any of the identities; see the module comment for the errors. */
export async function decryptBundle(bytes: Uint8Array, identities: readonly string[], source = 'bundle'): Promise<Uint8Array> {
  if (identities.length === 0) throw new UserError('BUNDLE_ENCRYPTED', `${source} is encrypted (age); pass --identity <identity file | key name> to decrypt it`, { file: source });
  let body = bytes;
  if (startsWith(bytes, AGE_ARMOR_BEGIN)) {
    try {
      body = armor.decode(Buffer.from(bytes).toString('utf8'));
    } catch (e) {
      throw new UserError('BUNDLE_NOT_A_BUNDLE', `${source}: its age armor is not valid (${(e as Error).message})`, { file: source }, { cause: e });
    }
  }
  const d = new Decrypter();
  for (const id of identities) {
    if (!AGE_IDENTITY_PATTERN.test(id)) throw new UserError('AGE_IDENTITY_INVALID', 'an identity given is not an age X25519 identity (AGE-SECRET-KEY-1…)');
    d.addIdentity(id);
  }
  try {
    return await d.decrypt(body);
  } catch (e) {
    const why = (e as Error).message;
    if (/no identity matched/.test(why)) {
      throw new UserError('BUNDLE_IDENTITY_MISMATCH', `${source} is encrypted to other recipients: none of the ${identities.length} identit${identities.length === 1 ? 'y' : 'ies'} given can decrypt it`, { file: source });
    }
    // The file key was ours, so what fails now is the header's MAC or the payload's authentication: altered bytes.
    throw new VerificationError(`${source}: decryption failed (${why}): the encrypted file was altered or truncated`, { file: source }, { cause: e });
  }
}

/**
 * The plain bundle bytes of what was read: decrypted when it is an age file, as they are otherwise.
 *
 * @example
 *   const { bytes, encrypted } = await openBundleBytes(readFileSync('run.tar.age'), identities, 'run.tar.age');
 */
export async function openBundleBytes(bytes: Uint8Array, identities: readonly string[] = [], source = 'bundle'): Promise<{ bytes: Uint8Array; encrypted: boolean }> {
  if (!isEncryptedBundle(bytes)) return { bytes, encrypted: false };
  return { bytes: await decryptBundle(bytes, identities, source), encrypted: true };
}
