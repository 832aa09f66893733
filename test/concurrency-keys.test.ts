/**
 * Concurrency keys (`concurrency: {key, limit}`): the store contract on SQLite and PostgreSQL
 * (limit honoured, promotion when an active run completes, fails or is cancelled, retries and
 * cancelled queued runs, no slot leaked), a PostgreSQL race of concurrent creations and finishes
 * from several connections, and the registration checks with their lines.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManifestError, UserError } from '../src/core/errors.js';
import { parseWorkflowManifest } from '../src/core/manifest/workflow.js';
import type { Store } from '../src/store/store.js';
import { expectRejects, fail, Harness, makePostgresBackend, makeSqliteBackend, ok, useContractStore, type MakeStore, type StoreBackend } from './helpers/store-fixtures.js';
import { stopPgTestServer } from './helpers/pg.js';
import { join } from 'node:path';
import { createApp } from '../src/server/app.js';
import { EXAMPLES, openProject, removeProject, tempProject } from './helpers/project.js';
import { expectProblem, request, type Json } from './helpers/http.js';

/** A two-step workflow limited per customer. */
function keyed(limit = 1, extra = ''): string {
  return `name: per-customer
version: 1.0.0
concurrency: { key: "cust-\${trigger.customer}", limit: ${limit}${extra} }
steps:
  - { id: a, agent: noop@1.0.0 }
  - { id: b, agent: noop@1.0.0, depends_on: [a] }
`;
}

function concurrencyContract(name: string, makeStore: MakeStore): void {
  describe(`concurrency keys: ${name}`, () => {
    const t = useContractStore(makeStore);
    let store: Store;
    let h: Harness;
    beforeEach(() => ({ store, h } = t));

    /** The run's concurrency state ('active', 'queued', 'released'). */
    const stateOf = async (id: string): Promise<string | undefined> => (await store.runConcurrency([id])).get(id)?.state;

    /** Claim every claimable step (any run) and complete it; returns the runs whose steps ran. */
    async function runClaimable(result = ok()): Promise<string[]> {
      const claimed = await h.claim('w1', 50);
      for (const c of claimed) await h.finish(c, 'w1', result);
      return claimed.map((c) => c.run_id);
    }

    it('holds runs over the limit queued with no claimable step, per key value', async () => {
      const r1 = await h.startRun(keyed(), { customer: 7 });
      const r2 = await h.startRun(keyed(), { customer: 7 });
      const r3 = await h.startRun(keyed(), { customer: 7 });
      const other = await h.startRun(keyed(), { customer: 8 });
      const claimed = await h.claim('w1', 50);
      expect(claimed.map((c) => c.run_id).sort()).toEqual([r1, other].sort());
      expect((await h.run(r2)).status).toBe('queued');
      expect([...(await h.steps(r2)).values()].map((s) => s.status)).toEqual(['pending', 'pending']);
      const info = await store.runConcurrency([r1, r2, r3, other]);
      expect(info.get(r1)).toMatchObject({ key: 'cust-7', limit: 1, state: 'active', active: 1 });
      expect(info.get(r2)).toMatchObject({ key: 'cust-7', state: 'queued', active: 1 });
      expect(info.get(r3)).toMatchObject({ state: 'queued' });
      expect(info.get(other)).toMatchObject({ key: 'cust-8', state: 'active', active: 1 });
      const created = (await store.getEvents(r2))[0];
      expect(created?.data).toMatchObject({ ready: [], concurrency: { key: 'cust-7', limit: 1, state: 'queued', active: 1 } });
    });

    it('the run that finishes gives its slot to the oldest queued run of its key, in the same commit', async () => {
      const r1 = await h.startRun(keyed(), { customer: 7 });
      const r2 = await h.startRun(keyed(), { customer: 7 });
      const r3 = await h.startRun(keyed(), { customer: 7 });
      expect(await runClaimable()).toEqual([r1]); // a
      const [b] = await h.claim('w1', 50);
      expect(b).toMatchObject({ run_id: r1, step_id: 'b' });
      const done = await h.finish(b!, 'w1', ok());
      expect(done.finished).toEqual([{ run_id: r1, status: 'completed' }]);
      expect(await stateOf(r1)).toBe('released');
      expect(await stateOf(r2)).toBe('active');
      expect(await stateOf(r3)).toBe('queued');
      expect((await h.step(r2, 'a')).status).toBe('ready');
      const admitted = (await store.getEvents(r2)).find((e) => e.type === 'RUN_ADMITTED');
      expect(admitted?.data).toMatchObject({ key: 'cust-7', limit: 1, ready: ['a'] });
      // r1's RUN_COMPLETED and r2's RUN_ADMITTED were committed together.
      expect(admitted?.at).toBe((await store.getEvents(r1)).find((e) => e.type === 'RUN_COMPLETED')?.at);
      expect((await h.claim('w1', 50)).map((c) => c.run_id)).toEqual([r2]);
    });

    it('a failed run frees its slot; a cancelled active run too; a cancelled queued run frees nothing', async () => {
      const r1 = await h.startRun(keyed(), { customer: 1 });
      const r2 = await h.startRun(keyed(), { customer: 1 });
      const r3 = await h.startRun(keyed(), { customer: 1 });
      const r4 = await h.startRun(keyed(), { customer: 1 });
      const [a] = await h.claim('w1', 50);
      await h.finish(a!, 'w1', fail('no', false));
      expect((await h.run(r1)).status).toBe('failed');
      expect(await stateOf(r2)).toBe('active');
      // Cancelling a queued run: it is released and nobody else starts (r2 still holds the slot).
      await store.transaction((tx) => h.ledger.cancelRun(tx, r3, 'not needed'));
      expect((await h.run(r3)).status).toBe('cancelled');
      expect(await stateOf(r3)).toBe('released');
      expect(await stateOf(r4)).toBe('queued');
      // Cancelling the active run starts the next queued one.
      await store.transaction((tx) => h.ledger.cancelRun(tx, r2, 'stop'));
      expect(await stateOf(r2)).toBe('released');
      expect(await stateOf(r4)).toBe('active');
      expect((await h.claim('w1', 50)).map((c) => c.run_id)).toEqual([r4]);
    });

    it('a retried run takes a slot if one is free, else queues again with its steps held back', async () => {
      const r1 = await h.startRun(keyed(), { customer: 2 });
      const r2 = await h.startRun(keyed(), { customer: 2 });
      const [a] = await h.claim('w1', 50);
      await h.finish(a!, 'w1', fail('no', false));
      expect(await stateOf(r2)).toBe('active');
      // r2 holds the slot: r1's retry waits.
      await store.transaction((tx) => h.ledger.retryRun(tx, r1));
      expect((await h.run(r1)).status).toBe('queued');
      expect(await stateOf(r1)).toBe('queued');
      expect((await h.step(r1, 'a')).status).toBe('pending');
      const retried = (await store.getEvents(r1)).find((e) => e.type === 'RUN_RETRIED');
      expect(retried?.data).toMatchObject({ reset: ['a', 'b'], concurrency: { state: 'queued', active: 1 } });
      // r2 runs to the end; r1 then starts and finishes.
      expect(await runClaimable()).toEqual([r2]);
      expect(await runClaimable()).toEqual([r2]);
      expect(await stateOf(r1)).toBe('active');
      expect(await runClaimable()).toEqual([r1]);
      expect(await runClaimable()).toEqual([r1]);
      expect((await h.run(r1)).status).toBe('completed');
      // With a free slot a retry takes it at once.
      const r3 = await h.startRun(keyed(), { customer: 3 });
      await store.transaction((tx) => h.ledger.cancelRun(tx, r3, 'stop'));
      await store.transaction((tx) => h.ledger.retryRun(tx, r3));
      expect(await stateOf(r3)).toBe('active');
      expect((await h.step(r3, 'a')).status).toBe('ready');
    });

    it('limit 2: two runs of a key at once; after everything finished no slot is left held', async () => {
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push(await h.startRun(keyed(2), { customer: 'x' }));
      let maxActive = 0;
      for (let round = 0; round < 20; round++) {
        const active = [...(await store.runConcurrency(ids)).values()].filter((c) => c.state === 'active').length;
        maxActive = Math.max(maxActive, active);
        const running = new Set(await runClaimable());
        expect(running.size).toBeLessThanOrEqual(2);
        if (running.size === 0) break;
      }
      expect(maxActive).toBe(2);
      for (const id of ids) expect((await h.run(id)).status).toBe('completed');
      const info = await store.runConcurrency(ids);
      for (const id of ids) expect(info.get(id)).toMatchObject({ state: 'released', active: 0 });
    });

    it('a failed run keeps its slot while a step of it still runs: the next run of the key starts only when that step ends', async () => {
      const parallel = keyed().replace('depends_on: [a] ', '').replace('version: 1.0.0', 'version: 2.0.0');
      const r1 = await h.startRun(parallel, { customer: 5 });
      const r2 = await h.startRun(parallel, { customer: 5 });
      const both = await h.claim('w1', 50);
      expect(both.map((c) => c.step_id).sort()).toEqual(['a', 'b']);
      const [a, b] = [both.find((c) => c.step_id === 'a'), both.find((c) => c.step_id === 'b')];
      await h.finish(a!, 'w1', fail('no', false));
      expect((await h.run(r1)).status).toBe('failed');
      // b still runs for r1: r2 must not run beside it.
      expect(await stateOf(r1)).toBe('active');
      expect(await stateOf(r2)).toBe('queued');
      expect(await h.claim('w1', 50)).toEqual([]);
      await h.finish(b!, 'w1', ok());
      expect(await stateOf(r1)).toBe('released');
      expect(await stateOf(r2)).toBe('active');

      // A retry while a step of the failed run still runs keeps the slot the run never gave back.
      const r3 = await h.startRun(parallel, { customer: 6 });
      const r4 = await h.startRun(parallel, { customer: 6 });
      const steps = await h.claim('w2', 50, 1, [r3]);
      await h.finish(steps.find((c) => c.step_id === 'a')!, 'w2', fail('no', false));
      await store.transaction((tx) => h.ledger.retryRun(tx, r3));
      expect(await stateOf(r3)).toBe('active');
      await store.transaction((tx) => h.ledger.cancelRun(tx, r3, 'stop'));
      expect(await stateOf(r4)).toBe('active');
      // The worker of the step left running dies: taking the step back frees the slot.
      const r5 = await h.startRun(parallel, { customer: 9 });
      const r6 = await h.startRun(parallel, { customer: 9 });
      const five = await h.claim('w3', 50, 1, [r5]);
      await h.finish(five.find((c) => c.step_id === 'a')!, 'w3', fail('no', false));
      expect(await stateOf(r5)).toBe('active');
      await new Promise((r) => setTimeout(r, 20)); // b's 1 ms lease has run out: w3 is gone
      await h.claim('w4', 50, 60_000, [r5]);
      expect(await stateOf(r5)).toBe('released');
      expect(await stateOf(r6)).toBe('active');
    });

    it('a key with a NUL character is the same key on both stores, and the run as created says what the store holds', async () => {
      const made = (await h.startRunOnce(keyed(), { customer: 'a\u0000b' })) as { id: string; details?: { run: { concurrency?: { key: string } } } };
      const stored = (await store.runConcurrency([made.id])).get(made.id);
      expect(stored).toMatchObject({ key: 'cust-a\uFFFDb', state: 'active' });
      expect(made.details?.run.concurrency?.key).toBe(stored?.key);
      // The same slot: a second run of that key queues behind the first.
      const second = await h.startRun(keyed(), { customer: 'a\u0000b' });
      expect(await stateOf(second)).toBe('queued');
    });

    it('a key that does not resolve refuses the run and writes nothing; a default takes its place', async () => {
      const err = await expectRejects(h.startRun(keyed(), { other: 1 }));
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).code).toBe('CONCURRENCY_KEY_UNRESOLVED');
      expect((err as UserError).exitCode).toBe(2);
      expect((err as UserError).message).toContain("concurrency key 'cust-${trigger.customer}' does not resolve");
      expect(await store.listRuns({})).toEqual([]);
      expect(t.runIds.length).toBe(1);
      t.runIds.length = 0; // the id was drawn, the run never written
      const withDefault = await h.startRun(keyed(1, ', default: anonymous').replace('cust-${trigger.customer}', '${trigger.customer}').replace('version: 1.0.0', 'version: 1.1.0'), {});
      expect((await store.runConcurrency([withDefault])).get(withDefault)).toMatchObject({ key: 'anonymous', state: 'active' });
    });
  });
}

concurrencyContract('sqlite', makeSqliteBackend);
concurrencyContract('postgres', makePostgresBackend);

describe('concurrency keys: PostgreSQL races', () => {
  let backend: StoreBackend;
  let stores: Store[];
  const runIds: string[] = [];

  beforeEach(async () => {
    backend = await makePostgresBackend();
    stores = [];
    for (let i = 0; i < 4; i++) stores.push(await backend.open());
  });

  afterEach(async () => {
    for (const s of stores) await s.close();
    await backend.cleanup();
  });

  it('creations and finishes from several connections at once never exceed the limit', async () => {
    const hs = stores.map((s) => new Harness(s, {}, runIds));
    const h0 = hs[0] as Harness;
    // Register once, then create 16 runs of one key from 4 connections at once, twice over.
    await h0.startRun(keyed(2), { customer: 'warmup' });
    const created = (await Promise.all(Array.from({ length: 16 }, (_, i) => (hs[i % 4] as Harness).startRun(keyed(2), { customer: 'race' })))).sort();
    const activeNow = async (): Promise<number> => [...(await h0.store.runConcurrency(created)).values()].filter((c) => c.state === 'active').length;
    expect(await activeNow()).toBe(2);
    // Finish the active runs from different connections at the same time, round after round.
    for (let round = 0; round < 16 && (await activeNow()) > 0; round++) {
      const claims = await Promise.all(hs.map((h, i) => h.claim(`w${i}`, 4, 60_000, created)));
      const all = claims.flatMap((c, i) => c.map((step) => ({ step, h: hs[i] as Harness, w: `w${i}` })));
      expect(new Set(all.map((x) => x.step.run_id)).size).toBeLessThanOrEqual(2);
      await Promise.all(all.map((x) => x.h.finish(x.step, x.w, ok())));
      expect(await activeNow()).toBeLessThanOrEqual(2);
    }
    const runs = await Promise.all(created.map((id) => h0.run(id)));
    expect(runs.map((r) => r.status)).toEqual(created.map(() => 'completed'));
    // From the events: at no moment were more than 2 runs between admission and completion.
    const spans: Array<[number, number]> = [];
    for (const id of created) {
      const events = await h0.store.getEvents(id);
      const start = events.find((e) => e.type === 'STEP_STARTED')?.at as number;
      const end = events.find((e) => e.type === 'RUN_COMPLETED')?.at as number;
      spans.push([start, end]);
    }
    for (const [t] of spans) expect(spans.filter(([s, e]) => s <= t && t < e).length).toBeLessThanOrEqual(2);
  });
});

describe('concurrency keys: registration', () => {
  const file = 'workflows/per-customer/workflow.yaml';
  const problemsOf = (yaml: string): ReadonlyArray<{ field?: string | undefined; problem: string; line?: number | undefined }> => {
    try {
      parseWorkflowManifest(yaml, file);
    } catch (e) {
      if (e instanceof ManifestError) return e.problems;
      throw e;
    }
    return [];
  };

  it('parses the key, the limit (default 1), the default and steps', () => {
    const wf = parseWorkflowManifest(keyed(3, ', default: none, steps: 4'), file);
    expect(wf.concurrency_key).toEqual({ key: 'cust-${trigger.customer}', limit: 3, default: 'none' });
    expect(wf.concurrency).toBe(4);
    const plain = parseWorkflowManifest(keyed().replace(', limit: 1', ''), file);
    expect(plain.concurrency_key).toEqual({ key: 'cust-${trigger.customer}', limit: 1 });
    expect(parseWorkflowManifest(keyed().replace(/concurrency: .*\n/, 'concurrency: 8\n'), file).concurrency).toBe(8);
  });

  it('refuses a bad limit, a missing key and a key that references anything but the trigger data or variables, with file and line', () => {
    const at = (yaml: string): string[] => problemsOf(yaml).map((p) => `${p.line ?? '?'}: ${p.field ?? ''}: ${p.problem}`);
    expect(at(keyed(0))).toEqual(['3: concurrency.limit: must be >= 1']);
    expect(at(keyed(1).replace('limit: 1', 'limit: many'))).toEqual(['3: concurrency.limit: must be integer']);
    expect(at(keyed().replace('key: "cust-${trigger.customer}", ', ''))[0]).toMatch(/^3: concurrency.key: is required/);
    const steps = at(keyed().replace('cust-${trigger.customer}', '${steps.a.outputs.id}'));
    expect(steps).toHaveLength(1);
    expect(steps[0]).toContain("3: concurrency.key: '${steps.a.outputs.id}': a concurrency key may reference only the run's input");
    expect(at(keyed().replace('cust-${trigger.customer}', '${variables.region}'))).toEqual(["3: concurrency.key: '${variables.region}': variable 'region' is not declared under variables:"]);
    expect(at(keyed().replace('cust-${trigger.customer}', '${secrets.TOKEN}'))[0]).toContain('may reference only');
    expect(at(`name: x\nversion: 1.0.0\nconcurrency:\n  key: a\n  limit: 2\n  extra: 1\nsteps:\n  - { id: a, agent: noop@1.0.0 }\n`)).toEqual([
      '6: concurrency.extra: unknown field (allowed: key, limit, default, steps)',
    ]);
  });
});

describe('concurrency keys: the HTTP API', () => {
  it('the run JSON shows the key and why a queued run waits; a key that does not resolve is 422; Idempotency-Key repeats answer 200', async () => {
    const dir = tempProject('name: keys-api\nsandbox: none\n');
    const swarm = await openProject(dir);
    try {
      await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
      await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'per-customer'));
      // No worker: runs stay as they were created.
      const app = createApp(swarm, { version: 'test' });
      const post = (body: unknown, headers: Record<string, string> = {}): ReturnType<typeof request> => request(app, 'POST', '/api/v1/workflows/per-customer/runs', body, headers);
      const first = await post({ input: { customer_id: '7' } }, { 'idempotency-key': 'order-1' });
      expect(first.status).toBe(201);
      expect(first.json).toMatchObject({ status: 'queued', idempotency_key: 'order-1', concurrency: { key: 'customer-7', limit: 1, state: 'active', active: 1, waiting_reason: null } });
      const second = await post({ input: { customer_id: '7' } });
      expect(second.json.concurrency).toEqual({ key: 'customer-7', limit: 1, state: 'queued', active: 1, waiting_reason: 'waiting for a concurrency slot: key customer-7, 1 active (limit 1)' });
      const replay = await post({ input: { customer_id: '7' } }, { 'idempotency-key': 'order-1' });
      expect(replay.status).toBe(200);
      expect(replay.json.run_id).toBe(first.json.run_id);
      const shown = await request(app, 'GET', `/api/v1/runs/${second.json.run_id as string}`);
      expect(shown.json.concurrency).toMatchObject({ state: 'queued' });
      // A create answers with the run as its transaction wrote it: the same document a read gives.
      expect(second.json).toEqual(shown.json);
      expect(first.json).toEqual((await request(app, 'GET', `/api/v1/runs/${first.json.run_id as string}`)).json);
      const list = await request(app, 'GET', '/api/v1/runs?workflow=per-customer');
      expect((list.json.runs as Json[]).map((r) => (r.concurrency as Json).state)).toEqual(['queued', 'active']);
      // Cancelling the active run gives the queued one its slot.
      const cancelled = await request(app, 'POST', `/api/v1/runs/${first.json.run_id as string}/cancel`);
      expect(cancelled.status).toBe(200);
      expect((await request(app, 'GET', `/api/v1/runs/${second.json.run_id as string}`)).json.concurrency).toMatchObject({ state: 'active', waiting_reason: null });
      // The example declares customer_id as required input: its absence is refused before the key.
      expectProblem(await post({ input: {} }), 422, 'INPUT_INVALID');
      const wf = await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'per-customer'));
      expect(wf.record.manifest.concurrency_key).toEqual({ key: 'customer-${trigger.customer_id}', limit: 1 });
      // A key over a field the input may lack: 422 naming the key.
      const { inputs: _declared, ...open } = wf.record.manifest;
      await swarm.store.putWorkflow({ ...wf.record, version: '1.1.0', id: 'per-customer@1.1.0', manifest: { ...open, version: '1.1.0' } }, false);
      const problem = expectProblem(await post({ input: { other: 1 } }), 422, 'CONCURRENCY_KEY_UNRESOLVED');
      expect(problem.detail).toContain("concurrency key 'customer-${trigger.customer_id}' does not resolve");
      expect((await swarm.listRuns({ workflow: 'per-customer' })).length).toBe(2);
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });
});

afterAll(stopPgTestServer);
