/**
 * Explore rounds above 1 through a real worker: `explore.max_rounds` runs that many proposal
 * rounds, `explore.topk` stops proposing once k distinct candidates are kept (TOPK_REACHED), and
 * `explore.stop.no_new_evidence_rounds` stops after rounds without a new candidate hash
 * (NO_NEW_EVIDENCE); each stop shows in the run's log and in the task's rows. SQLite and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { ReasonCode } from '../src/consensus/core/reason-codes.js';
import { replayStoredRun } from '../src/log/log-service.js';
import type { Swarm } from '../src/swarm.js';
import { consensusProject, settledTask, useCleanups, type Backend } from './helpers/consensus-project.js';

const cleanups = useCleanups();

async function open(backend: Backend): Promise<Swarm> {
  let n = 0;
  const builtins = {
    constant: async () => ({ answer: 4 }),
    // A new answer on every call: every round brings a new candidate hash.
    counter: async () => ({ answer: ++n, cost_usd: 0.01 }),
  };
  return (await consensusProject(backend, cleanups, { builtins })).swarm;
}

const settled = (swarm: Swarm, taskId: string) => settledTask(swarm, taskId);

const BASE = {
  task_type: 'add',
  inputs: {},
  verification: { policy: 'vp.schema_only.v1' },
  output_schema: { type: 'object', required: ['answer'] },
  voting: { voters: [{ id: 'v1' }], reveal_deadline_ms: 5000 },
};

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`explore rounds (${backend})`, () => {
    it('explore.max_rounds: one proposal per proposer per round, no early stop', async () => {
      const swarm = await open(backend);
      const { task_id: taskId } = await swarm.submitTask({ ...BASE, proposers: [{ agent: 'counter' }], explore: { max_rounds: 3 } });
      const d = await settled(swarm, taskId);
      expect(d.status).toBe('finalized');
      const events = (await swarm.events(d.run_id as string)).filter((e) => (e.data as { task_id?: string }).task_id === taskId);
      const proposed = events.filter((e) => e.type === 'CANDIDATE_PROPOSED').map((e) => e.data as { round: number; output: { answer: number } });
      expect(proposed.map((p) => p.round)).toEqual([1, 2, 3]);
      expect(proposed.map((p) => p.output.answer)).toEqual([1, 2, 3]);
      // Neither topk nor no_new_evidence stopped it: no stop with those codes.
      const stops = events.filter((e) => e.type === 'TASK_STAGE_STOPPED').map((e) => (e.data as { reason_code: number }).reason_code);
      expect(stops).not.toContain(ReasonCode.TOPK_REACHED);
      expect(stops).not.toContain(ReasonCode.NO_NEW_EVIDENCE);
      const view = await swarm.getTask(taskId);
      expect(view?.task.explore_round).toBe(3);
      expect(view?.candidates.map((c) => c.round).sort()).toEqual([1, 2, 3]);
      expect(new Set(view?.candidates.map((c) => c.candidate_hash)).size).toBe(3);
      // The decision is final before the step's completion commits: replay once the run has finished.
      await swarm.wait(d.run_id as string);
      expect((await replayStoredRun(swarm, d.run_id as string)).differences).toEqual([]);
    }, 60_000);

    it('explore.topk: proposing stops at k distinct candidates with TOPK_REACHED', async () => {
      const swarm = await open(backend);
      const { task_id: taskId } = await swarm.submitTask({ ...BASE, proposers: [{ agent: 'counter' }], explore: { max_rounds: 6, topk: 2 } });
      const d = await settled(swarm, taskId);
      expect(d.status).toBe('finalized');
      const events = (await swarm.events(d.run_id as string)).filter((e) => (e.data as { task_id?: string }).task_id === taskId);
      const types = events.map((e) => e.type);
      expect(events.filter((e) => e.type === 'CANDIDATE_PROPOSED').map((e) => (e.data as { round: number }).round)).toEqual([1, 2]);
      const stops = events.filter((e) => e.type === 'TASK_STAGE_STOPPED');
      expect(stops).toHaveLength(1);
      expect(stops[0]?.data).toMatchObject({ task_id: taskId, stage: 'propose', reason_code: ReasonCode.TOPK_REACHED, reason: 'TOPK_REACHED' });
      // The stop comes after the last proposal and before verification.
      const at = types.indexOf('TASK_STAGE_STOPPED');
      expect(types.lastIndexOf('CANDIDATE_PROPOSED')).toBeLessThan(at);
      expect(types.indexOf('VERIFIER_RESULT_SUBMITTED')).toBeGreaterThan(at);
      const view = await swarm.getTask(taskId);
      expect(view?.task.explore_round).toBe(2);
      expect(view?.candidates).toHaveLength(2);
    }, 60_000);

    it('explore.topk within a round: a new hash past k distinct candidates is not kept', async () => {
      const swarm = await open(backend);
      const { task_id: taskId } = await swarm.submitTask({ ...BASE, proposers: [{ agent: 'counter', samples: 3 }], explore: { max_rounds: 4, topk: 2 } });
      const d = await settled(swarm, taskId);
      expect(d.status).toBe('finalized');
      const events = (await swarm.events(d.run_id as string)).filter((e) => (e.data as { task_id?: string }).task_id === taskId);
      expect(events.filter((e) => e.type === 'CANDIDATE_PROPOSED')).toHaveLength(2);
      const refused = events.filter((e) => e.type === 'TASK_INPUT_REJECTED');
      expect(refused).toHaveLength(1);
      expect(refused[0]?.data).toMatchObject({ task_id: taskId, record_kind: 'candidate', round: 1, reason_code: ReasonCode.TOPK_REACHED, reason: 'TOPK_REACHED' });
      expect(events.filter((e) => e.type === 'TASK_STAGE_STOPPED').map((e) => (e.data as { reason_code: number }).reason_code)).toEqual([ReasonCode.TOPK_REACHED]);
      const view = await swarm.getTask(taskId);
      expect(view?.task.explore_round).toBe(1);
      expect(new Set(view?.candidates.map((c) => c.candidate_hash)).size).toBe(2);
      expect(view?.candidates).toHaveLength(2);
      // The refused proposal was paid for: the bucket has all three, and the log replays to the same rows and cost.
      expect((await swarm.taskCost(taskId)).explore_usd).toBeCloseTo(0.03);
      expect(refused[0]?.data).toMatchObject({ record_kind: 'candidate', cost_usd: 0.01 });
      // The decision is final before the step's completion commits: replay once the run has finished.
      await swarm.wait(d.run_id as string);
      const replay = await replayStoredRun(swarm, d.run_id as string);
      expect(replay.differences).toEqual([]);
      expect((await swarm.verify(d.run_id as string)).ok).toBe(true);
    }, 60_000);

    it('explore.stop.no_new_evidence_rounds: stops after that many rounds without a new hash, with NO_NEW_EVIDENCE', async () => {
      const swarm = await open(backend);
      const { task_id: taskId } = await swarm.submitTask({ ...BASE, proposers: [{ agent: 'constant' }], explore: { max_rounds: 8, stop: { no_new_evidence_rounds: 2 } } });
      const d = await settled(swarm, taskId);
      expect(d.status).toBe('finalized');
      const events = (await swarm.events(d.run_id as string)).filter((e) => (e.data as { task_id?: string }).task_id === taskId);
      // Round 1 brings the hash; rounds 2 and 3 bring nothing new; proposing stops after round 3.
      const proposed = events.filter((e) => e.type === 'CANDIDATE_PROPOSED').map((e) => e.data as { round: number; candidate_hash: string });
      expect(proposed.map((p) => p.round)).toEqual([1, 2, 3]);
      expect(new Set(proposed.map((p) => p.candidate_hash)).size).toBe(1);
      const stops = events.filter((e) => e.type === 'TASK_STAGE_STOPPED');
      expect(stops).toHaveLength(1);
      expect(stops[0]?.data).toMatchObject({ task_id: taskId, stage: 'propose', reason_code: ReasonCode.NO_NEW_EVIDENCE, reason: 'NO_NEW_EVIDENCE' });
      const view = await swarm.getTask(taskId);
      expect(view?.task.explore_round).toBe(3);
      expect(view?.candidates).toHaveLength(3);
      expect(d.decision?.candidate_hash).toBe(proposed[0]?.candidate_hash);
    }, 60_000);
  });
}
