/**
 * Signing keys (src/identity/keys.ts, migration 27) on a real SQLite file and a real PostgreSQL
 * database: the store's insert-if-absent (a race of creators ends with one key), the private key
 * sealed under the master key (never in the store in the clear), decryption round trips, tampering
 * (a sealed key moved to another name, a swapped public key, altered bytes, another master key), and
 * master key rotation re-sealing every key.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signAs, verifySignedRecord } from '../src/consensus/core/signed.js';
import { memberKeyName, openPrivateKey, sealPrivateKey, SigningKeys } from '../src/identity/keys.js';
import { secretsKek } from '../src/secrets/vault.js';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import { Swarm } from '../src/swarm.js';
import { filesContaining } from './helpers/files.js';
import { pgTestServer, stopPgTestServer, type PgTestServer } from './helpers/pg.js';
import { removeProject, tempProject } from './helpers/project.js';

let pgServer: PgTestServer;
const dirs: string[] = [];
beforeAll(async () => {
  pgServer = await pgTestServer();
}, 120_000);
afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await stopPgTestServer();
});

type Opener = () => Promise<Store>;
const backends: Array<[string, () => Promise<{ open: Opener }>]> = [
  [
    'sqlite',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'swarm-keys-'));
      dirs.push(dir);
      const path = join(dir, 'swarm.db');
      return Promise.resolve({ open: () => Promise.resolve(openSqliteStore({ path, durability: 'full' }) as Store) });
    },
  ],
  [
    'postgres',
    async () => {
      const url = await pgServer.createDatabase();
      return { open: () => openPostgresStore({ url, durability: 'full' }) };
    },
  ],
];

describe.each(backends)('signing keys on %s', (_name, make) => {
  it('insert keeps the first key of a name; get, list and update', async () => {
    const { open } = await make();
    const store = await open();
    try {
      const rec = { name: 'consensus:v1', public_key: 'pub-a', private_key_enc: 'enc-a', created_at: 1000 };
      expect(await store.insertSigningKey(rec)).toEqual({ created: true, record: rec });
      const again = await store.insertSigningKey({ ...rec, public_key: 'pub-b', private_key_enc: 'enc-b', created_at: 2000 });
      expect(again).toEqual({ created: false, record: rec });
      expect(await store.getSigningKey('consensus:v1')).toEqual(rec);
      expect(await store.getSigningKey('nope')).toBeUndefined();
      await store.insertSigningKey({ name: 'a-first', public_key: 'p', private_key_enc: 'e', created_at: 3 });
      expect((await store.listSigningKeys()).map((k) => k.name)).toEqual(['a-first', 'consensus:v1']);
      expect(await store.updateSigningKeyEnc('consensus:v1', 'enc-c')).toBe(true);
      expect(await store.updateSigningKeyEnc('nope', 'x')).toBe(false);
      expect((await store.getSigningKey('consensus:v1'))?.private_key_enc).toBe('enc-c');
    } finally {
      await store.close();
    }
  });

  it('getOrCreate from two connections at once ends with one key, which both sign with', async () => {
    const { open } = await make();
    const [s1, s2] = await Promise.all([open(), open()]);
    const kek = secretsKek(randomBytes(32));
    try {
      const k1 = new SigningKeys(s1, () => kek);
      const k2 = new SigningKeys(s2, () => kek);
      const names = Array.from({ length: 8 }, (_, i) => memberKeyName(`voter-${i}`));
      const results = await Promise.all(names.flatMap((n) => [k1.getOrCreate(n), k2.getOrCreate(n)]));
      for (let i = 0; i < names.length; i++) {
        const [a, b] = [results[2 * i], results[2 * i + 1]];
        expect(a?.public_key).toBe(b?.public_key);
        expect(a?.private_key).toBe(b?.private_key);
        const rec = { task_id: 't', round: 1, voter_id: 'v', commitment: 'c' };
        const sig = signAs(a?.private_key ?? '', 'vote_commit', rec);
        expect(verifySignedRecord(b?.public_key ?? '', 'vote_commit', { ...rec, signature: sig })).toBe(true);
      }
      expect((await k1.list()).map((k) => k.name)).toEqual([...names].sort());
      // A fresh reader (no cache) decrypts the same key.
      const fresh = new SigningKeys(s2, () => kek);
      expect((await fresh.get(names[0] ?? ''))?.private_key).toBe(results[0]?.private_key);
    } finally {
      await Promise.all([s1.close(), s2.close()]);
    }
  });

  it('tampering and another master key are refused with KEY_UNREADABLE', async () => {
    const { open } = await make();
    const store = await open();
    const kek = secretsKek(randomBytes(32));
    try {
      const keys = new SigningKeys(store, () => kek);
      const a = await keys.create('key-a');
      const b = await keys.create('key-b');
      const recA = await store.getSigningKey('key-a');
      const recB = await store.getSigningKey('key-b');
      // The sealed private key of b moved onto a (with b's public key too): bound to its name, it does not open.
      await store.updateSigningKeyEnc('key-a', recB?.private_key_enc ?? '');
      await expect(new SigningKeys(store, () => kek).get('key-a')).rejects.toMatchObject({ code: 'KEY_UNREADABLE', exitCode: 2 });
      await store.updateSigningKeyEnc('key-a', recA?.private_key_enc ?? '');
      expect((await new SigningKeys(store, () => kek).get('key-a'))?.public_key).toBe(a.public_key);
      // Another master key.
      await expect(new SigningKeys(store, () => secretsKek(randomBytes(32))).get('key-b')).rejects.toThrow(/sealed under another master key/);
      // A flipped byte of the ciphertext.
      const parts = (recB?.private_key_enc ?? '').split(':');
      const ct = Buffer.from(parts[4] ?? '', 'base64');
      ct[0] = (ct[0] ?? 0) ^ 1;
      parts[4] = ct.toString('base64');
      await store.updateSigningKeyEnc('key-b', parts.join(':'));
      await expect(new SigningKeys(store, () => kek).get('key-b')).rejects.toMatchObject({ code: 'KEY_UNREADABLE' });
      expect(b.public_key).toMatch(/^[A-Za-z0-9+/]{43}=$/);
      // Creating a taken name, a bad name, a missing key.
      await expect(keys.create('key-a')).rejects.toMatchObject({ code: 'KEY_EXISTS', exitCode: 2 });
      await expect(keys.create('has space')).rejects.toMatchObject({ code: 'KEY_NAME_INVALID' });
      await expect(keys.exportPublic('missing')).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      await expect(keys.require('missing')).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
    } finally {
      await store.close();
    }
  });
});

describe('sealing', () => {
  it('round-trips and never holds the private key in the clear', () => {
    const kek = secretsKek(randomBytes(32));
    const pem = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIGv0\n-----END PRIVATE KEY-----\n';
    const sealed = sealPrivateKey(kek, 'n', pem);
    expect(sealed.startsWith(`v1:${kek.id}:`)).toBe(true);
    expect(sealed).not.toContain('MC4CAQAwBQYDK2VwBCIEIGv0');
    expect(openPrivateKey(kek, 'n', sealed)).toBe(pem);
    expect(() => openPrivateKey(kek, 'other', sealed)).toThrow(/does not belong to this name/);
    expect(() => openPrivateKey(kek, 'n', 'v0:garbage')).toThrow(/form this version does not know/);
  });
});

describe('through Swarm', () => {
  it('keys live sealed in the store file; rotating the master key re-seals them', async () => {
    const dir = tempProject('name: keys\nsandbox: none\n');
    const env = { SWARM_HOME: join(dir, '.swarm') };
    try {
      const swarm = await Swarm.open({ cwd: dir, env });
      const k = await swarm.signingKeys.getOrCreate('consensus:verifier:local');
      const secretPart = k.private_key.split('\n')[1] ?? '';
      expect(secretPart.length).toBeGreaterThan(20);
      await swarm.close();
      const search = filesContaining(dir, [secretPart]);
      expect(search.files).toBeGreaterThan(0);
      expect(search.hits).toEqual([]);

      const again = await Swarm.open({ cwd: dir, env });
      expect((await again.signingKeys.get('consensus:verifier:local'))?.private_key).toBe(k.private_key);
      await again.rotateMasterKey(randomBytes(32));
      expect((await again.signingKeys.get('consensus:verifier:local'))?.private_key).toBe(k.private_key);
      await again.close();
    } finally {
      removeProject(dir);
    }
  });
});
