/**
 * `/api/v1/schedules` in process (`app.request()`): list, show, preview, pause, resume, trigger, and
 * the 404 problems for an unknown workflow and a workflow without a schedule.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/server/app.js';
import type { Swarm } from '../src/swarm.js';
import { EXAMPLES, openProject, removeProject, tempProject, writeWorkflow } from './helpers/project.js';

type Json = Record<string, unknown>;

let dir: string;
let swarm: Swarm;
let app: ReturnType<typeof createApp>;

async function call(method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; json: Json; headers: Headers }> {
  const res = await app.request(path, { method, headers });
  return { status: res.status, type: res.headers.get('content-type') ?? '', json: (await res.json()) as Json, headers: res.headers };
}

beforeAll(async () => {
  dir = tempProject('name: schedules-api\nsandbox: none\n');
  swarm = await openProject(dir);
  await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
  const steps = 'steps:\n  - id: a\n    agent: echo\n    inputs: {message: hi}\n';
  await swarm.registerWorkflow(writeWorkflow(dir, 'nightly', `name: nightly\nversion: 1.0.0\ntrigger: {type: schedule, cron: "0 2 * * *", timezone: Europe/Paris, overlap: buffer_one, catchup: {policy: all, window: 3h, max_runs: 4}}\n${steps}`));
  await swarm.registerWorkflow(writeWorkflow(dir, 'by-hand', `name: by-hand\nversion: 1.0.0\n${steps}`));
  app = createApp(swarm, { version: 'test' });
});

afterAll(async () => {
  await swarm.close();
  removeProject(dir);
});

describe('/api/v1/schedules', () => {
  it('lists and shows schedules with their policies, next run and state', async () => {
    const list = await call('GET', '/api/v1/schedules');
    expect(list.status).toBe(200);
    const schedules = list.json.schedules as Json[];
    expect(schedules).toHaveLength(1);
    expect(schedules[0]).toMatchObject({
      workflow: 'nightly',
      version: '1.0.0',
      cron: '0 2 * * *',
      timezone: 'Europe/Paris',
      overlap: 'buffer_one',
      catchup: { policy: 'all', window_seconds: 10_800, max_runs: 4 },
      enabled: true,
      paused: false,
      last_fired_at: null,
      buffered_tick: null,
    });
    // 02:00 in Paris is 00:00 or 01:00 UTC.
    expect(schedules[0]!.next_run_at).toMatch(/T0[01]:00:00\.000Z$/);
    const one = await call('GET', '/api/v1/schedules/nightly');
    expect(one.json).toEqual(schedules[0]);
  });

  it('previews the next ticks, 5 by default, up to ?count', async () => {
    const r = await call('GET', '/api/v1/schedules/nightly/preview');
    expect(r.status).toBe(200);
    const ticks = r.json.ticks as string[];
    expect(ticks).toHaveLength(5);
    expect(ticks[0]).toBe((r.json.schedule as Json).next_run_at);
    expect(Date.parse(ticks[1]!) - Date.parse(ticks[0]!)).toBeGreaterThanOrEqual(23 * 3_600_000);
    expect(((await call('GET', '/api/v1/schedules/nightly/preview?count=12')).json.ticks as string[]).length).toBe(12);
    const bad = await call('GET', '/api/v1/schedules/nightly/preview?count=0');
    expect(bad.status).toBe(422);
    expect(bad.type).toBe('application/problem+json');
  });

  it('pauses and resumes', async () => {
    const paused = await call('POST', '/api/v1/schedules/nightly/pause');
    expect(paused.status).toBe(200);
    expect(paused.json.paused).toBe(true);
    expect((await call('GET', '/api/v1/schedules/nightly')).json.paused).toBe(true);
    const resumed = await call('POST', '/api/v1/schedules/nightly/resume');
    expect(resumed.json.paused).toBe(false);
    expect((await swarm.getSchedule('nightly')).paused).toBe(false);
  });

  it('pause, resume and trigger take no body: an unknown field is 422 naming it, malformed JSON 400, another type 415; nothing changes', async () => {
    const send = async (path: string, body: string, type = 'application/json'): Promise<{ status: number; type: string; json: Json }> => {
      const res = await app.request(path, { method: 'POST', headers: { 'content-type': type }, body });
      return { status: res.status, type: res.headers.get('content-type') ?? '', json: (await res.json()) as Json };
    };
    const before = (await swarm.listRuns({ workflow: 'nightly', limit: 100 })).length;
    for (const action of ['pause', 'resume', 'trigger']) {
      const path = `/api/v1/schedules/nightly/${action}`;
      const malformed = await send(path, '{bad');
      expect(malformed.status, action).toBe(400);
      expect(malformed.type).toBe('application/problem+json');
      expect(malformed.json.code).toBe('JSON_INVALID');
      const unknown = await send(path, '{"x": 1}');
      expect(unknown.status, action).toBe(422);
      expect(unknown.json).toMatchObject({ code: 'VALIDATION_FAILED', field: 'x' });
      expect(unknown.json.detail).toContain('is not a known field');
      expect((await send(path, '{"x": 1}', 'text/plain')).status, action).toBe(415);
    }
    expect((await swarm.getSchedule('nightly')).paused).toBe(false);
    expect((await swarm.listRuns({ workflow: 'nightly', limit: 100 })).length).toBe(before);
    // An empty body (with a JSON type, or none) and `{}` are fine.
    expect((await send('/api/v1/schedules/nightly/pause', '')).status).toBe(200);
    expect((await send('/api/v1/schedules/nightly/resume', '{}')).status).toBe(200);
    expect((await swarm.getSchedule('nightly')).paused).toBe(false);
  });

  it('trigger fires one run now (trigger type schedule); an Idempotency-Key repeat returns it', async () => {
    const r = await call('POST', '/api/v1/schedules/nightly/trigger', { 'idempotency-key': 'k-1' });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ workflow: 'nightly', status: 'queued', idempotency_key: 'schedule:nightly:manual:k-1', metadata: { schedule: 'fired by hand' } });
    const id = r.json.run_id as string;
    expect((await swarm.getRun(id)).run.trigger_type).toBe('schedule');
    expect(r.headers.get('location')).toBe(`/api/v1/runs/${id}`);
    const again = await call('POST', '/api/v1/schedules/nightly/trigger', { 'idempotency-key': 'k-1' });
    expect(again.status).toBe(200);
    expect(again.json.run_id).toBe(id);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const data = (await swarm.getRun(id)).run.trigger_data as Json;
    expect(Object.keys(data).sort()).toEqual(['fired_at', 'scheduled_at']);
  });

  it("a caller's key cannot take a tick's run: by hand under the schedule's key space, over the runs route refused", async () => {
    const tick = 'schedule:nightly:2030-01-01T09:00:00.000Z';
    const byHand = await call('POST', '/api/v1/schedules/nightly/trigger', { 'idempotency-key': tick });
    expect(byHand.status).toBe(201);
    expect(byHand.json.idempotency_key).toBe(`schedule:nightly:manual:${tick}`);
    for (const key of [tick, 'webhook:orders:msg_1', 'event:evt-1:nightly']) {
      const r = await call('POST', '/api/v1/workflows/nightly/runs', { 'idempotency-key': key });
      expect(r.status, key).toBe(422);
      expect(r.json.code).toBe('IDEMPOTENCY_KEY_RESERVED');
    }
    expect((await swarm.listRuns({ limit: 100 })).filter((run) => run.idempotency_key === tick)).toEqual([]);
  });

  it('an unknown workflow and a workflow without a schedule: 404 problems', async () => {
    for (const path of ['/api/v1/schedules/nope', '/api/v1/schedules/nope/preview', '/api/v1/schedules/nope/pause', '/api/v1/schedules/nope/trigger']) {
      const r = await call(path.endsWith('nope') || path.endsWith('preview') ? 'GET' : 'POST', path);
      expect(r.status, path).toBe(404);
      expect(r.type).toBe('application/problem+json');
      expect(r.json).toMatchObject({ code: 'WORKFLOW_NOT_FOUND', type: 'urn:swarm:problem:workflow-not-found' });
    }
    const manual = await call('POST', '/api/v1/schedules/by-hand/resume');
    expect(manual.status).toBe(404);
    expect(manual.json).toMatchObject({ code: 'SCHEDULE_NOT_FOUND', workflow: 'by-hand' });
    expect(manual.json.detail).toMatch(/workflow by-hand has no schedule \(its trigger is manual\)/);
  });

  it('a disabled workflow: listed as disabled, and trigger is refused with 403', async () => {
    await swarm.setWorkflowEnabled('nightly', false);
    try {
      expect((await call('GET', '/api/v1/schedules/nightly')).json.enabled).toBe(false);
      const r = await call('POST', '/api/v1/schedules/nightly/trigger');
      expect(r.status).toBe(403);
      expect(r.json.code).toBe('WORKFLOW_DISABLED');
    } finally {
      await swarm.setWorkflowEnabled('nightly', true);
    }
  });

  it('the routes are in the OpenAPI document', async () => {
    const doc = (await call('GET', '/api/v1/openapi.json')).json as { paths: Record<string, unknown> };
    for (const p of ['/api/v1/schedules', '/api/v1/schedules/{workflow}', '/api/v1/schedules/{workflow}/preview', '/api/v1/schedules/{workflow}/pause', '/api/v1/schedules/{workflow}/resume', '/api/v1/schedules/{workflow}/trigger']) {
      expect(doc.paths, p).toHaveProperty([p]);
    }
  });
});
