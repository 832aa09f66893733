/**
 * Signals over the HTTP API, in process: `POST /api/v1/runs/{id}/signals/{name}` delivers to a
 * waiting step or keeps the signal; 404 unknown run, 409 finished run, 422 bad body or name; the
 * route needs `runs:write` once tokens exist; `GET …/signals` lists them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/server/app.js';
import { scopeFor } from '../src/server/auth.js';
import type { Worker } from '../src/engine/worker.js';
import type { Swarm } from '../src/swarm.js';
import { expectProblem, request, type Answer } from './helpers/http.js';
import { openProject, removeProject, tempProject, until, writeWorkflow } from './helpers/project.js';

let dir: string;
let swarm: Swarm;
let worker: Worker;
let app: ReturnType<typeof createApp>;

const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> => request(app, method, path, body, headers);

beforeAll(async () => {
  dir = tempProject('name: signals-test\n');
  swarm = await openProject(dir, { overrides: { pollMs: 100 } });
  await swarm.registerWorkflow(writeWorkflow(dir, 'approval-signal', 'name: approval-signal\nversion: 1.0.0\nsteps:\n  - { id: decision, kind: wait, signal: decided }\n'));
  await swarm.registerWorkflow(writeWorkflow(dir, 'two-signals', 'name: two-signals\nversion: 1.0.0\nsteps:\n  - { id: first, kind: wait, signal: first }\n  - { id: second, kind: wait, signal: decided, depends_on: first }\n'));
  worker = swarm.worker({ pollMs: 100 });
  app = createApp(swarm, { version: 'test', worker: { concurrency: 4 }, maxBodyBytes: 4096 });
});

afterAll(async () => {
  await worker.stop(1000);
  await swarm.close();
  removeProject(dir);
});

describe('POST /api/v1/runs/{id}/signals/{name}', () => {
  it('delivers to the waiting step (202), whose outputs are the body; the run completes; the signal is listed as consumed', async () => {
    const id = await swarm.startRun('approval-signal', {});
    await until(async () => (await swarm.getRun(id)).steps[0]?.status === 'waiting');
    const r = await call('POST', `/api/v1/runs/${id}/signals/decided`, { approved: true, by: 'alice' });
    expect(r.status).toBe(202);
    expect(r.json).toEqual({ run_id: id, name: 'decided', seq: expect.any(Number), delivered_to: 'decision' });
    const done = await swarm.wait(id);
    expect(done.run.status).toBe('completed');
    expect(done.steps[0]?.outputs).toEqual({ approved: true, by: 'alice' });
    const listed = await call('GET', `/api/v1/runs/${id.slice(-12)}/signals`);
    expect(listed.json).toMatchObject({ run_id: id, signals: [{ name: 'decided', data: { approved: true, by: 'alice' }, consumed_by: 'decision', sent_at: expect.any(String) }] });
  });

  it('a signal sent before its step waits is kept (delivered_to null), then taken; no body means {}', async () => {
    const id = await swarm.startRun('two-signals', {});
    await until(async () => (await swarm.getRun(id)).steps[0]?.status === 'waiting');
    const kept = await call('POST', `/api/v1/runs/${id}/signals/decided`, { n: 2 });
    expect(kept.status).toBe(202);
    expect(kept.json.delivered_to).toBeNull();
    expect((await call('POST', `/api/v1/runs/${id}/signals/first`)).json.delivered_to).toBe('first');
    const done = await swarm.wait(id);
    expect(done.steps.map((s) => s.outputs)).toEqual([{}, { n: 2 }]);
  });

  it('404 for an unknown run, 409 for a finished run, 422 for a body that is not an object or a bad name (400: not JSON)', async () => {
    expectProblem(await call('POST', '/api/v1/runs/0000-no-such-run/signals/decided', {}), 404, 'RUN_NOT_FOUND');
    const id = await swarm.startRun('approval-signal', {});
    await swarm.cancel(id);
    expectProblem(await call('POST', `/api/v1/runs/${id}/signals/decided`, {}), 409, 'RUN_FINISHED');
    const live = await swarm.startRun('approval-signal', {});
    expectProblem(await call('POST', `/api/v1/runs/${live}/signals/decided`, [1, 2]), 422, 'VALIDATION_FAILED');
    expectProblem(await call('POST', `/api/v1/runs/${live}/signals/decided`, 'not json'), 400, 'JSON_INVALID');
    expectProblem(await call('POST', `/api/v1/runs/${live}/signals/bad%20name`, {}), 422, 'SIGNAL_NAME_INVALID');
    // Nothing was recorded by the refused requests.
    expect((await swarm.runSignals(live)).signals).toEqual([]);
    await swarm.cancel(live);
  });

  it('needs the runs:write scope', () => {
    expect(scopeFor('POST', '/api/v1/runs/abc/signals/decided')).toBe('runs:write');
    expect(scopeFor('GET', '/api/v1/runs/abc/signals')).toBe('read');
  });
});
