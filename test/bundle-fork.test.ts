/**
 * A fork's bundle and its parent link, on SQLite: a run, a fork of it at its llm step, a fork of the
 * fork. Each exports and verifies offline; the fork's certificate names its parent's run and bundle
 * digest and its depth; `parent` checks the link (the right parent, the wrong one, a tampered one).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleDigestOf, exportRun, type ExportedBundle } from '../src/bundles/export.js';
import { entryJson } from '../src/bundles/model.js';
import { readBundle } from '../src/bundles/read.js';
import { verifyBundle } from '../src/bundles/verify.js';
import type { Swarm } from '../src/swarm.js';
import { bundleProject, jsonEntry, openBundleSwarm, rewrite, runRelay } from './helpers/bundle-fixtures.js';
import { removeProject } from './helpers/project.js';

let dir: string;
let swarm: Swarm;
let root: ExportedBundle;
let fork: ExportedBundle;
let grandchild: ExportedBundle;
let other: ExportedBundle;
let rootId: string;
let forkId: string;

beforeAll(async () => {
  dir = bundleProject();
  swarm = await openBundleSwarm(dir);
  rootId = await runRelay(swarm, dir);
  forkId = (await swarm.fork(rootId, { at: 'b' })).run_id;
  expect((await swarm.runToCompletion(forkId)).run.status).toBe('completed');
  const grandId = (await swarm.fork(forkId, { at: 'c' })).run_id;
  expect((await swarm.runToCompletion(grandId)).run.status).toBe('completed');
  const otherId = await swarm.startRun('relay', { message: 'another' });
  await swarm.runToCompletion(otherId);
  root = await exportRun(swarm, rootId);
  fork = await exportRun(swarm, forkId);
  grandchild = await exportRun(swarm, grandId);
  other = await exportRun(swarm, otherId);
}, 90_000);
afterAll(async () => {
  await swarm?.close();
  if (dir) removeProject(dir);
});

describe('a fork’s bundle', () => {
  it('names its parent: node.json, result.json, certificate.json, run.json', async () => {
    const b = await readBundle(fork.bytes);
    expect(b.json('node.json')).toMatchObject({ node_id: forkId, parent_node_id: rootId, state_db: { ratchet_step: 1 } });
    expect(b.json('result.json')).toMatchObject({ operation: 'fork', restore_mode: 'checkpoint', parent_node_id: rootId });
    expect(b.json('certificate.json')).toMatchObject({ parent_state: { state_id: rootId, bundle_sha256: root.bundle_sha256, ratchet_step: 1 } });
    expect(b.json('run.json')).toMatchObject({ fork: { parent_run_id: rootId, at_step: 'b', turn: null, depth: 1 } });
    // The copied step records its one attempt as copied.
    expect(b.json<{ attempts: Array<{ outcome: string }> }>('steps/a.json').attempts.map((a) => a.outcome)).toEqual(['copied']);
    expect(await bundleDigestOf(swarm, rootId)).toBe(root.bundle_sha256);
    const g = await readBundle(grandchild.bytes);
    expect(g.json('certificate.json')).toMatchObject({ parent_state: { state_id: forkId, bundle_sha256: fork.bundle_sha256, ratchet_step: 2 } });
  });

  it('verifies alone (the link unchecked) and with its parent (checked)', async () => {
    const alone = await verifyBundle(fork.bytes);
    expect(alone.ok, alone.problem?.message).toBe(true);
    expect(alone.parent).toMatchObject({ state_id: rootId, checked: false });
    expect(alone.notes.join(' ')).toMatch(/parent link was not checked/);
    const linked = await verifyBundle(fork.bytes, { parent: root.bytes, publicKey: root.signer.public_key });
    expect(linked.ok, linked.problem?.message).toBe(true);
    expect(linked.parent?.checked).toBe(true);
    expect(linked.checks).toContain('parent');
    const deeper = await verifyBundle(grandchild.bytes, { parent: fork.bytes });
    expect(deeper.ok, deeper.problem?.message).toBe(true);
  });

  it('the wrong parent, a tampered parent, a root run given a parent', async () => {
    const wrong = await verifyBundle(fork.bytes, { parent: other.bytes });
    expect([wrong.exit_code, wrong.problem?.path, wrong.problem?.field]).toEqual([3, 'certificate.json', 'parent_state.state_id']);
    const skipped = await verifyBundle(grandchild.bytes, { parent: root.bytes });
    expect(skipped.problem?.field).toBe('parent_state.state_id');
    const tamperedParent = await rewrite(root.bytes, { 'result.json': entryJson({ ...(await jsonEntry(root.bytes, 'result.json')), status: 'failed' }) });
    const t = await verifyBundle(fork.bytes, { parent: tamperedParent });
    expect([t.exit_code, t.problem?.path]).toEqual([3, 'parent']);
    expect(t.problem?.message).toMatch(/^parent: the parent bundle does not verify/);
    const notAFork = await verifyBundle(other.bytes, { parent: root.bytes });
    expect([notAFork.exit_code, notAFork.problem?.field]).toEqual([3, 'parent_state.state_id']);
  });

  it('a forged parent digest in the fork is caught by the signature, and by the parent', async () => {
    const cert = await jsonEntry<Record<string, { bundle_sha256: string }>>(fork.bytes, 'certificate.json');
    const forged = await rewrite(fork.bytes, { 'certificate.json': entryJson({ ...cert, parent_state: { ...cert.parent_state, bundle_sha256: other.bundle_sha256 } }) });
    const r = await verifyBundle(forged, { parent: root.bytes });
    expect(r.exit_code).toBe(3);
    expect([r.problem?.path, r.problem?.field]).toEqual(['certificate.json', 'parent_state.bundle_sha256']);
  });

  it('a cancelled run that never started exports and verifies (its start time is its creation)', async () => {
    const id = await swarm.startRun('relay', { message: 'cancel me' });
    await swarm.cancel(id);
    const out = await exportRun(swarm, id);
    const b = await readBundle(out.bytes);
    expect(b.json('run.json')).toMatchObject({ status: 'cancelled', started_at: null, output: {} });
    const cert = b.json<{ runtime: { started_at: string }; timestamp: string }>('certificate.json');
    expect(cert.runtime.started_at).toBe(b.json<{ created_at: string }>('run.json').created_at);
    const r = await verifyBundle(out.bytes);
    expect(r.ok, r.problem?.message).toBe(true);
  });
});
