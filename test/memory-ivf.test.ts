/**
 * The IVF index of vector memory on SQLite (src/store/sqlite/memory-ivf.ts) and its k-means
 * (src/store/kmeans.ts): recall against exact search on a real file, deletes, and a reopen.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nearestCentre, nearestCentres, seededRandom, trainKmeans } from '../src/store/kmeans.js';
import { ivfTuning } from '../src/store/sqlite/memory-ivf.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';

const DIMS = 32;

const unit = (v: Float32Array): Float32Array => {
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
};

/** n unit vectors around `topics` random centres (noise a fraction of a centre's norm). */
function clustered(n: number, topics: number, noise: number, seed: number): Float32Array[] {
  const r = seededRandom(seed);
  const g = (): number => Math.sqrt(-2 * Math.log(r() || 1e-12)) * Math.cos(2 * Math.PI * r());
  const centres = Array.from({ length: topics }, () => unit(Float32Array.from({ length: DIMS }, g)));
  return Array.from({ length: n }, (_, i) => unit((centres[i % topics] as Float32Array).map((x) => x + (noise / Math.sqrt(DIMS)) * g())));
}

describe('k-means', () => {
  it('finds well-separated clusters, and nearest centres come nearest first', () => {
    const data = clustered(400, 4, 0.1, 1);
    const c = trainKmeans(data, 4, { seed: 3 });
    expect(c.k).toBe(4);
    // Every topic (i % 4) lands in one cell, and different topics in different cells.
    const cellOfTopic = [0, 1, 2, 3].map((t) => nearestCentre(c, data[t] as Float32Array));
    expect(new Set(cellOfTopic).size).toBe(4);
    data.forEach((v, i) => expect(nearestCentre(c, v)).toBe(cellOfTopic[i % 4]));
    const order = nearestCentres(c, data[1] as Float32Array, 4);
    expect(order[0]).toBe(cellOfTopic[1]);
    expect(new Set(order).size).toBe(4);
  });

  it('never makes more centres than vectors, and refuses no data', () => {
    expect(trainKmeans(clustered(3, 3, 0.1, 2), 10).k).toBe(3);
    expect(() => trainKmeans([], 2)).toThrow(/at least one vector/);
  });
});

describe('IVF index on SQLite', () => {
  let dir: string;
  let path: string;
  let store: Store;
  const saved = { ...ivfTuning };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'swarm-memory-ivf-'));
    path = join(dir, 'swarm.db');
    store = openSqliteStore({ path, durability: 'process' });
    // A low threshold: trained at 400 and again at 1,600 (growth 4), the rest filed as written.
    Object.assign(ivfTuning, { threshold: 400, growth: 4 });
  });
  afterEach(async () => {
    Object.assign(ivfTuning, saved);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const data = clustered(2_500, 40, 0.6, 7);
  const write = (ns: string, i: number, v: Float32Array) =>
    store.putMemory({ namespace: ns, text: `m${i}`, metadata: {}, source: 'explicit', run_id: null, step_id: null, session_id: null, dedup_key: `${ns}-${i}`, created_at: i, embedding: v });
  const queries = Array.from({ length: 30 }, (_, i) => data[(i * 83) % data.length] as Float32Array);
  const ids = async (ns: string, q: Float32Array, k = 10): Promise<string[]> => (await store.searchMemories({ namespace: ns, vector: q, k })).map((h) => h.text);
  const exactly = async <T>(fn: () => Promise<T>): Promise<T> => {
    const threshold = ivfTuning.threshold;
    ivfTuning.threshold = Number.MAX_SAFE_INTEGER;
    try {
      return await fn();
    } finally {
      ivfTuning.threshold = threshold;
    }
  };
  const state = (): { n: number; trained_n: number; version: number; cells: number } | undefined => {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare(`SELECT n, trained_n, version, length(centres) / 4 / ${DIMS} AS cells FROM memory_ivf_state WHERE namespace = 'big'`).get() as never;
    } finally {
      db.close();
    }
  };

  it('keeps recall@10 against exact search, and a small namespace stays exact', async () => {
    for (let i = 0; i < data.length; i++) await write('big', i, data[i] as Float32Array);
    for (let i = 0; i < 50; i++) await write('small', i, data[i] as Float32Array);
    expect(state()).toMatchObject({ n: 2_500, trained_n: 1_600, cells: 40 });

    let found = 0;
    for (const q of queries) {
      const approx = await ids('big', q);
      const exact = await exactly(() => ids('big', q));
      expect(approx).toHaveLength(10);
      expect(approx[0]).toBe(exact[0]); // the vector itself
      found += approx.filter((x) => exact.includes(x)).length;
    }
    // 10 of 40 cells on overlapping clusters (0.93 when written): what probing costs in recall.
    expect(found / (queries.length * 10)).toBeGreaterThanOrEqual(0.9);
    // Probing every cell, the int8 pass and the exact re-rank lose nothing: exact answers.
    ivfTuning.nprobe = 40;
    for (const q of queries) expect(await ids('big', q)).toEqual(await exactly(() => ids('big', q)));
    ivfTuning.nprobe = saved.nprobe;
    // Scores stay cosine similarities: the query's own vector scores 1.
    expect((await store.searchMemories({ namespace: 'big', vector: queries[0] as Float32Array, k: 1 }))[0]?.score).toBeCloseTo(1, 4);
    // Under the threshold there is no index: the same answer as exact.
    expect(await ids('small', queries[0] as Float32Array)).toEqual(await exactly(() => ids('small', queries[0] as Float32Array)));
  });

  it('never returns a deleted memory, one by one or by namespace', async () => {
    for (let i = 0; i < 600; i++) await write('big', i, data[i] as Float32Array);
    const q = data[5] as Float32Array;
    const [top] = await store.searchMemories({ namespace: 'big', vector: q, k: 10 });
    expect(top?.text).toBe('m5');
    expect(await store.deleteMemories({ namespace: 'big', id: top?.id })).toBe(1);
    const after = await ids('big', q, 50);
    expect(after).toHaveLength(50);
    expect(after).not.toContain('m5');
    // Writing it again under a new key files it anew; the old id stays gone.
    await write('big', 9_999, q);
    expect((await ids('big', q, 1))[0]).toBe('m9999');
    expect(await store.deleteMemories({ namespace: 'big' })).toBe(600);
    expect(await store.searchMemories({ namespace: 'big', vector: q, k: 10 })).toEqual([]);
    expect(state()).toBeUndefined();
    const db = new Database(path, { readonly: true });
    expect(db.prepare(`SELECT count(*) FROM memory_ivf_${DIMS}`).pluck().get()).toBe(0);
    expect(db.prepare(`SELECT count(*) FROM memory_ivf_${DIMS}_vectors`).pluck().get()).toBe(0);
    db.close();
  });

  it('keeps the index across a reopen of the file, and files new writes without retraining', async () => {
    for (let i = 0; i < 1_000; i++) await write('big', i, data[i] as Float32Array);
    const before = state();
    expect(before).toMatchObject({ trained_n: 400 });
    const answers = await Promise.all(queries.slice(0, 5).map((q) => ids('big', q)));
    await store.close();

    store = openSqliteStore({ path, durability: 'process' });
    expect(state()).toEqual(before);
    expect(await Promise.all(queries.slice(0, 5).map((q) => ids('big', q)))).toEqual(answers);
    await write('big', 1_000, data[1_000] as Float32Array);
    expect(state()).toMatchObject({ n: 1_001, trained_n: 400, version: before?.version });
    expect((await ids('big', data[1_000] as Float32Array, 1))[0]).toBe('m1000');
  });
});
