/**
 * A finalized consensus task written into a real store the way the lifecycle writes one: its rows
 * through `LedgerTx.consensus()` and its events (TASK_CREATED … DECISION_FINALIZED) in the run's
 * hash-chained log, with real candidate hashes, commitments, salts and Ed25519 signatures. Two
 * candidates (one fails verification), three voters (two reveal `approve` for the winner, one has
 * only committed), a decision whose proof names the events it rests on, and cost in every bucket.
 */
import { EventType } from '../../src/core/events.js';
import { ReasonCode } from '../../src/consensus/core/reason-codes.js';
import { candidateHash, commitmentHash, generateIdentity, newSalt, publicKeyOf, signRecord } from '../../src/consensus/core/crypto.js';
import type { Swarm } from '../../src/swarm.js';
import type { ConsensusTaskRow } from '../../src/store/consensus-types.js';

export interface SeededTask {
  task_id: string;
  run_id: string;
  winner: string;
  loser: string;
  /** Seqs of the events the decision's proof names. */
  proof: { candidate: number; reveals: number[] };
}

export async function seedFinalizedTask(swarm: Swarm, runId: string, stepId = 'pick'): Promise<SeededTask> {
  const store = swarm.store;
  const taskId = `${runId}/${stepId}`;
  const now = await store.now();
  const ids = { p1: generateIdentity(), p2: generateIdentity(), ver: generateIdentity(), v1: generateIdentity(), v2: generateIdentity(), v3: generateIdentity() };
  const members = [
    { role: 'proposer' as const, id: 'executor:rt-a', public_key: publicKeyOf(ids.p1.privateKey) },
    { role: 'proposer' as const, id: 'executor:rt-b', public_key: publicKeyOf(ids.p2.privateKey) },
    { role: 'verifier' as const, id: 'local', public_key: publicKeyOf(ids.ver.privateKey) },
    ...(['v1', 'v2', 'v3'] as const).map((v) => ({ role: 'voter' as const, id: v, public_key: publicKeyOf(ids[v].privateKey) })),
  ];
  const task: ConsensusTaskRow = {
    task_id: taskId,
    run_id: runId,
    step_id: stepId,
    task_type: 'summary',
    contract: {
      task_type: 'summary',
      inputs: { text: 'Swarm is a durable runtime for multi-agent work.' },
      output_schema: { type: 'object', required: ['summary'], properties: { summary: { type: 'string' } } },
      proposers: [{ executor: 'rt-a' }, { executor: 'rt-b' }],
      verification: { policy: 'vp.schema_only.v1' },
      voting: { voters: [{ id: 'v1' }, { id: 'v2' }, { id: 'v3' }], quorum: 2, reveal_deadline_ms: 30_000 },
      budget: { explore: 1, verify: 0.5, finalize: 0.2 },
    },
    members,
    status: 'finalized',
    stage: 'finalize',
    round: 1,
    explore_round: 1,
    round_started_at: now,
    reason_code: null,
    reason: null,
    created_at: now,
    expires_at: now + 600_000,
    updated_at: now,
  };
  const good = { summary: 'A durable runtime for agents.' };
  const bad = { text: 'no summary field' };
  const winner = candidateHash(good);
  const loser = candidateHash(bad);
  const record = (type: EventType, data: Record<string, unknown>) => ({ type, step_id: stepId, data: { task_id: taskId, ...data } });
  const seqOf = async (type: string, pick: (d: Record<string, unknown>) => boolean = () => true): Promise<{ seq: number; hash: string }> => {
    const e = (await store.getEvents(runId)).filter((x) => x.type === type && x.data.task_id === taskId && pick(x.data)).at(-1);
    if (!e) throw new Error(`no ${type} event`);
    return { seq: e.seq, hash: e.hash };
  };

  // Created, proposed: the task row and its first events; the candidates name their events.
  await store.transaction(async (tx) => {
    await tx.consensus().insertTask({ ...task, status: 'proposing', stage: 'propose' });
    await swarm.ledger.recordEvents(tx, runId, [
      record(EventType.TASK_CREATED, { task_type: 'summary', members }),
      record(EventType.TASK_CLAIMED, { stage: 'propose' }),
      record(EventType.CANDIDATE_PROPOSED, { candidate_hash: winner, proposer_id: 'executor:rt-a', round: 1 }),
      record(EventType.CANDIDATE_PROPOSED, { candidate_hash: loser, proposer_id: 'executor:rt-b', round: 1 }),
    ]);
  });
  const candEvents = { [winner]: await seqOf('CANDIDATE_PROPOSED', (d) => d.candidate_hash === winner), [loser]: await seqOf('CANDIDATE_PROPOSED', (d) => d.candidate_hash === loser) };
  const results: Array<{ hash: string; status: 'passed' | 'failed'; codes: number[]; reason: string | null }> = [
    { hash: winner, status: 'passed', codes: [], reason: null },
    { hash: loser, status: 'failed', codes: [ReasonCode.SCHEMA_MISMATCH, ReasonCode.FIELD_MISSING], reason: "output: must have required property 'summary'" },
  ];
  const votes = (['v1', 'v2', 'v3'] as const).map((v) => ({ voter: v, salt: newSalt(), vote: 'approve' as const, hash: winner }));
  await store.transaction(async (tx) => {
    const c = tx.consensus();
    for (const [hash, output, proposer, key, cost] of [
      [winner, good, 'executor:rt-a', ids.p1, 0.2],
      [loser, bad, 'executor:rt-b', ids.p2, 0.15],
    ] as const) {
      const fields = { task_id: taskId, candidate_hash: hash, proposer_id: proposer, round: 1, output };
      await c.insertCandidate({ ...fields, evidence: [], cost_usd: cost, signature: signRecord(key.privateKey, 'candidate', fields), output_bytes: JSON.stringify(output).length, event_seq: candEvents[hash]?.seq ?? 0, event_hash: candEvents[hash]?.hash ?? '', created_at: now });
      await c.addCost(taskId, 'explore', cost);
    }
    for (const r of results) {
      const fields = { task_id: taskId, candidate_hash: r.hash, verifier_id: 'local', policy_id: 'vp.schema_only.v1', status: r.status, reason_codes: r.codes, score: r.status === 'passed' ? 1 : 0 };
      await c.insertResult({ ...fields, evidence: [], cost_usd: 0.05, reason: r.reason, signature: signRecord(ids.ver.privateKey, 'verifier_result', fields), created_at: now });
      await c.addCost(taskId, 'verify', 0.05);
    }
    for (const v of votes) {
      const commitment = commitmentHash(v.hash, v.vote, v.salt);
      await c.insertCommit({ task_id: taskId, round: 1, voter_id: v.voter, commitment, commit_signature: signRecord(ids[v.voter].privateKey, 'vote_commit', { task_id: taskId, round: 1, voter_id: v.voter, commitment }), committed_at: now });
    }
    await swarm.ledger.recordEvents(tx, runId, [
      record(EventType.TASK_CLAIMED, { stage: 'verify' }),
      ...results.map((r) => record(EventType.VERIFIER_RESULT_SUBMITTED, { candidate_hash: r.hash, verifier_id: 'local', status: r.status, reason_codes: r.codes })),
      ...votes.map((v) => record(EventType.VOTE_COMMIT, { round: 1, voter_id: v.voter, commitment: commitmentHash(v.hash, v.vote, v.salt) })),
    ]);
  });
  // Two of the three reveal: the quorum.
  const revealed = votes.slice(0, 2);
  await store.transaction((tx) => swarm.ledger.recordEvents(tx, runId, revealed.map((v) => record(EventType.VOTE_REVEAL, { round: 1, voter_id: v.voter, candidate_hash: v.hash, vote: v.vote, salt: v.salt }))));
  const reveals = await Promise.all(revealed.map((v) => seqOf('VOTE_REVEAL', (d) => d.voter_id === v.voter)));
  await store.transaction(async (tx) => {
    const c = tx.consensus();
    for (const [i, v] of revealed.entries()) {
      const fields = { task_id: taskId, round: 1, voter_id: v.voter, candidate_hash: v.hash, vote: v.vote, salt: v.salt };
      await c.reveal({ ...fields, reveal_signature: signRecord(ids[v.voter].privateKey, 'vote_reveal', fields), revealed_at: now + 1, reveal_event_seq: reveals[i]?.seq ?? null, reveal_event_hash: reveals[i]?.hash ?? null });
    }
    const candidate_event = candEvents[winner] ?? { seq: 0, hash: '' };
    await c.insertDecision({ task_id: taskId, round: 1, candidate_hash: winner, output: good, tally: { [winner]: 2 }, quorum: 2, proof: { candidate_event, reveal_events: reveals }, committed_at: now + 2, finalized_at: null });
    await c.finalizeDecision(taskId, now + 3);
    await c.addCost(taskId, 'finalize', 0.01);
    await c.updateTask(taskId, { status: 'finalized', stage: 'finalize' });
    await swarm.ledger.recordEvents(tx, runId, [record(EventType.DECISION_COMMITTED, { candidate_hash: winner, round: 1 }), record(EventType.DECISION_FINALIZED, { candidate_hash: winner, round: 1 })]);
  });
  return { task_id: taskId, run_id: runId, winner, loser, proof: { candidate: candEvents[winner]?.seq ?? 0, reveals: reveals.map((r) => r.seq) } };
}
