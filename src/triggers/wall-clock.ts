/**
 * Wall-clock time in an IANA time zone, with no dependency but `Intl`. Pure.
 *
 * A "wall time" here is a local date and time written as milliseconds as if it were UTC
 * (`Date.UTC(y, m, d, h, mi, s)`): a clock without daylight saving, on which a cron pattern can be
 * matched without any DST surprises. `instantToWall` and `wallToInstant` cross between that clock
 * and real instants, and `wallToInstant` is where the DST rules of schedules live.
 */

const SECOND_MS = 1000;
const DAY_MS = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Does `Intl` know this time zone? (`Europe/Paris`, `UTC`, `America/New_York`; not `+01:00`.) */
export function isKnownTimeZone(timeZone: string): boolean {
  if (timeZone.trim() === '') return false;
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The zone's offset from UTC at `instantMs`, in milliseconds (Paris in summer: +7,200,000). */
export function offsetAt(timeZone: string, instantMs: number): number {
  if (timeZone === 'UTC') return 0;
  const wholeSecond = Math.floor(instantMs / SECOND_MS) * SECOND_MS;
  const parts: Record<string, number> = {};
  for (const p of formatterFor(timeZone).formatToParts(wholeSecond)) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  const wall = Date.UTC(parts.year ?? 1970, (parts.month ?? 1) - 1, parts.day ?? 1, parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0);
  return wall - wholeSecond;
}

/** The wall time shown by clocks in `timeZone` at `instantMs`. */
export function instantToWall(timeZone: string, instantMs: number): number {
  return instantMs + offsetAt(timeZone, instantMs);
}

/**
 * The instant at which clocks in `timeZone` show the wall time `wallMs`, by the schedule rules:
 *
 * - a wall time that occurs once: that instant;
 * - a wall time that occurs twice (the hour repeated when the clocks go back): the first
 *   occurrence, so a repeated time fires once, not twice;
 * - a wall time that does not occur (the hour skipped when the clocks go forward): the instant the
 *   clocks jump, the first valid time after the gap (02:30 in Paris on the last Sunday of March
 *   becomes 03:00 CEST), so a skipped time still fires, once.
 *
 * The mapping never decreases as `wallMs` grows, which is what lets a schedule enumerate wall times
 * in order and get instants in order.
 */
export function wallToInstant(timeZone: string, wallMs: number): number {
  if (timeZone === 'UTC') return wallMs;
  // The offsets in force a day either side cover any single transition (they are hours apart at most).
  const before = offsetAt(timeZone, wallMs - DAY_MS);
  const after = offsetAt(timeZone, wallMs + DAY_MS);
  const candidates = new Set([before, offsetAt(timeZone, wallMs), after]);
  let earliest: number | undefined;
  for (const offset of candidates) {
    const instant = wallMs - offset;
    if (offsetAt(timeZone, instant) === offset && (earliest === undefined || instant < earliest)) earliest = instant;
  }
  if (earliest !== undefined) return earliest;
  // A gap: the clocks jumped from `before` to `after` somewhere in (wall - after, wall - before].
  return transitionIn(timeZone, wallMs - after, wallMs - before, before);
}

/** The first whole second in (lo, hi] whose offset is no longer `offsetBefore` (binary search). */
function transitionIn(timeZone: string, loMs: number, hiMs: number, offsetBefore: number): number {
  let lo = Math.floor(loMs / SECOND_MS);
  let hi = Math.ceil(hiMs / SECOND_MS);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (offsetAt(timeZone, mid * SECOND_MS) === offsetBefore) lo = mid;
    else hi = mid;
  }
  return hi * SECOND_MS;
}
