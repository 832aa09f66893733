/**
 * A stage budget bucket spent: a proposer that reports more than `budget.explore` stops the propose
 * stage with STAGE_BUDGET_EXHAUSTED (the task goes on with what it has), and taskCost shows the
 * bucket exhausted. A task past its expiry (an external voter who never votes) ends with
 * TASK_EXPIRED, fails its run, and refuses votes from then on; waiting
 * for votes leaves no pile of listeners on the step's abort signal. SQLite and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { commitmentHash, generateIdentity, newSalt, signRecord } from '../src/consensus/core/crypto.js';
import { ReasonCode } from '../src/consensus/core/reason-codes.js';
import { voteCommitSignedFields } from '../src/consensus/core/signed.js';
import { replayStoredRun } from '../src/log/log-service.js';
import type { Swarm } from '../src/swarm.js';
import { consensusProject, settledTask, useCleanups, type Backend } from './helpers/consensus-project.js';
import { until } from './helpers/project.js';

const cleanups = useCleanups();

async function open(backend: Backend): Promise<{ swarm: Swarm; calls: () => number }> {
  let n = 0;
  const { swarm } = await consensusProject(backend, cleanups, { builtins: { spender: async () => ({ answer: 4, cost_usd: (++n, 0.03) }) } });
  return { swarm, calls: () => n };
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`stage budget and expiry (${backend})`, () => {
    it('a spent explore bucket stops proposing with STAGE_BUDGET_EXHAUSTED; taskCost shows it exhausted', async () => {
      const { swarm, calls } = await open(backend);
      const { task_id: taskId } = await swarm.submitTask({
        task_type: 'add',
        inputs: {},
        proposers: [{ agent: 'spender' }],
        verification: { policy: 'vp.schema_only.v1' },
        output_schema: { type: 'object', required: ['answer'] },
        voting: { voters: [{ id: 'v1' }], reveal_deadline_ms: 5000 },
        explore: { max_rounds: 5 },
        budget: { explore: 0.05 },
      });
      const d = await settledTask(swarm, taskId);
      // Round 1 spends 0.03 (room left), round 2 spends 0.06 in all: round 3 is never asked for.
      expect(d.status).toBe('finalized');
      expect(calls()).toBe(2);
      const events = (await swarm.events(d.run_id as string)).filter((e) => (e.data as { task_id?: string }).task_id === taskId);
      expect(events.filter((e) => e.type === 'CANDIDATE_PROPOSED').map((e) => (e.data as { round: number }).round)).toEqual([1, 2]);
      const stops = events.filter((e) => e.type === 'TASK_STAGE_STOPPED');
      expect(stops).toHaveLength(1);
      expect(stops[0]?.data).toMatchObject({ task_id: taskId, stage: 'propose', bucket: 'explore', reason_code: ReasonCode.STAGE_BUDGET_EXHAUSTED, reason: 'STAGE_BUDGET_EXHAUSTED' });
      const types = events.map((e) => e.type);
      expect(types.indexOf('VERIFIER_RESULT_SUBMITTED')).toBeGreaterThan(types.indexOf('TASK_STAGE_STOPPED'));
      const cost = await swarm.taskCost(taskId);
      expect(cost.explore_usd).toBeCloseTo(0.06);
      expect(cost.total_usd).toBeCloseTo(0.06);
      expect(cost.budget).toMatchObject({ explore: 0.05 });
      expect(cost.exhausted).toEqual(['explore']);
      const view = await swarm.getTask(taskId);
      expect(view?.task.explore_round).toBe(3);
      expect(view?.candidates).toHaveLength(2);
      expect(view?.cost.exhausted).toEqual(['explore']);
      // The log replays to the same rows, the cost included.
      // The decision is final before the step's completion commits: replay once the run has finished.
      await swarm.wait(d.run_id as string);
      expect((await replayStoredRun(swarm, d.run_id as string)).differences).toEqual([]);
    }, 60_000);

    it('a bucket with room is not exhausted and proposing runs all its rounds', async () => {
      const { swarm, calls } = await open(backend);
      const { task_id: taskId } = await swarm.submitTask({
        task_type: 'add',
        inputs: {},
        proposers: [{ agent: 'spender' }],
        verification: { policy: 'vp.schema_only.v1' },
        output_schema: { type: 'object', required: ['answer'] },
        voting: { voters: [{ id: 'v1' }], reveal_deadline_ms: 5000 },
        explore: { max_rounds: 2 },
        budget: { explore: 1 },
      });
      const d = await settledTask(swarm, taskId);
      expect(d.status).toBe('finalized');
      expect(calls()).toBe(2);
      const events = (await swarm.events(d.run_id as string)).filter((e) => (e.data as { task_id?: string }).task_id === taskId);
      // Proposing ran its explore.max_rounds: the stop says so (reason code OK), and names no bucket.
      const stops = events.filter((e) => e.type === 'TASK_STAGE_STOPPED');
      expect(stops.map((e) => e.data)).toEqual([expect.objectContaining({ task_id: taskId, stage: 'propose', reason_code: ReasonCode.OK, reason: 'OK', round: 2 })]);
      expect(stops[0]?.data).not.toHaveProperty('bucket');
      const cost = await swarm.taskCost(taskId);
      expect(cost.explore_usd).toBeCloseTo(0.06);
      expect(cost.exhausted).toEqual([]);
    }, 60_000);

    it('an external voter who never votes: the task expires with TASK_EXPIRED and refuses votes after', async () => {
      const { swarm } = await open(backend);
      // Waiting for votes for seconds at a 50 ms poll must not pile listeners on the step's abort signal.
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(w.name);
      process.on('warning', onWarning);
      cleanups.push(() => void process.off('warning', onWarning));
      const ext = generateIdentity();
      const submitted = Date.now();
      const { task_id: taskId } = await swarm.submitTask({
        task_type: 'add',
        inputs: {},
        proposers: [{ agent: 'spender' }],
        verification: { policy: 'vp.schema_only.v1' },
        output_schema: { type: 'object', required: ['answer'] },
        voting: { voters: [{ id: 'ext', external: true, public_key: ext.publicKey }], quorum: 1, reveal_deadline_ms: 60_000 },
        expiry_ms: 3000,
      });
      const voting = await until(async () => {
        const v = await swarm.getTask(taskId);
        return v?.task.status === 'voting' ? v : undefined;
      }, 20_000, 'the task voting');
      expect(voting.task.expires_at - voting.task.created_at).toBe(3000);
      const d = await until(async () => {
        const x = await swarm.taskDecision(taskId);
        return x.status === 'expired' ? x : undefined;
      }, 20_000, 'the task expired');
      expect(Date.now() - submitted).toBeGreaterThanOrEqual(3000);
      expect(d.reason_code).toBe(ReasonCode.TASK_EXPIRED);
      expect(warnings).not.toContain('MaxListenersExceededWarning');
      expect(d.decision ?? null).toBeNull();
      const runId = d.run_id as string;
      const events = (await swarm.events(runId)).filter((e) => (e.data as { task_id?: string }).task_id === taskId);
      const expired = events.filter((e) => e.type === 'TASK_EXPIRED');
      expect(expired).toHaveLength(1);
      expect(expired[0]?.data).toMatchObject({ task_id: taskId, stage: 'vote', reason_code: ReasonCode.TASK_EXPIRED });
      expect(events.some((e) => e.type === 'DECISION_COMMITTED' || e.type === 'DECISION_FINALIZED' || e.type === 'TASK_FAILED')).toBe(false);
      const view = await swarm.getTask(taskId);
      expect(view?.task).toMatchObject({ status: 'expired', reason_code: ReasonCode.TASK_EXPIRED });
      expect(view?.votes).toHaveLength(0);
      // The step fails once the task expired (not retried).
      const { run, steps } = await until(async () => {
        const r = await swarm.getRun(runId);
        return r.run.status === 'running' ? undefined : r;
      }, 20_000, 'the run ended');
      expect(run.status).toBe('failed');
      expect(steps[0]?.attempt).toBe(1);
      expect((await replayStoredRun(swarm, runId)).differences).toEqual([]);
      expect(steps[0]?.error).toContain('expired (TASK_EXPIRED, reason code 1402)');
      // A vote now is refused with TASK_EXPIRED.
      const hash = view?.candidates[0]?.candidate_hash ?? '';
      const commitment = commitmentHash(hash, 'approve', newSalt());
      const err = (await swarm
        .submitVote({ kind: 'commit', task_id: taskId, round: 1, voter_id: 'ext', commitment, signature: signRecord(ext.privateKey, 'vote_commit', voteCommitSignedFields({ task_id: taskId, round: 1, voter_id: 'ext', commitment })) })
        .then(
          () => undefined,
          (x: unknown) => x,
        )) as { context?: { reason_code?: number } } | undefined;
      expect(err?.context?.reason_code).toBe(ReasonCode.TASK_EXPIRED);
    }, 60_000);
  });
}
