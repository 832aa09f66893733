/**
 * The triggers table and leases, one suite over both stores (as test/store-contract.test.ts): the
 * trigger row is written with the workflow's registration in one transaction, follows the newest
 * version and the enabled flag, keeps a schedule's state across re-registration, refuses a webhook
 * path two workflows claim; leases are held by one holder until they expire.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../src/core/errors.js';
import type { Store } from '../src/store/store.js';
import { makePostgresBackend, makeSqliteBackend, sleep, workflowRecord, type MakeStore, type StoreBackend } from './helpers/store-fixtures.js';
import { stopPgTestServer } from './helpers/pg.js';
import { SCHEMA_VERSION } from '../src/store/sqlite/migrations.js';

const STEPS = 'steps:\n  - {id: a, agent: noop@1.0.0}\n';
const wf = (name: string, version: string, trigger: string): string => `name: ${name}\nversion: ${version}\n${trigger ? `trigger: ${trigger}\n` : ''}${STEPS}`;

function triggersContract(name: string, makeStore: MakeStore): void {
  describe(`triggers table: ${name}`, () => {
    let backend: StoreBackend;
    let store: Store;
    const others: Store[] = [];

    beforeEach(async () => {
      backend = await makeStore();
      store = await backend.open();
    });
    afterEach(async () => {
      for (const s of others.splice(0)) await s.close();
      await store.close();
      await backend.cleanup();
    });

    it('registering writes one row per non-manual trigger, config as written (secret references, never values)', async () => {
      const before = Date.now();
      await store.putWorkflow(workflowRecord(wf('nightly', '1.0.0', '{type: schedule, cron: "0 2 * * *", catchup: {policy: all, window: 2h}}')), false);
      await store.putWorkflow(workflowRecord(wf('orders', '1.0.0', '{type: webhook, path: shop/orders, secret: "${secrets.ORDERS_HOOK}", scheme: github}')), false);
      await store.putWorkflow(workflowRecord(wf('on-fail', '1.0.0', '{type: event, on: run.failed, source: billing}')), false);
      await store.putWorkflow(workflowRecord(wf('by-hand', '1.0.0', '')), false);
      const all = await store.listTriggers();
      expect(all.map((t) => [t.id, t.type])).toEqual([
        ['nightly', 'schedule'],
        ['on-fail', 'event'],
        ['orders', 'webhook'],
      ]);
      const [nightly] = await store.listTriggers({ type: 'schedule' });
      expect(nightly).toMatchObject({ workflow_name: 'nightly', workflow_version: '1.0.0', enabled: true, cron_expression: '0 2 * * *', timezone: 'UTC', paused: false, last_fired_at: null, webhook_path: null });
      expect(nightly!.config).toEqual({ type: 'schedule', cron: '0 2 * * *', catchup: { policy: 'all', window: '2h' } });
      // The next 02:00 UTC after registration.
      expect(nightly!.next_run_at).toBeGreaterThan(before);
      expect(new Date(nightly!.next_run_at!).toISOString()).toMatch(/T02:00:00\.000Z$/);
      const hook = await store.getWebhookTrigger('shop/orders');
      expect(hook).toMatchObject({ id: 'orders', webhook_scheme: 'github', cron_expression: null });
      expect(hook!.config.secret).toBe('${secrets.ORDERS_HOOK}');
      expect(await store.getWebhookTrigger('shop')).toBeUndefined();
      expect((await store.listTriggers({ workflow: 'on-fail' }))[0]).toMatchObject({ event_type: 'run.failed', event_source: 'billing' });
    });

    it('the newest version applies; a manual trigger deletes the row', async () => {
      await store.putWorkflow(workflowRecord(wf('w', '2.0.0', '{type: schedule, cron: "*/5 * * * *", timezone: Europe/Paris}')), false);
      // An older version registered later does not replace the newest one's trigger.
      await store.putWorkflow(workflowRecord(wf('w', '1.0.0', '{type: webhook, path: w, auth: none}')), false);
      expect(await store.listTriggers({ workflow: 'w' })).toMatchObject([{ type: 'schedule', workflow_version: '2.0.0', timezone: 'Europe/Paris' }]);
      expect(await store.getWebhookTrigger('w')).toBeUndefined();
      await store.putWorkflow(workflowRecord(wf('w', '3.0.0', '{type: webhook, path: w, auth: none}')), false);
      expect(await store.listTriggers({ workflow: 'w' })).toMatchObject([{ type: 'webhook', workflow_version: '3.0.0', webhook_scheme: 'none', cron_expression: null, next_run_at: null }]);
      await store.putWorkflow(workflowRecord(wf('w', '4.0.0', '{type: manual}')), false);
      expect(await store.listTriggers()).toEqual([]);
    });

    it('two workflows claiming one webhook path: refused naming both, and nothing of the second is written', async () => {
      await store.putWorkflow(workflowRecord(wf('first', '1.0.0', '{type: webhook, path: orders, auth: none}')), false);
      const e = await store.putWorkflow(workflowRecord(wf('second', '1.0.0', '{type: webhook, path: orders, auth: none}')), false).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(UserError);
      expect((e as UserError).code).toBe('WEBHOOK_PATH_TAKEN');
      expect((e as UserError).message).toMatch(/second.*'orders'.*first/);
      expect(await store.listWorkflows('second')).toEqual([]);
      expect((await store.getWebhookTrigger('orders'))?.workflow_name).toBe('first');
      // The same workflow keeps its own path through a new version.
      await store.putWorkflow(workflowRecord(wf('first', '1.1.0', '{type: webhook, path: orders, auth: none}')), false);
      expect((await store.getWebhookTrigger('orders'))?.workflow_version).toBe('1.1.0');
    });

    it('enabled follows the workflow; paused and the last fired tick survive re-registration', async () => {
      await store.putWorkflow(workflowRecord(wf('s', '1.0.0', '{type: schedule, cron: "* * * * *"}')), false);
      await store.putWorkflow(workflowRecord(wf('h', '1.0.0', '{type: webhook, path: h, auth: none}')), false);
      expect(await store.setWorkflowEnabled('s', false)).toBe(1);
      expect((await store.listTriggers({ workflow: 's' }))[0]?.enabled).toBe(false);
      expect((await store.listTriggers({ enabledOnly: true })).map((t) => t.id)).toEqual(['h']);
      await store.setWorkflowEnabled('s', true);
      expect((await store.listTriggers({ enabledOnly: true })).map((t) => t.id)).toEqual(['h', 's']);

      expect(await store.setTriggerPaused('s', true)).toBe(true);
      expect(await store.setTriggerPaused('h', true)).toBe(false); // not a schedule
      expect(await store.setTriggerPaused('nope', true)).toBe(false);
      const tick = Date.UTC(2030, 0, 1, 12, 0);
      await store.updateScheduleState('s', { last_fired_at: tick, next_run_at: tick + 60_000 });
      // last_fired_at never moves back (a late write from a holder that lost its lease).
      await store.updateScheduleState('s', { last_fired_at: tick - 60_000, next_run_at: tick + 60_000 });
      await store.updateScheduleState('s', { next_run_at: tick + 120_000 });
      expect(await store.listTriggers({ workflow: 's' })).toMatchObject([{ last_fired_at: tick, next_run_at: tick + 120_000, paused: true }]);
      const created = (await store.listTriggers({ workflow: 's' }))[0]!.created_at;

      await store.putWorkflow(workflowRecord(wf('s', '1.0.0', '{type: schedule, cron: "*/2 * * * *"}')), true);
      const s = (await store.listTriggers({ workflow: 's' }))[0]!;
      expect(s).toMatchObject({ cron_expression: '*/2 * * * *', last_fired_at: tick, paused: true, created_at: created });
      // The next tick is after the last one fired, even when that is in the future.
      expect(s.next_run_at).toBe(tick + 120_000);
      // A type change starts afresh.
      await store.putWorkflow(workflowRecord(wf('s', '1.0.0', '{type: event, on: order.paid}')), true);
      expect(await store.listTriggers({ workflow: 's' })).toMatchObject([{ type: 'event', paused: false, last_fired_at: null }]);
    });

    it('a buffer_one tick is held in the row: set and cleared only from what the caller saw, kept by re-registration, dropped by a type change', async () => {
      const tick = Date.UTC(2030, 0, 1, 12, 0);
      await store.putWorkflow(workflowRecord(wf('b', '1.0.0', '{type: schedule, cron: "* * * * *", overlap: buffer_one}')), false);
      await store.putWorkflow(workflowRecord(wf('h', '1.0.0', '{type: webhook, path: h, auth: none}')), false);
      expect((await store.listTriggers({ workflow: 'b' }))[0]?.buffered_tick).toBeNull();
      expect(await store.swapScheduleBuffer('b', null, tick)).toBe(true);
      // Another scheduler (a holder that lost its lease) saw none: refused, the tick stays.
      expect(await store.swapScheduleBuffer('b', null, tick + 60_000)).toBe(false);
      expect(await store.swapScheduleBuffer('b', tick - 60_000, null)).toBe(false);
      expect(await store.swapScheduleBuffer('h', null, tick)).toBe(false); // not a schedule
      expect(await store.swapScheduleBuffer('nope', null, tick)).toBe(false);
      // Another connection (another process) sees it.
      const other = await backend.open();
      others.push(other);
      expect((await other.listTriggers({ workflow: 'b' }))[0]?.buffered_tick).toBe(tick);
      await store.putWorkflow(workflowRecord(wf('b', '1.1.0', '{type: schedule, cron: "*/2 * * * *", overlap: buffer_one}')), false);
      expect((await store.listTriggers({ workflow: 'b' }))[0]).toMatchObject({ workflow_version: '1.1.0', buffered_tick: tick });
      expect(await other.swapScheduleBuffer('b', tick, null)).toBe(true);
      expect((await store.listTriggers({ workflow: 'b' }))[0]?.buffered_tick).toBeNull();
      await store.swapScheduleBuffer('b', null, tick);
      await store.putWorkflow(workflowRecord(wf('b', '1.2.0', '{type: event, on: order.paid}')), false);
      await store.putWorkflow(workflowRecord(wf('b', '1.3.0', '{type: schedule, cron: "* * * * *", overlap: buffer_one}')), false);
      expect((await store.listTriggers({ workflow: 'b' }))[0]?.buffered_tick).toBeNull();
    });

    it('two versions of one workflow registered at once, from two connections: the trigger row is the newest version\'s', async () => {
      const other = await backend.open();
      others.push(other);
      // Each round is a fresh name; which put goes first alternates. Per version, both transactions
      // could read only their own version and the older one's row could be written last.
      for (let i = 0; i < 8; i++) {
        const v1 = workflowRecord(wf(`race${i}`, '1.0.0', `{type: webhook, path: race${i}/v1, auth: none}`));
        const v2 = workflowRecord(wf(`race${i}`, '2.0.0', `{type: webhook, path: race${i}/v2, auth: none}`));
        const [a, b] = i % 2 ? [store, other] : [other, store];
        await Promise.all([a.putWorkflow(v1, false), b.putWorkflow(v2, false)]);
        expect(await store.listTriggers({ workflow: `race${i}` })).toMatchObject([{ workflow_version: '2.0.0', webhook_path: `race${i}/v2` }]);
      }
    });

    it('a lease has one holder at a time, is renewed by it, taken over once expired, released', async () => {
      const other = await backend.open();
      others.push(other);
      const a = await store.acquireLease('scheduler', 'a', 300);
      expect(a).toMatchObject({ name: 'scheduler', holder: 'a', acquired: true });
      const b = await other.acquireLease('scheduler', 'b', 300);
      expect(b).toMatchObject({ holder: 'a', acquired: false, expires_at: a.expires_at });
      const renewed = await store.acquireLease('scheduler', 'a', 300);
      expect(renewed.acquired).toBe(true);
      expect(renewed.expires_at).toBeGreaterThanOrEqual(a.expires_at);
      await sleep(400);
      expect(await other.acquireLease('scheduler', 'b', 10_000)).toMatchObject({ holder: 'b', acquired: true });
      expect((await store.acquireLease('scheduler', 'a', 300)).acquired).toBe(false);
      expect(await store.releaseLease('scheduler', 'a')).toBe(false);
      expect(await other.releaseLease('scheduler', 'b')).toBe(true);
      expect(await store.getLease('scheduler')).toBeUndefined();
      expect((await store.acquireLease('scheduler', 'a', 300)).acquired).toBe(true);
    });

    it('holders racing for a free lease: exactly one gets it', async () => {
      const stores = [store];
      for (let i = 0; i < 3; i++) {
        const s = await backend.open();
        others.push(s);
        stores.push(s);
      }
      const results = await Promise.all(stores.flatMap((s, i) => [s.acquireLease('race', `h${i}`, 5000), s.acquireLease('race', `x${i}`, 5000)]));
      expect(results.filter((r) => r.acquired)).toHaveLength(1);
      const holder = results.find((r) => r.acquired)!.holder;
      expect(results.every((r) => r.holder === holder)).toBe(true);
    });
  });
}

afterAll(() => stopPgTestServer());

triggersContract('sqlite', makeSqliteBackend);
triggersContract('postgres', makePostgresBackend);

describe('migration 6 on an existing SQLite store', () => {
  it('fills in the trigger rows of workflows registered before it', async () => {
    const backend = await makeSqliteBackend();
    const store = await backend.open();
    await store.putWorkflow(workflowRecord(wf('old-cron', '1.0.0', '{type: schedule, cron: "0 9 * * 1-5", timezone: Europe/Paris}')), false);
    await store.putWorkflow(workflowRecord(wf('plain', '1.0.0', '')), false);
    const path = store.location;
    await store.close();
    // Back to schema 5: the seed's (empty) triggers table, no leases (and none of the later migrations).
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(path);
    db.exec(`DROP INDEX idx_runs_forks; ALTER TABLE workflow_runs DROP COLUMN fork_step_id; ALTER TABLE workflow_runs DROP COLUMN fork_turn; DROP TRIGGER registry_generation_agents_insert; DROP TRIGGER registry_generation_agents_update; DROP TRIGGER registry_generation_agents_delete; DROP TRIGGER registry_generation_workflows_insert; DROP TRIGGER registry_generation_workflows_update; DROP TRIGGER registry_generation_workflows_delete; DELETE FROM swarm_meta WHERE key = 'registry_generation'; DROP TABLE triggers; DROP TABLE leases; DROP TABLE step_waits; DROP TABLE run_signals; DROP TABLE emitted_events; DROP TABLE api_tokens; DROP TABLE memories; DROP VIEW sw4rm_dead_letters; DROP TABLE sw4rm_messages; DROP TABLE sw4rm_dedup; DROP TABLE sw4rm_agents; DROP TABLE IF EXISTS sw4rm_sched_docs; DROP TABLE sw4rm_agent_state; DROP TABLE executors; DROP TABLE consensus_tasks; DROP TABLE consensus_candidates; DROP TABLE consensus_results; DROP TABLE consensus_votes; DROP TABLE consensus_decisions; DROP TABLE consensus_costs; DROP TABLE knowledge_proposals; DROP TABLE knowledge_track_record; DROP TABLE knowledge_lookups; DROP TABLE knowledge_decisions; DROP TABLE signing_keys; DROP TABLE imported_bundles; ALTER TABLE workflow_runs DROP COLUMN shared_inputs; DROP INDEX idx_runs_updated; DROP INDEX idx_runs_parent; DROP INDEX idx_runs_completed; DROP INDEX idx_agent_sessions_uncompacted; ALTER TABLE agent_sessions DROP COLUMN compacted_at; ALTER TABLE workflow_runs DROP COLUMN parent_step_id; ALTER TABLE workflow_runs DROP COLUMN traceparent; ALTER TABLE workflow_runs DROP COLUMN tracestate; ALTER TABLE step_executions DROP COLUMN map_index; ALTER TABLE step_executions DROP COLUMN map_item; DROP TABLE run_concurrency; DROP TABLE circuit_breakers; DROP TABLE budget_scopes; DROP TABLE budget_reservations; DELETE FROM schema_migrations WHERE version >= 6;
      CREATE TABLE triggers (id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, type TEXT NOT NULL, webhook_path TEXT UNIQUE, webhook_secret TEXT, cron_expression TEXT,
        next_run_at INTEGER, event_source TEXT, event_type TEXT, enabled INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL);`);
    db.close();
    const again = await backend.open();
    try {
      expect(await again.schemaVersion()).toBe(SCHEMA_VERSION);
      expect(await again.listTriggers()).toMatchObject([{ id: 'old-cron', type: 'schedule', cron_expression: '0 9 * * 1-5', timezone: 'Europe/Paris', enabled: true }]);
    } finally {
      await again.close();
      await backend.cleanup();
    }
  });
});
