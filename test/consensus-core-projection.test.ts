/**
 * A task's state folded from a hand-built event list (projection.ts): status through the lifecycle,
 * candidates (inline and by reference), verifier results, commits and reveals per round, a retried
 * round, the decision and its proof (and the proof's tampering), cost per bucket, and what a final
 * task still takes. Also the event builders and payload caps, stage budgets and explore controls.
 */
import { describe, expect, it } from 'vitest';
import { loadTaskContract } from '../src/consensus/core/contract.js';
import { candidateHash, commitmentHash, generateIdentity } from '../src/consensus/core/crypto.js';
import * as ev from '../src/consensus/core/events.js';
import { admitCandidate, exploreDecision, newHashesPerRound } from '../src/consensus/core/explore.js';
import { fitsEventPayload, MAX_EVENT_PAYLOAD_BYTES, MAX_STRUCTURED_SUMMARY_BYTES, payloadBytes, truncateSummary } from '../src/consensus/core/limits.js';
import { projectTask, projectTasks, recordContext, roundReveals, taskCost, voteContext, type ProjectableEvent } from '../src/consensus/core/projection.js';
import { buildDecision, checkDecisionProof } from '../src/consensus/core/proof.js';
import { ReasonCode } from '../src/consensus/core/reason-codes.js';
import { signAs } from '../src/consensus/core/signed.js';
import { addSpend, emptySpend, exhaustedBuckets, gateStage } from '../src/consensus/core/stage-budget.js';
import type { Candidate, Member, VoteReveal } from '../src/consensus/core/types.js';
import { checkReveal, decide, tally } from '../src/consensus/core/votes.js';

const keys = { p1: generateIdentity(), p2: generateIdentity(), ver: generateIdentity(), v1: generateIdentity(), v2: generateIdentity(), v3: generateIdentity() };
const members: Member[] = [
  { role: 'proposer', id: 'p1', public_key: keys.p1.publicKey },
  { role: 'proposer', id: 'p2', public_key: keys.p2.publicKey },
  { role: 'verifier', id: 'ver', public_key: keys.ver.publicKey },
  ...(['v1', 'v2', 'v3'] as const).map((id) => ({ role: 'voter' as const, id, public_key: keys[id].publicKey })),
];
const contract = loadTaskContract(
  {
    task_type: 'answer',
    inputs: { q: 'six times seven' },
    output_schema: { type: 'object' },
    proposers: [{ agent: 'a', id: 'p1' }, { agent: 'b', id: 'p2' }],
    verification: { policy: 'vp.schema_only.v1', verifiers: [{ local: true, id: 'ver' }] },
    voting: { voters: [{ id: 'v1' }, { id: 'v2' }, { id: 'v3' }], reveal_deadline: '30s' },
    budget: { explore: 1, verify: 0.5 },
  },
  'task.json',
);

/** A log under construction: seq from 1, a fake hash per event (the projection only carries them). */
class Log {
  readonly events: ProjectableEvent[] = [];
  push(e: { type: string; data: object }, at: number, taskId?: string): ProjectableEvent {
    const data = { ...(e.data as Record<string, unknown>), ...(taskId ? { task_id: taskId } : {}) };
    const x = { seq: this.events.length + 1, hash: `h${this.events.length + 1}`, type: e.type, data, at };
    this.events.push(x);
    return x;
  }
}

function candidate(proposer: 'p1' | 'p2', output: unknown, round = 1, cost = 0.1): Candidate {
  const c: Candidate = { task_id: 'T', candidate_hash: candidateHash(output), proposer_id: proposer, round, output, evidence: [], cost_usd: cost, signature: '' };
  c.signature = signAs(keys[proposer].privateKey, 'candidate', c as unknown as Record<string, unknown>);
  return c;
}

function vote(voter: 'v1' | 'v2' | 'v3', hash: string, round: number, v: 'approve' | 'reject' = 'approve'): { commit: ev.VoteCommitData; reveal: VoteReveal } {
  const salt = `salt-${voter}-${round}`;
  const commit = { task_id: 'T', round, voter_id: voter, commitment: commitmentHash(hash, v, salt), signature: '' };
  commit.signature = signAs(keys[voter].privateKey, 'vote_commit', commit);
  const reveal: VoteReveal = { task_id: 'T', round, voter_id: voter, candidate_hash: hash, vote: v, salt, signature: '' };
  reveal.signature = signAs(keys[voter].privateKey, 'vote_reveal', reveal as unknown as Record<string, unknown>);
  return { commit, reveal };
}

const A = { answer: 42 };
const B = { answer: 41 };
const HA = candidateHash(A);
const HB = candidateHash(B);

/** The whole lifecycle, with a retried vote round; returns the log at each point of interest. */
function lifecycle(): { log: Log; afterRound1: number } {
  const log = new Log();
  log.push({ type: 'RUN_STARTED', data: {} }, 0);
  log.push(ev.taskCreatedEvent({ task_id: 'T', contract, members, inputs_hash: 'ih', created_at: 10, expires_at: 600_010 }), 10);
  log.push(ev.taskCreatedEvent({ task_id: 'OTHER', contract, members, inputs_hash: 'ih', created_at: 11, expires_at: 600_011 }), 11);
  log.push(ev.taskClaimedEvent({ task_id: 'T', stage: 'propose', round: 1, worker: 'w1' }), 20);
  log.push(ev.candidateProposedEvent(candidate('p1', A)), 21);
  log.push(ev.candidateProposedEvent(candidate('p2', B, 1, 0.2)), 22);
  log.push(ev.candidateProposedEvent({ ...candidate('p1', A), task_id: 'OTHER' }), 23);
  log.push(ev.taskStageStoppedEvent({ task_id: 'T', stage: 'propose', reason_code: ReasonCode.OK, reason: 'max rounds' }), 24);
  log.push(ev.taskClaimedEvent({ task_id: 'T', stage: 'verify', round: 1 }), 30);
  log.push(ev.evidenceAddedEvent({ task_id: 'T', candidate_hash: HA, member_id: 'ver', evidence: [{ kind: 'url', uri: 'https://e/1', digest: 'd1' }] }), 31);
  log.push(ev.evidenceAvailableEvent({ task_id: 'T', candidate_hash: HA, available: ['d1'], unreachable: [] }), 32);
  for (const [h, status, cost] of [[HA, 'passed', 0.05], [HB, 'failed', 0.05]] as const) {
    const r = { task_id: 'T', candidate_hash: h, verifier_id: 'ver', policy_id: 'vp.schema_only.v1', status, reason_codes: status === 'failed' ? [1001] : [], score: status === 'passed' ? 1 : 0, evidence: [], cost_usd: cost, signature: '' };
    r.signature = signAs(keys.ver.privateKey, 'verifier_result', r);
    log.push(ev.verifierResultEvent(r, status === 'failed' ? 'no' : undefined), 33);
  }
  log.push(ev.taskClaimedEvent({ task_id: 'T', stage: 'vote', round: 1 }), 40);
  // Round 1: v1 for A, v2 for B; v3 commits but never reveals.
  const r1 = [vote('v1', HA, 1), vote('v2', HB, 1), vote('v3', HA, 1)];
  for (const v of r1) log.push(ev.voteCommitEvent(v.commit, 0.01), 41);
  log.push(ev.voteRevealEvent(r1[0]!.reveal), 45);
  log.push(ev.voteRevealEvent(r1[1]!.reveal), 46);
  log.push(ev.taskInputRejectedEvent({ task_id: 'T', reason_code: ReasonCode.REVEAL_MISMATCH, reason: 'does not match', record_kind: 'vote_reveal', member_id: 'v3', round: 1 }), 47);
  const afterRound1 = log.events.length;
  log.push(ev.taskRetryScheduledEvent({ task_id: 'T', round: 2, reveals: 2, quorum: 2, reason_code: ReasonCode.QUORUM_NOT_REACHED }), 30_042);
  // Round 2: all for A.
  const r2 = [vote('v1', HA, 2), vote('v2', HA, 2), vote('v3', HA, 2)];
  for (const v of r2) log.push(ev.voteCommitEvent(v.commit), 30_050);
  for (const v of r2) log.push(ev.voteRevealEvent(v.reveal), 30_060);
  return { log, afterRound1 };
}

describe('projectTask', () => {
  it('folds a whole lifecycle, one task among others, with a retried round', () => {
    const { log, afterRound1 } = lifecycle();
    const mid = projectTask(log.events.slice(0, afterRound1), 'T');
    expect(mid).toMatchObject({ status: 'voting', round: 1, propose_round: 1, candidate_order: [HA, HB], round_opened_at: { 1: 41 } });
    expect(tally(roundReveals(mid!))).toEqual({ [HA]: 1, [HB]: 1 });
    expect(decide(tally(roundReveals(mid!)), 2)).toMatchObject({ decided: false, name: 'QUORUM_NOT_REACHED' });

    const s = projectTask(log.events, 'T')!;
    expect(s.status).toBe('voting');
    expect(s.round).toBe(2);
    expect(s.candidates[HA]).toMatchObject({ output: A, evidence: [{ uri: 'https://e/1' }], available: ['d1'], event: { seq: 5, hash: 'h5' } });
    expect(s.candidates[HA]?.proposals.map((p) => p.proposer_id)).toEqual(['p1']);
    expect(s.verifier_results.map((r) => [r.candidate_hash, r.status, r.reason])).toEqual([[HA, 'passed', undefined], [HB, 'failed', 'no']]);
    expect(s.commits).toHaveLength(6);
    expect(s.round_opened_at).toEqual({ 1: 41, 2: 30_050 });
    expect(roundReveals(s).map((r) => r.voter_id)).toEqual(['v1', 'v2', 'v3']);
    expect(s.retries).toEqual([{ round: 2, reveals: 2, quorum: 2, reason_code: ReasonCode.QUORUM_NOT_REACHED }]);
    expect(s.rejected.map((r) => r.reason_code)).toEqual([ReasonCode.REVEAL_MISMATCH]);
    expect(s.stopped).toHaveLength(1);
    expect(s.claims.map((c) => c.stage)).toEqual(['propose', 'verify', 'vote']);
    // The other task is its own; without an id, the first task created.
    expect(projectTask(log.events, 'OTHER')?.candidate_order).toEqual([HA]);
    expect(projectTask(log.events)?.task_id).toBe('T');
    expect([...projectTasks(log.events).keys()]).toEqual(['T', 'OTHER']);
    expect(projectTask(log.events, 'nope')).toBeUndefined();
    // Contexts for the rule checks.
    const vc = voteContext(s);
    expect(vc).toMatchObject({ status: 'voting', round: 2, round_opened_at: 30_050, reveal_deadline_ms: 30_000 });
    expect(checkReveal(vc, vote('v1', HA, 2).reveal, 30_070)).toMatchObject({ name: 'REVEAL_DUPLICATE', identical: true });
    expect(recordContext(s)).toMatchObject({ policy_id: 'vp.schema_only.v1', proposals: [{ proposer_id: 'p1', round: 1, candidate_hash: HA }, { proposer_id: 'p2', round: 1, candidate_hash: HB }] });
  });

  it('decision, proof, finalization; a final task takes no more state, only cost', () => {
    const { log } = lifecycle();
    const s = projectTask(log.events, 'T')!;
    const d = decide(tally(roundReveals(s)), 2);
    expect(d).toEqual({ decided: true, candidate_hash: HA, votes: 3 });
    const decision = buildDecision(s, HA, 40_000);
    expect(decision).toMatchObject({ round: 2, candidate_hash: HA, output: A, tally: { [HA]: 3 }, quorum: 2, proof: { candidate_event: { seq: 5, hash: 'h5' } }, finalized_at: null });
    expect(decision.proof.reveal_events).toHaveLength(3);
    expect(checkDecisionProof(log.events, decision)).toEqual([]);
    const committed = log.push(ev.decisionCommittedEvent(decision), 40_000);
    expect(projectTask(log.events, 'T')?.status).toBe('committed');
    log.push(ev.decisionFinalizedEvent({ task_id: 'T', round: 2, candidate_hash: HA, finalized_at: 40_001, decision_event: { seq: committed.seq, hash: committed.hash } }), 40_001);
    // After finality: a second decision, a late reveal, a retry and an expiry change nothing; a rejected late record's cost counts.
    log.push(ev.decisionCommittedEvent({ ...decision, candidate_hash: HB }), 40_002);
    log.push(ev.voteRevealEvent(vote('v1', HB, 3).reveal), 40_003);
    log.push(ev.taskRetryScheduledEvent({ task_id: 'T', round: 3, reveals: 0, quorum: 2, reason_code: 1400 }), 40_004);
    log.push(ev.taskExpiredEvent({ task_id: 'T', expires_at: 600_010, reason_code: ReasonCode.TASK_EXPIRED, reason: 'late' }), 40_005);
    log.push(ev.taskInputRejectedEvent({ task_id: 'T', reason_code: ReasonCode.ALREADY_FINALIZED, reason: 'final', record_kind: 'candidate', member_id: 'p2', cost_usd: 0.3 }), 40_006);
    const f = projectTask(log.events, 'T')!;
    expect(f.status).toBe('finalized');
    expect(f.decision).toMatchObject({ candidate_hash: HA, finalized_at: 40_001, committed_at: 40_000 });
    expect(f.decision_event).toEqual({ seq: committed.seq, hash: committed.hash });
    expect(f.round).toBe(2);
    expect(f.reveals).toHaveLength(5);
    expect(f.failure).toBeNull();
    expect(taskCost(f)).toEqual({ task_id: 'T', explore_usd: 0.1 + 0.2 + 0.3, verify_usd: 0.1, finalize_usd: 0.03, total_usd: 0.1 + 0.2 + 0.3 + 0.1 + 0.03, budget: { explore: 1, verify: 0.5 }, exhausted: [] });
  });

  it('the proof refuses tampering', () => {
    const { log } = lifecycle();
    const s = projectTask(log.events, 'T')!;
    const decision = buildDecision(s, HA, 1);
    expect(checkDecisionProof(log.events, { ...decision, candidate_hash: HB })).toEqual(expect.arrayContaining([`candidate_event: proposes ${HA}, not ${HB}`, `the reveals elect ${HA}, not ${HB}`]));
    expect(checkDecisionProof(log.events, { ...decision, tally: { [HA]: 4 } })).toEqual([`the tally {"${HA}":4} is not the reveals' {"${HA}":3}`]);
    expect(checkDecisionProof(log.events, { ...decision, quorum: 3 })).toEqual(['quorum 3 is not the contract\'s 2']);
    expect(checkDecisionProof(log.events, { ...decision, output: B })).toEqual(['the output does not hash to candidate_hash']);
    const [first, ...rest] = decision.proof.reveal_events;
    expect(checkDecisionProof(log.events, { ...decision, proof: { ...decision.proof, reveal_events: [{ ...first!, hash: 'forged' }, ...rest] } })[0]).toMatch(/^reveal_events\[0\]: the event at seq \d+ has another hash$/);
    // Counting a reveal twice, or a round-1 reveal in round 2.
    expect(checkDecisionProof(log.events, { ...decision, proof: { ...decision.proof, reveal_events: [first!, first!, ...rest] } })).toEqual(expect.arrayContaining(["reveal_events[1]: a second reveal of 'v1'"]));
    const round1 = projectTask(log.events, 'T')!.reveals.find((r) => r.round === 1)!;
    expect(checkDecisionProof(log.events, { ...decision, proof: { ...decision.proof, reveal_events: [round1.event, ...rest] } })).toEqual(expect.arrayContaining(['reveal_events[0]: is of round 1, not 2']));
    // A reveal whose data was rewritten in the log (signature no longer verifies, commitment no longer matches).
    const events = log.events.map((e) => (e.seq === first!.seq ? { ...e, data: { ...e.data, candidate_hash: HB } } : e));
    const problems = checkDecisionProof(events, decision);
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(/^reveal_events\[0\]: SIGNATURE_INVALID/), "reveal_events[0]: does not match the commitment of 'v1'"]));
    expect(checkDecisionProof([], decision)).toEqual(['the log has no TASK_CREATED for task T']);
  });

  it('expiry and failure are final and say why; budget stops mark the bucket exhausted', () => {
    const log = new Log();
    log.push(ev.taskCreatedEvent({ task_id: 'T', contract, members, inputs_hash: 'ih', created_at: 0, expires_at: 5 }), 0);
    log.push(ev.candidateProposedEvent(candidate('p1', A, 1, 1.5)), 1);
    log.push(ev.taskStageStoppedEvent({ task_id: 'T', stage: 'propose', bucket: 'explore', reason_code: ReasonCode.STAGE_BUDGET_EXHAUSTED, reason: 'x', spent_usd: 1.5, budget_usd: 1 }), 2);
    log.push(ev.taskStageStoppedEvent({ task_id: 'T', stage: 'verify', reason_code: ReasonCode.STAGE_BUDGET_EXHAUSTED, reason: 'y' }), 2);
    log.push(ev.taskExpiredEvent({ task_id: 'T', expires_at: 5, reason_code: ReasonCode.TASK_EXPIRED, reason: 'no decision by the expiry' }), 6);
    log.push(ev.taskFailedEvent({ task_id: 'T', reason_code: 1, reason: 'ignored' }), 7);
    const s = projectTask(log.events)!;
    expect(s.status).toBe('expired');
    expect(s.failure).toEqual({ reason_code: ReasonCode.TASK_EXPIRED, reason: 'no decision by the expiry' });
    expect(taskCost(s).exhausted.sort()).toEqual(['explore', 'verify']);
    const failed = new Log();
    failed.push(ev.taskCreatedEvent({ task_id: 'T', contract, members, inputs_hash: 'ih', created_at: 0, expires_at: 5 }), 0);
    failed.push(ev.taskFailedEvent({ task_id: 'T', reason_code: ReasonCode.NO_VERIFIED_CANDIDATE, reason: 'none passed' }), 1);
    expect(projectTask(failed.events)).toMatchObject({ status: 'failed', failure: { reason_code: ReasonCode.NO_VERIFIED_CANDIDATE } });
    // Knowledge events are recorded.
    failed.push(ev.knowledgeHitEvent({ task_id: 'T', hit_type: 'EXACT', decision_task_id: 'old', candidate_hash: HA }), 2);
    failed.push(ev.reuseRejectRecordedEvent({ task_id: 'T', hit_type: 'SIMILAR', decision_task_id: 'old2', candidate_hash: HB, reason_code: ReasonCode.REUSE_BLACKLISTED, reason: 'blacklisted' }), 3);
    expect(projectTask(failed.events)).toMatchObject({ knowledge_hits: [{ decision_task_id: 'old' }], reuse_rejected: [{ decision_task_id: 'old2' }] });
  });
});

describe('event builders and payload caps', () => {
  it('a large output travels by reference; reasons are cut to the summary cap', () => {
    const big = { text: 'x'.repeat(MAX_EVENT_PAYLOAD_BYTES) };
    const e = ev.candidateProposedEvent(candidate('p1', big));
    expect('output' in e.data).toBe(false);
    expect(e.data.output_ref).toEqual({ hash: candidateHash(big), size_bytes: payloadBytes(big) });
    expect(fitsEventPayload(e.data)).toBe(true);
    const small = ev.candidateProposedEvent(candidate('p1', A));
    expect(small.data.output).toEqual(A);
    expect(small.data.output_ref).toBeUndefined();
    const d = ev.decisionCommittedEvent({ task_id: 'T', round: 1, candidate_hash: candidateHash(big), output: big, tally: {}, quorum: 1, proof: { candidate_event: { seq: 1, hash: 'h' }, reveal_events: [] }, committed_at: 1, finalized_at: null });
    expect(d.data.output_ref?.size_bytes).toBe(payloadBytes(big));
    expect('finalized_at' in d.data).toBe(false);
    const long = 'é'.repeat(MAX_STRUCTURED_SUMMARY_BYTES);
    const cut = ev.taskFailedEvent({ task_id: 'T', reason_code: 1, reason: long }).data.reason;
    expect(Buffer.byteLength(cut, 'utf8')).toBeLessThanOrEqual(MAX_STRUCTURED_SUMMARY_BYTES);
    expect(cut.endsWith('…')).toBe(true);
    expect(truncateSummary('short')).toBe('short');
    expect(truncateSummary('😀😀😀', 9)).toBe('😀…');
    expect(MAX_EVENT_PAYLOAD_BYTES).toBe(65536);
    expect(MAX_STRUCTURED_SUMMARY_BYTES).toBe(4096);
    expect(ev.isConsensusEventType('VOTE_REVEAL')).toBe(true);
    expect(ev.isConsensusEventType('STEP_STARTED')).toBe(false);
    expect(ev.eventTaskId({ type: 'VOTE_REVEAL', data: { task_id: 'T' } })).toBe('T');
    expect(ev.CONSENSUS_EVENT_TYPES).toHaveLength(17);
  });
});

describe('stage budgets', () => {
  it('gate each stage by its bucket', () => {
    let spent = emptySpend();
    expect(gateStage({ explore: 0.3 }, spent, 'propose')).toEqual({ ok: true, bucket: 'explore', remaining_usd: 0.3 });
    spent = addSpend(spent, 'explore', 0.2);
    expect(gateStage({ explore: 0.3 }, spent, 'propose', 0.05)).toMatchObject({ ok: true });
    expect(gateStage({ explore: 0.3 }, spent, 'propose', 0.2)).toMatchObject({ ok: false, bucket: 'explore', code: ReasonCode.STAGE_BUDGET_EXHAUSTED, spent_usd: 0.2, budget_usd: 0.3 });
    spent = addSpend(spent, 'explore', 0.1);
    const stop = gateStage({ explore: 0.3 }, spent, 'propose');
    expect(stop).toMatchObject({ ok: false, reason: 'the explore budget is exhausted: spent $0.3000 of $0.3000' });
    // vote and finalize share the finalize bucket; a bucket of 0 admits nothing; no budget is unlimited.
    expect(gateStage({ finalize: 0 }, emptySpend(), 'vote')).toMatchObject({ ok: false, bucket: 'finalize' });
    expect(gateStage(undefined, spent, 'verify', 1e9)).toEqual({ ok: true, bucket: 'verify', remaining_usd: null });
    expect(addSpend(emptySpend(), 'verify', -5).verify).toBe(0);
    expect(exhaustedBuckets({ explore: 0.3, verify: 1 }, spent)).toEqual(['explore']);
  });
});

describe('explore controls', () => {
  it('topk, no_new_evidence_rounds, max_rounds', () => {
    expect(exploreDecision({ max_rounds: 3 }, { rounds: [] })).toEqual({ stop: false, next_round: 1 });
    expect(exploreDecision({ max_rounds: 3, topk: 2 }, { rounds: [2] })).toMatchObject({ stop: true, code: ReasonCode.TOPK_REACHED });
    expect(exploreDecision({ max_rounds: 5, stop: { no_new_evidence_rounds: 2 } }, { rounds: [1, 0] })).toEqual({ stop: false, next_round: 3 });
    expect(exploreDecision({ max_rounds: 5, stop: { no_new_evidence_rounds: 2 } }, { rounds: [1, 0, 0] })).toMatchObject({ stop: true, code: ReasonCode.NO_NEW_EVIDENCE, reason: 'the last 2 rounds brought no new candidate' });
    expect(exploreDecision({ max_rounds: 2 }, { rounds: [1, 1] })).toMatchObject({ stop: true, code: ReasonCode.OK });
    expect(exploreDecision(undefined, { rounds: [1] })).toMatchObject({ stop: true, code: ReasonCode.OK });
    expect(admitCandidate({ topk: 1 }, new Set(['a']), 'a')).toEqual({ ok: true });
    expect(admitCandidate({ topk: 1 }, new Set(['a']), 'b')).toMatchObject({ ok: false, code: ReasonCode.TOPK_REACHED });
    expect(admitCandidate(undefined, new Set(['a']), 'b')).toEqual({ ok: true });
    expect(newHashesPerRound([{ round: 1, candidate_hash: 'a' }, { round: 2, candidate_hash: 'a' }, { round: 2, candidate_hash: 'b' }, { round: 1, candidate_hash: 'a' }], 3)).toEqual([1, 1, 0]);
  });
});
