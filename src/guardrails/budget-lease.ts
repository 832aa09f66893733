/**
 * Budget leases: a step holds a slice of its budget in the store (a reservation, like a model
 * call's) and gates its calls against that slice in memory, so a turn makes no store round trip
 * while the budget is far from its limits. Other processes see the slice as reserved and cannot
 * spend it; near a limit the store grants no more than the call at hand (see `grant` in
 * src/store/budget-types.ts), which is the per-call reservation again.
 *
 * The store is visited when a call does not fit the lease (or the lease is LEASE_REFRESH_MS old):
 * one transaction settles the old lease with what was used of it and takes the next. When the loop
 * ends the lease is settled and the rest given back.
 *
 * Crashes: what a lease has used is saved with every checkpoint (the guard state's `budget_leases`),
 * so the step that resumes the conversation settles its predecessor's lease with the usage up to
 * that checkpoint (the work after it is done again, or counted again when replayed). A lease is
 * settled once (the store keeps a marker), so a lease settled both by its own step and, later, from
 * a checkpoint counts once. A lease nobody settles holds its slice until LEASE_TTL_MS.
 *
 * @example
 *   const pool = new LeasePool(store, report, (e) => budgetExceeded(e, ctx));
 *   const held = await pool.take(t.state, scopes, { tokens_out: 4096, model_calls: 1 }, true);
 *   held?.settle({ tokens_out: 120, model_calls: 1 });
 */
import { randomUUID } from 'node:crypto';
import { BUDGET_COUNTERS, type BudgetCounter } from '../core/manifest/guardrails/budget.js';
import type { BudgetAmount, BudgetExceeded, BudgetScopeKey, BudgetWarning } from '../store/budget-types.js';
import type { Store } from '../store/store.js';
import type { GuardState } from './guard.js';

/** How many calls' worst case a lease asks for (the store may grant less). */
export const LEASE_CALLS = 64;
/** A conversation's input grows with every turn: a lease asks for LEASE_CALLS calls of this many times the input of the call at hand. */
const INPUT_GROWTH = 4;
/** A lease is gated in memory for at most this long, then renewed: the store checks wall-clock limits and warnings at least this often. */
export const LEASE_REFRESH_MS = 2_000;
/** How long a lease nobody settles (its worker died and nobody resumed its step) holds its slice. */
export const LEASE_TTL_MS = 15 * 60_000;

const STATE_KEY = 'budget_leases';
// A cost sum like 0.1 + 0.2 must not cross 0.3 by rounding (as in the store).
const EPSILON = 1e-9;

/** A lease as the guard state saves it: its scopes and what was used of it. */
interface LeaseRecord {
  scopes: string[];
  used: BudgetAmount;
}

interface Lease {
  id: string;
  scopes: readonly BudgetScopeKey[];
  granted: BudgetAmount;
  /** The same object as the state record's `used`: saved with each checkpoint. */
  used: BudgetAmount;
  /** Worst cases of calls in flight. */
  held: BudgetAmount;
  /** Local clock: renew from then on (the refresh, or a scope's wall-clock limit). */
  until: number;
}

/** A call's draw on a lease; `settle` replaces its worst case with what it used (empty: it failed). */
export interface LeaseHold {
  settle(actual: BudgetAmount): void;
}

export type LeaseReport = (warnings: readonly BudgetWarning[], exceeded?: BudgetExceeded) => Promise<void>;
export type LeaseRefused = (exceeded: BudgetExceeded) => Error;

/** The leases of one step attempt, one per set of scopes (model and tool calls on the same scopes share one). */
export class LeasePool {
  private readonly leases = new Map<string, Lease>();
  private queue: Promise<unknown> = Promise.resolve();
  private adopted = false;

  constructor(
    private readonly store: Store,
    private readonly report: LeaseReport,
    private readonly refused: LeaseRefused,
  ) {}

  /**
   * Draw `call` (its worst case) on the lease of `scopes`: in memory when it fits,
   * else through the store. `hold`: the amount is held until `settle` (a model call); otherwise it
   * is used at once (a tool call). Throws the `refused` error when the budget does not allow it.
   */
  async take(state: GuardState, scopes: readonly BudgetScopeKey[], call: BudgetAmount, hold: boolean): Promise<LeaseHold | undefined> {
    if (!this.adopted) await this.serial(() => this.adopt(state));
    const now = this.takeNow(scopes, call, hold);
    if (now) return now.hold;
    const key = leaseKey(scopes);
    const amount = leasedAmount(scopes, call);
    // In turn with other renewals, drawing before anyone else can, through the store.
    const target = await this.serial(async () => draw(await this.renew(state, key, scopes, amount), amount, hold));
    return hold ? this.holdOn(key, target, amount) : undefined;
  }

  /**
   * `take` without a turn of the event loop, when the lease in memory covers the call (most calls);
   * undefined when the store must be visited: then call `take`.
   */
  takeNow(scopes: readonly BudgetScopeKey[], call: BudgetAmount, hold: boolean): { hold: LeaseHold | undefined } | undefined {
    if (!this.adopted) return undefined;
    const key = leaseKey(scopes);
    const lease = this.leases.get(key);
    if (!lease) return undefined;
    const amount = leasedAmount(scopes, call);
    if (!fits(lease, amount, Date.now())) return undefined;
    draw(lease, amount, hold);
    return { hold: hold ? this.holdOn(key, lease, amount) : undefined };
  }

  private holdOn(key: string, target: Lease, amount: BudgetAmount): LeaseHold {
    return {
      settle: (actual) => {
        // A renewal moved what was held to the next lease: settle there.
        const now = this.leases.get(key) ?? target;
        add(now.held, amount, -1);
        add(now.used, actual);
      },
    };
  }

  /** Settle every lease (and any a predecessor left in the state): the step's usage goes to the store, the rest is given back. */
  async end(state: GuardState): Promise<void> {
    await this.serial(async () => {
      await this.adopt(state);
      for (const [key, lease] of this.leases) {
        this.leases.delete(key);
        await this.settle(state, lease.id, lease.scopes.map((s) => s.id), lease.used);
      }
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Settle the leases of an earlier attempt or process found in the state (with the usage saved at its last checkpoint). */
  private async adopt(state: GuardState): Promise<void> {
    this.adopted = true;
    const mine = new Set([...this.leases.values()].map((l) => l.id));
    for (const [id, rec] of Object.entries(records(state))) if (!mine.has(id)) await this.settle(state, id, rec.scopes, rec.used);
  }

  private async settle(state: GuardState, id: string, scopeIds: readonly string[], used: BudgetAmount): Promise<void> {
    const warnings = await this.store.settleBudget({ reservation_id: id, scope_ids: scopeIds, actual: used, once: true });
    delete records(state)[id];
    await this.report(warnings);
  }

  private async renew(state: GuardState, key: string, scopes: readonly BudgetScopeKey[], amount: BudgetAmount): Promise<Lease> {
    const old = this.leases.get(key);
    // Another call renewed it while this one waited.
    if (old && fits(old, amount, Date.now())) return old;
    const id = randomUUID();
    const min = { ...amount };
    if (old) add(min, old.held);
    // LEASE_CALLS calls like this one; for what else the scopes limit (a model call's lease also
    // serves the tool calls), as much as the last lease got, or LEASE_CALLS tool calls.
    const want: BudgetAmount = {};
    for (const c of BUDGET_COUNTERS) {
      if (min[c] !== undefined) want[c] = (amount[c] ?? 0) * LEASE_CALLS * (c === 'tokens_in' ? INPUT_GROWTH : 1) + (old?.held[c] ?? 0);
      else if (scopes.some((s) => s.limits[c] !== undefined)) {
        const more = old?.granted[c] ?? (c === 'tool_calls' ? LEASE_CALLS : undefined);
        if (more !== undefined) want[c] = more;
      }
    }
    const res = await this.store.reserveBudget({
      reservation_id: id,
      scopes,
      amount: want,
      min,
      ttl_ms: LEASE_TTL_MS,
      ...(old ? { replaces: { reservation_id: old.id, actual: old.used } } : {}),
    });
    if (old) {
      this.leases.delete(key);
      delete records(state)[old.id];
    }
    if (!res.ok) {
      await this.report(res.warnings ?? [], res.exceeded);
      throw this.refused(res.exceeded);
    }
    const local = Date.now();
    const skew = (res.now ?? local) - local;
    let until = local + LEASE_REFRESH_MS;
    for (const s of scopes) if (s.limits.wall_clock !== undefined) until = Math.min(until, s.started_at + s.limits.wall_clock * 1000 - skew);
    const used: BudgetAmount = {};
    const lease: Lease = { id, scopes, granted: res.granted ?? min, used, held: old ? { ...old.held } : {}, until };
    records(state)[id] = { scopes: scopes.map((s) => s.id), used };
    this.leases.set(key, lease);
    await this.report(res.warnings);
    return lease;
  }
}

// A lease's key by its scopes: callers pass the same array for the same scopes, call after call.
const keys = new WeakMap<readonly BudgetScopeKey[], string>();
function leaseKey(scopes: readonly BudgetScopeKey[]): string {
  let key = keys.get(scopes);
  if (key === undefined) {
    key = scopes.map((s) => s.id).join(' ');
    keys.set(scopes, key);
  }
  return key;
}

function records(state: GuardState): Record<string, LeaseRecord> {
  return ((state[STATE_KEY] as Record<string, LeaseRecord> | undefined) ??= {});
}

function counters(a: BudgetAmount): BudgetCounter[] {
  return BUDGET_COUNTERS.filter((c) => a[c] !== undefined);
}

function fits(l: Lease, amount: BudgetAmount, now: number): boolean {
  if (now >= l.until) return false;
  for (const c of counters(amount)) {
    const granted = l.granted[c];
    if (granted === undefined || (l.used[c] ?? 0) + (l.held[c] ?? 0) + (amount[c] ?? 0) > granted + EPSILON) return false;
  }
  return true;
}

/** What of a call a lease gates: only what a scope limits (what else the call uses is still counted when it settles). */
function leasedAmount(scopes: readonly BudgetScopeKey[], call: BudgetAmount): BudgetAmount {
  const amount: BudgetAmount = {};
  for (const c of counters(call)) if (scopes.some((s) => s.limits[c] !== undefined)) amount[c] = call[c];
  return amount;
}

/** Draw a call on a lease: held until it settles (a model call), or used at once (a tool call). */
function draw(l: Lease, amount: BudgetAmount, hold: boolean): Lease {
  add(hold ? l.held : l.used, amount);
  return l;
}

function add(to: BudgetAmount, a: BudgetAmount, sign = 1): void {
  for (const c of counters(a)) to[c] = (to[c] ?? 0) + sign * (a[c] ?? 0);
}
