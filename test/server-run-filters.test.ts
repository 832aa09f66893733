/**
 * The runs list's filters as the dashboard uses them, over HTTP on SQLite and PostgreSQL: several
 * statuses at once (`?status=a,b`), metadata with the other filters and the cursor, and the same
 * filters in a bulk cancel and retry, which act on exactly the matching runs and nothing else.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/server/app.js';
import { Swarm } from '../src/swarm.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { EXAMPLES, removeProject, tempProject } from './helpers/project.js';

afterAll(async () => {
  await stopPgTestServer();
});

const backends: Array<[string, () => Promise<Record<string, string>>]> = [
  ['sqlite', async () => ({})],
  ['postgres', async () => ({ SWARM_DATABASE_URL: await (await pgTestServer()).createDatabase() })],
];

interface Page {
  runs: Array<{ run_id: string; status: string }>;
  next_cursor: string | null;
}
interface Bulk {
  results: Array<{ id: string; run_id?: string; result: string; code?: string }>;
  done: number;
  refused: number;
  not_found: number;
  more: boolean;
}

describe.each(backends)('run list and bulk filters on %s', (_name, envOf) => {
  it('several statuses, metadata with a cursor, and a bulk cancel then retry by metadata act on exactly the matching runs', async () => {
    const dir = tempProject();
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), ...(await envOf()) } });
    try {
      await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
      await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'order-wait'));
      const app = createApp(swarm);
      const get = async <T>(path: string): Promise<{ status: number; json: T }> => {
        const res = await app.request(path);
        return { status: res.status, json: (await res.json()) as T };
      };
      const post = async (path: string, body: unknown): Promise<{ status: number; json: Bulk & Record<string, unknown> }> => {
        const res = await app.request(path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
        return { status: res.status, json: (await res.json()) as Bulk & Record<string, unknown> };
      };
      // No worker runs here: every run stays queued until cancelled, so the states are ours to set.
      const eu: string[] = [];
      const us: string[] = [];
      for (let i = 0; i < 5; i++) eu.push(await swarm.startRun('order-wait', { order_id: i }, { trigger_type: 'api', metadata: { region: 'eu', team: 'ops' } }));
      for (let i = 0; i < 3; i++) us.push(await swarm.startRun('order-wait', { order_id: 10 + i }, { trigger_type: 'api', metadata: { region: 'us', team: 'ops' } }));
      const plain = await swarm.startRun('order-wait', { order_id: 99 });
      await swarm.cancel(us[0]!, 'set up');

      // Several statuses: any of them; one status and a repeated one are the same filter.
      const ids = async (q: string): Promise<string[]> => {
        const r = await get<Page>(`/api/v1/runs?${q}`);
        expect(r.status, q).toBe(200);
        return r.json.runs.map((x) => x.run_id).sort();
      };
      expect(await ids('status=queued,cancelled&limit=500')).toEqual([...eu, ...us, plain].sort());
      expect(await ids('status=cancelled')).toEqual([us[0]]);
      expect(await ids('status=cancelled,cancelled')).toEqual([us[0]]);
      expect(await ids('status=running,cancelled&metadata.region=us')).toEqual([us[0]]);
      expect(await ids('status=running,waiting')).toEqual([]);
      const bad = await get<{ code: string; detail: string }>('/api/v1/runs?status=queued,done');
      expect(bad.status).toBe(422);
      expect(bad.json.detail).toMatch(/one or more of queued, running/);

      // Metadata with a cursor: pages of 2, newest first, no run twice, none left out.
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { status: number; json: Page } = await get<Page>(`/api/v1/runs?metadata.region=eu&status=queued&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.status).toBe(200);
        seen.push(...page.json.runs.map((r) => r.run_id));
        cursor = page.json.next_cursor;
      } while (cursor !== null);
      expect(seen).toEqual([...eu].reverse());

      // Bulk cancel by filter (metadata + several statuses): the eu runs, not the us ones nor the plain one.
      const cancel = await post('/api/v1/runs/cancel', { filter: { metadata: { region: 'eu' }, status: ['queued', 'running', 'waiting'] }, reason: 'region closed' });
      expect(cancel.status).toBe(200);
      expect(cancel.json).toMatchObject({ done: 5, refused: 0, not_found: 0, more: false });
      expect(cancel.json.results.map((r) => r.run_id).sort()).toEqual([...eu].sort());
      for (const id of eu) expect((await swarm.getRun(id)).run.status).toBe('cancelled');
      for (const id of [...us.slice(1), plain]) expect((await swarm.getRun(id)).run.status).toBe('queued');

      // A limit on a filter: `more` says runs are left; the repeat finishes the job.
      const some = await post('/api/v1/runs/retry', { filter: { metadata: { region: 'eu' }, status: 'cancelled' }, limit: 3 });
      expect(some.json).toMatchObject({ done: 3, more: true });
      const rest = await post('/api/v1/runs/retry', { filter: { metadata: { region: 'eu' }, status: 'cancelled' } });
      expect(rest.json).toMatchObject({ done: 2, more: false });
      expect(await ids('metadata.region=eu&status=queued')).toEqual([...eu].sort());
      expect(await ids('status=cancelled')).toEqual([us[0]]);

      // A bad status in a bulk filter is refused whole, before anything is done.
      const refused = await post('/api/v1/runs/cancel', { filter: { status: ['queued', 'done'] } });
      expect(refused.status).toBe(422);
      expect(await ids('status=queued&limit=500')).toEqual([...eu, ...us.slice(1), plain].sort());
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });
});
