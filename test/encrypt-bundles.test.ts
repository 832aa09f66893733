/**
 * Encrypted bundles (src/bundles/encrypt.ts) and age keys (src/identity/keys.ts `createAge`,
 * migration 29's key_type) on a real SQLite file and a real PostgreSQL database: the envelope is
 * age v1 (its header, stanzas and armor), a round trip to several recipients, the errors and their
 * exit codes (no identity 2, wrong identity 2, altered ciphertext 3), identity files, and age keys
 * sealed under the master key (type checks both ways, rotation re-seals them too).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { armor } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveIdentities, resolveRecipients } from '../src/branching/age-keys.js';
import { AGE_MAGIC, decryptBundle, encryptBundle, generateAgeIdentity, isEncryptedBundle, openBundleBytes, parseIdentityFile } from '../src/bundles/encrypt.js';
import { SigningKeys } from '../src/identity/keys.js';
import { secretsKek } from '../src/secrets/vault.js';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import { pgTestServer, stopPgTestServer, type PgTestServer } from './helpers/pg.js';

let pgServer: PgTestServer;
const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'swarm-encrypt-'));
  dirs.push(d);
  return d;
};
beforeAll(async () => {
  pgServer = await pgTestServer();
}, 120_000);
afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await stopPgTestServer();
});

const plain = (): Uint8Array => new Uint8Array(Buffer.concat([Buffer.from('manifest.json\0'), randomBytes(70_000)]));

describe('encrypted bundles (age v1)', () => {
  it('round trip to two recipients: either identity decrypts; the file is a standard age v1 file', async () => {
    const a = await generateAgeIdentity();
    const b = await generateAgeIdentity();
    const bytes = plain();
    const sealed = await encryptBundle(bytes, [a.recipient, b.recipient, a.recipient]);
    expect(isEncryptedBundle(sealed)).toBe(true);
    expect(isEncryptedBundle(bytes)).toBe(false);
    // The age v1 header: the version line, one X25519 stanza per (distinct) recipient, the MAC line.
    const header = Buffer.from(sealed.subarray(0, 400)).toString('latin1');
    expect(header.startsWith(AGE_MAGIC)).toBe(true);
    expect(header.match(/^-> X25519 [A-Za-z0-9+/]{43}$/gm)).toHaveLength(2);
    expect(header).toMatch(/^--- [A-Za-z0-9+/]{43}$/m);
    expect(Buffer.from(await decryptBundle(sealed, [a.identity]))).toEqual(Buffer.from(bytes));
    expect(Buffer.from(await decryptBundle(sealed, [b.identity]))).toEqual(Buffer.from(bytes));
    // Encryption is randomised (a fresh file key each time); the plaintext inside is what is deterministic.
    expect(Buffer.from(await encryptBundle(bytes, [a.recipient]))).not.toEqual(Buffer.from(await encryptBundle(bytes, [a.recipient])));
    // The ASCII-armored form (age -a) reads the same.
    const armored = new TextEncoder().encode(armor.encode(sealed));
    expect(await openBundleBytes(armored, [b.identity])).toEqual({ bytes: new Uint8Array(bytes), encrypted: true });
    // A plain bundle passes through untouched, identities or not.
    expect(await openBundleBytes(bytes, [a.identity])).toEqual({ bytes, encrypted: false });
  });

  it('no identity, the wrong identity: exit 2; altered ciphertext: exit 3', async () => {
    const a = await generateAgeIdentity();
    const other = await generateAgeIdentity();
    const sealed = await encryptBundle(plain(), [a.recipient]);
    await expect(openBundleBytes(sealed, [], 'run.tar.age')).rejects.toMatchObject({ code: 'BUNDLE_ENCRYPTED', exitCode: 2, message: expect.stringContaining('--identity') as unknown });
    await expect(decryptBundle(sealed, [other.identity], 'run.tar.age')).rejects.toMatchObject({ code: 'BUNDLE_IDENTITY_MISMATCH', exitCode: 2 });
    // A flipped byte in the payload: the identity matches, the payload does not authenticate.
    const payload = new Uint8Array(sealed);
    payload[payload.length - 20] = (payload[payload.length - 20] ?? 0) ^ 1;
    await expect(decryptBundle(payload, [a.identity], 'run.tar.age')).rejects.toMatchObject({ code: 'VERIFICATION_FAILED', exitCode: 3, message: expect.stringContaining('altered') as unknown });
    // Truncated: the last chunk is gone.
    await expect(decryptBundle(sealed.subarray(0, sealed.length - 100), [a.identity])).rejects.toMatchObject({ exitCode: 3 });
    // A header MAC altered.
    const text = Buffer.from(sealed);
    const mac = text.indexOf('\n--- ') + 5;
    text[mac] = text[mac] === 0x41 ? 0x42 : 0x41;
    await expect(decryptBundle(new Uint8Array(text), [a.identity])).rejects.toMatchObject({ exitCode: 3 });
    await expect(encryptBundle(plain(), ['age1nope'])).rejects.toMatchObject({ code: 'AGE_RECIPIENT_INVALID', exitCode: 2 });
    await expect(encryptBundle(plain(), [])).rejects.toMatchObject({ code: 'AGE_RECIPIENT_INVALID' });
  });

  it('identity files: comments and blank lines skipped, a bad line named by number (never its content)', async () => {
    const a = await generateAgeIdentity();
    const b = await generateAgeIdentity();
    const file = `# created: 2026-01-01T00:00:00Z\n# public key: ${a.recipient}\n${a.identity}\n\n${b.identity}\n`;
    expect(parseIdentityFile(file, 'key.txt')).toEqual([a.identity, b.identity]);
    expect(() => parseIdentityFile('# nothing\n', 'key.txt')).toThrow(/key.txt: holds no age identity/);
    let err: Error | undefined;
    try {
      parseIdentityFile(`${a.identity}\nAGE-SECRET-KEY-1SECRETBUTWRONG\n`, 'key.txt');
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toBe('key.txt:2: not an age X25519 identity (AGE-SECRET-KEY-1…)');
    const dir = tmp();
    writeFileSync(join(dir, 'key.txt'), file);
    expect(await resolveIdentities(['key.txt'], dir)).toEqual([a.identity, b.identity]);
    await expect(resolveIdentities(['missing.txt'], dir)).rejects.toMatchObject({ code: 'AGE_IDENTITY_INVALID', exitCode: 2 });
    await expect(resolveIdentities([a.identity], dir)).rejects.toThrow(/never the secret key itself/);
    expect(await resolveRecipients([a.recipient], () => Promise.reject(new Error('no store needed')))).toEqual([a.recipient]);
  });
});

type Opener = () => Promise<Store>;
const backends: Array<[string, () => Promise<Opener>]> = [
  ['sqlite', () => Promise.resolve(() => Promise.resolve(openSqliteStore({ path: join(tmp(), 'swarm.db'), durability: 'full' }) as Store))],
  [
    'postgres',
    async () => {
      const url = await pgServer.createDatabase();
      return () => openPostgresStore({ url, durability: 'full' });
    },
  ],
];

describe.each(backends)('age keys on %s', (_name, make) => {
  it('create sealed under the master key; decrypt with it by name; types checked both ways; rotation re-seals', async () => {
    const store = await (await make())();
    try {
      const kek = secretsKek(randomBytes(32));
      const keys = new SigningKeys(store, () => kek);
      const signing = await keys.create('runs');
      const age = await keys.createAge('bundles');
      expect(age).toMatchObject({ name: 'bundles', type: 'age', public_key: expect.stringMatching(/^age1[a-z0-9]{58}$/) as unknown });
      await expect(keys.createAge('bundles')).rejects.toMatchObject({ code: 'KEY_EXISTS', exitCode: 2 });
      await expect(keys.createAge('runs')).rejects.toMatchObject({ code: 'KEY_EXISTS' });
      expect(await keys.list()).toEqual([age, signing]);
      expect(Object.keys(signing).sort()).toEqual(['created_at', 'name', 'public_key']);
      expect(await keys.exportPublic('bundles')).toBe(age.public_key);
      // The store holds the identity sealed, never in the clear.
      const row = await store.getSigningKey('bundles');
      expect(row).toMatchObject({ key_type: 'age', public_key: age.public_key });
      expect(row?.private_key_enc).toMatch(/^v1:/);
      expect(row?.private_key_enc).not.toContain('AGE-SECRET-KEY');

      // Encrypt to the key by name, decrypt with it by name.
      const lookup = (): Promise<SigningKeys> => Promise.resolve(keys);
      const [recipient] = await resolveRecipients(['bundles'], lookup);
      expect(recipient).toBe(age.public_key);
      const bytes = plain();
      const sealed = await encryptBundle(bytes, [recipient as string]);
      const ids = await resolveIdentities(['bundles'], tmp(), lookup);
      expect(Buffer.from(await decryptBundle(sealed, ids))).toEqual(Buffer.from(bytes));

      // A signing key is not an age key and the other way round.
      await expect(keys.get('bundles')).rejects.toMatchObject({ code: 'KEY_WRONG_TYPE', exitCode: 2 });
      await expect(keys.ageIdentity('runs')).rejects.toMatchObject({ code: 'KEY_WRONG_TYPE' });
      await expect(keys.ageRecipient('runs')).rejects.toMatchObject({ code: 'KEY_WRONG_TYPE' });
      await expect(keys.ageIdentity('nope')).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      // Another master key opens nothing.
      await expect(new SigningKeys(store, () => secretsKek(randomBytes(32))).ageIdentity('bundles')).rejects.toMatchObject({ code: 'KEY_UNREADABLE' });

      // Rotation re-seals age keys with the signing keys; the identity is the same afterwards.
      const next = secretsKek(randomBytes(32));
      expect(await keys.rewrap(kek, next)).toBe(2);
      expect(await new SigningKeys(store, () => next).ageIdentity('bundles')).toBe(ids[0]);
    } finally {
      await store.close();
    }
  });
});
