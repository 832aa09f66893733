/**
 * The SW4RM services' tunables as a deployment sets them: `sw4rm:` in swarm.yaml and the flags of
 * `swarm sw4rm serve` (flags win). Durations are written `500ms`, `30s`, `10m`, `1h`; each value is
 * checked against its range, and a bad one names where it came from (the file and key, or the flag).
 *
 * @example
 *   # swarm.yaml
 *   sw4rm:
 *     lease: 10s            # an unacknowledged delivery is redelivered after this
 *     max_attempts: 3       # deliveries before the dead-letter queue
 *     dedup_window: 30m     # how long an idempotency token is remembered
 */
import { parseDuration } from '../core/manifest/guardrails/budget.js';
import { UserError } from '../core/errors.js';
import type { Sw4rmServiceOptions } from './service-types.js';

interface Tunable {
  /** The option of `startSw4rm`. */
  option: keyof Sw4rmServiceOptions;
  /** The key under `sw4rm:` and, in kebab case, the flag. */
  key: string;
  kind: 'duration' | 'count';
  min: number;
  max: number;
  what: string;
}

const MINUTE = 60_000;
const DAY = 1440 * MINUTE;

/** Every tunable, with its range (ms for durations). */
export const SW4RM_TUNABLES: readonly Tunable[] = [
  { option: 'leaseMs', key: 'lease', kind: 'duration', min: 100, max: DAY, what: 'how long a delivered, unacknowledged message stays in flight before redelivery' },
  { option: 'maxAttempts', key: 'max_attempts', kind: 'count', min: 1, max: 1000, what: 'deliveries before a message goes to the dead-letter queue' },
  { option: 'dedupWindowMs', key: 'dedup_window', kind: 'duration', min: 1000, max: 7 * DAY, what: 'how long the router remembers an idempotency token' },
  { option: 'maxPayloadBytes', key: 'max_payload_bytes', kind: 'count', min: 1024, max: 64 * 1024 * 1024, what: 'the largest payload the router accepts' },
  { option: 'hlcToleranceMs', key: 'hlc_tolerance', kind: 'duration', min: 1000, max: DAY, what: "how far an envelope's HLC may be ahead of the router's clock" },
  { option: 'heartbeatTimeoutMs', key: 'heartbeat_timeout', kind: 'duration', min: 1000, max: DAY, what: 'heartbeats missed for this long mark an agent unavailable' },
];

/** The JSON Schema of `sw4rm:` in swarm.yaml (shapes only; ranges are checked by `sw4rmTunables`, with units). */
export const SW4RM_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(SW4RM_TUNABLES.map((t) => [t.key, t.kind === 'count' ? { type: 'integer' } : { type: ['string', 'integer'] }])),
} as const;

function describeRange(t: Tunable): string {
  if (t.kind === 'count') return `a whole number from ${t.min} to ${t.max}`;
  const fmt = (ms: number): string => (ms % DAY === 0 ? `${ms / DAY}d` : ms % MINUTE === 0 ? `${ms / MINUTE}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);
  return `a duration from ${fmt(t.min)} to ${fmt(t.max)} (e.g. 500ms, 30s, 10m)`;
}

/**
 * Resolve tunables from `values` (keys of `sw4rm:`; a duration as text, or a number of seconds),
 * naming problems as `where(key)`: `swarm.yaml: sw4rm.lease` or `--lease`. Unset keys stay unset
 * (the services' defaults apply).
 */
export function sw4rmTunables(values: Readonly<Record<string, unknown>>, where: (key: string) => string): Sw4rmServiceOptions {
  const out: Sw4rmServiceOptions = {};
  for (const t of SW4RM_TUNABLES) {
    const v = values[t.key];
    if (v === undefined) continue;
    let n: number | undefined;
    if (t.kind === 'count') n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : undefined;
    else {
      const seconds = parseDuration(v);
      n = seconds === undefined ? undefined : Math.round(seconds * 1000);
    }
    if (n === undefined || !Number.isInteger(n) || n < t.min || n > t.max) {
      throw new UserError('CONFIG_INVALID', `${where(t.key)}: must be ${describeRange(t)} (${t.what}), not ${JSON.stringify(v)}`, { field: where(t.key) });
    }
    out[t.option] = n;
  }
  return out;
}
