/**
 * The master key (its sources, sub-keys, the store's key check on both backends) and the redactor.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/config.js';
import { deriveKey, fileKeySource, KeyPurpose, keyCheckValue, parseMasterKey } from '../src/secrets/master-key.js';
import { ClassRedactor } from '../src/guardrails/redaction/classifier.js';
import { Redactor } from '../src/secrets/redactor.js';
import { Swarm } from '../src/swarm.js';
import { pgTestServer, stopPgTestServer, type PgTestServer } from './helpers/pg.js';
import { EXAMPLES, tempProject, writeWorkflow } from './helpers/project.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'swarm-secrets-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('master key', () => {
  const key = Buffer.alloc(32, 0xab);

  it('is read as 64 hex digits or base64 of 32 bytes; anything else names the source and the length', () => {
    expect(parseMasterKey(key.toString('hex'), 'X')).toEqual(key);
    expect(parseMasterKey(`${key.toString('base64')}\n`, 'X')).toEqual(key);
    expect(parseMasterKey(key.toString('base64url'), 'X')).toEqual(key);
    expect(() => parseMasterKey('ab'.repeat(31), 'SWARM_MASTER_KEY')).toThrow('SWARM_MASTER_KEY: a hex master key must be 64 hex digits (32 bytes), found 62');
    expect(() => parseMasterKey(Buffer.alloc(16).toString('base64'), 'f')).toThrow('f: a base64 master key must decode to 32 bytes, found 16');
    expect(() => parseMasterKey('not a key!', 'f')).toThrow(/must be 32 bytes written as 64 hex digits or as base64/);
  });

  it('SWARM_MASTER_KEY is resolved with the configuration: a bad one is an error before anything opens', () => {
    const dir = tmp();
    expect(resolveConfig({ cwd: dir, env: { SWARM_MASTER_KEY: key.toString('hex') } }).masterKey).toEqual(key);
    expect(resolveConfig({ cwd: dir, env: {} }).masterKey).toBeUndefined();
    expect(resolveConfig({ cwd: dir, env: {} }).masterKeyFile).toBe(join(dir, '.swarm', 'master.key'));
    expect(() => resolveConfig({ cwd: dir, env: { SWARM_MASTER_KEY: 'abc' } })).toThrow(expect.objectContaining({ code: 'MASTER_KEY_INVALID', exitCode: 2 }));
  });

  it('sub-keys differ per purpose and from the master key; the check value depends on the key', () => {
    const chain = deriveKey(key, KeyPurpose.EVENT_CHAIN);
    expect(chain).toHaveLength(32);
    expect(chain.equals(deriveKey(key, KeyPurpose.KEY_CHECK))).toBe(false);
    expect(chain.equals(key)).toBe(false);
    expect(chain.equals(deriveKey(Buffer.alloc(32, 1), KeyPurpose.EVENT_CHAIN))).toBe(false);
    expect(keyCheckValue(key)).toBe(keyCheckValue(Buffer.from(key)));
    expect(keyCheckValue(key)).not.toBe(keyCheckValue(Buffer.alloc(32, 1)));
  });

  it('the key file is created 0600 on first use and read back the same; one others can read is refused', () => {
    const dir = tmp();
    const file = join(dir, 'home', 'master.key');
    const first = fileKeySource(file).load();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(fileKeySource(file).load()).toEqual(first);
    chmodSync(file, 0o644);
    expect(() => fileKeySource(file).load()).toThrow(`${file}: the master key file may be read by others (mode 0644); run 'chmod 600 ${file}'`);
    chmodSync(file, 0o600);
    writeFileSync(file, 'short\n', { mode: 0o600 });
    expect(() => fileKeySource(file).load()).toThrow(/must decode to 32 bytes, found 3/);
  });
});

describe('the store remembers its key', () => {
  let server: PgTestServer;
  beforeAll(async () => {
    server = await pgTestServer();
  });
  afterAll(async () => {
    await stopPgTestServer();
  });

  for (const backend of ['sqlite', 'postgres'] as const) {
    it(`${backend}: a process with another key fails at open, naming SWARM_MASTER_KEY; the same key opens`, async () => {
      const dir = tmp();
      const url = backend === 'postgres' ? await server.createDatabase() : undefined;
      const env = (k: Buffer): Record<string, string> => ({ SWARM_HOME: join(dir, '.swarm'), SWARM_MASTER_KEY: k.toString('hex'), ...(url ? { SWARM_DATABASE_URL: url } : {}) });
      const a = Buffer.alloc(32, 1);
      const first = await Swarm.open({ cwd: dir, env: env(a) });
      await first.close();
      // Another machine with its own key (here: a key file of its own) is refused.
      const err = await Swarm.open({ cwd: dir, env: { ...env(a), SWARM_MASTER_KEY: '' } }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'MASTER_KEY_MISMATCH', exitCode: 2 });
      expect(String((err as Error).message)).toContain('set SWARM_MASTER_KEY to the same value on every machine');
      expect(readFileSync(join(dir, '.swarm', 'master.key'), 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
      const again = await Swarm.open({ cwd: dir, env: env(a) });
      await again.close();
    });
  }
});

describe('Redactor', () => {

  it('remembers the short strings it found clean, and forgets them when it learns a secret; a redaction is counted every time', () => {
    const counted: string[] = [];
    const r = new Redactor({}, { classes: new ClassRedactor({ email: { action: 'redact' } }, [], (cls) => counted.push(cls)) });
    expect(r.json('plain-token-1234')).toBe('plain-token-1234');
    expect(r.json('plain-token-1234')).toBe('plain-token-1234');
    r.learn({ LATE: 'plain-token-1234' });
    expect(r.json('plain-token-1234')).toBe('[secret:LATE]');
    expect(r.json('ada@example.com')).toBe('[EMAIL]');
    expect(r.json('ada@example.com')).toBe('[EMAIL]');
    expect(counted.filter((c) => c === 'email')).toHaveLength(2);
  });
  it('replaces every configured value, longest first, in text and in every string and key of a value', () => {
    const r = new Redactor({ A: 'abc123', AB: 'abc123xyz', EMPTY: '' });
    expect(r.active).toBe(true);
    expect(r.text('x abc123xyz y abc123 z')).toBe('x [secret:AB] y [secret:A] z');
    expect(r.value({ k: ['abc123', { abc123: 1, n: 2, t: true, z: null }] })).toEqual({ k: ['[secret:A]', { '[secret:A]': 1, n: 2, t: true, z: null }] });
  });

  it('also finds the JSON-escaped form of a value (as it appears inside stored JSON text)', () => {
    const r = new Redactor({ Q: 'he said "hi"\\now' });
    expect(r.text(JSON.stringify({ m: 'he said "hi"\\now' }))).toBe('{"m":"[secret:Q]"}');
    expect(r.text('raw: he said "hi"\\now')).toBe('raw: [secret:Q]');
  });

  it('a "__proto__" key stays a key of the redacted copy; it never becomes its prototype', () => {
    const r = new Redactor({ K: 'hidden-value' });
    const out = r.value(JSON.parse('{"__proto__": {"isAdmin": true}, "note": "hidden-value"}') as Record<string, unknown>);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect((out as { isAdmin?: unknown }).isAdmin).toBeUndefined();
    expect(Object.keys(out)).toEqual(['__proto__', 'note']);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"isAdmin":true},"note":"[secret:K]"}');
  });

  it('values with regular-expression characters are matched literally; no secrets means no change at all', () => {
    const r = new Redactor({ RE: 'a.b*c' });
    expect(r.text('axbbc a.b*c')).toBe('axbbc [secret:RE]');
    const none = new Redactor({});
    const v = { a: 'abc' };
    expect(none.active).toBe(false);
    expect(none.value(v)).toBe(v);
  });
});

describe('run inputs once secrets are known', () => {
  it("an input's default is still filled in (and stored) after the redactor has learned a secret", async () => {
    const dir = tempProject('name: defaults\nsandbox: none\n');
    dirs.push(dir);
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_SECRET_API_KEY: 'sk-planted-value-123' } });
    try {
      await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
      await swarm.registerWorkflow(
        writeWorkflow(dir, 'greet', 'name: greet\nversion: 1.0.0\ninputs:\n  - name: name\n    type: string\n    default: world\nsteps:\n  - id: hi\n    agent: echo\n    inputs:\n      message: "hi ${trigger.name}"\n'),
      );
      const runId = await swarm.startRun('greet', {});
      expect((await swarm.store.getRun(runId))?.trigger_data).toEqual({ name: 'world' });
      const worker = swarm.worker({ concurrency: 1 });
      void worker.start();
      const done = await swarm.wait(runId);
      await worker.stop();
      expect(done.run.status).toBe('completed');
      expect(done.steps[0]?.outputs).toMatchObject({ echoed: 'hi world' });
    } finally {
      await swarm.close();
    }
  });
});
