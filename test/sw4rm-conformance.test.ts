// The SW4RM conformance vectors of the scheduler side, every one, in process: cancellation
// (SW4-004), delegation to another swarm (SW4-005), quorum (quorum-v1), Borda (borda-v1) and the
// score summary (score-summary-v1). The JSON files are verbatim copies of the published vectors.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CancellationManager } from '../src/sw4rm/scheduler/cancellation.js';
import { delegateToSwarm, type DelegationRequest, type DelegationResponse } from '../src/sw4rm/scheduler/delegation.js';
import { bordaSummary, evaluateQuorum, scoreSummary, type QuorumRule } from '../src/sw4rm/scheduler/voting.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const load = (name: string): any => JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'sw4rm', name), 'utf8')) as unknown;

const cancellation = load('sw4_004_cancellation_vectors.json');
const delegation = load('sw4_005_delegation_vectors.json');
const quorum = load('quorum_vectors.json');
const borda = load('borda_vectors.json');
const scores = load('score_aggregation_vectors.json');

describe('SW4-004 cancellation vectors', () => {
  it('has vectors', () => expect(cancellation.vectors.length).toBeGreaterThan(0));
  for (const v of cancellation.vectors) {
    it(v.id, () => {
      const m = new CancellationManager();
      for (const c of v.children) m.registerChild(c.parent, c.child);
      const t0 = 1_000_000;
      const out = m.cancel(v.request, t0);
      const e = v.expected;
      expect(out.acknowledged).toBe(e.acknowledged);
      expect(out.effective_grace_period_ms).toBe(e.effective_grace_period_ms);
      for (const id of e.cancelled) expect(m.isCancelled(id), id).toBe(true);
      for (const id of e.not_cancelled) expect(m.isCancelled(id), id).toBe(false);
      expect(out.cancelled.sort()).toEqual([...e.cancelled].sort());
      const at = (offset: number): number => t0 + Number(e.effective_grace_period_ms) + offset;
      for (const c of e.grace_expiry_checks) expect(m.isGraceExpired(c.correlation_id, at(c.offset_ms)), `${c.correlation_id}@${c.offset_ms}`).toBe(c.expired);
      for (const c of e.forced_preemption_checks) expect(m.forcedPreemptionCode(c.correlation_id, at(c.offset_ms))).toBe(c.error_code);
      expect(m.collectForced(e.collect_forced.active_correlations, at(e.collect_forced.offset_ms)).sort()).toEqual([...e.collect_forced.expected].sort());
    });
  }
});

describe('SW4-005 delegation vectors', () => {
  it('has vectors', () => expect(delegation.vectors.length).toBeGreaterThan(0));
  for (const v of delegation.vectors) {
    it(v.id, async () => {
      const attempts: string[] = [];
      // The gateways answer REDIRECT per the vector's map; the clock stays a second before the deadline.
      const send = (req: DelegationRequest): DelegationResponse => {
        attempts.push(req.to_agent);
        return { request_id: req.request_id, accepted: false, rejection_code: 'REDIRECT', redirect_to_agent_id: v.redirect_map[req.to_agent] };
      };
      const res = await delegateToSwarm({
        send,
        from_agent: v.from_agent,
        to_agent: v.to_agent,
        reason: v.reason,
        request_id: v.request_id,
        budget: { deadline_epoch_ms: v.budget.deadline_epoch_ms, wall_time_remaining_ms: v.budget.wall_time_remaining_ms },
        policy: { allow_spillover_routing: v.policy.allow_spillover_routing, max_redirects: v.policy.max_redirects },
        now: () => v.budget.deadline_epoch_ms - 1000,
        sleep: async () => {},
        random: (low) => low,
      });
      const e = v.expected;
      expect(res.accepted).toBe(e.accepted);
      expect(res.rejection_code).toBe(e.rejection_code);
      if (e.reason_contains) expect(res.rejection_reason).toContain(e.reason_contains);
      if (e.redirect_to_agent_id) expect(res.redirect_to_agent_id).toBe(e.redirect_to_agent_id);
      expect(attempts).toEqual(e.attempts);
    });
  }
});

describe('quorum-v1 vectors', () => {
  it('has the contract', () => expect(quorum.contract).toBe('quorum-v1'));
  for (const v of quorum.vectors) {
    it(v.id, () => {
      const out = evaluateQuorum(v.votes, v.requested, { rule: v.rule as QuorumRule, on_failure: v.on_failure });
      const e = v.expected;
      expect({ met: out.met, received: out.received, expected: out.expected, threshold: out.threshold, action: out.action }).toEqual({ met: e.met, received: e.received, expected: e.expected, threshold: e.threshold, action: e.action });
      expect(out.injected.map((x) => x.critic_id)).toEqual(e.injected);
      expect(out.all_votes.length).toBe(e.all_vote_count);
    });
  }
});

describe('borda-v1 vectors', () => {
  it('has the contract', () => expect(borda.contract).toBe('borda-v1'));
  for (const v of borda.vectors) {
    it(v.id, () => {
      const out = bordaSummary(v.votes);
      for (const [k, want] of Object.entries(v.expected)) expect(out[k as keyof typeof out], k).toBeCloseTo(want as number, 12);
    });
  }
});

describe('score-summary-v1 vectors', () => {
  it('has the contract', () => expect(scores.contract).toBe('score-summary-v1'));
  for (const v of scores.vectors) {
    it(v.id, () => {
      if (v.error) {
        expect(() => scoreSummary(v.votes)).toThrow(v.error);
        return;
      }
      const out = scoreSummary(v.votes);
      for (const [k, want] of Object.entries(v.expected)) expect(out[k as keyof typeof out], k).toBeCloseTo(want as number, 12);
    });
  }
});
