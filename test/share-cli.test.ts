/**
 * `swarm runs import`, `swarm runs export --encrypt-to`, `swarm verify --identity` and
 * `swarm keys create --type age` through the real CLI on real files: two sandboxes (two projects,
 * two SQLite stores). Exit codes: an encrypted bundle without an identity 2, the wrong identity 2,
 * altered ciphertext 3, a tampered bundle refused by import with 3 and nothing written, a second
 * import 0 and a no-op. Build first: the CLI runs from dist/.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateAgeIdentity } from '../src/bundles/encrypt.js';
import { cleanupSandboxes, EXAMPLES, makeSandbox, show } from './helpers/cli.js';
import { entriesOf, rewrite } from './helpers/bundle-fixtures.js';

afterAll(() => cleanupSandboxes());

describe('import and encrypted bundles through the CLI', () => {
  it('export --encrypt-to, verify --identity, import: exit codes and a no-op re-import', async () => {
    const a = makeSandbox();
    expect((await a.run(['agent', 'register', join(EXAMPLES.agents, 'echo')])).code).toBe(0);
    expect((await a.run(['workflow', 'register', join(EXAMPLES.workflows, 'echo-chain')])).code).toBe(0);
    const run = await a.json<{ run_id: string; status: string }>(['run', 'echo-chain', '{"message": "over the wire"}', '--json']);
    expect(run.status).toBe('completed');

    // The receiver's age identity, as age-keygen would write it.
    const key = await generateAgeIdentity();
    const keyFile = a.write('key.txt', `# public key: ${key.recipient}\n${key.identity}\n`);
    const wrongFile = a.write('wrong.txt', `${(await generateAgeIdentity()).identity}\n`);

    const plain = await a.run(['runs', 'export', run.run_id, '-o', 'run.tar']);
    expect(plain.code, show(plain)).toBe(0);
    const sealed = await a.json<{ encrypted_to: string[]; plain_sha256: string; file_sha256: string }>(['runs', 'export', run.run_id, '-o', 'run.tar.age', '--encrypt-to', key.recipient, '--json']);
    expect(sealed.encrypted_to).toEqual([key.recipient]);
    expect(readFileSync(a.path('run.tar.age')).subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
    const bad = await a.run(['runs', 'export', run.run_id, '-o', 'x.tar', '--encrypt-to', 'age1nope']);
    expect(bad.code).toBe(2);
    expect(a.exists('x.tar')).toBe(false);

    const noId = await a.run(['verify', 'run.tar.age']);
    expect(noId.code).toBe(2);
    expect(noId.stderr).toContain('is encrypted (age); pass --identity');
    const wrong = await a.run(['verify', 'run.tar.age', '--identity', wrongFile]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('none of the 1 identity given can decrypt it');
    const ok = await a.run(['verify', 'run.tar.age', '--identity', keyFile]);
    expect(ok.code, show(ok)).toBe(0);
    expect(ok.stdout).toContain(`run.tar.age verifies (run ${run.run_id})`);
    const altered = Buffer.from(readFileSync(a.path('run.tar.age')));
    altered[altered.length - 30] = (altered[altered.length - 30] ?? 0) ^ 1;
    writeFileSync(a.path('altered.tar.age'), altered);
    const alt = await a.run(['verify', 'altered.tar.age', '--identity', keyFile]);
    expect(alt.code).toBe(3);
    expect(alt.stderr).toContain('decryption failed');

    // The second installation.
    const b = makeSandbox();
    expect((await b.run(['agent', 'register', join(EXAMPLES.agents, 'echo')])).code).toBe(0);
    const inbox = await b.run(['keys', 'create', 'inbox', '--type', 'age']);
    expect(inbox.code, show(inbox)).toBe(0);
    const recipient = /recipient (age1\S+)/.exec(inbox.stdout)?.[1] ?? '';
    expect((await b.run(['keys', 'export-public', 'inbox'])).stdout.trim()).toBe(recipient);
    expect((await b.run(['keys', 'list'])).stdout).toMatch(/inbox\s+age1\S+\s+\S+\s+age/);

    const bytes = readFileSync(a.path('run.tar'));
    const step = JSON.parse(String((await entriesOf(bytes)).get('steps/step2.json'))) as Record<string, unknown>;
    writeFileSync(b.path('tampered.tar'), await rewrite(bytes, { 'steps/step2.json': `${JSON.stringify({ ...step, outputs: { echoed: 'forged' } })}\n` }));
    const refused = await b.run(['runs', 'import', 'tampered.tar']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('steps/step2.json');
    expect((await b.run(['runs', 'list'])).stdout).not.toContain(run.run_id);
    // A malformed pinned key is the command line's mistake: exit 2, as verify says it, before anything is read.
    const badKey = await b.run(['runs', 'import', 'tampered.tar', '--public-key', 'AAAA']);
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain('--public-key AAAA is not an Ed25519 public key');

    writeFileSync(b.path('run.tar.age'), readFileSync(a.path('run.tar.age')));
    writeFileSync(b.path('key.txt'), readFileSync(keyFile));
    const imported = await b.json<{ run_id: string; created: boolean; encrypted: boolean; copied: string[] }>(['runs', 'import', 'run.tar.age', '--identity', 'key.txt', '--json']);
    expect(imported).toMatchObject({ run_id: run.run_id, created: true, encrypted: true, copied: ['step1', 'step2'] });
    const again = await b.run(['runs', 'import', 'run.tar.age', '--identity', 'key.txt']);
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout).toContain(`already imported: run ${run.run_id}`);
    const reexport = await b.run(['runs', 'export', run.run_id, '-o', 'back.tar']);
    expect(reexport.code, show(reexport)).toBe(0);
    expect(reexport.stdout).toContain('the bundle it was imported from');
    expect(readFileSync(b.path('back.tar')).equals(bytes)).toBe(true);
    const verified = await b.run(['runs', 'verify', run.run_id]);
    expect(verified.code, show(verified)).toBe(0);
  }, 180_000);
});
