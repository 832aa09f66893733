/**
 * `importBundle` (src/branching/import.ts) between two separate stores: a run made in one project
 * (SQLite) is exported, then imported into a second project on SQLite and on its own PostgreSQL
 * database. The imported run keeps its id and its outputs, its log is RUN_CREATED, RUN_IMPORTED,
 * STEP_COPIED… under the local key (the store's verify passes, and its replay gives its rows, the
 * source's times included), re-export gives the original bytes, a second import is a no-op, and a
 * fork of it runs here and names the original bundle as its parent (verify --parent passes).
 * Refusals: a tampered bundle (exit 3, nothing written), the same run id from another bundle (exit
 * 2), an unpinned signer when a key is pinned (exit 3); an encrypted bundle round trip with an age
 * key of the importing store, and the wrong identity (exit 2).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encryptBundle, generateAgeIdentity, openBundleBytes } from '../src/bundles/encrypt.js';
import { exportRun } from '../src/bundles/export.js';
import { verifyBundle } from '../src/bundles/verify.js';
import { describeDifference } from '../src/log/compare.js';
import { replayStoredRun } from '../src/log/log-service.js';
import type { Swarm } from '../src/swarm.js';
import { bundleProject, entriesOf, openBundleSwarm, rewrite, runRelay } from './helpers/bundle-fixtures.js';
import { pgTestServer, stopPgTestServer, type PgTestServer } from './helpers/pg.js';
import { EXAMPLES } from './helpers/project.js';

let pgServer: PgTestServer;
const dirs: string[] = [];
const open: Swarm[] = [];
let source: { swarm: Swarm; runId: string; bytes: Buffer; publicKey: string };

beforeAll(async () => {
  pgServer = await pgTestServer();
  const dir = bundleProject();
  dirs.push(dir);
  const swarm = await openBundleSwarm(dir);
  open.push(swarm);
  const runId = await runRelay(swarm, dir, 'from afar');
  const out = await exportRun(swarm, runId);
  source = { swarm, runId, bytes: out.bytes, publicKey: out.signer.public_key };
}, 120_000);

afterAll(async () => {
  for (const s of open) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await stopPgTestServer();
});

/** A second installation: its own project directory and store, with the agents (not the workflow) registered. */
async function target(backend: 'sqlite' | 'postgres'): Promise<Swarm> {
  const dir = bundleProject();
  dirs.push(dir);
  const swarm = await openBundleSwarm(dir, backend === 'postgres' ? await pgServer.createDatabase() : undefined);
  open.push(swarm);
  await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
  await swarm.registerAgent(join(dir, 'agents', 'teller'));
  return swarm;
}

describe.each(['sqlite', 'postgres'] as const)('import into a separate %s store', (backend) => {
  it('imports under the same id, verifies locally, re-exports the original bytes, re-import is a no-op, and forks', async () => {
    const swarm = await target(backend);
    expect(swarm.store.kind).toBe(backend);
    const r = await swarm.importBundle(source.bytes, { publicKey: source.publicKey });
    expect(r).toMatchObject({ run_id: source.runId, created: true, status: 'completed', workflow: 'relay@1.0.0', copied: ['a', 'b', 'c'], registered_workflow: true });
    expect(r.verify.signer).toMatchObject({ pinned: true, public_key: source.publicKey });

    const { run, steps } = await swarm.getRun(source.runId);
    expect(run).toMatchObject({ id: source.runId, status: 'completed', trigger_type: 'import' });
    const original = await source.swarm.getRun(source.runId);
    expect(steps.map((s) => [s.step_id, s.status, s.outputs])).toEqual(original.steps.map((s) => [s.step_id, s.status, s.outputs]));
    // Its times are the source's (created before it finished), not the import's.
    expect([run.created_at, run.started_at, run.completed_at]).toEqual([original.run.created_at, original.run.started_at, original.run.completed_at]);
    const events = await swarm.events(source.runId);
    expect(events.map((e) => e.type)).toEqual(['RUN_CREATED', 'RUN_IMPORTED', 'STEP_COPIED', 'STEP_COPIED', 'STEP_COPIED', 'RUN_COMPLETED']);
    expect(events[1]?.data).toEqual({ bundle_sha256: r.bundle_sha256, source_run_id: source.runId, certificate_sha256: r.certificate_sha256, ratchet_step: 0 });
    expect((await swarm.verify(source.runId)).ok).toBe(true);
    // Its log replays to the rows the import wrote: the terminal event carries the source's times.
    expect(events[5]?.data).toEqual({ imported: true, started_at: original.run.started_at, completed_at: original.run.completed_at });
    expect((await replayStoredRun(swarm, source.runId)).differences.map(describeDifference)).toEqual([]);
    // The workflow was unknown here: registered from the bundle, disabled.
    expect((await swarm.getWorkflow('relay')).enabled).toBe(false);

    // Exporting it again gives the bundle it came from, byte for byte.
    const again = await exportRun(swarm, source.runId);
    expect(again.imported).toBe(true);
    expect(again.bytes.equals(source.bytes)).toBe(true);

    // A second import: a no-op naming the run.
    const twice = await swarm.importBundle(source.bytes);
    expect(twice).toMatchObject({ run_id: source.runId, created: false });
    expect(await swarm.events(source.runId)).toHaveLength(events.length);
    expect(await swarm.listRuns()).toHaveLength(1);

    // Fork the imported run here: step c runs again with the local agent; the fork names the original bundle.
    const f = await swarm.fork(source.runId, { at: 'c', replaceOutputs: { b: { content: 'Replaced.' } } });
    const done = await swarm.runToCompletion(f.run_id);
    expect(done.run.status).toBe('completed');
    expect(done.steps.find((s) => s.step_id === 'c')?.outputs).toEqual({ echoed: 'Replaced.' });
    expect((await replayStoredRun(swarm, f.run_id)).differences.map(describeDifference)).toEqual([]);
    const fork = await exportRun(swarm, f.run_id);
    const report = await verifyBundle(fork.bytes, { parent: source.bytes });
    expect(report).toMatchObject({ ok: true, parent: { state_id: source.runId, bundle_sha256: r.bundle_sha256, checked: true } });
    // Pinned: the fork to this installation's key, its parent to the source's, each to its own.
    const here = fork.signer.public_key;
    const there = (await verifyBundle(source.bytes)).signer?.public_key as string;
    expect(here).not.toBe(there);
    const one = await verifyBundle(fork.bytes, { parent: source.bytes, publicKey: here });
    expect(one.ok).toBe(false);
    expect(one.problem?.message).toMatch(/^parent: the parent bundle does not verify: .*not the pinned public key/);
    expect(await verifyBundle(fork.bytes, { parent: source.bytes, publicKey: here, parentPublicKey: there })).toMatchObject({ ok: true, parent: { checked: true } });
    expect((await verifyBundle(fork.bytes, { parent: source.bytes, publicKey: here, parentPublicKey: here })).ok).toBe(false);
  }, 90_000);

  it('a fork imported elsewhere keeps its depth: a fork of it made there has depth 2, and its parent link verifies', async () => {
    const swarm = await target(backend);
    const f1 = await source.swarm.fork(source.runId, { at: 'c' });
    expect((await source.swarm.runToCompletion(f1.run_id)).run.status).toBe('completed');
    const b1 = await exportRun(source.swarm, f1.run_id);
    expect((await swarm.importBundle(b1.bytes)).created).toBe(true);
    const f2 = await swarm.fork(f1.run_id, { at: 'c' });
    expect((await swarm.runToCompletion(f2.run_id)).run.status).toBe('completed');
    const b2 = await exportRun(swarm, f2.run_id);
    const cert = JSON.parse(String((await entriesOf(b2.bytes)).get('certificate.json'))) as { parent_state: { state_id: string; ratchet_step: number } };
    expect(cert.parent_state).toMatchObject({ state_id: f1.run_id, ratchet_step: 2 });
    expect(await verifyBundle(b2.bytes, { parent: b1.bytes })).toMatchObject({ ok: true, parent: { state_id: f1.run_id, checked: true } });
  }, 90_000);

  it('refuses a tampered bundle (exit 3, nothing written), another bundle of the same run id (exit 2), an unexpected signer (exit 3)', async () => {
    const swarm = await target(backend);
    const entries = await entriesOf(source.bytes);
    const step = JSON.parse(String(entries.get('steps/b.json'))) as Record<string, unknown>;
    const tampered = await rewrite(source.bytes, { 'steps/b.json': `${JSON.stringify({ ...step, outputs: { content: 'forged' } })}\n` });
    await expect(swarm.importBundle(tampered)).rejects.toMatchObject({ exitCode: 3, message: expect.stringContaining('steps/b.json') as unknown });
    // Re-listed in the manifest too: the certificate's digests no longer match.
    const relisted = await rewrite(source.bytes, { 'steps/b.json': `${JSON.stringify({ ...step, outputs: { content: 'forged' } })}\n` }, { relist: true });
    await expect(swarm.importBundle(relisted)).rejects.toMatchObject({ exitCode: 3 });
    await expect(swarm.importBundle(Buffer.from('not a tar at all'))).rejects.toMatchObject({ exitCode: 2 });
    // Signed by a key other than the pinned one.
    await expect(swarm.importBundle(source.bytes, { publicKey: Buffer.alloc(32, 7).toString('base64') })).rejects.toMatchObject({ exitCode: 3 });
    expect(await swarm.listRuns()).toEqual([]);
    expect(await swarm.store.getImportedBundle(source.runId)).toBeUndefined();
    expect(await swarm.listWorkflows('relay')).toEqual([]);

    // The same run exported under another signing key: a different bundle claiming the imported run's id.
    await swarm.importBundle(source.bytes);
    const resigned = await exportRun(source.swarm, source.runId, { keyName: 'other-signer' });
    await expect(swarm.importBundle(resigned.bytes)).rejects.toMatchObject({ code: 'RUN_ID_TAKEN', exitCode: 2 });
  }, 90_000);

  it('an encrypted bundle: decrypted with an age key of the importing store, imported; the wrong identity is exit 2', async () => {
    const swarm = await target(backend);
    const key = await swarm.signingKeys.createAge('bundles');
    const sealed = await encryptBundle(source.bytes, [key.public_key]);
    const wrong = await generateAgeIdentity();
    await expect(openBundleBytes(sealed, [wrong.identity], 'run.tar.age')).rejects.toMatchObject({ code: 'BUNDLE_IDENTITY_MISMATCH', exitCode: 2 });
    await expect(openBundleBytes(sealed, [], 'run.tar.age')).rejects.toMatchObject({ code: 'BUNDLE_ENCRYPTED', exitCode: 2 });
    const { bytes, encrypted } = await openBundleBytes(sealed, [await swarm.signingKeys.ageIdentity('bundles')]);
    expect(encrypted).toBe(true);
    // The certificate is over the plaintext: it verifies after decryption, and imports.
    expect((await verifyBundle(Buffer.from(bytes), { publicKey: source.publicKey })).ok).toBe(true);
    expect((await swarm.importBundle(Buffer.from(bytes))).created).toBe(true);
    expect((await exportRun(swarm, source.runId)).bytes.equals(source.bytes)).toBe(true);
  }, 90_000);
});
