import { describe, expect, it } from 'vitest';
import { UserError } from '../src/core/errors.js';
import {
  DEFAULT_TICK_GRACE_MS,
  decideOverlap,
  dueTicks,
  nextTicks,
  parseDuration,
  parseScheduleSpec,
  SCHEDULE_DEFAULTS,
  tickKey,
  type ScheduleSpec,
} from '../src/triggers/schedule.js';

/** A valid spec from trigger fields (type: schedule is added); fails the test on any problem. */
function spec(fields: Record<string, unknown>): ScheduleSpec {
  const parsed = parseScheduleSpec({ type: 'schedule', ...fields });
  if (!parsed.ok) throw new Error(parsed.problems.map((p) => `${p.field}: ${p.problem}`).join('\n'));
  return parsed.spec;
}

/** The problems of an invalid trigger, as `field: problem` lines. */
function problems(raw: unknown): string[] {
  const parsed = parseScheduleSpec(raw);
  if (parsed.ok) throw new Error(`expected problems, got a valid spec: ${JSON.stringify(parsed.spec)}`);
  return parsed.problems.map((p) => `${p.field}: ${p.problem}`);
}

const iso = (ds: readonly Date[]): string[] => ds.map((d) => d.toISOString());
const at = (text: string): Date => new Date(text);

/** `2025-03-30 03:00 CEST`-like local rendering, to state DST expectations in local terms too. */
function local(tz: string, ds: readonly Date[]): string[] {
  const f = new Intl.DateTimeFormat('sv-SE', { timeZone: tz, dateStyle: 'short', timeStyle: 'short', hourCycle: 'h23' });
  return ds.map((d) => f.format(d));
}

describe('parseScheduleSpec', () => {
  it('fills in the documented defaults', () => {
    const s = spec({ cron: '0 9 * * 1-5' });
    expect(s).toEqual({ cron: '0 9 * * 1-5', timezone: 'UTC', overlap: 'skip', catchup: { policy: 'latest', window_ms: 3_600_000, max_runs: 10 } });
    expect(s.catchup).toEqual(SCHEDULE_DEFAULTS.catchup);
  });

  it('keeps every field given', () => {
    const s = spec({ cron: ' 0 9 * * 1-5 ', timezone: 'Europe/Paris', overlap: 'cancel_other', catchup: { policy: 'all', window: '2d', max_runs: 1000 } });
    expect(s).toEqual({ cron: '0 9 * * 1-5', timezone: 'Europe/Paris', overlap: 'cancel_other', catchup: { policy: 'all', window_ms: 2 * 86_400_000, max_runs: 1000 } });
    expect(spec({ cron: '0 9 * * *', catchup: { policy: 'none' } }).catchup).toEqual({ policy: 'none', window_ms: 3_600_000, max_runs: 10 });
  });

  it('accepts 6-field crons with seconds first and names of days', () => {
    expect(spec({ cron: '*/30 * * * * *' }).cron).toBe('*/30 * * * * *');
    expect(spec({ cron: '0 9 * * MON-FRI' }).cron).toBe('0 9 * * MON-FRI');
  });

  it('rejects crons croner rejects, with the field named', () => {
    expect(problems({ type: 'schedule', cron: '61 * * * *' })).toEqual(["trigger.cron: '61 * * * *' is not a valid cron pattern: Invalid value for minute: 61"]);
    expect(problems({ type: 'schedule', cron: '*/0 * * * *' })[0]).toMatch(/^trigger\.cron: '\*\/0 \* \* \* \*' is not a valid cron pattern: .*stepping/);
    expect(problems({ type: 'schedule', cron: '0 0 30 2 *' })).toEqual(["trigger.cron: '0 0 30 2 *' never matches any date"]);
  });

  it('accepts 5 or 6 fields only', () => {
    expect(problems({ type: 'schedule', cron: '* * * *' })).toEqual(["trigger.cron: '* * * *' has 4 fields; use 5 (minute hour day-of-month month day-of-week) or 6 (second first)"]);
    expect(problems({ type: 'schedule', cron: '0 0 9 * * * 2030' })[0]).toMatch(/^trigger\.cron: .* has 7 fields/);
    expect(problems({ type: 'schedule', cron: '2030-01-01T09:00:00' })[0]).toMatch(/has 1 field;/);
    expect(problems({ type: 'schedule', cron: '  ' })[0]).toBe('trigger.cron: is empty; write a cron pattern such as "0 9 * * 1-5"');
    expect(problems({ type: 'schedule' })[0]).toMatch(/^trigger\.cron: is required/);
    expect(problems({ type: 'schedule', cron: 900 })[0]).toMatch(/^trigger\.cron: must be a string/);
  });

  it('checks the time zone with Intl and suggests a near name', () => {
    expect(problems({ type: 'schedule', cron: '0 9 * * *', timezone: 'Europe/Pariss' })).toEqual([
      "trigger.timezone: unknown time zone 'Europe/Pariss' (did you mean 'Europe/Paris'?); use an IANA name such as Europe/Paris, America/New_York or UTC",
    ]);
    expect(problems({ type: 'schedule', cron: '0 9 * * *', timezone: '+01:00' })[0]).toMatch(/^trigger\.timezone: unknown time zone '\+01:00'/);
    expect(problems({ type: 'schedule', cron: '0 9 * * *', timezone: '' })[0]).toMatch(/^trigger\.timezone: unknown time zone/);
    expect(spec({ cron: '0 9 * * *', timezone: 'America/New_York' }).timezone).toBe('America/New_York');
  });

  it('checks overlap and catch-up values, and reports every problem at once', () => {
    const got = problems({
      type: 'schedule',
      cron: '0 9 * * *',
      overlap: 'skp',
      catchup: { policy: 'al', window: 3600, max_runs: 0 },
    });
    expect(got).toEqual([
      "trigger.overlap: must be one of skip, buffer_one, allow_all, cancel_other, not 'skp' (did you mean 'skip'?)",
      "trigger.catchup.policy: must be one of none, latest, all, not 'al' (did you mean 'all'?)",
      'trigger.catchup.window: must be a duration such as 30s, 15m, 1h or 2d, not 3600',
      'trigger.catchup.max_runs: must be a whole number from 1 to 1000, not 0',
    ]);
    expect(problems({ type: 'schedule', cron: '0 9 * * *', catchup: { max_runs: 1001 } })).toEqual(['trigger.catchup.max_runs: must be a whole number from 1 to 1000, not 1001']);
    expect(problems({ type: 'schedule', cron: '0 9 * * *', catchup: { max_runs: 2.5 } })[0]).toMatch(/^trigger\.catchup\.max_runs: /);
    expect(problems({ type: 'schedule', cron: '0 9 * * *', catchup: { window: '0s' } })).toEqual(["trigger.catchup.window: must be between 1s and 366d, not '0s'"]);
    expect(problems({ type: 'schedule', cron: '0 9 * * *', catchup: { window: '1w' } })[0]).toMatch(/^trigger\.catchup\.window: must be a duration/);
    expect(problems({ type: 'schedule', cron: '0 9 * * *', catchup: 'latest' })[0]).toMatch(/^trigger\.catchup: must be a mapping/);
  });

  it('names unknown fields (a misspelt timezone must not silently mean UTC)', () => {
    expect(problems({ type: 'schedule', cron: '0 9 * * *', timzone: 'Europe/Paris', catchup: { windw: '1h' } })).toEqual([
      "trigger.timzone: unknown field (did you mean 'timezone'?); known: type, cron, timezone, overlap, catchup",
      "trigger.catchup.windw: unknown field (did you mean 'window'?); known: policy, window, max_runs",
    ]);
  });

  it('checks the trigger type and shape, and puts paths under `where` for line lookup', () => {
    expect(problems({ type: 'webhook', cron: '0 9 * * *' })).toEqual(["trigger.type: must be 'schedule' for a schedule trigger, not 'webhook'"]);
    expect(problems(null)[0]).toMatch(/^trigger: must be a mapping/);
    const parsed = parseScheduleSpec({ type: 'schedule', cron: '0 9 * * *', catchup: { window: 'soon' } }, ['workflows', 2, 'trigger']);
    expect(parsed.ok ? [] : parsed.problems.map((p) => [p.field, p.path])).toEqual([['workflows[2].trigger.catchup.window', ['workflows', 2, 'trigger', 'catchup', 'window']]]);
  });

  it('parses durations', () => {
    expect([parseDuration('30s'), parseDuration('15m'), parseDuration('1h'), parseDuration('2d')]).toEqual([30_000, 900_000, 3_600_000, 172_800_000]);
    expect([parseDuration('1.5h'), parseDuration('h'), parseDuration('-1h'), parseDuration('1 h'), parseDuration('')]).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });
});

describe('nextTicks', () => {
  it('lists weekday ticks in the schedule zone, skipping the weekend', () => {
    const s = spec({ cron: '0 9 * * 1-5', timezone: 'Europe/Paris' });
    // Friday 2025-01-03 10:00 Paris: next are Monday to Friday at 09:00 CET (08:00Z).
    const ticks = nextTicks(s, at('2025-01-03T09:00:00Z'), 6);
    expect(iso(ticks)).toEqual([
      '2025-01-06T08:00:00.000Z',
      '2025-01-07T08:00:00.000Z',
      '2025-01-08T08:00:00.000Z',
      '2025-01-09T08:00:00.000Z',
      '2025-01-10T08:00:00.000Z',
      '2025-01-13T08:00:00.000Z',
    ]);
    // In summer the same local time is 07:00Z.
    expect(iso(nextTicks(s, at('2025-07-01T00:00:00Z'), 1))).toEqual(['2025-07-01T07:00:00.000Z']);
  });

  it('lists ticks strictly after `after`', () => {
    const s = spec({ cron: '0 9 * * *' });
    expect(iso(nextTicks(s, at('2025-01-06T09:00:00Z'), 1))).toEqual(['2025-01-07T09:00:00.000Z']);
    expect(iso(nextTicks(s, at('2025-01-06T08:59:59.999Z'), 1))).toEqual(['2025-01-06T09:00:00.000Z']);
  });

  it('lists 6-field ticks to the second', () => {
    const s = spec({ cron: '*/20 * * * * *' });
    expect(iso(nextTicks(s, at('2025-01-06T09:00:05.250Z'), 4))).toEqual([
      '2025-01-06T09:00:20.000Z',
      '2025-01-06T09:00:40.000Z',
      '2025-01-06T09:01:00.000Z',
      '2025-01-06T09:01:20.000Z',
    ]);
  });

  it('combines day of month and day of week with OR, as Vixie cron; + asks for AND', () => {
    const days = (cron: string): string[] => iso(nextTicks(spec({ cron }), at('2025-01-01T00:00:00Z'), 3)).map((d) => d.slice(0, 10));
    expect(days('0 9 1 * MON')).toEqual(['2025-01-01', '2025-01-06', '2025-01-13']);
    expect(days('0 9 1-7 * +MON')).toEqual(['2025-01-06', '2025-02-03', '2025-03-03']);
  });

  it('bounds the count', () => {
    const s = spec({ cron: '0 9 * * *' });
    expect(nextTicks(s, at('2025-01-06T00:00:00Z'), 0)).toEqual([]);
    expect(nextTicks(s, at('2025-01-06T00:00:00Z'), 1000)).toHaveLength(1000);
    expect(() => nextTicks(s, at('2025-01-06T00:00:00Z'), 1001)).toThrow(UserError);
    expect(() => nextTicks(s, at('2025-01-06T00:00:00Z'), -1)).toThrow(/from 0 to 1000/);
  });
});

// 2025 transitions: Paris springs forward on 30 March at 02:00 CET (01:00Z) and falls back on
// 26 October at 03:00 CEST (01:00Z); New York springs forward on 9 March at 02:00 EST (07:00Z) and
// falls back on 2 November at 02:00 EDT (06:00Z).
describe('daylight saving', () => {
  const ticksOn = (s: ScheduleSpec, fromIso: string, toIso: string): Date[] =>
    nextTicks(s, at(fromIso), 200).filter((d) => d.getTime() < at(toIso).getTime());

  it('Paris, spring forward: 02:30 does not exist and fires once, at 03:00 CEST', () => {
    const s = spec({ cron: '30 2 * * *', timezone: 'Europe/Paris' });
    const ticks = nextTicks(s, at('2025-03-29T00:00:00Z'), 3);
    expect(iso(ticks)).toEqual(['2025-03-29T01:30:00.000Z', '2025-03-30T01:00:00.000Z', '2025-03-31T00:30:00.000Z']);
    expect(local('Europe/Paris', ticks)).toEqual(['2025-03-29 02:30', '2025-03-30 03:00', '2025-03-31 02:30']);
  });

  it('Paris, spring forward: every skipped time of an interval pattern folds into one tick at 03:00 (croner would skip them)', () => {
    const quarter = spec({ cron: '*/15 2 * * *', timezone: 'Europe/Paris' });
    expect(iso(ticksOn(quarter, '2025-03-29T23:00:00Z', '2025-03-31T00:00:00Z'))).toEqual(['2025-03-30T01:00:00.000Z']);
    const hourly = spec({ cron: '30 * * * *', timezone: 'Europe/Paris' });
    const ticks = ticksOn(hourly, '2025-03-30T00:00:00Z', '2025-03-30T02:00:00Z');
    expect(local('Europe/Paris', ticks)).toEqual(['2025-03-30 01:30', '2025-03-30 03:00', '2025-03-30 03:30']);
  });

  it('Paris, fall back: a time in the repeated hour fires once, on its first occurrence', () => {
    const daily = spec({ cron: '30 2 * * *', timezone: 'Europe/Paris' });
    expect(iso(ticksOn(daily, '2025-10-25T12:00:00Z', '2025-10-27T00:00:00Z'))).toEqual(['2025-10-26T00:30:00.000Z']);
    // An interval pattern too (croner runs it on both passes): 02:30 CEST fires, 02:30 CET does not.
    const hourly = spec({ cron: '30 * * * *', timezone: 'Europe/Paris' });
    expect(iso(ticksOn(hourly, '2025-10-25T23:00:00Z', '2025-10-26T03:00:00Z'))).toEqual([
      '2025-10-25T23:30:00.000Z',
      '2025-10-26T00:30:00.000Z',
      '2025-10-26T02:30:00.000Z',
    ]);
  });

  it('Paris, fall back: a preview started in the second pass of the repeated hour does not repeat it', () => {
    const s = spec({ cron: '*/20 * * * *', timezone: 'Europe/Paris' });
    // 01:10Z is 02:10 CET, the second 02:10 of the night: 02:20 and 02:40 already fired (CEST).
    expect(local('Europe/Paris', nextTicks(s, at('2025-10-26T01:10:00Z'), 2))).toEqual(['2025-10-26 03:00', '2025-10-26 03:20']);
  });

  it('New York, spring forward: 02:30 fires once, at 03:00 EDT', () => {
    const s = spec({ cron: '30 2 * * *', timezone: 'America/New_York' });
    const ticks = nextTicks(s, at('2025-03-08T12:00:00Z'), 3);
    expect(iso(ticks)).toEqual(['2025-03-09T07:00:00.000Z', '2025-03-10T06:30:00.000Z', '2025-03-11T06:30:00.000Z']);
    expect(local('America/New_York', ticks)).toEqual(['2025-03-09 03:00', '2025-03-10 02:30', '2025-03-11 02:30']);
    const minutes = spec({ cron: '*/10 2 * * *', timezone: 'America/New_York' });
    expect(iso(ticksOn(minutes, '2025-03-09T05:00:00Z', '2025-03-10T00:00:00Z'))).toEqual(['2025-03-09T07:00:00.000Z']);
  });

  it('New York, fall back: 01:30 fires once (EDT), and so does each time of an interval pattern', () => {
    const daily = spec({ cron: '30 1 * * *', timezone: 'America/New_York' });
    expect(iso(ticksOn(daily, '2025-11-01T12:00:00Z', '2025-11-03T00:00:00Z'))).toEqual(['2025-11-02T05:30:00.000Z']);
    const twenty = spec({ cron: '*/20 1 * * *', timezone: 'America/New_York' });
    expect(iso(ticksOn(twenty, '2025-11-02T04:00:00Z', '2025-11-03T00:00:00Z'))).toEqual([
      '2025-11-02T05:00:00.000Z',
      '2025-11-02T05:20:00.000Z',
      '2025-11-02T05:40:00.000Z',
    ]);
  });

  it('weekday crons keep their local time across the change', () => {
    const s = spec({ cron: '0 9 * * 1-5', timezone: 'America/New_York' });
    // Friday 7 March 09:00 EST is 14:00Z; Monday 10 March 09:00 EDT is 13:00Z.
    expect(iso(nextTicks(s, at('2025-03-07T00:00:00Z'), 2))).toEqual(['2025-03-07T14:00:00.000Z', '2025-03-10T13:00:00.000Z']);
  });

  it('catch-up across the fall-back night does not count the repeated hour twice', () => {
    const s = spec({ cron: '*/20 * * * *', timezone: 'Europe/Paris', catchup: { policy: 'all', window: '1d', max_runs: 100 } });
    // Down from 02:40 CEST (00:40Z) to 02:45 CET (01:45Z): every time since was already fired once.
    const r = dueTicks(s, { lastFiredAt: at('2025-10-26T00:40:00Z'), createdAt: at('2025-01-01T00:00:00Z'), now: at('2025-10-26T01:45:00Z') });
    expect(r).toEqual({ due: [], dropped: false, nextRunAt: at('2025-10-26T02:00:00Z') });
    // Down from 01:00 CEST (23:00Z) to 03:05 CET (02:05Z): 01:20 … 02:40 CEST and 03:00 CET, each once.
    const later = dueTicks(s, { lastFiredAt: at('2025-10-25T23:00:00Z'), createdAt: at('2025-01-01T00:00:00Z'), now: at('2025-10-26T02:05:00Z') });
    expect(local('Europe/Paris', later.due)).toEqual([
      '2025-10-26 01:20',
      '2025-10-26 01:40',
      '2025-10-26 02:00',
      '2025-10-26 02:20',
      '2025-10-26 02:40',
      '2025-10-26 03:00',
    ]);
    expect(iso(later.due).slice(-2)).toEqual(['2025-10-26T00:40:00.000Z', '2025-10-26T02:00:00.000Z']);
  });
});

describe('dueTicks', () => {
  const created = at('2025-01-01T00:00:00Z');
  const daily = (catchup: Record<string, unknown>): ScheduleSpec => spec({ cron: '0 9 * * *', catchup });

  it('fires an on-time tick once, then nothing until the next', () => {
    const s = daily({ policy: 'latest' });
    const first = dueTicks(s, { lastFiredAt: at('2025-01-05T09:00:00Z'), createdAt: created, now: at('2025-01-06T09:00:02Z') });
    expect(first).toEqual({ due: [at('2025-01-06T09:00:00Z')], dropped: false, nextRunAt: at('2025-01-07T09:00:00Z') });
    const again = dueTicks(s, { lastFiredAt: at('2025-01-06T09:00:00Z'), createdAt: created, now: at('2025-01-06T09:00:05Z') });
    expect(again).toEqual({ due: [], dropped: false, nextRunAt: at('2025-01-07T09:00:00Z') });
  });

  it('fires a tick exactly at now', () => {
    const r = dueTicks(daily({ policy: 'none' }), { createdAt: created, now: at('2025-01-06T09:00:00Z') });
    expect(iso(r.due)).toEqual(['2025-01-06T09:00:00.000Z']);
  });

  it('counts from createdAt when the schedule never fired: ticks before it are not missed', () => {
    const s = daily({ policy: 'all', window: '366d', max_runs: 1000 });
    const r = dueTicks(s, { lastFiredAt: null, createdAt: at('2025-01-06T08:00:00Z'), now: at('2025-01-06T08:30:00Z') });
    expect(r).toEqual({ due: [], dropped: false, nextRunAt: at('2025-01-06T09:00:00Z') });
    const after = dueTicks(s, { createdAt: at('2025-01-03T12:00:00Z'), now: at('2025-01-06T09:10:00Z') });
    expect(iso(after.due)).toEqual(['2025-01-04T09:00:00.000Z', '2025-01-05T09:00:00.000Z', '2025-01-06T09:00:00.000Z']);
  });

  it('none: only a tick within the grace of now fires; a missed one is dropped', () => {
    const s = daily({ policy: 'none' });
    const last = at('2025-01-03T09:00:00Z');
    const late = dueTicks(s, { lastFiredAt: last, createdAt: created, now: at('2025-01-06T09:00:59Z') });
    expect(late).toEqual({ due: [at('2025-01-06T09:00:00Z')], dropped: true, nextRunAt: at('2025-01-07T09:00:00Z') });
    const tooLate = dueTicks(s, { lastFiredAt: last, createdAt: created, now: at('2025-01-06T09:01:01Z') });
    expect(tooLate).toEqual({ due: [], dropped: true, nextRunAt: at('2025-01-07T09:00:00Z') });
    // The grace is the caller's poll interval when it gives one.
    const polled = dueTicks(s, { lastFiredAt: last, createdAt: created, now: at('2025-01-06T09:04:00Z'), graceMs: 5 * 60_000 });
    expect(iso(polled.due)).toEqual(['2025-01-06T09:00:00.000Z']);
    expect(DEFAULT_TICK_GRACE_MS).toBe(60_000);
  });

  it('latest: only the most recent missed tick, and only within the window', () => {
    const s = daily({ policy: 'latest', window: '1h' });
    const last = at('2025-01-03T09:00:00Z');
    const within = dueTicks(s, { lastFiredAt: last, createdAt: created, now: at('2025-01-06T09:45:00Z') });
    expect(within).toEqual({ due: [at('2025-01-06T09:00:00Z')], dropped: true, nextRunAt: at('2025-01-07T09:00:00Z') });
    const outside = dueTicks(s, { lastFiredAt: last, createdAt: created, now: at('2025-01-06T10:00:01Z') });
    expect(outside).toEqual({ due: [], dropped: true, nextRunAt: at('2025-01-07T09:00:00Z') });
    // A window shorter than the grace never drops an on-time tick.
    const short = daily({ policy: 'latest', window: '1s' });
    expect(iso(dueTicks(short, { lastFiredAt: last, createdAt: created, now: at('2025-01-06T09:00:30Z') }).due)).toEqual(['2025-01-06T09:00:00.000Z']);
  });

  it('all: every missed tick within the window, oldest first', () => {
    const s = spec({ cron: '0 * * * *', catchup: { policy: 'all', window: '3h', max_runs: 10 } });
    const r = dueTicks(s, { lastFiredAt: at('2025-01-06T04:00:00Z'), createdAt: created, now: at('2025-01-06T09:30:00Z') });
    expect(iso(r.due)).toEqual(['2025-01-06T07:00:00.000Z', '2025-01-06T08:00:00.000Z', '2025-01-06T09:00:00.000Z']);
    expect(r.dropped).toBe(true); // 05:00 and 06:00 are older than the window
    expect(r.nextRunAt).toEqual(at('2025-01-06T10:00:00Z'));
    const inWindow = dueTicks(s, { lastFiredAt: at('2025-01-06T07:00:00Z'), createdAt: created, now: at('2025-01-06T09:30:00Z') });
    expect(inWindow).toEqual({ due: [at('2025-01-06T08:00:00Z'), at('2025-01-06T09:00:00Z')], dropped: false, nextRunAt: at('2025-01-06T10:00:00Z') });
  });

  it('all: past max_runs the oldest ticks are dropped and the most recent kept', () => {
    const s = spec({ cron: '*/10 * * * *', catchup: { policy: 'all', window: '1d', max_runs: 3 } });
    const r = dueTicks(s, { lastFiredAt: at('2025-01-06T08:00:00Z'), createdAt: created, now: at('2025-01-06T09:05:00Z') });
    expect(iso(r.due)).toEqual(['2025-01-06T08:40:00.000Z', '2025-01-06T08:50:00.000Z', '2025-01-06T09:00:00.000Z']);
    expect(r.dropped).toBe(true);
  });

  it('a very long downtime stays bounded: at most max_runs ticks, found quickly', () => {
    // A tick every second, down for ten years, the widest window and the most runs allowed.
    const s = spec({ cron: '* * * * * *', timezone: 'Europe/Paris', catchup: { policy: 'all', window: '366d', max_runs: 1000 } });
    const started = performance.now();
    const r = dueTicks(s, { lastFiredAt: at('2015-01-01T00:00:00Z'), createdAt: created, now: at('2025-01-06T09:00:00.400Z') });
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(r.due).toHaveLength(1000);
    expect(r.due[0]).toEqual(at('2025-01-06T08:43:21Z'));
    expect(r.due[999]).toEqual(at('2025-01-06T09:00:00Z'));
    expect(r.dropped).toBe(true);
    expect(r.nextRunAt).toEqual(at('2025-01-06T09:00:01Z'));
    const latest = dueTicks(spec({ cron: '0 9 * * 1-5', catchup: { policy: 'latest', window: '366d' } }), {
      lastFiredAt: at('2015-01-01T09:00:00Z'),
      createdAt: created,
      now: at('2025-01-06T12:00:00Z'),
    });
    expect(latest).toEqual({ due: [at('2025-01-06T09:00:00Z')], dropped: true, nextRunAt: at('2025-01-07T09:00:00Z') });
  });

  it('a clock set back does not fire again what was fired', () => {
    const s = daily({ policy: 'all', window: '1d' });
    const r = dueTicks(s, { lastFiredAt: at('2025-01-06T09:00:00Z'), createdAt: created, now: at('2025-01-06T08:00:00Z') });
    expect(r).toEqual({ due: [], dropped: false, nextRunAt: at('2025-01-07T09:00:00Z') });
  });

  it('weekday crons catch up over a weekend with the weekday ticks only', () => {
    const s = spec({ cron: '0 9 * * 1-5', timezone: 'Europe/Paris', catchup: { policy: 'all', window: '5d', max_runs: 10 } });
    // Last fired Thursday 2 January; back on Tuesday 7 January at 10:00 Paris.
    const r = dueTicks(s, { lastFiredAt: at('2025-01-02T08:00:00Z'), createdAt: created, now: at('2025-01-07T09:00:00Z') });
    expect(local('Europe/Paris', r.due)).toEqual(['2025-01-03 09:00', '2025-01-06 09:00', '2025-01-07 09:00']);
  });

  it('6-field crons catch up to the second', () => {
    const s = spec({ cron: '*/15 * * * * *', catchup: { policy: 'all', window: '1m', max_runs: 10 } });
    const r = dueTicks(s, { lastFiredAt: at('2025-01-06T09:00:00Z'), createdAt: created, now: at('2025-01-06T09:00:50Z') });
    expect(iso(r.due)).toEqual(['2025-01-06T09:00:15.000Z', '2025-01-06T09:00:30.000Z', '2025-01-06T09:00:45.000Z']);
    expect(r.nextRunAt).toEqual(at('2025-01-06T09:01:00Z'));
  });
});

describe('tickKey', () => {
  it('is schedule:<id>:<tick ISO>, the same for the same tick', () => {
    expect(tickKey('nightly-report', at('2025-01-06T08:00:00Z'))).toBe('schedule:nightly-report:2025-01-06T08:00:00.000Z');
    expect(tickKey('a', new Date(Date.UTC(2025, 0, 6, 8)))).toBe(tickKey('a', at('2025-01-06T09:00:00+01:00')));
    expect(tickKey('a', at('2025-01-06T08:00:00Z'))).not.toBe(tickKey('a', at('2025-01-06T08:00:01Z')));
  });

  it('tells the two passes of a repeated hour apart, should both ever be keyed', () => {
    expect(tickKey('s', at('2025-10-26T02:30:00+02:00'))).not.toBe(tickKey('s', at('2025-10-26T02:30:00+01:00')));
  });

  it('rejects an empty id and an invalid date', () => {
    expect(() => tickKey('', at('2025-01-06T08:00:00Z'))).toThrow(/schedule id is required/);
    expect(() => tickKey('a', new Date(Number.NaN))).toThrow(/not a valid date/);
  });
});

describe('decideOverlap', () => {
  it('starts when nothing of the schedule is active, whatever the policy', () => {
    for (const policy of ['skip', 'buffer_one', 'allow_all', 'cancel_other'] as const) expect(decideOverlap(policy, { active: false })).toBe('start');
  });

  it('applies the policy while a run is active', () => {
    expect(decideOverlap('skip', { active: true })).toBe('skip');
    expect(decideOverlap('buffer_one', { active: true })).toBe('buffer');
    expect(decideOverlap('allow_all', { active: true })).toBe('start');
    expect(decideOverlap('cancel_other', { active: true })).toBe('cancel_others');
  });

  it('buffer_one keeps one tick: further ones are skipped while it waits', () => {
    expect(decideOverlap('buffer_one', { active: true, buffered: true })).toBe('skip');
    expect(decideOverlap('buffer_one', { active: false, buffered: true })).toBe('skip');
  });
});
