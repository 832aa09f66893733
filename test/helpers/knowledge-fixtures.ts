/**
 * Finalized consensus tasks built by hand for the knowledge store's tests (no engine needed), and a
 * deterministic offline embedder.
 */
import { candidateHash } from '../../src/consensus/core/crypto.js';
import type { Candidate, Decision, EvidenceRef, TaskCost, VerificationStatus, VerifierResult } from '../../src/consensus/core/types.js';
import type { FinalizedTask } from '../../src/consensus/knowledge/index.js';
import type { Embedder } from '../../src/memory/embedder.js';
import { fakeEmbedding } from '../../src/testing/fake-embeddings.js';

export const fakeEmbedder = (id = 'fake/bag-of-words'): Embedder & { calls: number } => {
  const e = {
    id,
    calls: 0,
    embed: async (texts: readonly string[]) => {
      e.calls++;
      return texts.map((t) => fakeEmbedding(t));
    },
  };
  return e;
};

export interface ProposalSpec {
  proposer: string;
  output: unknown;
  /** Verifier statuses on this candidate (default: one passed). */
  verdicts?: VerificationStatus[];
  round?: number;
  cost?: number;
}

const ev = (name: string): EvidenceRef => ({ kind: 'inline', uri: `data:text/plain,${name}`, digest: `d-${name}`, size_bytes: name.length });

/**
 * A finalized task: the proposals given, the winner the one at `winner` (index), decided at `at`.
 *
 * @example
 *   finalized({ task_id: 't1', task_type: 'summary', inputs: { prompt: 'x' } }, [{ proposer: 'executor:a', output: { s: 1 } }], 0, 1000)
 */
export function finalized(task: { task_id: string; task_type: string; inputs: Record<string, unknown>; run_id?: string | null }, proposals: ProposalSpec[], winner: number, at: number): FinalizedTask {
  const candidates: Candidate[] = proposals.map((p) => ({
    task_id: task.task_id,
    candidate_hash: candidateHash(p.output),
    proposer_id: p.proposer,
    round: p.round ?? 1,
    output: p.output,
    evidence: [ev(`${p.proposer}-out`)],
    cost_usd: p.cost ?? 0.01,
    signature: 'sig',
  }));
  const results: VerifierResult[] = [];
  for (const [i, p] of proposals.entries()) {
    for (const [j, status] of (p.verdicts ?? ['passed']).entries()) {
      results.push({
        task_id: task.task_id,
        candidate_hash: (candidates[i] as Candidate).candidate_hash,
        verifier_id: `verifier:${j}`,
        policy_id: 'vp.schema_only.v1',
        status,
        reason_codes: status === 'passed' ? [] : [1001],
        score: status === 'passed' ? 1 : 0,
        evidence: [ev(`check-${i}-${j}`)],
        cost_usd: 0.001,
        signature: 'sig',
      });
    }
  }
  const win = candidates[winner] as Candidate;
  const decision: Decision = {
    task_id: task.task_id,
    round: 1,
    candidate_hash: win.candidate_hash,
    output: win.output,
    tally: { [win.candidate_hash]: 2 },
    quorum: 2,
    proof: { candidate_event: { seq: 3, hash: 'h3' }, reveal_events: [{ seq: 9, hash: 'h9' }, { seq: 10, hash: 'h10' }] },
    committed_at: at - 10,
    finalized_at: at,
  };
  const cost: TaskCost = { task_id: task.task_id, explore_usd: 0.03, verify_usd: 0.003, finalize_usd: 0, total_usd: 0.033, budget: { explore: 1 }, exhausted: [] };
  return { decision, task: { task_id: task.task_id, task_type: task.task_type, inputs: task.inputs, run_id: task.run_id ?? `run-${task.task_id}` }, candidates, results, cost };
}
