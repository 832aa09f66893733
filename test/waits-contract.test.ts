/**
 * The store contract of durable sleeps, waits and signals (migration 10), on SQLite and PostgreSQL:
 * park, wake by index, deliver in the recording transaction, buffer, timeout, cancel, signals kept
 * in order, and one wake when two workers race. Driven through the Ledger as the engine drives it.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../src/store/store.js';
import type { ClaimedStep, StepResult, WaitRequest } from '../src/store/types.js';
import { Harness, makePostgresBackend, makeSqliteBackend, sleep, useContractStore, type MakeStore } from './helpers/store-fixtures.js';
import { stopPgTestServer } from './helpers/pg.js';

const ONE_WAIT = `name: one-wait
version: 1.0.0
steps:
  - { id: w, kind: wait, event: order.paid }
  - { id: after, agent: noop, depends_on: w }
`;

const TWO_WAITS = `name: two-waits
version: 1.0.0
steps:
  - { id: w1, kind: wait, event: order.paid }
  - { id: w2, kind: wait, event: order.paid }
`;

const parked = (wait: WaitRequest): StepResult => ({ kind: 'waiting', reason: 'parked', wait });
const req = (over: Partial<WaitRequest>): WaitRequest => ({ kind: 'event', name: 'order.paid', match: null, context_json: null, buffer: false, since: 0, wake_at: null, ...over });

function waitsContract(name: string, makeStore: MakeStore): void {
  describe(`waits contract: ${name}`, () => {
    const t = useContractStore(makeStore);
    let store: Store;
    let h: Harness;
    beforeEach(() => ({ store, h } = t));

    /** Start a run and park its first ready step with `wait`. */
    const park = async (def: string, wait: WaitRequest, input: unknown = {}): Promise<{ id: string; step: ClaimedStep }> => {
      const id = await h.startRun(def, input);
      const [step] = await h.claim('w1', 1, 60_000, [id]);
      if (!step) throw new Error('nothing claimed');
      await h.finish(step, 'w1', parked(wait));
      return { id, step };
    };

    /** Wait until the store's clock has passed `t` (parking takes a while on a durable store: wake times leave room for it). */
    const sleepUntil = async (t: number): Promise<void> => {
      while ((await store.now()) <= t) await sleep(50);
    };
    const wakeClaim = (worker_id: string, max = 5) => h.commit({ completions: [], claim: { worker_id, max, lease_ms: 60_000, wake_due: true } });

    const emit = (id: string, data: unknown): Promise<unknown> => store.transaction((tx) => h.ledger.emitEvent(tx, { id, name: 'order.paid', source: null, data }));

    it('park: the step waits with no lease; the wake time is found by nextDueAt and woken by a claim once it has come', async () => {
      const now = await store.now();
      const wake = now + 1500;
      const { id, step } = await park(ONE_WAIT, req({ kind: 'sleep', name: null, wake_at: wake }));
      expect(await h.step(id, 'w')).toMatchObject({ status: 'waiting', lease_owner: null, lease_until: null });
      expect((await h.run(id)).status).toBe('waiting');
      expect(await store.getStepWait(id, 'w')).toMatchObject({ status: 'waiting', kind: 'sleep', wake_at: wake });
      expect(await store.nextDueAt(now)).toBe(wake);
      // Not due yet: nothing wakes.
      expect((await wakeClaim('w2')).woken ?? 0).toBe(0);
      await sleepUntil(wake);
      const r = await wakeClaim('w2');
      expect(r.woken).toBe(1);
      // Claimed by this commit, or (a store that read its candidates with BEGIN) by the next.
      const claimed = r.claimed.length ? r.claimed : (await wakeClaim('w2')).claimed;
      expect(claimed.map((c) => c.step_id)).toEqual(['w']);
      expect(claimed[0]?.attempt).toBe(step.attempt + 1);
      expect(await store.getStepWait(id, 'w')).toMatchObject({ status: 'due', resolved_at: expect.any(Number) });
      expect(await h.eventTypes(id)).toEqual(expect.arrayContaining(['STEP_WAITING:w', 'WAIT_RESOLVED:w']));
      expect(await h.eventTypes(id)).not.toContain('APPROVAL_DECIDED');
    });

    it('an event is delivered in the transaction that records it, only where match holds, and only once', async () => {
      const ctx = JSON.stringify({ trigger: { order: 7 } });
      const { id } = await park(ONE_WAIT, req({ match: 'event.data.order == trigger.order', context_json: ctx }), { order: 7 });
      await emit('e-other', { order: 8 });
      expect((await h.step(id, 'w')).status).toBe('waiting');
      await emit('e-mine', { order: 7, total: 5 });
      expect((await h.step(id, 'w')).status).toBe('ready');
      expect((await h.run(id)).status).toBe('running');
      expect(await store.getStepWait(id, 'w')).toMatchObject({ status: 'delivered', event_id: 'e-mine', data_json: JSON.stringify({ order: 7, total: 5 }) });
      await emit('e-again', { order: 7 });
      expect(await store.getStepWait(id, 'w')).toMatchObject({ event_id: 'e-mine' });
    });

    it('buffer: an event recorded since the run was created is taken when the step parks; without buffer it is not', async () => {
      const since = await store.now();
      await emit('e-early', { n: 1 });
      const buffered = await park(ONE_WAIT, req({ buffer: true, since }));
      expect((await h.step(buffered.id, 'w')).status).toBe('ready');
      expect(await store.getStepWait(buffered.id, 'w')).toMatchObject({ status: 'delivered', event_id: 'e-early' });
      const plain = await park(ONE_WAIT, req({ buffer: false, since }));
      expect((await h.step(plain.id, 'w')).status).toBe('waiting');
      // An event older than the run is not buffered for it.
      const late = await park(ONE_WAIT, req({ buffer: true, since: (await store.now()) + 1 }));
      expect((await h.step(late.id, 'w')).status).toBe('waiting');
    });

    it('one event per run: of two waits of a run on the same event, one takes it; a buffered wait does not take it again', async () => {
      const id = await h.startRun(TWO_WAITS);
      const claimed = await h.claim('w1', 2, 60_000, [id]);
      await h.commit({ completions: claimed.map((c) => ({ run_id: c.run_id, step_id: c.step_id, attempt: c.attempt, worker_id: 'w1', retry_count: 0, duration_ms: 1, plan_id: c.plan_id, result: parked(req({ buffer: true })) })) });
      await emit('e1', { n: 1 });
      const statuses = [...(await h.steps(id)).values()].map((s) => s.status).sort();
      expect(statuses).toEqual(['ready', 'waiting']);
      await emit('e2', { n: 2 });
      const ids = [(await store.getStepWait(id, 'w1'))?.event_id, (await store.getStepWait(id, 'w2'))?.event_id].sort();
      expect(ids).toEqual(['e1', 'e2']);
    });

    it('signals: kept until a wait takes them, oldest first; delivered at once to a waiting step; a finished run refuses them', async () => {
      const SIG = `name: sig\nversion: 1.0.0\nsteps:\n  - { id: s, kind: wait, signal: go }\n`;
      const id = await h.startRun(SIG);
      const send = (data: unknown): Promise<{ seq: number; delivered_to: string | null }> => store.transaction((tx) => h.ledger.signal(tx, id, 'go', data));
      const first = await send({ n: 1 });
      const second = await send({ n: 2 });
      expect(first.delivered_to).toBeNull();
      expect(second.seq).toBeGreaterThan(first.seq);
      const [step] = await h.claim('w1', 1, 60_000, [id]);
      await h.finish(step as ClaimedStep, 'w1', parked(req({ kind: 'signal', name: 'go' })));
      expect((await h.step(id, 's')).status).toBe('ready');
      expect(await store.getStepWait(id, 's')).toMatchObject({ status: 'delivered', event_id: `signal:${first.seq}`, data_json: '{"n":1}' });
      expect((await store.listRunSignals(id)).map((s) => s.consumed_by)).toEqual(['s', null]);
      const [again] = await h.claim('w1', 1, 60_000, [id]);
      await h.finish(again as ClaimedStep, 'w1', { kind: 'completed', outputs: { n: 1 } });
      expect((await h.run(id)).status).toBe('completed');
      await expect(send({})).rejects.toMatchObject({ code: 'RUN_FINISHED' });
      await expect(store.transaction((tx) => h.ledger.signal(tx, 'missing', 'go', {}))).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
      expect(await store.listRunSignals(id)).toHaveLength(2);
    });

    it('timeout: a wait whose timeout has come is woken as due; cancel leaves nothing to wake or deliver', async () => {
      const now = await store.now();
      const timed = await park(ONE_WAIT, req({ wake_at: now + 1500 }));
      const cancelled = await park(ONE_WAIT, req({ wake_at: now + 1500 }));
      await store.transaction((tx) => h.ledger.cancelRun(tx, cancelled.id, 'test'));
      expect((await h.step(cancelled.id, 'w')).status).toBe('cancelled');
      // Closed with the cancel: nothing is left to wake.
      expect(await store.getStepWait(cancelled.id, 'w')).toMatchObject({ status: 'cancelled' });
      await sleepUntil(now + 1500);
      expect((await wakeClaim('w2', 0)).woken ?? 0).toBe(0); // a claim without room claims and wakes nothing
      const r2 = await wakeClaim('w2', 1);
      expect(r2.woken).toBe(1);
      expect((await h.eventTypes(cancelled.id)).filter((t) => t.startsWith('WAIT_RESOLVED'))).toEqual([]);
      expect(await store.getStepWait(timed.id, 'w')).toMatchObject({ status: 'due' });
      expect(await store.getStepWait(cancelled.id, 'w')).toMatchObject({ status: 'cancelled' });
      await emit('e-late', {});
      expect((await h.step(cancelled.id, 'w')).status).toBe('cancelled');
      // No wake time is left (only the lease of the step just claimed, a minute away).
      expect((await store.nextDueAt(await store.now())) ?? Infinity).toBeGreaterThan(now + 30_000);
    });

    it('a step cancelled while it waits says so: its waiting text becomes "cancelled while …"; a pending step keeps no text', async () => {
      const id = await h.startRun(ONE_WAIT, {});
      const [step] = await h.claim('w1', 1, 60_000, [id]);
      if (!step) throw new Error('nothing claimed');
      await h.finish(step, 'w1', { kind: 'waiting', reason: 'waiting for event order.paid', wait: req({}) });
      expect(await h.step(id, 'w')).toMatchObject({ status: 'waiting', error: 'waiting for event order.paid' });
      expect(await store.transaction((tx) => h.ledger.cancelRun(tx, id, 'cancelled by user'))).toEqual(['w', 'after']);
      expect(await h.step(id, 'w')).toMatchObject({ status: 'cancelled', error: 'cancelled while waiting for event order.paid' });
      expect(await h.step(id, 'after')).toMatchObject({ status: 'cancelled', error: null });
      expect(await h.run(id)).toMatchObject({ status: 'cancelled', error: 'cancelled by user' });
    });

    it('two workers racing to wake the same due step wake it once', async () => {
      const other = await t.openAnother();
      const h2 = new Harness(other, {}, t.runIds);
      const now = await store.now();
      const { id } = await park(ONE_WAIT, req({ kind: 'sleep', name: null, wake_at: now + 1500 }));
      await sleepUntil(now + 1500);
      const claim = { completions: [], claim: { worker_id: 'x', max: 5, lease_ms: 60_000, wake_due: true } };
      const [a, b] = await Promise.all([h.commit(claim), h2.commit({ ...claim, claim: { ...claim.claim, worker_id: 'y' } })]);
      expect((a.woken ?? 0) + (b.woken ?? 0)).toBe(1);
      expect(a.claimed.length + b.claimed.length).toBeLessThanOrEqual(1);
      expect((await h.eventTypes(id)).filter((t) => t === 'WAIT_RESOLVED:w')).toHaveLength(1);
    });
  });
}

waitsContract('sqlite', makeSqliteBackend);
waitsContract('postgres', makePostgresBackend);

afterAll(() => stopPgTestServer());
