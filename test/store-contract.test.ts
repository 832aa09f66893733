/**
 * The store contract: every backend (SQLite and PostgreSQL) must pass `storeContract`.
 * State changes are driven the way the engine drives them: through the Ledger inside
 * `store.transaction`. Backend-specific checks (file formats, schema versions) follow the contract.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { canonicalJson } from '../src/core/canonical-json.js';
import { ResumeError, StoreError, UserError } from '../src/core/errors.js';
import { digestJson, EventType, verifyChain } from '../src/core/events.js';
import { MAX_INTERRUPTIONS } from '../src/core/retry.js';
import { workflowRecord as buildWorkflowRecord } from '../src/store/rows.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { MIGRATIONS as SQLITE_MIGRATIONS, SCHEMA_VERSION } from '../src/store/sqlite/migrations.js';
import { MIGRATIONS as PG_MIGRATIONS, SCHEMA_VERSION as PG_SCHEMA_VERSION } from '../src/store/postgres/migrations.js';
import { openPostgresStore, type PostgresStore } from '../src/store/postgres/postgres-store.js';
import { Pipeline, PLANNER_SETTINGS } from '../src/store/postgres/pipeline.js';
import pg from 'pg';
import type { Store } from '../src/store/store.js';
import type { ClaimedStep, SecretRecord, WorkerRecord } from '../src/store/types.js';
import type { WorkflowDef } from './helpers/store-fixtures.js';
import {
  agentRecord,
  chainProblems,
  completion,
  ECHO_AGENT_YAML,
  expectRejects,
  fail,
  Harness,
  makePostgresBackend,
  makeSqliteBackend,
  NOOP_AGENT_YAML,
  ok,
  sleep,
  workflowRecord,
  type MakeStore,
  type StoreBackend,
  TEST_CHAIN_KEY,
} from './helpers/store-fixtures.js';
import { pgTestServer, stopPgTestServer, type PgTestServer } from './helpers/pg.js';

const chainAB: WorkflowDef = { name: 'chain', steps: [{ id: 'a' }, { id: 'b', depends_on: ['a'] }] };

const diamond: WorkflowDef = {
  name: 'diamond',
  steps: [{ id: 'a' }, { id: 'b', depends_on: ['a'] }, { id: 'c', depends_on: ['a'] }, { id: 'd', depends_on: ['b', 'c'] }],
};

function wide(n: number, concurrency?: number, name = 'wide'): WorkflowDef {
  return { name, ...(concurrency ? { concurrency } : {}), steps: Array.from({ length: n }, (_, i) => ({ id: `s${i}` })) };
}

function storeContract(name: string, makeStore: MakeStore): void {
  describe(`store contract: ${name}`, () => {
    let backend: StoreBackend;
    let stores: Store[];
    let runIds: string[];
    let store: Store;
    let h: Harness;

    /** Another store object on the same database, as another process would open it. */
    const openAnother = async (): Promise<Store> => {
      const s = await backend.open();
      stores.push(s);
      return s;
    };

    beforeEach(async () => {
      backend = await makeStore();
      stores = [];
      runIds = [];
      store = await openAnother();
      h = new Harness(store, {}, runIds);
    });

    afterEach(async () => {
      // Every run any test created must have a verifiable event chain.
      try {
        for (const id of runIds) expect(await chainProblems(store, id), `event chain of run ${id}`).toEqual([]);
      } finally {
        for (const s of stores) await s.close();
        await backend.cleanup();
      }
    });

    // ------------------------------------------------------------ registry

    describe('registry', () => {
      it('putAgent: created, unchanged (same digest), conflict without force, replaced with force', async () => {
        const rec = agentRecord(ECHO_AGENT_YAML, '/pkg/echo');
        expect(await store.putAgent(rec, false)).toBe('created');
        expect(await store.putAgent({ ...rec, updated_at: rec.updated_at + 5 }, false)).toBe('unchanged');

        const changed = agentRecord(ECHO_AGENT_YAML.replace('entry: echo', 'entry: echo\n  timeout_seconds: 9'), '/pkg/echo');
        expect(changed.digest).not.toBe(rec.digest);
        const err = await expectRejects(store.putAgent(changed, false));
        expect(err).toBeInstanceOf(StoreError);
        expect((err as StoreError).code).toBe('AGENT_VERSION_EXISTS');
        expect((err as StoreError).message).toContain('echo@1.0.0');
        let listed = await store.listAgents('echo');
        expect(listed).toHaveLength(1);
        expect(listed[0]!.digest).toBe(rec.digest);

        expect(await store.putAgent(changed, true)).toBe('replaced');
        listed = await store.listAgents('echo');
        expect(listed).toHaveLength(1);
        expect(listed[0]!.digest).toBe(changed.digest);
        expect(listed[0]!.manifest.runtime.timeout_seconds).toBe(9);
        expect(listed[0]!.manifest).toEqual(changed.manifest);
      });

      it('putAgent: the digest is the manifest’s, not the directory’s; the same package from another directory is unchanged and its row names that directory', async () => {
        const here = agentRecord(ECHO_AGENT_YAML, '/pkg/echo');
        const there = agentRecord(ECHO_AGENT_YAML, '/elsewhere/agents/echo');
        expect(there.digest).toBe(here.digest);
        expect(here.digest).toBe(createHash('sha256').update(canonicalJson(here.manifest)).digest('hex'));
        expect(await store.putAgent(here, false)).toBe('created');
        let generation = await store.registryGeneration();
        expect(await store.putAgent({ ...there, created_at: here.created_at + 7, updated_at: here.updated_at + 7 }, false)).toBe('unchanged');
        let [row] = await store.listAgents('echo');
        expect(row).toMatchObject({ path: '/elsewhere/agents/echo', digest: here.digest, created_at: here.created_at, updated_at: here.updated_at + 7 });
        // A registry write: cached plans (which hold the path) are read again.
        expect(await store.registryGeneration()).not.toBe(generation);
        // The same again writes nothing.
        generation = await store.registryGeneration();
        expect(await store.putAgent({ ...there, updated_at: here.updated_at + 9 }, false)).toBe('unchanged');
        expect(await store.registryGeneration()).toBe(generation);
        expect((await store.listAgents('echo'))[0]?.updated_at).toBe(here.updated_at + 7);
        // Other content is still refused from any directory.
        const changed = agentRecord(ECHO_AGENT_YAML.replace('entry: echo', 'entry: echo\n  timeout_seconds: 9'), '/pkg/echo');
        expect(((await expectRejects(store.putAgent(changed, false))) as StoreError).code).toBe('AGENT_VERSION_EXISTS');
        [row] = await store.listAgents('echo');
        expect(row?.path).toBe('/elsewhere/agents/echo');
      });

      it('putAgent: a row registered before the digest left the directory out (sha256 of {manifest, dir}) takes the same package as unchanged, from any directory, and records its digest; other content still conflicts', async () => {
        const rec = agentRecord(ECHO_AGENT_YAML, '/pkg/echo');
        const oldDigest = digestJson(JSON.stringify({ manifest: rec.manifest, dir: rec.path }));
        expect(await store.putAgent({ ...rec, digest: oldDigest }, false)).toBe('created');
        const changed = agentRecord(ECHO_AGENT_YAML.replace('entry: echo', 'entry: echo\n  timeout_seconds: 9'), '/pkg/echo');
        expect(((await expectRejects(store.putAgent(changed, false))) as StoreError).code).toBe('AGENT_VERSION_EXISTS');
        expect((await store.listAgents('echo'))[0]?.digest).toBe(oldDigest);
        // The same package, from the same directory: unchanged, with the digest of now.
        expect(await store.putAgent(rec, false)).toBe('unchanged');
        expect((await store.listAgents('echo'))[0]).toMatchObject({ path: '/pkg/echo', digest: rec.digest });
        // A second old row, met from another directory.
        const other = agentRecord(ECHO_AGENT_YAML.replace('1.0.0', '1.1.0'), '/pkg/echo');
        await store.putAgent({ ...other, digest: digestJson(JSON.stringify({ manifest: other.manifest, dir: other.path })) }, false);
        expect(await store.putAgent(agentRecord(ECHO_AGENT_YAML.replace('1.0.0', '1.1.0'), '/moved/echo'), false)).toBe('unchanged');
        expect((await store.listAgents('echo')).find((a) => a.version === '1.1.0')).toMatchObject({ path: '/moved/echo', digest: other.digest });
      });

      it('listAgents filters by name; versions are separate records; deleteAgent removes one', async () => {
        await store.putAgent(agentRecord(ECHO_AGENT_YAML), false);
        await store.putAgent(agentRecord(ECHO_AGENT_YAML.replace('1.0.0', '1.1.0')), false);
        await store.putAgent(agentRecord(NOOP_AGENT_YAML), false);
        expect((await store.listAgents('echo')).map((a) => a.version).sort()).toEqual(['1.0.0', '1.1.0']);
        expect((await store.listAgents()).map((a) => a.id).sort()).toEqual(['echo@1.0.0', 'echo@1.1.0', 'noop@1.0.0']);
        expect(await store.deleteAgent('echo', '1.0.0')).toBe(true);
        expect(await store.deleteAgent('echo', '1.0.0')).toBe(false);
        expect((await store.listAgents('echo')).map((a) => a.version)).toEqual(['1.1.0']);
      });

      it('putWorkflow: created, unchanged, conflict without force, replaced with force', async () => {
        const rec = workflowRecord(chainAB);
        expect(await store.putWorkflow(rec, false)).toBe('created');
        expect(await store.putWorkflow(rec, false)).toBe('unchanged');
        const changed = workflowRecord({ ...chainAB, concurrency: 3 });
        const err = await expectRejects(store.putWorkflow(changed, false));
        expect((err as StoreError).code).toBe('WORKFLOW_VERSION_EXISTS');
        expect((await store.listWorkflows('chain'))[0]!.manifest.concurrency).toBeUndefined();
        expect(await store.putWorkflow(changed, true)).toBe('replaced');
        const listed = await store.listWorkflows('chain');
        expect(listed).toHaveLength(1);
        expect(listed[0]!.manifest).toEqual(changed.manifest);
        expect(listed[0]!.enabled).toBe(true);
        expect(await store.setWorkflowEnabled('chain', false)).toBe(1);
        expect((await store.listWorkflows('chain'))[0]!.enabled).toBe(false);
      });

      it('putWorkflow: the digest is the manifest’s canonical JSON, whatever its key order; a row holding a digest of the old form (its JSON in key order) takes the same content as unchanged and records the canonical digest; other content still conflicts', async () => {
        const rec = workflowRecord(chainAB);
        expect(rec.digest).toBe(createHash('sha256').update(canonicalJson(rec.manifest)).digest('hex'));
        // The same manifest built in another key order: the same digest (a bundle's definition has its keys sorted).
        const reordered = buildWorkflowRecord(Object.fromEntries(Object.entries(rec.manifest).reverse()) as typeof rec.manifest, rec.path);
        expect(JSON.stringify(reordered.manifest)).not.toBe(JSON.stringify(rec.manifest));
        expect(reordered.digest).toBe(rec.digest);

        const oldDigest = digestJson(JSON.stringify(rec.manifest));
        expect(oldDigest).not.toBe(rec.digest);
        expect(await store.putWorkflow({ ...rec, digest: oldDigest }, false)).toBe('created');
        const changed = workflowRecord({ ...chainAB, concurrency: 3 });
        expect(((await expectRejects(store.putWorkflow(changed, false))) as StoreError).code).toBe('WORKFLOW_VERSION_EXISTS');
        expect((await store.listWorkflows('chain'))[0]?.digest).toBe(oldDigest);
        // The same content, in another key order: unchanged, with the digest of now.
        expect(await store.putWorkflow(reordered, false)).toBe('unchanged');
        expect((await store.listWorkflows('chain'))[0]).toMatchObject({ digest: rec.digest, enabled: true, manifest: rec.manifest });
        // The same again writes nothing.
        const generation = await store.registryGeneration();
        expect(await store.putWorkflow(rec, false)).toBe('unchanged');
        expect(await store.registryGeneration()).toBe(generation);
        expect(((await expectRejects(store.putWorkflow(changed, false))) as StoreError).code).toBe('WORKFLOW_VERSION_EXISTS');
      });
    });

    // ------------------------------------------------------------ runs

    describe('createRun', () => {
      it('writes the run, its steps and RUN_CREATED together', async () => {
        const runId = await h.startRun(diamond, { msg: 'hi', n: 2 });
        expect(runIds).toEqual([runId]);
        const run = await h.run(runId);
        expect(run).toMatchObject({
          id: runId,
          workflow_id: 'diamond@1.0.0',
          workflow_name: 'diamond',
          workflow_version: '1.0.0',
          status: 'queued',
          trigger_type: 'manual',
          trigger_data: { msg: 'hi', n: 2 },
          parent_run_id: null,
          steps_total: 4,
          steps_remaining: 4,
          running_steps: 0,
          max_parallel: 100,
          event_seq: 1,
          started_at: null,
          completed_at: null,
          error: null,
        });
        const steps = await store.getSteps(runId);
        expect(steps.map((s) => [s.step_id, s.step_index, s.status, s.pending_deps, s.attempt])).toEqual([
          ['a', 0, 'ready', 0, 0],
          ['b', 1, 'pending', 1, 0],
          ['c', 2, 'pending', 1, 0],
          ['d', 3, 'pending', 2, 0],
        ]);
        expect(steps.every((s) => s.agent_id === 'noop@1.0.0' && s.agent_name === 'noop' && s.agent_version === '1.0.0')).toBe(true);
        expect(steps[0]!.available_at).not.toBeNull();
        expect(steps[3]!.available_at).toBeNull();
        const events = await store.getEvents(runId);
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({ seq: 1, type: EventType.RUN_CREATED, step_id: null });
        const stored = await store.getRun(runId);
        expect(events[0]!.data).toEqual({ workflow: 'diamond', version: '1.0.0', trigger_type: 'manual', input_sha256: digestJson(JSON.stringify(stored!.trigger_data)), ready: ['a'] });
        const plan = JSON.parse((await store.getPlanJson(runId))!) as { workflow: { name: string }; step_agents: Record<string, string>; agents: Record<string, unknown> };
        expect(plan.workflow.name).toBe('diamond');
        expect(Object.keys(plan.step_agents).sort()).toEqual(['a', 'b', 'c', 'd']);
        expect(plan.step_agents.a).toBe('noop@1.0.0');
        // Each agent is stored once however many steps use it; runs of the same plan share one row.
        expect(Object.keys(plan.agents)).toEqual(['noop@1.0.0']);
        expect(await store.unfinishedRunIds()).toEqual([runId]);
        expect((await store.listRuns({ workflow: 'diamond' })).map((r) => r.id)).toEqual([runId]);
        expect(await store.findRunIds(runId.slice(0, 8), 5)).toEqual([runId]);
      });

      it('uses the workflow concurrency as max_parallel when set', async () => {
        const runId = await h.startRun(wide(3, 2));
        expect((await h.run(runId)).max_parallel).toBe(2);
      });

      it('a transaction that throws after createRun leaves nothing written', async () => {
        await h.startRun(chainAB); // registers agents and the workflow
        const wf = (await store.listWorkflows('chain'))[0]!;
        const plan = JSON.parse((await store.getPlanJson(runIds[0]!))!) as Parameters<typeof h.ledger.createRun>[2];
        const err = await expectRejects(
          store.transaction(async (tx) => {
            await h.ledger.createRun(tx, wf, plan, { trigger_type: 'manual', trigger_data: {} });
            throw new Error('abort after createRun');
          }),
        );
        expect((err as Error).message).toBe('abort after createRun');
        const lost = runIds.pop()!;
        expect(lost).not.toBe(runIds[0]);
        expect(await store.getRun(lost)).toBeUndefined();
        expect(await store.getSteps(lost)).toEqual([]);
        expect(await store.getEvents(lost)).toEqual([]);
        expect((await store.listRuns({})).map((r) => r.id)).toEqual([runIds[0]]);
        // The store is still usable afterwards.
        const again = await h.startRun(chainAB);
        expect((await h.run(again)).status).toBe('queued');
      });

      it('concurrent transactions each commit or roll back on their own, even when they share a commit', async () => {
        await h.startRun(chainAB);
        const wf = (await store.listWorkflows('chain'))[0]!;
        const plan = JSON.parse((await store.getPlanJson(runIds[0]!))!) as Parameters<typeof h.ledger.createRun>[2];
        const create = (fail: boolean): Promise<string> =>
          store.transaction(async (tx) => {
            const id = await h.ledger.createRun(tx, wf, plan, { trigger_type: 'manual', trigger_data: { fail } });
            if (fail) throw new Error(`rolled back ${id}`);
            return id;
          });
        const results = await Promise.allSettled([create(false), create(true), create(false), create(true), create(false)]);
        const ok = results.filter((r) => r.status === 'fulfilled').map((r) => (r).value);
        const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r).reason));
        expect(ok).toHaveLength(3);
        expect(failed).toHaveLength(2);
        for (const id of ok) {
          expect((await h.run(id)).status).toBe('queued');
          expect(await store.getSteps(id)).toHaveLength(2);
          expect(verifyChain(TEST_CHAIN_KEY, await store.getEvents(id))).toEqual([]);
        }
        for (const message of failed) {
          const id = message.replace(/^Error: rolled back /, '');
          expect(await store.getRun(id)).toBeUndefined();
          expect(await store.getEvents(id)).toEqual([]);
          runIds.splice(runIds.indexOf(id), 1); // never created: nothing to verify after the test
        }
      });

      it('an idempotency key creates one run: a repeat returns it and writes nothing', async () => {
        const first = await h.startRunOnce(chainAB, { n: 1 }, { idempotency_key: 'order-42', metadata: { team: 'ops' } });
        expect(first.created).toBe(true);
        const before = await h.snapshot(first.id);
        const again = await h.startRunOnce(chainAB, { n: 1 }, { idempotency_key: 'order-42' });
        expect(again).toEqual({ id: first.id, created: false });
        expect(await h.snapshot(first.id)).toEqual(before);
        expect((await store.listRuns({})).map((r) => r.id)).toEqual([first.id]);
        expect(await h.run(first.id)).toMatchObject({ idempotency_key: 'order-42', metadata: { team: 'ops' } });
        // Runs without a key never collide; another key is another run.
        const plain = [await h.startRun(chainAB), await h.startRun(chainAB)];
        expect(await h.run(plain[0]!)).toMatchObject({ idempotency_key: null, metadata: null });
        const other = await h.startRunOnce(chainAB, {}, { idempotency_key: 'order-43' });
        expect(other.created).toBe(true);
        expect(await store.listRuns({})).toHaveLength(4);
      });

      it('an idempotency key used for another workflow is refused (IDEMPOTENCY_KEY_REUSED)', async () => {
        const first = await h.startRunOnce(chainAB, {}, { idempotency_key: 'k1' });
        const err = await expectRejects(h.startRunOnce(diamond, {}, { idempotency_key: 'k1' }));
        expect(err).toBeInstanceOf(UserError);
        expect((err as UserError).code).toBe('IDEMPOTENCY_KEY_REUSED');
        expect((err as UserError).message).toContain(first.id);
        expect(await store.listRuns({})).toHaveLength(1);
      });

      it('concurrent creates with one idempotency key, from two store connections, make one run', async () => {
        await h.startRun(chainAB); // registers the agents and the workflow
        const other = new Harness(await openAnother(), {}, runIds);
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? h : other).startRunOnce(chainAB, { i }, { idempotency_key: 'race' })),
        );
        const ids = new Set(results.map((r) => r.id));
        expect(ids.size).toBe(1);
        expect(results.filter((r) => r.created)).toHaveLength(1);
        const runs = await store.listRuns({ limit: 100 });
        expect(runs.filter((r) => r.idempotency_key === 'race').map((r) => r.id)).toEqual([...ids]);
        expect(runs).toHaveLength(2);
      });

      it('listRuns: until and keyset pagination walk every run once, newest first', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) ids.push(await h.startRun(chainAB, { i }));
        const all = await store.listRuns({ limit: 100 });
        expect(all).toHaveLength(5);
        const seen: string[] = [];
        let after: { created_at: number; id: string } | undefined;
        for (;;) {
          const page = await store.listRuns({ limit: 2, ...(after ? { after } : {}) });
          if (page.length === 0) break;
          seen.push(...page.map((r) => r.id));
          const last = page[page.length - 1]!;
          after = { created_at: last.created_at, id: last.id };
        }
        expect(seen).toEqual(all.map((r) => r.id));
        const newest = all[0]!;
        expect((await store.listRuns({ until: newest.created_at })).every((r) => r.created_at < newest.created_at)).toBe(true);
        expect(await store.listRuns({ until: all[all.length - 1]!.created_at })).toEqual([]);
      });

      it('a transaction that throws after a claim leaves the step ready and the log unchanged', async () => {
        const runId = await h.startRun(chainAB);
        const before = await h.snapshot(runId);
        await expectRejects(
          store.transaction(async (tx) => {
            const r = await h.ledger.commit(tx, { completions: [], claim: { worker_id: 'w1', max: 1, lease_ms: 60_000 } });
            expect(r.claimed).toHaveLength(1);
            throw new Error('crash before commit');
          }),
        );
        expect(await h.snapshot(runId)).toEqual(before);
        const claimed = await h.claim('w2');
        expect(claimed.map((c) => [c.step_id, c.attempt])).toEqual([['a', 1]]);
      });
    });

    describe('claims and leases', () => {
      it('a claim sets the lease and the attempt (fencing token) and emits RUN_STARTED and STEP_STARTED', async () => {
        const runId = await h.startRun(chainAB);
        const before = Date.now();
        const claimed = await h.claim('w1', 5, 30_000);
        expect(claimed).toEqual([{ run_id: runId, step_id: 'a', plan_id: expect.stringMatching(/^[0-9a-f]{64}$/), attempt: 1, retry_count: 0, reclaimed: false }]);
        const a = await h.step(runId, 'a');
        expect(a.status).toBe('running');
        expect(a.attempt).toBe(1);
        expect(a.lease_owner).toBe('w1');
        expect(a.started_at).toBeGreaterThanOrEqual(before);
        expect(a.lease_until).toBe(a.started_at! + 30_000);
        const run = await h.run(runId);
        expect(run.status).toBe('running');
        expect(run.running_steps).toBe(1);
        expect(run.started_at).toBe(a.started_at);
        const events = await store.getEvents(runId);
        expect(events.map((e) => e.type)).toEqual([EventType.RUN_CREATED, EventType.RUN_STARTED, EventType.STEP_STARTED]);
        expect(events[2]).toMatchObject({ step_id: 'a', data: { attempt: 1, worker: 'w1' } });
        // Nothing else is claimable: b waits for a.
        expect(await h.claim('w2', 5)).toEqual([]);
        expect(await store.nextDueAt(Date.now())).toBe(a.lease_until);
      });

      it('a completion with a stale attempt or from the wrong worker is refused and changes nothing', async () => {
        const runId = await h.startRun(chainAB);
        const [c] = await h.claim('w1');
        const before = await h.snapshot(runId);

        const stale = await h.finish(c!, 'w1', ok({ x: 1 }), c!.attempt - 1);
        expect(stale.refused).toHaveLength(1);
        expect(stale.refused[0]!.attempt).toBe(0);
        const future = await h.finish(c!, 'w1', ok({ x: 1 }), c!.attempt + 1);
        expect(future.refused).toHaveLength(1);
        const wrongWorker = await h.finish(c!, 'w2', ok({ x: 1 }));
        expect(wrongWorker.refused).toHaveLength(1);
        expect(wrongWorker.finished).toEqual([]);
        const wrongFail = await h.finish(c!, 'w2', fail('nope', false));
        expect(wrongFail.refused).toHaveLength(1);

        expect(await h.snapshot(runId)).toEqual(before);

        // The rightful owner can still complete it.
        const good = await h.finish(c!, 'w1', ok({ x: 1 }));
        expect(good.refused).toEqual([]);
        expect((await h.step(runId, 'a')).status).toBe('completed');
        expect((await h.step(runId, 'a')).outputs).toEqual({ x: 1 });
        expect((await h.step(runId, 'b')).status).toBe('ready');
      });

      it('a completed step cannot be completed again', async () => {
        const runId = await h.startRun(chainAB);
        const [c] = await h.claim('w1');
        await h.finish(c!, 'w1', ok({ v: 1 }));
        const before = await h.snapshot(runId);
        const again = await h.finish(c!, 'w1', ok({ v: 2 }));
        expect(again.refused).toHaveLength(1);
        expect(await h.snapshot(runId)).toEqual(before);
        expect((await h.step(runId, 'a')).outputs).toEqual({ v: 1 });
      });

      it('an expired lease is reclaimed by another worker with attempt+1; the first worker’s late completion is refused', async () => {
        const runId = await h.startRun(chainAB);
        const [first] = await h.claim('w1', 1, 250);
        expect(first!.attempt).toBe(1);
        expect(await h.claim('w2', 1, 60_000)).toEqual([]); // not expired yet
        await sleep(350);
        const [second] = await h.claim('w2', 1, 60_000);
        expect(second).toEqual({ run_id: runId, step_id: 'a', plan_id: expect.stringMatching(/^[0-9a-f]{64}$/), attempt: 2, retry_count: 0, reclaimed: true });
        let a = await h.step(runId, 'a');
        expect([a.status, a.attempt, a.lease_owner]).toEqual(['running', 2, 'w2']);
        const events = await store.getEvents(runId);
        expect(events.at(-1)).toMatchObject({ type: EventType.STEP_STARTED, step_id: 'a', data: { attempt: 2, worker: 'w2', reclaimed_from: 'w1' } });
        expect((await h.run(runId)).running_steps).toBe(1);

        const before = await h.snapshot(runId);
        const late = await h.finish(first!, 'w1', ok({ from: 'w1' }));
        expect(late.refused).toHaveLength(1);
        expect(await h.snapshot(runId)).toEqual(before);

        const done = await h.finish(second!, 'w2', ok({ from: 'w2' }));
        expect(done.refused).toEqual([]);
        a = await h.step(runId, 'a');
        expect([a.status, a.outputs, a.lease_owner]).toEqual(['completed', { from: 'w2' }, null]);
      });

      it('a step whose lease keeps expiring fails after MAX_INTERRUPTIONS claims instead of looping', async () => {
        const runId = await h.startRun({ name: 'flappy', steps: [{ id: 'a', retry: { max_attempts: 5 } }, { id: 'b', depends_on: ['a'] }] });
        const attempts: number[] = [];
        for (let i = 0; i < MAX_INTERRUPTIONS; i++) {
          const claimed = await h.claim(`w${i}`, 1, 1);
          attempts.push(...claimed.map((c) => c.attempt));
          await sleep(5);
        }
        expect(attempts).toEqual(Array.from({ length: MAX_INTERRUPTIONS }, (_, i) => i + 1));
        expect(await h.claim('last', 1, 60_000)).toEqual([]);
        const run = await h.run(runId);
        expect(run.status).toBe('failed');
        expect(run.error_step).toBe('a');
        expect(run.error).toContain(`interrupted ${MAX_INTERRUPTIONS} times`);
        expect((await h.step(runId, 'a')).status).toBe('failed');
        expect((await h.step(runId, 'b')).status).toBe('cancelled');
      });

      it('an expired step of a run that has already failed is cancelled, not run again', async () => {
        const runId = await h.startRun({ name: 'par', steps: [{ id: 'a' }, { id: 'x' }] });
        const claimed = await h.claim('w1', 2, 250);
        expect(claimed).toHaveLength(2);
        const a = claimed.find((c) => c.step_id === 'a')!;
        await h.commit({ completions: [{ run_id: runId, step_id: 'a', attempt: a.attempt, worker_id: 'w1', retry_count: 0, duration_ms: 1, result: fail('a broke', false) }] });
        expect((await h.run(runId)).status).toBe('failed');
        expect((await h.step(runId, 'x')).status).toBe('running');
        await sleep(350);
        expect(await h.claim('w2', 5)).toEqual([]);
        const x = await h.step(runId, 'x');
        expect([x.status, x.lease_owner]).toEqual(['cancelled', null]);
        const run = await h.run(runId);
        expect([run.status, run.running_steps]).toEqual(['failed', 0]);
        expect((await store.getEvents(runId)).at(-1)).toMatchObject({ type: EventType.STEP_CANCELLED, step_id: 'x', data: { reason: 'run is failed' } });
      });

      it('a lease that lapsed while its worker lived is renewed by that worker, not reclaimed by the same commit’s claim', async () => {
        const runId = await h.startRun({ name: 'par', steps: [{ id: 'a' }, { id: 'x' }] });
        const [a] = await h.claim('w1', 1, 100);
        await sleep(200);
        // The commit after an outage: renewals and a claim together (the claim's candidates include the lapsed lease).
        const r = await h.commit({ completions: [], renew: { worker_id: 'w1', lease_ms: 60_000, steps: [a!] }, claim: { worker_id: 'w1', max: 4, lease_ms: 60_000 } });
        expect(r.lost).toEqual([]);
        expect(r.claimed.map((c) => c.step_id)).toEqual(['x']);
        const step = await h.step(runId, a!.step_id);
        expect([step.status, step.attempt, step.lease_owner]).toEqual(['running', a!.attempt, 'w1']);
        expect((await store.getEvents(runId)).filter((e) => e.type === EventType.STEP_STARTED && e.step_id === a!.step_id)).toHaveLength(1);
      });

      it('a failure that fails its run cancels the ready steps once, even when the same commit claims', async () => {
        const runId = await h.startRun({ name: 'par', steps: [{ id: 'a' }, { id: 'x' }] });
        const [a] = await h.claim('w1', 1);
        const r = await h.commit({ completions: [completion(a!, 'w1', fail('a broke', false))], claim: { worker_id: 'w1', max: 4, lease_ms: 60_000 } });
        expect(r.claimed).toEqual([]);
        expect((await h.run(runId)).status).toBe('failed');
        expect((await h.step(runId, 'x')).status).toBe('cancelled');
        const cancelled = (await store.getEvents(runId)).filter((e) => e.type === EventType.STEP_CANCELLED || (e.type === EventType.RUN_FAILED && JSON.stringify(e.data).includes('"x"')));
        expect(cancelled.filter((e) => e.type === EventType.STEP_CANCELLED)).toEqual([]);
        expect(cancelled).toHaveLength(1);
      });

      it('renewing a lease: the owner extends it; another worker or a stale attempt loses it', async () => {
        const runId = await h.startRun(chainAB);
        const [c] = await h.claim('w1', 1, 1_000);
        const key = { run_id: runId, step_id: 'a', attempt: c!.attempt };
        const until1 = (await h.step(runId, 'a')).lease_until!;
        await sleep(5);
        const r1 = await h.commit({ completions: [], renew: { worker_id: 'w1', lease_ms: 50_000, steps: [key] } });
        expect(r1.lost).toEqual([]);
        const until2 = (await h.step(runId, 'a')).lease_until!;
        expect(until2).toBeGreaterThanOrEqual(until1 + 49_000);
        const r2 = await h.commit({ completions: [], renew: { worker_id: 'w2', lease_ms: 90_000, steps: [key] } });
        expect(r2.lost).toEqual([key]);
        const r3 = await h.commit({ completions: [], renew: { worker_id: 'w1', lease_ms: 90_000, steps: [{ ...key, attempt: 7 }] } });
        expect(r3.lost).toEqual([{ ...key, attempt: 7 }]);
        expect((await h.step(runId, 'a')).lease_until).toBe(until2);
      });

      it('two claimers on one store never get the same step', async () => {
        const runId = await h.startRun(wide(30));
        const seen: ClaimedStep[] = [];
        for (let round = 0; round < 10; round++) {
          const batches = await Promise.all(['w1', 'w2', 'w3'].map((w) => h.claim(w, 2)));
          for (const b of batches) seen.push(...b);
        }
        const keys = seen.map((c) => c.step_id);
        expect(new Set(keys).size).toBe(keys.length);
        expect(keys.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `s${i}`).sort());
        const steps = await store.getSteps(runId);
        expect(steps.every((s) => s.status === 'running' && s.attempt === 1)).toBe(true);
        expect((await h.run(runId)).running_steps).toBe(30);
      });

      it('two store objects on one database (two ledgers) never claim the same step', async () => {
        const runId = await h.startRun(wide(12));
        const other = new Harness(await openAnother(), {}, runIds);
        const seen: string[] = [];
        for (let round = 0; round < 5; round++) {
          for (const [harness, w] of [
            [h, 'w1'],
            [other, 'w2'],
          ] as const) {
            seen.push(...(await harness.claim(w, 2)).map((c) => c.step_id));
          }
        }
        expect(new Set(seen).size).toBe(seen.length);
        expect(seen).toHaveLength(12);
        const owners = new Set((await other.store.getSteps(runId)).map((s) => s.lease_owner));
        expect(owners).toEqual(new Set(['w1', 'w2']));
      });

      it('claims can be limited to given runs', async () => {
        const r1 = await h.startRun(wide(2, undefined, 'one'));
        const r2 = await h.startRun(wide(2, undefined, 'two'));
        const claimed = await h.claim('w1', 10, 60_000, [r2]);
        expect(claimed.map((c) => c.run_id)).toEqual([r2, r2]);
        expect((await store.getSteps(r1)).every((s) => s.status === 'ready')).toBe(true);
      });
    });

    describe('scheduling', () => {
      it('successors become ready only when all their dependencies have finished', async () => {
        const runId = await h.startRun(diamond);
        const [a] = await h.claim('w1', 10);
        expect(a!.step_id).toBe('a');
        const ra = await h.finish(a!, 'w1', ok());
        expect(ra.finished).toEqual([]);
        let steps = await h.steps(runId);
        expect([steps.get('b')!.status, steps.get('c')!.status, steps.get('d')!.status]).toEqual(['ready', 'ready', 'pending']);
        expect(steps.get('d')!.pending_deps).toBe(2);
        expect((await store.getEvents(runId)).at(-1)!.data.ready).toEqual(['b', 'c']);

        const bc = await h.claim('w1', 10);
        expect(bc.map((c) => c.step_id).sort()).toEqual(['b', 'c']);
        const b = bc.find((c) => c.step_id === 'b')!;
        const c = bc.find((x) => x.step_id === 'c')!;
        await h.finish(b, 'w1', ok());
        steps = await h.steps(runId);
        expect([steps.get('d')!.status, steps.get('d')!.pending_deps]).toEqual(['pending', 1]);
        expect(await h.claim('w1', 10)).toEqual([]);

        await h.finish(c, 'w1', ok());
        steps = await h.steps(runId);
        expect([steps.get('d')!.status, steps.get('d')!.pending_deps]).toEqual(['ready', 0]);
        const [d] = await h.claim('w1', 10);
        expect(d!.step_id).toBe('d');
        const rd = await h.finish(d!, 'w1', ok({ last: true }));
        expect(rd.finished).toEqual([{ run_id: runId, status: 'completed' }]);
        const run = await h.run(runId);
        expect([run.status, run.steps_remaining, run.running_steps]).toEqual(['completed', 0, 0]);
        expect(run.completed_at).not.toBeNull();
        expect(await store.unfinishedRunIds()).toEqual([]);
        expect(await store.getStepOutputs(runId, ['d', 'zz'])).toEqual(new Map([['d', { status: 'completed', outputs: { last: true }, error: null }]]));
        expect(await h.eventTypes(runId)).toEqual([
          'RUN_CREATED',
          'RUN_STARTED',
          'STEP_STARTED:a',
          'STEP_COMPLETED:a',
          'STEP_STARTED:b',
          'STEP_STARTED:c',
          'STEP_COMPLETED:b',
          'STEP_COMPLETED:c',
          'STEP_STARTED:d',
          'STEP_COMPLETED:d',
          'RUN_COMPLETED',
        ]);
      });

      it('per-run max_parallel is respected', async () => {
        const runId = await h.startRun(wide(5, 2));
        const first = await h.claim('w1', 10, 60_000);
        expect(first).toHaveLength(2);
        expect(await h.claim('w2', 10)).toEqual([]);
        expect((await h.run(runId)).running_steps).toBe(2);
        // Steps waiting for capacity are not "due": the next due time is the earliest lease expiry.
        const leases = (await store.getSteps(runId)).filter((s) => s.status === 'running').map((s) => s.lease_until!);
        expect(await store.nextDueAt(Date.now())).toBe(Math.min(...leases));
        await h.finish(first[0]!, 'w1', ok());
        const next = await h.claim('w2', 10);
        expect(next).toHaveLength(1);
        expect((await store.getSteps(runId)).filter((s) => s.status === 'running')).toHaveLength(2);
      });

      it('the ledger default concurrency applies when the workflow sets none', async () => {
        const limited = new Harness(store, { defaultRunConcurrency: 3 }, runIds);
        const runId = await limited.startRun(wide(6));
        expect((await limited.run(runId)).max_parallel).toBe(3);
        expect(await limited.claim('w1', 10)).toHaveLength(3);
      });

      it('a run at its max_parallel does not keep other runs’ ready steps from being claimed', async () => {
        const busy = await h.startRun(wide(30, 1, 'busy'));
        await sleep(5);
        const other = await h.startRun(wide(1, undefined, 'other'));
        const [first] = await h.claim('w1', 1);
        expect(first!.run_id).toBe(busy);
        const next = await h.claim('w1', 4);
        expect(next.map((c) => c.run_id)).toEqual([other]);
      });

      it('a failure with retries left makes the step ready again after a backoff, not claimable before', async () => {
        const runId = await h.startRun({ name: 'retry', steps: [{ id: 'a', retry: { max_attempts: 3, backoff_ms: 60_000 } }, { id: 'b', depends_on: ['a'] }] });
        const [c] = await h.claim('w1');
        const before = Date.now();
        const r = await h.finish(c!, 'w1', fail('flaky'));
        expect(r.refused).toEqual([]);
        expect(r.finished).toEqual([]);
        const a = await h.step(runId, 'a');
        expect(a.status).toBe('ready');
        expect(a.retry_count).toBe(1);
        expect(a.attempt).toBe(1);
        expect(a.error).toBe('flaky');
        expect(a.lease_owner).toBeNull();
        // random() is 0.5: 60 000 / 2 + 60 000 / 2 * 0.5
        expect(a.available_at! - before).toBeGreaterThanOrEqual(45_000);
        expect(a.available_at! - Date.now()).toBeLessThanOrEqual(45_000);
        const last = (await store.getEvents(runId)).at(-1)!;
        expect(last).toMatchObject({ type: EventType.STEP_RETRY_SCHEDULED, step_id: 'a', data: { attempt: 1, failures: 1, retry_in_ms: 45_000, error: 'flaky' } });
        expect(await h.claim('w2', 10)).toEqual([]);
        const run = await h.run(runId);
        expect([run.status, run.running_steps, run.steps_remaining]).toEqual(['running', 0, 2]);
        expect(await store.nextDueAt(Date.now())).toBe(a.available_at);
        expect(await store.nextDueAt(a.available_at!)).toBeNull();
      });

      it('a retried step is claimable once its backoff has passed, with the next attempt and its retry count', async () => {
        const runId = await h.startRun({ name: 'retry-fast', steps: [{ id: 'a', retry: { max_attempts: 2, backoff_ms: 20, max_backoff_ms: 20 } }] });
        const [c1] = await h.claim('w1');
        await h.finish(c1!, 'w1', fail('first'));
        await sleep(40);
        const [c2] = await h.claim('w2');
        expect(c2).toEqual({ run_id: runId, step_id: 'a', plan_id: expect.stringMatching(/^[0-9a-f]{64}$/), attempt: 2, retry_count: 1, reclaimed: false });
        const r = await h.finish(c2!, 'w2', fail('second'));
        expect(r.finished).toEqual([{ run_id: runId, status: 'failed' }]);
        const a = await h.step(runId, 'a');
        expect([a.status, a.retry_count, a.error]).toEqual(['failed', 2, 'second']);
      });

      it('a non-retryable failure fails at once even with retries left', async () => {
        const runId = await h.startRun({ name: 'noretry', steps: [{ id: 'a', retry: { max_attempts: 5 } }] });
        const [c] = await h.claim('w1');
        const r = await h.finish(c!, 'w1', fail('fatal', false));
        expect(r.finished).toEqual([{ run_id: runId, status: 'failed' }]);
      });

      it('a final failure fails the run and cancels pending and ready steps', async () => {
        const runId = await h.startRun({
          name: 'fails',
          concurrency: 1,
          steps: [{ id: 'a' }, { id: 'b', depends_on: ['a'] }, { id: 'c', depends_on: ['b'] }, { id: 'x' }],
        });
        const [c] = await h.claim('w1', 1);
        const other = c!.step_id === 'a' ? 'x' : 'a';
        const r = await h.finish(c!, 'w1', fail('broken', true));
        expect(r.finished).toEqual([{ run_id: runId, status: 'failed' }]);
        const steps = await h.steps(runId);
        expect(steps.get(c!.step_id)!.status).toBe('failed');
        expect(steps.get(c!.step_id)!.error).toBe('broken');
        expect(steps.get(other)!.status).toBe('cancelled');
        if (c!.step_id === 'a') {
          expect([steps.get('b')!.status, steps.get('c')!.status]).toEqual(['cancelled', 'cancelled']);
        }
        const run = await h.run(runId);
        expect([run.status, run.error, run.error_step, run.steps_remaining]).toEqual(['failed', 'broken', c!.step_id, 0]);
        const failed = (await store.getEvents(runId)).at(-1)!;
        expect(failed.type).toBe(EventType.RUN_FAILED);
        expect(failed.data.step).toBe(c!.step_id);
        expect((failed.data.cancelled as string[]).sort()).toEqual(c!.step_id === 'a' ? ['b', 'c', 'x'] : ['a', 'b', 'c']);
        expect(await h.claim('w1', 10)).toEqual([]);
        expect(await store.unfinishedRunIds()).toEqual([]);
      });

      it('on_error: continue lets dependents run and the run complete', async () => {
        const runId = await h.startRun({ name: 'cont', steps: [{ id: 'a', on_error: 'continue' }, { id: 'b', depends_on: ['a'] }] });
        const [a] = await h.claim('w1');
        const r = await h.finish(a!, 'w1', fail('ignored', false));
        expect(r.finished).toEqual([]);
        const steps = await h.steps(runId);
        expect([steps.get('a')!.status, steps.get('b')!.status]).toEqual(['failed', 'ready']);
        expect((await store.getEvents(runId)).at(-1)).toMatchObject({ type: EventType.STEP_FAILED, data: { continued: true, ready: ['b'] } });
        const [b] = await h.claim('w1');
        expect(b!.step_id).toBe('b');
        const rb = await h.finish(b!, 'w1', ok());
        expect(rb.finished).toEqual([{ run_id: runId, status: 'completed' }]);
        expect((await h.run(runId)).error).toBeNull();
      });

      it('a skipped step releases its dependents', async () => {
        const runId = await h.startRun(chainAB);
        const [a] = await h.claim('w1');
        await h.finish(a!, 'w1', { kind: 'skipped', reason: 'condition false' });
        expect((await h.step(runId, 'a')).status).toBe('skipped');
        expect((await h.step(runId, 'b')).status).toBe('ready');
      });

      it('a released step is ready again at once without using a retry', async () => {
        const runId = await h.startRun(chainAB);
        const [a] = await h.claim('w1');
        await h.finish(a!, 'w1', { kind: 'released', reason: 'shutting down' });
        const s = await h.step(runId, 'a');
        expect([s.status, s.retry_count, s.lease_owner]).toEqual(['ready', 0, null]);
        expect((await h.run(runId)).running_steps).toBe(0);
        const [again] = await h.claim('w2');
        expect([again!.step_id, again!.attempt, again!.reclaimed]).toEqual(['a', 2, false]);
      });

      it('on_success handlers start a child run in the same transaction', async () => {
        await h.startRun({ name: 'child', steps: [{ id: 'only' }] });
        const parent = await h.startRun({
          name: 'parent',
          steps: [{ id: 'a' }],
          on_success: [{ notify: { message: 'done ${run.id}' } }, { workflow: { name: 'child', inputs: { from: '${run.id}' } } }],
        });
        const [a] = await h.claim('w1', 1, 60_000, [parent]);
        const { created } = await h.finish(a!, 'w1', ok());
        expect(h.logs).toEqual([`done ${parent}`]);
        const children = (await store.listRuns({ workflow: 'child' })).filter((r) => r.parent_run_id === parent);
        expect(children).toHaveLength(1);
        expect(created).toEqual([children[0]!.id]);
        expect(children[0]!.trigger_data).toEqual({ from: parent });
        expect(children[0]!.trigger_type).toBe('event');
        expect(runIds).toContain(children[0]!.id);
        expect(await h.eventTypes(parent)).toEqual(['RUN_CREATED', 'RUN_STARTED', 'STEP_STARTED:a', 'STEP_COMPLETED:a', 'RUN_COMPLETED', 'HANDLER_LOG', 'HANDLER_STARTED_RUN']);
      });
    });

    describe('cancel and retry', () => {
      it('cancelRun cancels pending, ready and running steps; a late completion is refused', async () => {
        const runId = await h.startRun({ name: 'cancel', steps: [{ id: 'a' }, { id: 'b' }, { id: 'c', depends_on: ['a'] }] });
        const [first] = await h.claim('w1', 1);
        const cancelled = await store.transaction((tx) => h.ledger.cancelRun(tx, runId, 'stop please'));
        expect(cancelled.sort()).toEqual(['a', 'b', 'c']);
        const run = await h.run(runId);
        expect([run.status, run.error, run.running_steps, run.steps_remaining]).toEqual(['cancelled', 'stop please', 0, 0]);
        expect((await store.getSteps(runId)).map((s) => [s.step_id, s.status, s.lease_owner])).toEqual([
          ['a', 'cancelled', null],
          ['b', 'cancelled', null],
          ['c', 'cancelled', null],
        ]);
        const last = (await store.getEvents(runId)).at(-1)!;
        expect(last.type).toBe(EventType.RUN_CANCELLED);
        expect(last.data.reason).toBe('stop please');

        const before = await h.snapshot(runId);
        const late = await h.finish(first!, 'w1', ok());
        expect(late.refused).toHaveLength(1);
        expect(await h.snapshot(runId)).toEqual(before);
        expect(await h.claim('w2', 10)).toEqual([]);

        const again = await expectRejects(store.transaction((tx) => h.ledger.cancelRun(tx, runId, 'twice')));
        expect(again).toBeInstanceOf(UserError);
        expect((again as UserError).code).toBe('RUN_NOT_CANCELLABLE');
        expect(await h.snapshot(runId)).toEqual(before);
      });

      it('retryRun resets only failed and cancelled steps and keeps completed ones', async () => {
        const runId = await h.startRun({ name: 'retry-run', steps: [{ id: 'a' }, { id: 'b', depends_on: ['a'] }, { id: 'c', depends_on: ['b'] }] });
        const [a] = await h.claim('w1');
        await h.finish(a!, 'w1', ok({ kept: 1 }));
        const [b] = await h.claim('w1');
        await h.finish(b!, 'w1', fail('b broke', false));
        const aBefore = await h.step(runId, 'a');
        expect((await h.run(runId)).status).toBe('failed');
        expect((await h.step(runId, 'c')).status).toBe('cancelled');

        const reset = await store.transaction((tx) => h.ledger.retryRun(tx, runId));
        expect(reset.sort()).toEqual(['b', 'c']);
        const run = await h.run(runId);
        expect([run.status, run.error, run.error_step, run.completed_at, run.steps_remaining]).toEqual(['queued', null, null, null, 2]);
        const steps = await h.steps(runId);
        expect(steps.get('a')).toEqual(aBefore);
        expect(steps.get('b')).toMatchObject({ status: 'ready', retry_count: 0, error: null, pending_deps: 0, lease_owner: null });
        expect(steps.get('c')).toMatchObject({ status: 'pending', pending_deps: 1 });
        expect((await store.getEvents(runId)).at(-1)).toMatchObject({ type: EventType.RUN_RETRIED, data: { reset: ['b', 'c'] } });

        const [b2] = await h.claim('w2', 10);
        expect([b2!.step_id, b2!.attempt, b2!.retry_count]).toEqual(['b', 2, 0]);
        await h.finish(b2!, 'w2', ok());
        const [c2] = await h.claim('w2', 10);
        expect(c2!.step_id).toBe('c');
        const done = await h.finish(c2!, 'w2', ok());
        expect(done.finished).toEqual([{ run_id: runId, status: 'completed' }]);
        expect((await h.step(runId, 'a')).outputs).toEqual({ kept: 1 });
        expect((await h.step(runId, 'a')).attempt).toBe(1);
      });

      it('retryRun of a cancelled run; retryRun of a running run is refused', async () => {
        const runId = await h.startRun(chainAB);
        const [a] = await h.claim('w1');
        const err = await expectRejects(store.transaction((tx) => h.ledger.retryRun(tx, runId)));
        expect(err).toBeInstanceOf(ResumeError);
        expect((err as ResumeError).code).toBe('RUN_NOT_RETRYABLE');
        await h.finish(a!, 'w1', ok());
        await store.transaction((tx) => h.ledger.cancelRun(tx, runId, 'user'));
        const reset = await store.transaction((tx) => h.ledger.retryRun(tx, runId));
        expect(reset).toEqual(['b']);
        expect((await h.step(runId, 'b')).status).toBe('ready');
        expect((await h.step(runId, 'a')).status).toBe('completed');
      });
    });

    describe('agent sessions and approvals', () => {
      const session = (id: string, status: 'running' | 'waiting' | 'completed', turns: number, runId: string | null = null) => ({
        id, run_id: runId, step_id: runId ? 's' : null, agent: 'triage', current_agent: 'billing', trace_id: runId, status, turns, input_tokens: 10 * turns, output_tokens: 3 * turns, cost_usd: 0.5 * turns,
      });
      const msg = (seq: number, role: string, content: string | null) => ({ seq, role, agent: role === 'assistant' ? 'triage' : null, content, tool_calls: null, tool_call_id: null, name: null });

      it('checkpoints upsert the session and append the transcript; the tool ledger keeps the first record of a call', async () => {
        const before = await store.now();
        await store.saveAgentCheckpoint({ session: session('s1', 'running', 1, 'run-1'), envelope: '{"version":1}', version: 1, attempt: 1, messages: [msg(0, 'user', 'hi'), msg(1, 'assistant', null)] });
        await store.saveAgentCheckpoint({ session: session('s1', 'completed', 2, 'run-1'), envelope: '{"version":1,"n":2}', version: 1, attempt: 1, messages: [msg(2, 'tool', 'ok\0'), msg(3, 'assistant', 'bye')] });
        // A repeated checkpoint (a retried commit) adds nothing twice.
        await store.saveAgentCheckpoint({ session: session('s1', 'completed', 2, 'run-1'), envelope: '{"version":1,"n":2}', version: 1, attempt: 1, messages: [msg(3, 'assistant', 'bye')] });
        const s = await store.getAgentSession('s1');
        expect(s).toMatchObject({ id: 's1', run_id: 'run-1', status: 'completed', turns: 2, input_tokens: 20, output_tokens: 6, cost_usd: 1, current_agent: 'billing', envelope: '{"version":1,"n":2}', envelope_version: 1 });
        expect(s!.created_at).toBeGreaterThanOrEqual(before - 1000);
        const transcript = await store.getAgentMessages('s1');
        expect(transcript.map((m) => [m.seq, m.role, m.content])).toEqual([[0, 'user', 'hi'], [1, 'assistant', null], [2, 'tool', expect.stringMatching(/^ok/)], [3, 'assistant', 'bye']]);

        const rec = { session_id: 's1', turn: 1, call_id: 'c1', name: 'charge', arguments: '{}', output: 'charged', is_error: false, handoff: null, context_variables: '{"a":1}', at: Date.now() };
        expect(await store.recordToolCall(rec)).toBe(true);
        expect(await store.recordToolCall({ ...rec, output: 'charged again' })).toBe(false);
        expect(await store.getToolCall('s1', 1, 'c1')).toEqual(rec);
        expect(await store.getToolCall('s1', 2, 'c1')).toBeUndefined();
        expect(await store.recordToolCall({ ...rec, turn: 2, output: 'another turn' })).toBe(true);
        expect((await store.listToolCalls('s1')).map((t) => t.output)).toEqual(['charged', 'another turn']);
        // A checkpoint from an older attempt is refused and changes nothing.
        expect(await store.saveAgentCheckpoint({ session: session('s1', 'running', 9, 'run-1'), envelope: '{"stale":true}', version: 1, attempt: 0, messages: [msg(4, 'user', 'stale')] })).toBe(false);
        expect((await store.getAgentSession('s1'))?.envelope).toBe('{"version":1,"n":2}');
        expect(await store.getAgentMessages('s1')).toHaveLength(4);

        await store.saveAgentCheckpoint({ session: session('s2', 'waiting', 1), envelope: '{}', version: 1, attempt: 0, messages: [] });
        await store.failAgentSession('s2', 'the model broke');
        expect((await store.getAgentSession('s2'))?.status).toBe('failed');
        expect((await store.listAgentSessions({})).map((x) => x.id).sort()).toEqual(['s1', 's2']);
        expect((await store.listAgentSessions({ run_id: 'run-1' })).map((x) => x.id)).toEqual(['s1']);
        expect((await store.listAgentSessions({ trace_id: 'run-1' })).map((x) => x.id)).toEqual(['s1']);
        expect((await store.listAgentSessions({ status: 'failed' })).map((x) => x.id)).toEqual(['s2']);
        expect(await store.listAgentSessions({ since: Date.now() + 60_000 })).toEqual([]);
        expect(await store.listAgentSessions({ until: before - 60_000 })).toEqual([]);
      });

      it('a waiting step: approvals are requested once, decided in one transaction with the step becoming ready', async () => {
        const runId = await h.startRun(chainAB);
        const [a] = await h.claim('w1');
        await store.requestApprovals([{ run_id: runId, step_id: 'a', call_id: 'c1', tool: 'pay', arguments: '{"usd":5}', requested_at: Date.now() }]);
        await store.requestApprovals([{ run_id: runId, step_id: 'a', call_id: 'c1', tool: 'pay', arguments: '{"usd":5}', requested_at: Date.now() }]);
        const waited = await h.finish(a!, 'w1', { kind: 'waiting', reason: 'waiting for approval of pay (c1)' });
        expect(waited.refused).toEqual([]);
        expect((await h.run(runId)).status).toBe('waiting');
        expect(await h.step(runId, 'a')).toMatchObject({ status: 'waiting', lease_owner: null, error: 'waiting for approval of pay (c1)' });
        expect(await h.claim('w2', 10)).toEqual([]);
        expect((await store.listApprovals({ status: 'pending' })).map((x) => [x.run_id, x.step_id, x.call_id, x.tool])).toEqual([[runId, 'a', 'c1', 'pay']]);

        const nothing = await expectRejects(store.transaction((tx) => h.ledger.decide(tx, runId, 'b', 'approved', null, null)));
        expect((nothing as UserError).code).toBe('NOTHING_TO_DECIDE');
        const resumed = await store.transaction((tx) => h.ledger.decide(tx, runId, undefined, 'approved', 'fine', 'ada'));
        expect(resumed).toEqual(['a']);
        expect((await h.run(runId)).status).toBe('running');
        expect(await store.getApproval(runId, 'a', 'c1')).toMatchObject({ status: 'approved', reason: 'fine', decided_by: 'ada' });
        expect((await store.getEvents(runId)).map((e) => e.type)).toEqual(expect.arrayContaining([EventType.STEP_WAITING, EventType.APPROVAL_DECIDED]));
        const [again] = await h.claim('w2', 10);
        expect([again!.step_id, again!.attempt]).toEqual(['a', 2]);
        await h.finish(again!, 'w2', ok());
        const [b] = await h.claim('w2', 10);
        const done = await h.finish(b!, 'w2', ok());
        expect(done.finished).toEqual([{ run_id: runId, status: 'completed' }]);
      });

      it('approving a whole run decides only the steps waiting now; a step still running keeps its request for later', async () => {
        const runId = await h.startRun({ name: 'two', steps: [{ id: 'a' }, { id: 'b' }] });
        const [x, y] = await h.claim('w1', 2);
        const [a, b] = x!.step_id === 'a' ? [x!, y!] : [y!, x!];
        const req = (step: string) => ({ run_id: runId, step_id: step, call_id: 'c', tool: 'pay', arguments: '{}', requested_at: Date.now() });
        await store.requestApprovals([req('a'), req('b')]);
        await h.finish(a, 'w1', { kind: 'waiting', reason: 'approval' });
        // b has asked but its waiting commit has not landed yet.
        expect(await store.transaction((tx) => h.ledger.decide(tx, runId, undefined, 'approved', null, null))).toEqual(['a']);
        expect((await store.getApproval(runId, 'b', 'c'))?.status).toBe('pending');
        await h.finish(b, 'w1', { kind: 'waiting', reason: 'approval' });
        expect((await h.run(runId)).status).toBe('waiting');
        expect(await store.transaction((tx) => h.ledger.decide(tx, runId, 'b', 'rejected', 'no', null))).toEqual(['b']);
        expect((await store.getApproval(runId, 'b', 'c'))).toMatchObject({ status: 'rejected', reason: 'no' });
      });

      it('a run that fails cancels its waiting steps (their requests are no longer listed); a retry runs them again', async () => {
        const runId = await h.startRun({ name: 'two', steps: [{ id: 'a' }, { id: 'b' }] });
        const [x, y] = await h.claim('w1', 2);
        const [a, b] = x!.step_id === 'a' ? [x!, y!] : [y!, x!];
        await store.requestApprovals([{ run_id: runId, step_id: 'a', call_id: 'step', tool: 'approval', arguments: '{}', requested_at: Date.now() }]);
        await h.finish(a, 'w1', { kind: 'waiting', reason: 'approval' });
        expect(await store.listApprovals({ status: 'pending' })).toHaveLength(1);
        await h.finish(b, 'w1', fail('b broke', false));
        expect((await h.run(runId)).status).toBe('failed');
        expect((await h.step(runId, 'a')).status).toBe('cancelled');
        expect(await store.listApprovals({ status: 'pending' })).toEqual([]);
        const reset = await store.transaction((tx) => h.ledger.retryRun(tx, runId));
        expect(reset.sort()).toEqual(['a', 'b']);
        expect((await h.step(runId, 'a')).status).toBe('ready');
        expect(await store.listApprovals({ status: 'pending' })).toHaveLength(1);
      });

      it('a waiting run can be cancelled; its waiting step is cancelled', async () => {
        const runId = await h.startRun(chainAB);
        const [a] = await h.claim('w1');
        await h.finish(a!, 'w1', { kind: 'waiting', reason: 'approval' });
        const cancelled = await store.transaction((tx) => h.ledger.cancelRun(tx, runId, 'no'));
        expect(cancelled.sort()).toEqual(['a', 'b']);
        expect((await h.run(runId)).status).toBe('cancelled');
      });
    });

    describe('secrets', () => {
      const sealed = (name: string, scope: string, fill: number, at: number): SecretRecord => ({
        name,
        scope,
        encrypted_value: Buffer.alloc(20, fill),
        value_nonce: Buffer.alloc(12, fill + 1),
        wrapped_key: Buffer.alloc(60, fill + 2),
        kek_id: `kek${fill}`,
        created_at: at,
        updated_at: at,
      });

      it('put creates then replaces (keeping created_at); get, list by scope, delete; bytes round-trip exactly', async () => {
        expect(await store.listSecrets()).toEqual([]);
        expect(await store.putSecret(sealed('API_KEY', '', 1, 1000))).toBe('created');
        expect(await store.putSecret(sealed('API_KEY', 'deploy', 2, 1001))).toBe('created');
        expect(await store.putSecret(sealed('B', '', 3, 1002))).toBe('created');
        expect(await store.putSecret(sealed('API_KEY', '', 4, 2000))).toBe('replaced');
        const got = await store.getSecret('API_KEY', '');
        expect(got).toEqual({ ...sealed('API_KEY', '', 4, 2000), created_at: 1000 });
        expect(Buffer.isBuffer(got!.wrapped_key)).toBe(true);
        expect(await store.getSecret('API_KEY', 'other')).toBeUndefined();
        expect((await store.listSecrets()).map((r) => `${r.scope}/${r.name}`)).toEqual(['/API_KEY', '/B', 'deploy/API_KEY']);
        expect((await store.listSecrets('')).map((r) => r.name)).toEqual(['API_KEY', 'B']);
        expect((await store.listSecrets('deploy')).map((r) => r.kek_id)).toEqual(['kek2']);
        expect(await store.deleteSecret('API_KEY', 'deploy')).toBe(true);
        expect(await store.deleteSecret('API_KEY', 'deploy')).toBe(false);
        expect((await (await openAnother()).listSecrets()).map((r) => `${r.scope}/${r.name}`)).toEqual(['/API_KEY', '/B']);
      });

      it('the generation changes with every put and delete (seen by another store object), and not otherwise', async () => {
        const other = await openAnother();
        const g0 = await other.secretsGeneration();
        expect(await store.secretsGeneration()).toBe(g0);
        await store.putSecret(sealed('A', '', 1, 1));
        const g1 = await other.secretsGeneration();
        expect(g1).not.toBe(g0);
        await store.putSecret(sealed('A', '', 2, 1));
        const g2 = await other.secretsGeneration();
        expect(g2).not.toBe(g1);
        expect(await store.deleteSecret('NOPE', '')).toBe(false);
        expect(await other.secretsGeneration()).toBe(g2);
        await store.deleteSecret('A', '');
        expect(await other.secretsGeneration()).not.toBe(g2);
      });

      it('generations asked for at once agree (SQLite: one read for all of them); one asked after a write sees it', async () => {
        const other = await openAnother();
        const reads = other.kind === 'sqlite' ? vi.spyOn(other as unknown as { read: (...a: unknown[]) => unknown }, 'read') : undefined;
        const at = await Promise.all(Array.from({ length: 16 }, () => other.secretsGeneration()));
        expect(new Set(at).size).toBe(1);
        const registry = await Promise.all(Array.from({ length: 16 }, () => other.registryGeneration()));
        expect(new Set(registry).size).toBe(1);
        if (reads) expect(reads, 'one read of each counter for 16 callers').toHaveBeenCalledTimes(2);
        // Asked after a write: the new value, never a stale read shared with an earlier caller.
        const before = other.secretsGeneration();
        await store.putSecret(sealed('A', '', 1, 1));
        const after = other.secretsGeneration();
        await before;
        expect(await after).not.toBe(at[0]);
        reads?.mockRestore();
      });

      it('rekey rewraps every secret, rechains runs, swaps the key check, in one transaction; a wrong old check or a failure changes nothing', async () => {
        await store.initMeta('master_key_check', 'old-check');
        await store.putSecret(sealed('A', '', 1, 1));
        await store.putSecret(sealed('A', 'wf', 2, 1));
        const runId = await h.startRun(chainAB);
        const events = await store.getEvents(runId);
        const plan = {
          oldCheck: 'old-check',
          newCheck: 'new-check',
          rewrap: (r: SecretRecord) => ({ wrapped_key: Buffer.concat([r.wrapped_key, Buffer.from('x')]), kek_id: 'new' }),
          rechain: (_id: string, evs: ReadonlyArray<{ seq: number; hash: string }>) => evs.map((e) => ({ seq: e.seq, prev_hash: `p${e.seq}`, hash: `h${e.seq}` })),
        };
        const refused = await expectRejects(store.rekey({ ...plan, oldCheck: 'other' }));
        expect((refused as StoreError).code).toBe('MASTER_KEY_MISMATCH');
        const failing = await expectRejects(
          store.rekey({
            ...plan,
            rechain: () => {
              throw new Error('boom');
            },
          }),
        );
        expect((failing as Error).message).toContain('boom');
        expect((await store.getSecret('A', ''))!.kek_id).toBe('kek1');
        expect(await store.getEvents(runId)).toEqual(events);
        expect(await store.initMeta('master_key_check', 'x')).toBe('old-check');

        const report = await store.rekey(plan);
        expect(report).toEqual({ secrets: 2, runs: 1, events: events.length, unverified: [] });
        expect((await store.listSecrets()).map((r) => [r.kek_id, r.wrapped_key.length])).toEqual([['new', 61], ['new', 61]]);
        const after = await store.getEvents(runId);
        expect(after.map((e) => [e.prev_hash, e.hash])).toEqual(events.map((e) => [`p${e.seq}`, `h${e.seq}`]));
        expect((await store.getRun(runId))!.event_hash).toBe(`h${events.length}`);
        expect(await store.initMeta('master_key_check', 'x')).toBe('new-check');
        // A run the plan leaves alone is reported and untouched.
        const report2 = await store.rekey({ ...plan, oldCheck: 'new-check', rechain: () => undefined });
        expect(report2.unverified).toEqual([runId]);
        expect(await store.getEvents(runId)).toEqual(after);
        // The test's chains were rewritten with fake hashes: nothing to verify afterwards.
        runIds.length = 0;
      });
    });

    describe('opening', () => {
      it('a second store object on the same database sees the same data, and reopening keeps it', async () => {
        const runId = await h.startRun(chainAB);
        const second = await openAnother();
        expect((await second.listAgents()).map((a) => a.id).sort()).toEqual(['echo@1.0.0', 'noop@1.0.0']);
        expect((await second.getRun(runId))!.status).toBe('queued');
        const h2 = new Harness(second, {}, runIds);
        const [a] = await h2.claim('w2');
        expect(a!.step_id).toBe('a');
        expect((await h.step(runId, 'a')).lease_owner).toBe('w2');
        await second.close();
        const third = await openAnother();
        expect((await third.getRun(runId))!.status).toBe('running');
        expect(await third.getEvents(runId)).toHaveLength(3);
      });
    });
  });
}

storeContract('sqlite', makeSqliteBackend);
storeContract('postgres', makePostgresBackend);
afterAll(stopPgTestServer);

// ---------------------------------------------------------------- SQLite specifics

describe('SQLite store: files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'swarm-sqlite-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function openError(path: string): StoreError {
    let caught: unknown;
    try {
      const s = openSqliteStore({ path, durability: 'full' });
      void s.close();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(StoreError);
    return caught as StoreError;
  }

  function tables(path: string): string[] {
    const db = new Database(path, { readonly: true });
    try {
      return (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).pluck().all() as string[]);
    } finally {
      db.close();
    }
  }

  it('creates the file and its directory, with the current schema version', async () => {
    const path = join(dir, 'nested', 'deeper', 'swarm.db');
    const s = openSqliteStore({ path, durability: 'full' });
    expect(s.kind).toBe('sqlite');
    expect(s.location).toBe(path);
    expect(await s.schemaVersion()).toBe(SCHEMA_VERSION);
    await s.close();
    expect(tables(path)).toEqual(expect.arrayContaining(['agents', 'workflows', 'workflow_runs', 'step_executions', 'events', 'schema_migrations']));
  });

  it('a file that is not SQLite is refused with STORE_NOT_SWARM and left untouched', () => {
    const path = join(dir, 'notes.db');
    const text = 'these are my notes, not a database\n'.repeat(10);
    writeFileSync(path, text);
    const err = openError(path);
    expect(err.code).toBe('STORE_NOT_SWARM');
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain(path);
    expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it('a SQLite file with other tables is refused with STORE_NOT_SWARM and left untouched', () => {
    const path = join(dir, 'other.db');
    const db = new Database(path);
    db.exec(`CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('ada')`);
    db.close();
    const err = openError(path);
    expect(err.code).toBe('STORE_NOT_SWARM');
    expect(err.message).toContain('customers');
    expect(tables(path)).toEqual(['customers']);
  });

  it('a SQLite file of another application that has its own schema_migrations table is refused with STORE_NOT_SWARM', () => {
    const path = join(dir, 'rails.db');
    const db = new Database(path);
    db.exec(`CREATE TABLE schema_migrations (version TEXT PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20240101000000');
             CREATE TABLE users (id INTEGER PRIMARY KEY)`);
    db.close();
    const err = openError(path);
    expect(err.code).toBe('STORE_NOT_SWARM');
    expect(tables(path)).toEqual(['schema_migrations', 'users']);
  });

  it('a store whose schema_migrations has a higher version is refused with STORE_SCHEMA_NEWER', async () => {
    const path = join(dir, 'swarm.db');
    const s = openSqliteStore({ path, durability: 'full' });
    await s.putAgent(agentRecord(NOOP_AGENT_YAML), false);
    await s.close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(SCHEMA_VERSION + 1, 'from the future', Date.now());
    db.close();
    const err = openError(path);
    expect(err.code).toBe('STORE_SCHEMA_NEWER');
    expect(err.exitCode).toBe(2);
    expect(err.context.found).toBe(SCHEMA_VERSION + 1);
    expect(err.context.supported).toBe(SCHEMA_VERSION);
    const check = new Database(path, { readonly: true });
    expect(check.prepare('SELECT COUNT(*) FROM agents').pluck().get()).toBe(1);
    check.close();
  });

  it('a file migrated by another build (a migration of the same number under another name, or one this build does not know) is refused, nothing written', async () => {
    const path = join(dir, 'swarm.db');
    const s = openSqliteStore({ path, durability: 'full' });
    await s.putAgent(agentRecord(NOOP_AGENT_YAML), false);
    await s.close();
    // Migration 9 left to do (as for a file of an older build), so a refusal that wrote anything would show.
    const db = new Database(path);
    db.exec(`DROP INDEX idx_runs_updated; DELETE FROM schema_migrations WHERE version = 9`);
    db.prepare('UPDATE schema_migrations SET name = ? WHERE version = 6').run('triggers, leases and queues');
    db.close();
    const recorded = (): unknown[] => {
      const check = new Database(path, { readonly: true });
      try {
        return [check.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all(), check.prepare(`SELECT name FROM sqlite_master WHERE name = 'idx_runs_updated'`).all()];
      } finally {
        check.close();
      }
    };
    const before = recorded();
    const err = openError(path);
    expect(err.code).toBe('STORE_SCHEMA_MISMATCH');
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain(`records schema migration 6 as 'triggers, leases and queues', but this Swarm's migration 6 is 'triggers and leases'`);
    expect(err.message).toMatch(/another build of Swarm migrated it.*open it with that build, or use another store/);
    expect(err.context).toMatchObject({ file: path, version: 6, recorded: 'triggers, leases and queues', expected: 'triggers and leases' });
    expect(recorded()).toEqual(before);

    // A version this build does not know, below its newest (another branch's number) or above it.
    const unknown = Array.from({ length: SCHEMA_VERSION + 1 }, (_, i) => i + 1).find((v) => !SQLITE_MIGRATIONS.some((m) => m.version === v))!;
    const db2 = new Database(path);
    db2.prepare('UPDATE schema_migrations SET name = ? WHERE version = 6').run('triggers and leases');
    db2.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(unknown, 'work queues', Date.now());
    db2.close();
    const before2 = recorded();
    const newer = openError(path);
    expect(newer.code).toBe('STORE_SCHEMA_NEWER');
    expect(newer.exitCode).toBe(2);
    expect(newer.message).toContain(`records schema migration ${unknown} ('work queues') that this Swarm does not know (it knows versions up to ${SCHEMA_VERSION})`);
    expect(newer.context).toMatchObject({ found: unknown, versions: [unknown] });
    expect(recorded()).toEqual(before2);

    // The other build's record gone, the file opens and gets what it was missing.
    const db3 = new Database(path);
    db3.prepare('DELETE FROM schema_migrations WHERE version = ?').run(unknown);
    db3.close();
    const reopened = openSqliteStore({ path, durability: 'full' });
    expect((await reopened.listAgents()).map((a) => a.id)).toEqual(['noop@1.0.0']);
    await reopened.close();
    expect(recorded()[1]).toEqual([{ name: 'idx_runs_updated' }]);
  });

  it('a file at schema version 4 (the seed secrets table) migrates: the encrypted secrets table, usable at once', async () => {
    const path = join(dir, 'swarm.db');
    const s = openSqliteStore({ path, durability: 'full' });
    await s.putAgent(agentRecord(NOOP_AGENT_YAML), false);
    await s.close();
    const db = new Database(path);
    db.exec(`DROP INDEX idx_runs_forks; ALTER TABLE workflow_runs DROP COLUMN fork_step_id; ALTER TABLE workflow_runs DROP COLUMN fork_turn; DROP TABLE secrets;
      CREATE TABLE secrets (id TEXT PRIMARY KEY, workflow_id TEXT, name TEXT NOT NULL, encrypted_value BLOB, scope TEXT DEFAULT 'workflow', created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, UNIQUE(workflow_id, name));
      DELETE FROM schema_migrations WHERE version >= 5;
      DROP TRIGGER registry_generation_agents_insert; DROP TRIGGER registry_generation_agents_update; DROP TRIGGER registry_generation_agents_delete; DROP TRIGGER registry_generation_workflows_insert; DROP TRIGGER registry_generation_workflows_update; DROP TRIGGER registry_generation_workflows_delete; DELETE FROM swarm_meta WHERE key = 'registry_generation'; DROP TABLE step_waits; DROP TABLE run_signals; DROP TABLE emitted_events; DROP TABLE api_tokens; DROP TABLE memories; DROP VIEW sw4rm_dead_letters; DROP TABLE sw4rm_messages; DROP TABLE sw4rm_dedup; DROP TABLE sw4rm_agents; DROP TABLE IF EXISTS sw4rm_sched_docs; DROP TABLE sw4rm_agent_state; DROP TABLE signing_keys; DROP TABLE imported_bundles; DROP TABLE knowledge_proposals; DROP TABLE knowledge_track_record; DROP TABLE knowledge_lookups; DROP TABLE knowledge_decisions; DROP TABLE consensus_tasks; DROP TABLE consensus_candidates; DROP TABLE consensus_results; DROP TABLE consensus_votes; DROP TABLE consensus_decisions; DROP TABLE consensus_costs; DROP INDEX idx_runs_updated; DROP INDEX idx_runs_parent; DROP INDEX idx_runs_completed; DROP INDEX idx_agent_sessions_uncompacted; ALTER TABLE agent_sessions DROP COLUMN compacted_at; ALTER TABLE workflow_runs DROP COLUMN parent_step_id; ALTER TABLE workflow_runs DROP COLUMN traceparent; ALTER TABLE workflow_runs DROP COLUMN tracestate; ALTER TABLE step_executions DROP COLUMN map_index; ALTER TABLE step_executions DROP COLUMN map_item; DROP TABLE run_concurrency; DROP TABLE circuit_breakers; DROP TABLE leases; DROP TABLE budget_scopes; DROP TABLE budget_reservations; DROP TABLE triggers; CREATE TABLE triggers (id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL REFERENCES workflows(id), type TEXT NOT NULL, webhook_path TEXT UNIQUE, webhook_secret TEXT, cron_expression TEXT, next_run_at INTEGER, event_source TEXT, event_type TEXT, enabled INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL); DROP TABLE executors; ALTER TABLE workflow_runs DROP COLUMN shared_inputs;`);
    db.close();
    const again = openSqliteStore({ path, durability: 'full' });
    try {
      expect(await again.schemaVersion()).toBe(SCHEMA_VERSION);
      const rec = { name: 'A', scope: '', encrypted_value: Buffer.from([1]), value_nonce: Buffer.from([2]), wrapped_key: Buffer.from([3]), kek_id: 'k', created_at: 1, updated_at: 1 };
      expect(await again.putSecret(rec)).toBe('created');
      expect(await again.listSecrets()).toEqual([rec]);
      expect((await again.listAgents()).map((a) => a.id)).toEqual(['noop@1.0.0']);
    } finally {
      await again.close();
    }
  });

  it('opening the same file twice works and migrations run once', async () => {
    const path = join(dir, 'swarm.db');
    const a = openSqliteStore({ path, durability: 'full' });
    const b = openSqliteStore({ path, durability: 'full' });
    await a.putAgent(agentRecord(NOOP_AGENT_YAML), false);
    expect((await b.listAgents()).map((x) => x.id)).toEqual(['noop@1.0.0']);
    expect(await b.schemaVersion()).toBe(SCHEMA_VERSION);
    await a.close();
    await b.close();
    const c = openSqliteStore({ path, durability: 'process' });
    expect((await c.listAgents()).map((x) => x.id)).toEqual(['noop@1.0.0']);
    await c.close();
    const db = new Database(path, { readonly: true });
    const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all();
    const meta = db.prepare('SELECT key FROM swarm_meta ORDER BY key').pluck().all();
    db.close();
    expect(versions).toEqual(SQLITE_MIGRATIONS.map((m) => m.version));
    // The application id once, and the registry generation the agent's put bumped.
    expect(meta).toEqual(['application', 'registry_generation']);
  });

  it('a store at schema version 3 with a run in it migrates to 4: the run reads back with no idempotency key, and keys work', async () => {
    const path = join(dir, 'swarm.db');
    const s = openSqliteStore({ path, durability: 'full' });
    const h1 = new Harness(s);
    const old = await h1.startRun(chainAB, { n: 1 });
    await s.close();
    // Back to version 3, as the previous release left it.
    const db = new Database(path);
    db.exec(`DROP INDEX idx_runs_forks; ALTER TABLE workflow_runs DROP COLUMN fork_step_id; ALTER TABLE workflow_runs DROP COLUMN fork_turn; DROP INDEX idx_runs_idempotency_key; ALTER TABLE workflow_runs DROP COLUMN idempotency_key; ALTER TABLE workflow_runs DROP COLUMN metadata;
      DROP TABLE secrets; CREATE TABLE secrets (id TEXT PRIMARY KEY, workflow_id TEXT, name TEXT NOT NULL, encrypted_value BLOB, scope TEXT DEFAULT 'workflow', created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, UNIQUE(workflow_id, name));
      DROP TABLE imported_bundles; ALTER TABLE signing_keys DROP COLUMN key_type; DROP TRIGGER registry_generation_agents_insert; DROP TRIGGER registry_generation_agents_update; DROP TRIGGER registry_generation_agents_delete; DROP TRIGGER registry_generation_workflows_insert; DROP TRIGGER registry_generation_workflows_update; DROP TRIGGER registry_generation_workflows_delete; DELETE FROM swarm_meta WHERE key = 'registry_generation'; DROP TABLE step_waits; DROP TABLE run_signals; DROP TABLE emitted_events; DROP TABLE api_tokens; DROP TABLE memories; DROP VIEW sw4rm_dead_letters; DROP TABLE sw4rm_messages; DROP TABLE sw4rm_dedup; DROP TABLE sw4rm_agents; DROP TABLE IF EXISTS sw4rm_sched_docs; DROP TABLE sw4rm_agent_state; DROP TABLE knowledge_proposals; DROP TABLE knowledge_track_record; DROP TABLE knowledge_lookups; DROP TABLE knowledge_decisions; DROP TABLE executors; DROP TABLE consensus_tasks; DROP TABLE consensus_candidates; DROP TABLE consensus_results; DROP TABLE consensus_votes; DROP TABLE consensus_decisions; DROP TABLE consensus_costs; ALTER TABLE workflow_runs DROP COLUMN shared_inputs; DROP INDEX idx_runs_updated; DROP INDEX idx_runs_parent; DROP INDEX idx_runs_completed; DROP INDEX idx_agent_sessions_uncompacted; ALTER TABLE agent_sessions DROP COLUMN compacted_at; ALTER TABLE workflow_runs DROP COLUMN parent_step_id; ALTER TABLE workflow_runs DROP COLUMN traceparent; ALTER TABLE workflow_runs DROP COLUMN tracestate; ALTER TABLE step_executions DROP COLUMN map_index; ALTER TABLE step_executions DROP COLUMN map_item; DROP TABLE run_concurrency; DROP TABLE circuit_breakers; DROP TABLE leases; DROP TABLE budget_scopes; DROP TABLE budget_reservations; DROP TABLE triggers; CREATE TABLE triggers (id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL REFERENCES workflows(id), type TEXT NOT NULL, webhook_path TEXT UNIQUE, webhook_secret TEXT, cron_expression TEXT, next_run_at INTEGER, event_source TEXT, event_type TEXT, enabled INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL);
      DELETE FROM schema_migrations WHERE version >= 4`);
    db.close();
    const again = openSqliteStore({ path, durability: 'full' });
    try {
      expect(await again.schemaVersion()).toBe(SCHEMA_VERSION);
      expect(await again.getRun(old)).toMatchObject({ id: old, trigger_data: { n: 1 }, idempotency_key: null, metadata: null });
      const h2 = new Harness(again);
      const first = await h2.startRunOnce(chainAB, {}, { idempotency_key: 'k' });
      expect(await h2.startRunOnce(chainAB, {}, { idempotency_key: 'k' })).toEqual({ id: first.id, created: false });
    } finally {
      await again.close();
    }
  });

  it('two store objects in one process can run overlapping transactions', async () => {
    const path = join(dir, 'swarm.db');
    const a = openSqliteStore({ path, durability: 'full', busyTimeoutMs: 1500 });
    const b = openSqliteStore({ path, durability: 'full', busyTimeoutMs: 1500 });
    try {
      const h1 = new Harness(a);
      const runId = await h1.startRun(wide(4));
      const h2 = new Harness(b);
      const results = await Promise.allSettled([h1.claim('w1', 2), h2.claim('w2', 2)]);
      expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(['ok', 'ok']);
      const owners = (await a.getSteps(runId)).map((s) => s.lease_owner).sort();
      expect(owners).toEqual(['w1', 'w1', 'w2', 'w2']);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('claimers in separate processes never get the same step', async () => {
    const path = join(dir, 'swarm.db');
    const s = openSqliteStore({ path, durability: 'full' });
    const h0 = new Harness(s);
    const runId = await h0.startRun(wide(60));
    await s.close();

    const src = resolve(import.meta.dirname, '..', 'src');
    const script = join(dir, 'claimer.mts');
    writeFileSync(
      script,
      `import { openSqliteStore } from ${JSON.stringify(pathToFileURL(join(src, 'store/sqlite/sqlite-store.ts')).href)};
import { Ledger } from ${JSON.stringify(pathToFileURL(join(src, 'engine/ledger.ts')).href)};
const [path, worker] = process.argv.slice(2);
const store = openSqliteStore({ path, durability: 'full' });
const ledger = new Ledger({ random: Math.random, newRunId: () => 'unused', secrets: () => undefined, config: {}, defaultRunConcurrency: 1000, chainKey: Buffer.alloc(32, 7) });
const mine = [];
for (let empty = 0; empty < 3; ) {
  const r = await store.transaction((tx) => ledger.commit(tx, { completions: [], claim: { worker_id: worker, max: 1, lease_ms: 600000 } }));
  if (r.claimed.length === 0) { empty++; await new Promise((res) => setTimeout(res, 5)); continue; }
  mine.push(...r.claimed.map((c) => c.step_id + '#' + c.attempt));
}
await store.close();
process.stdout.write(JSON.stringify(mine));
`,
    );
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const runChild = (worker: string): Promise<string[]> =>
      new Promise((res, rej) => {
        const child = spawn(process.execPath, ['--import', tsx, script, path, worker], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('error', rej);
        child.on('close', (code) => (code === 0 ? res(JSON.parse(out) as string[]) : rej(new Error(`claimer ${worker} exited ${code}: ${err}`))));
      });
    const results = await Promise.all(['p1', 'p2', 'p3'].map(runChild));
    const all = results.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(all.map((k) => k.split('#')[0]).sort()).toEqual(Array.from({ length: 60 }, (_, i) => `s${i}`).sort());
    expect(all.every((k) => k.endsWith('#1'))).toBe(true);

    const check = openSqliteStore({ path, durability: 'full' });
    try {
      const steps = await check.getSteps(runId);
      const owners = new Map<string, number>();
      for (const st of steps) owners.set(st.lease_owner ?? '-', (owners.get(st.lease_owner ?? '-') ?? 0) + 1);
      results.forEach((r, i) => expect(owners.get(`p${i + 1}`) ?? 0).toBe(r.length));
      expect((await check.getRun(runId))!.running_steps).toBe(60);
      expect(await chainProblems(check, runId)).toEqual([]);
    } finally {
      await check.close();
    }
  });
});

// ---------------------------------------------------------------- PostgreSQL specifics

describe('PostgreSQL store: databases, clocks, notifications, connections', () => {
  let server: PgTestServer;
  let url: string;
  let opened: PostgresStore[];
  let runIds: string[];

  beforeEach(async () => {
    server = await pgTestServer();
    // Empty: these tests open, migrate and upgrade databases themselves.
    url = await server.createDatabase({ empty: true });
    opened = [];
    runIds = [];
  });
  afterEach(async () => {
    try {
      for (const id of runIds) expect(await chainProblems(opened[0]!, id), `event chain of run ${id}`).toEqual([]);
    } finally {
      for (const s of opened) await s.close();
      await server.dropDatabase(url);
    }
  });

  async function open(options: { durability?: 'full' | 'process'; schema?: string } = {}): Promise<PostgresStore> {
    const s = await openPostgresStore({ url, durability: options.durability ?? 'full', ...(options.schema ? { schema: options.schema } : {}) });
    opened.push(s);
    return s;
  }

  async function openError(options: { schema?: string } = {}): Promise<StoreError> {
    const e = await expectRejects(open(options));
    expect(e).toBeInstanceOf(StoreError);
    return e as StoreError;
  }

  async function tables(schema = 'public'): Promise<string[]> {
    return (await server.query(url, 'SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename', [schema])).rows.map((r: { tablename: string }) => r.tablename);
  }

  /** End this database's connections opened by Swarm stores (as a server restart or a network cut would). */
  async function dropConnections(): Promise<number> {
    const r = await server.query(
      url,
      `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'swarm' AND pid <> pg_backend_pid()`,
    );
    return r.rowCount ?? 0;
  }

  describe('opening and migrations', () => {
    it('creates the schema with the current version; the location hides the password', async () => {
      const s = await open();
      expect(s.kind).toBe('postgres');
      const password = new URL(url).password;
      expect(password).not.toBe('');
      expect(s.location).not.toContain(password);
      expect(s.location).toContain(new URL(url).pathname);
      expect(await s.schemaVersion()).toBe(PG_SCHEMA_VERSION);
      expect(await tables()).toEqual(expect.arrayContaining(['agents', 'workflows', 'workflow_runs', 'step_executions', 'events', 'schema_migrations', 'swarm_meta']));
    });

    it('a database at schema version 2 with a run in it migrates to the current version: the ready index in claim order replaces the old one, the encrypted secrets table the seed one, and the run goes on', async () => {
      const s = await open();
      const h = new Harness(s, {}, runIds);
      const runId = await h.startRun(chainAB);
      // Back to version 2, as the previous release left it.
      // (Migrations 4 to 9 and 11 undone too: no idempotency keys, the seed's secrets and triggers tables back, no leases, no api_tokens, no index of runs by last change, no map or sub-workflow columns, no retention indexes or compaction column (16).)
      await server.query(
        url,
        `DROP INDEX idx_runs_idempotency_key; ALTER TABLE workflow_runs DROP COLUMN idempotency_key, DROP COLUMN metadata;
         DROP INDEX idx_steps_ready_order; CREATE INDEX idx_steps_ready ON step_executions(available_at) WHERE status = 'ready';
         DROP TABLE secrets; CREATE TABLE secrets (id TEXT PRIMARY KEY, workflow_id TEXT, name TEXT NOT NULL, encrypted_value BYTEA, scope TEXT DEFAULT 'workflow', created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
         DROP TABLE imported_bundles; ALTER TABLE signing_keys DROP COLUMN key_type; DROP TRIGGER registry_generation_agents ON agents; DROP TRIGGER registry_generation_workflows ON workflows; DROP FUNCTION swarm_bump_registry_generation(); DELETE FROM swarm_meta WHERE key = 'registry_generation'; DROP TABLE step_waits; DROP TABLE run_signals; DROP TABLE emitted_events; DROP TABLE api_tokens; DROP TABLE memories; DROP VIEW sw4rm_dead_letters; DROP TABLE sw4rm_messages; DROP TABLE sw4rm_dedup; DROP TABLE sw4rm_agents; DROP TABLE IF EXISTS sw4rm_sched_docs; DROP TABLE sw4rm_agent_state; DROP TABLE knowledge_proposals; DROP TABLE knowledge_track_record; DROP TABLE knowledge_lookups; DROP TABLE knowledge_decisions; DROP TABLE executors; DROP TABLE consensus_tasks; DROP TABLE consensus_candidates; DROP TABLE consensus_results; DROP TABLE consensus_votes; DROP TABLE consensus_decisions; DROP TABLE consensus_costs; ALTER TABLE workflow_runs DROP COLUMN shared_inputs; DROP INDEX idx_runs_updated; DROP INDEX idx_runs_parent; DROP INDEX idx_runs_completed; DROP INDEX idx_agent_sessions_uncompacted; ALTER TABLE agent_sessions DROP COLUMN compacted_at; ALTER TABLE workflow_runs DROP COLUMN parent_step_id, DROP COLUMN traceparent, DROP COLUMN tracestate; ALTER TABLE step_executions DROP COLUMN map_index, DROP COLUMN map_item; DROP TABLE run_concurrency; DROP TABLE circuit_breakers; DROP TABLE leases; DROP TABLE budget_scopes; DROP TABLE budget_reservations; DROP TABLE triggers; CREATE TABLE triggers (id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL REFERENCES workflows(id), type TEXT NOT NULL, webhook_path TEXT UNIQUE, webhook_secret TEXT, cron_expression TEXT, next_run_at BIGINT, event_source TEXT, event_type TEXT, enabled INTEGER NOT NULL DEFAULT 1, created_at BIGINT NOT NULL);
         DELETE FROM schema_migrations WHERE version >= 3`,
      );
      expect(await s.schemaVersion()).toBe(2);
      const again = await open();
      expect(await again.schemaVersion()).toBe(PG_SCHEMA_VERSION);
      const indexes = (await server.query(url, `SELECT indexname FROM pg_indexes WHERE tablename = 'step_executions' AND indexname LIKE 'idx_steps_ready%'`)).rows.map((r: { indexname: string }) => r.indexname);
      expect(indexes).toEqual(['idx_steps_ready_order']);
      const columns = (await server.query(url, `SELECT column_name FROM information_schema.columns WHERE table_name = 'secrets' ORDER BY ordinal_position`)).rows.map((r: { column_name: string }) => r.column_name);
      expect(columns).toEqual(['name', 'scope', 'encrypted_value', 'value_nonce', 'wrapped_key', 'kek_id', 'created_at', 'updated_at']);
      const h2 = new Harness(again, {}, []);
      const [a] = await h2.claim('w1');
      expect(a).toMatchObject({ run_id: runId, step_id: 'a' });
      expect((await h2.finish(a!, 'w1', ok())).refused).toEqual([]);
    });

    it('a database with other tables is refused with STORE_NOT_SWARM and left untouched', async () => {
      await server.query(url, `CREATE TABLE customers (id serial PRIMARY KEY, name text); INSERT INTO customers (name) VALUES ('ada')`);
      const err = await openError();
      expect(err.code).toBe('STORE_NOT_SWARM');
      expect(err.exitCode).toBe(2);
      expect(err.message).toContain('customers');
      expect(err.message).not.toContain(new URL(url).password);
      expect(await tables()).toEqual(['customers']);
      expect((await server.query(url, 'SELECT name FROM customers')).rows).toEqual([{ name: 'ada' }]);
    });

    it('a database of another application that has its own schema_migrations table is refused with STORE_NOT_SWARM', async () => {
      await server.query(url, `CREATE TABLE schema_migrations (version text PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20240101000000'); CREATE TABLE users (id int)`);
      expect((await openError()).code).toBe('STORE_NOT_SWARM');
      expect(await tables()).toEqual(['schema_migrations', 'users']);
    });

    it('a database whose schema_migrations has a higher version is refused with STORE_SCHEMA_NEWER', async () => {
      const s = await open();
      await s.putAgent(agentRecord(NOOP_AGENT_YAML), false);
      await server.query(url, 'INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [PG_SCHEMA_VERSION + 1, 'from the future', Date.now()]);
      const err = await openError();
      expect(err.code).toBe('STORE_SCHEMA_NEWER');
      expect(err.exitCode).toBe(2);
      expect(err.context.found).toBe(PG_SCHEMA_VERSION + 1);
      expect(err.context.supported).toBe(PG_SCHEMA_VERSION);
      expect((await server.query(url, 'SELECT COUNT(*)::int AS n FROM agents')).rows[0]).toEqual({ n: 1 });
    });

    it('a database migrated by another build (a migration of the same number under another name, or one this build does not know) is refused, nothing written', async () => {
      const s = await open();
      await s.putAgent(agentRecord(NOOP_AGENT_YAML), false);
      await s.close();
      // Migration 9 left to do, so a refusal that wrote anything would show.
      await server.query(url, `DROP INDEX idx_runs_updated; DELETE FROM schema_migrations WHERE version = 9; UPDATE schema_migrations SET name = 'triggers, leases and queues' WHERE version = 6`);
      const recorded = async (): Promise<unknown[]> => [
        (await server.query(url, 'SELECT version, name FROM schema_migrations ORDER BY version')).rows,
        (await server.query(url, `SELECT indexname FROM pg_indexes WHERE indexname = 'idx_runs_updated'`)).rows,
      ];
      const before = await recorded();
      const err = await openError();
      expect(err.code).toBe('STORE_SCHEMA_MISMATCH');
      expect(err.exitCode).toBe(2);
      expect(err.message).toContain(`records schema migration 6 as 'triggers, leases and queues', but this Swarm's migration 6 is 'triggers and leases'`);
      expect(err.message).not.toContain(new URL(url).password);
      expect(err.context).toMatchObject({ version: 6, recorded: 'triggers, leases and queues', expected: 'triggers and leases' });
      expect(await recorded()).toEqual(before);

      const unknown = Array.from({ length: PG_SCHEMA_VERSION + 1 }, (_, i) => i + 1).find((v) => !PG_MIGRATIONS.some((m) => m.version === v))!;
      await server.query(url, `UPDATE schema_migrations SET name = 'triggers and leases' WHERE version = 6`);
      await server.query(url, 'INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [unknown, 'work queues', Date.now()]);
      const before2 = await recorded();
      const newer = await openError();
      expect(newer.code).toBe('STORE_SCHEMA_NEWER');
      expect(newer.exitCode).toBe(2);
      expect(newer.message).toContain(`records schema migration ${unknown} ('work queues') that this Swarm does not know (it knows versions up to ${PG_SCHEMA_VERSION})`);
      expect(await recorded()).toEqual(before2);

      await server.query(url, 'DELETE FROM schema_migrations WHERE version = $1', [unknown]);
      const reopened = await open();
      expect((await reopened.listAgents()).map((a) => a.id)).toEqual(['noop@1.0.0']);
      expect((await recorded())[1]).toEqual([{ indexname: 'idx_runs_updated' }]);
    });

    it('several processes opening a new database at once migrate it once', async () => {
      const stores = await Promise.all(Array.from({ length: 6 }, (_, i) => open({ durability: i % 2 ? 'full' : 'process' })));
      await stores[0]!.putAgent(agentRecord(NOOP_AGENT_YAML), false);
      for (const s of stores) expect((await s.listAgents()).map((a) => a.id)).toEqual(['noop@1.0.0']);
      const versions = (await server.query(url, 'SELECT version FROM schema_migrations ORDER BY version')).rows.map((r: { version: number }) => r.version);
      expect(versions).toEqual(PG_MIGRATIONS.map((m) => m.version));
      // The application id once, and the registry generation the agent's put bumped.
      expect((await server.query(url, 'SELECT key FROM swarm_meta ORDER BY key')).rows.map((r: { key: string }) => r.key)).toEqual(['application', 'registry_generation']);
    });

    it('a schema of its own: other tables elsewhere in the database do not matter, and two schemas are independent', async () => {
      await server.query(url, 'CREATE TABLE customers (id int)');
      const a = await open({ schema: 'swarm_a' });
      const b = await open({ schema: 'swarm_b' });
      expect(a.location).toContain('swarm_a');
      await a.putAgent(agentRecord(NOOP_AGENT_YAML), false);
      expect(await b.listAgents()).toEqual([]);
      expect(await tables('swarm_a')).toEqual(expect.arrayContaining(['agents', 'schema_migrations']));
      expect(await tables()).toEqual(['customers']);
      expect(await a.sessionSetting('search_path')).toBe('swarm_a');
      expect((await openError({ schema: 'Not A Schema' })).code).toBe('STORE_OPEN_FAILED');
    });

    it('workers, agent pids, step logs and run listings read back as written', async () => {
      const s = await open();
      const h = new Harness(s, {}, runIds);
      const now = Date.now();
      const worker = (id: string, startedAt: number, heartbeat: number): WorkerRecord => ({
        id, hostname: 'host', host_id: 'host/boot/1', pid: 123, concurrency: 4, scope: null, started_at: startedAt, heartbeat_at: heartbeat, stopped_at: null,
      });
      await s.registerWorker(worker('w1', now, now));
      await s.registerWorker(worker('w2', now + 1, now - 60_000));
      expect(await s.listWorkers()).toEqual([worker('w1', now, now), worker('w2', now + 1, now - 60_000)]);
      expect((await s.listWorkers(now - 1_000)).map((w) => w.id)).toEqual(['w1']);
      const before = await s.now();
      await s.heartbeatWorker('w2');
      const after = await s.now();
      expect((await s.listWorkers(now - 1_000)).map((w) => w.id)).toEqual(['w1', 'w2']);
      const beat = (await s.listWorkers()).find((w) => w.id === 'w2')!.heartbeat_at;
      expect(beat).toBeGreaterThanOrEqual(before);
      expect(beat).toBeLessThanOrEqual(after);

      const runId = await h.startRun(chainAB);
      const [a] = await h.claim('w1');
      await s.setStepPid(runId, 'a', a!.attempt, 4242);
      await s.setStepPid(runId, 'a', a!.attempt + 1, 1); // another attempt's: ignored
      expect(await s.pidsOf(['w1', 'w2'])).toEqual([{ pid: 4242, run_id: runId, step_id: 'a' }]);
      expect(await s.expireLeasesOf(['w1'])).toBe(1);
      expect((await s.listWorkers()).map((w) => w.id)).toEqual(['w2']);
      const [again] = await h.claim('w2');
      expect([again!.step_id, again!.attempt, again!.reclaimed]).toEqual(['a', 2, true]);
      await h.commit({ completions: [{ ...completion(again!, 'w2', ok()), logs: { stdout: 'out', stderr: 'err', truncated: true } }] });
      expect(await s.getLogs(runId)).toEqual([{ run_id: runId, step_id: 'a', attempt: 2, stdout: 'out', stderr: 'err', truncated: true, at: expect.any(Number) }]);
      expect(await s.getLogs(runId, 'b')).toEqual([]);
      // PostgreSQL text cannot hold NUL: raw output and error messages keep the rest of their text.
      const [b] = await h.claim('w2');
      await h.commit({ completions: [{ ...completion(b!, 'w2', fail('bad\0byte', false)), logs: { stdout: 'bin\0ary', stderr: '', truncated: false } }] });
      expect((await s.getLogs(runId, 'b')).map((l) => l.stdout)).toEqual(['bin\uFFFDary']);
      expect((await h.step(runId, 'b')).error).toBe('bad\uFFFDbyte');
      await s.stopWorker('w2');
      expect(await s.listWorkers()).toEqual([]);

      await sleep(5);
      const second = await h.startRun(wide(1, undefined, 'other'));
      expect((await s.listRuns({})).map((r) => r.id)).toEqual([second, runId]);
      expect((await s.listRuns({ workflow: 'chain' })).map((r) => r.id)).toEqual([runId]);
      expect((await s.listRuns({ status: 'queued' })).map((r) => r.id)).toEqual([second]);
      expect((await s.listRuns({ since: (await h.run(second)).created_at })).map((r) => r.id)).toEqual([second]);
      expect((await s.listRuns({ limit: 1 })).map((r) => r.id)).toEqual([second]);
      expect(await s.findRunIds(runId.slice(-6), 5, 'suffix')).toEqual([runId]);
      expect(await s.unfinishedRunIds()).toEqual([second]);
      expect(JSON.parse((await s.getPlanById((await h.run(second)).plan_id))!)).toMatchObject({ workflow: { name: 'other' } });
    });

    it('durability full commits synchronously (synchronous_commit=on), process does not (off)', async () => {
      expect(await (await open({ durability: 'full' })).sessionSetting('synchronous_commit')).toBe('on');
      expect(await (await open({ durability: 'process' })).sessionSetting('synchronous_commit')).toBe('off');
    });
  });

  describe('clocks and concurrency', () => {
    it('leases and their expiry are on the database clock, not the worker’s', async () => {
      const s = await open();
      const h = new Harness(s, {}, runIds);
      const runId = await h.startRun(chainAB);
      // This process's clock runs an hour fast; the database's does not.
      const skew = vi.spyOn(Date, 'now').mockImplementation(() => new Date().getTime() + 3_600_000);
      try {
        const dbBefore = await s.now();
        const [a] = await h.claim('w1', 1, 1_000);
        const step = await h.step(runId, 'a');
        expect(step.lease_until! - dbBefore).toBeGreaterThanOrEqual(1_000);
        expect(step.lease_until! - dbBefore).toBeLessThan(5_000);
        // By this process's clock the lease ran out long ago; by the database's it has not.
        expect(await h.claim('w2', 1, 60_000)).toEqual([]);
        await sleep(1_100);
        const [again] = await h.claim('w2', 1, 60_000);
        expect([again!.step_id, again!.attempt, again!.reclaimed]).toEqual(['a', a!.attempt + 1, true]);
      } finally {
        skew.mockRestore();
      }
    });

    it('several store objects completing and claiming steps of one run at once keep its counters and event chain', async () => {
      const stores = await Promise.all([open(), open(), open(), open()]);
      const harnesses = stores.map((s) => new Harness(s, {}, runIds));
      const runId = await harnesses[0]!.startRun(wide(40, 6));
      const done: string[] = [];
      await Promise.all(
        harnesses.map(async (h, i) => {
          const worker = `w${i}`;
          let mine: ClaimedStep[] = [];
          for (let idle = 0; idle < 30; ) {
            // Like a worker: the completions and the next claim share one commit.
            const r = await h.commit({ completions: mine.map((c) => completion(c, worker, ok({ by: worker }))), claim: { worker_id: worker, max: 2, lease_ms: 60_000 } });
            expect(r.refused).toEqual([]);
            done.push(...mine.map((c) => c.step_id));
            mine = r.claimed;
            if (mine.length === 0) {
              if ((await h.run(runId)).status === 'completed') break;
              idle++;
              await sleep(5);
            }
          }
        }),
      );
      expect(done.sort()).toEqual(Array.from({ length: 40 }, (_, i) => `s${i}`).sort());
      const run = await harnesses[0]!.run(runId);
      expect([run.status, run.running_steps, run.steps_remaining]).toEqual(['completed', 0, 0]);
      expect((await stores[0].getSteps(runId)).every((s) => s.status === 'completed' && s.attempt === 1)).toBe(true);
    });

    it('a deadlock between two transactions is retried: both commit', async () => {
      const [s1, s2] = await Promise.all([open(), open()]);
      const h = new Harness(s1, {}, runIds);
      const r1 = await h.startRun(wide(1, undefined, 'one'));
      const r2 = await h.startRun(wide(1, undefined, 'two'));
      let bothLocked: () => void = () => undefined;
      let locked = 0;
      const barrier = new Promise<void>((resolve) => (bothLocked = resolve));
      const calls = [0, 0];
      // Each locks one run, waits until the other has locked the other run, then asks for it.
      const crossed = (s: Store, i: number, first: string, second: string): Promise<void> =>
        s.transaction(async (tx) => {
          calls[i]!++;
          await tx.getRunState(first);
          if (++locked === 2) bothLocked();
          await barrier;
          await tx.getRunState(second);
        });
      await Promise.all([crossed(s1, 0, r1, r2), crossed(s2, 1, r2, r1)]);
      expect(calls[0]! + calls[1]!).toBe(3);
    });

    it('a commit that completed steps claims around a run another transaction holds instead of waiting for it', async () => {
      const [s1, s2] = await Promise.all([open(), open()]);
      const h = new Harness(s1, {}, runIds);
      const r1 = await h.startRun(wide(1, undefined, 'one'));
      const [c1] = await h.claim('w1', 1, 60_000, [r1]);
      const r2 = await h.startRun(wide(2, undefined, 'two'));
      let release: () => void = () => undefined;
      let holding: () => void = () => undefined;
      const held = new Promise<void>((resolve) => (holding = resolve));
      const hold = s2.transaction(async (tx) => {
        await tx.getRunState(r2);
        holding();
        await new Promise<void>((resolve) => (release = resolve));
      });
      await held;
      // Holding r1 (its completion) and waiting for r2 could close a lock cycle: r2's steps are left.
      const r = await h.commit({ completions: [completion(c1!, 'w1', ok())], claim: { worker_id: 'w1', max: 5, lease_ms: 60_000 } });
      expect(r.finished).toEqual([{ run_id: r1, status: 'completed' }]);
      expect(r.claimed).toEqual([]);
      release();
      await hold;
      expect((await h.claim('w1', 5)).map((c) => c.run_id)).toEqual([r2, r2]);
    });

    it('claimers in separate processes never get the same step', async () => {
      const s = await open();
      const runId = await new Harness(s, {}, runIds).startRun(wide(60));
      const dir = mkdtempSync(join(tmpdir(), 'swarm-pg-claimers-'));
      try {
        const src = resolve(import.meta.dirname, '..', 'src');
        const script = join(dir, 'claimer.mts');
        writeFileSync(
          script,
          `import { openPostgresStore } from ${JSON.stringify(pathToFileURL(join(src, 'store/postgres/postgres-store.ts')).href)};
import { Ledger } from ${JSON.stringify(pathToFileURL(join(src, 'engine/ledger.ts')).href)};
const [url, worker] = process.argv.slice(2);
const store = await openPostgresStore({ url, durability: 'full' });
const ledger = new Ledger({ random: Math.random, newRunId: () => 'unused', secrets: () => undefined, config: {}, defaultRunConcurrency: 1000, chainKey: Buffer.alloc(32, 7) });
const mine = [];
for (let empty = 0; empty < 3; ) {
  const r = await store.transaction((tx) => ledger.commit(tx, { completions: [], claim: { worker_id: worker, max: 2, lease_ms: 600000 } }));
  if (r.claimed.length === 0) { empty++; await new Promise((res) => setTimeout(res, 5)); continue; }
  mine.push(...r.claimed.map((c) => c.step_id + '#' + c.attempt));
}
await store.close();
process.stdout.write(JSON.stringify(mine));
`,
        );
        const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
        const runChild = (worker: string): Promise<string[]> =>
          new Promise((res, rej) => {
            const child = spawn(process.execPath, ['--import', tsx, script, url, worker], { stdio: ['ignore', 'pipe', 'pipe'] });
            let out = '';
            let err = '';
            child.stdout.on('data', (d: Buffer) => (out += d.toString()));
            child.stderr.on('data', (d: Buffer) => (err += d.toString()));
            child.on('error', rej);
            child.on('close', (code) => (code === 0 ? res(JSON.parse(out) as string[]) : rej(new Error(`claimer ${worker} exited ${code}: ${err}`))));
          });
        const results = await Promise.all(['p1', 'p2', 'p3'].map(runChild));
        const all = results.flat();
        expect(new Set(all).size).toBe(all.length);
        expect(all.map((k) => k.split('#')[0]).sort()).toEqual(Array.from({ length: 60 }, (_, i) => `s${i}`).sort());
        expect(all.every((k) => k.endsWith('#1'))).toBe(true);
        const owners = new Map<string, number>();
        for (const st of await s.getSteps(runId)) owners.set(st.lease_owner ?? '-', (owners.get(st.lease_owner ?? '-') ?? 0) + 1);
        results.forEach((r, i) => expect(owners.get(`p${i + 1}`) ?? 0).toBe(r.length));
        expect((await s.getRun(runId))!.running_steps).toBe(60);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('wake-ups (LISTEN/NOTIFY)', () => {
    it('an idle waiter is woken by another process’s commit long before its timeout', async () => {
      const [waiter, other] = await Promise.all([open(), open()]);
      await new Harness(other, {}, runIds).registerAgents(NOOP_AGENT_YAML, ECHO_AGENT_YAML);
      await waiter.waitForChange(10_000); // ends when its LISTEN connection is up
      const started = Date.now();
      const woken = waiter.waitForChange(20_000);
      await sleep(50);
      await new Harness(other, {}, runIds).startRun(chainAB);
      await woken;
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    it('a change while nobody waits ends the next wait at once; without changes a wait lasts its timeout; wake ends it', async () => {
      const [waiter, other] = await Promise.all([open(), open()]);
      await waiter.waitForChange(10_000); // ends when its LISTEN connection is up
      await new Harness(other, {}, runIds).startRun(chainAB);
      await sleep(100);
      let t = Date.now();
      await waiter.waitForChange(20_000);
      expect(Date.now() - t).toBeLessThan(1_000);
      t = Date.now();
      await waiter.waitForChange(150);
      expect(Date.now() - t).toBeGreaterThanOrEqual(140);
      t = Date.now();
      await waiter.waitForChange(20_000, sleep(20));
      expect(Date.now() - t).toBeLessThan(1_000);
    });

    it('a waiter whose LISTEN connection was lost listens again', async () => {
      const [waiter, other] = await Promise.all([open(), open()]);
      await waiter.waitForChange(10_000); // ends when its LISTEN connection is up
      const ended = await server.query(
        url,
        `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'swarm-listen'`,
      );
      expect(ended.rowCount).toBe(1);
      await sleep(1_000); // reconnection is tried at most once a second
      // Reconnecting counts as a change: what was committed while nobody listened went unheard.
      await waiter.waitForChange(10_000);
      const started = Date.now();
      const woken = waiter.waitForChange(20_000);
      await sleep(50);
      await new Harness(other, {}, runIds).startRun(chainAB);
      await woken;
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    it('commits that change nothing others wait for do not notify', async () => {
      const [waiter, other] = await Promise.all([open(), open()]);
      const h = new Harness(other, {}, runIds);
      await h.startRun(chainAB);
      await waiter.waitForChange(10_000); // ends when its LISTEN connection is up
      await h.claim('w1', 1, 60_000, ['no-such-run']);
      await other.heartbeatWorker('w1');
      const t = Date.now();
      await waiter.waitForChange(300);
      expect(Date.now() - t).toBeGreaterThanOrEqual(290);
    });
  });

  describe('lost connections', () => {
    it('reads and writes outside transactions carry on after the server drops the connections', async () => {
      const s = await open();
      await s.putAgent(agentRecord(NOOP_AGENT_YAML), false);
      expect(await dropConnections()).toBeGreaterThan(0);
      expect((await s.listAgents()).map((a) => a.id)).toEqual(['noop@1.0.0']);
      await s.putAgent(agentRecord(ECHO_AGENT_YAML), false);
      expect((await s.listAgents()).map((a) => a.id)).toEqual(['echo@1.0.0', 'noop@1.0.0']);
    });

    it('a connection lost inside a transaction: it runs again and the step is completed once', async () => {
      const s = await open();
      const h = new Harness(s, {}, runIds);
      const runId = await h.startRun(chainAB);
      const [a] = await h.claim('w1');
      let calls = 0;
      const r = await s.transaction(async (tx) => {
        calls++;
        const result = await h.ledger.commit(tx, { completions: [completion(a!, 'w1', ok({ n: 1 }))] });
        if (calls === 1) {
          await dropConnections();
          await tx.getSteps(runId); // fails: the connection is gone, nothing was committed
        }
        return result;
      });
      expect(calls).toBe(2);
      expect(r.refused).toEqual([]);
      expect((await h.step(runId, 'a')).status).toBe('completed');
      expect((await h.eventTypes(runId)).filter((t) => t === 'STEP_COMPLETED:a')).toHaveLength(1);
    });

    it('values of every shape survive the pipelined statements (EXECUTE with literals), as text and inside arrays', async () => {
      const awkward = ["it's", 'back\\slash', 'a \\" both', '"quoted"', '{brace}', 'a,b', 'NULL', '', ' spaced ', 'line\nbreak\ttab', 'ünï😀', "''", '\\\\'];
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query('SET standard_conforming_strings TO on');
        await client.query('CREATE TABLE shapes (i int, t text, n bigint, ts text[], ns bigint[])');
        const p = new Pipeline(client, new Set());
        p.defer('BEGIN');
        awkward.forEach((t, i) => p.deferStatement('INSERT INTO shapes VALUES ($1, $2, $3, $4, $5)', [i, t, 1_795_297_237_862 * (i - 6), [t, null, ...awkward], [i, null, 2 ** 53 - 1]]));
        const back = await p.query('SELECT i, t, n, ts, ns FROM shapes WHERE t = ANY($1) ORDER BY i', [awkward]);
        p.defer('COMMIT');
        await p.flush();
        expect(p.roundTrips).toBe(2);
        // NUL cannot be in PostgreSQL text (nor in a query message): refused before sending, not a lost connection.
        expect(() => p.statement('SELECT $1::text', ['a\0b'])).toThrow(/NUL/);
        expect(() => p.statement('SELECT $1::text[]', [['ok', 'a\0b']])).toThrow(/NUL/);
        // (A plain client: bigint comes back as text.)
        const rows = back.rows.map((r) => ({ ...r, n: Number(r.n), ns: (r.ns as Array<string | null>).map((x) => (x === null ? null : Number(x))) }));
        expect(rows).toEqual(awkward.map((t, i) => ({ i, t, n: 1_795_297_237_862 * (i - 6), ts: [t, null, ...awkward], ns: [i, null, 2 ** 53 - 1] })));
      } finally {
        await client.end();
      }
    });

    it('a write that fails at COMMIT rolls the whole transaction back, and the connection goes on (its prepared statements are read back)', async () => {
      // One connection, so the failed transaction's connection is the one used next.
      const s = await openPostgresStore({ url, durability: 'full', poolSize: 1 });
      opened.push(s);
      const h = new Harness(s, {}, runIds);
      const runId = await h.startRun(chainAB);
      const before = await s.getEvents(runId);
      const log = { run_id: runId, step_id: 'a', attempt: 1, stdout: 'out', stderr: '', truncated: false, at: 1 };
      // The log and events inserts are queued and sent with COMMIT, where the second breaks the
      // (run, seq) key: everything of that transaction is undone. That round trip prepared the log
      // insert (new to this connection) before the failure, which the store must not forget.
      const err = await expectRejects(
        s.transaction(async (tx) => {
          await tx.cancelSteps(runId, ['pending']);
          await tx.insertLog(log);
          await tx.insertEvents([{ run_id: runId, seq: 1, type: 'RUN_CREATED', step_id: null, at: 0, prev_hash: 'x', hash: 'y', data_json: '{}' }]);
        }),
      );
      expect(String((err as Error).message)).toMatch(/duplicate key|events_pkey/);
      expect(await s.getEvents(runId)).toEqual(before);
      expect((await h.step(runId, 'b')).status).toBe('pending');
      expect(await s.getLogs(runId)).toEqual([]);
      // The same statement on the same connection again.
      await s.transaction(async (tx) => tx.insertLog(log));
      expect((await s.getLogs(runId)).map((l) => l.stdout)).toEqual(['out']);
      // The same connection claims, completes and inserts events again.
      const [a] = await h.claim('w1');
      expect((await h.finish(a!, 'w1', ok())).refused).toEqual([]);
      expect((await h.step(runId, 'a')).status).toBe('completed');
    });

    it('a migration by another process that changes a table under prepared statements: the store goes on (on fresh connections)', async () => {
      const s = await openPostgresStore({ url, durability: 'full', poolSize: 1 });
      opened.push(s);
      const h = new Harness(s, {}, runIds);
      const runId = await h.startRun(chainAB);
      // Prepares `SELECT * FROM step_executions …` and the registry reads on the one connection.
      expect((await s.transaction((tx) => tx.getSteps(runId))).map((st) => st.step_id)).toEqual(['a', 'b']);
      expect((await s.transaction((tx) => tx.agentVersions('noop'))).length).toBe(1);
      // A newer Swarm's migration, as a rolling upgrade runs it while this process works.
      await server.query(url, 'ALTER TABLE step_executions ADD COLUMN added_later INTEGER');
      await server.query(url, 'ALTER TABLE agents ADD COLUMN added_later INTEGER');
      // A read outside transactions first (its statement was prepared by the driver when the run started).
      expect((await s.listAgents('noop')).length).toBe(1);
      expect((await s.transaction((tx) => tx.getSteps(runId))).map((st) => st.step_id)).toEqual(['a', 'b']);
      expect((await s.transaction((tx) => tx.agentVersions('noop'))).length).toBe(1);
      expect((await s.getSteps(runId)).length).toBe(2);
      const [a] = await h.claim('w1');
      expect((await h.finish(a!, 'w1', ok())).refused).toEqual([]);
    });

    it('a connection lost at COMMIT is reported as transient (08007) and not run again; committing again completes the step once', async () => {
      const s = await open();
      const h = new Harness(s, {}, runIds);
      const runId = await h.startRun(chainAB);
      const [a] = await h.claim('w1');
      let calls = 0;
      const err = await expectRejects(
        s.transaction(async (tx) => {
          calls++;
          const result = await h.ledger.commit(tx, { completions: [completion(a!, 'w1', ok())] });
          await dropConnections();
          return result;
        }),
      );
      expect(calls).toBe(1);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).code).toBe('08007');
      // The worker keeps the completion and commits it again; the fencing token keeps it to one.
      expect((await h.finish(a!, 'w1', ok())).refused).toEqual([]);
      expect((await h.finish(a!, 'w1', ok())).refused).toHaveLength(1);
      expect((await h.eventTypes(runId)).filter((t) => t === 'STEP_COMPLETED:a')).toHaveLength(1);
    });

  });
  describe('plans', () => {
    type PlanNode = { 'Node Type': string; 'Relation Name'?: string; 'Index Name'?: string; 'Index Cond'?: string; 'Recheck Cond'?: string; 'Actual Rows'?: number; Plans?: PlanNode[] };
    const nodesOf = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodesOf)];

    /**
     * The statement texts the store's pipelined transactions prepare while `body` runs, and what each
     * of those transactions queued before its first EXECUTE (BEGIN and the planner settings).
     */
    async function statementsDuring(body: () => Promise<void>): Promise<{ texts: string[]; preludes: string[][] }> {
      const statement = vi.spyOn(Pipeline.prototype, 'statement');
      const defer = vi.spyOn(Pipeline.prototype, 'defer');
      try {
        await body();
        const byPipeline = new Map<unknown, string[]>();
        defer.mock.calls.forEach(([sql], i) => {
          const ctx = defer.mock.contexts[i];
          byPipeline.set(ctx, [...(byPipeline.get(ctx) ?? []), sql]);
        });
        const preludes = [...byPipeline.values()].filter((l) => l.some((sql) => sql.startsWith('EXECUTE'))).map((l) => l.slice(0, l.findIndex((sql) => sql.startsWith('EXECUTE'))));
        return { texts: [...new Set(statement.mock.calls.map(([text]) => text))], preludes };
      } finally {
        statement.mockRestore();
        defer.mockRestore();
      }
    }

    /**
     * The generic plan of `text` (the one a prepared statement keeps) in a transaction begun as the
     * store's are, built now on a connection of its own, so for the tables as they are; with `values`
     * it is also executed (EXPLAIN ANALYZE) and rolled back.
     */
    async function planOf(text: string, values?: readonly unknown[]): Promise<PlanNode> {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query('SET standard_conforming_strings TO on');
        const p = new Pipeline(client, new Set());
        p.begin('0');
        const params = Math.max(0, ...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
        let plan: unknown;
        p.defer(`EXPLAIN (FORMAT JSON${values ? ', ANALYZE' : ''}) ${p.statement(text, values ?? Array(params).fill(null))}`, (r) => {
          plan = r.rows[0]?.['QUERY PLAN'];
        });
        await p.flush();
        await client.query('ROLLBACK');
        const parsed = (typeof plan === 'string' ? JSON.parse(plan) : plan) as Array<{ Plan: PlanNode }>;
        return parsed[0]!.Plan;
      } finally {
        await client.end();
      }
    }

    /** How each plan node reads the run and step tables: `table via index`, or `table via Seq Scan`. */
    function tableAccess(plan: PlanNode): string[] {
      return nodesOf(plan).flatMap((n) => {
        const table = n['Relation Name'];
        if ((table !== 'workflow_runs' && table !== 'step_executions') || n['Node Type'] === 'ModifyTable') return [];
        // A keyed lookup: an index and a condition on it (a whole index read into a hash is not one).
        const lookup = n['Node Type'] === 'Bitmap Heap Scan' ? nodesOf(n).find((c) => c['Index Name'] && c['Index Cond']) : n['Index Cond'] ? n : undefined;
        return [`${table} via ${lookup?.['Index Name'] ?? n['Node Type']}`];
      });
    }

    it('the statements of a commit plan to keyed index access on small tables, where a kept plan is chosen (no sequential scan, runs by their key)', async () => {
      const s = await open();
      const h = new Harness(s, {}, runIds);
      const { texts, preludes } = await statementsDuring(async () => {
        const [r1, r2] = [await h.startRun(chainAB), await h.startRun(diamond)];
        await h.startRun(wide(4, 2));
        for (let round = 0; round < 4; round++) {
          const claimed = await h.claim('w1', 10);
          if (claimed.length === 0) break;
          await h.commit({ completions: claimed.map((c, i) => completion(c, 'w1', round === 0 && i === 0 ? fail('once') : ok())), claim: { worker_id: 'w1', max: 3, lease_ms: 60_000 } });
        }
        await h.claim('w2', 5, 60_000, [r1, r2]);
        await s.transaction((tx) => h.ledger.cancelRun(tx, r2, 'enough'));
        const session = { id: 'sess', run_id: r1, step_id: 'a', agent: 'triage', current_agent: 'triage', trace_id: r1, status: 'running' as const, turns: 1, input_tokens: 1, output_tokens: 1, cost_usd: 0 };
        await s.saveAgentCheckpoint({ session, envelope: '{}', version: 1, attempt: 1, messages: [{ seq: 0, role: 'user', agent: null, content: 'hi', tool_calls: null, tool_call_id: null, name: null }] });
      });
      expect(texts.length).toBeGreaterThan(8);
      expect(texts.some((t) => t.startsWith('INSERT INTO agent_sessions'))).toBe(true);
      // Every transaction that ran a prepared statement set the planner up first.
      expect(preludes.length).toBeGreaterThan(10);
      for (const prelude of preludes) expect(prelude.some((sql) => sql.startsWith(PLANNER_SETTINGS))).toBe(true);
      expect(PLANNER_SETTINGS).toContain("set_config('enable_seqscan', 'off', true)");
      expect(PLANNER_SETTINGS).toContain("set_config('plan_cache_mode', 'force_generic_plan', true)");
      expect(texts.some((t) => t.startsWith('WITH expired'))).toBe(true);
      const wrong: string[] = [];
      for (const text of texts) {
        for (const access of tableAccess(await planOf(text))) {
          if (!/^(workflow_runs via (workflow_runs_pkey|idx_runs_parent)|step_executions via (step_executions_pkey|idx_steps_\w+))$/.test(access)) wrong.push(`${access}: ${text.replace(/\s+/g, ' ').slice(0, 120)}`);
        }
      }
      expect(wrong).toEqual([]);
    });

    it('a claim reads about as many ready steps as it takes, however many share the oldest available_at', async () => {
      const s = await open();
      const h = new Harness(s, {}, runIds);
      const { texts } = await statementsDuring(async () => {
        await h.startRun(chainAB);
        expect(await h.claim('w1', 1)).toHaveLength(1);
      });
      const claimText = texts.find((t) => t.startsWith('WITH expired'));
      expect(claimText).toBeDefined();
      // 3,000 runs, each with one step ready since the same millisecond (a burst of started runs).
      const run = await h.run(runIds[0]!);
      await server.query(
        url,
        `INSERT INTO workflow_runs (id, workflow_id, workflow_name, workflow_version, status, trigger_type, plan_id, steps_total, steps_remaining, max_parallel, event_hash, created_at, updated_at, trigger_data)
         SELECT 'burst-' || lpad(g::text, 4, '0'), workflow_id, workflow_name, workflow_version, 'queued', 'manual', plan_id, 1, 1, 10, '', 0, 0, '{}' FROM workflow_runs, generate_series(1, 3000) g WHERE id = $1`,
        [run.id],
      );
      await server.query(
        url,
        `INSERT INTO step_executions (id, run_id, step_id, step_index, agent_id, agent_name, agent_version, status, pending_deps, available_at, queued_at)
         SELECT 'burst-' || lpad(g::text, 4, '0') || '/a', 'burst-' || lpad(g::text, 4, '0'), 'a', 0, agent_id, agent_name, agent_version, 'ready', 0, 1, 1
         FROM step_executions, generate_series(1, 3000) g WHERE run_id = $1 AND step_id = 'a'`,
        [run.id],
      );
      const plan = await planOf(claimText!, [5]);
      const readySteps = nodesOf(plan).filter((n) => n['Index Name']?.startsWith('idx_steps_ready'));
      expect(readySteps).toHaveLength(1);
      // The scan stops once the claim has its 5 (a join filter or a sort would read all 3,000).
      expect(readySteps[0]!['Actual Rows']).toBeLessThanOrEqual(6);
      // And the claim itself takes them, oldest first, in run id order.
      const claimed = await h.claim('w2', 5);
      expect(claimed.map((c) => c.run_id)).toEqual(['burst-0001', 'burst-0002', 'burst-0003', 'burst-0004', 'burst-0005']);
    });
  });
});
