/**
 * When proposing stops (source 002's explore controls). Proposals come in rounds (each proposer once
 * per round). After each round, in this order:
 *   TOPK_REACHED      the task has `explore.topk` distinct candidates (by hash);
 *   NO_NEW_EVIDENCE   the last `explore.stop.no_new_evidence_rounds` rounds brought no new candidate hash;
 *   OK (max rounds)   `explore.max_rounds` rounds have run (default 1): the normal end.
 * Within a round, a candidate whose hash is new once topk distinct ones are kept is not admitted
 * (admitCandidate), so a task never holds more than topk candidates. Pure.
 *
 * @example
 *   const d = exploreDecision(contract.explore, { rounds: [3, 0, 0] }); // 3 new hashes in round 1, none since
 *   if (d.stop) stopStage('propose', d.code, d.reason);
 */
import { CONTRACT_DEFAULTS } from './contract.js';
import { ReasonCode } from './reason-codes.js';
import type { ExploreSpec } from './types.js';

export type ExploreDecision = { stop: false; next_round: number } | { stop: true; code: number; reason: string };

/**
 * Whether to run another proposal round. `rounds[i]` is how many new distinct candidate hashes round
 * i+1 brought (its length is the number of rounds run).
 */
export function exploreDecision(spec: ExploreSpec | undefined, progress: { rounds: readonly number[] }): ExploreDecision {
  const run = progress.rounds.length;
  const distinct = progress.rounds.reduce((a, b) => a + b, 0);
  const topk = spec?.topk;
  if (topk !== undefined && distinct >= topk) return { stop: true, code: ReasonCode.TOPK_REACHED, reason: `${distinct} distinct candidates; explore.topk is ${topk}` };
  const quiet = spec?.stop?.no_new_evidence_rounds;
  if (quiet !== undefined && run >= quiet && progress.rounds.slice(run - quiet).every((n) => n === 0)) {
    return { stop: true, code: ReasonCode.NO_NEW_EVIDENCE, reason: `the last ${quiet} round${quiet === 1 ? '' : 's'} brought no new candidate` };
  }
  const max = spec?.max_rounds ?? CONTRACT_DEFAULTS.explore_max_rounds;
  if (run >= max) return { stop: true, code: ReasonCode.OK, reason: `${run} proposal round${run === 1 ? '' : 's'} run (explore.max_rounds ${max})` };
  return { stop: false, next_round: run + 1 };
}

/** Whether a candidate with this hash joins the task: a known hash always does (another proposer agreeing), a new one while fewer than topk are kept. */
export function admitCandidate(spec: ExploreSpec | undefined, known: ReadonlySet<string>, hash: string): { ok: true } | { ok: false; code: number; reason: string } {
  if (known.has(hash)) return { ok: true };
  const topk = spec?.topk;
  if (topk !== undefined && known.size >= topk) return { ok: false, code: ReasonCode.TOPK_REACHED, reason: `the task already keeps explore.topk = ${topk} distinct candidates` };
  return { ok: true };
}

/** How many new distinct hashes each round brought, from the proposals in order (round, hash). */
export function newHashesPerRound(proposals: ReadonlyArray<{ round: number; candidate_hash: string }>, rounds: number): number[] {
  const seen = new Set<string>();
  const out = new Array<number>(rounds).fill(0);
  for (const p of [...proposals].sort((a, b) => a.round - b.round)) {
    if (seen.has(p.candidate_hash)) continue;
    seen.add(p.candidate_hash);
    if (p.round >= 1 && p.round <= rounds) out[p.round - 1] = (out[p.round - 1] ?? 0) + 1;
  }
  return out;
}
