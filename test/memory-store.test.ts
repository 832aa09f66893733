/**
 * The vector memory contract of the store (migration 20), on SQLite (sqlite-vec, in the same file)
 * and on PostgreSQL (pgvector when the server has it; otherwise the clear MEMORY_BACKEND_UNAVAILABLE
 * error, and list/delete still work).
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { startPgliteVector } from './helpers/pglite-vector.js';
import { StoreError } from '../src/core/errors.js';
import type { Store } from '../src/store/store.js';
import type { MemoryWrite } from '../src/store/memory-types.js';
import { fakeEmbedding } from '../src/testing/fake-embeddings.js';
import { makePostgresBackend, makeSqliteBackend, type StoreBackend } from './helpers/store-fixtures.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';

const write = (namespace: string, text: string, key: string, extra: Partial<MemoryWrite> = {}): MemoryWrite => ({
  namespace,
  text,
  metadata: { n: key },
  source: 'explicit',
  run_id: 'r1',
  step_id: 's1',
  session_id: 'r1/s1',
  dedup_key: key,
  created_at: 1_700_000_000_000,
  embedding: fakeEmbedding(text),
  ...extra,
});

/** Write, search, namespaces, idempotency, delete: the whole contract on one store. */
async function contract(store: Store): Promise<void> {
  const a = await store.putMemory(write('alice', 'Alice prefers green tea in the morning', 'k1'));
  expect(a.created).toBe(true);
  await store.putMemory(write('alice', 'Alice lives in Lyon and works as a nurse', 'k2'));
  await store.putMemory(write('alice', 'The order 1234 shipped on Monday', 'k3', { source: 'tool_result' }));
  await store.putMemory(write('bob', 'Bob prefers green tea too', 'k4'));

  // The same dedup key again: nothing written, the first id back.
  const again = await store.putMemory(write('alice', 'something else entirely', 'k1'));
  expect(again).toEqual({ id: a.id, created: false });

  const hits = await store.searchMemories({ namespace: 'alice', vector: fakeEmbedding('what tea does alice prefer'), k: 2 });
  expect(hits).toHaveLength(2);
  expect(hits[0]).toMatchObject({ id: a.id, namespace: 'alice', text: 'Alice prefers green tea in the morning', source: 'explicit', run_id: 'r1', step_id: 's1', session_id: 'r1/s1', dedup_key: 'k1', created_at: 1_700_000_000_000, dimensions: 384, metadata: { n: 'k1' } });
  expect(hits[0]?.score).toBeGreaterThan(hits[1]?.score ?? 1);
  expect(hits[0]?.score).toBeLessThanOrEqual(1.0001);
  // Namespaces are isolated: bob's tea is not alice's.
  expect(hits.map((h) => h.namespace)).toEqual(['alice', 'alice']);
  expect((await store.searchMemories({ namespace: 'bob', vector: fakeEmbedding('tea'), k: 10 })).map((h) => h.dedup_key)).toEqual(['k4']);
  expect(await store.searchMemories({ namespace: 'nobody', vector: fakeEmbedding('tea'), k: 10 })).toEqual([]);
  // Another dimension count is another index: nothing there yet.
  expect(await store.searchMemories({ namespace: 'alice', vector: fakeEmbedding('tea', 8), k: 3 })).toEqual([]);

  expect((await store.listMemories({ namespace: 'alice' })).map((m) => m.dedup_key)).toEqual(['k3', 'k2', 'k1']);
  expect((await store.listMemories({})).length).toBe(4);
  const page = await store.listMemories({ namespace: 'alice', limit: 2 });
  expect((await store.listMemories({ namespace: 'alice', before: page[1]?.id })).map((m) => m.dedup_key)).toEqual(['k1']);

  expect(await store.deleteMemories({ namespace: 'bob', id: a.id })).toBe(0); // not bob's
  expect(await store.deleteMemories({ namespace: 'alice', id: a.id })).toBe(1);
  expect((await store.searchMemories({ namespace: 'alice', vector: fakeEmbedding('alice tea'), k: 5 })).map((h) => h.dedup_key).sort()).toEqual(['k2', 'k3']);
  expect(await store.deleteMemories({ namespace: 'alice' })).toBe(2);
  expect(await store.searchMemories({ namespace: 'alice', vector: fakeEmbedding('alice tea'), k: 5 })).toEqual([]);
  expect((await store.listMemories({})).map((m) => m.namespace)).toEqual(['bob']);

  // A deleted key may be written again (forgetting is not a tombstone).
  expect((await store.putMemory(write('alice', 'Alice prefers green tea in the morning', 'k1'))).created).toBe(true);
  await expect(store.putMemory(write('alice', 'bad', 'k9', { embedding: [1, Number.NaN] }))).rejects.toMatchObject({ code: 'MEMORY_VECTOR_INVALID' });
}

describe('memory store: sqlite (sqlite-vec)', () => {
  let backend: StoreBackend;
  let store: Store;
  beforeEach(async () => {
    backend = await makeSqliteBackend();
    store = await backend.open();
  });
  afterEach(async () => {
    await store.close();
    await backend.cleanup();
  });

  it('writes, searches, isolates namespaces, dedups and deletes', async () => {
    await contract(store);
  });

  it('keeps memories and vectors across a reopen, in the same file', async () => {
    await store.putMemory(write('n', 'the cat sat on the mat', 'a'));
    await store.close();
    store = await backend.open();
    const hits = await store.searchMemories({ namespace: 'n', vector: fakeEmbedding('a cat on a mat'), k: 1 });
    expect(hits.map((h) => h.dedup_key)).toEqual(['a']);
  });

  it('writes the same dedup key once under concurrent puts', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => store.putMemory(write('n', 'once', 'same'))));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect(await store.listMemories({ namespace: 'n' })).toHaveLength(1);
  });
});

describe('memory store: postgres', () => {
  let backend: StoreBackend;
  let store: Store;
  beforeEach(async () => {
    backend = await makePostgresBackend();
    store = await backend.open();
  });
  afterEach(async () => {
    await store.close();
    await backend.cleanup();
  });
  afterAll(stopPgTestServer);

  it('runs the contract with pgvector, or refuses vectors with MEMORY_BACKEND_UNAVAILABLE without it', async () => {
    const server = await pgTestServer();
    const url = await server.createDatabase();
    const available = (await server.query(url, `SELECT 1 FROM pg_available_extensions WHERE name = 'vector'`)).rowCount === 1;
    await server.dropDatabase(url);
    if (available) {
      await contract(store);
      return;
    }
    const err = await store.putMemory(write('alice', 'Alice prefers tea', 'k1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({ code: 'MEMORY_BACKEND_UNAVAILABLE' });
    expect((err as Error).message).toMatch(/pgvector/);
    expect((err as Error).message).toMatch(/CREATE EXTENSION vector/);
    await expect(store.searchMemories({ namespace: 'alice', vector: fakeEmbedding('tea'), k: 3 })).rejects.toMatchObject({ code: 'MEMORY_BACKEND_UNAVAILABLE' });
    // Nothing half-written; forgetting and listing need no vectors.
    expect(await store.listMemories({})).toEqual([]);
    expect(await store.deleteMemories({ namespace: 'alice' })).toBe(0);
  });
});

describe('memory store: postgres with pgvector (PGlite over the wire protocol)', () => {
  // The embedded server above has no pgvector: this one has, so the pgvector SQL (vector(n) tables,
  // the HNSW cosine index, `<=>`) runs for real, through the same PostgreSQL store and client.
  it('runs the whole contract on pgvector', async () => {
    const pg = await startPgliteVector();
    try {
      const store = await openPostgresStore({ url: pg.url, durability: 'process', poolSize: 1 });
      try {
        await contract(store);
      } finally {
        await store.close();
      }
    } finally {
      await pg.close();
    }
  }, 120_000);
});
