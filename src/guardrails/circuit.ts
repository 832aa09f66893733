/**
 * The circuit breaker's state machine, pure: no clock, no store. The store applies these functions
 * inside one transaction per change (`Store.updateBreaker`), so two workers that see the Nth failure
 * open the breaker once and half-open probes are limited across workers.
 *
 *   closed ──N failures (or failure rate) in the window──▶ open ──cool-down──▶ half_open
 *   half_open ──probe succeeds──▶ closed;  half_open ──probe fails──▶ open
 *
 * The cool-down is the one of the call that opened the breaker, kept in its row (`cooldown_ms`):
 * agents with other settings for the same model or tool wait the same time, not their own.
 *
 * An open (or half-open) row keeps the counts of the window that opened it (`failures`, and
 * `successes` for a failure rate), plus one failure per failed probe, until a probe closes it, so a
 * breaker listed as open shows why it opened. Nothing reads them meanwhile; closing starts afresh.
 *
 * @example
 *   const s = resolveBreaker(undefined, {});              // the defaults
 *   const row = recordOutcome(closedRow('model:openai/gpt-4o', 'model', 0), s, 'failure', false, 0, 1000);
 */
import type { BreakerSettings } from '../core/manifest/guardrails/breakers.js';
import type { BreakerRow } from '../store/breaker-types.js';

export type { BreakerRow, CircuitState } from '../store/breaker-types.js';

/** A breaker's settings with every default filled in. */
export interface ResolvedBreaker {
  enabled: boolean;
  failures: number;
  window_ms: number;
  failure_rate?: { threshold: number; min_calls: number };
  cooldown_ms: number;
  half_open_probes: number;
  fallback?: string;
}

export const BREAKER_DEFAULTS: ResolvedBreaker = Object.freeze({ enabled: true, failures: 5, window_ms: 60_000, cooldown_ms: 30_000, half_open_probes: 1 });

/** Settings layered over the defaults (later layers win field by field). */
export function resolveBreaker(...layers: ReadonlyArray<(BreakerSettings & { fallback?: string }) | undefined>): ResolvedBreaker {
  const out: ResolvedBreaker = { ...BREAKER_DEFAULTS };
  for (const l of layers) {
    if (!l) continue;
    if (l.enabled !== undefined) out.enabled = l.enabled;
    if (l.failures !== undefined) out.failures = l.failures;
    if (l.window_ms !== undefined) out.window_ms = l.window_ms;
    if (l.failure_rate !== undefined) out.failure_rate = l.failure_rate;
    if (l.cooldown_ms !== undefined) out.cooldown_ms = l.cooldown_ms;
    if (l.half_open_probes !== undefined) out.half_open_probes = l.half_open_probes;
    if (l.fallback !== undefined) out.fallback = l.fallback;
  }
  return out;
}

export function closedRow(key: string, kind: string, now: number): BreakerRow {
  return { key, kind, state: 'closed', failures: 0, successes: 0, window_started_at: now, opened_at: null, cooldown_ms: null, probes: 0, updated_at: now };
}

/**
 * The cool-down an open (or half-open) breaker waits: the one it was opened with, stored in its row,
 * else (a row from before that was stored) the caller's. Every caller thus probes at the same time,
 * whichever agent's settings it has.
 */
export function cooldownOf(row: BreakerRow, s: ResolvedBreaker): number {
  return row.cooldown_ms ?? s.cooldown_ms;
}

/** When an open breaker lets a probe through (null unless open). */
export function probeAt(row: BreakerRow, s: ResolvedBreaker): number | null {
  return row.state === 'open' && row.opened_at !== null ? row.opened_at + cooldownOf(row, s) : null;
}

/** What may happen to a call, judged from a (possibly cached) row without writing: the fast path. */
export function peek(row: BreakerRow | undefined, s: ResolvedBreaker, now: number): 'allow' | 'reject' | 'claim' {
  if (!row || row.state === 'closed') return 'allow';
  if (row.state === 'open' && now < (row.opened_at ?? 0) + cooldownOf(row, s)) return 'reject';
  // Cooled down, or half-open: a probe slot must be claimed atomically in the store.
  return 'claim';
}

/**
 * Claim a probe slot (in the store's transaction); `admitted: false` rejects the call. A closed
 * row admits without a change. A probe whose worker died never settles: its slot is given back
 * after one more cool-down.
 */
export function claimProbe(row: BreakerRow, s: ResolvedBreaker, now: number): { admitted: boolean; row: BreakerRow } {
  if (row.state === 'closed') return { admitted: true, row };
  if (row.state === 'open') {
    if (now < (row.opened_at ?? 0) + cooldownOf(row, s)) return { admitted: false, row };
    return { admitted: true, row: { ...row, state: 'half_open', probes: 1, updated_at: now } };
  }
  if (row.probes < s.half_open_probes) return { admitted: true, row: { ...row, probes: row.probes + 1, updated_at: now } };
  if (now >= row.updated_at + cooldownOf(row, s)) return { admitted: true, row: { ...row, probes: 1, updated_at: now } };
  return { admitted: false, row };
}

/** A call's outcome for its breaker: `neutral` (the caller's own fault, or aborted) counts nothing and frees a probe slot. */
export type CallOutcome = 'success' | 'failure' | 'neutral';

/**
 * The row after a call's outcome (in the store's transaction; the same object when nothing
 * changes). `probe`: the call held a half-open probe slot; only probes settle a half-open breaker.
 * `successes`: this worker's closed-state successes not yet written (they count towards the
 * failure rate only; a success in the closed state writes nothing on its own).
 */
export function recordOutcome(row: BreakerRow, s: ResolvedBreaker, outcome: CallOutcome, probe: boolean, successes: number, now: number): BreakerRow {
  const { key, kind } = row;
  if (row.state === 'half_open') {
    if (!probe) return row;
    if (outcome === 'success') return closedRow(key, kind, now);
    // A failed probe counts with the failures that opened it.
    if (outcome === 'failure') return { ...row, state: 'open', opened_at: now, cooldown_ms: s.cooldown_ms, probes: 0, failures: row.failures + 1, updated_at: now };
    return { ...row, probes: Math.max(0, row.probes - 1), updated_at: now };
  }
  // Open: a call let through before it opened finished; it changes nothing.
  if (row.state === 'open' || outcome !== 'failure') return row;
  const fresh = now - row.window_started_at >= s.window_ms;
  const failures = (fresh ? 0 : row.failures) + 1;
  const ok = (fresh ? 0 : row.successes) + (s.failure_rate ? successes : 0);
  const rate = s.failure_rate;
  const trips = failures >= s.failures || (rate !== undefined && failures + ok >= rate.min_calls && failures / (failures + ok) >= rate.threshold);
  // The window's counts stay with the open breaker (what opened it) until it closes.
  if (trips) return { ...row, state: 'open', opened_at: now, cooldown_ms: s.cooldown_ms, failures, successes: ok, probes: 0, window_started_at: fresh ? now : row.window_started_at, updated_at: now };
  return { ...row, failures, successes: ok, window_started_at: fresh ? now : row.window_started_at, updated_at: now };
}
