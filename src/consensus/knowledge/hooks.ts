/**
 * The knowledge store as the consensus driver uses it (KnowledgeHooks of src/consensus/driver/deps.ts):
 * before the first proposal round, a lookup whose hit becomes the proposers' `seed_bundle` and whose
 * outcome becomes the REUSE_REJECT_RECORDED and KNOWLEDGE_HIT events; after DECISION_FINALIZED, the
 * record of the decision from the task's consensus rows (idempotent: the driver calls it again when
 * it resumes a finalized task).
 *
 * @example
 *   consensusDeps({ …, knowledge: knowledgeHooks(knowledgeForSwarm(swarm, env), store) });
 */
import type { Store } from '../../store/store.js';
import type { KnowledgeHooks } from '../driver/deps.js';
import { knowledgeEvents, toSeedBundle, type Knowledge, type RecordResult } from './index.js';

export function knowledgeHooks(knowledge: Knowledge, store: Store): KnowledgeHooks & { recordTask(taskId: string): Promise<RecordResult | undefined> } {
  const recordTask = async (taskId: string): Promise<RecordResult | undefined> => {
    const [task, decision] = await Promise.all([store.getConsensusTask(taskId), store.getConsensusDecision(taskId)]);
    // Only a finalized decision is knowledge.
    if (!task || !decision || decision.finalized_at === null) return undefined;
    const [candidates, results, c] = await Promise.all([store.getConsensusCandidates(taskId), store.getConsensusResults(taskId), store.getConsensusCosts(taskId)]);
    const budget = task.contract.budget ?? {};
    return knowledge.record({
      decision,
      task: { task_id: taskId, task_type: task.task_type, inputs: task.contract.inputs, run_id: task.run_id },
      candidates,
      results,
      cost: {
        task_id: taskId,
        explore_usd: c.explore,
        verify_usd: c.verify,
        finalize_usd: c.finalize,
        total_usd: c.explore + c.verify + c.finalize,
        budget,
        exhausted: (['explore', 'verify', 'finalize'] as const).filter((b) => budget[b] !== undefined && c[b] >= (budget[b] ?? 0)),
      },
    });
  };
  return {
    async lookup(contract, taskId) {
      const r = await knowledge.lookup({ task_id: taskId, task_type: contract.task_type, inputs: contract.inputs, ...(contract.knowledge ? { knowledge: contract.knowledge } : {}) });
      return {
        ...(r.hit ? { seed_bundle: toSeedBundle(r.hit) } : {}),
        events: knowledgeEvents(taskId, r).map((e) => ({ type: e.type, data: { ...e.data } })),
      };
    },
    async record(taskId) {
      await recordTask(taskId);
    },
    recordTask,
  };
}
