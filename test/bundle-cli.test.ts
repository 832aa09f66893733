/**
 * `swarm runs export` and `swarm verify` as real processes (build first: `node scripts/build.mjs`):
 * export writes the bundle atomically and prints its digests, the same bytes every time; it refuses
 * an unfinished run (exit 2) and a run whose keyed chain was altered (exit 3, nothing written).
 * verify runs in a directory with no swarm.yaml and no store, and creates neither; exit 0 with the
 * pinned key (base64, or a PEM file), 3 naming the first mismatch (text and JSON), 2 for a file that
 * is not a bundle or is missing; `--parent` checks a fork's link.
 */
import Database from 'better-sqlite3';
import { createPublicKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportRun } from '../src/bundles/export.js';
import { entryJson } from '../src/bundles/model.js';
import { bundleProject, jsonEntry, openBundleSwarm, rewrite, runRelay } from './helpers/bundle-fixtures.js';
import { removeProject, runCli, spawnCli } from './helpers/project.js';

let dir: string;
let empty: string;
let runId: string;
let forkId: string;
let queuedId: string;
let brokenId: string;
let key: string;

beforeAll(async () => {
  dir = bundleProject();
  empty = mkdtempSync(join(tmpdir(), 'swarm-verify-'));
  const swarm = await openBundleSwarm(dir);
  try {
    runId = await runRelay(swarm, dir);
    forkId = (await swarm.fork(runId, { at: 'c' })).run_id;
    await swarm.runToCompletion(forkId);
    brokenId = await swarm.startRun('relay', { message: 'to be forged' });
    await swarm.runToCompletion(brokenId);
    queuedId = await swarm.startRun('relay', { message: 'never run' });
    // The fork's bundle and the public key through the library: fewer processes on a busy machine.
    writeFileSync(join(empty, 'fork.tar'), (await exportRun(swarm, forkId)).bytes);
    key = await swarm.signingKeys.exportPublic('runs');
    const pem = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(key, 'base64')]), format: 'der', type: 'spki' });
    writeFileSync(join(empty, 'runs.pem'), pem.export({ format: 'pem', type: 'spki' }));
  } finally {
    await swarm.close();
  }
  const db = new Database(join(dir, '.swarm', 'swarm.db'));
  db.prepare(`UPDATE events SET data = '{"forged":true}' WHERE run_id = ? AND seq = 2`).run(brokenId);
  db.close();
}, 90_000);
afterAll(() => {
  if (dir) removeProject(dir);
  if (empty) removeProject(empty);
});

describe('swarm runs export', () => {
  it('writes the bundle, prints its digests, the same bytes every time', async () => {
    const a = await runCli(['runs', 'export', runId, '-o', 'run.tar'], dir);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/exported run .* to run\.tar/);
    expect(a.stdout).toMatch(/bundle_sha256: sha256:[0-9a-f]{64}/);
    const b = await runCli(['runs', 'export', runId, '-o', 'again.tar', '--json'], dir);
    expect(b.code, b.stderr).toBe(0);
    const doc = JSON.parse(b.stdout) as { file_sha256: string; bundle_sha256: string; size: number; signer: { key_name: string } };
    expect(doc.signer.key_name).toBe('runs');
    expect(readFileSync(join(dir, 'again.tar')).equals(readFileSync(join(dir, 'run.tar')))).toBe(true);
    expect(doc.size).toBe(readFileSync(join(dir, 'run.tar')).length);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 60_000);

  it('refuses an unfinished run (exit 2) and a run whose keyed chain does not verify (exit 3)', async () => {
    const q = await runCli(['runs', 'export', queuedId, '-o', 'queued.tar'], dir);
    expect(q.code).toBe(2);
    expect(q.stderr).toMatch(/only a finished run/);
    const x = await runCli(['runs', 'export', brokenId, '-o', 'broken.tar'], dir);
    expect(x.code).toBe(3);
    expect(x.stderr).toMatch(/event chain does not verify/);
    expect(existsSync(join(dir, 'queued.tar')) || existsSync(join(dir, 'broken.tar'))).toBe(false);
  }, 60_000);

  it('a file it cannot write is exit 4 naming the file and why, with nothing left behind', async () => {
    const missing = await runCli(['runs', 'export', runId, '-o', 'no/such/dir/run.tar'], dir);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain(`cannot write ${join(dir, 'no/such/dir/run.tar')}: its directory does not exist; nothing was written`);
    const directory = await runCli(['runs', 'export', runId, '-o', '.'], dir);
    expect(directory.code).toBe(4);
    expect(directory.stderr).toContain('it is a directory (give a file name)');
    expect(readdirSync(join(dir, '..')).filter((f) => f.startsWith(`.${basename(dir)}.`))).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 60_000);
});

describe('swarm runs export: where the bundle goes', () => {
  it('a link is followed (the file it names is replaced, the link stays); a FIFO is written into; - is standard output', async () => {
    const want = readFileSync(join(dir, 'run.tar'));
    mkdirSync(join(dir, 'out'), { recursive: true });
    writeFileSync(join(dir, 'out', 'target.tar'), 'old');
    symlinkSync(join('out', 'target.tar'), join(dir, 'latest.tar'));
    const viaLink = await runCli(['runs', 'export', runId, '-o', 'latest.tar'], dir);
    expect(viaLink.code, viaLink.stderr).toBe(0);
    expect(lstatSync(join(dir, 'latest.tar')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(dir, 'out', 'target.tar')).equals(want)).toBe(true);

    execFileSync('mkfifo', [join(dir, 'pipe')]);
    const reader = new Promise<Buffer>((done, fail) => {
      const chunks: Buffer[] = [];
      createReadStream(join(dir, 'pipe')).on('data', (c) => chunks.push(c as Buffer)).on('end', () => done(Buffer.concat(chunks))).on('error', fail);
    });
    const viaFifo = await runCli(['runs', 'export', runId, '-o', 'pipe'], dir);
    expect(viaFifo.code, viaFifo.stderr).toBe(0);
    expect((await reader).equals(want)).toBe(true);
    expect(lstatSync(join(dir, 'pipe')).isFIFO()).toBe(true);

    const child = spawnCli(['runs', 'export', runId, '-o', '-'], dir);
    const out: Buffer[] = [];
    let err = '';
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(code, err).toBe(0);
    expect(Buffer.concat(out).equals(want)).toBe(true);
    expect(err).toMatch(/exported run .* to standard output/);
    expect(existsSync(join(dir, '-'))).toBe(false);
  }, 60_000);
});

describe('swarm verify (offline)', () => {
  beforeAll(() => {
    writeFileSync(join(empty, 'run.tar'), readFileSync(join(dir, 'run.tar')));
  });

  it('verifies with no store and no swarm.yaml, pinned by base64 key or PEM file, and creates nothing', async () => {
    const ok = await runCli(['verify', 'run.tar', '--public-key', key], empty);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^ok: run\.tar verifies/);
    expect(ok.stdout).toMatch(/\(pinned\)/);
    const pem = await runCli(['verify', 'run.tar', '--public-key', 'runs.pem'], empty);
    expect(pem.code, pem.stderr).toBe(0);
    expect(readdirSync(empty).sort()).toEqual(['fork.tar', 'run.tar', 'runs.pem']);
  }, 60_000);

  it('exit 3 names the first mismatch (text and JSON)', async () => {
    const good = readFileSync(join(empty, 'run.tar'));
    const c = await jsonEntry<{ outputs: { echoed: string } }>(good, 'steps/c.json');
    c.outputs.echoed = 'Toad.';
    writeFileSync(join(empty, 'bad.tar'), await rewrite(good, { 'steps/c.json': entryJson(c) }));
    const r = await runCli(['verify', 'bad.tar', '--public-key', key], empty);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('first mismatch: steps/c.json: sha256 does not match manifest.json');
    expect(r.stderr).toContain('verification failed: steps/c.json: sha256 does not match manifest.json');
    const j = await runCli(['verify', 'bad.tar', '--json'], empty);
    expect(j.code).toBe(3);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, exit_code: 3, problem: { path: 'steps/c.json', field: 'sha256' } });
    const other = Buffer.alloc(32, 7).toString('base64');
    const wrongKey = await runCli(['verify', 'run.tar', '--public-key', other], empty);
    expect(wrongKey.code).toBe(3);
    expect(wrongKey.stdout).toMatch(/certificate\.json: signed by .* not the pinned public key/);
  }, 60_000);

  it('exit 2: not a bundle, a missing file, a bad key', async () => {
    writeFileSync(join(empty, 'junk.tar'), 'junk'.repeat(300));
    const junk = await runCli(['verify', 'junk.tar'], empty);
    expect(junk.code).toBe(2);
    expect(junk.stderr).toMatch(/not a bundle/);
    expect((await runCli(['verify', 'missing.tar'], empty)).code).toBe(2);
    expect((await runCli(['verify', 'run.tar', '--public-key', 'nonsense!'], empty)).code).toBe(2);
    const alone = await runCli(['verify', 'run.tar', '--parent-public-key', key], empty);
    expect(alone.code).toBe(2);
    expect(alone.stderr.trim()).toBe('swarm: --parent-public-key needs --parent (the parent bundle it pins)');
  }, 60_000);

  it('a reader that goes away (verify | head -1) is not an error', async () => {
    for (let i = 0; i < 3; i++) {
      const child = spawnCli(['verify', 'run.tar', '--public-key', key], empty);
      let err = '';
      child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
      child.stdout?.destroy(); // the pipe's reading end is closed before verify prints
      const code = await new Promise<number | null>((done) => child.on('close', done));
      expect(err).not.toMatch(/EPIPE|Error/);
      expect(code).toBe(0);
    }
  }, 60_000);

  it('an identity file that does not exist, where there is no store: exit 2, and no store is made', async () => {
    const r = await runCli(['verify', 'run.tar', '--identity', './typo.txt'], empty);
    // Not encrypted: the identity is not needed, and nothing is opened.
    expect(r.code, r.stderr).toBe(0);
    const { encryptBundle, generateAgeIdentity } = await import('../src/bundles/encrypt.js');
    const id = await generateAgeIdentity();
    writeFileSync(join(empty, 'run.tar.age'), await encryptBundle(readFileSync(join(empty, 'run.tar')), [id.recipient]));
    const typo = await runCli(['verify', 'run.tar.age', '--identity', './typo.txt'], empty);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('--identity ./typo.txt: no such file, and no Swarm store here to hold an age key of that name');
    expect(existsSync(join(empty, '.swarm'))).toBe(false);
    rmSync(join(empty, 'run.tar.age'));
  }, 60_000);

  it('--parent checks a fork’s link', async () => {
    const linked = await runCli(['verify', 'fork.tar', '--parent', 'run.tar', '--json'], empty);
    expect(linked.code, linked.stdout).toBe(0);
    expect(JSON.parse(linked.stdout)).toMatchObject({ ok: true, parent: { state_id: runId, checked: true } });
    const self = await runCli(['verify', 'fork.tar', '--parent', 'fork.tar'], empty);
    expect(self.code).toBe(3);
    expect(self.stdout).toMatch(/certificate\.json: parent_state\.state_id/);
  }, 60_000);
});
