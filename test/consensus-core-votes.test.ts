/**
 * The rules of participation and of the vote (votes.ts, records.ts): every reason a signed record is
 * refused, the tally, the decision rule (winner, QUORUM_NOT_REACHED, TIE, waiting on pending reveals)
 * and finality. Real Ed25519 keys; pure.
 */
import { describe, expect, it } from 'vitest';
import { candidateHash, commitmentHash, generateIdentity } from '../src/consensus/core/crypto.js';
import { ReasonCode } from '../src/consensus/core/reason-codes.js';
import { checkProposal, checkVerifierResult, type RecordContext } from '../src/consensus/core/records.js';
import { signAs } from '../src/consensus/core/signed.js';
import type { Member, VerifierResult, VoteCommit, VoteReveal } from '../src/consensus/core/types.js';
import { checkCommit, checkFinality, checkReveal, checkSigned, decide, revealDeadline, tally, type Verdict, type VoteContext } from '../src/consensus/core/votes.js';

const ids = { p1: generateIdentity(), ver: generateIdentity(), v1: generateIdentity(), v2: generateIdentity(), v3: generateIdentity(), stranger: generateIdentity() };
const members: Member[] = [
  { role: 'proposer', id: 'p1', public_key: ids.p1.publicKey },
  { role: 'verifier', id: 'ver', public_key: ids.ver.publicKey },
  { role: 'voter', id: 'v1', public_key: ids.v1.publicKey },
  { role: 'voter', id: 'v2', public_key: ids.v2.publicKey },
  { role: 'voter', id: 'v3', public_key: ids.v3.publicKey },
];
const H1 = candidateHash({ answer: 1 });
const H2 = candidateHash({ answer: 2 });
const T0 = 1_000_000;

function commit(voter: keyof typeof ids, candidate: string, vote: 'approve' | 'reject', salt: string, round = 1, signer: keyof typeof ids = voter): VoteCommit {
  const c = { task_id: 'T', round, voter_id: voter, commitment: commitmentHash(candidate, vote, salt), signature: '' };
  c.signature = signAs(ids[signer].privateKey, 'vote_commit', c);
  return c;
}

function reveal(voter: keyof typeof ids, candidate: string, vote: 'approve' | 'reject', salt: string, round = 1): VoteReveal {
  const r: VoteReveal = { task_id: 'T', round, voter_id: voter, candidate_hash: candidate, vote, salt, signature: '' };
  r.signature = signAs(ids[voter].privateKey, 'vote_reveal', r as unknown as Record<string, unknown>);
  return r;
}

function ctx(over: Partial<VoteContext> = {}): VoteContext {
  return { status: 'voting', round: 1, members, candidate_hashes: new Set([H1, H2]), commits: [], reveals: [], round_opened_at: T0, reveal_deadline_ms: 30_000, ...over };
}

const name = (v: Verdict): string => (v.ok ? 'OK' : v.name);

describe('checkSigned', () => {
  const c = commit('v1', H1, 'approve', 's');
  it('accepts a member in its role with its signature', () => {
    expect(checkSigned(members, 'voter', 'vote_commit', c as unknown as Record<string, unknown>)).toEqual({ ok: true });
  });
  it('NOT_MEMBER, ROLE_MISMATCH, SIGNATURE_MISSING, SIGNATURE_INVALID', () => {
    const rec = (x: object): Record<string, unknown> => x as Record<string, unknown>;
    expect(checkSigned(members, 'voter', 'vote_commit', rec({ ...c, voter_id: 'stranger' }))).toMatchObject({ ok: false, code: ReasonCode.NOT_MEMBER, message: "'stranger' is not a member of the task" });
    expect(checkSigned(members, 'voter', 'vote_commit', rec({ ...c, voter_id: 'p1' }))).toMatchObject({ code: ReasonCode.ROLE_MISMATCH, message: "'p1' is a proposer of the task, not a voter" });
    expect(checkSigned(members, 'voter', 'vote_commit', rec({ ...c, signature: '' }))).toMatchObject({ code: ReasonCode.SIGNATURE_MISSING });
    expect(checkSigned(members, 'voter', 'vote_commit', rec({ ...c, signature: undefined }))).toMatchObject({ code: ReasonCode.SIGNATURE_MISSING });
    // Signed by another key (a foreign signature), or the signed fields altered after signing.
    expect(name(checkSigned(members, 'voter', 'vote_commit', rec(commit('v1', H1, 'approve', 's', 1, 'stranger'))))).toBe('SIGNATURE_INVALID');
    expect(name(checkSigned(members, 'voter', 'vote_commit', rec({ ...c, commitment: commitmentHash(H2, 'approve', 's') })))).toBe('SIGNATURE_INVALID');
    expect(name(checkSigned(members, 'voter', 'vote_commit', rec({ ...c, round: 2 })))).toBe('SIGNATURE_INVALID');
    expect(name(checkSigned(members, 'voter', 'vote_commit', rec({ ...c, signature: 'bm90IGEgc2lnbmF0dXJl' })))).toBe('SIGNATURE_INVALID');
    // A commit's signature does not verify as a reveal's (the kind is signed).
    expect(name(checkSigned(members, 'voter', 'vote_reveal', rec(c)))).toBe('SIGNATURE_INVALID');
    expect(name(checkSigned(members, 'voter', 'vote_commit', rec({ ...c, voter_id: undefined })))).toBe('NOT_MEMBER');
  });
});

describe('checkCommit', () => {
  it('accepts a first commitment of the round before the deadline, and one at the deadline itself', () => {
    expect(checkCommit(ctx(), commit('v1', H1, 'approve', 's'), T0 + 1)).toEqual({ ok: true });
    expect(checkCommit(ctx({ round_opened_at: null, status: 'verifying' }), commit('v1', H1, 'approve', 's'), T0)).toEqual({ ok: true });
    expect(checkCommit(ctx(), commit('v1', H1, 'approve', 's'), T0 + 30_000)).toEqual({ ok: true });
  });
  it('every reason it refuses one', () => {
    const c = commit('v1', H1, 'approve', 's');
    expect(name(checkCommit(ctx({ status: 'finalized' }), c, T0))).toBe('ALREADY_FINALIZED');
    expect(name(checkCommit(ctx({ status: 'expired' }), c, T0))).toBe('TASK_EXPIRED');
    expect(name(checkCommit(ctx({ status: 'failed' }), c, T0))).toBe('TASK_EXPIRED');
    expect(checkCommit(ctx({ status: 'committed' }), c, T0)).toMatchObject({ name: 'COMMIT_CLOSED', message: 'a decision is already committed; voting is closed' });
    expect(checkCommit(ctx({ status: 'proposing' }), c, T0)).toMatchObject({ name: 'COMMIT_CLOSED', message: 'voting has not opened (the task is proposing)' });
    expect(checkCommit(ctx({ round: 2 }), c, T0)).toMatchObject({ name: 'ROUND_MISMATCH', message: 'the commitment is for round 1; the task is in round 2' });
    expect(checkCommit(ctx(), c, T0 + 30_001)).toMatchObject({ name: 'COMMIT_CLOSED', message: expect.stringContaining('closed at its reveal deadline') as unknown });
    expect(checkCommit(ctx({ commits: [c] }), c, T0)).toMatchObject({ name: 'COMMIT_DUPLICATE', identical: true });
    const other = commit('v1', H2, 'approve', 't');
    const dup = checkCommit(ctx({ commits: [c] }), other, T0);
    expect(dup).toMatchObject({ name: 'COMMIT_DUPLICATE', code: 1200 });
    expect('identical' in dup).toBe(false);
    // The same voter in another round is not a duplicate.
    expect(checkCommit(ctx({ round: 2, commits: [c] }), commit('v1', H1, 'approve', 's', 2), T0)).toEqual({ ok: true });
    // Identity first: a stranger's commit is NOT_MEMBER even after finalization.
    expect(name(checkCommit(ctx({ status: 'finalized' }), { ...c, voter_id: 'stranger' }, T0))).toBe('NOT_MEMBER');
    // Once someone revealed in the round, a new commitment could copy the reveal: closed.
    const r2 = reveal('v2', H1, 'approve', 'x');
    expect(checkCommit(ctx({ commits: [commit('v2', H1, 'approve', 'x')], reveals: [r2] }), c, T0)).toMatchObject({ name: 'COMMIT_CLOSED', message: 'reveals have begun in round 1' });
    // A commitment is a sha256 hex digest.
    const bad = { ...c, commitment: 'not-a-digest' };
    bad.signature = signAs(ids.v1.privateKey, 'vote_commit', bad);
    expect(checkCommit(ctx(), bad, T0)).toMatchObject({ name: 'REVEAL_MISMATCH', message: 'a commitment is a sha256 hex digest' });
  });
});

describe('checkReveal', () => {
  const c1 = commit('v1', H1, 'approve', 'salt-1');
  const base = (): VoteContext => ctx({ commits: [c1] });
  it('accepts the reveal matching the commitment, on time', () => {
    expect(checkReveal(base(), reveal('v1', H1, 'approve', 'salt-1'), T0 + 30_000)).toEqual({ ok: true });
  });
  it('every reason it refuses one', () => {
    const r = reveal('v1', H1, 'approve', 'salt-1');
    expect(name(checkReveal(ctx({ commits: [c1], status: 'finalized' }), r, T0))).toBe('ALREADY_FINALIZED');
    expect(name(checkReveal(ctx({ commits: [c1], status: 'expired' }), r, T0))).toBe('TASK_EXPIRED');
    expect(name(checkReveal(ctx({ commits: [c1], status: 'committed' }), r, T0))).toBe('REVEAL_LATE');
    // A task that failed (too few reveals by the deadline): a reveal after the deadline is late, one before it finds the task closed.
    expect(name(checkReveal(ctx({ commits: [c1], status: 'failed' }), r, T0 + 30_001))).toBe('REVEAL_LATE');
    expect(name(checkReveal(ctx({ commits: [c1], status: 'failed' }), r, T0))).toBe('TASK_EXPIRED');
    expect(name(checkReveal(ctx({ commits: [c1], round: 2 }), r, T0))).toBe('ROUND_MISMATCH');
    expect(checkReveal(base(), reveal('v2', H1, 'approve', 'x'), T0)).toMatchObject({ name: 'REVEAL_WITHOUT_COMMIT', code: 1204, message: "'v2' made no commitment in round 1" });
    expect(checkReveal(ctx({ commits: [c1], reveals: [r] }), r, T0)).toMatchObject({ name: 'REVEAL_DUPLICATE', identical: true });
    expect(checkReveal(ctx({ commits: [c1], reveals: [r] }), reveal('v1', H2, 'approve', 'salt-1'), T0)).toMatchObject({ name: 'REVEAL_DUPLICATE' });
    expect(checkReveal(base(), r, T0 + 30_001)).toMatchObject({ name: 'REVEAL_LATE', code: 1202 });
    expect(checkReveal(base(), reveal('v1', H2, 'approve', 'salt-1'), T0)).toMatchObject({ name: 'REVEAL_MISMATCH', code: 1201 });
    expect(name(checkReveal(base(), reveal('v1', H1, 'reject', 'salt-1'), T0))).toBe('REVEAL_MISMATCH');
    expect(name(checkReveal(base(), reveal('v1', H1, 'approve', 'salt-2'), T0))).toBe('REVEAL_MISMATCH');
    const weird = { ...r, vote: 'maybe' as 'approve' };
    weird.signature = signAs(ids.v1.privateKey, 'vote_reveal', weird);
    expect(checkReveal(base(), weird, T0)).toMatchObject({ name: 'REVEAL_MISMATCH', message: 'vote "maybe" is neither approve nor reject' });
    // A commitment to a candidate the task does not have: the reveal matches, but the candidate is unknown.
    const ghost = candidateHash({ ghost: true });
    const cg = commit('v2', ghost, 'approve', 'g');
    expect(checkReveal(ctx({ commits: [c1, cg] }), reveal('v2', ghost, 'approve', 'g'), T0)).toMatchObject({ name: 'REVEAL_UNKNOWN_CANDIDATE', code: 1203 });
    // Unsigned and foreign reveals.
    expect(name(checkReveal(base(), { ...r, signature: '' }, T0))).toBe('SIGNATURE_MISSING');
    expect(name(checkReveal(base(), { ...r, signature: reveal('v2', H1, 'approve', 'salt-1').signature }, T0))).toBe('SIGNATURE_INVALID');
  });
  it('the deadline counts from the round’s first commitment', () => {
    expect(revealDeadline({ round_opened_at: null, reveal_deadline_ms: 5 })).toBeNull();
    expect(revealDeadline({ round_opened_at: 100, reveal_deadline_ms: 5 })).toBe(105);
  });
});

describe('tally and decide', () => {
  it('counts approve reveals per candidate hash', () => {
    expect(tally([{ candidate_hash: 'a', vote: 'approve' }, { candidate_hash: 'a', vote: 'approve' }, { candidate_hash: 'b', vote: 'reject' }, { candidate_hash: 'c', vote: 'approve' }])).toEqual({ a: 2, c: 1 });
    expect(tally([])).toEqual({});
  });
  it('a winner with the quorum and no rival as strong', () => {
    expect(decide({ a: 2, b: 1 }, 2)).toEqual({ decided: true, candidate_hash: 'a', votes: 2 });
    expect(decide({ a: 3 }, 3)).toEqual({ decided: true, candidate_hash: 'a', votes: 3 });
  });
  it('QUORUM_NOT_REACHED, TIE (never broken), and waiting on pending reveals', () => {
    expect(decide({ a: 1, b: 1 }, 2)).toMatchObject({ decided: false, name: 'QUORUM_NOT_REACHED', code: ReasonCode.QUORUM_NOT_REACHED, waiting: false });
    expect(decide({}, 1)).toMatchObject({ decided: false, name: 'QUORUM_NOT_REACHED' });
    expect(decide({ b: 2, a: 2 }, 2)).toMatchObject({ decided: false, name: 'TIE', code: ReasonCode.TIE, message: '2 candidates tie with 2 approvals each' });
    // Two pending reveals could tie a 2-0 lead: not yet.
    expect(decide({ a: 2 }, 2, 2)).toMatchObject({ decided: false, waiting: true });
    // One pending reveal cannot catch a 2-0 lead: decided early.
    expect(decide({ a: 2 }, 2, 1)).toEqual({ decided: true, candidate_hash: 'a', votes: 2 });
    // Quorum out of reach even with every pending reveal: no point waiting.
    expect(decide({ a: 1 }, 4, 2)).toMatchObject({ decided: false, name: 'QUORUM_NOT_REACHED', waiting: false });
    // The order of the tally's keys does not matter.
    expect(decide({ b: 1, a: 3 }, 2)).toEqual(decide({ a: 3, b: 1 }, 2));
  });
  it('finality: one decision per task', () => {
    expect(checkFinality({ status: 'voting', decision: null }, 'commit')).toEqual({ ok: true });
    expect(name(checkFinality({ status: 'committed', decision: { finalized_at: null } }, 'commit'))).toBe('ALREADY_FINALIZED');
    expect(checkFinality({ status: 'committed', decision: { finalized_at: null } }, 'finalize')).toEqual({ ok: true });
    expect(name(checkFinality({ status: 'finalized', decision: { finalized_at: 5 } }, 'finalize'))).toBe('ALREADY_FINALIZED');
    expect(name(checkFinality({ status: 'committed', decision: { finalized_at: 5 } }, 'finalize'))).toBe('ALREADY_FINALIZED');
    expect(name(checkFinality({ status: 'expired', decision: null }, 'commit'))).toBe('TASK_EXPIRED');
    expect(name(checkFinality({ status: 'voting', decision: null }, 'finalize'))).toBe('QUORUM_NOT_REACHED');
  });
});

describe('proposals and verifier results', () => {
  const rctx = (over: Partial<RecordContext> = {}): RecordContext => ({ status: 'proposing', members, candidate_hashes: new Set([H1]), proposals: [], policy_id: 'vp.schema_only.v1', ...over });
  const proposal = (output: unknown, over: Record<string, unknown> = {}): Parameters<typeof checkProposal>[1] => {
    const c = { task_id: 'T', candidate_hash: candidateHash(output), proposer_id: 'p1', round: 1, output, evidence: [], cost_usd: 0.01, signature: '', ...over };
    c.signature = signAs(ids.p1.privateKey, 'candidate', c);
    return c;
  };
  const result = (over: Partial<VerifierResult> = {}): VerifierResult => {
    const r: VerifierResult = { task_id: 'T', candidate_hash: H1, verifier_id: 'ver', policy_id: 'vp.schema_only.v1', status: 'passed', reason_codes: [], score: 1, evidence: [], cost_usd: 0, signature: '', ...over };
    r.signature = signAs(ids.ver.privateKey, 'verifier_result', r as unknown as Record<string, unknown>);
    return r;
  };
  it('a proposal: accepted, or why not', () => {
    expect(checkProposal(rctx(), proposal({ answer: 1 }))).toEqual({ ok: true });
    expect(checkProposal(rctx({ status: 'created' }), proposal({ answer: 1 }))).toEqual({ ok: true });
    // The output is covered through its hash: a swapped output is CANDIDATE_HASH_MISMATCH.
    expect(name(checkProposal(rctx(), { ...proposal({ answer: 1 }), output: { answer: 9 } }))).toBe('CANDIDATE_HASH_MISMATCH');
    expect(name(checkProposal(rctx({ status: 'voting' }), proposal({ answer: 1 })))).toBe('STAGE_CLOSED');
    expect(name(checkProposal(rctx({ proposals: [{ proposer_id: 'p1', round: 1, candidate_hash: H1 }] }), proposal({ answer: 1 })))).toBe('STAGE_CLOSED');
    expect(name(checkProposal(rctx({ status: 'finalized' }), proposal({ answer: 1 })))).toBe('ALREADY_FINALIZED');
    expect(name(checkProposal(rctx(), { ...proposal({ answer: 1 }), cost_usd: 5 }))).toBe('SIGNATURE_INVALID');
    expect(name(checkProposal(rctx(), { ...proposal({ answer: 1 }), proposer_id: 'v1' }))).toBe('ROLE_MISMATCH');
    // Without the output (an event with output_ref), the signature over the hash still checks.
    const { output: _o, ...byRef } = proposal({ answer: 1 });
    expect(checkProposal(rctx(), byRef)).toEqual({ ok: true });
  });
  it('a verifier result: accepted, or why not', () => {
    expect(checkVerifierResult(rctx({ status: 'verifying' }), result())).toEqual({ ok: true });
    expect(name(checkVerifierResult(rctx(), result({ candidate_hash: H2 })))).toBe('CANDIDATE_UNKNOWN');
    expect(name(checkVerifierResult(rctx(), result({ policy_id: 'vp.crosscheck.v1' })))).toBe('POLICY_UNKNOWN');
    expect(name(checkVerifierResult(rctx({ status: 'committed' }), result()))).toBe('STAGE_CLOSED');
    expect(name(checkVerifierResult(rctx({ status: 'expired' }), result()))).toBe('TASK_EXPIRED');
    expect(name(checkVerifierResult(rctx(), result({ score: 2 })))).toBe('UNKNOWN');
    expect(name(checkVerifierResult(rctx(), result({ reason_codes: [70000] })))).toBe('UNKNOWN');
    expect(name(checkVerifierResult(rctx(), { ...result(), status: 'failed' }))).toBe('SIGNATURE_INVALID');
    expect(name(checkVerifierResult(rctx(), { ...result(), verifier_id: 'p1' }))).toBe('ROLE_MISMATCH');
  });
});
