/**
 * What `swarm breakers list | reset` and `GET /api/v1/breakers`, `POST /api/v1/breakers/{key}/reset`
 * show and do: the breakers with a row in the store (a breaker without one is closed), and a reset
 * that forgets a breaker's state (closed again, for every worker within their 250 ms cache).
 *
 * @example
 *   const list = await listBreakerViews(swarm.store, config.guardrails.breakers, Date.now());
 *   await resetBreaker(swarm.store, 'model:openai/gpt-4o-mini');
 */
import { UserError } from '../core/errors.js';
import { BREAKER_TARGETS, type BreakersSpec } from '../core/manifest/guardrails/breakers.js';
import type { BreakerRow, CircuitState } from '../store/breaker-types.js';
import type { Store } from '../store/store.js';
import { probeAt, resolveBreaker } from './circuit.js';

/** One breaker as the CLI and the API show it (times as ISO 8601). */
export interface BreakerView {
  key: string;
  kind: string;
  name: string;
  state: CircuitState;
  /** Closed: failures in the current window. Open or half-open: the failures that opened it (its window's, and each failed probe's since). */
  failures: number;
  opened_at: string | null;
  /** When an open breaker lets a probe through: its opening plus the cool-down it was opened with (an agent's own, if it set one). */
  probe_at: string | null;
  /** Probes let through and not yet settled (half-open). */
  probes: number;
  updated_at: string;
}

const KEY = /^(model|tool|mcp|http_host):.+$/;

export function breakerView(r: BreakerRow, spec: BreakersSpec | undefined): BreakerView {
  const name = r.key.slice(r.key.indexOf(':') + 1);
  const target = (Object.entries(BREAKER_TARGETS) as Array<[keyof typeof BREAKER_TARGETS, string]>).find(([, k]) => k === r.kind)?.[0];
  const s = resolveBreaker(spec, target ? spec?.[target]?.[name] : undefined);
  const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
  return {
    key: r.key,
    kind: r.kind,
    name,
    state: r.state,
    failures: r.failures,
    opened_at: r.state === 'closed' ? null : iso(r.opened_at),
    probe_at: iso(probeAt(r, s)),
    probes: r.probes,
    updated_at: new Date(r.updated_at).toISOString(),
  };
}

/** The breakers with state in the store, by key (placeholders of breakers never tripped included, as closed). */
export async function listBreakerViews(store: Store, spec: BreakersSpec | undefined): Promise<BreakerView[]> {
  return (await store.listBreakers()).map((r) => breakerView(r, spec));
}

/** Close a breaker (forget its failures). Unknown key: `BREAKER_NOT_FOUND` (exit 2, HTTP 404). */
export async function resetBreaker(store: Store, key: string, spec: BreakersSpec | undefined): Promise<BreakerView> {
  if (!KEY.test(key)) throw new UserError('BREAKER_KEY_INVALID', `'${key}' is not a breaker key; keys are model:<provider/model>, tool:<name>, mcp:<server> or http_host:<host>`, { key });
  const before = await store.deleteBreaker(key);
  if (!before) throw new UserError('BREAKER_NOT_FOUND', `no circuit breaker '${key}' has state (it is closed); 'swarm breakers list' shows the ones that have`, { key });
  return breakerView(before, spec);
}
