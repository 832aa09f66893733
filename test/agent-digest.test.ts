/**
 * An agent package's digest is its content's (sha256 of its manifest's canonical JSON,
 * src/store/rows.ts agentDigest), not the folder's it was registered from, through the real CLI on
 * real files: the same package registered from a second folder is unchanged (and runs from there),
 * other content is still refused; a run exported on one installation and imported on another whose
 * agent is the same package in another folder gets no "differs" note (other content does); a store
 * registered before the digest left the folder out (its rows hold a digest of `{manifest, dir}`)
 * still accepts the same package, records the new digest, and compares an import by content; and a
 * bundle exported before the fix (its agents.json digest covers the exporter's folder) matches the
 * same package at the same path on the importing installation.
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../src/bundles/build.js';
import { runSnapshot } from '../src/bundles/export.js';
import { canonicalJson } from '../src/core/canonical-json.js';
import { entriesOf } from './helpers/bundle-fixtures.js';
import { cleanupSandboxes, makeSandbox, ok, type Sandbox, show } from './helpers/cli.js';
import { EXAMPLES, openProject, removeProject, tempProject } from './helpers/project.js';

afterAll(() => cleanupSandboxes());

const AGENT_YAML = `name: shout
version: 1.0.0
description: Upper-cases its text
runtime:
  type: node
  entry: main.js
  timeout_seconds: 30
inputs:
  - { name: text, type: string, required: true }
outputs:
  - { name: loud, type: string }
`;
const MAIN_JS = "const fs = require('node:fs');\nconst [i, o] = process.argv.slice(2);\nconst { text } = JSON.parse(fs.readFileSync(i, 'utf8'));\nfs.writeFileSync(o, JSON.stringify({ loud: text.toUpperCase() }));\n";
const WORKFLOW_YAML = 'name: loud\nversion: 1.0.0\nsteps:\n  - id: shout\n    agent: shout\n    inputs:\n      text: ${trigger.text}\n';

/** The `shout` package (agent.yaml, main.js) in `dir` of the sandbox. */
function writePackage(s: Sandbox, dir: string, yaml = AGENT_YAML): void {
  s.write(`${dir}/agent.yaml`, yaml);
  s.write(`${dir}/main.js`, MAIN_JS);
  s.write(`${dir}/package.json`, '{"type":"commonjs"}');
}

/** A project whose steps run unsandboxed (the node agent reads and writes its files in place). */
const project = (): Sandbox => makeSandbox({ env: { SWARM_SANDBOX: 'none' } });

interface AgentRow {
  path: string;
  digest: string;
  manifest: string;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const agentRow = (s: Sandbox): AgentRow | undefined => s.query<AgentRow>("SELECT path, digest, manifest FROM agents WHERE id = 'shout@1.0.0'")[0];
/** The content's digest, as any folder on any machine computes it: sha256 of the manifest's canonical JSON. */
const contentDigest = (r: AgentRow): string => sha256(canonicalJson(JSON.parse(r.manifest)));
/** What a store written before the fix holds: sha256 of `{manifest, dir}`. */
const legacyDigest = (r: AgentRow): string => sha256(JSON.stringify({ manifest: JSON.parse(r.manifest) as unknown, dir: r.path }));

interface Imported {
  run_id: string;
  created: boolean;
  notes: string[];
}

describe('an agent package’s digest is its content’s, not its folder’s', () => {
  it('the same package registered from a second folder is unchanged, and its steps run from there; other content is still refused', async () => {
    const s = project();
    writePackage(s, 'agents/shout');
    writePackage(s, 'moved/shout');
    expect((await ok(s, ['agent', 'register', 'agents/shout'])).stdout).toContain('shout@1.0.0 created');
    const first = agentRow(s)!;

    // Again from the same folder: unchanged, nothing said.
    const same = await ok(s, ['agent', 'register', 'agents/shout']);
    expect(same.stdout).toContain('shout@1.0.0 unchanged');
    expect(same.stderr).toBe('');

    // From another folder: the same digest, so unchanged (it was AGENT_VERSION_EXISTS, exit 2);
    // the registry now names that folder, and a warning says so.
    const moved = await ok(s, ['agent', 'register', 'moved/shout']);
    expect(moved.stdout).toContain('shout@1.0.0 unchanged');
    expect(moved.stderr).toContain(`warning: shout@1.0.0 was registered from ${s.path('agents/shout')}: its steps now run the package in ${s.path('moved/shout')}`);
    expect(agentRow(s)).toEqual({ ...first, path: s.path('moved/shout') });
    expect(first.digest).toBe(contentDigest(first));

    // Its steps run from the folder it was registered from last: the first one is gone.
    rmSync(s.path('agents/shout'), { recursive: true });
    s.write('workflows/loud/workflow.yaml', WORKFLOW_YAML);
    await ok(s, ['workflow', 'register', 'workflows/loud']);
    const run = await s.json<{ status: string }>(['run', 'loud', '{"text": "hi"}', '--json']);
    expect(run.status).toBe('completed');

    // Other content under the same version is still refused, from any folder.
    writePackage(s, 'other/shout', AGENT_YAML.replace('Upper-cases its text', 'Shouts'));
    const refused = await s.run(['agent', 'register', 'other/shout']);
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain('agent shout@1.0.0 is already registered with different content');
    expect(agentRow(s)?.digest).toBe(first.digest);
  });

  describe('a run exported here and imported on another installation', () => {
    let bundle: Buffer;
    let bundleDigest: string;

    beforeAll(async () => {
      const a = project();
      writePackage(a, 'agents/shout');
      a.write('workflows/loud/workflow.yaml', WORKFLOW_YAML);
      await ok(a, ['agent', 'register', 'agents/shout']);
      await ok(a, ['workflow', 'register', 'workflows/loud']);
      const run = await a.json<{ run_id: string; status: string }>(['run', 'loud', '{"text": "over there"}', '--json']);
      expect(run.status).toBe('completed');
      await ok(a, ['runs', 'export', run.run_id, '-o', 'run.tar']);
      bundle = readFileSync(a.path('run.tar'));
      bundleDigest = contentDigest(agentRow(a)!);
    });

    async function importInto(s: Sandbox): Promise<Imported> {
      writeFileSync(s.path('run.tar'), bundle);
      const r = await s.run(['runs', 'import', 'run.tar', '--json']);
      expect(r.code, show(r)).toBe(0);
      return JSON.parse(r.stdout) as Imported;
    }

    it('names the content digest in agents.json; the same package in another folder there is not "different", other content is', async () => {
      const agents = JSON.parse(String((await entriesOf(bundle)).get('agents.json'))) as Array<{ id: string; digest: string }>;
      expect(agents).toEqual([expect.objectContaining({ id: 'shout@1.0.0', digest: `sha256:${bundleDigest}` })]);

      const b = project();
      writePackage(b, 'vendor/packages/shout');
      await ok(b, ['agent', 'register', 'vendor/packages/shout']);
      expect(agentRow(b)?.digest).toBe(bundleDigest);
      const imported = await importInto(b);
      expect(imported.created).toBe(true);
      expect(imported.notes.filter((n) => n.includes('differs'))).toEqual([]);

      const c = project();
      writePackage(c, 'agents/shout', AGENT_YAML.replace('timeout_seconds: 30', 'timeout_seconds: 45'));
      await ok(c, ['agent', 'register', 'agents/shout']);
      expect((await importInto(c)).notes).toContainEqual("agent shout@1.0.0 here differs from the bundle's (a fork re-runs its steps with the local one)");
    });

    it('a store registered before the fix (digests of {manifest, dir}): the import compares by content, and registering the package again is unchanged and records its content digest', async () => {
      const old = project();
      writePackage(old, 'agents/shout');
      await ok(old, ['agent', 'register', 'agents/shout']);
      // The row as an older Swarm wrote it.
      old.update("UPDATE agents SET digest = ? WHERE id = 'shout@1.0.0'", legacyDigest(agentRow(old)!));
      const legacy = agentRow(old)!;
      expect(legacy.digest).not.toBe(bundleDigest);

      const imported = await importInto(old);
      expect(imported.created).toBe(true);
      expect(imported.notes.filter((n) => n.includes('differs'))).toEqual([]);

      const again = await ok(old, ['agent', 'register', 'agents/shout']);
      expect(again.stdout).toContain('shout@1.0.0 unchanged');
      expect(agentRow(old)).toEqual({ ...legacy, digest: bundleDigest });
      // From another folder too (the stored digest no longer names one).
      writePackage(old, 'elsewhere/shout');
      expect((await ok(old, ['agent', 'register', 'elsewhere/shout'])).stdout).toContain('shout@1.0.0 unchanged');
      // A fork of the imported run re-runs its step with the local package.
      const fork = await old.run(['runs', 'fork', imported.run_id, '--at', 'shout', '--wait']);
      expect(fork.code, show(fork)).toBe(0);
      expect(fork.stdout).toContain('OVER THERE');
    });
  });

  it('a bundle exported before the fix (agents.json names a digest of {manifest, dir}) matches the same package at the same path here', async () => {
    const dirs = [tempProject('name: a\n'), tempProject('name: b\n')];
    const [source, here] = [await openProject(dirs[0]!), await openProject(dirs[1]!)];
    try {
      const echo = join(EXAMPLES, 'agents', 'echo');
      await source.registerAgent(echo);
      await source.registerWorkflow(join(EXAMPLES, 'workflows', 'echo-chain'));
      const { run } = await source.runToCompletion(await source.startRun('echo-chain', { message: 'old' }));
      expect(run.status).toBe('completed');
      // The bundle as an older Swarm built it: the agent's digest covered its folder.
      const snapshot = await runSnapshot(source, run);
      const manifest = (await source.getAgent('echo@1.0.0')).manifest;
      const oldDigest = sha256(JSON.stringify({ manifest, dir: echo }));
      expect(snapshot.agents.map((a) => a.digest)).toEqual([`sha256:${sha256(canonicalJson(manifest))}`]);
      snapshot.agents = snapshot.agents.map((a) => ({ ...a, digest: `sha256:${oldDigest}` }));
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const key = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64');
      const old = await buildBundle(snapshot, (bytes) => ({ alg: 'ed25519', key_name: 'runs', public_key: key, value: sign(null, bytes, privateKey).toString('base64') }));

      // Here the same package from the same folder, registered now (its digest is the content's).
      await here.registerAgent(echo);
      const r = await here.importBundle(old.bytes);
      expect(r.created).toBe(true);
      expect(r.notes.filter((n) => n.includes('differs'))).toEqual([]);
    } finally {
      await source.close();
      await here.close();
      for (const d of dirs) removeProject(d);
    }
  });
});
