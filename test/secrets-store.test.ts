/**
 * The encrypted secrets store: the envelope crypto, resolution order (workflow scope, global,
 * environment), redaction of stored values, `swarm secrets` through the real CLI on a real SQLite
 * file (then every stored byte and every output searched for the planted values), master key
 * rotation, and the same on PostgreSQL. Build first: `npm run build`.
 */
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { UserError } from '../src/core/errors.js';
import { GENESIS_HASH, hashEvent, type RunEvent } from '../src/core/events.js';
import { Redactor } from '../src/secrets/redactor.js';
import { rechain } from '../src/secrets/rotate.js';
import { checkSecretName, openSecret, rewrapSecret, sealSecret, secretsKek } from '../src/secrets/vault.js';
import { Swarm } from '../src/swarm.js';
import { filesContaining } from './helpers/files.js';
import { cleanupSandboxes, makeSandbox, show, type CliResult, type Sandbox } from './helpers/cli.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { registerPackages, removeProject, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';
import { thrown } from './helpers/errors.js';

afterAll(async () => {
  cleanupSandboxes();
  await stopPgTestServer();
});

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const planted = (what: string): string => `planted${what}${randomBytes(12).toString('hex')}`;


describe('envelope encryption', () => {
  const kek = secretsKek(randomBytes(32));

  test('a value round-trips; the sealed bytes do not hold it, and sealing twice differs', () => {
    const value = planted('Value');
    const a = sealSecret(kek, 'API_KEY', '', value);
    const b = sealSecret(kek, 'API_KEY', '', value);
    expect(openSecret(kek, 'API_KEY', '', a)).toBe(value);
    expect(a.kek_id).toBe(kek.id);
    for (const part of [a.encrypted_value, a.value_nonce, a.wrapped_key, Buffer.from(a.kek_id)]) expect(part.includes(Buffer.from(value))).toBe(false);
    expect(a.encrypted_value.equals(b.encrypted_value)).toBe(false);
    expect(a.wrapped_key.equals(b.wrapped_key)).toBe(false);
  });

  test('a ciphertext moved to another name or scope, or altered, does not decrypt', () => {
    const sealed = sealSecret(kek, 'API_KEY', 'deploy', 'v');
    for (const [name, scope] of [['OTHER', 'deploy'], ['API_KEY', ''], ['API_KEY', 'other']] as const) {
      const e = thrown(() => openSecret(kek, name, scope, sealed));
      expect(e.code).toBe('SECRET_UNREADABLE');
      expect(e.message).toContain('does not belong to this name and scope');
    }
    const flipped = Buffer.from(sealed.encrypted_value);
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    expect(thrown(() => openSecret(kek, 'API_KEY', 'deploy', { ...sealed, encrypted_value: flipped })).code).toBe('SECRET_UNREADABLE');
    // The value's own ciphertext under another secret's data key: refused too.
    const other = sealSecret(kek, 'API_KEY', 'deploy', 'w');
    expect(thrown(() => openSecret(kek, 'API_KEY', 'deploy', { ...sealed, wrapped_key: other.wrapped_key })).code).toBe('SECRET_UNREADABLE');
  });

  test('another master key is named as such; a rewrap moves the secret to the new key only', () => {
    const sealed = sealSecret(kek, 'A', '', 'value-a');
    const next = secretsKek(randomBytes(32));
    expect(thrown(() => openSecret(next, 'A', '', sealed)).message).toContain('sealed under another master key');
    const moved = rewrapSecret(kek, next, 'A', '', sealed);
    expect(moved.encrypted_value.equals(sealed.encrypted_value)).toBe(true);
    expect(moved.kek_id).toBe(next.id);
    expect(openSecret(next, 'A', '', moved)).toBe('value-a');
    expect(thrown(() => openSecret(kek, 'A', '', moved)).message).toContain('another master key');
  });

  test('names: what an environment variable may be called', () => {
    for (const ok of ['API_KEY', '_x', 'a1']) checkSecretName(ok);
    for (const bad of ['', '1A', 'A-B', 'A B', 'A.B', 'A=1']) expect(thrown(() => checkSecretName(bad)).code).toBe('SECRET_NAME_INVALID');
  });

  test('rechain: a chain that verifies gets new hashes that verify under the new key; one that does not is left alone', () => {
    const [k1, k2] = [randomBytes(32), randomBytes(32)];
    const events: Array<RunEvent & { data_json: string }> = [];
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= 3; seq++) {
      const base = { run_id: 'r', seq, type: 'RUN_STARTED' as const, step_id: null, at: seq, prev_hash: prev, data: {}, data_json: '{}' };
      prev = hashEvent(k1, base, '{}');
      events.push({ ...base, hash: prev });
    }
    const out = rechain(k1, k2, events);
    expect(out).toHaveLength(3);
    let p = GENESIS_HASH;
    for (const [i, e] of (out ?? []).entries()) {
      expect(e.prev_hash).toBe(p);
      expect(e.hash).toBe(hashEvent(k2, { ...events[i]!, prev_hash: p }, '{}'));
      p = e.hash;
    }
    const tampered = events.map((e, i) => (i === 1 ? { ...e, data_json: '{"x":1}' } : e));
    expect(rechain(k1, k2, tampered)).toBeUndefined();
  });

  test('the redactor learns values later, and redacts them from then on', () => {
    const r = new Redactor({});
    expect(r.active).toBe(false);
    r.learn({ TOKEN: 'abc"def' });
    expect(r.active).toBe(true);
    expect(r.text('x abc"def y')).toBe('x [secret:TOKEN] y');
    expect(r.text(JSON.stringify({ t: 'abc"def' }))).toBe('{"t":"[secret:TOKEN]"}');
    expect(r.longestBytes).toBeGreaterThanOrEqual(7);
  });
});

// A process agent that gets the secret two ways (an input and its env), prints it, and returns its
// digests (so the test knows what it saw) and the value itself (which must be stored redacted).
const TELLER_YAML = `name: teller
version: 1.0.0
runtime: { type: bash, entry: run.sh }
env: { TOKEN: "\${secrets.PLANTED}" }
inputs:
  - { name: token, type: string, required: true }
outputs:
  - { name: digest, type: string }
  - { name: env_digest, type: string }
  - { name: echo, type: string }
`;
const TELLER_SH = `#!/usr/bin/env bash
set -euo pipefail
token=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).token)' "$1")
echo "stdout: the token is $token"
echo "stderr: the token is $TOKEN" >&2
d=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
e=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
printf '{"digest":"%s","env_digest":"%s","echo":"%s"}' "$d" "$e" "$token" > "$2"
`;
const workflowYaml = (name: string): string => `name: ${name}
version: 1.0.0
steps:
  - id: tell
    agent: teller@1.0.0
    inputs: { token: "\${secrets.PLANTED}" }
    retry: { max_attempts: 3, backoff_ms: 10 }
`;

interface RunJson {
  run_id: string;
  status: string;
  steps: Array<{ id: string; status: string; outputs: Record<string, unknown> | null; error: string | null }>;
}

describe('swarm secrets, through the CLI on SQLite', () => {
  test('stored secrets reach agents (workflow scope, then global, then env), are stored and printed nowhere, and survive a master key rotation', async () => {
    const K1 = randomBytes(32).toString('hex');
    const K2 = randomBytes(32).toString('hex');
    const GLOBAL = planted('Global');
    const SCOPED = planted('Scoped');
    const ENV = planted('Env');
    const s: Sandbox = makeSandbox({ env: { SWARM_MASTER_KEY: K1, SWARM_SECRET_PLANTED: ENV } });
    s.write('agents/teller/agent.yaml', TELLER_YAML);
    s.write('agents/teller/run.sh', TELLER_SH, 0o755);
    s.write('workflows/secretive/workflow.yaml', workflowYaml('secretive'));
    s.write('workflows/plain/workflow.yaml', workflowYaml('plain'));
    const outputs: Array<{ cmd: string; r: CliResult }> = [];
    const cli = async (args: string[], code: number, options: { input?: string; env?: Record<string, string | undefined> } = {}): Promise<CliResult> => {
      const r = await s.run(args, { timeoutMs: 60_000, ...options });
      expect(r.code, `swarm ${args.join(' ')}\n${show(r)}`).toBe(code);
      outputs.push({ cmd: args.join(' '), r });
      return r;
    };
    const run = async (wf: string, env: Record<string, string | undefined> = {}): Promise<RunJson> => JSON.parse((await cli(['run', wf, '{}', '--json'], 0, { env })).stdout) as RunJson;

    // The fixtures, through the library (in the sandbox's environment: its master key).
    expect(await registerPackages(s.root, s.env)).toEqual(['teller', 'plain', 'secretive']);

    // Bad input: a clear one-line error, exit 2, nothing written.
    const badName = await cli(['secrets', 'set', 'NOT-OK'], 2, { input: 'x' });
    expect(badName.stderr.trim().split('\n')).toHaveLength(1);
    expect(badName.stderr).toContain("secret name 'NOT-OK' is not valid");
    expect((await cli(['secrets', 'set', 'PLANTED'], 2, { input: '' })).stderr).toContain('the value is empty');
    expect((await cli(['secrets', 'set', 'PLANTED', '--workflow', 'Bad Name'], 2, { input: 'x' })).stderr).toContain('is not a workflow name');
    // A value given as an argument is refused, never stored.
    const asArgument = await cli(['secrets', 'set', 'PLANTED', GLOBAL], 2, { input: 'x' });
    expect(asArgument.stderr).toContain('too many arguments');
    expect(s.query('SELECT name FROM secrets')).toEqual([]);

    // Set from standard input (one trailing newline is not part of the value).
    expect((await cli(['secrets', 'set', 'PLANTED'], 0, { input: `${GLOBAL}\n` })).stdout).toContain('secret PLANTED set (global)');
    expect((await cli(['secrets', 'set', 'PLANTED', '--workflow', 'secretive'], 0, { input: SCOPED })).stdout).toContain("secret PLANTED set (workflow 'secretive')");
    const listed = JSON.parse((await cli(['secrets', 'list', '--json'], 0)).stdout) as Array<{ name: string; scope: string; workflow: string | null; created_at: string; updated_at: string }>;
    expect(listed.map((x) => [x.name, x.scope, x.workflow])).toEqual([
      ['PLANTED', 'global', null],
      ['PLANTED', 'workflow', 'secretive'],
    ]);
    // The same entry as GET /api/v1/secrets gives: times as ISO 8601 (they were epoch milliseconds here only).
    for (const x of listed) {
      expect(Object.keys(x).sort()).toEqual(['created_at', 'key_id', 'name', 'scope', 'updated_at', 'workflow']);
      expect(new Date(x.created_at).toISOString()).toBe(x.created_at);
      expect(new Date(x.updated_at).toISOString()).toBe(x.updated_at);
    }
    expect((await cli(['secrets', 'list', '--workflow', 'secretive'], 0)).stdout).toMatch(/PLANTED\s+workflow secretive/);
    // The store holds sealed bytes only.
    const rows = s.query<{ name: string; scope: string; encrypted_value: Buffer; wrapped_key: Buffer }>('SELECT * FROM secrets ORDER BY scope');
    expect(rows.map((r) => [r.name, r.scope])).toEqual([
      ['PLANTED', ''],
      ['PLANTED', 'secretive'],
    ]);

    // The workflow's own secret wins over the global one, which wins over the environment.
    const r1 = await run('secretive');
    const tell1 = r1.steps[0]!;
    expect(tell1.outputs).toEqual({ digest: sha256(SCOPED), env_digest: sha256(SCOPED), echo: '[secret:PLANTED]' });
    const r2 = await run('plain');
    expect(r2.steps[0]!.outputs).toMatchObject({ digest: sha256(GLOBAL), env_digest: sha256(GLOBAL) });
    const logs = await cli(['runs', 'logs', r1.run_id], 0);
    expect(logs.stdout).toContain('stdout: the token is [secret:PLANTED]');
    expect(logs.stdout).toContain('stderr: the token is [secret:PLANTED]');
    // Deleted: the environment's value is next.
    expect((await cli(['secrets', 'delete', 'PLANTED'], 0)).stdout).toContain('secret PLANTED deleted (global)');
    expect((await cli(['secrets', 'delete', 'PLANTED'], 2)).stderr).toContain('no stored secret PLANTED (global)');
    const r3 = await run('plain');
    expect(r3.steps[0]!.outputs).toMatchObject({ digest: sha256(ENV) });
    expect((await cli(['secrets', 'set', 'PLANTED'], 0, { input: GLOBAL })).stdout).toContain('set (global)');

    // A wrong master key: a clear error, exit 2.
    const wrong = await cli(['secrets', 'list'], 2, { env: { SWARM_MASTER_KEY: randomBytes(32).toString('hex') } });
    expect(wrong.stderr).toContain('is not the key the store');

    // Rotation: every secret still readable under the new key, every run still verifies, the old key is refused.
    expect((await cli(['secrets', 'rotate-key'], 2)).stderr).toContain('SWARM_NEW_MASTER_KEY');
    const rotated = await cli(['secrets', 'rotate-key'], 0, { env: { SWARM_NEW_MASTER_KEY: K2 } });
    expect(rotated.stdout).toMatch(/2 secret\(s\) re-wrapped, \d+ event\(s\) of 3 run\(s\) re-signed/);
    expect((await cli(['secrets', 'list'], 2)).stderr).toContain('is not the key the store');
    for (const id of [r1.run_id, r2.run_id, r3.run_id]) await cli(['runs', 'verify', id], 0, { env: { SWARM_MASTER_KEY: K2 } });
    const r4 = await run('secretive', { SWARM_MASTER_KEY: K2 });
    expect(r4.steps[0]!.outputs).toMatchObject({ digest: sha256(SCOPED) });
    const r5 = await run('plain', { SWARM_MASTER_KEY: K2 });
    expect(r5.steps[0]!.outputs).toMatchObject({ digest: sha256(GLOBAL) });
    expect(s.query<{ kek_id: string }>('SELECT DISTINCT kek_id FROM secrets')).toHaveLength(1);

    // Nowhere: no command's output, no byte under the Swarm home (the database, its WAL, work directories).
    for (const { cmd, r } of outputs) {
      for (const v of [GLOBAL, SCOPED, ENV]) expect((r.stdout + r.stderr).includes(v), `output of 'swarm ${cmd}' holds a secret`).toBe(false);
    }
    const home = s.home as string;
    expect(statSync(s.db).size).toBeGreaterThan(0);
    const found = filesContaining(home, [GLOBAL, SCOPED, ENV]);
    expect(found.files).toBeGreaterThanOrEqual(2);
    expect(found.hits).toEqual([]);
    // The database, read as SQL too (every text column of every table).
    const db = new Database(s.db, { readonly: true });
    try {
      const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all() as string[];
      for (const t of tables) {
        const dump = JSON.stringify(db.prepare(`SELECT * FROM "${t}"`).all());
        for (const v of [GLOBAL, SCOPED, ENV]) expect(dump.includes(v), `table ${t}`).toBe(false);
      }
    } finally {
      db.close();
    }
  }, 180_000);

  test('with the key kept in <home>/master.key, rotate-key replaces the file (0600) and the old key is refused', async () => {
    const VALUE = planted('File');
    const s = makeSandbox();
    s.write('agents/teller/agent.yaml', TELLER_YAML);
    s.write('agents/teller/run.sh', TELLER_SH, 0o755);
    s.write('workflows/secretive/workflow.yaml', workflowYaml('secretive'));
    const ok = async (args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<CliResult> => {
      const r = await s.run(args, { timeoutMs: 60_000, ...options });
      expect(r.code, show(r)).toBe(0);
      return r;
    };
    expect(await registerPackages(s.root, s.env)).toEqual(['teller', 'secretive']);
    await ok(['secrets', 'set', 'PLANTED', '--workflow', 'secretive'], { input: VALUE });
    const keyFile = join(s.home as string, 'master.key');
    const oldKey = readFileSync(keyFile, 'utf8').trim();
    const before = JSON.parse((await ok(['run', 'secretive', '--json'])).stdout) as RunJson;
    const r = await ok(['secrets', 'rotate-key', '--json']);
    expect(JSON.parse(r.stdout)).toMatchObject({ secrets: 1, runs: 1, unverified: [], key_file: keyFile });
    const newKey = readFileSync(keyFile, 'utf8').trim();
    expect(newKey).toMatch(/^[0-9a-f]{64}$/);
    expect(newKey).not.toBe(oldKey);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readdirSync(s.home as string).filter((f) => f.includes('master.key'))).toEqual(['master.key']);
    const after = JSON.parse((await ok(['run', 'secretive', '--json'])).stdout) as RunJson;
    expect(after.steps[0]!.outputs).toMatchObject({ digest: sha256(VALUE) });
    await ok(['runs', 'verify', before.run_id]);
    const old = await s.run(['secrets', 'list'], { env: { SWARM_MASTER_KEY: oldKey } });
    expect(old.code, show(old)).toBe(2);
    expect(old.stderr).toContain('is not the key the store');
    // A new key from a file.
    const next = randomBytes(32).toString('hex');
    writeFileSync(s.path('next.key'), `${next}\n`, { mode: 0o600 });
    await ok(['secrets', 'rotate-key', '--new-key-file', 'next.key']);
    expect(readFileSync(keyFile, 'utf8').trim()).toBe(next);
    const third = JSON.parse((await ok(['run', 'secretive', '--json'])).stdout) as RunJson;
    expect(third.steps[0]!.outputs).toMatchObject({ digest: sha256(VALUE) });
  }, 120_000);
});

async function libraryChecks(env: Record<string, string>, dir: string): Promise<void> {
  const ENV_VALUE = planted('Env');
  const swarm = await Swarm.open({ cwd: dir, env: { ...env, SWARM_HOME: join(dir, '.swarm'), SWARM_SECRET_PLANTED: ENV_VALUE } });
  try {
    writeAgent(dir, 'teller', TELLER_YAML, { 'run.sh': TELLER_SH });
    writeWorkflow(dir, 'secretive', workflowYaml('secretive'));
    writeWorkflow(dir, 'plain', workflowYaml('plain'));
    await swarm.registerAgent(join(dir, 'agents', 'teller'));
    await swarm.registerWorkflow(join(dir, 'workflows', 'secretive'));
    await swarm.registerWorkflow(join(dir, 'workflows', 'plain'));
    const digestOf = async (wf: string): Promise<unknown> => {
      const { run, steps } = await swarm.runToCompletion(await swarm.startRun(wf, {}));
      expect(run.status, JSON.stringify(steps)).toBe('completed');
      return (steps[0]?.outputs as { digest: string }).digest;
    };

    // Store over env; workflow scope over global.
    expect(await digestOf('plain')).toBe(sha256(ENV_VALUE));
    const G = planted('G');
    const S = planted('S');
    expect(await swarm.setSecret('PLANTED', G)).toBe('created');
    expect(await digestOf('plain')).toBe(sha256(G));
    expect(await swarm.setSecret('PLANTED', S, { workflow: 'secretive' })).toBe('created');
    expect(await digestOf('secretive')).toBe(sha256(S));
    expect(await digestOf('plain')).toBe(sha256(G));
    // A change is seen by the next step of the same process (the cache follows the store's generation).
    const S2 = planted('S2');
    expect(await swarm.setSecret('PLANTED', S2, { workflow: 'secretive' })).toBe('replaced');
    expect(await digestOf('secretive')).toBe(sha256(S2));
    expect((await swarm.listSecrets()).map((x) => [x.name, x.workflow])).toEqual([
      ['PLANTED', null],
      ['PLANTED', 'secretive'],
    ]);
    expect(JSON.stringify(await swarm.listSecrets())).not.toContain(S2);
    expect(await swarm.deleteSecret('PLANTED', { workflow: 'secretive' })).toBe(true);
    expect(await digestOf('secretive')).toBe(sha256(G));
    expect(swarm.redactor.text(`a ${S2} b ${G}`)).toBe('a [secret:PLANTED] b [secret:PLANTED]');

    // A ciphertext copied to another name does not decrypt: the step fails at once, naming the secret.
    const row = await swarm.store.getSecret('PLANTED', '');
    await swarm.store.putSecret({ ...row!, scope: 'secretive' });
    const id = await swarm.startRun('secretive', {});
    const { run, steps } = await swarm.runToCompletion(id);
    expect(run.status).toBe('failed');
    expect(steps[0]?.error).toContain("secret PLANTED (workflow 'secretive') cannot be decrypted");
    // Not retried: a retry cannot make it decrypt.
    expect((await swarm.store.getEvents(id)).filter((e) => e.type === 'STEP_STARTED')).toHaveLength(1);
    expect((await swarm.store.getEvents(id)).some((e) => e.type === 'STEP_RETRY_SCHEDULED')).toBe(false);
    // Other workflows, which do not use the broken row, are not affected.
    expect(await digestOf('plain')).toBe(sha256(G));
    await swarm.deleteSecret('PLANTED', { workflow: 'secretive' });

    // Rotation in the library: secrets readable, runs verify, this Swarm signs with the new key.
    const ids = (await swarm.listRuns({ limit: 100 })).map((r) => r.id);
    const report = await swarm.rotateMasterKey(randomBytes(32));
    expect(report).toMatchObject({ secrets: 1, runs: ids.length, unverified: [] });
    expect(await digestOf('plain')).toBe(sha256(G));
    for (const r of await swarm.listRuns({ limit: 100 })) expect((await swarm.verify(r.id)).ok, r.id).toBe(true);
    for (const v of [G, S, S2]) {
      const stored = (await swarm.store.listSecrets()).map((r) => Buffer.concat([r.encrypted_value, r.wrapped_key]));
      expect(stored.some((b) => b.includes(Buffer.from(v)))).toBe(false);
    }
  } finally {
    await swarm.close();
  }
}

describe('the library API', () => {
  test('SQLite: scopes, env fallback, live updates, a moved ciphertext, rotation', async () => {
    const dir = tempProject();
    try {
      await libraryChecks({ SWARM_MASTER_KEY: randomBytes(32).toString('hex') }, dir);
    } finally {
      removeProject(dir);
    }
  }, 120_000);

  test('rotation refuses while a worker runs, and leaves a tampered run as it was (still failing verify)', async () => {
    const dir = tempProject();
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_MASTER_KEY: randomBytes(32).toString('hex') } });
    try {
      writeAgent(dir, 'teller', TELLER_YAML, { 'run.sh': TELLER_SH });
      writeWorkflow(dir, 'plain', workflowYaml('plain'));
      await swarm.registerAgent(join(dir, 'agents', 'teller'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'plain'));
      await swarm.setSecret('PLANTED', planted('V'));
      const good = await swarm.startRun('plain', {});
      const bad = await swarm.startRun('plain', {});
      await swarm.runToCompletion(good);
      await swarm.runToCompletion(bad);

      const worker = swarm.worker();
      const refused = await swarm.rotateMasterKey(randomBytes(32)).then(
        () => undefined,
        (e: unknown) => e as UserError,
      );
      expect(refused?.code).toBe('WORKERS_RUNNING');
      await worker.stop();

      const db = new Database(swarm.config.dbPath);
      try {
        db.prepare(`UPDATE events SET data = '{"tampered":true}' WHERE run_id = ? AND seq = 2`).run(bad);
      } finally {
        db.close();
      }
      const badEvents = await swarm.store.getEvents(bad);
      expect((await swarm.verify(bad)).ok).toBe(false);
      const report = await swarm.rotateMasterKey(randomBytes(32));
      expect(report).toMatchObject({ secrets: 1, runs: 1, unverified: [bad] });
      expect((await swarm.verify(good)).ok).toBe(true);
      expect((await swarm.verify(bad)).ok).toBe(false);
      expect(await swarm.store.getEvents(bad)).toEqual(badEvents);
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  }, 60_000);

  test('PostgreSQL: the same', async () => {
    const server = await pgTestServer();
    const url = await server.createDatabase();
    const dir = tempProject();
    try {
      await libraryChecks({ SWARM_MASTER_KEY: randomBytes(32).toString('hex'), SWARM_DATABASE_URL: url }, dir);
    } finally {
      removeProject(dir);
      await server.dropDatabase(url);
    }
  }, 180_000);
});
