/**
 * Run budgets on PostgreSQL (migration 18): reserve, settle and read budget scopes, inside one
 * transaction that locks the scope rows (in id order, so two reservations never deadlock): two
 * workers racing for a budget's last tokens take turns, and the second sees the first's hold. The
 * arithmetic is shared with SQLite (budget-types.ts).
 *
 * @example
 *   const r = await reserveBudget(q, req, now); // inside BEGIN … COMMIT
 */
import { BUDGET_COUNTERS } from '../../core/manifest/guardrails/budget.js';
import {
  apply,
  byScopeRank,
  grant,
  newWarnings,
  release,
  RESERVED_COLUMNS,
  scopeValues,
  settle,
  SETTLED_AT,
  toScope,
  USED_COLUMNS,
  wouldExceed,
  type BudgetCounters,
  type BudgetReserveRequest,
  type BudgetReserveResult,
  type BudgetScopeUsage,
  type BudgetSettleRequest,
  type BudgetWarning,
} from '../budget-types.js';

type Row = Record<string, unknown>;
type Query = (text: string, values?: readonly unknown[]) => Promise<{ rows: Row[]; rowCount: number }>;

const MUTABLE = [...USED_COLUMNS, ...RESERVED_COLUMNS, 'warned', 'updated_at'];
const UPDATE_SCOPE = `UPDATE budget_scopes SET ${MUTABLE.map((c, i) => `${c} = $${i + 1}`).join(', ')} WHERE id = $${MUTABLE.length + 1}`;
const HELD = BUDGET_COUNTERS.map((c) => `COALESCE(SUM(${c}), 0) AS ${c}`).join(', ');

async function lock(q: Query, ids: readonly string[]): Promise<BudgetScopeUsage[]> {
  return (await q('SELECT * FROM budget_scopes WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE', [ids])).rows.map(toScope);
}

async function save(q: Query, scopes: readonly BudgetScopeUsage[]): Promise<void> {
  for (const s of scopes) await q(UPDATE_SCOPE, [...scopeValues(s), s.id]);
}

/** Make missing scopes, release their expired reservations, and reserve (or use) the amount if every limit allows it. */
export async function reserveBudget(q: Query, req: BudgetReserveRequest, now: number): Promise<BudgetReserveResult> {
  const keys = [...req.scopes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const k of keys) {
    await q('INSERT INTO budget_scopes (id, root_run_id, limits, started_at, warned, updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING', [k.id, k.root_run_id, JSON.stringify(k.limits), k.started_at, '[]', now]);
  }
  const scopes = await lock(q, [...new Set(keys.map((k) => k.id))]);
  const warnings = req.replaces ? await settleIn(q, scopes, { reservation_id: req.replaces.reservation_id, actual: req.replaces.actual, once: true }, now) : [];
  for (const s of scopes) {
    const expired = (await q(`SELECT ${HELD} FROM budget_reservations WHERE scope_id = $1 AND expires_at <= $2`, [s.id, now])).rows[0] as Partial<BudgetCounters>;
    release(s, numbers(expired));
    await q('DELETE FROM budget_reservations WHERE scope_id = $1 AND expires_at <= $2', [s.id, now]);
  }
  const granted = req.min ? grant(scopes, req.amount, req.min) : req.amount;
  const exceeded = wouldExceed(scopes, { ...req, amount: granted }, now);
  if (exceeded) {
    await save(q, scopes);
    return { ok: false, exceeded: req.min ? (wouldExceed(scopes, { ...req, amount: req.min }, now) ?? exceeded) : exceeded, ...(warnings.length ? { warnings } : {}) };
  }
  for (const s of scopes) {
    apply(s, { ...req, amount: granted }, now);
    warnings.push(...newWarnings(s, now));
    if (!req.commit) {
      await q(`INSERT INTO budget_reservations (id, scope_id, ${BUDGET_COUNTERS.join(', ')}, expires_at) VALUES ($1, $2, ${BUDGET_COUNTERS.map((_, i) => `$${i + 3}`).join(', ')}, $${BUDGET_COUNTERS.length + 3})`, [
        req.reservation_id,
        s.id,
        ...BUDGET_COUNTERS.map((c) => granted[c] ?? 0),
        now + req.ttl_ms,
      ]);
    }
  }
  await save(q, scopes);
  return req.min ? { ok: true, warnings, granted, now } : { ok: true, warnings };
}

/** Replace a reservation with what the call used; returns the warnings this crossed. */
export async function settleBudget(q: Query, req: BudgetSettleRequest, now: number): Promise<BudgetWarning[]> {
  const scopes = await lock(q, [...new Set(req.scope_ids)]);
  const warnings = await settleIn(q, scopes, req, now);
  await save(q, scopes);
  return warnings;
}

/** Settle a reservation in locked scopes (the caller saves them); `once`: leave a marker, and do nothing where one is. */
async function settleIn(q: Query, scopes: readonly BudgetScopeUsage[], req: Omit<BudgetSettleRequest, 'scope_ids'>, now: number): Promise<BudgetWarning[]> {
  const warnings: BudgetWarning[] = [];
  for (const s of scopes) {
    // A settled marker means this reservation was settled already, whoever settles again (as SQLite).
    const held: Row | undefined = (await q(`SELECT ${BUDGET_COUNTERS.join(', ')}, expires_at FROM budget_reservations WHERE id = $1 AND scope_id = $2`, [req.reservation_id, s.id])).rows[0];
    if (held && Number(held.expires_at) === SETTLED_AT) continue;
    if (req.once) {
      await q(`INSERT INTO budget_reservations (id, scope_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT (scope_id, id) DO UPDATE SET ${BUDGET_COUNTERS.map((c) => `${c} = 0`).join(', ')}, expires_at = excluded.expires_at`, [req.reservation_id, s.id, SETTLED_AT]);
    } else {
      await q('DELETE FROM budget_reservations WHERE id = $1 AND scope_id = $2', [req.reservation_id, s.id]);
    }
    settle(s, held ? numbers(held) : undefined, req.actual, now);
    warnings.push(...newWarnings(s, now));
  }
  return warnings;
}

/** Every scope of a root run's tree (its run budget first). */
export async function budgetScopes(q: Query, rootRunId: string): Promise<BudgetScopeUsage[]> {
  return (await q('SELECT * FROM budget_scopes WHERE root_run_id = $1', [rootRunId])).rows.map(toScope).sort(byScopeRank);
}

// NUMERIC and BIGINT arrive as strings.
function numbers(r: Partial<Record<string, unknown>>): Partial<BudgetCounters> {
  const out: Partial<BudgetCounters> = {};
  for (const c of BUDGET_COUNTERS) out[c] = Number(r[c] ?? 0);
  return out;
}
