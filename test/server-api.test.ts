/**
 * The HTTP API in process (`app.request()`): every route, and every error status as an RFC 9457
 * problem document with the error's stable code.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/server/app.js';
import { parseWait } from '../src/server/routes/runs.js';
import { parseTime } from '../src/core/time.js';
import { parseSince } from '../src/cli/context.js';
import type { Swarm } from '../src/swarm.js';
import type { Worker } from '../src/engine/worker.js';
import { builtinAgent, EXAMPLES, openProject, removeProject, tempProject, writeWorkflow } from './helpers/project.js';
import { expectProblem, request, type Answer, type Json } from './helpers/http.js';


let dir: string;
let swarm: Swarm;
let worker: Worker;
let app: ReturnType<typeof createApp>;
/** Released by a test to let the `gate` agent finish. */
let openGate: () => void = () => undefined;
let gate = new Promise<void>((r) => (openGate = r));

function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return request(app, method, path, body, headers);
}

beforeAll(async () => {
  dir = tempProject('name: api-test\nsandbox: none\n');
  swarm = await openProject(dir);
  swarm.defineBuiltin('boom', async () => {
    throw new Error('boom on purpose');
  });
  swarm.defineBuiltin('gate', async (_inputs, ctx) => {
    await Promise.race([gate, new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true }))]);
    return { passed: true };
  });
  await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
  await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'echo-chain'));
  await swarm.registerAgent(builtinAgent(dir, 'boom', 'boom'));
  await swarm.registerAgent(builtinAgent(dir, 'gate', 'gate'));
  await swarm.registerWorkflow(writeWorkflow(dir, 'explode', 'name: explode\nversion: 1.0.0\nsteps:\n  - id: only\n    agent: boom\n'));
  await swarm.registerWorkflow(writeWorkflow(dir, 'gated', 'name: gated\nversion: 1.0.0\nsteps:\n  - id: wait\n    agent: gate\n  - id: after\n    agent: echo\n    depends_on: [wait]\n    inputs:\n      message: done\n'));
  worker = swarm.worker({ concurrency: 4 });
  app = createApp(swarm, { version: '9.9.9', worker: { concurrency: 4 }, maxBodyBytes: 4096 });
});

afterAll(async () => {
  openGate();
  await worker.stop(1000);
  await swarm.close();
  removeProject(dir);
});

describe('health and info', () => {
  it('/healthz, /health and /readyz answer; /api/v1/info tells version, store, worker and sandbox', async () => {
    expect((await call('GET', '/healthz')).json).toEqual({ status: 'ok' });
    expect((await call('GET', '/health')).json).toEqual({ status: 'ok' });
    const ready = await call('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json).toEqual({ status: 'ready', store: 'sqlite', schema_version: swarm.store.supportedSchemaVersion });
    const info = await call('GET', '/api/v1/info');
    expect(info.json).toEqual({ name: 'swarm', version: '9.9.9', store: { kind: 'sqlite', schema_version: swarm.store.supportedSchemaVersion, durability: 'full' }, worker: { running: true, concurrency: 4 }, sandbox: 'none' });
  });

  it('/readyz is 503 when the store is behind the schema this build expects', async () => {
    const behind = createApp({ ...swarm, store: Object.assign(Object.create(swarm.store) as object, { schemaVersion: async () => 1 }), config: swarm.config, isolation: () => swarm.isolation() } as unknown as Swarm);
    const r = await behind.request('/readyz');
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(((await r.json()) as Json).code).toBe('STORE_NOT_MIGRATED');
  });

  it('an unknown route is a 404 problem', async () => {
    expectProblem(await call('GET', '/api/v1/nothing-here'), 404, 'ROUTE_NOT_FOUND');
  });
});

describe('OpenAPI and the API reference', () => {
  it('serves an OpenAPI 3.1 document with every route and the Problem schema', async () => {
    const r = await call('GET', '/api/v1/openapi.json');
    expect(r.status).toBe(200);
    expect(r.json.openapi).toBe('3.1.0');
    const paths = Object.keys(r.json.paths as Json).sort();
    expect(paths).toEqual(
      [
        '/health',
        '/healthz',
        '/readyz',
        '/api/v1/info',
        '/api/v1/agents',
        '/api/v1/agents/{name}',
        '/api/v1/workflows',
        '/api/v1/workflows/{name}',
        '/api/v1/workflows/{name}/enable',
        '/api/v1/workflows/{name}/disable',
        '/api/v1/workflows/{name}/runs',
        '/api/v1/runs',
        '/api/v1/runs/{id}',
        '/api/v1/runs/{id}/steps',
        '/api/v1/runs/{id}/events',
        '/api/v1/runs/{id}/logs',
        '/api/v1/runs/{id}/verify',
        '/api/v1/runs/{id}/cancel',
        '/api/v1/runs/{id}/retry',
        '/api/v1/tokens',
        '/api/v1/tokens/{id}',
        '/api/v1/stream-tokens',
        '/api/v1/breakers',
        '/api/v1/breakers/{key}/reset',
        '/api/v1/runs/{id}/stream',
        '/api/v1/runs/{id}/steps/{step}/transcript',
        '/api/v1/runs/stream',
        '/api/v1/runs/cancel',
        '/api/v1/runs/retry',
        '/api/v1/approvals',
        '/api/v1/runs/{id}/signals/{name}',
        '/api/v1/runs/{id}/signals',
        '/api/v1/approvals/{run}/{step}/approve',
        '/api/v1/approvals/{run}/{step}/reject',
        '/api/v1/secrets',
        '/api/v1/session',
        '/api/v1/secrets/{name}',
        '/api/v1/schedules',
        '/api/v1/schedules/{workflow}',
        '/api/v1/schedules/{workflow}/preview',
        '/api/v1/schedules/{workflow}/pause',
        '/api/v1/schedules/{workflow}/resume',
        '/api/v1/schedules/{workflow}/trigger',
        '/webhooks',
        '/api/v1/webhooks',
        '/webhooks/{path}',
        '/workflows/{path}/trigger',
        '/api/v1/events',
        '/api/v1/events/triggers',
        '/api/v1/workers',
        '/api/v1/memory/{namespace}',
        '/api/v1/memory/{namespace}/search',
        '/api/v1/tasks',
        '/api/v1/tasks/{id}',
        '/api/v1/tasks/{id}/votes',
        '/api/v1/runs/{id}/fork',
        '/api/v1/runs/{id}/lineage',
        '/metrics',
      ].sort(),
    );
    const schemas = (r.json.components as { schemas: Json }).schemas;
    expect(Object.keys(schemas)).toEqual(expect.arrayContaining(['Problem', 'Run', 'Workflow', 'Agent', 'CreateRun']));
  });

  it('lists the problems a route can answer: starting a run is 401 with tokens on and 415 for another Content-Type', async () => {
    const paths = (await call('GET', '/api/v1/openapi.json')).json.paths as Record<string, Record<string, { responses: Json }>>;
    const statuses = (path: string): string[] => Object.keys(paths[path]?.post?.responses ?? {});
    expect(statuses('/api/v1/workflows/{name}/runs')).toEqual(expect.arrayContaining(['400', '401', '403', '404', '413', '415', '422']));
    const created = paths['/api/v1/workflows/{name}/runs']?.post?.responses as Record<string, { content: Json }>;
    expect(created['415']?.content).toHaveProperty(['application/problem+json']);
    // The routes that take no body refuse one with unknown fields (422) or of another type (415).
    for (const path of ['/api/v1/runs/{id}/retry', '/api/v1/runs/{id}/cancel', '/api/v1/schedules/{workflow}/pause']) {
      expect(statuses(path), path).toEqual(expect.arrayContaining(['400', '415', '422']));
    }
    // The 415 the route lists is the one it answers.
    expectProblem(await call('POST', '/api/v1/workflows/echo-chain/runs', 'input=1', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'HTTP_ERROR');
  });

  it('serves the API reference page and its assets from the package, with no CDN', async () => {
    const page = await app.request('/api/v1/docs');
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('/api/v1/docs/swagger-ui-bundle.js');
    expect(html).not.toMatch(/https?:\/\//);
    for (const file of ['swagger-ui-bundle.js', 'swagger-ui.css', 'swagger-ui-standalone-preset.js', 'init.js']) {
      const r = await app.request(`/api/v1/docs/${file}`);
      expect(r.status, file).toBe(200);
      expect((await r.arrayBuffer()).byteLength, file).toBeGreaterThan(10);
    }
    expectProblem(await call('GET', '/api/v1/docs/package.json'), 404, 'ROUTE_NOT_FOUND');
  });
});

describe('registry', () => {
  it('lists and shows agents; an unknown agent is 404', async () => {
    const list = await call('GET', '/api/v1/agents');
    expect((list.json.agents as Json[]).map((a) => a.id).sort()).toEqual(['boom@1.0.0', 'echo@1.0.0', 'gate@1.0.0']);
    const echo = await call('GET', '/api/v1/agents/echo');
    expect(echo.json).toMatchObject({ id: 'echo@1.0.0', runtime: 'builtin', versions: ['1.0.0'] });
    expect(echo.json).not.toHaveProperty('path');
    expectProblem(await call('GET', '/api/v1/agents/nope'), 404, 'AGENT_NOT_FOUND');
  });

  it('lists workflows and shows one with its DAG and input/output JSON Schemas', async () => {
    const list = await call('GET', '/api/v1/workflows');
    expect((list.json.workflows as Json[]).map((w) => w.name).sort()).toEqual(['echo-chain', 'explode', 'gated']);
    const wf = await call('GET', '/api/v1/workflows/echo-chain');
    expect(wf.status).toBe(200);
    expect(wf.json).toMatchObject({ name: 'echo-chain', version: '1.0.0', enabled: true, versions: ['1.0.0'] });
    expect(wf.json.input_schema).toMatchObject({ type: 'object', properties: { message: { type: 'string' } } });
    expect(wf.json.dag).toEqual({
      nodes: [expect.objectContaining({ id: 'step1', depends_on: [] }), expect.objectContaining({ id: 'step2', depends_on: ['step1'] })],
      edges: [{ from: 'step1', to: 'step2' }],
      final_steps: ['step2'],
    });
    expect(wf.json.output_schema).toMatchObject({ type: 'object', properties: { step2: expect.any(Object) as unknown } });
    expectProblem(await call('GET', '/api/v1/workflows/nope'), 404, 'WORKFLOW_NOT_FOUND');
  });

  it('disable refuses new runs with 403 WORKFLOW_DISABLED; enable lets them start again', async () => {
    const off = await call('POST', '/api/v1/workflows/echo-chain/disable');
    expect(off.status).toBe(200);
    expect(off.json.enabled).toBe(false);
    expectProblem(await call('POST', '/api/v1/workflows/echo-chain/runs', { input: { message: 'x' } }), 403, 'WORKFLOW_DISABLED');
    const on = await call('POST', '/api/v1/workflows/echo-chain/enable');
    expect(on.json.enabled).toBe(true);
    expect((await call('POST', '/api/v1/workflows/echo-chain/runs', { input: { message: 'x' } })).status).toBe(201);
    expectProblem(await call('POST', '/api/v1/workflows/nope/disable'), 404, 'WORKFLOW_NOT_FOUND');
  });
});

describe('creating runs', () => {
  it('201 with the run document and a Location; ?wait answers with the finished run', async () => {
    const r = await call('POST', '/api/v1/workflows/echo-chain/runs?wait=20s', { input: { message: 'hi' }, metadata: { team: 'ops' } });
    expect(r.status).toBe(201);
    expect(r.type).toContain('application/json');
    expect(r.headers.get('location')).toBe(`/api/v1/runs/${r.json.run_id as string}`);
    expect(r.json).toMatchObject({ workflow: 'echo-chain', version: '1.0.0', status: 'completed', trigger: { message: 'hi' }, metadata: { team: 'ops' }, error: null });
    expect((r.json.steps as Json[]).map((s) => [s.id, s.status])).toEqual([
      ['step1', 'completed'],
      ['step2', 'completed'],
    ]);
    // The same document as `swarm runs show --json`.
    const shown = await call('GET', `/api/v1/runs/${r.json.run_id as string}`);
    expect(shown.json).toEqual(r.json);
  });

  it('?wait that runs out answers 202 with the run as it is; a POST without a body starts a run with input {}', async () => {
    const r = await call('POST', '/api/v1/workflows/gated/runs?wait=300ms', { input: {} });
    expect(r.status).toBe(202);
    expect(['queued', 'running']).toContain(r.json.status);
    const id = r.json.run_id as string;
    openGate();
    await swarm.wait(id);
    expect((await call('GET', `/api/v1/runs/${id}`)).json.status).toBe('completed');
    gate = new Promise<void>((res) => (openGate = res));
    const bare = await call('POST', '/api/v1/workflows/explode/runs?wait=20s');
    expect(bare.status).toBe(201);
    expect(bare.json).toMatchObject({ status: 'failed', trigger: {} });
    // `curl -X POST -H 'content-type: application/json'` with no data: no body too, not malformed JSON.
    const typed = await app.request('/api/v1/workflows/explode/runs?wait=20s', { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(typed.status).toBe(201);
    expect(await typed.json()).toMatchObject({ status: 'failed', trigger: {} });
  });

  it('?wait takes ms, s, m, h and d (a number alone is seconds), each cut to 300 s; anything else is 422', async () => {
    expect([parseWait('500ms'), parseWait('30s'), parseWait('2m'), parseWait('1h'), parseWait('1.5h'), parseWait('2d'), parseWait('45')]).toEqual([500, 30_000, 120_000, 3_600_000, 5_400_000, 172_800_000, 45_000]);
    for (const wait of ['1h', '10h', '2d', '10m', '600']) {
      const r = await call('POST', `/api/v1/workflows/echo-chain/runs?wait=${wait}`, { input: { message: wait } });
      expect(r.status, `?wait=${wait}: ${JSON.stringify(r.json)}`).toBe(201);
      expect(r.json.status).toBe('completed');
    }
    for (const wait of ['soon', '1w', '1 h', '-1s', 'h']) {
      const bad = expectProblem(await call('POST', `/api/v1/workflows/echo-chain/runs?wait=${encodeURIComponent(wait)}`, { input: {} }), 422, 'VALIDATION_FAILED');
      expect(bad.field).toBe('query.wait');
      expect(bad.detail).toContain('1h');
    }
  });

  it('Idempotency-Key: a repeat returns the existing run (200, same id, Idempotent-Replayed); another workflow with the key is 422', async () => {
    const first = await call('POST', '/api/v1/workflows/echo-chain/runs', { input: { message: 'once' } }, { 'idempotency-key': 'key-1' });
    expect(first.status).toBe(201);
    const again = await call('POST', '/api/v1/workflows/echo-chain/runs', { input: { message: 'once' } }, { 'idempotency-key': 'key-1' });
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.json.run_id).toBe(first.json.run_id);
    const concurrent = await Promise.all(Array.from({ length: 6 }, () => call('POST', '/api/v1/workflows/echo-chain/runs', { input: { message: 'race' } }, { 'idempotency-key': 'key-2' })));
    expect(new Set(concurrent.map((r) => r.json.run_id)).size).toBe(1);
    expect(concurrent.filter((r) => r.status === 201)).toHaveLength(1);
    const runs = await swarm.listRuns({ limit: 500 });
    expect(runs.filter((r) => r.idempotency_key === 'key-2')).toHaveLength(1);
    const other = expectProblem(await call('POST', '/api/v1/workflows/explode/runs', { input: {} }, { 'idempotency-key': 'key-1' }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(other.run_id).toBe(first.json.run_id);
  });

  it('a version in the body picks that version; an unknown one is 404', async () => {
    const r = await call('POST', '/api/v1/workflows/echo-chain/runs', { input: { message: 'v' }, version: '1.0.0' });
    expect(r.status).toBe(201);
    expect(r.json.version).toBe('1.0.0');
    expectProblem(await call('POST', '/api/v1/workflows/echo-chain/runs', { input: {}, version: '9.9.9' }), 404, 'WORKFLOW_NOT_FOUND');
  });

  it('bad requests: 400 malformed JSON, 422 naming the field, 404 unknown workflow, 413 oversized body; nothing is written', async () => {
    const before = (await swarm.listRuns({ limit: 500 })).length;
    expectProblem(await call('POST', '/api/v1/workflows/echo-chain/runs', '{"input": {'), 400, 'JSON_INVALID');
    const typed = expectProblem(await call('POST', '/api/v1/workflows/echo-chain/runs', { input: { message: 42 } }), 422, 'INPUT_INVALID');
    expect(typed.field).toBe('message');
    expect(typed.errors).toEqual([{ field: 'message', problem: 'must be string' }]);
    const notObject = expectProblem(await call('POST', '/api/v1/workflows/echo-chain/runs', { input: [1, 2] }), 422, 'VALIDATION_FAILED');
    expect(notObject.field).toBe('input');
    const meta = expectProblem(await call('POST', '/api/v1/workflows/echo-chain/runs', { input: {}, metadata: { n: 1 } }), 422, 'VALIDATION_FAILED');
    expect(meta.field).toBe('metadata.n');
    const extra = expectProblem(await call('POST', '/api/v1/workflows/echo-chain/runs', { input: {}, inptu: {} }), 422, 'VALIDATION_FAILED');
    expect(extra.detail).toContain('inptu');
    expect(extra.field).toBe('inptu');
    expectProblem(await call('POST', '/api/v1/workflows/echo-chain/runs?wait=soon', { input: {} }), 422, 'VALIDATION_FAILED');
    const missing = expectProblem(await call('POST', '/api/v1/workflows/nope/runs', { input: {} }), 404, 'WORKFLOW_NOT_FOUND');
    expect(missing.detail).not.toContain(dir);
    const big = expectProblem(await call('POST', '/api/v1/workflows/echo-chain/runs', { input: { message: 'x'.repeat(5000) } }), 413, 'LIMIT_EXCEEDED');
    expect(big.detail).toContain('server.max_body_bytes');
    expect((await swarm.listRuns({ limit: 500 })).length).toBe(before);
  });

  it('413 for a chunked body as soon as it passes the limit, without a Content-Length', async () => {
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += 1024;
        controller.enqueue(new TextEncoder().encode(' '.repeat(1024)));
        if (sent > 1_000_000) controller.close();
      },
    });
    const res = await app.request('/api/v1/workflows/echo-chain/runs', { method: 'POST', body: stream, headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, duplex: 'half' });
    expect(res.status).toBe(413);
    expect(((await res.json()) as Json).code).toBe('LIMIT_EXCEEDED');
    expect(sent).toBeLessThan(100_000);
  });
});

describe('reading runs', () => {
  let runId: string;

  beforeAll(async () => {
    const r = await call('POST', '/api/v1/workflows/echo-chain/runs?wait=20s', { input: { message: 'read me' } });
    runId = r.json.run_id as string;
  });

  it('accepts the short id and any unique suffix, like the CLI; unknown is 404', async () => {
    expect((await call('GET', `/api/v1/runs/${runId.slice(-12)}`)).json.run_id).toBe(runId);
    expect((await call('GET', `/api/v1/runs/${runId.slice(-8)}`)).json.run_id).toBe(runId);
    expectProblem(await call('GET', '/api/v1/runs/ffffffffffff'), 404, 'RUN_NOT_FOUND');
  });

  it('steps, events after a sequence number, logs', async () => {
    const steps = await call('GET', `/api/v1/runs/${runId}/steps`);
    expect((steps.json.steps as Json[]).map((s) => [s.id, s.status, typeof s.started_at])).toEqual([
      ['step1', 'completed', 'string'],
      ['step2', 'completed', 'string'],
    ]);
    const all = await call('GET', `/api/v1/runs/${runId}/events`);
    const events = all.json.events as Json[];
    expect(events[0]).toMatchObject({ seq: 1, type: 'RUN_CREATED' });
    expect(events.map((e) => e.type)).toContain('RUN_COMPLETED');
    expect(all.json.last_seq).toBe(events.length);
    const after = await call('GET', `/api/v1/runs/${runId}/events?after=${events.length - 2}`);
    expect((after.json.events as Json[]).map((e) => e.seq)).toEqual([events.length - 1, events.length]);
    expectProblem(await call('GET', `/api/v1/runs/${runId}/events?after=-1`), 422, 'VALIDATION_FAILED');
    const logs = await call('GET', `/api/v1/runs/${runId}/logs`);
    expect(logs.json).toEqual({ run_id: runId, logs: [] }); // built-in agents write no logs
    expectProblem(await call('GET', `/api/v1/runs/${runId}/logs?step=nope`), 404, 'STEP_NOT_FOUND');
  });

  it('lists runs with filters and walks every run once with the cursor', async () => {
    const all = await swarm.listRuns({ limit: 500 });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: Awaited<ReturnType<typeof call>> = await call('GET', `/api/v1/runs?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      seen.push(...(r.json.runs as Json[]).map((x) => x.run_id as string));
      cursor = r.json.next_cursor as string | null;
    } while (cursor);
    expect(seen).toEqual(all.map((r) => r.id));
    const completed = await call('GET', '/api/v1/runs?status=completed&workflow=echo-chain&limit=500');
    expect((completed.json.runs as Json[]).every((x) => x.status === 'completed' && x.workflow_name === 'echo-chain')).toBe(true);
    expect((completed.json.runs as Json[]).length).toBeGreaterThan(0);
    const newest = all[0]!;
    expect((await call('GET', `/api/v1/runs?since=${newest.created_at + 1}`)).json.runs).toEqual([]);
    expect((await call('GET', `/api/v1/runs?until=${new Date(all[all.length - 1]!.created_at).toISOString()}`)).json.runs).toEqual([]);
    expectProblem(await call('GET', '/api/v1/runs?status=sleeping'), 422, 'VALIDATION_FAILED');
    expectProblem(await call('GET', '/api/v1/runs?limit=0'), 422, 'VALIDATION_FAILED');
    expectProblem(await call('GET', '/api/v1/runs?cursor=bogus'), 400, 'ARGUMENT_INVALID');
  });

  it('since and until: a malformed date or one not on the calendar is 422 VALIDATION_FAILED naming it, never rolled over', async () => {
    const bad = ['yesterday', '2026-13-45', '2026-12-01T25:00:00Z', '2026-02-30', '2025-02-29', '2026-04-31', '2026-00-10', '2026-01-00', '2026-01-31T09:60', '2026-01-31T09:00:60Z', '2026-01-31T24:00:00Z', '2026-01-31T09:00:00+25:00', '2026-01-31T09', '99999999999999999', '9999999999999999'];
    for (const field of ['since', 'until']) {
      for (const value of bad) {
        const p = expectProblem(await call('GET', `/api/v1/runs?${field}=${encodeURIComponent(value)}`), 422, 'VALIDATION_FAILED');
        expect(p.field, `${field}=${value}`).toBe(`query.${field}`);
        expect(p.detail).toContain(`query.${field}`);
      }
    }
    const offCalendar = expectProblem(await call('GET', '/api/v1/runs?since=2026-02-30'), 422, 'VALIDATION_FAILED');
    expect(offCalendar.detail).toContain('not a date and time on the calendar');
    // Real dates, in each form the docs give, are taken (a leap day; an offset with or without its colon; a space for T).
    for (const good of ['2024-02-29', '2026-01-31T09:00:00Z', '2026-01-31T09:00', '2026-01-31T09:00:00.250+02:00', '2026-01-31T09:00:00+0200', '2026-01-31 09:00:00Z', '1769850000000']) {
      expect((await call('GET', `/api/v1/runs?since=${encodeURIComponent(good)}`)).status, good).toBe(200);
    }
    expect([parseTime('2024-02-29'), parseTime('2026-01-31T09:00:00+0200'), parseTime('2026-01-31 09:00:00Z')]).toEqual([Date.UTC(2024, 1, 29), Date.UTC(2026, 0, 31, 7), Date.UTC(2026, 0, 31, 9)]);
    expect(parseTime('2026-02-30')).toBeNaN();
    // The CLI's --since reads an ISO date as strictly.
    expect(() => parseSince('2026-02-30')).toThrow(/--since '2026-02-30' is not a date/);
    expect(parseSince('2024-02-29')).toBe(Date.UTC(2024, 1, 29));
  });

  it('a run’s times read the same in the list and in the run document (*_at_ms), whatever form created_at has in each', async () => {
    const listed = ((await call('GET', '/api/v1/runs?status=completed&limit=1')).json.runs as Json[])[0]!;
    const shown = (await call('GET', `/api/v1/runs/${String(listed.run_id)}`)).json;
    const times = (d: Json) => ({ created_at_ms: d.created_at_ms, started_at_ms: d.started_at_ms, completed_at_ms: d.completed_at_ms, updated_at_ms: d.updated_at_ms });
    expect(times(shown)).toEqual(times(listed));
    expect(listed.created_at_ms).toBe(listed.created_at);
    expect(shown.created_at).toBe(new Date(shown.created_at_ms as number).toISOString());
    expect(typeof shown.completed_at_ms).toBe('number');
  });
});

describe('cancel and retry', () => {
  it('cancel stops a running run (200); cancelling it again is 409', async () => {
    const r = await call('POST', '/api/v1/workflows/gated/runs', { input: {} });
    expect(r.status).toBe(201);
    const id = r.json.run_id as string;
    const c = await call('POST', `/api/v1/runs/${id.slice(-12)}/cancel`, { reason: 'no longer needed' });
    expect(c.status).toBe(200);
    expect(c.json).toMatchObject({ run_id: id, run: { status: 'cancelled' } });
    expect(((c.json.run as Json).error as Json).message).toContain('no longer needed');
    expectProblem(await call('POST', `/api/v1/runs/${id}/cancel`), 409, 'RUN_NOT_CANCELLABLE');
    expectProblem(await call('POST', '/api/v1/runs/ffffffffffff/cancel'), 404, 'RUN_NOT_FOUND');
  });

  it('retry runs a failed run again (202); a completed run is 409 RUN_NOT_RETRYABLE', async () => {
    const failed = await call('POST', '/api/v1/workflows/explode/runs?wait=20s', { input: {} });
    expect(failed.status).toBe(201);
    expect(failed.json.status).toBe('failed');
    const id = failed.json.run_id as string;
    // A body is refused as cancel's is: an unknown field 422 naming it, malformed JSON 400, another type 415; nothing is retried.
    const unknown = expectProblem(await call('POST', `/api/v1/runs/${id}/retry`, { x: 1 }), 422, 'VALIDATION_FAILED');
    expect(unknown.field).toBe('x');
    expect(unknown.detail).toContain('is not a known field');
    expectProblem(await call('POST', `/api/v1/runs/${id}/retry`, '{bad'), 400, 'JSON_INVALID');
    expectProblem(await call('POST', `/api/v1/runs/${id}/retry`, '{"x":1}', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'HTTP_ERROR');
    expect((await swarm.getRun(id)).run.status).toBe('failed');
    // An empty body, with or without a JSON type, or `{}`, is no body.
    expect((await call('POST', `/api/v1/runs/${id}/retry`, {})).status).toBe(202);
    expect((await swarm.wait(id)).run.status).toBe('failed');
    expect((await app.request(`/api/v1/runs/${id}/retry`, { method: 'POST', headers: { 'content-type': 'application/json' } })).status).toBe(202);
    expect((await swarm.wait(id)).run.status).toBe('failed');
    const retried = await call('POST', `/api/v1/runs/${id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.json.reset).toEqual(['only']);
    expect((await swarm.wait(id)).run.status).toBe('failed');
    const ok = await call('POST', '/api/v1/workflows/echo-chain/runs?wait=20s', { input: { message: 'fine' } });
    expectProblem(await call('POST', `/api/v1/runs/${ok.json.run_id as string}/retry`), 409, 'RUN_NOT_RETRYABLE');
  });
});
