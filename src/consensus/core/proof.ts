/**
 * The decision record and its proof: what the engine writes in DECISION_COMMITTED, and the check
 * anyone can run against the run's log (`swarm log verify`, `swarm task decision`). The proof names
 * the winner's first CANDIDATE_PROPOSED and every VOTE_REVEAL of the deciding round by seq and hash;
 * the chain's hashes make those events tamper-evident, and the members' signatures make each reveal
 * attributable, so the tally can be recomputed and checked against the decision rule. Pure.
 *
 * @example
 *   const d = buildDecision(state, outcome.candidate_hash, Date.now());
 *   tx.appendEvent(runId, stepId, 'DECISION_COMMITTED', decisionCommittedEvent(d).data);
 *   checkDecisionProof(await store.listEvents(runId), d)  // [] when it holds
 */
import { canonicalJson } from '../../core/canonical-json.js';
import { candidateHash, commitmentHash } from './crypto.js';
import type { TaskCreatedData } from './events.js';
import type { ProjectableEvent, TaskState } from './projection.js';
import { roundReveals } from './projection.js';
import type { Decision, VoteReveal } from './types.js';
import { checkSigned, decide, tally } from './votes.js';
import { majority } from './contract.js';

/** The decision for `candidate_hash` in the task's current round (finalized_at null). */
export function buildDecision(s: TaskState, candidate_hash: string, now: number): Decision {
  const reveals = roundReveals(s);
  const candidate = s.candidates[candidate_hash];
  if (!candidate) throw new TypeError(`the task has no candidate ${candidate_hash}`);
  return {
    task_id: s.task_id,
    round: s.round,
    candidate_hash,
    output: candidate.output,
    tally: tally(reveals),
    quorum: s.contract.voting.quorum ?? majority(s.contract.voting.voters.length),
    proof: { candidate_event: candidate.event, reveal_events: reveals.map((r) => r.event) },
    committed_at: now,
    finalized_at: null,
  };
}

/**
 * The problems with a decision's proof against a run's log (empty when it holds): the events it names
 * exist with those hashes and are the task's; each reveal is signed by a voter of the task and matches
 * that voter's commitment of the round; the reveals' tally is the decision's and elects its candidate
 * under the decision rule; a given output hashes to the candidate.
 */
export function checkDecisionProof(events: readonly ProjectableEvent[], d: Pick<Decision, 'task_id' | 'round' | 'candidate_hash' | 'tally' | 'quorum' | 'proof'> & { output?: unknown }): string[] {
  const problems: string[] = [];
  const bySeq = new Map(events.map((e) => [e.seq, e]));
  const createdEv = events.find((e) => e.type === 'TASK_CREATED' && e.data['task_id'] === d.task_id);
  if (!createdEv) return [`the log has no TASK_CREATED for task ${d.task_id}`];
  const members = (createdEv.data as unknown as TaskCreatedData).members;
  const named = (ref: { seq: number; hash: string }, type: string, what: string): ProjectableEvent | undefined => {
    const e = bySeq.get(ref.seq);
    if (!e) problems.push(`${what}: no event at seq ${ref.seq}`);
    else if (e.hash !== ref.hash) problems.push(`${what}: the event at seq ${ref.seq} has another hash`);
    else if (e.type !== type) problems.push(`${what}: the event at seq ${ref.seq} is ${e.type}, not ${type}`);
    else if (e.data['task_id'] !== d.task_id) problems.push(`${what}: the event at seq ${ref.seq} is of another task`);
    else return e;
    return undefined;
  };
  const cand = named(d.proof.candidate_event, 'CANDIDATE_PROPOSED', 'candidate_event');
  if (cand && cand.data['candidate_hash'] !== d.candidate_hash) problems.push(`candidate_event: proposes ${String(cand.data['candidate_hash'])}, not ${d.candidate_hash}`);
  if ('output' in d && d.output !== undefined && candidateHash(d.output) !== d.candidate_hash) problems.push('the output does not hash to candidate_hash');
  const reveals: VoteReveal[] = [];
  const voters = new Set<string>();
  d.proof.reveal_events.forEach((ref, i) => {
    const e = named(ref, 'VOTE_REVEAL', `reveal_events[${i}]`);
    if (!e) return;
    const r = e.data as unknown as VoteReveal;
    if (r.round !== d.round) problems.push(`reveal_events[${i}]: is of round ${r.round}, not ${d.round}`);
    if (voters.has(r.voter_id)) problems.push(`reveal_events[${i}]: a second reveal of '${r.voter_id}'`);
    voters.add(r.voter_id);
    const signed = checkSigned(members, 'voter', 'vote_reveal', r as unknown as Record<string, unknown>);
    if (!signed.ok) problems.push(`reveal_events[${i}]: ${signed.name}: ${signed.message}`);
    const commit = events.find((c) => c.type === 'VOTE_COMMIT' && c.seq < e.seq && c.data['task_id'] === d.task_id && c.data['round'] === r.round && c.data['voter_id'] === r.voter_id);
    if (!commit) problems.push(`reveal_events[${i}]: '${r.voter_id}' has no commitment in round ${r.round} before it`);
    else if (commit.data['commitment'] !== commitmentHash(r.candidate_hash, r.vote, r.salt)) problems.push(`reveal_events[${i}]: does not match the commitment of '${r.voter_id}'`);
    reveals.push(r);
  });
  const recomputed = tally(reveals);
  if (canonicalJson(recomputed) !== canonicalJson(d.tally)) problems.push(`the tally ${canonicalJson(d.tally)} is not the reveals' ${canonicalJson(recomputed)}`);
  const quorum = (createdEv.data as unknown as TaskCreatedData).contract?.voting?.quorum;
  if (quorum !== undefined && quorum !== d.quorum) problems.push(`quorum ${d.quorum} is not the contract's ${quorum}`);
  const outcome = decide(recomputed, d.quorum);
  if (!outcome.decided) problems.push(`the reveals elect no candidate: ${outcome.name}: ${outcome.message}`);
  else if (outcome.candidate_hash !== d.candidate_hash) problems.push(`the reveals elect ${outcome.candidate_hash}, not ${d.candidate_hash}`);
  return problems;
}
