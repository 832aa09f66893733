/**
 * From a finalized task to the knowledge store's rows, and from the rows to an export line. Pure.
 *
 * @example
 *   const write = buildDecisionWrite({ decision, task, candidates, results, cost }, Date.now());
 *   const line = exportLine(write.decision, write.proposals);
 */
import { UserError } from '../../core/errors.js';
import type { KnowledgeDecisionRow, KnowledgeDecisionWrite, KnowledgeProposalRow } from '../../store/knowledge-types.js';
import type { EvidenceRef, VerifierResult } from '../core/types.js';
import type { FinalizedTask } from './index.js';
import { inputsHash, taskText } from './text.js';

/** One line of `swarm knowledge export` (JSONL): a decision with its evidence, cost and the proposers' records. */
export interface KnowledgeExportLine {
  kind: 'swarm.knowledge.decision';
  version: 1;
  task_id: string;
  task_type: string;
  run_id: string | null;
  inputs_hash: string;
  inputs: Record<string, unknown>;
  text: string;
  candidate_hash: string;
  output: unknown;
  evidence: EvidenceRef[];
  decision: Record<string, unknown>;
  cost: KnowledgeDecisionRow['cost'];
  decided_at: string;
  proposers: Array<Omit<KnowledgeProposalRow, 'task_id' | 'task_type'>>;
}

/** A candidate's verifier results summed up: failed beats inconclusive beats passed. */
export function verificationOf(results: readonly VerifierResult[]): KnowledgeProposalRow['verification'] {
  if (results.some((r) => r.status === 'failed')) return 'failed';
  if (results.some((r) => r.status === 'inconclusive')) return 'inconclusive';
  if (results.some((r) => r.status === 'passed')) return 'passed';
  return 'unverified';
}

function uniqueEvidence(refs: readonly EvidenceRef[]): EvidenceRef[] {
  const seen = new Set<string>();
  return refs.filter((r) => {
    const k = `${r.digest}\u0000${r.uri}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The rows of a finalized task; UserError KNOWLEDGE_RECORD_INVALID when its parts disagree. */
export function buildDecisionWrite(f: FinalizedTask, recordedAt: number): KnowledgeDecisionWrite {
  const { decision, task } = f;
  if (decision.task_id !== task.task_id) {
    throw new UserError('KNOWLEDGE_RECORD_INVALID', `the decision is of task ${decision.task_id}, not of task ${task.task_id}`, { task_id: task.task_id });
  }
  if (!task.task_type) throw new UserError('KNOWLEDGE_RECORD_INVALID', `task ${task.task_id} has no task_type`, { task_id: task.task_id });
  const winner = f.candidates.find((c) => c.candidate_hash === decision.candidate_hash);
  const onWinner = f.results.filter((r) => r.candidate_hash === decision.candidate_hash);
  const row: KnowledgeDecisionRow = {
    task_id: task.task_id,
    task_type: task.task_type,
    run_id: task.run_id,
    inputs_hash: inputsHash(task.inputs),
    inputs: task.inputs,
    text: taskText(task.inputs),
    candidate_hash: decision.candidate_hash,
    output: decision.output ?? winner?.output ?? null,
    evidence: uniqueEvidence([...(winner?.evidence ?? []), ...onWinner.flatMap((r) => r.evidence)]),
    decision: {
      round: decision.round,
      candidate_hash: decision.candidate_hash,
      tally: decision.tally,
      quorum: decision.quorum,
      proof: decision.proof,
      committed_at: decision.committed_at,
      finalized_at: decision.finalized_at,
      verifier_results: onWinner.map((r) => ({ verifier_id: r.verifier_id, policy_id: r.policy_id, status: r.status, reason_codes: r.reason_codes, score: r.score })),
    },
    cost: f.cost,
    decided_at: decision.finalized_at ?? decision.committed_at,
    recorded_at: recordedAt,
  };
  const proposals = new Map<string, KnowledgeProposalRow>();
  for (const c of f.candidates) {
    if (c.task_id !== task.task_id) continue;
    const key = `${c.proposer_id}\u0000${c.round}\u0000${c.candidate_hash}`;
    if (proposals.has(key)) continue;
    proposals.set(key, {
      task_id: task.task_id,
      task_type: task.task_type,
      proposer_id: c.proposer_id,
      candidate_hash: c.candidate_hash,
      round: c.round,
      won: c.candidate_hash === decision.candidate_hash,
      verification: verificationOf(f.results.filter((r) => r.candidate_hash === c.candidate_hash)),
      cost_usd: c.cost_usd,
    });
  }
  return { decision: row, proposals: [...proposals.values()] };
}

/** A decision and its proposals as one export line. */
export function exportLine(d: KnowledgeDecisionRow, proposals: readonly KnowledgeProposalRow[]): KnowledgeExportLine {
  return {
    kind: 'swarm.knowledge.decision',
    version: 1,
    task_id: d.task_id,
    task_type: d.task_type,
    run_id: d.run_id,
    inputs_hash: d.inputs_hash,
    inputs: d.inputs,
    text: d.text,
    candidate_hash: d.candidate_hash,
    output: d.output,
    evidence: d.evidence,
    decision: d.decision,
    cost: d.cost,
    decided_at: new Date(d.decided_at).toISOString(),
    proposers: proposals
      .filter((p) => p.task_id === d.task_id)
      .map((p) => ({ proposer_id: p.proposer_id, candidate_hash: p.candidate_hash, round: p.round, won: p.won, verification: p.verification, cost_usd: p.cost_usd })),
  };
}
