/**
 * The verify and finalize stage budget buckets, and the stop that ends proposing. A verify bucket of
 * 0 admits no verification: TASK_STAGE_STOPPED (stage verify, bucket verify) and the task fails with
 * no verified candidate; one with room verifies every candidate. A judge agent's cost is charged to
 * the finalize bucket with its voter's commit; once that bucket is spent the judge is not asked, its
 * voter votes for the best verified candidate and the stop names the bucket. The log replays to the
 * same rows and cost. SQLite and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { ReasonCode } from '../src/consensus/core/reason-codes.js';
import { replayStoredRun } from '../src/log/log-service.js';
import type { Swarm } from '../src/swarm.js';
import { BACKENDS, consensusProject, settledTask, useCleanups, type Backend } from './helpers/consensus-project.js';

const cleanups = useCleanups();

async function open(backend: Backend): Promise<{ swarm: Swarm; judged: () => number }> {
  let judged = 0;
  const { swarm } = await consensusProject(backend, cleanups, {
    builtins: {
      two: async () => ({ answer: 2 }),
      three: async () => ({ answer: 3 }),
      // Picks the last verified candidate (not the best ranked one) and reports what it cost.
      judge: async (inputs) => {
        judged++;
        const cands = (inputs as { candidates: Array<{ candidate_hash: string }> }).candidates;
        return { candidate_hash: cands[cands.length - 1]?.candidate_hash, cost_usd: 0.05 };
      },
    },
  });
  return { swarm, judged: () => judged };
}

const BASE = {
  task_type: 'pick',
  inputs: {},
  proposers: [{ agent: 'two' }, { agent: 'three' }],
  verification: { policy: 'vp.schema_only.v1' },
  output_schema: { type: 'object', required: ['answer'], properties: { answer: { type: 'number' } } },
};

async function taskEvents(swarm: Swarm, runId: string, taskId: string) {
  return (await swarm.events(runId)).filter((e) => (e.data as { task_id?: string }).task_id === taskId);
}

for (const backend of BACKENDS) {
  describe(`verify and finalize buckets (${backend})`, () => {
    it('a verify bucket of 0 stops verification before its first call; one with room verifies all', async () => {
      const { swarm } = await open(backend);
      const voting = { voters: [{ id: 'v1' }], reveal_deadline_ms: 5000 };
      const { task_id: spent } = await swarm.submitTask({ ...BASE, voting, budget: { verify: 0 } });
      const d = await settledTask(swarm, spent);
      expect(d.status).toBe('failed');
      expect(d.reason_code).toBe(ReasonCode.NO_VERIFIED_CANDIDATE);
      const events = await taskEvents(swarm, d.run_id as string, spent);
      expect(events.filter((e) => e.type === 'VERIFIER_RESULT_SUBMITTED')).toHaveLength(0);
      const stops = events.filter((e) => e.type === 'TASK_STAGE_STOPPED').map((e) => e.data);
      expect(stops).toEqual([
        expect.objectContaining({ stage: 'propose', reason_code: ReasonCode.OK }),
        expect.objectContaining({ stage: 'verify', bucket: 'verify', reason_code: ReasonCode.STAGE_BUDGET_EXHAUSTED, reason: 'STAGE_BUDGET_EXHAUSTED', spent_usd: 0, budget_usd: 0 }),
      ]);
      expect((await swarm.taskCost(spent)).exhausted).toEqual(['verify']);

      const { task_id: room } = await swarm.submitTask({ ...BASE, voting, budget: { verify: 1 } });
      const ok = await settledTask(swarm, room);
      expect(ok.status).toBe('finalized');
      const okEvents = await taskEvents(swarm, ok.run_id as string, room);
      expect(okEvents.filter((e) => e.type === 'VERIFIER_RESULT_SUBMITTED')).toHaveLength(2);
      expect(okEvents.filter((e) => e.type === 'TASK_STAGE_STOPPED').map((e) => (e.data as { stage: string }).stage)).toEqual(['propose']);
      expect((await swarm.taskCost(room)).exhausted).toEqual([]);
      await swarm.wait(ok.run_id as string);
      expect((await replayStoredRun(swarm, ok.run_id as string)).differences).toEqual([]);
    }, 60_000);

    it('a judge is charged to the finalize bucket; a spent bucket leaves its voter with the best verified candidate', async () => {
      const { swarm, judged } = await open(backend);
      const voting = { voters: [{ id: 'j1', strategy: 'agent', agent: 'judge' }], quorum: 1, reveal_deadline_ms: 5000 };
      const { task_id: paid } = await swarm.submitTask({ ...BASE, voting, budget: { finalize: 1 } });
      const d = await settledTask(swarm, paid);
      expect(d.status).toBe('finalized');
      expect(judged()).toBe(1);
      const events = await taskEvents(swarm, d.run_id as string, paid);
      expect(events.find((e) => e.type === 'VOTE_COMMIT')?.data).toMatchObject({ voter_id: 'j1', cost_usd: 0.05 });
      const cost = await swarm.taskCost(paid);
      expect(cost.finalize_usd).toBeCloseTo(0.05);
      expect(cost.exhausted).toEqual([]);
      // The judge picked the last verified candidate, not the best ranked one.
      const ranked = (await swarm.getTask(paid))?.candidates.map((c) => c.candidate_hash) ?? [];
      expect(ranked).toContain(d.decision?.candidate_hash);
      await swarm.wait(d.run_id as string);
      expect((await replayStoredRun(swarm, d.run_id as string)).differences).toEqual([]);

      const { task_id: broke } = await swarm.submitTask({ ...BASE, voting, budget: { finalize: 0 } });
      const b = await settledTask(swarm, broke);
      expect(b.status).toBe('finalized');
      expect(judged()).toBe(1);
      const bEvents = await taskEvents(swarm, b.run_id as string, broke);
      const stop = bEvents.find((e) => e.type === 'TASK_STAGE_STOPPED' && (e.data as { stage: string }).stage === 'vote');
      expect(stop?.data).toMatchObject({ stage: 'vote', bucket: 'finalize', reason_code: ReasonCode.STAGE_BUDGET_EXHAUSTED, round: 1, budget_usd: 0 });
      const types = bEvents.map((e) => e.type);
      expect(types.indexOf('TASK_STAGE_STOPPED', types.indexOf('VERIFIER_RESULT_SUBMITTED'))).toBeLessThan(types.indexOf('VOTE_COMMIT'));
      expect(bEvents.find((e) => e.type === 'VOTE_COMMIT')?.data).not.toHaveProperty('cost_usd');
      expect((await swarm.taskCost(broke)).finalize_usd).toBe(0);
      await swarm.wait(b.run_id as string);
      expect((await replayStoredRun(swarm, b.run_id as string)).differences).toEqual([]);
    }, 60_000);
  });
}
