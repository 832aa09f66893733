/**
 * The SQLite claim does not grow with the backlog: it walks the ready steps in claim order
 * (idx_steps_ready_order) and looks each one's run up by its key, instead of reading every step of
 * every active run and sorting them. Checked on the query plans of the statements a claim runs,
 * on a store with a backlog, and on what the claim returns.
 */
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSqliteBackend, Harness, type StoreBackend, type WorkflowDef } from './helpers/store-fixtures.js';

const chain: WorkflowDef = { name: 'chain', steps: [{ id: 'a' }, { id: 'b', depends_on: ['a'] }, { id: 'c', depends_on: ['b'] }] };
const wide: WorkflowDef = { name: 'wide', concurrency: 2, steps: [{ id: 'w1' }, { id: 'w2' }, { id: 'w3' }, { id: 'w4' }] };
const BACKLOG = 400;

/** The SQL texts prepared on any better-sqlite3 connection while `fn` runs. */
async function statementsDuring(fn: () => Promise<unknown>): Promise<string[]> {
  const proto = Database.prototype as unknown as { prepare: (sql: string) => unknown };
  const original = proto.prepare;
  const texts: string[] = [];
  proto.prepare = function (this: unknown, sql: string) {
    texts.push(sql);
    return original.call(this, sql);
  };
  try {
    await fn();
  } finally {
    proto.prepare = original;
  }
  return texts;
}

describe('SQLite claim with a backlog', () => {
  let backend: StoreBackend;
  let path: string;
  const runIds: string[] = [];

  beforeAll(async () => {
    backend = await makeSqliteBackend();
    const store = await backend.open();
    path = store.location;
    const h = new Harness(store, {}, runIds);
    await h.startRun(wide);
    for (let i = 0; i < BACKLOG; i++) await h.startRun(chain);
    await store.close();
  }, 60_000);

  afterAll(async () => {
    await backend.cleanup();
  });

  it('reads ready steps in claim order by index and each run by its key: no table scan, no sort', async () => {
    const store = await backend.open();
    const h = new Harness(store, {}, []);
    // A fresh store object prepares its statements during this claim: they are the claim's.
    const texts = await statementsDuring(() => h.claim('w1', 8));
    await store.close();
    const selects = texts.filter((t) => /^\s*SELECT/i.test(t) && /step_executions/.test(t));
    expect(selects.length).toBeGreaterThan(0);
    const db = new Database(path, { readonly: true });
    try {
      const plans = selects.map((sql) => {
        const params = (sql.match(/\?/g) ?? []).length;
        const rows = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...Array<null>(params).fill(null)) as Array<{ detail: string }>;
        return { sql, detail: rows.map((r) => r.detail) };
      });
      for (const p of plans) {
        expect(p.detail.filter((d) => /^SCAN /.test(d) || /TEMP B-TREE/.test(d)), `${p.sql}\n${p.detail.join('\n')}`).toEqual([]);
      }
      const ready = plans.find((p) => /status = 'ready'/.test(p.sql) && /workflow_runs/.test(p.sql));
      expect(ready, 'the claim of ready steps').toBeDefined();
      expect(ready?.detail.join('\n')).toMatch(/idx_steps_ready_order/);
      // The run of each candidate is looked up by its primary key, not walked from idx_runs_status.
      expect(ready?.detail.join('\n')).not.toMatch(/idx_runs_status/);
      expect(ready?.detail.some((d) => /SEARCH r USING .*\(id=\?\)/.test(d))).toBe(true);
    } finally {
      db.close();
    }
  });

  it('claims in the order runs became ready and keeps per-run concurrency limits', async () => {
    const fresh = await makeSqliteBackend();
    const store = await fresh.open();
    const ids: string[] = [];
    const h = new Harness(store, {}, ids);
    try {
      await h.startRun(wide);
      for (let i = 0; i < 6; i++) {
        await new Promise((r) => setTimeout(r, 3));
        await h.startRun(chain);
      }
      const first = await h.claim('w1', 8);
      // The wide run (ready first) may run 2 steps at once; the rest of the claim goes to the oldest chains.
      expect(first.filter((c) => c.run_id === ids[0]).map((c) => c.step_id)).toEqual(['w1', 'w2']);
      const chains = first.filter((c) => c.run_id !== ids[0]);
      expect(chains.length).toBeGreaterThan(0);
      expect(chains.map((c) => c.run_id)).toEqual(ids.slice(1, 1 + chains.length));
      expect(chains.every((c) => c.step_id === 'a')).toBe(true);
      const next = await h.claim('w1', 8);
      expect(next.map((c) => c.run_id)).toEqual(ids.slice(1 + chains.length));
    } finally {
      await store.close();
      await fresh.cleanup();
    }
  });
});
