/**
 * Kernel-held Ed25519 signing keys, kept in the store (table `signing_keys`) with the private key
 * sealed under the master key exactly as stored secrets are (src/secrets/vault.ts: a fresh data key
 * per key, wrapped with the key-encryption key; both bound to the key's name), so a store copied
 * without the master key yields no private key, and a sealed key moved to another name does not
 * open. Consensus members the kernel signs for use the name `consensus:<member id>`; run certificates
 * will use keys of their own names.
 *
 * `getOrCreate` is race-safe across processes: the store's primary key decides which of two
 * concurrent creators wins, and both return the winner's key.
 *
 * @example
 *   const keys = swarm.signingKeys;
 *   const k = await keys.getOrCreate('consensus:v1');
 *   const signature = signAs(k.private_key, 'vote_commit', commit);
 *   await keys.exportPublic('consensus:v1')  // 'q1w2…=' (base64 of the raw 32-byte public key)
 */
import { UserError } from '../core/errors.js';
import { KEY_NAME_PATTERN } from './key-name.js';
import { generateIdentity, publicKeyOf } from '../consensus/core/crypto.js';
import type { KeyType, SigningKeyRecord } from '../store/keys-types.js';
import type { Store } from '../store/store.js';
import { openSecret, rewrapSecret, sealSecret, type SealedSecret, type SecretsKek } from '../secrets/vault.js';

/** The vault scope signing keys are sealed under (not a workflow name: it cannot collide with a secret's). */
const SEAL_SCOPE = 'swarm/signing-key';
const SEAL_VERSION = 'v1';

export { KEY_NAME_PATTERN };

/** The name of the key the kernel signs with for a consensus member. */
export function memberKeyName(memberId: string): string {
  return `consensus:${memberId}`;
}

/** A key without its private half (what `list` shows). */
export interface SigningKeyInfo {
  name: string;
  /** Base64 of the raw 32-byte Ed25519 public key. */
  public_key: string;
  created_at: number;
  /** Present for a key that is not an Ed25519 signing key: `age` (an X25519 age identity; public_key is its `age1…` recipient). */
  type?: KeyType;
}

/** A key with its private half decrypted (PKCS#8 PEM), for signing. */
export interface SigningKey extends SigningKeyInfo {
  private_key: string;
}

/** A key of one type used where another is needed: KEY_WRONG_TYPE (exit 2). */
function wrongType(name: string, is: string, want: string): UserError {
  return new UserError('KEY_WRONG_TYPE', `key ${name} is an ${is} key, not an ${want} key`, { key: name, type: is });
}

/** Check a key name; a bad one is a UserError (exit 2). */
export function checkKeyName(name: string): void {
  if (!KEY_NAME_PATTERN.test(name)) {
    throw new UserError('KEY_NAME_INVALID', `key name ${JSON.stringify(name)} is not valid: use 1-200 visible ASCII characters, no spaces (like consensus:voter-1)`, { key: name });
  }
}

/** The sealed private key as the store's text column keeps it: `v1:<kek id>:<nonce>:<wrapped key>:<ciphertext>` (base64 parts). */
export function sealPrivateKey(kek: SecretsKek, name: string, privateKeyPem: string): string {
  return encodeSealed(sealSecret(kek, name, SEAL_SCOPE, privateKeyPem));
}

/** The private key of a sealed text; a wrong master key, another name or altered bytes throw KEY_UNREADABLE. */
export function openPrivateKey(kek: SecretsKek, name: string, sealedText: string): string {
  const sealed = decodeSealed(name, sealedText);
  try {
    return openSecret(kek, name, SEAL_SCOPE, sealed);
  } catch (e) {
    const why = sealed.kek_id !== kek.id ? `it was sealed under another master key (key id ${sealed.kek_id}; this process's is ${kek.id})` : 'its ciphertext does not belong to this name, or was altered';
    throw new UserError('KEY_UNREADABLE', `signing key ${name} cannot be decrypted: ${why}`, { key: name }, { cause: e });
  }
}

function encodeSealed(s: SealedSecret): string {
  return [SEAL_VERSION, s.kek_id, s.value_nonce.toString('base64'), s.wrapped_key.toString('base64'), s.encrypted_value.toString('base64')].join(':');
}

function decodeSealed(name: string, text: string): SealedSecret {
  const parts = text.split(':');
  if (parts.length !== 5 || parts[0] !== SEAL_VERSION) throw new UserError('KEY_UNREADABLE', `signing key ${name} is stored in a form this version does not know`, { key: name });
  const [, kek_id, nonce, wrapped, value] = parts as [string, string, string, string, string];
  return { kek_id, value_nonce: Buffer.from(nonce, 'base64'), wrapped_key: Buffer.from(wrapped, 'base64'), encrypted_value: Buffer.from(value, 'base64') };
}

const info = (r: SigningKeyInfo | SigningKeyRecord): SigningKeyInfo => {
  const type = 'private_key_enc' in r ? r.key_type : r.type;
  return { name: r.name, public_key: r.public_key, created_at: r.created_at, ...(type && type !== 'ed25519' ? { type } : {}) };
};

/**
 * The signing keys of a store. `kek` is read on every use, so a master key rotation in this process
 * takes effect at once.
 */
export class SigningKeys {
  /** Decrypted keys by name, valid for the KEK id they were opened with. */
  private readonly cache = new Map<string, { kekId: string; key: SigningKey }>();

  constructor(
    private readonly store: Store,
    private readonly kek: () => SecretsKek,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Create a key; a key of that name already existing is KEY_EXISTS (exit 2). */
  async create(name: string): Promise<SigningKeyInfo> {
    const { created, key } = await this.insert(name);
    if (!created) throw new UserError('KEY_EXISTS', `a signing key named ${name} already exists; see 'swarm keys list'`, { key: name });
    return info(key);
  }

  /** The key of that name, decrypted, or undefined; an age key of that name is KEY_WRONG_TYPE (exit 2). */
  async get(name: string): Promise<SigningKey | undefined> {
    checkKeyName(name);
    const kek = this.kek();
    const hit = this.cache.get(name);
    if (hit && hit.kekId === kek.id) return hit.key;
    const rec = await this.store.getSigningKey(name);
    if (rec && (rec.key_type ?? 'ed25519') !== 'ed25519') throw wrongType(name, rec.key_type ?? 'ed25519', 'ed25519');
    return rec ? this.open(kek, rec) : undefined;
  }

  /**
   * Create an age (X25519) identity sealed like a signing key; it decrypts bundles encrypted to its
   * recipient (the `age1…` public_key). KEY_EXISTS when the name is taken.
   *
   * @example
   *   const k = await swarm.signingKeys.createAge('bundles');  // k.public_key: 'age1…'
   */
  async createAge(name: string): Promise<SigningKeyInfo> {
    checkKeyName(name);
    const kek = this.kek();
    // age-encryption is loaded only by the commands that use it.
    const { generateAgeIdentity } = await import('../bundles/encrypt.js');
    const { identity, recipient } = await generateAgeIdentity();
    const rec: SigningKeyRecord = { name, public_key: recipient, private_key_enc: sealPrivateKey(kek, name, identity), created_at: this.now(), key_type: 'age' };
    const { created, record } = await this.store.insertAgeKey(rec);
    if (!created) throw new UserError('KEY_EXISTS', `a key named ${name} already exists; see 'swarm keys list'`, { key: name });
    return info(record);
  }

  /** The age identity (`AGE-SECRET-KEY-1…`) of an age key, decrypted; KEY_NOT_FOUND or KEY_WRONG_TYPE (exit 2). */
  async ageIdentity(name: string): Promise<string> {
    checkKeyName(name);
    const rec = await this.store.getSigningKey(name);
    if (!rec) throw new UserError('KEY_NOT_FOUND', `no key named ${name}; see 'swarm keys list' or create one with 'swarm keys create ${name} --type age'`, { key: name });
    if (rec.key_type !== 'age') throw wrongType(name, rec.key_type ?? 'ed25519', 'age');
    const identity = openPrivateKey(this.kek(), name, rec.private_key_enc);
    // As for signing keys: a row whose halves do not match was altered.
    const { recipientOf } = await import('../bundles/encrypt.js');
    if ((await recipientOf(identity)) !== rec.public_key) throw new UserError('KEY_UNREADABLE', `key ${name}: its recipient does not match its identity (the row was altered)`, { key: name });
    return identity;
  }

  /** The `age1…` recipient of an age key (to encrypt to it); KEY_NOT_FOUND or KEY_WRONG_TYPE (exit 2). */
  async ageRecipient(name: string): Promise<string> {
    checkKeyName(name);
    const rec = await this.store.getSigningKey(name);
    if (!rec) throw new UserError('KEY_NOT_FOUND', `no key named ${name}; see 'swarm keys list'`, { key: name });
    if (rec.key_type !== 'age') throw wrongType(name, rec.key_type ?? 'ed25519', 'age');
    return rec.public_key;
  }

  /** The key of that name, or KEY_NOT_FOUND (exit 2). */
  async require(name: string): Promise<SigningKey> {
    const key = await this.get(name);
    if (!key) throw new UserError('KEY_NOT_FOUND', `no signing key named ${name}; see 'swarm keys list' or create it with 'swarm keys create ${name}'`, { key: name });
    return key;
  }

  /** The key of that name, created if there is none; concurrent callers (in any process) get the same key. */
  async getOrCreate(name: string): Promise<SigningKey> {
    return (await this.get(name)) ?? (await this.insert(name)).key;
  }

  /** Every key, by name, without private keys. */
  async list(): Promise<SigningKeyInfo[]> {
    return (await this.store.listSigningKeys()).map(info);
  }

  /** The public key (base64 of the raw 32 bytes), or KEY_NOT_FOUND. */
  async exportPublic(name: string): Promise<string> {
    checkKeyName(name);
    const rec = await this.store.getSigningKey(name);
    if (!rec) throw new UserError('KEY_NOT_FOUND', `no signing key named ${name}; see 'swarm keys list'`, { key: name });
    return rec.public_key;
  }

  /**
   * Re-seal every key from one KEK to another (master key rotation); returns how many. A key that
   * is already under `to` is left as it is, so a rotation interrupted half way can be run again.
   */
  async rewrap(from: SecretsKek, to: SecretsKek): Promise<number> {
    let n = 0;
    for (const rec of await this.store.listSigningKeys()) {
      const sealed = decodeSealed(rec.name, rec.private_key_enc);
      if (sealed.kek_id === to.id) continue;
      const w = rewrapSecret(from, to, rec.name, SEAL_SCOPE, sealed);
      if (await this.store.updateSigningKeyEnc(rec.name, encodeSealed(w))) n++;
    }
    this.cache.clear();
    return n;
  }

  private async insert(name: string): Promise<{ created: boolean; key: SigningKey }> {
    checkKeyName(name);
    const kek = this.kek();
    const id = generateIdentity();
    const rec: SigningKeyRecord = { name, public_key: id.publicKey, private_key_enc: sealPrivateKey(kek, name, id.privateKey), created_at: this.now() };
    const { created, record } = await this.store.insertSigningKey(rec);
    return { created, key: created ? this.remember(kek, { ...info(record), private_key: id.privateKey }) : this.open(kek, record) };
  }

  private open(kek: SecretsKek, rec: SigningKeyRecord): SigningKey {
    const pem = openPrivateKey(kek, rec.name, rec.private_key_enc);
    // The public key is stored beside the sealed private one: a row whose halves do not match was tampered with.
    if (publicKeyOf(pem) !== rec.public_key) throw new UserError('KEY_UNREADABLE', `signing key ${rec.name}: its public key does not match its private key (the row was altered)`, { key: rec.name });
    return this.remember(kek, { ...info(rec), private_key: pem });
  }

  private remember(kek: SecretsKek, key: SigningKey): SigningKey {
    this.cache.set(key.name, { kekId: kek.id, key });
    return key;
  }
}
