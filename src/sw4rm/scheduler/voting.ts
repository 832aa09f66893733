/**
 * Counting critics' votes in a negotiation room: the quorum (contract quorum-v1), the score summary
 * (score-summary-v1: population standard deviation, confidence-weighted mean falling back to the
 * plain mean when every confidence is 0) and the score-derived Borda mean (borda-v1: votes ranked by
 * score, highest first and stable on ties, worth n..1 points; weighted_mean = Σ points·score / Σ points).
 *
 * Pure functions over plain votes (negotiation_room.proto's NegotiationVote fields, snake_case).
 *
 * @example
 *   evaluateQuorum(votes, ['a', 'b', 'c'], { rule: { kind: 'minimum_fraction', value: 0.5 }, on_failure: 'fail_closed' });
 *   scoreSummary([{ score: 2, confidence: 0.25 }, { score: 10, confidence: 0.75 }]).weighted_mean; // 8
 */
import { UserError } from '../../core/errors.js';

export type QuorumRule =
  | { kind: 'minimum_votes'; value: number }
  | { kind: 'minimum_fraction'; value: number }
  | { kind: 'require_all'; value?: boolean };

/** What a room does when the quorum is not met. */
export type QuorumFailure = 'fail_closed' | 'fail_with_abstain' | 'fail_with_available';

export interface QuorumPolicy {
  rule: QuorumRule;
  on_failure: QuorumFailure;
}

export interface CriticVote {
  critic_id: string;
  score?: number;
  confidence?: number;
  passed?: boolean;
  abstain?: boolean;
}

export type QuorumAction = 'none' | 'escalate_hitl' | 'decided_with_abstains' | 'decided_with_available';

export interface QuorumOutcome<V extends CriticVote> {
  met: boolean;
  received: number;
  expected: number;
  threshold: number;
  action: QuorumAction;
  /** Abstain votes generated for requested critics who did not vote (fail_with_abstain only). */
  injected: CriticVote[];
  /** The votes as given, then the injected abstains. */
  all_votes: Array<V | CriticVote>;
}

/** The default policy of a room: half of the requested critics (rounded up), else escalate to a human. */
export const DEFAULT_QUORUM: QuorumPolicy = { rule: { kind: 'minimum_fraction', value: 0.5 }, on_failure: 'fail_closed' };

function thresholdOf(rule: QuorumRule, expected: number): number {
  switch (rule.kind) {
    case 'minimum_votes':
      return rule.value;
    case 'minimum_fraction':
      return Math.ceil(expected * rule.value);
    case 'require_all':
      return rule.value === false ? 0 : expected;
  }
}

/**
 * Distinct requested critics who voted, against the rule's threshold. Outsiders and repeat votes do
 * not count; `expected` is the roster as given (a repeated name is counted as the caller listed it).
 */
export function evaluateQuorum<V extends CriticVote>(votes: readonly V[], requested: readonly string[], policy: QuorumPolicy = DEFAULT_QUORUM): QuorumOutcome<V> {
  const roster = new Set(requested);
  const voted = new Set(votes.map((v) => v.critic_id));
  const received = [...voted].filter((id) => roster.has(id)).length;
  const expected = requested.length;
  const threshold = thresholdOf(policy.rule, expected);
  const base = { received, expected, threshold };
  if (received >= threshold) return { met: true, ...base, action: 'none', injected: [], all_votes: [...votes] };
  if (policy.on_failure === 'fail_with_abstain') {
    const injected = requested.filter((c) => !voted.has(c)).map((c) => ({ critic_id: c, score: 0, confidence: 0, passed: false, abstain: true }));
    return { met: false, ...base, action: 'decided_with_abstains', injected, all_votes: [...votes, ...injected] };
  }
  return { met: false, ...base, action: policy.on_failure === 'fail_with_available' ? 'decided_with_available' : 'escalate_hitl', injected: [], all_votes: [...votes] };
}

/** negotiation_room.proto's AggregatedScore. */
export interface AggregatedScore {
  mean: number;
  min_score: number;
  max_score: number;
  std_dev: number;
  weighted_mean: number;
  vote_count: number;
}

function basics(scores: readonly number[]): Omit<AggregatedScore, 'weighted_mean'> {
  if (scores.length === 0) throw new UserError('SW4RM_EMPTY_VOTES', 'cannot aggregate an empty list of votes (empty-votes)', { field: 'votes' });
  const n = scores.length;
  const mean = scores.reduce((a, b) => a + b, 0) / n;
  const variance = scores.reduce((a, s) => a + (s - mean) ** 2, 0) / n;
  return { mean, min_score: Math.min(...scores), max_score: Math.max(...scores), std_dev: Math.sqrt(variance), vote_count: n };
}

/** score-summary-v1: statistics plus the confidence-weighted mean. SW4RM_EMPTY_VOTES for no votes. */
export function scoreSummary(votes: ReadonlyArray<{ score: number; confidence?: number }>): AggregatedScore {
  const b = basics(votes.map((v) => v.score));
  const total = votes.reduce((a, v) => a + (v.confidence ?? 0), 0);
  const weighted_mean = total > 0 ? votes.reduce((a, v) => a + v.score * (v.confidence ?? 0), 0) / total : b.mean;
  return { ...b, weighted_mean };
}

/** borda-v1: statistics plus the Borda-points-weighted mean of the scores. */
export function bordaSummary(votes: ReadonlyArray<{ score: number }>): AggregatedScore {
  const b = basics(votes.map((v) => v.score));
  // Array.prototype.sort is stable: tied scores keep their input order.
  const ranked = votes.map((v) => v.score).sort((x, y) => y - x);
  let weighted = 0;
  let points = 0;
  ranked.forEach((score, rank) => {
    const p = ranked.length - rank;
    weighted += p * score;
    points += p;
  });
  return { ...b, weighted_mean: weighted / points };
}
