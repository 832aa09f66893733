/**
 * `GET /api/v1/workers` and what the dashboard's Registry reads about an LLM agent, in process
 * (`app.request()`), on SQLite and PostgreSQL: a running worker is listed live with a fresh
 * heartbeat; a worker whose heartbeat is older than a lease, or whose process on this machine is
 * gone, is listed dead; a stopped one is not listed.
 */
import { join } from 'node:path';
import { hostname } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/server/app.js';
import { hostIdentity } from '../src/engine/reaper.js';
import { Swarm } from '../src/swarm.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { request } from './helpers/http.js';
import { EXAMPLES, removeProject, tempProject, until } from './helpers/project.js';

afterAll(async () => {
  await stopPgTestServer();
});

const backends: Array<[string, () => Promise<Record<string, string>>]> = [
  ['sqlite', async () => ({})],
  ['postgres', async () => ({ SWARM_DATABASE_URL: await (await pgTestServer()).createDatabase() })],
];

interface WorkerJson {
  id: string;
  hostname: string;
  pid: number;
  concurrency: number;
  only_run: string | null;
  heartbeat_at: string;
  heartbeat_age_ms: number;
  live: boolean;
}

describe.each(backends)('workers over the API on %s', (_name, envOf) => {
  it('lists the running worker live, a stale or vanished one dead, and not a stopped one', async () => {
    const dir = tempProject('name: workers-test\nsandbox: none\n');
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), ...(await envOf()) } });
    const worker = swarm.worker({ concurrency: 3 });
    try {
      const app = createApp(swarm, { version: 'test' });
      const list = async (): Promise<WorkerJson[]> => {
        const r = await request(app, 'GET', '/api/v1/workers');
        expect(r.status).toBe(200);
        return (r.json as { workers: WorkerJson[] }).workers;
      };
      const mine = await until(async () => (await list()).find((w) => w.pid === process.pid), 10_000, 'the worker registers');
      expect(mine).toMatchObject({ hostname: hostname(), concurrency: 3, only_run: null, live: true });
      expect(mine.heartbeat_age_ms).toBeGreaterThanOrEqual(0);
      expect(mine.heartbeat_age_ms).toBeLessThan(10_000);
      expect(Number.isNaN(Date.parse(mine.heartbeat_at))).toBe(false);

      const now = await swarm.store.now();
      const base = { hostname: 'elsewhere', concurrency: 1, scope: null, stopped_at: null };
      // Another machine, silent for an hour: dead by its heartbeat.
      await swarm.store.registerWorker({ ...base, id: 'w-stale', host_id: 'elsewhere/boot/1', pid: 4242, started_at: now - 3_600_000, heartbeat_at: now - 3_600_000 });
      // This machine, a fresh heartbeat, but no such process: dead by its pid.
      await swarm.store.registerWorker({ ...base, id: 'w-gone', hostname: hostname(), host_id: hostIdentity(), pid: 2 ** 22 + 17, started_at: now, heartbeat_at: now });
      // Stopped: not listed.
      await swarm.store.registerWorker({ ...base, id: 'w-stopped', host_id: 'elsewhere/boot/1', pid: 4243, started_at: now, heartbeat_at: now });
      await swarm.store.stopWorker('w-stopped');

      const all = await list();
      expect(all.map((w) => w.id)).not.toContain('w-stopped');
      expect(all.find((w) => w.id === 'w-stale')).toMatchObject({ live: false, hostname: 'elsewhere', pid: 4242 });
      expect(all.find((w) => w.id === 'w-stale')!.heartbeat_age_ms).toBeGreaterThanOrEqual(3_600_000);
      expect(all.find((w) => w.id === 'w-gone')).toMatchObject({ live: false });
      expect(all.find((w) => w.pid === process.pid)?.live).toBe(true);
    } finally {
      await worker.stop(1000);
      await swarm.close();
      removeProject(dir);
    }
  });
});

describe('an agent over the API', () => {
  it("an LLM agent's provider, model, tools and handoffs; null for other runtimes", async () => {
    const dir = tempProject('name: agents-test\nsandbox: none\n');
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') } });
    try {
      for (const a of ['echo', 'billing', 'refunds', 'triage']) await swarm.registerAgent(join(EXAMPLES, 'agents', a));
      const app = createApp(swarm, { version: 'test' });
      const triage = await request(app, 'GET', '/api/v1/agents/triage');
      expect(triage.status).toBe(200);
      expect(triage.json).toMatchObject({ runtime: 'llm', versions: ['1.0.0'], llm: { provider: 'openai', model: 'gpt-4o-mini', temperature: 0, max_turns: 8, tools: [], handoffs: ['billing', 'refunds'] } });
      const refunds = await request(app, 'GET', '/api/v1/agents/refunds');
      expect((refunds.json.llm as { tools: unknown[] }).tools).toEqual([{ module: 'tools.ts', export: 'refund', needs_approval: true }]);
      const echo = await request(app, 'GET', '/api/v1/agents/echo');
      expect(echo.json.llm).toBeNull();
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });
});
