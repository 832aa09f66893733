/**
 * Run list filters by trigger kind and metadata, and the list of run changes behind the list-level
 * stream: on SQLite and PostgreSQL, through the Swarm API, `GET /api/v1/runs` and both streams.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
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

describe.each(backends)('run filters and run changes on %s', (_name, envOf) => {
  it('trigger_type and metadata (several keys, odd keys, no SQL) filter runs; changes come in (updated_at, id) order after a cursor; both streams read this store', async () => {
    const dir = tempProject();
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), ...(await envOf()) } });
    try {
      await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
      await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'echo-chain'));
      const input = { message: 'hi' };
      const a = await swarm.startRun('echo-chain', input, { trigger_type: 'api', metadata: { source: 'crm', region: 'eu' } });
      const b = await swarm.startRun('echo-chain', input, { trigger_type: 'api', metadata: { source: 'crm', region: 'us' } });
      const c = await swarm.startRun('echo-chain', input, { trigger_type: 'schedule', metadata: { source: 'cron', "we'ird.key\"": 'x' } });
      const d = await swarm.startRun('echo-chain', input);

      const ids = async (f: Parameters<Swarm['listRuns']>[0]): Promise<string[]> => (await swarm.listRuns(f)).map((r) => r.id).sort();
      expect(await ids({ trigger_type: 'api' })).toEqual([a, b].sort());
      expect(await ids({ trigger_type: 'manual' })).toEqual([d]);
      expect(await ids({ metadata: { source: 'crm' } })).toEqual([a, b].sort());
      expect(await ids({ metadata: { source: 'crm', region: 'eu' } })).toEqual([a]);
      expect(await ids({ metadata: { "we'ird.key\"": 'x' } })).toEqual([c]);
      expect(await ids({ metadata: { source: "crm' OR '1'='1" } })).toEqual([]);
      expect(await ids({ trigger_type: 'schedule', metadata: { source: 'crm' } })).toEqual([]);

      // Over HTTP: the same filters as query parameters.
      const app = createApp(swarm);
      const get = async (q: string): Promise<string[]> => {
        const res = await app.request(`/api/v1/runs?${q}`);
        expect(res.status).toBe(200);
        return ((await res.json()) as { runs: Array<{ run_id: string }> }).runs.map((r) => r.run_id).sort();
      };
      expect(await get('trigger_type=api&metadata.source=crm&metadata.region=us')).toEqual([b]);
      expect(await get(`metadata.${encodeURIComponent("we'ird.key\"")}=x`)).toEqual([c]);
      const twice = await app.request('/api/v1/runs?metadata.source=crm&metadata.source=cron');
      expect(twice.status).toBe(400);
      expect(await twice.json()).toMatchObject({ code: 'ARGUMENT_INVALID', field: 'query.metadata.source' });

      // Changes: oldest first, after a cursor, with the same filters.
      const all = await swarm.listRunChanges({});
      expect(all.map((r) => r.id).sort()).toEqual([a, b, c, d].sort());
      for (let i = 1; i < all.length; i++) {
        const [p, q] = [all[i - 1], all[i]] as [(typeof all)[0], (typeof all)[0]];
        expect(p.updated_at < q.updated_at || (p.updated_at === q.updated_at && p.id < q.id)).toBe(true);
      }
      const first = all[0] as (typeof all)[0];
      expect((await swarm.listRunChanges({ after: { updated_at: first.updated_at, id: first.id } })).map((r) => r.id)).toEqual(all.slice(1).map((r) => r.id));
      expect((await swarm.listRunChanges({ trigger_type: 'schedule' })).map((r) => r.id)).toEqual([c]);
      // A later millisecond than every change above, so it sorts after them whatever the ids.
      await new Promise((r) => setTimeout(r, 5));
      await swarm.cancel(b);
      const later = await swarm.listRunChanges({ after: { updated_at: (all[all.length - 1] as (typeof all)[0]).updated_at, id: (all[all.length - 1] as (typeof all)[0]).id } });
      expect(later.map((r) => [r.id, r.status])).toEqual([[b, 'cancelled']]);
      expect((await swarm.listRunChanges({ status: 'cancelled', workflow: 'echo-chain' })).map((r) => r.id)).toEqual([b]);

      // The streams on this store: a finished run's events then `end`; the list stream from a cursor.
      const shutdown = new AbortController();
      const streaming = createApp(swarm, { shutdown: shutdown.signal });
      const runText = await (await streaming.request(`/api/v1/runs/${b}/stream`)).text();
      const seqs = [...runText.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
      expect(seqs).toEqual((await swarm.events(b)).map((e) => e.seq));
      expect(runText).toContain('event: end\ndata: {"run_id":"' + b + '","status":"cancelled"');
      const cursor = all[all.length - 1] as (typeof all)[0];
      const after = Buffer.from(JSON.stringify([cursor.updated_at, cursor.id])).toString('base64url');
      const list = await streaming.request(`/api/v1/runs/stream?workflow=echo-chain&after=${after}`);
      const reader = (list.body as ReadableStream<Uint8Array>).getReader();
      let text = '';
      while (!text.includes('event: run')) text += new TextDecoder().decode((await reader.read()).value);
      shutdown.abort();
      while (!(await reader.read()).done);
      const sent = [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1] as string) as { run_id: string; status: string });
      expect(sent.map((r) => [r.run_id, r.status])).toEqual([[b, 'cancelled']]);
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });

  it('a created run comes back as the store holds it: createRun and POST …/runs answer without reading it again, and what they answer is what a read gives', async () => {
    const dir = tempProject();
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), ...(await envOf()) } });
    try {
      await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
      await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'echo-chain'));
      const made = await swarm.createRun('echo-chain', { message: 'hi', extra: { nested: [1, 'two', null] } }, { trigger_type: 'api', idempotencyKey: 'k-1', metadata: { source: 'crm' } });
      expect(made.created).toBe(true);
      expect(made.details?.steps.map((s) => s.status)).toEqual(['ready', 'pending']);
      expect(made.details).toEqual(await swarm.getRun(made.runId));
      // A repeated key finds the run: nothing was created, so there is nothing to hand back.
      const again = await swarm.createRun('echo-chain', { message: 'hi' }, { trigger_type: 'api', idempotencyKey: 'k-1' });
      expect(again).toEqual({ runId: made.runId, created: false });

      const app = createApp(swarm);
      const res = await app.request('/api/v1/workflows/echo-chain/runs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: { message: 'over http' }, metadata: { source: 'web' } }) });
      expect(res.status).toBe(201);
      const created = (await res.json()) as { run_id: string };
      const read = await app.request(`/api/v1/runs/${created.run_id}`);
      expect(await read.json()).toEqual(created);
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });
});

describe('run ids', () => {
  it('are UUIDv7, unique and time-ordered across many draws of the random pool', async () => {
    const { newRunId } = await import('../src/swarm.js');
    const ids = Array.from({ length: 2000 }, () => newRunId());
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // The first 48 bits are the creation time in ms: never decreasing.
    const times = ids.map((id) => parseInt(id.replace(/-/g, '').slice(0, 12), 16));
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1] as number);
    expect(Math.abs((times[0] as number) - Date.now())).toBeLessThan(60_000);
    // Within one process they sort in the order they were made, same millisecond or not.
    expect([...ids].sort()).toEqual(ids);
  });

  it('made in one millisecond still sort in the order they were made; a spent counter borrows the next millisecond', async () => {
    const { newRunId } = await import('../src/swarm.js');
    // Just ahead of the real clock, which is then waited for: later ids of this process (the files
    // sharing this worker) are not left dated in the future.
    const fixed = Date.now() + 50;
    const clock = vi.spyOn(Date, 'now').mockReturnValue(fixed);
    let ids: string[];
    try {
      ids = Array.from({ length: 5000 }, () => newRunId());
    } finally {
      clock.mockRestore();
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    const times = ids.map((id) => parseInt(id.replace(/-/g, '').slice(0, 12), 16));
    expect(times[0]).toBe(fixed);
    // The first millisecond's counter starts below 2,048 and holds at most 4,096 values: 5,000 ids
    // spend it and go on in the next one, and the next one's 4,096 are enough.
    expect(times.at(-1)).toBe(fixed + 1);
    // The real clock is behind the borrowed time: the next id still sorts after them.
    const next = newRunId();
    expect(next > (ids.at(-1) as string)).toBe(true);
    while (Date.now() <= fixed + 1) await new Promise((r) => setTimeout(r, 5));
    for (const id of [...ids.slice(0, 3), next]) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
