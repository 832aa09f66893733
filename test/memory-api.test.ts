/**
 * The memory API in process (`app.request()`): list, search (the query embedded through the fake
 * vendor server over HTTP), delete, bad requests, and the scopes the routes need.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { Swarm } from '../src/swarm.js';
import { createApp } from '../src/server/app.js';
import { scopeFor } from '../src/server/auth.js';
import { fakeEmbedding } from '../src/testing/fake-embeddings.js';
import { startFakeLlmServer, type FakeLlmServer } from '../src/testing/fake-llm-server.js';
import { removeProject, tempProject } from './helpers/project.js';

let dir: string;
let fake: FakeLlmServer;
let swarm: Swarm;
let app: OpenAPIHono;

const seed = (namespace: string, text: string, key: string): Promise<{ id: string }> =>
  swarm.store.putMemory({ namespace, text, metadata: { embedding_model: 'openai/text-embedding-3-small' }, source: 'explicit', run_id: null, step_id: null, session_id: null, dedup_key: key, created_at: Date.now(), embedding: fakeEmbedding(text) });

beforeAll(async () => {
  fake = await startFakeLlmServer();
  dir = tempProject();
  swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') }, providerEnv: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl } });
  app = createApp(swarm, { version: '9.9.9' });
  await seed('ada', 'Ada prefers green tea', 'a1');
  await seed('ada', 'Ada lives in Lyon', 'a2');
  await seed('bob', 'Bob prefers coffee', 'b1');
});

afterAll(async () => {
  await swarm.close();
  await fake.close();
  removeProject(dir);
});

const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('memory API', () => {
  it('lists a namespace newest first, pages with before', async () => {
    const r = await app.request('/api/v1/memory/ada?limit=1');
    expect(r.status).toBe(200);
    const { memories } = (await r.json()) as { memories: Array<{ id: string; text: string; source: string; created_at: string; dimensions: number }> };
    expect(memories).toMatchObject([{ text: 'Ada lives in Lyon', source: 'explicit', dimensions: 384 }]);
    expect(memories[0]?.created_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    const next = (await (await app.request(`/api/v1/memory/ada?before=${memories[0]?.id}`)).json()) as { memories: Array<{ text: string }> };
    expect(next.memories.map((m) => m.text)).toEqual(['Ada prefers green tea']);
  });

  it('searches by text with scores, in the namespace only', async () => {
    const r = await app.request('/api/v1/memory/ada/search', json({ text: 'what tea does ada prefer', k: 2 }));
    expect(r.status).toBe(200);
    const { memories } = (await r.json()) as { memories: Array<{ text: string; score: number; namespace: string }> };
    expect(memories.map((m) => m.text)).toEqual(['Ada prefers green tea', 'Ada lives in Lyon']);
    expect(memories[0]?.score).toBeGreaterThan(memories[1]?.score ?? 1);
    // The query went to the vendor's embeddings endpoint with the namespace's model.
    expect(fake.requests.at(-1)).toMatchObject({ path: '/v1/embeddings', body: { model: 'text-embedding-3-small' } });
    const empty = (await (await app.request('/api/v1/memory/nobody/search', json({ text: 'tea' }))).json()) as { memories: unknown[] };
    expect(empty.memories).toEqual([]);
  });

  it('refuses bad requests as problem documents', async () => {
    const r = await app.request('/api/v1/memory/ada/search', json({ k: 0 }));
    expect(r.status).toBe(422);
    expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const bad = await app.request('/api/v1/memory/ada/search', json({ text: 'tea', model: 'no-slash' }));
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'MEMORY_MODEL_INVALID' });
  });

  it('deletes one memory or a namespace', async () => {
    const { id } = await seed('carl', 'Carl likes chess', 'c1');
    await seed('carl', 'Carl likes go', 'c2');
    const one = await app.request(`/api/v1/memory/carl?id=${id}`, { method: 'DELETE' });
    expect(await one.json()).toEqual({ deleted: 1 });
    expect(await (await app.request('/api/v1/memory/carl', { method: 'DELETE' })).json()).toEqual({ deleted: 1 });
    expect(((await (await app.request('/api/v1/memory/carl')).json()) as { memories: unknown[] }).memories).toEqual([]);
    expect((await swarm.memory.list('bob')).length).toBe(1);
  });

  it('needs read to list and search, admin to delete', () => {
    expect(scopeFor('GET', '/api/v1/memory/ada')).toBe('read');
    expect(scopeFor('POST', '/api/v1/memory/ada/search')).toBe('read');
    expect(scopeFor('DELETE', '/api/v1/memory/ada')).toBe('admin');
  });
});
