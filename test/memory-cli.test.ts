/**
 * `swarm memory list | search | delete` as a user runs them: the real CLI in a child process, on a
 * SQLite file seeded through the public API, with the query embedded by the fake vendor server.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Swarm } from '../src/swarm.js';
import { fakeEmbedding } from '../src/testing/fake-embeddings.js';
import { startFakeLlmServer, type FakeLlmServer } from '../src/testing/fake-llm-server.js';
import { removeProject, runCli, tempProject } from './helpers/project.js';

let dir: string;
let fake: FakeLlmServer;
let env: Record<string, string>;

beforeAll(async () => {
  fake = await startFakeLlmServer();
  dir = tempProject();
  env = { SWARM_HOME: join(dir, '.swarm'), OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl };
  const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: env.SWARM_HOME } });
  try {
    for (const [ns, text, key] of [['ada', 'Ada prefers green tea', 'a1'], ['ada', 'Ada lives in Lyon', 'a2'], ['bob', 'Bob prefers coffee', 'b1']] as const) {
      await swarm.store.putMemory({ namespace: ns, text, metadata: { embedding_model: 'openai/text-embedding-3-small' }, source: 'explicit', run_id: null, step_id: null, session_id: null, dedup_key: key, created_at: Date.now(), embedding: fakeEmbedding(text) });
    }
  } finally {
    await swarm.close();
  }
});

afterAll(async () => {
  await fake.close();
  removeProject(dir);
});

describe('swarm memory', () => {
  it('lists, searches (as JSON too) and deletes', async () => {
    const list = await runCli(['memory', 'list'], dir, env);
    expect(list.code).toBe(0);
    expect(list.stdout.trim().split('\n').map((l) => l.replace(/^\s*\d+\s+\S+ \S+\s+/, ''))).toEqual(['bob  explicit  Bob prefers coffee', 'ada  explicit  Ada lives in Lyon', 'ada  explicit  Ada prefers green tea']);

    const search = await runCli(['memory', 'search', 'ada', 'which tea does ada prefer', '--k', '1', '--json'], dir, env);
    expect(search.code).toBe(0);
    const memories = JSON.parse(search.stdout) as Array<{ text: string; score: number; id: string }>;
    expect(memories.map((m) => m.text)).toEqual(['Ada prefers green tea']);
    expect(memories[0]?.score).toBeGreaterThan(0.2);

    const del = await runCli(['memory', 'delete', 'ada', '--id', memories[0]?.id ?? ''], dir, env);
    expect(del.stdout.trim()).toBe(`deleted memory ${memories[0]?.id} of 'ada'`);
    const rest = await runCli(['memory', 'delete', 'ada'], dir, env);
    expect(rest.stdout.trim()).toBe("deleted 1 memory of 'ada'");
  });

  it('refuses a bad argument with exit code 2 before opening the store', async () => {
    const r = await runCli(['memory', 'search', 'ada', 'tea', '--k', 'many'], dir, env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--k must be a positive whole number, not 'many'/);
    const empty = await runCli(['memory', 'search', 'ada', '  '], dir, env);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/swarm memory search: <text> is empty/);
  });
});
