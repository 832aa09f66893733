/**
 * `retention:` in swarm.yaml: how long custom events and finished runs are kept.
 *
 * ```yaml
 * retention:
 *   emitted_events: 30d     # custom events (default 30d)
 *   completed: 30d          # finished runs, by status, after they finish (absent: kept until `swarm gc`)
 *   failed: 90d
 *   cancelled: 30d
 *   interval: 1h            # how often `swarm serve` applies it (default 1h)
 *   archive: runs.jsonl     # append each run here before deleting it (relative to the project)
 *   batch: 500              # runs per transaction (default 500)
 * ```
 *
 * Durations are a whole number of seconds, minutes, hours or days (`90d`). Ages under a minute are
 * refused (they would delete what just finished); the interval may be as short as a second.
 *
 * @example
 *   const r = resolveRetention({ completed: '30d' }, 'swarm.yaml', '/project');
 *   r.runs; // { completed: 2_592_000_000 }
 */
import { isAbsolute, join } from 'node:path';
import { UserError } from '../core/errors.js';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** A whole number of seconds, minutes, hours or days (`30d`). */
export const RETENTION_DURATION_PATTERN = '^[1-9][0-9]{0,5}[smhd]$';

export const RETENTION_DEFAULTS = {
  emitted_events: '30d',
  interval: '1h',
  batch: 500,
} as const;

const MIN_AGE_MS = 60_000;
const RUN_STATUS_KEYS = ['completed', 'failed', 'cancelled'] as const;

export const RETENTION_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    emitted_events: { type: 'string', pattern: RETENTION_DURATION_PATTERN },
    completed: { type: 'string', pattern: RETENTION_DURATION_PATTERN },
    failed: { type: 'string', pattern: RETENTION_DURATION_PATTERN },
    cancelled: { type: 'string', pattern: RETENTION_DURATION_PATTERN },
    interval: { type: 'string', pattern: RETENTION_DURATION_PATTERN },
    archive: { type: 'string', minLength: 1 },
    batch: { type: 'integer', minimum: 1, maximum: 100_000 },
  },
};

/** `retention:` as written (validated against RETENTION_SCHEMA first). */
export interface RetentionFile {
  emitted_events?: string;
  completed?: string;
  failed?: string;
  cancelled?: string;
  interval?: string;
  archive?: string;
  batch?: number;
}

/** `retention:` resolved. */
export interface RetentionConfig {
  /** Custom events (`retention.emitted_events`), in ms. */
  readonly emittedEventsMs: number;
  /** Finished runs by status, in ms after they finish; a status absent is kept. Empty: no run retention. */
  readonly runs: Readonly<Partial<Record<(typeof RUN_STATUS_KEYS)[number], number>>>;
  /** How often `swarm serve` applies the run retention, in ms. */
  readonly intervalMs: number;
  /** Absolute path of the archive, if any. */
  readonly archive: string | undefined;
  /** Runs per transaction. */
  readonly batch: number;
}

/** `30d` in ms (the text already matches RETENTION_DURATION_PATTERN). */
export function retentionMs(text: string): number {
  return Number(text.slice(0, -1)) * UNIT_MS[text.slice(-1) as keyof typeof UNIT_MS];
}

/**
 * Resolve `retention:` with its defaults; ages under a minute are refused, naming the file, line and
 * key. `lineOf` gives the line of `retention.<key>` in the file, when known.
 */
export function resolveRetention(raw: RetentionFile | undefined, file: string, projectDir: string, lineOf: (key: string) => number | undefined = () => undefined): RetentionConfig {
  const where = (key: string): string => {
    const line = lineOf(key);
    return `${file}${line !== undefined ? `:${line}` : ''}: retention.${key}`;
  };
  const age = (key: string, text: string, fallback?: string): number => {
    const ms = retentionMs(text);
    if (ms < MIN_AGE_MS) throw new UserError('CONFIG_INVALID', `${where(key)}: '${text}' is under a minute; write at least 1m${fallback ? ` (default ${fallback})` : ''}`, { file, field: `retention.${key}` });
    return ms;
  };
  const runs: Partial<Record<(typeof RUN_STATUS_KEYS)[number], number>> = {};
  for (const k of RUN_STATUS_KEYS) {
    const text = raw?.[k];
    if (text !== undefined) runs[k] = age(k, text);
  }
  const hasRuns = Object.keys(runs).length > 0;
  for (const k of ['interval', 'archive', 'batch'] as const) {
    if (raw?.[k] !== undefined && !hasRuns) {
      throw new UserError('CONFIG_INVALID', `${where(k)} applies to runs, but no run age is set: add retention.completed, retention.failed or retention.cancelled (e.g. completed: 30d)`, { file, field: `retention.${k}` });
    }
  }
  return {
    emittedEventsMs: age('emitted_events', raw?.emitted_events ?? RETENTION_DEFAULTS.emitted_events, RETENTION_DEFAULTS.emitted_events),
    runs: Object.freeze(runs),
    intervalMs: retentionMs(raw?.interval ?? RETENTION_DEFAULTS.interval),
    archive: raw?.archive === undefined ? undefined : isAbsolute(raw.archive) ? raw.archive : join(projectDir, raw.archive),
    batch: raw?.batch ?? RETENTION_DEFAULTS.batch,
  };
}
