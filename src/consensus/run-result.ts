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

/**
 * The lines `swarm runs show` (text) prints for a run's shared inputs and its consensus result:
 * the decision (candidate, round, approvals and quorum), the answer, and each consensus step's
 * conclusion. `fit` shortens a long JSON value for the terminal. No lines for a run with neither.
 *
 * @example
 *   consensusRunLines(consensusResult(d.steps), '{"lang":"en"}', (s) => s)
 *   // ['shared inputs: {"lang":"en"}', 'final decision: 3f2a…c81e (round 1, 3 approvals, quorum 2)', 'final answer: {"answer":4}', "  step 'agree': finalized, candidate 3f2a…c81e"]
 */
export function consensusRunLines(result: ConsensusRunResult | undefined, sharedInputsJson: string | null | undefined, fit: (text: string) => string): string[] {
  const out: string[] = [];
  if (sharedInputsJson) out.push(`shared inputs: ${fit(sharedInputsJson)}`);
  if (!result) return out;
  const d = result.final_decision as { candidate_hash?: string; round?: number; tally?: Record<string, number>; quorum?: number } | null;
  if (d?.candidate_hash) {
    const votes = d.tally?.[d.candidate_hash];
    out.push(`final decision: ${short(d.candidate_hash)} (round ${d.round ?? '?'}${votes !== undefined ? `, ${votes} approval${votes === 1 ? '' : 's'}` : ''}${d.quorum !== undefined ? `, quorum ${d.quorum}` : ''})`);
    out.push(`final answer: ${fit(JSON.stringify(result.final_answer))}`);
  } else out.push('final decision: none');
  for (const c of result.conclusions) {
    out.push(`  step '${c.step}': ${c.status}${c.candidate_hash ? `, candidate ${short(c.candidate_hash)}` : ''}${c.error ? `: ${fit(c.error)}` : ''}`);
  }
  return out;
}

function short(hash: string): string {
  return hash.length > 16 ? `${hash.slice(0, 4)}…${hash.slice(-4)}` : hash;
}
