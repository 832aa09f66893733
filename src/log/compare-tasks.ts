/**
 * The consensus tasks of a run, as its log says they are (core's `projectTasks`, pure), set against
 * the consensus tables: each task's status and round, every proposal, verifier result, commitment and
 * reveal with the event that recorded it, the decision and its proof, and the cost per bucket.
 *
 * @example
 *   const diffs = compareTasks(projectTasks(events), await storedTasks(store, runId));
 */
import type { TaskState } from '../consensus/core/projection.js';
import type { ConsensusCandidateRow, ConsensusCosts, ConsensusDecisionRow, ConsensusResultRow, ConsensusTaskRow, ConsensusVoteRow } from '../store/consensus-types.js';
import type { Difference } from './compare.js';

/** One task's rows, as the store holds them. */
export interface StoredTask {
  task: ConsensusTaskRow;
  candidates: readonly ConsensusCandidateRow[];
  results: readonly ConsensusResultRow[];
  votes: readonly ConsensusVoteRow[];
  decision: ConsensusDecisionRow | undefined;
  costs: ConsensusCosts;
}

const key = (...parts: Array<string | number>): string => parts.join(' ');
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Every difference between the tasks the log projects and the stored ones (empty when they agree). */
export function compareTasks(projected: ReadonlyMap<string, TaskState>, stored: readonly StoredTask[]): Difference[] {
  const out: Difference[] = [];
  const rows = new Map(stored.map((s) => [s.task.task_id, s]));
  for (const [id, p] of projected) {
    const subject = `task '${id}'`;
    const s = rows.get(id);
    if (!s) {
      out.push({ subject, field: 'row', replayed: p.status, stored: null });
      continue;
    }
    const field = (name: string, a: unknown, b: unknown): void => {
      if (!same(a ?? null, b ?? null)) out.push({ subject, field: name, replayed: a ?? null, stored: b ?? null });
    };
    field('status', p.status, s.task.status);
    field('round', p.round, s.task.round);
    if (p.failure) field('reason_code', p.failure.reason_code, s.task.reason_code);

    // Proposals: one row per proposer and round, naming its candidate and its CANDIDATE_PROPOSED event.
    const proposals = new Map<string, unknown>();
    for (const h of p.candidate_order) for (const q of p.candidates[h]?.proposals ?? []) proposals.set(key(q.proposer_id, q.round), { candidate_hash: h, event_seq: q.event.seq, event_hash: q.event.hash });
    const candRows = new Map(s.candidates.map((c) => [key(c.proposer_id, c.round), { candidate_hash: c.candidate_hash, event_seq: c.event_seq, event_hash: c.event_hash }]));
    for (const [k, v] of proposals) field(`proposal ${k}`, v, candRows.get(k));
    for (const [k, v] of candRows) if (!proposals.has(k)) field(`proposal ${k}`, null, v);

    const results = new Map(p.verifier_results.map((r) => [key(r.candidate_hash, r.verifier_id), r.status]));
    const resultRows = new Map(s.results.map((r) => [key(r.candidate_hash, r.verifier_id), r.status]));
    for (const [k, v] of results) field(`verifier result ${k}`, v, resultRows.get(k));
    for (const [k, v] of resultRows) if (!results.has(k)) field(`verifier result ${k}`, null, v);

    // Votes: each commitment, and what its reveal (if any) says.
    const votes = new Map<string, Record<string, unknown>>();
    for (const c of p.commits) votes.set(key(c.voter_id, c.round), { commitment: c.commitment, candidate_hash: null, vote: null });
    for (const r of p.reveals) {
      const v = votes.get(key(r.voter_id, r.round));
      if (v) Object.assign(v, { candidate_hash: r.candidate_hash, vote: r.vote });
    }
    const voteRows = new Map(s.votes.map((v) => [key(v.voter_id, v.round), { commitment: v.commitment, candidate_hash: v.candidate_hash, vote: v.vote }]));
    for (const [k, v] of votes) field(`vote ${k}`, v, voteRows.get(k));
    for (const [k, v] of voteRows) if (!votes.has(k)) field(`vote ${k}`, null, v);

    const decision = (d: { candidate_hash: string; round: number; proof: unknown; finalized_at: number | null } | null | undefined): unknown =>
      d ? { candidate_hash: d.candidate_hash, round: d.round, proof: d.proof, finalized: d.finalized_at !== null } : null;
    field('decision', decision(p.decision), decision(s.decision));

    for (const b of ['explore', 'verify', 'finalize'] as const) {
      if (Math.abs(p.cost[b] - s.costs[b]) > 1e-9) out.push({ subject, field: `cost ${b}`, replayed: p.cost[b], stored: s.costs[b] });
    }
  }
  for (const [id, s] of rows) if (!projected.has(id)) out.push({ subject: `task '${id}'`, field: 'row', replayed: null, stored: s.task.status });
  return out;
}
