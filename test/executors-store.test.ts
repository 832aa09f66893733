/**
 * The executors registry (migration 24) and a run's shared_inputs column, on SQLite and PostgreSQL:
 * put (insert, replace keeping created_at), get, list by name, delete; shared_inputs written with the
 * run and read back; the executor client resolved from the store with its token secret.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import type { Store } from '../src/store/store.js';
import { executorClientFor } from '../src/executors/http/resolver.js';
import { Swarm } from '../src/swarm.js';
import { pgTestServer, stopPgTestServer, type PgTestServer } from './helpers/pg.js';
import { builtinAgent, removeProject, tempProject, writeWorkflow } from './helpers/project.js';

let server: PgTestServer;
beforeAll(async () => {
  server = await pgTestServer();
});
afterAll(async () => {
  await stopPgTestServer();
});

interface Backend {
  name: string;
  open(): Promise<{ store: Store; env: Record<string, string>; cleanup: () => Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'SQLite',
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'swarm-exec-store-'));
      const path = join(dir, 'swarm.db');
      return { store: openSqliteStore({ path, durability: 'full' }), env: { SWARM_DATABASE_URL: '', SWARM_DB: path }, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'PostgreSQL',
    open: async () => {
      const url = await server.createDatabase();
      return { store: await openPostgresStore({ url, durability: 'full' }), env: { SWARM_DATABASE_URL: url }, cleanup: () => server.dropDatabase(url) };
    },
  },
];

describe.each(backends)('the executors registry on $name', (b) => {
  it('puts, replaces (keeping created_at), gets, lists by name and deletes', async () => {
    const { store, cleanup } = await b.open();
    try {
      expect(await store.listExecutors()).toEqual([]);
      expect(await store.getExecutor('rt')).toBeUndefined();
      const a = await store.putExecutor({ name: 'rt', base_url: 'http://127.0.0.1:8787', token_secret: null, public_key: null });
      expect(a).toMatchObject({ name: 'rt', base_url: 'http://127.0.0.1:8787', token_secret: null, public_key: null });
      expect(a.created_at).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 5));
      const b2 = await store.putExecutor({ name: 'rt', base_url: 'https://rt.example.com/runtime', token_secret: 'RT_TOKEN', public_key: 'k'.repeat(43) + '=' });
      expect(b2.created_at).toBe(a.created_at);
      expect(b2.updated_at).toBeGreaterThan(a.updated_at);
      await store.putExecutor({ name: 'alpha', base_url: 'http://a:1', token_secret: null, public_key: null });
      expect((await store.listExecutors()).map((e) => e.name)).toEqual(['alpha', 'rt']);
      expect(await store.getExecutor('rt')).toEqual(b2);
      expect(await store.deleteExecutor('rt')).toBe(true);
      expect(await store.deleteExecutor('rt')).toBe(false);
      expect((await store.listExecutors()).map((e) => e.name)).toEqual(['alpha']);
    } finally {
      await store.close();
      await cleanup();
    }
  });

  it('resolves a client: unknown names are refused naming them, the token comes from its secret', async () => {
    const { store, cleanup } = await b.open();
    try {
      await store.putExecutor({ name: 'rt', base_url: 'http://127.0.0.1:1', token_secret: 'RT_TOKEN', public_key: null });
      await expect(executorClientFor(store, () => undefined, 'nope')).rejects.toMatchObject({ code: 'EXECUTOR_UNKNOWN', message: expect.stringContaining("executor 'nope' is not registered (registered: rt)") });
      await expect(executorClientFor(store, () => undefined, 'rt')).rejects.toMatchObject({ code: 'EXECUTOR_TOKEN_MISSING', message: expect.stringContaining("secret 'RT_TOKEN'") });
      let auth = '';
      const client = await executorClientFor(store, (n) => (n === 'RT_TOKEN' ? 'tok-1' : undefined), 'rt', {
        fetch: async (_url, init) => {
          auth = new Headers(init?.headers).get('authorization') ?? '';
          return new Response(JSON.stringify({ status: 'ok' }), { headers: { 'content-type': 'application/json' } });
        },
      });
      expect(client.record.base_url).toBe('http://127.0.0.1:1');
      expect(await client.health()).toEqual({ status: 'ok' });
      expect(auth).toBe('Bearer tok-1');
    } finally {
      await store.close();
      await cleanup();
    }
  });

  it("keeps a run's shared_inputs with the run (and none when not given); a too-large one is refused before anything is written", async () => {
    const { store, env, cleanup } = await b.open();
    await store.close();
    const dir = tempProject();
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), ...env } });
    try {
      builtinAgent(dir, 'noop-a', 'noop');
      await swarm.registerAgent(join(dir, 'agents', 'noop-a'));
      writeWorkflow(dir, 'one', 'name: one\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: noop-a\n');
      await swarm.registerWorkflows(join(dir, 'workflows'));
      const r1 = await swarm.startRun('one', {}, { sharedInputs: { ticket: 'T-1', urls: ['https://example.com/a'] } });
      const r2 = await swarm.startRun('one', {}, { sharedInputs: 'plain text' });
      const r3 = await swarm.startRun('one', {});
      expect(JSON.parse((await swarm.store.getRunSharedInputs(r1)) ?? 'null')).toEqual({ ticket: 'T-1', urls: ['https://example.com/a'] });
      expect(await swarm.store.getRunSharedInputs(r2)).toBe('"plain text"');
      expect(await swarm.store.getRunSharedInputs(r3)).toBeNull();
      expect(await swarm.store.getRunSharedInputs('no-such-run')).toBeUndefined();
      const before = (await swarm.store.listRuns({})).length;
      await expect(swarm.startRun('one', {}, { sharedInputs: { blob: 'x'.repeat(70_000) } })).rejects.toMatchObject({ code: 'SHARED_INPUTS_TOO_LARGE', message: expect.stringContaining('more than the 65536 allowed') });
      expect((await swarm.store.listRuns({})).length).toBe(before);
    } finally {
      await swarm.close();
      removeProject(dir);
      await cleanup();
    }
  });
});
