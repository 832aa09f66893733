/**
 * Run budgets in the store (migration 18): one row per budget scope (a run's budget keyed by its root
 * run, a step's, an agent's within a step) with used and reserved counters, and one row per open
 * reservation and scope, so a reservation a crash left behind expires and is given back instead of
 * holding the budget forever. Both stores read and write the rows and share the arithmetic here, so
 * SQLite and PostgreSQL decide alike.
 *
 * @example
 *   const r = await store.reserveBudget({ reservation_id: 'r1', scopes: [runScope], amount: { tokens_out: 4096, model_calls: 1 }, ttl_ms: 600_000 });
 *   if (r.ok) await store.settleBudget({ reservation_id: 'r1', scope_ids: [runScope.id], actual: { tokens_out: 120, model_calls: 1 } });
 */
import { BUDGET_COUNTERS, DEFAULT_WARN_AT, type BudgetCounter, type BudgetLimit, type BudgetSpec } from '../core/manifest/guardrails/budget.js';

/** A budget scope a call draws on, as the guard knows it (the row is made from it on first use). */
export interface BudgetScopeKey {
  /** `run:<root run id>`, `run:<run id>` (a sub-workflow's own budget), `step:<run>/<step>`, `agent:<run>/<step>/<agent>`. */
  id: string;
  root_run_id: string;
  limits: BudgetSpec;
  /** Where `wall_clock` counts from (the root run's creation for a run budget), store clock, ms. */
  started_at: number;
}

export type BudgetAmount = Partial<Record<BudgetCounter, number>>;
export type BudgetCounters = Record<BudgetCounter, number>;

/** A scope as it stands: its limits, what was used, what open reservations hold. */
export interface BudgetScopeUsage {
  id: string;
  root_run_id: string;
  limits: BudgetSpec;
  started_at: number;
  used: BudgetCounters & { handoff_depth: number };
  reserved: BudgetCounters;
  /** Limits whose warning was recorded (once per limit per scope). */
  warned: BudgetLimit[];
  updated_at: number;
}

export interface BudgetReserveRequest {
  reservation_id: string;
  scopes: readonly BudgetScopeKey[];
  /** The worst case the call may use; the counters it names are the ones it draws on. */
  amount: BudgetAmount;
  /** Used at once (a tool call): nothing is held, nothing to settle. */
  commit?: boolean;
  /** A handoff: the conversation's handoff depth after it. */
  handoff_depth?: number;
  /** How long an unsettled reservation holds the budget (a crash's is released after it). */
  ttl_ms: number;
  /**
   * A lease: hold up to `amount` as the budget allows (see `grant`), but at least `min` (the call
   * about to be made); the result says what was granted. Without it, exactly `amount` or nothing.
   */
  min?: BudgetAmount;
  /** A lease this one replaces: settled first, in the same transaction, whatever becomes of the new one. */
  replaces?: { reservation_id: string; actual: BudgetAmount };
}

/** The limit a call would cross: in `scope`, `used` (+ `reserved` by calls in flight) + `requested` > `allowed`. */
export interface BudgetExceeded {
  scope: string;
  limit: BudgetLimit;
  used: number;
  reserved: number;
  requested: number;
  allowed: number;
}

/** A limit that crossed its scope's `warn_at` just now (reported once). */
export interface BudgetWarning {
  scope: string;
  limit: BudgetLimit;
  used: number;
  allowed: number;
}

export type BudgetReserveResult =
  /** `granted` and `now` (the store's clock) for a lease (`min` set). */
  | { ok: true; warnings: BudgetWarning[]; granted?: BudgetAmount; now?: number }
  /** `warnings`: crossed by settling the lease a refused one replaced. */
  | { ok: false; exceeded: BudgetExceeded; warnings?: BudgetWarning[] };

export interface BudgetSettleRequest {
  reservation_id: string;
  scope_ids: readonly string[];
  /** What the call used (all zero: it failed before using anything). */
  actual: BudgetAmount;
  /**
   * Settle it once: the reservation's rows stay as zero-amount markers that never expire, so settling
   * it again (a resumed step settling its predecessor's lease from the checkpoint) changes nothing.
   */
  once?: boolean;
}

/** `expires_at` of a reservation settled `once`: a marker, never released (the runs' retention deletes it with its scope). */
export const SETTLED_AT = 8_640_000_000_000_000;

/** A lease takes at most this share of what is left of a limit, so concurrent steps leave each other room. */
export const LEASE_SHARE = 1 / 8;

/** The reservation rows of one scope that expired, summed. */
export type Released = BudgetCounters;

export const ZERO_COUNTERS: BudgetCounters = Object.freeze({ tokens_in: 0, tokens_out: 0, cost_usd: 0, model_calls: 0, tool_calls: 0 });

/** The columns of `budget_scopes` after id, root_run_id, limits, started_at, warned, updated_at. */
export const USED_COLUMNS = [...BUDGET_COUNTERS.map((c) => `used_${c}`), 'used_handoff_depth'] as const;
export const RESERVED_COLUMNS = BUDGET_COUNTERS.map((c) => `reserved_${c}`);

/** A `budget_scopes` row as a scope. */
export function toScope(row: Record<string, unknown>): BudgetScopeUsage {
  const used = { handoff_depth: Number(row.used_handoff_depth ?? 0) } as BudgetScopeUsage['used'];
  const reserved = {} as BudgetCounters;
  for (const c of BUDGET_COUNTERS) {
    used[c] = Number(row[`used_${c}`] ?? 0);
    reserved[c] = Number(row[`reserved_${c}`] ?? 0);
  }
  return {
    id: row.id as string,
    root_run_id: row.root_run_id as string,
    limits: JSON.parse(row.limits as string) as BudgetSpec,
    started_at: Number(row.started_at),
    used,
    reserved,
    warned: JSON.parse((row.warned as string | null) ?? '[]') as BudgetLimit[],
    updated_at: Number(row.updated_at),
  };
}

/** A scope that has no row yet: nothing used, nothing reserved, no warning given. */
export function newScope(k: BudgetScopeKey, now: number): BudgetScopeUsage {
  return { id: k.id, root_run_id: k.root_run_id, limits: k.limits, started_at: k.started_at, used: { ...ZERO_COUNTERS, handoff_depth: 0 }, reserved: { ...ZERO_COUNTERS }, warned: [], updated_at: now };
}

/** The values of a scope's mutable columns, in the order of `USED_COLUMNS`, `RESERVED_COLUMNS`, then warned and updated_at. */
export function scopeValues(s: BudgetScopeUsage): unknown[] {
  return [...BUDGET_COUNTERS.map((c) => s.used[c]), s.used.handoff_depth, ...BUDGET_COUNTERS.map((c) => s.reserved[c]), JSON.stringify(s.warned), s.updated_at];
}

/** Give back what expired reservations of a scope held (never below zero: float sums of cost drift). */
export function release(s: BudgetScopeUsage, r: Partial<Released>): void {
  for (const c of BUDGET_COUNTERS) s.reserved[c] = Math.max(0, s.reserved[c] - (r[c] ?? 0));
}

// A cost sum like 0.1 + 0.2 must not cross 0.3 by rounding.
const EPSILON = 1e-9;

/** The first limit the request would cross in any of its scopes, or undefined. */
export function wouldExceed(scopes: readonly BudgetScopeUsage[], req: BudgetReserveRequest, now: number): BudgetExceeded | undefined {
  for (const s of scopes) {
    const l = s.limits;
    if (l.wall_clock !== undefined) {
      const elapsed = Math.max(0, (now - s.started_at) / 1000);
      if (elapsed >= l.wall_clock) return { scope: s.id, limit: 'wall_clock', used: Math.round(elapsed * 1000) / 1000, reserved: 0, requested: 0, allowed: l.wall_clock };
    }
    if (req.handoff_depth !== undefined && l.handoff_depth !== undefined && req.handoff_depth > l.handoff_depth) {
      return { scope: s.id, limit: 'handoff_depth', used: s.used.handoff_depth, reserved: 0, requested: req.handoff_depth, allowed: l.handoff_depth };
    }
    for (const c of BUDGET_COUNTERS) {
      const allowed = l[c];
      const requested = req.amount[c];
      // A counter the call does not draw on (a lease granted nothing more of it) is not its limit,
      // even when that limit is used up: a last model call needs no tool call.
      if (allowed === undefined || requested === undefined || requested === 0) continue;
      const used = s.used[c];
      const reserved = s.reserved[c];
      if (used >= allowed || used + reserved + requested > allowed + EPSILON) return { scope: s.id, limit: c, used, reserved, requested, allowed };
    }
  }
  return undefined;
}

/**
 * What a lease request gets: per counter, `amount` capped at LEASE_SHARE of what is left in the
 * tightest scope and at what is left before a warning not yet given (so usage under a lease never
 * passes a warning threshold unseen), but never less than `min`. Counters no scope limits get `min`.
 */
export function grant(scopes: readonly BudgetScopeUsage[], amount: BudgetAmount, min: BudgetAmount): BudgetAmount {
  const out: BudgetAmount = {};
  for (const c of BUDGET_COUNTERS) {
    const want = amount[c];
    const need = min[c] ?? 0;
    if (want === undefined && min[c] === undefined) continue;
    let cap = Infinity;
    for (const s of scopes) {
      const allowed = s.limits[c];
      if (allowed === undefined) continue;
      const left = allowed - s.used[c] - s.reserved[c];
      cap = Math.min(cap, left * LEASE_SHARE);
      if (!s.warned.includes(c)) cap = Math.min(cap, allowed * (s.limits.warn_at ?? DEFAULT_WARN_AT) - s.used[c] - s.reserved[c]);
    }
    const capped = cap === Infinity ? need : Math.min(want ?? need, c === 'cost_usd' ? cap : Math.floor(cap));
    out[c] = Math.max(need, capped);
  }
  return out;
}

/** Hold (or, with `commit`, use) the request's amount in a scope. */
export function apply(s: BudgetScopeUsage, req: BudgetReserveRequest, now: number): void {
  for (const c of BUDGET_COUNTERS) {
    const n = req.amount[c] ?? 0;
    if (req.commit) s.used[c] += n;
    else s.reserved[c] += n;
  }
  if (req.handoff_depth !== undefined) s.used.handoff_depth = Math.max(s.used.handoff_depth, req.handoff_depth);
  s.updated_at = now;
}

/** Settle in a scope: give back what the reservation held there (`held`, absent when it expired) and add what was used. */
export function settle(s: BudgetScopeUsage, held: Partial<BudgetCounters> | undefined, actual: BudgetAmount, now: number): void {
  if (held) release(s, held);
  for (const c of BUDGET_COUNTERS) s.used[c] += actual[c] ?? 0;
  s.updated_at = now;
}

/** Limits that have just crossed their scope's warning threshold; they are marked warned in `s`. */
export function newWarnings(s: BudgetScopeUsage, now: number): BudgetWarning[] {
  const warnAt = s.limits.warn_at ?? DEFAULT_WARN_AT;
  const out: BudgetWarning[] = [];
  const check = (limit: BudgetLimit, used: number): void => {
    const allowed = s.limits[limit];
    if (allowed === undefined || allowed <= 0 || s.warned.includes(limit)) return;
    if (used >= allowed * warnAt - EPSILON) {
      s.warned.push(limit);
      out.push({ scope: s.id, limit, used, allowed });
    }
  };
  for (const c of BUDGET_COUNTERS) check(c, s.used[c]);
  if (s.used.handoff_depth > 0) check('handoff_depth', s.used.handoff_depth);
  check('wall_clock', Math.max(0, (now - s.started_at) / 1000));
  return out;
}

/** Reports list run scopes, then step scopes, then agent scopes. */
export function byScopeRank(a: BudgetScopeUsage, b: BudgetScopeUsage): number {
  const rank = (id: string): number => (id.startsWith('run:') ? 0 : id.startsWith('step:') ? 1 : 2);
  return rank(a.id) - rank(b.id) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
