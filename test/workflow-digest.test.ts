/**
 * A workflow's digest is its content's: sha256 of its manifest's canonical JSON (keys sorted,
 * src/store/rows.ts workflowDigest), the same in the registry, in a run bundle's workflow.json and
 * in its certificate, through the real CLI on real files. A run exported on one installation and
 * imported on another: registering the same workflow.yaml there afterwards is unchanged (it was
 * refused: the import registered the bundle's definition, whose keys are sorted, under another
 * digest), a later import of another run of it says nothing differs, and a fork made there names its
 * parent's `workflow_ref`; other content gets a "differs" note naming both digests the one way
 * (`sha256:<hex>`). The same workflow.yaml with its maps in another key order is unchanged. A store
 * registered before the fix (its rows hold a digest of the manifest's JSON in its key order) still
 * takes the same workflow.yaml as unchanged (and records the canonical digest), still refuses other
 * content, compares an import by content, and `swarm run` does not say the file changed; a bundle
 * exported before the fix (its workflow.json names such a digest) imports with no "differs" note.
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../src/bundles/build.js';
import { runSnapshot } from '../src/bundles/export.js';
import { canonicalJson } from '../src/core/canonical-json.js';
import { entriesOf } from './helpers/bundle-fixtures.js';
import { cleanupSandboxes, makeSandbox, ok, type Sandbox, show } from './helpers/cli.js';
import { EXAMPLES, openProject, removeProject, tempProject } from './helpers/project.js';

afterAll(() => cleanupSandboxes());

const ECHO = join(EXAMPLES, 'agents', 'echo');
const PIPELINE = join(EXAMPLES, 'branching', 'workflows', 'pipeline');

/** A workflow with maps whose key order the YAML decides (variables, a step's inputs). */
const ORDERED = `name: ordered
version: 1.0.0
trigger:
  type: manual
variables:
  alpha: first
  beta: second
steps:
  - id: say
    agent: echo@1.0.0
    inputs:
      message: "\${variables.alpha} then \${variables.beta}"
`;
/** The same workflow, every map written in another key order. */
const REORDERED = `version: 1.0.0
name: ordered
steps:
  - inputs:
      message: "\${variables.alpha} then \${variables.beta}"
    agent: echo@1.0.0
    id: say
variables:
  beta: second
  alpha: first
trigger:
  type: manual
`;

/** A project whose steps run unsandboxed (the echo agent reads and writes its files in place). */
const project = (): Sandbox => makeSandbox({ env: { SWARM_SANDBOX: 'none' } });

interface WorkflowRow {
  digest: string;
  manifest: string;
  enabled: number;
}

interface Imported {
  run_id: string;
  created: boolean;
  registered_workflow: boolean;
  notes: string[];
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const workflowRow = (s: Sandbox, id = 'pipeline@1.0.0'): WorkflowRow | undefined => s.query<WorkflowRow>('SELECT digest, manifest, enabled FROM workflows WHERE id = ?', id)[0];
/** The content's digest, as any machine computes it: sha256 of the manifest's canonical JSON. */
const contentDigest = (r: WorkflowRow): string => sha256(canonicalJson(JSON.parse(r.manifest)));
/** What a store written before the fix holds: sha256 of the manifest's JSON in its key order (the column as written). */
const legacyDigest = (r: WorkflowRow): string => sha256(r.manifest);
const differs = (notes: string[]): string[] => notes.filter((n) => n.includes('differs'));

async function runPipeline(s: Sandbox, topic: string): Promise<string> {
  const run = await s.json<{ run_id: string; status: string }>(['run', 'pipeline', JSON.stringify({ topic }), '--json']);
  expect(run.status).toBe('completed');
  return run.run_id;
}

async function importInto(s: Sandbox, bytes: Buffer, file = 'run.tar'): Promise<Imported> {
  writeFileSync(s.path(file), bytes);
  const r = await s.run(['runs', 'import', file, '--json']);
  expect(r.code, show(r)).toBe(0);
  return JSON.parse(r.stdout) as Imported;
}

async function entry<T>(bytes: Buffer, path: string): Promise<T> {
  return JSON.parse(String((await entriesOf(bytes)).get(path))) as T;
}

describe('a workflow’s digest is its content’s (canonical JSON), in the registry and in run bundles', () => {
  let a: Sandbox;
  let first: { id: string; bytes: Buffer };
  let second: { id: string; bytes: Buffer };
  let digest: string;

  beforeAll(async () => {
    a = project();
    await ok(a, ['agent', 'register', ECHO]);
    await ok(a, ['workflow', 'register', PIPELINE]);
    const ids = [await runPipeline(a, 'y'), await runPipeline(a, 'z')];
    const [one, two] = await Promise.all(
      ids.map(async (id, i) => {
        await ok(a, ['runs', 'export', id, '-o', `run${i}.tar`]);
        return { id, bytes: readFileSync(a.path(`run${i}.tar`)) };
      }),
    );
    [first, second] = [one!, two!];
    digest = workflowRow(a)!.digest;
  }, 120_000);

  it('the registry keeps sha256 of the manifest’s canonical JSON; workflow.json and the certificate name it as sha256:<hex>', async () => {
    const row = workflowRow(a)!;
    expect(row.digest).toBe(contentDigest(row));
    const wf = await entry<{ digest: string; definition: unknown }>(first.bytes, 'workflow.json');
    expect(wf.digest).toBe(`sha256:${digest}`);
    expect(sha256(canonicalJson(wf.definition))).toBe(digest);
    const cert = await entry<{ runtime: { workflow_ref: string } }>(first.bytes, 'certificate.json');
    expect(cert.runtime.workflow_ref).toBe(`pipeline@1.0.0#sha256:${digest}`);
    // `swarm run` compares the workflow.yaml with the registered version the same way: unchanged.
    const run = await a.run(['run', 'pipeline', '{"topic":"again"}']);
    expect(run.code, show(run)).toBe(0);
    expect(run.stderr).not.toContain('has changed since');
  });

  it('imported on another installation: the same workflow.yaml registers there as unchanged, another run of it imports with no "differs" note, and a fork made there names its parent’s workflow_ref', async () => {
    const b = project();
    await ok(b, ['agent', 'register', ECHO]);
    const imported = await importInto(b, first.bytes);
    expect(imported).toMatchObject({ run_id: first.id, created: true, registered_workflow: true });
    expect(differs(imported.notes)).toEqual([]);
    // The bundle's definition (canonical JSON) registered with the digest the source's registry gave it.
    expect(workflowRow(b)).toMatchObject({ digest, enabled: 0 });

    // The same workflow.yaml: unchanged, a no-op (it was "already registered with different content", exit 2).
    const again = await ok(b, ['workflow', 'register', PIPELINE]);
    expect(again.stdout).toContain('pipeline@1.0.0 unchanged');
    expect(workflowRow(b)).toMatchObject({ digest, enabled: 0 });

    // Another run of it: nothing differs (it said "workflow pipeline@1.0.0 here differs from the bundle's").
    const later = await importInto(b, second.bytes, 'run2.tar');
    expect(later.created).toBe(true);
    expect(differs(later.notes)).toEqual([]);

    // A fork made here: its certificate names the same workflow digest as its parent's.
    const fork = await b.json<{ run_id: string; status: string }>(['runs', 'fork', first.id, '--at', 'review', '--wait', '--json']);
    expect(fork.status, JSON.stringify(fork)).toBe('completed');
    await ok(b, ['runs', 'export', fork.run_id, '-o', 'fork.tar']);
    const forked = readFileSync(b.path('fork.tar'));
    expect((await entry<{ runtime: { workflow_ref: string } }>(forked, 'certificate.json')).runtime.workflow_ref).toBe(`pipeline@1.0.0#sha256:${digest}`);
    expect((await entry<{ digest: string }>(forked, 'workflow.json')).digest).toBe(`sha256:${digest}`);
  });

  it('other content under that version here: a "differs" note naming both digests as sha256:<hex>', async () => {
    const c = project();
    await ok(c, ['agent', 'register', ECHO]);
    c.write('pipeline/workflow.yaml', readFileSync(join(PIPELINE, 'workflow.yaml'), 'utf8').replace('description: Draft, review, publish', 'description: Draft, review and publish'));
    await ok(c, ['workflow', 'register', 'pipeline']);
    const here = workflowRow(c)!.digest;
    expect(here).not.toBe(digest);
    const imported = await importInto(c, first.bytes);
    expect(differs(imported.notes)).toEqual([
      `workflow pipeline@1.0.0 here differs from the bundle's (digest sha256:${here.slice(0, 12)}… here, sha256:${digest.slice(0, 12)}… in the bundle); the import uses the bundle's definition in its plan`,
    ]);
  });

  it('key order is not content: the same workflow.yaml with its maps in another order is unchanged; other content is still refused', async () => {
    const s = project();
    await ok(s, ['agent', 'register', ECHO]);
    s.write('one/workflow.yaml', ORDERED);
    s.write('two/workflow.yaml', REORDERED);
    s.write('three/workflow.yaml', REORDERED.replace('beta: second', 'beta: third'));
    expect((await ok(s, ['workflow', 'register', 'one'])).stdout).toContain('ordered@1.0.0 created');
    const row = workflowRow(s, 'ordered@1.0.0')!;
    expect(row.digest).toBe(contentDigest(row));
    expect((await ok(s, ['workflow', 'register', 'two'])).stdout).toContain('ordered@1.0.0 unchanged');
    expect(workflowRow(s, 'ordered@1.0.0')?.digest).toBe(row.digest);
    const refused = await s.run(['workflow', 'register', 'three']);
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain('workflow ordered@1.0.0 is already registered with different content');
  });

  it('a store registered before the fix (a digest of the manifest’s JSON in its key order): run, import and register compare by content; the same workflow.yaml is unchanged and records the canonical digest; other content is still refused', async () => {
    const old = project();
    await ok(old, ['agent', 'register', ECHO]);
    await ok(old, ['workflow', 'register', PIPELINE]);
    // The row as an older Swarm wrote it.
    old.update("UPDATE workflows SET digest = ? WHERE id = 'pipeline@1.0.0'", legacyDigest(workflowRow(old)!));
    const legacy = workflowRow(old)!;
    expect(legacy.digest).not.toBe(digest);

    // The file has not changed since it was registered: `swarm run` says nothing about it.
    const run = await old.run(['run', 'pipeline', '{"topic":"here"}']);
    expect(run.code, show(run)).toBe(0);
    expect(run.stderr).not.toContain('has changed since');

    const imported = await importInto(old, first.bytes);
    expect(imported).toMatchObject({ created: true, registered_workflow: false });
    expect(differs(imported.notes)).toEqual([]);

    old.write('changed/workflow.yaml', readFileSync(join(PIPELINE, 'workflow.yaml'), 'utf8').replace('a draft about', 'a first draft about'));
    const refused = await old.run(['workflow', 'register', 'changed']);
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain('workflow pipeline@1.0.0 is already registered with different content');
    expect(workflowRow(old)?.digest).toBe(legacy.digest);

    expect((await ok(old, ['workflow', 'register', PIPELINE])).stdout).toContain('pipeline@1.0.0 unchanged');
    expect(workflowRow(old)).toEqual({ ...legacy, digest });
  });

  it('a bundle exported before the fix (workflow.json names a digest of its key order) imports with no "differs" note where the same workflow is registered', async () => {
    const dirs = [tempProject('name: a\n'), tempProject('name: b\n')];
    const [source, here] = [await openProject(dirs[0]!), await openProject(dirs[1]!)];
    try {
      await source.registerAgent(ECHO);
      await source.registerWorkflow(PIPELINE);
      const { run } = await source.runToCompletion(await source.startRun('pipeline', { topic: 'old' }));
      expect(run.status).toBe('completed');
      // The bundle as an older Swarm built it: the workflow's digest was of its registry row's JSON.
      const snapshot = await runSnapshot(source, run);
      const registered = await source.getWorkflow('pipeline@1.0.0');
      expect(snapshot.workflow.digest).toBe(`sha256:${sha256(canonicalJson(registered.manifest))}`);
      const oldDigest = `sha256:${sha256(JSON.stringify(registered.manifest))}` as const;
      expect(oldDigest).not.toBe(snapshot.workflow.digest);
      snapshot.workflow = { ...snapshot.workflow, digest: oldDigest };
      snapshot.run = { ...snapshot.run, workflow: { ...snapshot.run.workflow, digest: oldDigest } };
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const key = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64');
      const built = await buildBundle(snapshot, (bytes) => ({ alg: 'ed25519', key_name: 'runs', public_key: key, value: sign(null, bytes, privateKey).toString('base64') }));

      await here.registerAgent(ECHO);
      await here.registerWorkflow(PIPELINE);
      const r = await here.importBundle(built.bytes);
      expect(r.created).toBe(true);
      expect(differs(r.notes)).toEqual([]);
    } finally {
      await source.close();
      await here.close();
      for (const d of dirs) removeProject(d);
    }
  });
});
