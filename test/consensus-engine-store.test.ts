/**
 * The consensus tables (migration 25) on SQLite and PostgreSQL: rows written through
 * `LedgerTx.consensus()` with their events in one transaction, fenced by the step's attempt; every
 * insert idempotent; one decision per task (the finality rule); the store's reads.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventType } from '../src/core/events.js';
import type { Store } from '../src/store/store.js';
import type { ConsensusTaskRow } from '../src/store/consensus-types.js';
import { Harness, makePostgresBackend, makeSqliteBackend, type MakeStore, type StoreBackend } from './helpers/store-fixtures.js';
import { stopPgTestServer } from './helpers/pg.js';

function task(runId: string, stepId: string, now: number): ConsensusTaskRow {
  return {
    task_id: `${runId}/${stepId}`,
    run_id: runId,
    step_id: stepId,
    task_type: 'summary',
    contract: { task_type: 'summary', inputs: { text: 'x' }, proposers: [{ agent: 'a' }], verification: { policy: 'vp.schema_only.v1' }, voting: { voters: [{ id: 'v1' }] } },
    members: [{ role: 'voter', id: 'v1', public_key: 'k' }],
    status: 'created',
    stage: 'propose',
    round: 1,
    explore_round: 0,
    round_started_at: null,
    reason_code: null,
    reason: null,
    created_at: now,
    expires_at: now + 60_000,
    updated_at: now,
  };
}

function contract(name: string, makeStore: MakeStore): void {
  describe(`consensus store: ${name}`, () => {
    let backend: StoreBackend;
    let store: Store;
    let h: Harness;
    beforeEach(async () => {
      backend = await makeStore();
      store = await backend.open();
      h = new Harness(store);
    });
    afterEach(async () => {
      await store.close();
      await backend.cleanup();
    });

    it('writes a transition with its event, fenced by the attempt; inserts are idempotent; one decision per task', async () => {
      const runId = await h.startRun({ steps: [{ id: 's1' }] });
      const [claimed] = await h.claim('w1');
      expect(claimed?.step_id).toBe('s1');
      const key = { run_id: runId, step_id: 's1' };
      const attempt = claimed?.attempt ?? 0;
      const now = Date.now();
      const t = task(runId, 's1', now);
      await store.transaction(async (tx) => {
        const c = tx.consensus();
        expect(await c.fence(key, attempt, 'w1')).toBe(true);
        expect(await c.insertTask(t)).toBe(true);
        expect(await c.insertTask(t)).toBe(false);
        await h.ledger.recordEvents(tx, runId, [{ type: EventType.TASK_CREATED, step_id: 's1', data: { task_id: t.task_id } }]);
      });
      // A stale attempt or another owner is fenced off.
      await store.transaction(async (tx) => {
        expect(await tx.consensus().fence(key, attempt + 1, 'w1')).toBe(false);
        expect(await tx.consensus().fence(key, attempt, 'w2')).toBe(false);
      });
      // A failing transaction leaves neither the row nor the event.
      await expect(
        store.transaction(async (tx) => {
          await tx.consensus().updateTask(t.task_id, { status: 'proposing', stage: 'propose', explore_round: 1 });
          await h.ledger.recordEvents(tx, runId, [{ type: EventType.TASK_CLAIMED, step_id: 's1', data: { task_id: t.task_id, stage: 'propose' } }]);
          throw new Error('lost');
        }),
      ).rejects.toThrow('lost');
      expect((await store.getConsensusTask(t.task_id))?.status).toBe('created');
      expect((await store.getEvents(runId)).filter((e) => e.type.startsWith('TASK_')).map((e) => e.type)).toEqual(['TASK_CREATED']);

      const cand = { task_id: t.task_id, candidate_hash: 'h1', proposer_id: 'p1', round: 1, output: { a: 1 }, evidence: [], cost_usd: 0.25, signature: 's', output_bytes: 7, event_seq: 5, event_hash: 'e5', created_at: now };
      await store.transaction(async (tx) => {
        const c = tx.consensus();
        await c.updateTask(t.task_id, { status: 'voting', stage: 'vote', explore_round: 1, round_started_at: now });
        expect(await c.insertCandidate(cand)).toBe(true);
        expect(await c.insertCandidate({ ...cand, candidate_hash: 'other' })).toBe(false);
        expect(await c.insertCandidate({ ...cand, proposer_id: 'p2', cost_usd: 0.5 })).toBe(true);
        await c.addCost(t.task_id, 'explore', 0.25);
        await c.addCost(t.task_id, 'explore', 0.5);
        await c.addCost(t.task_id, 'verify', 0.1);
        const res = { task_id: t.task_id, candidate_hash: 'h1', verifier_id: 'ver', policy_id: 'vp.schema_only.v1', status: 'passed' as const, reason_codes: [], reason: null, score: 1, evidence: [], cost_usd: 0, signature: 'sig', created_at: now };
        expect(await c.insertResult(res)).toBe(true);
        expect(await c.insertResult({ ...res, status: 'failed' })).toBe(false);
        expect(await c.insertCommit({ task_id: t.task_id, round: 1, voter_id: 'v1', commitment: 'c1', commit_signature: 'cs', committed_at: now }, { candidate_hash: 'h1', vote: 'approve', salt: 'salt' })).toBe(true);
        expect(await c.insertCommit({ task_id: t.task_id, round: 1, voter_id: 'v1', commitment: 'c2', commit_signature: 'cs', committed_at: now })).toBe(false);
        expect(await c.sealed(t.task_id, 1, 'v1')).toEqual({ candidate_hash: 'h1', vote: 'approve', salt: 'salt' });
        const rev = { task_id: t.task_id, round: 1, voter_id: 'v1', candidate_hash: 'h1', vote: 'approve' as const, salt: 'salt', reveal_signature: 'rs', revealed_at: now + 1, reveal_event_seq: 9, reveal_event_hash: 'e9' };
        expect(await c.reveal(rev)).toBe(true);
        expect(await c.reveal(rev)).toBe(false);
        expect(await c.sealed(t.task_id, 1, 'v1')).toBeUndefined();
        const d = { task_id: t.task_id, round: 1, candidate_hash: 'h1', output: { a: 1 }, tally: { h1: 1 }, quorum: 1, proof: { candidate_event: { seq: 5, hash: 'e5' }, reveal_events: [{ seq: 9, hash: 'e9' }] }, committed_at: now, finalized_at: null };
        expect(await c.insertDecision(d)).toBe(true);
        expect(await c.insertDecision({ ...d, candidate_hash: 'h2' })).toBe(false);
        expect(await c.finalizeDecision(t.task_id, now + 2)).toBe(true);
        expect(await c.finalizeDecision(t.task_id, now + 3)).toBe(false);
      });

      const got = await store.getConsensusTask(t.task_id);
      expect(got).toMatchObject({ status: 'voting', stage: 'vote', explore_round: 1, round_started_at: now, contract: t.contract, members: t.members, expires_at: now + 60_000 });
      expect((await store.listConsensusTasks({ run_id: runId })).map((r) => r.task_id)).toEqual([t.task_id]);
      expect(await store.listConsensusTasks({ status: 'finalized' })).toEqual([]);
      expect((await store.getConsensusCandidates(t.task_id)).map((c) => [c.proposer_id, c.candidate_hash, c.output, c.event_seq])).toEqual([
        ['p1', 'h1', { a: 1 }, 5],
        ['p2', 'h1', { a: 1 }, 5],
      ]);
      expect((await store.getConsensusResults(t.task_id)).map((r) => r.status)).toEqual(['passed']);
      expect(await store.getConsensusVotes(t.task_id, 1)).toEqual([
        { task_id: t.task_id, round: 1, voter_id: 'v1', commitment: 'c1', commit_signature: 'cs', committed_at: now, candidate_hash: 'h1', vote: 'approve', salt: 'salt', reveal_signature: 'rs', revealed_at: now + 1, reveal_event_seq: 9, reveal_event_hash: 'e9' },
      ]);
      expect(await store.getConsensusDecision(t.task_id)).toMatchObject({ candidate_hash: 'h1', tally: { h1: 1 }, finalized_at: now + 2, proof: { reveal_events: [{ seq: 9, hash: 'e9' }] } });
      const costs = await store.getConsensusCosts(t.task_id);
      expect(costs.explore).toBeCloseTo(0.75);
      expect(costs.verify).toBeCloseTo(0.1);
      expect(costs.finalize).toBe(0);
      expect(await store.getConsensusTask('nope')).toBeUndefined();
    });
  });
}

contract('SQLite', makeSqliteBackend);
contract('PostgreSQL', makePostgresBackend);

afterAll(async () => {
  await stopPgTestServer();
});
