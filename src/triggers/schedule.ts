/**
 * The pure core of schedule triggers: validate a workflow's `trigger: {type: schedule, …}`, list its
 * next ticks, decide which ticks are due after a pause or an outage, and what to do when a run of
 * the schedule is still active. No store, no clock, no I/O: the caller passes `now` and the times it
 * persisted (`last_fired_at`, the schedule's creation), so every decision here can be tested to the
 * second. See docs/schedules.md for the user-facing semantics.
 *
 * Ticks are computed on the wall clock of the schedule's time zone (see wall-clock.ts): croner only
 * matches the cron pattern against a clock without daylight saving, and this module maps each
 * matching wall time to one instant. That replaces croner's own DST handling, which repeats and
 * skips times for patterns with a wildcard, step, range or list (its "interval jobs"), so every
 * schedule follows one rule: each matching local time fires once.
 *
 * @example
 *   const parsed = parseScheduleSpec({ type: 'schedule', cron: '0 9 * * 1-5', timezone: 'Europe/Paris' });
 *   if (parsed.ok) {
 *     const { due, nextRunAt } = dueTicks(parsed.spec, { lastFiredAt, createdAt, now: new Date() });
 *     for (const tick of due) startRun(workflow, { idempotencyKey: tickKey('nightly', tick) });
 *   }
 */
import { Cron } from 'croner';
import { UserError } from '../core/errors.js';
import { pathToField } from '../core/manifest/yaml-source.js';
import { closest } from '../core/suggest.js';
import { instantToWall, isKnownTimeZone, offsetAt, wallToInstant } from './wall-clock.js';

export const OVERLAP_POLICIES = ['skip', 'buffer_one', 'allow_all', 'cancel_other'] as const;
/** What to do with a tick while a run of the same schedule is still active (see `decideOverlap`). */
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

export const CATCHUP_POLICIES = ['none', 'latest', 'all'] as const;
/** Which ticks missed while the server was down (or the schedule paused) fire when it is back. */
export type CatchupPolicy = (typeof CATCHUP_POLICIES)[number];

export interface CatchupSpec {
  policy: CatchupPolicy;
  /** How far back from now a missed tick may be and still fire (`latest`, `all`). */
  window_ms: number;
  /** The most missed ticks that fire at once (`all`). */
  max_runs: number;
}

/** A validated schedule trigger. */
export interface ScheduleSpec {
  /** The cron pattern as written (5 fields, or 6 with seconds first), trimmed. */
  cron: string;
  /** The IANA time zone the pattern is read in, as written (kept as is: `Intl` may rename links). */
  timezone: string;
  overlap: OverlapPolicy;
  catchup: CatchupSpec;
}

/** The largest catch-up window: a backlog older than a year is a mistake, not a schedule. */
export const MAX_CATCHUP_WINDOW_MS = 366 * 86_400_000;
/** The largest `catchup.max_runs`: catching up is a bounded burst, never a flood. */
export const MAX_CATCHUP_RUNS = 1000;

/**
 * Defaults for the fields a trigger leaves out.
 *
 * - `timezone: UTC`: the only zone that means the same on every machine; a server's local zone
 *   would make the same manifest fire at different times on different hosts.
 * - `overlap: skip`: a workflow that runs longer than its period should not pile up runs.
 * - `catchup: latest` within `1h`: a restart or a short outage should not silently drop the 09:00
 *   report, but one late run stands for all the missed ones (a report, a sync, a cleanup is done
 *   once, not once per missed tick), and after an hour the moment has passed. `max_runs: 10` only
 *   matters once the policy is `all`.
 */
export const SCHEDULE_DEFAULTS = {
  timezone: 'UTC',
  overlap: 'skip',
  catchup: { policy: 'latest', window_ms: 3_600_000, max_runs: 10 },
} as const satisfies Omit<ScheduleSpec, 'cron'>;

/**
 * How late a tick may be seen and still count as on time, when the caller does not say: one poll
 * of the scheduler plus slack for a busy event loop or a slow store. With `catchup: none` this is
 * the only lateness allowed; with `latest` and `all` the window is never shorter than this.
 */
export const DEFAULT_TICK_GRACE_MS = 60_000;

/** The most ticks `nextTicks` lists at once (`swarm schedules preview`). */
export const MAX_PREVIEW_TICKS = 1000;

const TRIGGER_KEYS = ['type', 'cron', 'timezone', 'overlap', 'catchup'] as const;
const CATCHUP_KEYS = ['policy', 'window', 'max_runs'] as const;

/** One thing wrong with a schedule trigger: the path of the field (for its line) and its name. */
export interface ScheduleProblem {
  /** Path in the manifest, for `YamlSource.lineOf` (`['trigger', 'catchup', 'window']`). */
  path: Array<string | number>;
  /** The same path as users write it (`trigger.catchup.window`). */
  field: string;
  problem: string;
}

export type ScheduleParseResult = { ok: true; spec: ScheduleSpec } | { ok: false; problems: ScheduleProblem[] };

/**
 * Validate a schedule trigger as read from a manifest and fill in the defaults. Every problem is
 * returned (not only the first), each naming its field under `where`, so registration can report
 * them all with file and line.
 *
 * @example
 *   parseScheduleSpec({ type: 'schedule', cron: '0 9 * * 1-5', timezone: 'Europe/Pariss' });
 *   // { ok: false, problems: [{ field: 'trigger.timezone', problem: "unknown time zone 'Europe/Pariss' (did you mean 'Europe/Paris'?)", … }] }
 */
export function parseScheduleSpec(raw: unknown, where: ReadonlyArray<string | number> = ['trigger']): ScheduleParseResult {
  const problems: ScheduleProblem[] = [];
  const add = (sub: Array<string | number>, problem: string): void => {
    const path = [...where, ...sub];
    problems.push({ path, field: pathToField(path), problem });
  };
  if (!isPlainObject(raw)) {
    add([], 'must be a mapping such as {type: schedule, cron: "0 9 * * 1-5"}');
    return { ok: false, problems };
  }
  unknownKeys(raw, TRIGGER_KEYS, [], add);
  if (raw.type !== 'schedule') add(['type'], `must be 'schedule' for a schedule trigger, not ${describe(raw.type)}`);

  const cron = typeof raw.cron === 'string' ? raw.cron.trim() : undefined;
  if (raw.cron === undefined) add(['cron'], 'is required: a cron pattern such as "0 9 * * 1-5" (minute hour day-of-month month day-of-week)');
  else if (cron === undefined) add(['cron'], `must be a string such as "0 9 * * 1-5", not ${describe(raw.cron)}`);
  else {
    const problem = cronProblem(cron);
    if (problem) add(['cron'], problem);
  }

  let timezone: string = SCHEDULE_DEFAULTS.timezone;
  if (raw.timezone !== undefined) {
    if (typeof raw.timezone !== 'string') add(['timezone'], `must be an IANA time zone name such as Europe/Paris, not ${describe(raw.timezone)}`);
    else if (!isKnownTimeZone(raw.timezone.trim())) add(['timezone'], `unknown time zone '${raw.timezone}'${suggestTimeZone(raw.timezone)}; use an IANA name such as Europe/Paris, America/New_York or UTC`);
    else timezone = raw.timezone.trim();
  }

  const overlap = oneOf(raw.overlap, OVERLAP_POLICIES, SCHEDULE_DEFAULTS.overlap, ['overlap'], add);
  const catchup = parseCatchup(raw.catchup, add);

  if (problems.length > 0 || cron === undefined) return { ok: false, problems };
  return { ok: true, spec: { cron, timezone, overlap, catchup } };
}

function parseCatchup(raw: unknown, add: (sub: Array<string | number>, problem: string) => void): CatchupSpec {
  const d = SCHEDULE_DEFAULTS.catchup;
  if (raw === undefined) return { ...d };
  if (!isPlainObject(raw)) {
    add(['catchup'], `must be a mapping such as {policy: latest, window: 1h, max_runs: 10}, not ${describe(raw)}`);
    return { ...d };
  }
  unknownKeys(raw, CATCHUP_KEYS, ['catchup'], add);
  const policy = oneOf(raw.policy, CATCHUP_POLICIES, d.policy, ['catchup', 'policy'], add);
  let window_ms: number = d.window_ms;
  if (raw.window !== undefined) {
    const ms = typeof raw.window === 'string' ? parseDuration(raw.window) : undefined;
    if (ms === undefined) add(['catchup', 'window'], `must be a duration such as 30s, 15m, 1h or 2d, not ${describe(raw.window)}`);
    else if (ms < 1000 || ms > MAX_CATCHUP_WINDOW_MS) add(['catchup', 'window'], `must be between 1s and 366d, not ${describe(raw.window)}`);
    else window_ms = ms;
  }
  let max_runs: number = d.max_runs;
  if (raw.max_runs !== undefined) {
    if (typeof raw.max_runs !== 'number' || !Number.isInteger(raw.max_runs) || raw.max_runs < 1 || raw.max_runs > MAX_CATCHUP_RUNS) {
      add(['catchup', 'max_runs'], `must be a whole number from 1 to ${MAX_CATCHUP_RUNS}, not ${describe(raw.max_runs)}`);
    } else max_runs = raw.max_runs;
  }
  return { policy, window_ms, max_runs };
}

const DURATION_UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `30s`, `15m`, `1h`, `2d` in milliseconds; undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,9})([smhd])$/.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * DURATION_UNIT_MS[m[2] as keyof typeof DURATION_UNIT_MS];
}

/** Why croner (or the field count) rejects a pattern, or undefined when it is a usable 5- or 6-field cron. */
function cronProblem(cron: string): string | undefined {
  if (cron === '') return 'is empty; write a cron pattern such as "0 9 * * 1-5"';
  const fields = cron.split(/\s+/).length;
  if (fields !== 5 && fields !== 6) {
    return `'${cron}' has ${fields} field${fields === 1 ? '' : 's'}; use 5 (minute hour day-of-month month day-of-week) or 6 (second first)`;
  }
  let matcher: Cron;
  try {
    matcher = wallClockCron(cron);
  } catch (e) {
    return `'${cron}' is not a valid cron pattern: ${(e as Error).message.replace(/^CronPattern:\s*/, '')}`;
  }
  // 30 February and the like: valid fields that no date ever matches.
  if (matcher.nextRun(new Date(Date.UTC(2000, 0, 1))) === null) return `'${cron}' never matches any date`;
  return undefined;
}

/**
 * A croner matcher for the pattern on the wall clock (`UTC` there means "no daylight saving", see
 * wall-clock.ts). Day-of-month and day-of-week combine with OR, as in Vixie cron (croner's default,
 * `domAndDow: false`, formerly `legacyMode: true`); `+` before the day of week asks for AND.
 */
function wallClockCron(cron: string): Cron {
  return new Cron(cron, { timezone: 'UTC', mode: '5-or-6-parts', paused: true });
}

/** The list of next ticks strictly after `after`, in order: at most `count` (up to MAX_PREVIEW_TICKS). */
export function nextTicks(spec: ScheduleSpec, after: Date, count: number): Date[] {
  if (!Number.isInteger(count) || count < 0 || count > MAX_PREVIEW_TICKS) {
    throw new UserError('SCHEDULE_PREVIEW_COUNT', `the number of ticks to list must be a whole number from 0 to ${MAX_PREVIEW_TICKS}, not ${String(count)}`);
  }
  const out: Date[] = [];
  if (count === 0) return out;
  for (const tick of ticksAfter(spec, after.getTime())) {
    out.push(new Date(tick));
    if (out.length >= count) break;
  }
  return out;
}

/**
 * Tick instants strictly after `afterMs`, increasing. A wall time never maps to an instant after a
 * later wall time's (wall-clock.ts), and wall times up to the local time at `afterMs` all map to
 * `afterMs` or before, so the walk starts there.
 */
function* ticksAfter(spec: ScheduleSpec, afterMs: number): Generator<number> {
  const matcher = wallClockCron(spec.cron);
  let wall = instantToWall(spec.timezone, afterMs);
  let last = afterMs;
  for (;;) {
    const next = matcher.nextRun(new Date(wall));
    if (next === null) return;
    wall = next.getTime();
    const tick = wallToInstant(spec.timezone, wall);
    // Several wall times in a DST gap all map to the end of the gap: it fires once.
    if (tick > last) {
      last = tick;
      yield tick;
    }
  }
}

/**
 * Tick instants at or before `atMs`, decreasing. While the clocks repeat an hour, local times later
 * than the local time at `atMs` may still map to instants before it (their first occurrence), so the
 * walk starts that far ahead (the shift of a transition in the last day) and skips what is after `atMs`.
 */
function* ticksAtOrBefore(spec: ScheduleSpec, atMs: number): Generator<number> {
  const matcher = wallClockCron(spec.cron);
  const repeatMs = Math.max(0, offsetAt(spec.timezone, atMs - 86_400_000) - offsetAt(spec.timezone, atMs));
  // croner's previous run is strictly before its reference: 1 ms more includes a tick exactly at atMs.
  let wall = instantToWall(spec.timezone, atMs) + repeatMs + 1;
  let last = Number.POSITIVE_INFINITY;
  for (;;) {
    const previous = matcher.previousRuns(1, new Date(wall))[0];
    if (previous === undefined) return;
    wall = previous.getTime();
    const tick = wallToInstant(spec.timezone, wall);
    if (tick <= atMs && tick < last) {
      last = tick;
      yield tick;
    }
  }
}

/** What the scheduler knows about a schedule when it polls it. */
export interface DueTicksInput {
  /** The tick instant last fired (the one in its idempotency key); null or absent when never fired. */
  lastFiredAt?: Date | null;
  /** When the schedule was registered: ticks before it are not missed, they never were due. */
  createdAt: Date;
  now: Date;
  /** How late a tick may be seen and still be on time; the scheduler's poll interval (DEFAULT_TICK_GRACE_MS). */
  graceMs?: number;
}

export interface DueTicks {
  /** The ticks to fire now, oldest first (apply the overlap policy to them in this order). */
  due: Date[];
  /** Whether some tick since the last one fired is not in `due`: the catch-up policy dropped it. */
  dropped: boolean;
  /** The next tick after now (and after the last one fired): the schedule's `next_run_at`; null if none. */
  nextRunAt: Date | null;
}

/**
 * Which ticks fire now. A tick is missed when it is after `lastFiredAt` (or `createdAt` when the
 * schedule never fired) and at or before `now`. Of the missed ticks:
 *
 * - `none`: the latest, only if it is at most `graceMs` old (it is on time, seen by this poll);
 * - `latest`: the latest, if it is within `catchup.window` (or `graceMs`, whichever is longer);
 * - `all`: every one within that window, but at most `catchup.max_runs`: the most recent are kept
 *   and the oldest dropped, so a long outage costs at most `max_runs` runs, the freshest ones.
 *
 * The work is bounded by `max_runs` (plus one), whatever the length of the outage.
 *
 * @example
 *   dueTicks(spec, { lastFiredAt: new Date('2025-01-06T09:00:00Z'), createdAt, now: new Date('2025-01-08T09:30:00Z') });
 *   // `0 9 * * *`, catchup latest 1h: { due: [2025-01-08T09:00Z], dropped: true, nextRunAt: 2025-01-09T09:00Z }
 */
export function dueTicks(spec: ScheduleSpec, input: DueTicksInput): DueTicks {
  const nowMs = input.now.getTime();
  const sinceMs = (input.lastFiredAt ?? input.createdAt).getTime();
  const graceMs = Math.max(0, input.graceMs ?? DEFAULT_TICK_GRACE_MS);
  const { policy, window_ms, max_runs } = spec.catchup;
  const lookbackMs = policy === 'none' ? graceMs : Math.max(window_ms, graceMs);
  const limit = policy === 'all' ? max_runs : 1;

  const due: number[] = [];
  let dropped = false;
  for (const tick of ticksAtOrBefore(spec, nowMs)) {
    if (tick <= sinceMs) break;
    // Newest first: once one tick is too old or over the limit, so is every older one.
    if (tick < nowMs - lookbackMs || due.length >= limit) {
      dropped = true;
      break;
    }
    due.push(tick);
  }
  // A clock set back must not fire again what was fired before it.
  const next = ticksAfter(spec, Math.max(nowMs, sinceMs)).next();
  return {
    due: due.reverse().map((t) => new Date(t)),
    dropped,
    nextRunAt: next.done ? null : new Date(next.value),
  };
}

/**
 * The idempotency key of one tick's run: `schedule:<id>:<tick ISO>`. Two servers (or a restart)
 * that decide to fire the same tick produce the same key, so the run starts once.
 *
 * @example
 *   tickKey('nightly-report', new Date('2025-01-06T08:00:00Z')); // 'schedule:nightly-report:2025-01-06T08:00:00.000Z'
 */
export function tickKey(scheduleId: string, tick: Date): string {
  if (scheduleId === '') throw new UserError('SCHEDULE_ID_EMPTY', 'a schedule id is required to build a tick key');
  if (Number.isNaN(tick.getTime())) throw new UserError('SCHEDULE_TICK_INVALID', `the tick of schedule '${scheduleId}' is not a valid date`);
  return `schedule:${scheduleId}:${tick.toISOString()}`;
}

/**
 * What to do with a due tick:
 * - `start`: start its run;
 * - `skip`: drop it (its tick still counts as fired);
 * - `buffer`: keep it, and start it when the active run ends;
 * - `cancel_others`: cancel the active runs of the schedule, then start this one.
 */
export type OverlapAction = 'start' | 'skip' | 'buffer' | 'cancel_others';

export interface OverlapState {
  /** A run started by this schedule is still active (queued or running). */
  active: boolean;
  /** A tick is already buffered, waiting for the active run to end (`buffer_one` only). */
  buffered?: boolean;
}

/**
 * Decide a due tick by the overlap policy. `allow_all` always starts. Otherwise, with no run active
 * the tick starts; with one active, `skip` skips, `cancel_other` replaces the active run, and
 * `buffer_one` buffers the tick. While a tick is buffered, `buffer_one` skips any further one, even
 * if the active run just ended: the buffered tick starts first and does the work the later ones
 * would.
 *
 * @example
 *   decideOverlap('buffer_one', { active: true });                 // 'buffer'
 *   decideOverlap('buffer_one', { active: true, buffered: true }); // 'skip'
 */
export function decideOverlap(policy: OverlapPolicy, state: OverlapState): OverlapAction {
  if (policy === 'allow_all') return 'start';
  if (policy === 'buffer_one' && state.buffered) return 'skip';
  if (!state.active) return 'start';
  switch (policy) {
    case 'skip':
      return 'skip';
    case 'buffer_one':
      return 'buffer';
    case 'cancel_other':
      return 'cancel_others';
  }
}

function oneOf<T extends string>(
  value: unknown,
  allowed: readonly T[],
  fallback: T,
  sub: Array<string | number>,
  add: (sub: Array<string | number>, problem: string) => void,
): T {
  if (value === undefined) return fallback;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  const hint = typeof value === 'string' ? closest(value, allowed) : undefined;
  add(sub, `must be one of ${allowed.join(', ')}, not ${describe(value)}${hint ? ` (did you mean '${hint}'?)` : ''}`);
  return fallback;
}

function unknownKeys(
  raw: Record<string, unknown>,
  known: readonly string[],
  sub: Array<string | number>,
  add: (sub: Array<string | number>, problem: string) => void,
): void {
  for (const key of Object.keys(raw)) {
    if (known.includes(key)) continue;
    const hint = closest(key, known);
    add([...sub, key], `unknown field${hint ? ` (did you mean '${hint}'?)` : ''}; known: ${known.join(', ')}`);
  }
}

function suggestTimeZone(name: string): string {
  const hint = closest(name, [...Intl.supportedValuesOf('timeZone'), 'UTC']);
  return hint ? ` (did you mean '${hint}'?)` : '';
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return `'${v}'`;
  return JSON.stringify(v) ?? typeof v;
}
