/**
 * The offline verifier against tampered bundles: every kind of field (each state entry, manifest
 * entries, event lines, result.json and certificate.json fields, the signature, the signer, the tar's
 * entries, headers and bytes, canonical JSON) must fail with exit 3 and a report naming the entry
 * and field; bytes that are no bundle fail with exit 2. One real run (SQLite, with an llm step) is
 * exported once; each case rewrites its tar. Where a forger would keep manifest.json in step with
 * an edit, the case does too, so the check behind the manifest is the one that must fire.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tar from 'tar-stream';
import { canonicalJson } from '../src/core/canonical-json.js';
import { exportRun } from '../src/bundles/export.js';
import { certificateSignedBytes, entryJson } from '../src/bundles/model.js';
import { readTar, writeTar } from '../src/bundles/tar.js';
import { verifyBundle, type VerifyBundleReport } from '../src/bundles/verify.js';
import type { Swarm } from '../src/swarm.js';
import { bundleProject, entriesOf, jsonEntry, openBundleSwarm, rewrite, runRelay } from './helpers/bundle-fixtures.js';
import { removeProject } from './helpers/project.js';

let dir: string;
let swarm: Swarm;
let good: Buffer;
let publicKey: string;

beforeAll(async () => {
  dir = bundleProject();
  swarm = await openBundleSwarm(dir);
  const id = await runRelay(swarm, dir);
  const out = await exportRun(swarm, id);
  good = out.bytes;
  publicKey = out.signer.public_key;
}, 60_000);
afterAll(async () => {
  await swarm?.close();
  if (dir) removeProject(dir);
});

type Json = Record<string, unknown>;

/** A JSON entry with one change, in canonical form. */
async function edited(path: string, change: (v: Json) => void): Promise<string> {
  const v = await jsonEntry<Json>(good, path);
  change(v);
  return entryJson(v).toString();
}

/** A JSONL entry with line `n` (1-based) changed, every line canonical. */
async function editedLine(path: string, n: number, change: (v: Json) => void): Promise<string> {
  const lines = String((await entriesOf(good)).get(path)).split('\n').slice(0, -1);
  const v = JSON.parse(lines[n - 1] as string) as Json;
  change(v);
  lines[n - 1] = canonicalJson(v);
  return `${lines.join('\n')}\n`;
}

function expectMismatch(r: VerifyBundleReport, path: string, field?: string | RegExp): void {
  expect(r.ok, r.problem?.message).toBe(false);
  expect(r.exit_code).toBe(3);
  expect(r.problem?.path, r.problem?.message).toBe(path);
  if (typeof field === 'string') expect(r.problem?.field, r.problem?.message).toBe(field);
  else if (field) expect(r.problem?.message).toMatch(field);
  expect(r.problem?.message.startsWith(path)).toBe(true);
}

/** Change the first string leaf of a value (same length when possible) so the JSON stays canonical. */
function changeLeaf(v: unknown): boolean {
  if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v as Json)) {
      if (typeof x === 'string' && x.length > 0) {
        (v as Json)[k] = `${x.slice(0, -1)}${x.endsWith('Z') ? 'Y' : 'Z'}`;
        return true;
      }
      if (changeLeaf(x)) return true;
    }
  }
  return false;
}

describe('a bundle as exported', () => {
  it('verifies, pinned and unpinned', async () => {
    const unpinned = await verifyBundle(good);
    expect(unpinned.ok, unpinned.problem?.message).toBe(true);
    expect(unpinned.signer?.pinned).toBe(false);
    expect(unpinned.notes.join(' ')).toMatch(/unpinned/);
    const pinned = await verifyBundle(good, { publicKey });
    expect(pinned.ok).toBe(true);
    expect(pinned.checks).toEqual(['tar', 'canonical-json', 'manifest', 'schemas', 'events-chain', 'state', 'result', 'certificate', 'signature', 'pinned-key']);
  });
});

describe('tampered state entries (manifest.json left as it was)', () => {
  const statePaths = ['agents.json', 'events.jsonl', 'node.json', 'run.json', 'steps/a.json', 'steps/b.json', 'steps/c.json', 'transcripts/b.jsonl', 'trigger.json', 'workflow.json'];
  it.each(statePaths)('%s: a changed value fails its manifest digest', async (path) => {
    const text = String((await entriesOf(good)).get(path));
    let changed: string;
    if (path.endsWith('.jsonl')) {
      const lines = text.split('\n').slice(0, -1).map((l) => JSON.parse(l) as Json);
      changeLeaf(lines[0]);
      changed = lines.map((l) => `${canonicalJson(l)}\n`).join('');
    } else {
      const v = JSON.parse(text) as Json;
      expect(changeLeaf(v)).toBe(true);
      changed = entryJson(v).toString();
    }
    const r = await verifyBundle(await rewrite(good, { [path]: changed }));
    expectMismatch(r, path, /(sha256|size) .*does not match manifest\.json/);
  });

  it('a step output of another length: size does not match', async () => {
    const r = await verifyBundle(await rewrite(good, { 'steps/c.json': await edited('steps/c.json', (v) => ((v.outputs as Json).echoed = 'Told you.')) }));
    expectMismatch(r, 'steps/c.json', 'size');
  });

  it('the same length: sha256 does not match', async () => {
    const r = await verifyBundle(await rewrite(good, { 'steps/c.json': await edited('steps/c.json', (v) => ((v.outputs as Json).echoed = 'Toad.')) }));
    expectMismatch(r, 'steps/c.json', 'sha256');
    expect(r.problem?.message).toBe('steps/c.json: sha256 does not match manifest.json');
  });
});

describe('tampered manifest.json', () => {
  it('an entry’s sha256', async () => {
    const r = await verifyBundle(await rewrite(good, { 'manifest.json': await edited('manifest.json', (m) => ((m.files as Json[])[0] as Json).sha256 = `sha256:${'0'.repeat(64)}`) }));
    expectMismatch(r, 'agents.json', 'sha256');
  });
  it('an entry’s size', async () => {
    const r = await verifyBundle(await rewrite(good, { 'manifest.json': await edited('manifest.json', (m) => ((m.files as Json[])[0] as Json).size = 1) }));
    expectMismatch(r, 'agents.json', 'size');
  });
  it('an entry left out', async () => {
    const r = await verifyBundle(await rewrite(good, { 'manifest.json': await edited('manifest.json', (m) => (m.files = (m.files as Json[]).filter((f) => f.path !== 'steps/a.json'))) }));
    expectMismatch(r, 'steps/a.json', /not listed in manifest\.json/);
  });
  it('an entry the bundle does not hold', async () => {
    const r = await verifyBundle(await rewrite(good, { 'manifest.json': await edited('manifest.json', (m) => (m.files as Json[]).push({ path: 'zz.json', size: 1, sha256: `sha256:${'0'.repeat(64)}` })) }));
    expectMismatch(r, 'manifest.json', 'files');
  });
  it('its run_id', async () => {
    const r = await verifyBundle(await rewrite(good, { 'manifest.json': await edited('manifest.json', (m) => (m.run_id = 'another-run')) }));
    expectMismatch(r, 'run.json', 'id');
  });
});

describe('tampered events.jsonl (manifest.json kept in step)', () => {
  it.each([
    ['seq', (e: Json): unknown => (e.seq = 99), 'line 3: seq'],
    ['prev_hash', (e: Json): unknown => (e.prev_hash = 'f'.repeat(64)), 'line 3: prev_hash'],
    ['hash', (e: Json): unknown => (e.hash = 'f'.repeat(64)), 'line 3: hash'],
    ['data', (e: Json): unknown => (e.data = { forged: true }), 'line 3: hash'],
    ['type', (e: Json): unknown => (e.type = 'STEP_SKIPPED'), 'line 3: hash'],
    ['at', (e: Json): unknown => (e.at = '2001-01-01T00:00:00.000Z'), 'line 3: hash'],
  ] as const)('line 3 %s', async (_name, change, field) => {
    const r = await verifyBundle(await rewrite(good, { 'events.jsonl': await editedLine('events.jsonl', 3, change) }, { relist: true }));
    expectMismatch(r, 'events.jsonl', field);
    expect(r.problem?.message).toMatch(/^events\.jsonl line 3: /);
  });
  it('a line removed', async () => {
    const lines = String((await entriesOf(good)).get('events.jsonl')).split('\n').slice(0, -1);
    lines.splice(1, 1);
    const r = await verifyBundle(await rewrite(good, { 'events.jsonl': `${lines.join('\n')}\n` }, { relist: true }));
    expectMismatch(r, 'events.jsonl', 'line 2: seq');
  });
  it('a chain recomputed after a change still disagrees with the state', async () => {
    // A forger who recomputes the whole chain: the events verify, the run's status does not.
    const { chainEvents } = await import('../src/bundles/model.js');
    const lines = String((await entriesOf(good)).get('events.jsonl')).split('\n').slice(0, -1).map((l) => JSON.parse(l) as Json & { seq: number; type: string; step_id: string | null; at: string; data: unknown });
    const last = lines[lines.length - 1] as (typeof lines)[number];
    last.type = 'RUN_FAILED';
    const rechained = chainEvents(lines).map((e) => `${canonicalJson(e)}\n`).join('');
    const r = await verifyBundle(await rewrite(good, { 'events.jsonl': rechained }, { relist: true }));
    expectMismatch(r, 'run.json', 'status');
  });
});

describe('tampered state that keeps the manifest in step', () => {
  it('run.json output', async () => {
    const r = await verifyBundle(await rewrite(good, { 'run.json': await edited('run.json', (v) => ((v.output as Json).c = { echoed: 'forged' })) }, { relist: true }));
    expectMismatch(r, 'run.json', 'output.c');
  });
  it('run.json status', async () => {
    const r = await verifyBundle(await rewrite(good, { 'run.json': await edited('run.json', (v) => (v.status = 'failed')) }, { relist: true }));
    expectMismatch(r, 'run.json', 'status');
  });
  it('trigger.json data', async () => {
    const r = await verifyBundle(await rewrite(good, { 'trigger.json': await edited('trigger.json', (v) => (v.data = { message: 'forged' })) }, { relist: true }));
    expectMismatch(r, 'trigger.json', 'data');
  });
  it('workflow.json digest', async () => {
    const r = await verifyBundle(await rewrite(good, { 'workflow.json': await edited('workflow.json', (v) => (v.digest = `sha256:${'1'.repeat(64)}`)) }, { relist: true }));
    expectMismatch(r, 'run.json', 'workflow.digest');
  });
  it('a step that is not final (its digest is bound by node.json)', async () => {
    const r = await verifyBundle(await rewrite(good, { 'steps/b.json': await edited('steps/b.json', (v) => ((v.outputs as Json).content = 'Lied.')) }, { relist: true }));
    expectMismatch(r, 'node.json', 'workspace.artifact_hash');
  });
  it.each([
    ['node_id', (v: Json): unknown => (v.node_id = 'x')],
    ['parent_node_id', (v: Json): unknown => (v.parent_node_id = 'x')],
    ['created_at', (v: Json): unknown => (v.created_at = '2001-01-01T00:00:00.000Z')],
    ['state_db.snapshot_hash', (v: Json): unknown => ((v.state_db as Json).snapshot_hash = `sha256:${'2'.repeat(64)}`)],
    ['state_db.ratchet_step', (v: Json): unknown => ((v.state_db as Json).ratchet_step = 4)],
    ['state_db.state_id', (v: Json): unknown => ((v.state_db as Json).state_id = 'x')],
    ['workspace.artifact_ref', (v: Json): unknown => ((v.workspace as Json).artifact_ref = 'x/')],
  ] as const)('node.json %s', async (field, change) => {
    const r = await verifyBundle(await rewrite(good, { 'node.json': await edited('node.json', change) }, { relist: true }));
    expectMismatch(r, 'node.json', field);
  });
  it('node.json against its schema', async () => {
    const r = await verifyBundle(await rewrite(good, { 'node.json': await edited('node.json', (v) => (v.schema_version = 'v0')) }, { relist: true }));
    expectMismatch(r, 'node.json', /does not validate against the node schema/);
  });
});

describe('tampered result.json', () => {
  const changes: Array<[string, unknown]> = [
    ['run_id', 'x'],
    ['status', 'failed'],
    ['operation', 'fork'],
    ['node_id', 'x'],
    ['parent_node_id', 'x'],
    ['state_id', 'x'],
    ['restore_mode', 'checkpoint'],
    ['bundle_ref', 'x'],
    ['bundle_sha256', `sha256:${'3'.repeat(64)}`],
    ['certificate_ref', 'x'],
    ['artifact_hash', `sha256:${'4'.repeat(64)}`],
  ];
  it.each(changes)('%s', async (field, value) => {
    const r = await verifyBundle(await rewrite(good, { 'result.json': await edited('result.json', (v) => (v[field] = value)) }));
    expectMismatch(r, 'result.json', field);
  });
  it('against its schema', async () => {
    const r = await verifyBundle(await rewrite(good, { 'result.json': await edited('result.json', (v) => delete v.artifact_hash) }));
    expectMismatch(r, 'result.json', /does not validate against the result schema/);
  });
  it('a field added (the contract schema allows more; a Swarm bundle has exactly these)', async () => {
    const r = await verifyBundle(await rewrite(good, { 'result.json': await edited('result.json', (v) => (v.extra = 'evil')) }), { publicKey });
    expectMismatch(r, 'result.json', 'extra');
    expect(r.problem?.message).toBe("result.json: extra is not a field of a Swarm bundle's result.json");
  });
});

describe('tampered certificate.json', () => {
  const fields: Array<[string, unknown]> = [
    ['job_id', 'x'],
    ['request_hash', `sha256:${'5'.repeat(64)}`],
    ['mode', 'state-license'],
    ['parent_state.state_id', 'x'],
    ['parent_state.bundle_sha256', `sha256:${'6'.repeat(64)}`],
    ['parent_state.ratchet_step', 3],
    ['result.response_sha256', `sha256:${'7'.repeat(64)}`],
    ['result.response_locator', 'run.json#/input'],
    ['result.new_state.state_id', 'x'],
    ['result.new_state.bundle_sha256', `sha256:${'8'.repeat(64)}`],
    ['result.new_state.bundle_manifest_sha256', `sha256:${'9'.repeat(64)}`],
    ['runtime.workflow_ref', 'relay@9.9.9#sha256:00'],
    ['runtime.runner_class', 'swarm-local/postgres'],
    ['runtime.started_at', '2001-01-01T00:00:00.000Z'],
    ['runtime.finished_at', '2001-01-01T00:00:00.000Z'],
    ['timestamp', '2001-01-01T00:00:00.000Z'],
  ];
  const set = (v: Json, path: string, value: unknown): void => {
    const keys = path.split('.');
    let o = v;
    for (const k of keys.slice(0, -1)) o = o[k] as Json;
    o[keys[keys.length - 1] as string] = value;
  };
  it.each(fields)('%s', async (field, value) => {
    const r = await verifyBundle(await rewrite(good, { 'certificate.json': await edited('certificate.json', (v) => set(v, field, value)) }));
    expectMismatch(r, 'certificate.json', field);
  });
  it('type (a contract constant: the schema)', async () => {
    const r = await verifyBundle(await rewrite(good, { 'certificate.json': await edited('certificate.json', (v) => (v.type = 'other')) }));
    expectMismatch(r, 'certificate.json', /does not validate against the certificate schema/);
  });
  it('the signature value', async () => {
    const r = await verifyBundle(await rewrite(good, { 'certificate.json': await edited('certificate.json', (v) => (((v.signature as Json).value as string) = Buffer.alloc(64, 1).toString('base64'))) }));
    expectMismatch(r, 'certificate.json', 'signature');
    expect(r.problem?.message).toBe('certificate.json: signature does not verify');
  });
  it('the signature’s public key swapped for another', async () => {
    const other = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64');
    const r = await verifyBundle(await rewrite(good, { 'certificate.json': await edited('certificate.json', (v) => ((v.signature as Json).public_key = other)) }));
    expectMismatch(r, 'certificate.json', 'signature');
  });
  it('the signature’s alg, and no signature at all', async () => {
    expectMismatch(await verifyBundle(await rewrite(good, { 'certificate.json': await edited('certificate.json', (v) => ((v.signature as Json).alg = 'rsa')) })), 'certificate.json', 'signature.alg');
    expectMismatch(await verifyBundle(await rewrite(good, { 'certificate.json': await edited('certificate.json', (v) => delete v.signature) })), 'certificate.json', 'signature');
  });
  it('re-signed by another key: verifies unpinned, fails against the pinned key', async () => {
    const { privateKey, publicKey: pub } = generateKeyPairSync('ed25519');
    const otherB64 = pub.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64');
    const cert = await jsonEntry<Json>(good, 'certificate.json');
    const unsigned = { ...cert, signature: undefined };
    const value = sign(null, certificateSignedBytes(unsigned), privateKey).toString('base64');
    const forged = await rewrite(good, { 'certificate.json': entryJson({ ...cert, signature: { alg: 'ed25519', key_name: 'runs', public_key: otherB64, value } }) });
    expect((await verifyBundle(forged)).ok).toBe(true);
    const r = await verifyBundle(forged, { publicKey });
    expectMismatch(r, 'certificate.json', 'signature.public_key');
    expect(r.problem?.message).toMatch(/not the pinned public key/);
  });
  it('a field added: signed ones break the signature, the signature object (not signed itself) is checked field by field', async () => {
    for (const [field, change] of [
      ['signature', (v: Json) => (v.extra = 'evil')],
      ['signature', (v: Json) => (((v.result as Json).new_state as Json).extra = 1)],
      ['signature.extra', (v: Json) => ((v.signature as Json).extra = 'evil')],
    ] as Array<[string, (v: Json) => void]>) {
      const r = await verifyBundle(await rewrite(good, { 'certificate.json': await edited('certificate.json', change) }), { publicKey });
      expectMismatch(r, 'certificate.json', field);
    }
  });
  it('the signature value in another base64 spelling of the same bytes (junk, unused bits)', async () => {
    const value = ((await jsonEntry<Json>(good, 'certificate.json')).signature as Json).value as string;
    expect(value.endsWith('==')).toBe(true);
    // Buffer reads both as the same 64 bytes: '<?' is skipped, and the last digit's low 4 bits are unused.
    const last = value.at(-3) as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const sibling = alphabet[alphabet.indexOf(last) ^ 1] as string;
    for (const spelling of [`${value.slice(0, -2)}<?`, `${value.slice(0, -3)}${sibling}==`]) {
      expect(Buffer.from(spelling, 'base64').equals(Buffer.from(value, 'base64'))).toBe(true);
      const r = await verifyBundle(await rewrite(good, { 'certificate.json': await edited('certificate.json', (v) => ((v.signature as Json).value = spelling)) }), { publicKey });
      expectMismatch(r, 'certificate.json', 'signature.value');
    }
  });
  it('a key name that is not one (the name is a label the signature does not cover)', async () => {
    const r = await verifyBundle(await rewrite(good, { 'certificate.json': await edited('certificate.json', (v) => ((v.signature as Json).key_name = 'two words')) }), { publicKey });
    expectMismatch(r, 'certificate.json', 'signature.key_name');
  });
  it('bytes that are not UTF-8 in an entry', async () => {
    const text = String((await entriesOf(good)).get('certificate.json'));
    const at = text.indexOf('"runs"');
    expect(at).toBeGreaterThan(0);
    const bytes = Buffer.from(text);
    bytes[at + 1] = 0xff; // "runs" -> "\xffuns": decoded, U+FFFD
    const r = await verifyBundle(await rewrite(good, { 'certificate.json': bytes }), { publicKey });
    expectMismatch(r, 'certificate.json', /is not valid UTF-8/);
  });
  it('a wrong pinned public key', async () => {
    const other = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64');
    expectMismatch(await verifyBundle(good, { publicKey: other }), 'certificate.json', 'signature.public_key');
  });
});

describe('the tar itself', () => {
  it('entries reordered', async () => {
    const r = await verifyBundle(await rewrite(good, {}, { order: (e) => [e[1], e[0], ...e.slice(2)] as typeof e }));
    expectMismatch(r, 'tar', 'order');
  });
  it('the certificate before result.json', async () => {
    const r = await verifyBundle(await rewrite(good, {}, { order: (e) => [...e.slice(0, -2), e[e.length - 1], e[e.length - 2]] as typeof e }));
    expectMismatch(r, 'tar', 'order');
  });
  it('an entry added (JSON, and not JSON)', async () => {
    expectMismatch(await verifyBundle(await rewrite(good, { 'extra.json': '{}\n' })), 'extra.json', /not listed in manifest\.json/);
    expectMismatch(await verifyBundle(await rewrite(good, { 'notes.txt': 'hi' })), 'notes.txt', /not an entry a bundle holds/);
  });
  it('an entry twice', async () => {
    const entries = (await readTar(good)).entries;
    const r = await verifyBundle(await writeTar([entries[0], ...entries] as typeof entries));
    expectMismatch(r, 'tar', 'entries');
  });
  it('entries removed', async () => {
    expectMismatch(await verifyBundle(await rewrite(good, { 'steps/a.json': null })), 'manifest.json', 'files');
    expectMismatch(await verifyBundle(await rewrite(good, { 'certificate.json': null })), 'certificate.json', /missing/);
    expectMismatch(await verifyBundle(await rewrite(good, { 'result.json': null })), 'result.json', /missing/);
  });
  it('truncated', async () => {
    const r = await verifyBundle(good.subarray(0, Math.floor(good.length / 2)));
    expectMismatch(r, 'tar', 'end');
  });
  it('the end blocks cut off, or bytes added after them', async () => {
    expectMismatch(await verifyBundle(good.subarray(0, good.length - 1024)), 'tar', 'bytes');
    expectMismatch(await verifyBundle(Buffer.concat([good, Buffer.alloc(512)])), 'tar', 'bytes');
  });
  it.each([
    ['mode', { mode: 0o755 }],
    ['mtime', { mtime: new Date(1_700_000_000_000) }],
    ['uid', { uid: 1000 }],
    ['gid', { gid: 1000 }],
    ['uname', { uname: 'root' }],
    ['gname', { gname: 'wheel' }],
  ] as const)('a header with another %s', async (field, header) => {
    const entries = (await readTar(good)).entries;
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    const done = (async () => {
      for await (const c of pack) chunks.push(Buffer.from(c as Uint8Array));
    })();
    for (const [i, e] of entries.entries()) {
      await new Promise<void>((res, rej) => pack.entry({ name: e.path, size: e.data.length, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0), uname: '', gname: '', ...(i === 2 ? header : {}) }, e.data, (err) => (err ? rej(err) : res())));
    }
    pack.finalize();
    await done;
    const r = await verifyBundle(Buffer.concat(chunks));
    expectMismatch(r, entries[2]?.path as string, `tar header ${field}`);
  });
  it('JSON that is not canonical', async () => {
    const pretty = `${JSON.stringify(await jsonEntry(good, 'run.json'), null, 2)}\n`;
    expectMismatch(await verifyBundle(await rewrite(good, { 'run.json': pretty }, { relist: true })), 'run.json', /not canonical JSON/);
    const lines = String((await entriesOf(good)).get('events.jsonl')).split('\n').slice(0, -1);
    lines[1] = JSON.stringify(JSON.parse(lines[1] as string), null, 1).replace(/\n/g, '');
    expectMismatch(await verifyBundle(await rewrite(good, { 'events.jsonl': `${lines.join('\n')}\n` }, { relist: true })), 'events.jsonl', 'line 2');
    const noNewline = String((await entriesOf(good)).get('result.json')).trimEnd();
    expectMismatch(await verifyBundle(await rewrite(good, { 'result.json': noNewline })), 'result.json', /not canonical JSON/);
  });
});

describe('canonical JSON of the wrong shape', () => {
  it.each([
    ['events.jsonl', 'null\n'],
    ['run.json', '[]\n'],
    ['workflow.json', '"x"\n'],
    ['steps/a.json', 'null\n'],
  ])('%s holding %j: exit 3, no crash', async (path, text) => {
    const r = await verifyBundle(await rewrite(good, { [path]: text }, { relist: true }));
    expect(r.ok).toBe(false);
    expect(r.exit_code).toBe(3);
  });
});

describe('cut short anywhere: exit 3', () => {
  it('cut after some entries but before manifest.json: the same verdict as cut after it', async () => {
    const cut = good.subarray(0, 3000);
    const read = await readTar(cut);
    // The layout this case needs: entries read, then the tar breaks off, manifest.json not among them.
    expect(read.entries.length).toBeGreaterThan(0);
    expect(read.error).toBeDefined();
    expect(read.entries.some((e) => e.path === 'manifest.json')).toBe(false);
    const r = await verifyBundle(cut);
    expect(r.ok).toBe(false);
    expect(r.exit_code).toBe(3);
    expect(r.problem?.message).toMatch(/^the archive is cut short or corrupt after entry \S+ \(.*\), before its manifest\.json$/);
    // Cut after manifest.json: exit 3 too.
    expect((await verifyBundle(good.subarray(0, Math.floor(good.length / 2)))).exit_code).toBe(3);
  });
});

describe('a newer format: exit 2, named', () => {
  it('a bundle of a later format says a newer Swarm wrote it', async () => {
    const r = await verifyBundle(await rewrite(good, { 'manifest.json': await edited('manifest.json', (m) => (m.format = 'swarm-run-bundle/2')) }));
    expect(r.exit_code).toBe(2);
    expect(r.problem?.message).toBe('the bundle is format swarm-run-bundle/2, written by a newer Swarm; this one reads swarm-run-bundle/1: upgrade Swarm to verify or import it');
  });
});

describe('not a bundle: exit 2', () => {
  it.each([
    ['random bytes', async () => Buffer.from('this is not a tar archive at all '.repeat(64))],
    ['empty', async () => Buffer.alloc(0)],
    ['a tar without manifest.json', async () => writeTar([{ path: 'a.json', data: Buffer.from('{}\n') }])],
    ['another format', async () => rewrite(good, { 'manifest.json': await edited('manifest.json', (m) => (m.format = 'other/1')) })],
    ['cut before its first entry ends', async () => good.subarray(0, 600)],
  ])('%s', async (_name, make) => {
    const r = await verifyBundle(await make());
    expect(r.ok).toBe(false);
    expect(r.exit_code).toBe(2);
    expect(r.problem?.message).toMatch(/not a bundle/);
  });
});
