/**
 * Signing keys as the store keeps them (migration 27): a name, the Ed25519 public key (base64 of the
 * raw 32 bytes) and the private key sealed under the master key (src/identity/keys.ts seals and opens
 * it; the store never sees a private key in the clear).
 *
 * @example
 *   const { created, record } = await store.insertSigningKey({ name: 'consensus:v1', public_key, private_key_enc, created_at: Date.now() });
 */
export interface SigningKeyRecord {
  name: string;
  /** Base64 of the raw 32-byte Ed25519 public key. */
  public_key: string;
  /** The sealed PKCS#8 PEM private key (identity/keys.ts `sealPrivateKey`), as text. */
  private_key_enc: string;
  created_at: number;
  /**
   * What the key is (migration 29): `ed25519` signs (the default, every key before 29), `age` is an
   * X25519 age identity that decrypts encrypted bundles (its public_key is the `age1…` recipient).
   */
  key_type?: KeyType;
}

/** The kinds of key the keys table holds. */
export const KEY_TYPES = ['ed25519', 'age'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** What inserting a key did: `created` false when a key of that name existed (then `record` is that key). */
export interface SigningKeyInsert {
  created: boolean;
  record: SigningKeyRecord;
}

export function toSigningKeyRecord(r: Record<string, unknown>): SigningKeyRecord {
  const rec: SigningKeyRecord = { name: r.name as string, public_key: r.public_key as string, private_key_enc: r.private_key_enc as string, created_at: Number(r.created_at) };
  if (r.key_type === 'age') rec.key_type = 'age';
  return rec;
}
