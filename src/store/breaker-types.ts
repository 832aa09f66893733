/**
 * The rows of `circuit_breakers` (migrations 19 and 32): the shared state of the circuit breakers, read and
 * changed by every worker of a deployment. The state machine is in src/guardrails/circuit.ts; the
 * store only reads the row and applies a change to it atomically.
 *
 * @example
 *   const { before, after } = await store.updateBreaker('model:openai/gpt-4o', 'model', (row) => next(row));
 */

export type CircuitState = 'closed' | 'open' | 'half_open';

/** One breaker's shared state; no row: closed with no failures. */
export interface BreakerRow {
  /** `model:<provider/model>`, `tool:<name>`, `mcp:<server>`, `http_host:<host>`. */
  key: string;
  kind: string;
  state: CircuitState;
  /** Failures in the current window (closed); open or half-open: the window's that opened it, plus each failed probe's. */
  failures: number;
  /** Calls that succeeded in the current window (written only for the failure rate; kept while open, as `failures` is). */
  successes: number;
  window_started_at: number;
  /** When it last opened (open, half_open). */
  opened_at: number | null;
  /**
   * The cool-down it was opened with (open, half_open): the settings of the call that opened it,
   * which may be an agent's own. Every worker waits this long before a probe, whatever its own
   * settings say, so the probe time is one (the one `swarm breakers list` shows). Null: closed, or
   * a row written before migration 32 (the caller's cool-down applies).
   */
  cooldown_ms: number | null;
  /** Probes let through and not yet settled (half_open). */
  probes: number;
  updated_at: number;
}

/** A change to one row: the row as it is (the placeholder of a closed breaker when there is none) to the row as it becomes. */
export type BreakerChange = (row: BreakerRow) => BreakerRow;

export const BREAKER_COLUMNS = ['key', 'kind', 'state', 'failures', 'successes', 'window_started_at', 'opened_at', 'cooldown_ms', 'probes', 'updated_at'] as const;

/** The placeholder of a breaker with no row: closed, no failures, its window long over. */
export function emptyBreaker(key: string, kind: string): BreakerRow {
  return { key, kind, state: 'closed', failures: 0, successes: 0, window_started_at: 0, opened_at: null, cooldown_ms: null, probes: 0, updated_at: 0 };
}

export function toBreakerRow(r: Record<string, unknown>): BreakerRow {
  return {
    key: String(r.key),
    kind: String(r.kind),
    state: r.state as CircuitState,
    failures: Number(r.failures),
    successes: Number(r.successes),
    window_started_at: Number(r.window_started_at),
    opened_at: r.opened_at === null || r.opened_at === undefined ? null : Number(r.opened_at),
    cooldown_ms: r.cooldown_ms === null || r.cooldown_ms === undefined ? null : Number(r.cooldown_ms),
    probes: Number(r.probes),
    updated_at: Number(r.updated_at),
  };
}
