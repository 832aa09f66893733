/** Times and durations as the pages show them. */

export function ago(ms: number, now = Date.now()): string {
  const s = Math.round((now - ms) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m ${Math.round((ms % 60_000) / 1000)}s`;
}

// One formatter, made once: toLocaleString with options builds a new one per call (slow in a list of a thousand).
const DATE_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function dateTime(value: number | string): string {
  return DATE_TIME.format(new Date(value));
}

/**
 * A run id (or another time-ordered id) as the pages show it: its end. Ids begin with their creation
 * time, so ids made together share their first characters; the end tells them apart, and the API and
 * the CLI accept it as a short form.
 *
 * @example
 *   shortId('01a24c69-e6d1-7a2b-9c3d-8014789673b1') // '…8014789673b1'
 */
export function shortId(id: string): string {
  return id.length > 13 ? `…${id.slice(-12)}` : id;
}

const TIME_OF_DAY = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
// The month by name: `Dec 13`, never `12/13` (which reads as a different day in half the world).
const DAY_AND_TIME = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const FULL = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

/**
 * A moment to come (a deadline, a wake-up) in few words: the time of day when it is today, else the
 * date and time, with the year when it is not this year's.
 *
 * @example
 *   moment(Date.now() + 60_000)      // '05:32:22 PM'
 *   moment(Date.now() + 7 * 86_400_000) // 'Dec 13, 05:32 PM'
 */
export function moment(value: number | string, now = Date.now()): string {
  const at = new Date(value);
  const today = new Date(now);
  if (at.toDateString() === today.toDateString()) return TIME_OF_DAY.format(at);
  return at.getFullYear() === today.getFullYear() ? DAY_AND_TIME.format(at) : FULL.format(at);
}
