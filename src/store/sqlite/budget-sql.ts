/**
 * Run budgets on SQLite (migration 18): reserve, settle and read budget scopes. The caller runs
 * `reserve` and `settle` inside one IMMEDIATE transaction, so two processes sharing the file take
 * turns and never both spend the last tokens. The arithmetic is shared with PostgreSQL (budget-types.ts).
 *
 * @example
 *   const r = db.transaction(() => reserveBudget((sql) => db.prepare(sql), req, Date.now())).immediate();
 */
import type Database from 'better-sqlite3';
import { BUDGET_COUNTERS } from '../../core/manifest/guardrails/budget.js';
import {
  apply,
  byScopeRank,
  grant,
  newScope,
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
  type BudgetScopeKey,
  type BudgetScopeUsage,
  type BudgetSettleRequest,
  type BudgetWarning,
} from '../budget-types.js';

type Stmt = (sql: string) => Database.Statement;

const UPDATE_SCOPE = `UPDATE budget_scopes SET ${[...USED_COLUMNS, ...RESERVED_COLUMNS, 'warned', 'updated_at'].map((c) => `${c} = ?`).join(', ')} WHERE id = ?`;
const INSERT_SCOPE = `INSERT INTO budget_scopes (id, root_run_id, limits, started_at, ${[...USED_COLUMNS, ...RESERVED_COLUMNS, 'warned', 'updated_at'].join(', ')}) VALUES (${Array.from({ length: 4 + USED_COLUMNS.length + RESERVED_COLUMNS.length + 2 }, () => '?').join(', ')})`;
const HELD = BUDGET_COUNTERS.map((c) => `COALESCE(SUM(${c}), 0) AS ${c}`).join(', ');

/** The rows of these scopes that exist, in the order of `ids`. */
function load(stmt: Stmt, ids: readonly string[]): BudgetScopeUsage[] {
  const out: BudgetScopeUsage[] = [];
  for (const id of ids) {
    const s = loadOne(stmt, id);
    if (s) out.push(s);
  }
  return out;
}

function loadOne(stmt: Stmt, id: string): BudgetScopeUsage | undefined {
  const row = stmt('SELECT * FROM budget_scopes WHERE id = ?').get(id) as Record<string, unknown> | undefined;
  return row ? toScope(row) : undefined;
}

/** Write the scopes back; those in `fresh` have no row yet and are inserted, with what was applied to them. */
function save(stmt: Stmt, scopes: readonly BudgetScopeUsage[], fresh?: ReadonlySet<string>): void {
  for (const s of scopes) {
    if (fresh?.has(s.id)) stmt(INSERT_SCOPE).run(s.id, s.root_run_id, JSON.stringify(s.limits), s.started_at, ...scopeValues(s));
    else stmt(UPDATE_SCOPE).run(...scopeValues(s), s.id);
  }
}

/** Make missing scopes, release their expired reservations, and reserve (or use) the amount if every limit allows it. */
export function reserveBudget(stmt: Stmt, req: BudgetReserveRequest, now: number): BudgetReserveResult {
  // A scope's row is made on its first use (the transaction is IMMEDIATE: nobody makes it meanwhile).
  // A fresh scope has no reservations to sweep or settle, and its row is written once, at the end,
  // with what this request applied to it: the first call of a run reads one row and writes two.
  const keys = new Map(req.scopes.map((k) => [k.id, k]));
  const fresh = new Set<string>();
  const scopes = [...keys.keys()].sort().map((id) => {
    const row = loadOne(stmt, id);
    if (row) return row;
    fresh.add(id);
    return newScope(keys.get(id) as BudgetScopeKey, now);
  });
  const warnings = req.replaces ? settleIn(stmt, scopes, { reservation_id: req.replaces.reservation_id, actual: req.replaces.actual, once: true }, now) : [];
  for (const s of scopes) {
    if (fresh.has(s.id)) continue;
    const expired = stmt(`SELECT ${HELD} FROM budget_reservations WHERE scope_id = ? AND expires_at <= ?`).get(s.id, now) as BudgetCounters;
    release(s, expired);
    stmt('DELETE FROM budget_reservations WHERE scope_id = ? AND expires_at <= ?').run(s.id, now);
  }
  const granted = req.min ? grant(scopes, req.amount, req.min) : req.amount;
  const exceeded = wouldExceed(scopes, { ...req, amount: granted }, now);
  if (exceeded) {
    save(stmt, scopes, fresh);
    return { ok: false, exceeded: req.min ? (wouldExceed(scopes, { ...req, amount: req.min }, now) ?? exceeded) : exceeded, ...(warnings.length ? { warnings } : {}) };
  }
  for (const s of scopes) {
    apply(s, { ...req, amount: granted }, now);
    warnings.push(...newWarnings(s, now));
    if (!req.commit) {
      stmt(`INSERT INTO budget_reservations (id, scope_id, ${BUDGET_COUNTERS.join(', ')}, expires_at) VALUES (?, ?, ${BUDGET_COUNTERS.map(() => '?').join(', ')}, ?)`).run(
        req.reservation_id,
        s.id,
        ...BUDGET_COUNTERS.map((c) => granted[c] ?? 0),
        now + req.ttl_ms,
      );
    }
  }
  save(stmt, scopes, fresh);
  return req.min ? { ok: true, warnings, granted, now } : { ok: true, warnings };
}

/** Replace a reservation with what the call used; returns the warnings this crossed. */
export function settleBudget(stmt: Stmt, req: BudgetSettleRequest, now: number): BudgetWarning[] {
  const scopes = load(stmt, [...new Set(req.scope_ids)].sort());
  const warnings = settleIn(stmt, scopes, req, now);
  save(stmt, scopes);
  return warnings;
}

/** Settle a reservation in loaded scopes (the caller saves them); `once`: leave a marker, and do nothing where one is. */
function settleIn(stmt: Stmt, scopes: readonly BudgetScopeUsage[], req: Omit<BudgetSettleRequest, 'scope_ids'>, now: number): BudgetWarning[] {
  const warnings: BudgetWarning[] = [];
  for (const s of scopes) {
    const held = stmt(`SELECT ${BUDGET_COUNTERS.join(', ')}, expires_at FROM budget_reservations WHERE id = ? AND scope_id = ?`).get(req.reservation_id, s.id) as (BudgetCounters & { expires_at: number }) | undefined;
    if (held?.expires_at === SETTLED_AT) continue;
    if (req.once) stmt(`INSERT INTO budget_reservations (id, scope_id, expires_at) VALUES (?, ?, ?) ON CONFLICT(scope_id, id) DO UPDATE SET ${BUDGET_COUNTERS.map((c) => `${c} = 0`).join(', ')}, expires_at = excluded.expires_at`).run(req.reservation_id, s.id, SETTLED_AT);
    else stmt('DELETE FROM budget_reservations WHERE id = ? AND scope_id = ?').run(req.reservation_id, s.id);
    settle(s, held, req.actual, now);
    warnings.push(...newWarnings(s, now));
  }
  return warnings;
}

/** Every scope of a root run's tree (its run budget first). */
export function budgetScopes(stmt: Stmt, rootRunId: string): BudgetScopeUsage[] {
  // Ordered here (byScopeRank ends with the id), not by SQL: ORDER BY would sort in a temporary b-tree.
  return (stmt('SELECT * FROM budget_scopes WHERE root_run_id = ?').all(rootRunId) as Array<Record<string, unknown>>).map(toScope).sort(byScopeRank);
}
