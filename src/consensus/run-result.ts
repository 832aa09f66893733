/**
 * A run's result when it has consensus steps (source 002's run-level aggregation): `final_decision`
 * and `final_answer` of its last finalized consensus step, and each consensus step's conclusion.
 * Derived from the steps' rows (their outputs hold the decision), so every run shows it the same
 * way: `swarm runs show`, `--json` and the API's run document.
 *
 * @example
 *   consensusResult(details.steps)
 *   // { final_decision: { candidate_hash, tally, quorum, proof }, final_answer: { answer: 4 }, conclusions: [{ step: 'agree', task_id, status: 'finalized', … }] }
 */
import type { StepRecord } from '../store/types.js';

export interface ConsensusConclusion {
  step: string;
  task_id: string | null;
  /** The task's status (`finalized`), or the step's when it did not finish (`running`, `failed`, …). */
  status: string;
  candidate_hash: string | null;
  error: string | null;
}

export interface ConsensusRunResult {
  final_decision: unknown;
  final_answer: unknown;
  conclusions: ConsensusConclusion[];
}

/** The run's consensus result, or undefined when it has no consensus step. */
export function consensusResult(steps: readonly Pick<StepRecord, 'step_id' | 'agent_id' | 'status' | 'outputs' | 'error' | 'completed_at'>[]): ConsensusRunResult | undefined {
  const mine = steps.filter((s) => s.agent_id === 'kind:consensus');
  if (mine.length === 0) return undefined;
  const conclusions = mine.map((s) => {
    const o = (s.outputs ?? {}) as { task_id?: string; status?: string; final_decision?: { candidate_hash?: string } };
    return { step: s.step_id, task_id: o.task_id ?? null, status: s.status === 'completed' ? (o.status ?? 'completed') : s.status, candidate_hash: o.final_decision?.candidate_hash ?? null, error: s.error ?? null };
  });
  const last = mine.filter((s) => s.status === 'completed').sort((a, b) => (a.completed_at ?? 0) - (b.completed_at ?? 0)).pop();
  const o = (last?.outputs ?? {}) as { final_decision?: unknown; final_answer?: unknown };
  return { final_decision: o.final_decision ?? null, final_answer: o.final_answer ?? null, conclusions };
}
