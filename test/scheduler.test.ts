/**
 * The scheduler in process, one pass at a time with a fake clock: due ticks fire once (idempotency
 * keys, even after a crash between the run and `last_fired_at`), catch-up policies after an outage,
 * the overlap policies, pause, disabled workflows, a DST gap, and the lease (one firer; stop
 * releases it). Runs are left queued (no worker), so "a run is still active" is under the test's control.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManifestError } from '../src/core/errors.js';
import { parseWorkflowManifest } from '../src/core/manifest/workflow.js';
import { workflowRecord } from '../src/store/rows.js';
import type { Swarm } from '../src/swarm.js';
import { Retention } from '../src/triggers/retention.js';
import { Scheduler, type SchedulerClock } from '../src/triggers/scheduler.js';
import { EXAMPLES, openProject, removeProject, tempProject, writeWorkflow } from './helpers/project.js';

const MIN = 60_000;
const HOUR = 3_600_000;

let dir: string;
let swarm: Swarm;
let now = 0;
const clock: SchedulerClock = { now: () => now, sleep: async () => undefined };
let logs: string[];

beforeEach(async () => {
  dir = tempProject('name: sched-test\nsandbox: none\n');
  swarm = await openProject(dir);
  logs = [];
  await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
});

afterEach(async () => {
  await swarm.close();
  removeProject(dir);
});

async function schedule(name: string, trigger: string, extra = ''): Promise<void> {
  await swarm.registerWorkflow(writeWorkflow(dir, name, `name: ${name}\nversion: 1.0.0\ntrigger: ${trigger}\n${extra}steps:\n  - id: a\n    agent: echo\n    inputs: {message: tick}\n`));
}

function scheduler(holder = 'h1'): Scheduler {
  return swarm.scheduler({ holder, clock, log: (l) => logs.push(l) });
}

/** Pretend the schedule last fired at `ms` (as after a run of the server that has since stopped). */
async function lastFired(name: string, ms: number): Promise<void> {
  await swarm.store.updateScheduleState(name, { last_fired_at: ms, next_run_at: null });
}

async function runsOf(name: string): Promise<Array<{ id: string; key: string | null; status: string; data: unknown }>> {
  return (await swarm.listRuns({ workflow: name, limit: 1000 })).map((r) => ({ id: r.id, key: r.idempotency_key, status: r.status, data: r.trigger_data })).reverse();
}

/** The first whole hour at least an hour from now: ticks there are after the schedule's registration. */
const futureHour = (): number => Math.ceil(Date.now() / HOUR) * HOUR + HOUR;

describe('firing', () => {
  it('a due tick fires one run, with its key and trigger data, and only once', async () => {
    await schedule('every-minute', '{type: schedule, cron: "* * * * *"}');
    const tick = Math.ceil(Date.now() / MIN) * MIN + MIN;
    now = tick + 5000;
    const s = scheduler();
    const first = await s.pass();
    expect(first.holder).toBe(true);
    expect(first.fired).toEqual([{ key: `schedule:every-minute:${new Date(tick).toISOString()}`, runId: expect.any(String) as unknown, created: true }]);
    const [run] = await runsOf('every-minute');
    expect(run).toMatchObject({ key: `schedule:every-minute:${new Date(tick).toISOString()}`, data: { scheduled_at: new Date(tick).toISOString(), fired_at: new Date(now).toISOString() } });
    expect((await swarm.getRun(run!.id)).run.trigger_type).toBe('schedule');
    expect((await s.pass()).fired).toEqual([]);
    const info = await swarm.getSchedule('every-minute');
    expect(info).toMatchObject({ last_fired_at: new Date(tick).toISOString(), next_run_at: new Date(tick + MIN).toISOString(), paused: false, enabled: true });
    expect((await swarm.store.listTriggers({ workflow: 'every-minute' }))[0]!.next_run_at).toBe(tick + MIN);
    // Before the next tick the pass does nothing and says when to wake.
    now = tick + MIN - 1;
    expect(await s.pass()).toMatchObject({ fired: [], nextAt: tick + MIN });
  });

  it('a crash between the run and last_fired_at: the tick fires again and gets the same run back', async () => {
    await schedule('crashy', '{type: schedule, cron: "* * * * *", overlap: allow_all}');
    const tick = Math.ceil(Date.now() / MIN) * MIN + MIN;
    now = tick + 1000;
    const store = swarm.store;
    const update = store.updateScheduleState.bind(store);
    let fail = true;
    store.updateScheduleState = async (id, state) => {
      if (fail && state.last_fired_at !== undefined) {
        fail = false;
        throw new Error('the process died here');
      }
      return update(id, state);
    };
    const s = scheduler();
    await expect(s.pass()).rejects.toThrow('the process died here');
    const again = await s.pass();
    expect(again.fired).toEqual([{ key: `schedule:crashy:${new Date(tick).toISOString()}`, runId: expect.any(String) as unknown, created: false }]);
    expect(await runsOf('crashy')).toHaveLength(1);
  });

  it('a workflow whose inputs refuse the trigger data: the tick is recorded, the reason logged, no retry loop', async () => {
    // Registration refuses such a workflow (see the next test); one already in the store (registered
    // directly, or disabled between a pass's listing and its start) must not make the scheduler loop.
    const yaml = 'name: needs-input\nversion: 1.0.0\ntrigger: {type: schedule, cron: "* * * * *"}\ninputs:\n  - {name: customer, type: string, required: true}\nsteps:\n  - id: a\n    agent: echo\n    inputs: {message: tick}\n';
    await swarm.store.putWorkflow(workflowRecord(parseWorkflowManifest(yaml, 'workflow.yaml'), dir), false);
    const tick = Math.ceil(Date.now() / MIN) * MIN + MIN;
    now = tick + 1000;
    const s = scheduler();
    expect((await s.pass()).skipped).toEqual([`schedule:needs-input:${new Date(tick).toISOString()}`]);
    expect(logs.join('\n')).toMatch(/needs-input: tick .* not started: input for workflow needs-input/);
    expect((await s.pass()).skipped).toEqual([]);
    expect(await runsOf('needs-input')).toEqual([]);
  });

  it('registration refuses a schedule whose workflow requires inputs a tick cannot give, naming the line', async () => {
    const e = await schedule('strict', '{type: schedule, cron: "* * * * *"}', 'inputs:\n  - {name: customer, type: string, required: true}\n').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ManifestError);
    expect((e as ManifestError).message).toMatch(/workflow\.yaml:3: trigger: a scheduled run's input is \{scheduled_at, fired_at\}, which the workflow's inputs refuse .*customer/);
    expect(await swarm.listWorkflows('strict')).toEqual([]);
    expect(await swarm.store.listTriggers()).toEqual([]);
  });
});

describe('catch-up after downtime', () => {
  const hourly = (policy: string): string => `{type: schedule, cron: "0 * * * *", overlap: allow_all, catchup: {policy: ${policy}, window: 6h, max_runs: 3}}`;

  it('all: the missed ticks within the window, at most max_runs, the most recent', async () => {
    await schedule('all', hourly('all'));
    const h0 = futureHour();
    await lastFired('all', h0);
    now = h0 + 5 * HOUR + 10 * MIN;
    const report = await scheduler().pass();
    expect(report.dropped).toEqual(['all']);
    expect((await runsOf('all')).map((r) => r.key)).toEqual([3, 4, 5].map((h) => `schedule:all:${new Date(h0 + h * HOUR).toISOString()}`));
    expect((await swarm.getSchedule('all')).last_fired_at).toBe(new Date(h0 + 5 * HOUR).toISOString());
  });

  it('latest: one run for the newest missed tick; none: nothing once the tick is past the grace', async () => {
    await schedule('latest', hourly('latest'));
    await schedule('none', hourly('none'));
    const h0 = futureHour();
    await lastFired('latest', h0);
    await lastFired('none', h0);
    now = h0 + 5 * HOUR + 10 * MIN;
    await scheduler().pass();
    expect((await runsOf('latest')).map((r) => r.key)).toEqual([`schedule:latest:${new Date(h0 + 5 * HOUR).toISOString()}`]);
    expect(await runsOf('none')).toEqual([]);
    // The next tick is the one after now, and a tick seen on time still fires under none.
    expect((await swarm.store.listTriggers({ workflow: 'none' }))[0]!.next_run_at).toBe(h0 + 6 * HOUR);
    now = h0 + 6 * HOUR + 2000;
    await scheduler().pass();
    expect((await runsOf('none')).map((r) => r.key)).toEqual([`schedule:none:${new Date(h0 + 6 * HOUR).toISOString()}`]);
  });

  it('registering a new version after an outage keeps the missed ticks: they are caught up, not lost', async () => {
    // Real time, since registration reads the store's clock: the schedule last fired three hours
    // ago (the server went down), and its next_run_at was the tick after that.
    await schedule('again', hourly('all'));
    const h = Math.floor(Date.now() / HOUR) * HOUR;
    await swarm.store.updateScheduleState('again', { last_fired_at: h - 3 * HOUR, next_run_at: h - 2 * HOUR });
    await swarm.registerWorkflow(writeWorkflow(dir, 'again', `name: again\nversion: 1.1.0\ntrigger: ${hourly('all')}\nsteps:\n  - id: a\n    agent: echo\n    inputs: {message: tick}\n`));
    expect((await swarm.store.listTriggers({ workflow: 'again' }))[0]).toMatchObject({ workflow_version: '1.1.0', last_fired_at: h - 3 * HOUR, next_run_at: h - 2 * HOUR });
    now = Date.now();
    await scheduler().pass();
    expect((await runsOf('again')).map((r) => r.key)).toEqual([2, 1, 0].map((k) => `schedule:again:${new Date(h - k * HOUR).toISOString()}`));
    // A schedule that never fired still starts at registration: nothing of the past fires.
    await schedule('fresh', hourly('all'));
    expect((await swarm.store.listTriggers({ workflow: 'fresh' }))[0]!.next_run_at).toBeGreaterThan(Date.now());
  });

  it('an outage longer than the window fires nothing of it', async () => {
    await schedule('old', hourly('all'));
    const h0 = futureHour();
    await lastFired('old', h0);
    now = h0 + 30 * HOUR + 30 * MIN;
    await scheduler().pass();
    expect((await runsOf('old')).map((r) => r.key)).toEqual([28, 29, 30].map((h) => `schedule:old:${new Date(h0 + h * HOUR).toISOString()}`));
  });
});

describe('overlap', () => {
  const everyMinute = (overlap: string): string => `{type: schedule, cron: "* * * * *", overlap: ${overlap}}`;
  let tick: number;
  beforeEach(() => {
    tick = Math.ceil(Date.now() / MIN) * MIN + MIN;
  });
  const at = (n: number): string => new Date(tick + n * MIN).toISOString();

  it('skip: a tick while the last run is active is skipped (and counts as fired)', async () => {
    await schedule('sk', everyMinute('skip'));
    const s = scheduler();
    now = tick + 1000;
    await s.pass();
    now = tick + MIN + 1000;
    expect((await s.pass()).skipped).toEqual([`schedule:sk:${at(1)}`]);
    expect((await runsOf('sk')).map((r) => r.key)).toEqual([`schedule:sk:${at(0)}`]);
    expect((await swarm.getSchedule('sk')).last_fired_at).toBe(at(1));
  });

  it('buffer_one: one tick waits for the active run, later ones are skipped, it starts when the run ends', async () => {
    await schedule('bf', everyMinute('buffer_one'));
    const s = scheduler();
    now = tick + 1000;
    await s.pass();
    now = tick + MIN + 1000;
    expect((await s.pass()).buffered).toEqual([`schedule:bf:${at(1)}`]);
    now = tick + 2 * MIN + 1000;
    expect((await s.pass()).skipped).toEqual([`schedule:bf:${at(2)}`]);
    const [first] = await runsOf('bf');
    await swarm.cancel(first!.id);
    now = tick + 2 * MIN + 2000;
    expect((await s.pass()).fired.map((f) => f.key)).toEqual([`schedule:bf:${at(1)}`]);
    expect((await runsOf('bf')).map((r) => r.key)).toEqual([`schedule:bf:${at(0)}`, `schedule:bf:${at(1)}`]);
  });

  it('buffer_one across a failover: holder a buffers a tick and stops; b (another process on the file) fires it once, even if it dies before clearing it', async () => {
    await schedule('fo', everyMinute('buffer_one'));
    const a = scheduler('a');
    now = tick + 1000;
    await a.pass();
    now = tick + MIN + 1000;
    expect((await a.pass()).buffered).toEqual([`schedule:fo:${at(1)}`]);
    await a.stop();
    const other = await openProject(dir);
    try {
      const b = other.scheduler({ holder: 'b', clock, log: (l) => logs.push(l) });
      now = tick + MIN + 2000;
      // The first run is still active: b holds the tick back too.
      expect(await b.pass()).toMatchObject({ holder: true, fired: [], buffered: [] });
      expect((await other.store.listTriggers({ workflow: 'fo' }))[0]?.buffered_tick).toBe(tick + MIN);
      expect((await other.getSchedule('fo')).buffered_tick).toBe(at(1));
      await other.cancel((await runsOf('fo'))[0]!.id);
      // b starts the tick's run, then dies before clearing the buffer.
      const swap = other.store.swapScheduleBuffer.bind(other.store);
      other.store.swapScheduleBuffer = async (id, expected, next) => {
        if (next === null) throw new Error('the process died here');
        return swap(id, expected, next);
      };
      await expect(b.pass()).rejects.toThrow('the process died here');
      other.store.swapScheduleBuffer = swap;
      expect((await runsOf('fo')).map((r) => [r.key, r.status])).toEqual([
        [`schedule:fo:${at(0)}`, 'cancelled'],
        [`schedule:fo:${at(1)}`, 'queued'],
      ]);
      // Still buffered, and its own run is active: the next pass waits; once it ends, the start
      // finds that run (same key) and clears the buffer.
      expect((await b.pass()).fired).toEqual([]);
      await other.cancel((await runsOf('fo'))[1]!.id);
      expect((await b.pass()).fired).toEqual([{ key: `schedule:fo:${at(1)}`, runId: (await runsOf('fo'))[1]!.id, created: false }]);
      expect((await other.store.listTriggers({ workflow: 'fo' }))[0]?.buffered_tick).toBeNull();
      expect((await b.pass()).fired).toEqual([]);
      expect((await runsOf('fo')).map((r) => r.key)).toEqual([`schedule:fo:${at(0)}`, `schedule:fo:${at(1)}`]);
    } finally {
      await other.close();
    }
  });

  it('buffer_one: pausing the schedule drops its buffered tick', async () => {
    await schedule('bp', everyMinute('buffer_one'));
    const s = scheduler();
    now = tick + 1000;
    await s.pass();
    now = tick + MIN + 1000;
    expect((await s.pass()).buffered).toEqual([`schedule:bp:${at(1)}`]);
    await swarm.pauseSchedule('bp');
    await s.pass();
    expect((await swarm.store.listTriggers({ workflow: 'bp' }))[0]?.buffered_tick).toBeNull();
    await swarm.resumeSchedule('bp');
    await swarm.cancel((await runsOf('bp'))[0]!.id);
    await s.pass();
    expect((await runsOf('bp')).map((r) => r.key)).toEqual([`schedule:bp:${at(0)}`]);
  });

  it('allow_all starts every tick; cancel_other cancels the active run first', async () => {
    await schedule('aa', everyMinute('allow_all'));
    await schedule('co', everyMinute('cancel_other'));
    const s = scheduler();
    now = tick + 1000;
    await s.pass();
    now = tick + MIN + 1000;
    await s.pass();
    expect((await runsOf('aa')).map((r) => r.status)).toEqual(['queued', 'queued']);
    expect((await runsOf('co')).map((r) => [r.key, r.status])).toEqual([
      [`schedule:co:${at(0)}`, 'cancelled'],
      [`schedule:co:${at(1)}`, 'queued'],
    ]);
  });
});

describe('pause, disable, DST', () => {
  it('a paused schedule and a disabled workflow do not fire; resumed, catch-up applies', async () => {
    await schedule('p', '{type: schedule, cron: "0 * * * *", catchup: {policy: latest, window: 2h}}');
    await schedule('d', '{type: schedule, cron: "0 * * * *"}');
    const h0 = futureHour();
    await lastFired('p', h0);
    await lastFired('d', h0);
    expect((await swarm.pauseSchedule('p')).paused).toBe(true);
    await swarm.setWorkflowEnabled('d', false);
    const s = scheduler();
    now = h0 + 3 * HOUR + 10 * MIN;
    await s.pass();
    expect(await runsOf('p')).toEqual([]);
    expect(await runsOf('d')).toEqual([]);
    expect((await swarm.listSchedules()).map((x) => [x.workflow, x.paused, x.enabled])).toEqual([
      ['d', false, false],
      ['p', true, true],
    ]);
    await swarm.resumeSchedule('p');
    await s.pass();
    expect((await runsOf('p')).map((r) => r.key)).toEqual([`schedule:p:${new Date(h0 + 3 * HOUR).toISOString()}`]);
  });

  it('02:30 in Paris on the day the clocks skip it fires once, at 03:00 CEST', async () => {
    await schedule('dst', '{type: schedule, cron: "30 2 * * *", timezone: Europe/Paris, catchup: {policy: none}}');
    // 2030-03-31: clocks go from 02:00 CET to 03:00 CEST (01:00 UTC).
    await lastFired('dst', Date.parse('2030-03-30T01:30:00Z'));
    now = Date.parse('2030-03-31T01:00:05Z');
    const s = scheduler();
    expect((await s.pass()).fired.map((f) => f.key)).toEqual(['schedule:dst:2030-03-31T01:00:00.000Z']);
    now = Date.parse('2030-03-31T01:45:00Z');
    expect((await s.pass()).fired).toEqual([]);
  });
});

describe('the lease', () => {
  it('one holder fires; stop releases the lease and another process takes over at its next attempt', async () => {
    await schedule('leased', '{type: schedule, cron: "* * * * *", overlap: allow_all}');
    const tick = Math.ceil(Date.now() / MIN) * MIN + MIN;
    const a = scheduler('a');
    // b tries to take the lease on every pass (by default, once per renew interval: 5 s).
    const b = swarm.scheduler({ holder: 'b', clock, renewEveryMs: 0, log: (l) => logs.push(l) });
    now = tick + 1000;
    expect((await a.pass()).fired).toHaveLength(1);
    expect(await b.pass()).toMatchObject({ holder: false, fired: [] });
    expect(a.isHolder).toBe(true);
    expect(b.isHolder).toBe(false);
    await a.stop();
    expect(await swarm.store.getLease('scheduler')).toBeUndefined();
    now = tick + MIN + 1000;
    const report = await b.pass();
    expect(report.holder).toBe(true);
    expect(report.fired.map((f) => f.key)).toEqual([`schedule:leased:${new Date(tick + MIN).toISOString()}`]);
    expect(logs.join('\n')).toMatch(/b holds the schedule lease/);
  });

  it('the loop fires as time passes and stops on stop(), releasing the lease', async () => {
    await schedule('loop', '{type: schedule, cron: "* * * * *", overlap: allow_all}');
    // The first minute after the registration: nothing is due before it.
    const tick = Math.floor(Date.now() / MIN) * MIN + MIN;
    now = tick - 1;
    // Each sleep moves the fake time a minute on.
    const loopClock: SchedulerClock = {
      now: () => now,
      sleep: async () => {
        now += MIN;
        await new Promise((r) => setTimeout(r, 5));
      },
    };
    const s = swarm.scheduler({ holder: 'loop', clock: loopClock });
    const done = s.start();
    while ((await runsOf('loop')).length < 3) await new Promise((r) => setTimeout(r, 10));
    await s.stop();
    await done;
    expect(await swarm.store.getLease('scheduler')).toBeUndefined();
    const keys = (await runsOf('loop')).map((r) => r.key);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.slice(0, 3)).toEqual([0, 1, 2].map((n) => `schedule:loop:${new Date(tick + n * MIN).toISOString()}`));
  });
});

describe('retention', () => {
  it('a backlog larger than one pruning may take goes on at the next pass, not a minute later; then it waits a minute', async () => {
    let rows = Array.from({ length: 7 }, (_, i) => i);
    const cutoffs: number[] = [];
    const store = {
      pruneEmittedEvents: async (before: number, limit: number): Promise<number> => {
        cutoffs.push(before);
        const n = Math.min(limit, rows.length);
        rows = rows.slice(n);
        return n;
      },
    };
    let t = 10 * HOUR;
    // No time budget: one batch per pruning while batches come back full.
    const r = new Retention(store, { emittedEventsMs: HOUR, batchSize: 3, budgetMs: 0, now: () => t });
    expect(await r.prune()).toBe(3);
    expect(await r.prune()).toBe(3);
    expect(await r.prune()).toBe(1);
    expect(cutoffs).toEqual([9 * HOUR, 9 * HOUR, 9 * HOUR]);
    rows = [1, 2];
    t += 59_000;
    expect(await r.prune()).toBe(0);
    t += 1_000;
    expect(await r.prune()).toBe(2);
    expect(cutoffs.at(-1)).toBe(10 * HOUR + MIN - HOUR);
  });
});
