/**
 * A fork's bundle names its parent as it was when the fork was made, as real processes on a real
 * SQLite file: a run fails at a gate, is forked, both are exported; the gate opens and the parent is
 * retried. The fork exports to the same bytes again; `swarm verify --parent` passes against the
 * parent's bundle of the fork point (`match: state`) and against its later bundle (`events-prefix`,
 * with a note), and refuses a parent bundle older than the fork point. A bundle made the old way
 * (RUN_FORKED without the parent's state) still verifies against the parent's bundle of its state,
 * and says what to keep when given a later one.
 *
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import { sign as edSign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../src/bundles/build.js';
import { runSnapshot } from '../src/bundles/export.js';
import { EXAMPLES, openProject, removeProject, runCli, tempProject, writeAgent, writeWorkflow, type CliResult } from './helpers/project.js';

const GATE = `name: gate
version: 1.0.0
runtime:
  type: node
  entry: main.js
  timeout_seconds: 30
inputs:
  - name: file
    type: string
outputs:
  - name: opened
    type: boolean
`;
const GATE_JS = `const fs = require('node:fs');
const [i, o] = process.argv.slice(2);
const { file } = JSON.parse(fs.readFileSync(i, 'utf8'));
if (!fs.existsSync(file)) { console.error('the gate is closed: ' + file + ' does not exist'); process.exit(1); }
fs.writeFileSync(o, JSON.stringify({ opened: true }));
`;
const GATED = `name: gated
version: 1.0.0
steps:
  - id: pre
    agent: echo@1.0.0
    inputs:
      message: "pre \${trigger.topic}"
  - id: gate
    agent: gate@1.0.0
    depends_on: [pre]
    inputs:
      file: \${trigger.file}
  - id: post
    agent: echo@1.0.0
    depends_on: [pre]
    inputs:
      message: "post \${steps.pre.outputs.echoed}"
`;

interface Report {
  ok: boolean;
  exit_code: number;
  problem?: { path: string; field: string | null; message: string };
  parent?: { state_id: string; bundle_sha256: string; checked: boolean; match?: string };
  bundle_sha256?: string;
  notes: string[];
}

let dir: string;
const cli = (args: string[]): Promise<CliResult> => runCli(args, dir);
const file = (name: string): Buffer => readFileSync(join(dir, name));
async function exportTo(runId: string, name: string): Promise<void> {
  const r = await cli(['runs', 'export', runId, '-o', name]);
  expect(r.code, r.stderr).toBe(0);
}
async function verify(bundle: string, parent: string): Promise<Report> {
  const r = await cli(['verify', bundle, '--parent', parent, '--json']);
  const report = JSON.parse(r.stdout) as Report;
  expect(r.code).toBe(report.exit_code);
  return report;
}
/** Fork without --wait, then run it with the command the fork names. */
async function fork(parent: string): Promise<string> {
  const f = await cli(['runs', 'fork', parent, '--at', 'post']);
  expect(f.code, f.stderr).toBe(0);
  const id = f.stdout.trim();
  const ran = await cli(['runs', 'resume', id]);
  // The gate runs fresh in the fork: it fails while the file is missing (exit 4), else completes.
  expect([0, 4], ran.stderr).toContain(ran.code);
  return id;
}

let parentId: string;
let forkId: string;
let laterForkId: string;

beforeAll(async () => {
  dir = tempProject('name: fork-parent-state\nsandbox: none\n');
  writeAgent(dir, 'gate', GATE, { 'main.js': GATE_JS });
  writeWorkflow(dir, 'gated', GATED);
  for (const args of [['agent', 'register', join(EXAMPLES, 'agents', 'echo')], ['agent', 'register', join(dir, 'agents', 'gate')], ['workflow', 'register', join(dir, 'workflows', 'gated')]]) {
    const r = await cli(args);
    expect(r.code, r.stderr).toBe(0);
  }
  const ran = await cli(['run', 'gated', JSON.stringify({ topic: 'x', file: join(dir, 'open') }), '--json']);
  expect(ran.code, ran.stderr).toBe(4);
  parentId = (JSON.parse(ran.stdout) as { run_id: string }).run_id;

  forkId = await fork(parentId);
  await exportTo(parentId, 'g1.tar');
  await exportTo(forkId, 'f1.tar');
  writeFileSync(join(dir, 'open'), '');
  const retried = await cli(['runs', 'retry', parentId]);
  expect(retried.code, retried.stderr).toBe(0);
  await exportTo(parentId, 'g2.tar');
  await exportTo(forkId, 'f2.tar');
  laterForkId = await fork(parentId);
  await exportTo(laterForkId, 'f3.tar');
}, 180_000);
afterAll(() => {
  if (dir) removeProject(dir);
});

describe("a fork's bundle and its parent retried after the fork", () => {
  it('exports to the same bytes before and after the parent is retried; the parent does not', () => {
    expect(file('g2.tar').equals(file('g1.tar'))).toBe(false);
    expect(file('f2.tar').equals(file('f1.tar'))).toBe(true);
  });

  it('verifies against the parent bundle of the fork point (state) and against its later bundle (events prefix, with a note)', async () => {
    const exact = await verify('f1.tar', 'g1.tar');
    expect(exact.ok, exact.problem?.message).toBe(true);
    expect(exact.parent).toMatchObject({ state_id: parentId, checked: true, match: 'state' });

    const later = await verify('f1.tar', 'g2.tar');
    expect(later.ok, later.problem?.message).toBe(true);
    expect(later.parent).toMatchObject({ state_id: parentId, checked: true, match: 'events-prefix' });
    expect(later.notes.join('\n')).toMatch(/the parent went on after the fork: its bundle's state sha256:[0-9a-f]{64} is not the state the fork was made from \(sha256:[0-9a-f]{64}\), but its events\.jsonl lines 1-\d+ are the log the fork was made from/);
    const text = await cli(['verify', 'f1.tar', '--parent', 'g2.tar']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("(checked: the parent bundle is a later state, whose log starts with the fork point's)");
  }, 60_000);

  it('a fork made after the retry verifies against the later parent bundle, and not against the older one', async () => {
    const now = await verify('f3.tar', 'g2.tar');
    expect(now.ok, now.problem?.message).toBe(true);
    expect(now.parent?.match).toBe('state');
    const older = await verify('f3.tar', 'g1.tar');
    expect(older.exit_code).toBe(3);
    expect([older.problem?.path, older.problem?.field]).toEqual(['certificate.json', 'parent_state.bundle_sha256']);
    expect(older.problem?.message).toMatch(/events\.jsonl has \d+ line\(s\), not the fork point's line \d+: it is neither the parent's state when the fork was made nor a later one/);
  }, 60_000);

  it('a fork bundle made the old way (no parent state in RUN_FORKED) verifies as before, and says what to keep', async () => {
    // What an earlier Swarm exported for this fork before the retry: RUN_FORKED with
    // parent_bundle_sha256 null and no head, and the parent's digest as it was at export.
    const g1Digest = (await verify('f1.tar', 'g1.tar')).parent?.bundle_sha256 as string;
    const swarm = await openProject(dir);
    try {
      const snapshot = await runSnapshot(swarm, (await swarm.getRun(forkId)).run);
      const events = snapshot.events.map((e) => {
        if (e.type !== 'RUN_FORKED') return e;
        const { parent_bundle_head: _head, ...data } = e.data as Record<string, unknown>;
        return { ...e, data: { ...data, parent_bundle_sha256: null } };
      });
      const key = await swarm.signingKeys.getOrCreate('runs');
      const old = await buildBundle({ ...snapshot, events }, (bytes) => ({ alg: 'ed25519', key_name: key.name, public_key: key.public_key, value: edSign(null, bytes, key.private_key).toString('base64') }));
      writeFileSync(join(dir, 'old.tar'), old.bytes);
      // A forged RUN_FORKED: its recorded parent state is not the one run.json names (re-signed: only the state check can tell).
      const forged = await buildBundle(
        { ...snapshot, events: snapshot.events.map((e) => (e.type === 'RUN_FORKED' ? { ...e, data: { ...(e.data as object), parent_bundle_sha256: `sha256:${'0'.repeat(64)}` } } : e)) },
        (bytes) => ({ alg: 'ed25519', key_name: key.name, public_key: key.public_key, value: edSign(null, bytes, key.private_key).toString('base64') }),
      );
      writeFileSync(join(dir, 'forged.tar'), forged.bytes);
    } finally {
      await swarm.close();
    }
    const exact = await verify('old.tar', 'g1.tar');
    expect(exact.ok, exact.problem?.message).toBe(true);
    expect(exact.parent).toMatchObject({ bundle_sha256: g1Digest, match: 'state' });
    const later = await verify('old.tar', 'g2.tar');
    expect(later.exit_code).toBe(3);
    expect(later.problem?.message).toContain("this fork does not record the parent's log at the fork point: only the parent's bundle of the state it was forked from matches");
    const forged = await verify('forged.tar', 'g1.tar');
    expect(forged.exit_code).toBe(3);
    expect([forged.problem?.path, forged.problem?.field]).toEqual(['run.json', 'fork.parent_bundle_sha256']);
  }, 60_000);
});
