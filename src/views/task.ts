/**
 * The JSON documents of a consensus task, shared by the API (`GET /api/v1/tasks`, `GET
 * /api/v1/tasks/{id}`) and the dashboard: the task, its candidates, the verifiers' results (reason
 * codes with their names), the votes (a commitment alone until its reveal; what it committed to only
 * after), the tally of the reveals per round, the decision with its proof, and the cost by bucket.
 * Times are ISO dates.
 *
 * @example
 *   taskJson({ task, candidates, results, votes, decision, costs })
 *   // { task_id: 'r1/pick', status: 'finalized', candidates: [...], votes: [{ voter_id: 'v1', commitment: '…', revealed: true, vote: 'approve', … }], decision: { proof: {…} }, cost: { total_usd: 0.3, … } }
 */
import { reasonName } from '../consensus/core/reason-codes.js';
import { BUDGET_BUCKETS, type BudgetBucket, type TaskCost } from '../consensus/core/types.js';
import type { ConsensusCandidateRow, ConsensusCosts, ConsensusDecisionRow, ConsensusResultRow, ConsensusTaskRow, ConsensusVoteRow } from '../store/consensus-types.js';

const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

/** A reason code with its stable name (`UNKNOWN` / `CUSTOM` for codes this version does not know). */
export function reasonJson(code: number): { code: number; name: string } {
  return { code, name: reasonName(code) };
}

/** A task in a list: what it is, where it is, and its run. */
export function taskSummaryJson(t: ConsensusTaskRow): Record<string, unknown> {
  return {
    task_id: t.task_id,
    run_id: t.run_id,
    step_id: t.step_id,
    task_type: t.task_type,
    status: t.status,
    stage: t.stage,
    round: t.round,
    reason: t.reason_code === null ? null : { ...reasonJson(t.reason_code), message: t.reason },
    created_at: iso(t.created_at),
    updated_at: iso(t.updated_at),
    expires_at: iso(t.expires_at),
  };
}

/** Everything a task's page shows. */
export interface TaskParts {
  task: ConsensusTaskRow;
  candidates: readonly ConsensusCandidateRow[];
  results: readonly ConsensusResultRow[];
  votes: readonly ConsensusVoteRow[];
  decision: ConsensusDecisionRow | null | undefined;
  /** The cost report (`Swarm.taskCost`), or the cost per bucket the store holds. */
  cost: TaskCost | ConsensusCosts;
}

/** A vote as shown: the commitment, and what it committed to only once it is revealed. */
export function voteJson(v: ConsensusVoteRow): Record<string, unknown> {
  const revealed = v.revealed_at !== null;
  return {
    round: v.round,
    voter_id: v.voter_id,
    commitment: v.commitment,
    committed_at: iso(v.committed_at),
    revealed,
    ...(revealed
      ? {
          candidate_hash: v.candidate_hash,
          vote: v.vote,
          salt: v.salt,
          revealed_at: iso(v.revealed_at),
          event: v.reveal_event_seq === null ? null : { seq: v.reveal_event_seq, hash: v.reveal_event_hash },
        }
      : {}),
  };
}

/** The reveals of each round counted per candidate hash (`approve` votes), as the tally rule counts them. */
export function tallyJson(votes: readonly ConsensusVoteRow[]): Array<{ round: number; commits: number; reveals: number; approvals: Record<string, number> }> {
  const rounds = new Map<number, { round: number; commits: number; reveals: number; approvals: Record<string, number> }>();
  for (const v of votes) {
    const r = rounds.get(v.round) ?? { round: v.round, commits: 0, reveals: 0, approvals: {} };
    rounds.set(v.round, r);
    r.commits++;
    if (v.revealed_at === null) continue;
    r.reveals++;
    if (v.vote === 'approve' && v.candidate_hash) r.approvals[v.candidate_hash] = (r.approvals[v.candidate_hash] ?? 0) + 1;
  }
  return [...rounds.values()].sort((a, b) => a.round - b.round);
}

/** The cost by bucket, with the task's budget and the buckets used up. */
export function costJson(task: ConsensusTaskRow, cost: TaskCost | ConsensusCosts): TaskCost {
  if ('total_usd' in cost) return cost;
  const budget = task.contract.budget ?? {};
  const exhausted = BUDGET_BUCKETS.filter((b: BudgetBucket) => budget[b] !== undefined && cost[b] >= (budget[b] ?? Infinity));
  return { task_id: task.task_id, explore_usd: cost.explore, verify_usd: cost.verify, finalize_usd: cost.finalize, total_usd: cost.explore + cost.verify + cost.finalize, budget, exhausted };
}

/** The whole document of one task. */
export function taskJson(p: TaskParts): Record<string, unknown> {
  const t = p.task;
  return {
    ...taskSummaryJson(t),
    explore_round: t.explore_round,
    round_started_at: iso(t.round_started_at),
    contract: t.contract,
    members: t.members,
    candidates: p.candidates.map((c) => ({
      candidate_hash: c.candidate_hash,
      proposer_id: c.proposer_id,
      round: c.round,
      output: c.output,
      output_bytes: c.output_bytes,
      evidence: c.evidence,
      cost_usd: c.cost_usd,
      signature: c.signature,
      event: { seq: c.event_seq, hash: c.event_hash },
      created_at: iso(c.created_at),
    })),
    verifier_results: p.results.map((r) => ({
      candidate_hash: r.candidate_hash,
      verifier_id: r.verifier_id,
      policy_id: r.policy_id,
      status: r.status,
      reason_codes: r.reason_codes.map(reasonJson),
      reason: r.reason,
      score: r.score,
      evidence: r.evidence,
      cost_usd: r.cost_usd,
      signature: r.signature,
      created_at: iso(r.created_at),
    })),
    votes: p.votes.map(voteJson),
    tally: tallyJson(p.votes),
    decision: p.decision
      ? {
          round: p.decision.round,
          candidate_hash: p.decision.candidate_hash,
          output: p.decision.output,
          tally: p.decision.tally,
          quorum: p.decision.quorum,
          proof: p.decision.proof,
          committed_at: iso(p.decision.committed_at),
          finalized_at: iso(p.decision.finalized_at),
          finalized: p.decision.finalized_at !== null,
        }
      : null,
    cost: costJson(t, p.cost),
  };
}
