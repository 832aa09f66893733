/**
 * The hashes and signatures of a consensus task. A candidate is named by the sha256 of its output's
 * canonical JSON; a vote commits `sha256(candidate_hash \n vote \n salt)`; every proposal, verifier
 * result, commit and reveal is signed with Ed25519 over `signedPayload(kind, fields)`, the canonical
 * JSON of the fields with the kind, so a signature for one kind of record never verifies as another.
 * Keys travel as base64 of the raw 32-byte Ed25519 public key (what an executor's `/capabilities`
 * returns and `swarm keys export-public` prints).
 *
 * @example
 *   const { publicKey, privateKey } = generateIdentity();
 *   const h = candidateHash({ summary: 'ok' });
 *   const c = commitmentHash(h, 'approve', 'salt-1');
 *   const sig = signRecord(privateKey, 'vote_commit', { task_id: 't', round: 1, voter_id: 'v1', commitment: c });
 *   verifyRecord(publicKey, 'vote_commit', { task_id: 't', round: 1, voter_id: 'v1', commitment: c }, sig); // true
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../../core/canonical-json.js';

/** The kinds of signed record. */
export type SignedKind = 'candidate' | 'verifier_result' | 'vote_commit' | 'vote_reveal' | 'decision';

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The hash that names a candidate: sha256 hex of the canonical JSON of its output. */
export function candidateHash(output: unknown): string {
  return sha256Hex(canonicalJson(output));
}

/** A vote's commitment: sha256 hex of `candidate_hash \n vote \n salt`. */
export function commitmentHash(candidate_hash: string, vote: string, salt: string): string {
  return sha256Hex(`${candidate_hash}\n${vote}\n${salt}`);
}

/** A fresh salt for a commitment (32 random bytes, hex). */
export function newSalt(): string {
  return randomBytes(32).toString('hex');
}

/** The bytes a signature covers: canonical JSON of `{ kind, ...fields }` with any `signature` field left out. */
export function signedPayload(kind: SignedKind, fields: Record<string, unknown>): Buffer {
  const { signature: _ignored, ...rest } = fields;
  return Buffer.from(canonicalJson({ ...rest, kind }), 'utf8');
}

/** A new Ed25519 identity: the public key as base64 raw bytes, the private key as PKCS#8 PEM. */
export function generateIdentity(): { publicKey: string; privateKey: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { publicKey: publicKeyToBase64(publicKey), privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** Base64 of the raw 32-byte public key. */
export function publicKeyToBase64(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.from(jwk.x as string, 'base64url').toString('base64');
}

/** The public key of a PKCS#8 PEM private key, as base64 raw bytes. */
export function publicKeyOf(privateKeyPem: string): string {
  return publicKeyToBase64(createPublicKey(createPrivateKey(privateKeyPem)));
}

// Parsing a key costs more than the signature it is used for; the same few keys sign and verify
// every record of a task, so parsed keys are kept (a bounded map: the oldest goes first).
const KEY_CACHE_MAX = 256;
const privateKeys = new Map<string, KeyObject>();
const publicKeys = new Map<string, KeyObject>();

function cached(cache: Map<string, KeyObject>, text: string, parse: (text: string) => KeyObject): KeyObject {
  let key = cache.get(text);
  if (key === undefined) {
    key = parse(text);
    if (cache.size >= KEY_CACHE_MAX) cache.delete(cache.keys().next().value as string);
    cache.set(text, key);
  }
  return key;
}

function privateKeyFromPem(pem: string): KeyObject {
  return cached(privateKeys, pem, (text) => createPrivateKey(text));
}

function publicKeyFromBase64(b64: string): KeyObject {
  return cached(publicKeys, b64, parsePublicKey);
}

function parsePublicKey(b64: string): KeyObject {
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 32) throw new TypeError(`an Ed25519 public key is 32 bytes; this one is ${raw.length}`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

/** Sign a record: base64 Ed25519 signature over `signedPayload(kind, fields)`. */
export function signRecord(privateKeyPem: string, kind: SignedKind, fields: Record<string, unknown>): string {
  return sign(null, signedPayload(kind, fields), privateKeyFromPem(privateKeyPem)).toString('base64');
}

/** Whether `signature` is a valid signature of the record by `publicKey` (false for malformed keys or signatures). */
export function verifyRecord(publicKey: string, kind: SignedKind, fields: Record<string, unknown>, signature: string | undefined | null): boolean {
  if (!signature) return false;
  try {
    return verify(null, signedPayload(kind, fields), publicKeyFromBase64(publicKey), Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}
