/**
 * `guardrails.breakers` (swarm.yaml, agent.yaml): circuit breakers' thresholds, window, cool-down,
 * probes and fallback models. Pure parsing and validation; the behaviour is in
 * src/guardrails/breakers.ts.
 *
 * ```yaml
 * guardrails:
 *   breakers:
 *     failures: 5            # open after this many failures ...
 *     window: 60s            # ... within this window
 *     failure_rate: { threshold: 0.5, min_calls: 10 }   # or this share of failed calls (optional)
 *     cooldown: 30s          # open this long, then half-open
 *     half_open_probes: 1    # calls let through while half-open
 *     models:
 *       openai/gpt-4o-mini: { failures: 3, fallback: anthropic/claude-haiku-4-5 }
 *     tools: { search: { cooldown: 10s } }
 *     mcp: { github: { failures: 2 } }
 *     http_hosts: { api.example.com: { window: 30s } }
 * ```
 */
import { shownValue } from '../problems.js';
import { fieldName, type GuardrailSection } from './section.js';

/** The thresholds of one breaker (every field optional in a file; defaults fill them in). */
export interface BreakerSettings {
  enabled?: boolean;
  failures?: number;
  window_ms?: number;
  failure_rate?: { threshold: number; min_calls: number };
  cooldown_ms?: number;
  half_open_probes?: number;
}

/** A model's breaker may name a model to call while it is open. */
export interface ModelBreakerSettings extends BreakerSettings {
  /** `provider/model`. */
  fallback?: string;
}

/** `guardrails.breakers` as validated (durations in milliseconds). */
export interface BreakersSpec extends BreakerSettings {
  models?: Record<string, ModelBreakerSettings>;
  tools?: Record<string, BreakerSettings>;
  mcp?: Record<string, BreakerSettings>;
  http_hosts?: Record<string, BreakerSettings>;
}

/** The kinds of per-target overrides, as `guardrails.breakers` names them, and the key prefix of each. */
export const BREAKER_TARGETS = { models: 'model', tools: 'tool', mcp: 'mcp', http_hosts: 'http_host' } as const;

const SETTINGS_PROPS: Record<string, unknown> = {
  enabled: {},
  failures: {},
  window: {},
  failure_rate: {},
  cooldown: {},
  half_open_probes: {},
};
const targetMap = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  type: 'object',
  additionalProperties: { type: 'object', additionalProperties: false, properties: { ...SETTINGS_PROPS, ...extra } },
});

export const BREAKERS_SCHEMA: Record<string, unknown> = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...SETTINGS_PROPS,
    models: targetMap({ fallback: {} }),
    tools: targetMap(),
    mcp: targetMap(),
    http_hosts: targetMap(),
  },
};

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** `250ms`, `30s`, `2m`, `1h` in milliseconds; undefined for anything else. */
export function parseBreakerDuration(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d{1,9})(ms|s|m|h)$/.exec(v.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : undefined;
}

const MODEL_REF = /^[a-z0-9][a-z0-9_-]*\/\S+$/i;

/** Validate `guardrails.breakers` (its JSON Schema has passed); problems go to `s.problems` with file, field and line. */
export function parseBreakersSpec(s: GuardrailSection): BreakersSpec {
  const raw = s.value;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    s.problems.add(fieldName(s.path), 'must be a mapping (failures, window, cooldown, models, tools, mcp, http_hosts, …)', s.lineOf(s.path));
    return {};
  }
  const out: BreakersSpec = settings(s, s.path, raw as Record<string, unknown>, false);
  for (const kind of Object.keys(BREAKER_TARGETS) as Array<keyof typeof BREAKER_TARGETS>) {
    const map = (raw as Record<string, unknown>)[kind];
    if (map === undefined) continue;
    const at = [...s.path, kind];
    if (map === null || typeof map !== 'object' || Array.isArray(map)) {
      s.problems.add(fieldName(at), `must be a mapping of ${kind === 'models' ? 'provider/model' : kind === 'http_hosts' ? 'host' : 'name'} to settings`, s.lineOf(at));
      continue;
    }
    const targets: Record<string, ModelBreakerSettings> = {};
    for (const [name, value] of Object.entries(map as Record<string, unknown>)) {
      const p = [...at, name];
      if (kind === 'models' && !MODEL_REF.test(name)) s.problems.add(fieldName(p), `'${name}' is not a model reference; write provider/model, e.g. openai/gpt-4o-mini`, s.lineOf(p));
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        s.problems.add(fieldName(p), 'must be a mapping of breaker settings (failures, window, cooldown, …)', s.lineOf(p));
        continue;
      }
      targets[name] = settings(s, p, value as Record<string, unknown>, kind === 'models');
    }
    out[kind] = targets;
  }
  return out;
}

function settings(s: GuardrailSection, path: Array<string | number>, raw: Record<string, unknown>, model: boolean): ModelBreakerSettings {
  const out: ModelBreakerSettings = {};
  const bad = (key: string, problem: string): void => s.problems.add(fieldName([...path, key]), problem, s.lineOf([...path, key]));
  if (raw.enabled !== undefined) {
    if (typeof raw.enabled !== 'boolean') bad('enabled', `must be true or false, not ${describe(raw.enabled)}`);
    else out.enabled = raw.enabled;
  }
  const whole = (key: 'failures' | 'half_open_probes', min: number, max: number): void => {
    const v = raw[key];
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(key, `must be a whole number from ${min} to ${max}, not ${describe(v)}`);
    else out[key] = v;
  };
  whole('failures', 1, 1_000_000);
  whole('half_open_probes', 1, 1000);
  const duration = (key: 'window' | 'cooldown', into: 'window_ms' | 'cooldown_ms'): void => {
    const v = raw[key];
    if (v === undefined) return;
    const ms = parseBreakerDuration(v);
    if (ms === undefined || ms < 1) bad(key, `must be a duration such as 500ms, 30s or 2m, not ${describe(v)}`);
    else out[into] = ms;
  };
  duration('window', 'window_ms');
  duration('cooldown', 'cooldown_ms');
  if (raw.failure_rate !== undefined) {
    const fr = raw.failure_rate as Record<string, unknown> | null;
    const p = [...path, 'failure_rate'];
    if (fr === null || typeof fr !== 'object' || Array.isArray(fr)) {
      bad('failure_rate', 'must be a mapping { threshold: 0.5, min_calls: 10 }');
    } else {
      for (const k of Object.keys(fr)) if (k !== 'threshold' && k !== 'min_calls') s.problems.add(fieldName([...p, k]), 'is not a setting of failure_rate (threshold, min_calls)', s.lineOf([...p, k]));
      const t = fr.threshold;
      const m = fr.min_calls ?? 10;
      let ok = true;
      if (typeof t !== 'number' || !(t > 0 && t <= 1)) {
        s.problems.add(fieldName([...p, 'threshold']), `must be a share of failed calls above 0 and at most 1, not ${describe(t)}`, s.lineOf([...p, 'threshold']) ?? s.lineOf(p));
        ok = false;
      }
      if (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > 1_000_000) {
        s.problems.add(fieldName([...p, 'min_calls']), `must be a whole number from 1 to 1000000, not ${describe(m)}`, s.lineOf([...p, 'min_calls']));
        ok = false;
      }
      if (ok) out.failure_rate = { threshold: t as number, min_calls: m as number };
    }
  }
  if (model && raw.fallback !== undefined) {
    if (typeof raw.fallback !== 'string' || !MODEL_REF.test(raw.fallback)) bad('fallback', `must be a model reference provider/model, e.g. anthropic/claude-haiku-4-5, not ${describe(raw.fallback)}`);
    else out.fallback = raw.fallback;
  }
  return out;
}

function describe(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : shownValue(v);
}
