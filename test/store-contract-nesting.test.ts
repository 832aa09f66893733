/**
 * The store contract of map steps and sub-workflow steps (migration 11), on SQLite and PostgreSQL:
 * driven through the Ledger inside `store.transaction`, as workers drive it.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../src/store/store.js';
import type { ClaimedStep, StepResult } from '../src/store/types.js';
import { Harness, makePostgresBackend, makeSqliteBackend, ok, fail, useContractStore, type MakeStore } from './helpers/store-fixtures.js';
import { stopPgTestServer } from './helpers/pg.js';

const MAP = (extra = ''): string => `name: mapper
version: 1.0.0
steps:
  - id: m
    agent: noop@1.0.0
    map: \${trigger.items}
${extra}  - id: after
    agent: noop@1.0.0
    inputs: { all: "\${steps.m.outputs}" }
`;

const CHILD = `name: child
version: 1.0.0
steps:
  - id: c1
    agent: noop@1.0.0
  - id: c2
    agent: noop@1.0.0
    depends_on: [c1]
`;

const PARENT = `name: parent
version: 1.0.0
steps:
  - id: sub
    workflow: child
    inputs: { x: 1 }
  - id: after
    agent: noop@1.0.0
    depends_on: [sub]
`;

const mapped = (items: unknown[]): StepResult => ({ kind: 'map', items });
const child = (inputs: Record<string, unknown> = { x: 1 }): StepResult => ({ kind: 'child', inputs });

function nestingContract(name: string, makeStore: MakeStore): void {
  describe(`store contract, map and sub-workflow steps: ${name}`, () => {
    const t = useContractStore(makeStore);
    let store: Store;
    let h: Harness;
    beforeEach(() => ({ store, h } = t));

    /** Claim everything claimable now (one worker, up to `max`). */
    const claimAll = (max = 100): Promise<ClaimedStep[]> => h.claim('w1', max);

    it('a map step parks with one step row per element; the last element completes it with the outputs in element order', async () => {
      const runId = await h.startRun(MAP(), { items: ['a', 'b', 'c'] });
      const [m] = await claimAll();
      expect(m?.step_id).toBe('m');
      expect((await h.finish(m!, 'w1', mapped(['a', 'b', 'c']))).refused).toEqual([]);
      const parked = await h.step(runId, 'm');
      expect(parked).toMatchObject({ status: 'waiting', pending_deps: 3, lease_owner: null, error: 'mapping 3 elements' });
      const rows = (await store.getSteps(runId)).map((s) => [s.step_id, s.status, s.map_index ?? null]);
      expect(rows).toEqual([['m', 'waiting', null], ['m[0]', 'ready', 0], ['m[1]', 'ready', 1], ['m[2]', 'ready', 2], ['after', 'pending', null]]);
      expect(await store.getStepItem(runId, 'm[1]')).toBe('b');
      expect(await store.getStepItem(runId, 'm')).toBeUndefined();
      expect((await h.run(runId)).steps_remaining).toBe(2);

      const els = await claimAll();
      expect(els.map((e) => e.step_id).sort()).toEqual(['m[0]', 'm[1]', 'm[2]']);
      const byId = new Map(els.map((e) => [e.step_id, e]));
      // Out of order: the list is still in element order.
      await h.finish(byId.get('m[2]')!, 'w1', ok({ v: 2 }));
      await h.finish(byId.get('m[0]')!, 'w1', ok({ v: 0 }));
      expect((await h.step(runId, 'm')).pending_deps).toBe(1);
      const last = await h.finish(byId.get('m[1]')!, 'w1', ok({ v: 1 }));
      expect(last.refused).toEqual([]);
      expect(await h.step(runId, 'm')).toMatchObject({ status: 'completed', outputs: [{ v: 0 }, { v: 1 }, { v: 2 }] });
      expect((await h.step(runId, 'after')).status).toBe('ready');
      const [after] = await claimAll();
      await h.finish(after!, 'w1', ok());
      expect((await h.run(runId)).status).toBe('completed');
      expect((await h.run(runId)).steps_remaining).toBe(0);
    });

    it('an empty list completes the map step with [] in the same commit', async () => {
      const runId = await h.startRun(MAP(), { items: [] });
      const [m] = await claimAll();
      await h.finish(m!, 'w1', mapped([]));
      expect(await h.step(runId, 'm')).toMatchObject({ status: 'completed', outputs: [] });
      expect((await h.step(runId, 'after')).status).toBe('ready');
      expect((await store.getSteps(runId)).length).toBe(2);
    });

    it('max_concurrency: only that many elements are ready; each finished element readies the next', async () => {
      const runId = await h.startRun(MAP('    max_concurrency: 2\n'), { items: [1, 2, 3, 4, 5] });
      const [m] = await claimAll();
      await h.finish(m!, 'w1', mapped([1, 2, 3, 4, 5]));
      const status = async (): Promise<string[]> => (await store.getSteps(runId)).filter((s) => s.map_index !== undefined).map((s) => s.status);
      expect(await status()).toEqual(['ready', 'ready', 'pending', 'pending', 'pending']);
      const els = await claimAll();
      expect(els.map((e) => e.step_id).sort()).toEqual(['m[0]', 'm[1]']);
      await h.finish(els.find((e) => e.step_id === 'm[1]')!, 'w1', ok());
      expect(await status()).toEqual(['running', 'completed', 'pending', 'ready', 'pending']);
    });

    it('a stale completion of a map step adds no elements twice', async () => {
      const runId = await h.startRun(MAP(), { items: [1, 2] });
      const [m] = await claimAll();
      await h.finish(m!, 'w1', mapped([1, 2]));
      const again = await h.finish(m!, 'w1', mapped([1, 2]));
      expect(again.refused).toHaveLength(1);
      expect((await store.getSteps(runId)).filter((s) => s.map_index !== undefined)).toHaveLength(2);
    });

    it('an element failing for good fails the map step and the run; elements not started are cancelled', async () => {
      const runId = await h.startRun(MAP('    max_concurrency: 1\n'), { items: [1, 2, 3] });
      const [m] = await claimAll();
      await h.finish(m!, 'w1', mapped([1, 2, 3]));
      const [e0] = await claimAll();
      await h.finish(e0!, 'w1', fail('bad element', false));
      const steps = await h.steps(runId);
      expect([...steps.values()].map((s) => [s.step_id, s.status])).toEqual([['m', 'failed'], ['m[0]', 'failed'], ['m[1]', 'cancelled'], ['m[2]', 'cancelled'], ['after', 'cancelled']]);
      expect(steps.get('m')?.error).toBe('element 0 failed: bad element');
      expect(await h.run(runId)).toMatchObject({ status: 'failed', error_step: 'm', steps_remaining: 0 });
    });

    it('10,000 elements are added in one commit and read back in order', async () => {
      const items = Array.from({ length: 10_000 }, (_, i) => ({ n: i }));
      const runId = await h.startRun(MAP('    max_concurrency: 50\n'), { items });
      const [m] = await claimAll();
      await h.finish(m!, 'w1', mapped(items));
      const steps = await store.getSteps(runId);
      expect(steps).toHaveLength(10_002);
      expect(steps.filter((s) => s.status === 'ready').map((s) => s.map_index)).toEqual(Array.from({ length: 50 }, (_, i) => i));
      expect(steps[10_000]).toMatchObject({ step_id: 'm[9999]', map_index: 9999 });
      expect(await store.getStepItem(runId, 'm[9999]')).toEqual({ n: 9999 });
    }, 60_000);

    it('a retried run expands its map again: the earlier elements are replaced', async () => {
      const runId = await h.startRun(MAP(), { items: [1, 2] });
      const [m] = await claimAll();
      await h.finish(m!, 'w1', mapped([1, 2]));
      const els = await claimAll();
      await h.finish(els[0]!, 'w1', fail('no', false));
      expect((await h.run(runId)).status).toBe('failed');
      await store.transaction((tx) => h.ledger.retryRun(tx, runId));
      const [m2] = await claimAll();
      expect(m2?.step_id).toBe('m');
      await h.finish(m2!, 'w1', mapped([7]));
      expect((await store.getSteps(runId)).filter((s) => s.map_index !== undefined).map((s) => [s.step_id, s.status])).toEqual([['m[0]', 'ready']]);
      const [e] = await claimAll();
      await h.finish(e!, 'w1', ok({ again: true }));
      expect((await h.step(runId, 'm')).outputs).toEqual([{ again: true }]);
    });

    it('a sub-workflow step parks and creates one linked child run; the child finishing completes the step in its own commit', async () => {
      await h.registerWorkflow(CHILD);
      const parentId = await h.startRun(PARENT);
      const [sub] = await claimAll();
      const r = await h.finish(sub!, 'w1', child({ x: 1 }));
      expect(r.refused).toEqual([]);
      expect(r.created).toHaveLength(1);
      const childId = r.created[0]!;
      // A late duplicate of the same attempt (a worker that lost its lease) is refused: still one child.
      expect((await h.finish(sub!, 'w1', child({ x: 1 }))).refused).toHaveLength(1);
      const children = await store.listRuns({ parent: parentId });
      expect(children.map((c) => [c.id, c.workflow_name, c.parent_run_id, c.parent_step_id, c.idempotency_key, c.trigger_type])).toEqual([
        [childId, 'child', parentId, 'sub', `sub:${parentId}:sub`, 'workflow'],
      ]);
      expect(children[0]?.trigger_data).toEqual({ x: 1 });
      expect(await h.step(parentId, 'sub')).toMatchObject({ status: 'waiting', lease_owner: null, error: `waiting for child run ${childId}` });
      expect((await store.listRuns({ parent: childId })).length).toBe(0);

      const [c1] = await claimAll();
      expect(c1).toMatchObject({ run_id: childId, step_id: 'c1' });
      await h.finish(c1!, 'w1', ok({ one: 1 }));
      const [c2] = await claimAll();
      const done = await h.finish(c2!, 'w1', ok({ two: 2 }));
      expect(done.finished).toEqual([{ run_id: childId, status: 'completed' }]);
      expect(await h.step(parentId, 'sub')).toMatchObject({ status: 'completed', outputs: { c2: { two: 2 } }, error: null });
      expect((await h.step(parentId, 'after')).status).toBe('ready');
      const [after] = await claimAll();
      await h.finish(after!, 'w1', ok());
      expect((await h.run(parentId)).status).toBe('completed');
    });

    it("a failed child fails the parent's step and run in the child's commit", async () => {
      await h.registerWorkflow(CHILD);
      const parentId = await h.startRun(PARENT);
      const [sub] = await claimAll();
      const childId = (await h.finish(sub!, 'w1', child())).created[0]!;
      const [c1] = await claimAll();
      const r = await h.finish(c1!, 'w1', fail('child step broke', false));
      expect(r.finished).toEqual(expect.arrayContaining([{ run_id: childId, status: 'failed' }, { run_id: parentId, status: 'failed' }]));
      expect(await h.run(parentId)).toMatchObject({ status: 'failed', error_step: 'sub', error: `child run ${childId} failed: child step broke` });
    });

    it('cancelling the parent cancels its child (and the child its own children)', async () => {
      await h.registerWorkflow(CHILD);
      await h.registerWorkflow(PARENT.replace('name: parent', 'name: middle'));
      const top = await h.startRun(PARENT.replace('name: parent', 'name: top').replace('workflow: child', 'workflow: middle'));
      const [s1] = await claimAll();
      const mid = (await h.finish(s1!, 'w1', child())).created[0]!;
      const [s2] = await claimAll();
      expect(s2?.run_id).toBe(mid);
      const leaf = (await h.finish(s2!, 'w1', child())).created[0]!;
      await store.transaction((tx) => h.ledger.cancelRun(tx, top, 'stop'));
      expect((await h.run(top)).status).toBe('cancelled');
      expect(await h.run(mid)).toMatchObject({ status: 'cancelled', error: `parent run ${top} cancelled` });
      expect(await h.run(leaf)).toMatchObject({ status: 'cancelled', error: `parent run ${mid} cancelled` });
      expect(await claimAll()).toEqual([]);
    });

    it('a child workflow that is not registered fails the step, not retried', async () => {
      const parentId = await h.startRun(PARENT);
      const [sub] = await claimAll();
      const r = await h.finish(sub!, 'w1', child());
      expect(r.created).toEqual([]);
      expect(await h.run(parentId)).toMatchObject({ status: 'failed', error: "sub-workflow 'child' is not registered" });
    });
  });
}

nestingContract('SQLite', makeSqliteBackend);
nestingContract('PostgreSQL', makePostgresBackend);

afterAll(async () => {
  await stopPgTestServer();
});
