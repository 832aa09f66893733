/**
 * `swarm keys create | list | export-public` through the real CLI on a real SQLite file: a key is
 * created once (a second create of the name exits 2), listed with its public key and never its
 * private key (every file of the sandbox and every output searched), exported as base64 or SPKI PEM
 * that node:crypto reads back as the same Ed25519 key. Build first: the CLI runs from dist/.
 */
import { createPublicKey } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupSandboxes, makeSandbox, show } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

describe('swarm keys', () => {
  it('create, list, export-public; the private key is never shown nor stored in the clear', async () => {
    const s = makeSandbox();
    const empty = await s.run(['keys', 'list']);
    expect(empty.code, show(empty)).toBe(0);
    expect(empty.stdout).toContain('no signing keys');

    const created = await s.run(['keys', 'create', 'consensus:voter-1']);
    expect(created.code, show(created)).toBe(0);
    const pub = /public key (\S+)$/m.exec(created.stdout)?.[1] ?? '';
    expect(pub).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const second = await s.json<{ name: string; public_key: string; created_at: string }>(['keys', 'create', 'run-certs', '--json']);
    expect(second).toMatchObject({ name: 'run-certs', type: 'ed25519', public_key: expect.stringMatching(/=$/) as unknown });
    // JSON times are ISO 8601 (README), not epoch milliseconds.
    expect(second.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const dup = await s.run(['keys', 'create', 'consensus:voter-1']);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toContain("a signing key named consensus:voter-1 already exists; see 'swarm keys list'");
    const bad = await s.run(['keys', 'create', 'with space']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('key name "with space" is not valid');

    const list = await s.run(['keys', 'list']);
    expect(list.code, show(list)).toBe(0);
    expect(list.stdout).toMatch(/NAME\s+PUBLIC KEY\s+CREATED/);
    expect(list.stdout).toMatch(new RegExp(`consensus:voter-1\\s+${pub.replace(/[+/]/g, '\\$&')}`));
    const listed = await s.json<Array<Record<string, unknown>>>(['keys', 'list', '--json']);
    expect(listed.map((k) => k.name)).toEqual(['consensus:voter-1', 'run-certs']);
    expect(Object.keys(listed[0] ?? {}).sort()).toEqual(['created_at', 'name', 'public_key', 'type']);
    expect(listed.map((k) => k.type)).toEqual(['ed25519', 'ed25519']);
    expect(Date.parse(String(listed[0]?.created_at))).toBeGreaterThan(Date.parse('2020-01-01'));

    const exported = await s.run(['keys', 'export-public', 'consensus:voter-1']);
    expect(exported.code, show(exported)).toBe(0);
    expect(exported.stdout.trim()).toBe(pub);
    const pem = await s.run(['keys', 'export-public', 'consensus:voter-1', '--pem']);
    expect(pem.code, show(pem)).toBe(0);
    const key = createPublicKey(pem.stdout);
    expect(key.asymmetricKeyType).toBe('ed25519');
    expect(Buffer.from(key.export({ format: 'jwk' }).x ?? '', 'base64url').toString('base64')).toBe(pub);

    const missing = await s.run(['keys', 'export-public', 'nope']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("no signing key named nope; see 'swarm keys list'");

    // The sealed private key is in the store; the PEM body of a private key appears nowhere.
    const rows = s.query<{ private_key_enc: string }>('SELECT private_key_enc FROM signing_keys ORDER BY name');
    expect(rows).toHaveLength(2);
    for (const r of rows) expect(r.private_key_enc).toMatch(/^v1:[0-9a-f]{16}:/);
    const everything = [empty, created, dup, list, exported, pem].map((r) => r.stdout + r.stderr).join('\n');
    expect(everything).not.toContain('PRIVATE KEY');
  });
});
