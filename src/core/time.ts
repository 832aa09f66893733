/**
 * Times as callers write them (an API query, a bulk filter, `--since`): epoch milliseconds, an ISO
 * date, or an ISO date and time, read strictly: a date that is not on the calendar (`2026-02-30`) or
 * a time not on the clock (`T25:00`) is refused, where `Date.parse` would roll it over or take it.
 *
 * @example
 *   parseTime('2026-01-31T09:00:00Z'); // 1769850000000
 *   parseTime('2026-02-30');           // NaN
 */

/**
 * A time's shapes: epoch milliseconds, an ISO date (`2026-01-31`, UTC) or an ISO
 * date and time (`2026-01-31T09:00`, seconds and fraction optional, `T` or a space, `Z` or an offset;
 * without either, the server's local time, as `Date.parse` reads it).
 */
export const TIME = /^(\d{10,16}|\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?)$/;
const TIME_PARTS = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-](\d{2}):?(\d{2}))?)?$/;
/** What a time that is not one is told (the OpenAPI document shows TIME as its pattern). */
export const TIME_MESSAGE = 'must be an ISO date (2026-01-31), date and time (2026-01-31T09:00:00Z) or epoch milliseconds';
/** The largest time a Date holds (ECMAScript: ±8.64e15 ms). */
const MAX_TIME_MS = 8_640_000_000_000_000;

/**
 * A time (see TIME) → epoch milliseconds; NaN for anything else, and for a date or time that is not
 * on the calendar or the clock (`2026-02-30`, `2026-13-45`, `T25:00`): `Date.parse` would roll those
 * over (2 March) or take some of them.
 */
export function parseTime(value: string): number {
  if (!TIME.test(value)) return Number.NaN;
  if (/^\d+$/.test(value)) {
    const ms = Number(value);
    return ms <= MAX_TIME_MS ? ms : Number.NaN;
  }
  const [, y, mo, d, h = '0', mi = '0', s = '0', oh = '0', om = '0'] = TIME_PARTS.exec(value) as RegExpExecArray;
  // The day exists when the calendar gives it back unchanged (30 February comes back as 2 March).
  const day = new Date(0);
  day.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  const onCalendar = day.getUTCFullYear() === Number(y) && day.getUTCMonth() === Number(mo) - 1 && day.getUTCDate() === Number(d);
  const onClock = Number(h) <= 23 && Number(mi) <= 59 && Number(s) <= 59 && Number(oh) <= 23 && Number(om) <= 59;
  // `Date.parse` reads the ISO forms; a space for `T` and an offset without its colon are spelled as it expects.
  return onCalendar && onClock ? Date.parse(value.replace(' ', 'T').replace(/([+-]\d{2})(\d{2})$/, '$1:$2')) : Number.NaN;
}

/** What a time of the right shape but not on the calendar or the clock is told. */
export const OFF_CALENDAR_MESSAGE = 'is not a date and time on the calendar (a month 01-12, a day the month has, hours 00-23, minutes and seconds 00-59)';
