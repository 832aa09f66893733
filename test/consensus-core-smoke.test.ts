import { describe, expect, it } from 'vitest';
import { parseTaskContract, generateIdentity, signAs, candidateHash, commitmentHash, projectTask, voteContext, checkReveal, checkCommit, decide, tally, taskCreatedEvent, taskClaimedEvent, inputsHash, candidateProposedEvent, voteCommitEvent, voteRevealEvent, buildDecision, decisionCommittedEvent, checkDecisionProof } from '../src/consensus/core/index.js';

describe('smoke', () => {
  it('runs a task through', () => {
    const r = parseTaskContract({ task_type: 't', inputs: { a: 1 }, output_schema: { type: 'object' }, proposers: [{ executor: 'a' }], verification: { policy: 'vp.schema_only.v1' }, voting: { voters: [{ id: 'v1' }, { id: 'v2' }, { id: 'v3' }], reveal_deadline: '30s' } }, 'task.json');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.contract.voting.quorum).toBe(2);
    expect(r.contract.voting.reveal_deadline_ms).toBe(30000);
    const p = generateIdentity(); const v1 = generateIdentity(); const v2 = generateIdentity();
    const members = [{ role: 'proposer' as const, id: 'executor:a', public_key: p.publicKey }, { role: 'voter' as const, id: 'v1', public_key: v1.publicKey }, { role: 'voter' as const, id: 'v2', public_key: v2.publicKey }];
    const events: Array<{ seq: number; hash: string; type: string; data: Record<string, unknown>; at: number }> = [];
    const push = (e: { type: string; data: object }, at: number): void => { events.push({ seq: events.length + 1, hash: `h${events.length + 1}`, type: e.type, data: e.data as Record<string, unknown>, at }); };
    push(taskCreatedEvent({ task_id: 'T', contract: r.contract, members, inputs_hash: inputsHash({ a: 1 }), created_at: 0, expires_at: 600000 }), 0);
    const out = { x: 1 }; const h = candidateHash(out);
    const c = { task_id: 'T', candidate_hash: h, proposer_id: 'executor:a', round: 1, output: out, evidence: [], cost_usd: 0.1, signature: '' };
    c.signature = signAs(p.privateKey, 'candidate', c);
    push(candidateProposedEvent(c), 1);
    push(taskClaimedEvent({ task_id: 'T', stage: 'vote', round: 1 }), 1);
    for (const [id, k] of [['v1', v1], ['v2', v2]] as const) {
      const salt = 's' + id;
      const cm = { task_id: 'T', round: 1, voter_id: id, commitment: commitmentHash(h, 'approve', salt), signature: '' };
      cm.signature = signAs(k.privateKey, 'vote_commit', cm);
      const st = projectTask(events)!;
      expect(checkCommit(voteContext(st), cm, 2)).toEqual({ ok: true });
      push(voteCommitEvent(cm), 2);
      const rv = { task_id: 'T', round: 1, voter_id: id, candidate_hash: h, vote: 'approve' as const, salt, signature: '' };
      rv.signature = signAs(k.privateKey, 'vote_reveal', rv);
      expect(checkReveal(voteContext(projectTask(events)!), rv, 3)).toEqual({ ok: true });
      push(voteRevealEvent(rv), 3);
    }
    const st = projectTask(events)!;
    const d = decide(tally(st.reveals), 2);
    expect(d.decided).toBe(true);
    const dec = buildDecision(st, h, 4);
    push(decisionCommittedEvent(dec), 4);
    expect(checkDecisionProof(events, dec)).toEqual([]);
    expect(projectTask(events)!.status).toBe('committed');
  });
});
