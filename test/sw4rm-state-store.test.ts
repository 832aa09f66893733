/**
 * SW4RM agent state in the store (migration 23), one suite over SQLite and PostgreSQL: the store
 * methods, StorePersistence under the ActivityBuffer and WorktreeState across a reopen, and bad
 * input refused with nothing written.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ActivityBuffer, buildAckEnvelope, buildEnvelope, parseAck, StorePersistence, WorktreeState } from '../src/sw4rm/index.js';
import type { Store } from '../src/store/store.js';
import { makePostgresBackend, makeSqliteBackend, type MakeStore, type StoreBackend } from './helpers/store-fixtures.js';
import { stopPgTestServer } from './helpers/pg.js';

function stateContract(name: string, makeStore: MakeStore): void {
  describe(`sw4rm agent state: ${name}`, () => {
    let backend: StoreBackend;
    let store: Store;
    beforeEach(async () => {
      backend = await makeStore();
      store = await backend.open();
    });
    afterEach(async () => {
      await store.close();
      await backend.cleanup();
    });

    it('puts, gets, replaces, lists and deletes documents by (agent, kind, key)', async () => {
      expect(await store.getSw4rmState('a1', 'activity')).toBeUndefined();
      const put = await store.putSw4rmState('a1', 'activity', { n: 1, text: 'é \u0000 ok' });
      expect(put).toMatchObject({ agent_id: 'a1', kind: 'activity', key: '', value: { n: 1, text: 'é \u0000 ok' } });
      await store.putSw4rmState('a1', 'activity', { n: 2 });
      await store.putSw4rmState('a1', 'worktree', { repo_id: 'r' });
      await store.putSw4rmState('a1', 'cursor', 7, 'stream-2');
      await store.putSw4rmState('a2', 'activity', [1, 2, 3]);
      const got = await store.getSw4rmState('a1', 'activity');
      expect(got?.value).toEqual({ n: 2 });
      expect(got?.updated_at).toBeGreaterThanOrEqual(put.updated_at);
      expect((await store.getSw4rmState('a1', 'cursor', 'stream-2'))?.value).toBe(7);
      expect((await store.listSw4rmState('a1')).map((r) => [r.kind, r.key])).toEqual([
        ['activity', ''],
        ['cursor', 'stream-2'],
        ['worktree', ''],
      ]);
      expect(await store.deleteSw4rmState('a1', 'worktree')).toBe(1);
      expect(await store.deleteSw4rmState('a1')).toBe(2);
      expect(await store.listSw4rmState('a1')).toEqual([]);
      expect((await store.getSw4rmState('a2', 'activity'))?.value).toEqual([1, 2, 3]);
    });

    it('refuses an empty agent id or kind and a value with no JSON form, writing nothing', async () => {
      await expect(store.putSw4rmState('', 'activity', {})).rejects.toMatchObject({ code: 'SW4RM_STATE_INVALID', context: { field: 'agent_id' } });
      await expect(store.putSw4rmState('a1', '', {})).rejects.toMatchObject({ code: 'SW4RM_STATE_INVALID', context: { field: 'kind' } });
      await expect(store.putSw4rmState('a1', 'activity', undefined)).rejects.toMatchObject({ code: 'SW4RM_STATE_INVALID', context: { field: 'value' } });
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      await expect(store.putSw4rmState('a1', 'activity', cyclic)).rejects.toMatchObject({ code: 'SW4RM_STATE_INVALID' });
      await expect(store.putSw4rmState('a1', 'activity', 10n)).rejects.toMatchObject({ code: 'SW4RM_STATE_INVALID' });
      expect(await store.listSw4rmState('a1')).toEqual([]);
      expect(await store.listSw4rmState('')).toEqual([]);
    });

    it('an activity buffer and a worktree binding survive a reopen through StorePersistence', async () => {
      const buffer = await ActivityBuffer.open({ persistence: new StorePersistence(store, 'agent-1'), saveDelayMs: 10_000 });
      expect(buffer.persistent).toBe(true);
      const sent = buildEnvelope({ producer_id: 'agent-1', message_type: 'DATA', payload: Buffer.from([0, 1, 2, 255]), idempotency_token: 'agent-1:send:0123456789abcdef' });
      const done = buildEnvelope({ producer_id: 'agent-1', message_type: 'CONTROL', payload: '{"action":"stop"}' });
      buffer.recordOutgoing(sent);
      buffer.recordOutgoing(done);
      buffer.ack(parseAck(buildAckEnvelope({ producer_id: 'agent-2', ack_for_message_id: done.message_id, ack_stage: 'FULFILLED' })));
      // Batched: nothing written until the delay or a flush.
      expect(await store.getSw4rmState('agent-1', 'activity')).toBeUndefined();
      await buffer.close();
      const wt = await WorktreeState.open({ persistence: new StorePersistence(store, 'agent-1') });
      expect(await wt.bind('main-repo', 'feature', { version: '1.2.3' })).toMatchObject({ bound: true });

      await store.close();
      store = await backend.open();
      const again = await ActivityBuffer.open({ persistence: new StorePersistence(store, 'agent-1') });
      expect(again.size).toBe(2);
      const pending = again.reconcile();
      expect(pending.map((r) => r.message_id)).toEqual([sent.message_id]);
      expect(pending[0]?.envelope.payload).toEqual(Buffer.from([0, 1, 2, 255]));
      expect(pending[0]?.envelope.message_type).toBe('DATA');
      expect(again.findByIdempotencyToken('agent-1:send:0123456789abcdef')?.message_id).toBe(sent.message_id);
      expect(again.get(done.message_id)?.ack_stage).toBe('FULFILLED');
      const wt2 = await WorktreeState.open({ persistence: new StorePersistence(store, 'agent-1') });
      expect(wt2.current()).toMatchObject({ repo_id: 'main-repo', worktree_id: 'feature', metadata: { version: '1.2.3' } });
      // Another agent's state is its own.
      expect((await WorktreeState.open({ persistence: new StorePersistence(store, 'agent-2') })).current()).toBeUndefined();
      await again.close();
    });
  });
}

stateContract('sqlite', makeSqliteBackend);
stateContract('postgres', makePostgresBackend);
afterAll(stopPgTestServer);
