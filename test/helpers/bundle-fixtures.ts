/**
 * Runs to export in the bundle tests: a project with a three-step workflow (echo → llm step with a
 * tool call → echo) on SQLite or PostgreSQL, run to completion with a scripted model; and tar
 * surgery for the tamper tests (rewrite entries, optionally re-listing them in manifest.json so the
 * check behind the manifest is the one that fires).
 */
import { join } from 'node:path';
import { Swarm } from '../../src/swarm.js';
import { ScriptedModel } from '../../src/testing/scripted-model.js';
import { entryJson, sha256Ref } from '../../src/bundles/model.js';
import { readTar, sortEntries, writeTar, type TarEntry } from '../../src/bundles/tar.js';
import type { BundleManifest } from '../../src/bundles/layout.js';
import { EXAMPLES, tempProject, writeAgent, writeWorkflow } from './project.js';

export const LLM_WORKFLOW = `name: relay
version: 1.0.0
steps:
  - { id: a, agent: echo@1.0.0, inputs: { message: "\${trigger.message}" } }
  - { id: b, agent: teller, inputs: { message: "say \${steps.a.outputs.echoed}" } }
  - { id: c, agent: echo@1.0.0, inputs: { message: "\${steps.b.outputs.content}" } }
`;

/** A scripted conversation: one tool call, then the answer. */
export function tellerModel(): ScriptedModel {
  return new ScriptedModel([
    { toolCalls: [{ id: 'c1', name: 'stamp', arguments: { what: 'x' } }], usage: { input_tokens: 7, output_tokens: 2 } },
    { content: 'Told.', usage: { input_tokens: 9, output_tokens: 1 } },
  ]);
}

/** A project with the echo agent, the llm agent `teller` (tool `stamp`) and the workflow `relay`. */
export function bundleProject(): string {
  const dir = tempProject();
  writeAgent(dir, 'teller', 'name: teller\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: m }\ntools:\n  - module: tools.mjs\n', {
    'tools.mjs': "export const stamp = { name: 'stamp', description: 'Stamp', parameters: { type: 'object' }, execute: (a) => 'stamped ' + JSON.stringify(a) };\n",
  });
  writeWorkflow(dir, 'relay', LLM_WORKFLOW);
  return dir;
}

/** Open a Swarm on the project (PostgreSQL when `url` is given) with the scripted model. */
export async function openBundleSwarm(dir: string, url?: string): Promise<Swarm> {
  return Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), ...(url ? { SWARM_DATABASE_URL: url } : {}) }, models: () => tellerModel() });
}

/** Register the agents and workflow, run `relay` to completion; returns the run id. */
export async function runRelay(swarm: Swarm, dir: string, message = 'hello'): Promise<string> {
  await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
  await swarm.registerAgent(join(dir, 'agents', 'teller'));
  await swarm.registerWorkflow(join(dir, 'workflows', 'relay'));
  const id = await swarm.startRun('relay', { message });
  const { run } = await swarm.runToCompletion(id);
  if (run.status !== 'completed') throw new Error(`relay run ${id} ended ${run.status}: ${run.error ?? ''}`);
  return id;
}

/** The entries of a tar, by path. */
export async function entriesOf(bytes: Buffer): Promise<Map<string, Buffer>> {
  return new Map((await readTar(bytes)).entries.map((e) => [e.path, e.data]));
}

/**
 * Rewrite a bundle: `change` maps paths to new contents (null removes the entry). With `relist`, the
 * manifest's entries of the changed paths are recomputed (a forger who keeps the manifest in step).
 */
export async function rewrite(bytes: Buffer, change: Record<string, Buffer | string | null>, o: { relist?: boolean; order?: (e: TarEntry[]) => TarEntry[] } = {}): Promise<Buffer> {
  const entries = new Map(await entriesOf(bytes));
  for (const [p, v] of Object.entries(change)) {
    if (v === null) entries.delete(p);
    else entries.set(p, Buffer.isBuffer(v) ? v : Buffer.from(v));
  }
  if (o.relist) {
    const m = JSON.parse(String(entries.get('manifest.json'))) as BundleManifest;
    for (const p of Object.keys(change)) {
      const data = entries.get(p);
      m.files = m.files.filter((f) => f.path !== p);
      if (data && p !== 'manifest.json' && p !== 'result.json' && p !== 'certificate.json') m.files.push({ path: p, size: data.length, sha256: sha256Ref(data) });
    }
    m.files.sort((x, y) => (x.path < y.path ? -1 : 1));
    entries.set('manifest.json', entryJson(m));
  }
  const list = sortEntries([...entries].map(([path, data]) => ({ path, data })));
  return writeTar(o.order ? o.order(list) : list);
}

/** A JSON entry, parsed. */
export async function jsonEntry<T = Record<string, unknown>>(bytes: Buffer, path: string): Promise<T> {
  return JSON.parse(String((await entriesOf(bytes)).get(path))) as T;
}
