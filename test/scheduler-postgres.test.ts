/**
 * The scheduler on PostgreSQL: catch-up and idempotent ticks with passes racing from two Swarms
 * (two processes' worth of connections), and the lease taken over by the other scheduler's loop
 * when the holder's connection to the database is gone.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Swarm } from '../src/swarm.js';
import type { SchedulerClock } from '../src/triggers/scheduler.js';
import { pgTestServer, stopPgTestServer, type PgTestServer } from './helpers/pg.js';
import { until } from './helpers/cli.js';
import { EXAMPLES, removeProject, tempProject, writeWorkflow } from './helpers/project.js';

const HOUR = 3_600_000;
let server: PgTestServer;
beforeAll(async () => {
  server = await pgTestServer();
});
afterAll(async () => {
  await stopPgTestServer();
});

/** Two Swarms on one new database (same project: same master key), with a workflow scheduled by `trigger`. */
async function pair(trigger: string): Promise<{ a: Swarm; b: Swarm; dir: string }> {
  const url = await server.createDatabase();
  const dir = tempProject('name: sched-pg\nsandbox: none\n');
  const open = (): Promise<Swarm> => Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_DATABASE_URL: url } });
  const a = await open();
  const b = await open();
  await a.registerAgent(join(EXAMPLES, 'agents', 'echo'));
  await a.registerWorkflow(writeWorkflow(dir, 'pulse', `name: pulse\nversion: 1.0.0\ntrigger: ${trigger}\nsteps:\n  - id: a\n    agent: echo\n    inputs: {message: tick}\n`));
  return { a, b, dir };
}

async function ticksOf(swarm: Swarm): Promise<number[]> {
  const runs = await swarm.listRuns({ workflow: 'pulse', limit: 1000 });
  for (const r of runs) expect(r.idempotency_key).toBe(`schedule:pulse:${(r.trigger_data as { scheduled_at: string }).scheduled_at}`);
  return runs.map((r) => Date.parse((r.trigger_data as { scheduled_at: string }).scheduled_at)).sort((x, y) => x - y);
}

describe('the scheduler on PostgreSQL', () => {
  it('catch-up by the policy, one holder, and one run per tick while two schedulers race', async () => {
    const { a, b, dir } = await pair('{type: schedule, cron: "0 * * * *", overlap: allow_all, catchup: {policy: all, window: 6h, max_runs: 3}}');
    try {
      const h0 = Math.ceil(Date.now() / HOUR) * HOUR + HOUR;
      await a.store.updateScheduleState('pulse', { last_fired_at: h0, next_run_at: null });
      let now = h0 + 5 * HOUR + 60_000;
      const clock: SchedulerClock = { now: () => now, sleep: async () => undefined };
      const sa = a.scheduler({ holder: 'a', clock });
      const sb = b.scheduler({ holder: 'b', clock });
      const [ra, rb] = await Promise.all([sa.pass(), sb.pass()]);
      expect([ra.holder, rb.holder].filter(Boolean)).toHaveLength(1);
      expect(await ticksOf(a)).toEqual([3, 4, 5].map((h) => h0 + h * HOUR));
      // The holder stops (releasing the lease); the other takes over and fires the next tick, once.
      const [holder, other] = ra.holder ? [sa, sb] : [sb, sa];
      await holder.stop();
      now = h0 + 6 * HOUR + 1000;
      const results = await Promise.all([other.pass(), other.pass(), holder.pass()]);
      expect(results.flatMap((r) => r.fired.filter((f) => f.created))).toHaveLength(1);
      expect(await ticksOf(b)).toEqual([3, 4, 5, 6].map((h) => h0 + h * HOUR));
    } finally {
      await a.close();
      await b.close();
      removeProject(dir);
    }
  });

  it('buffer_one across a failover: a buffers a tick and stops, b fires it exactly once', async () => {
    const { a, b, dir } = await pair('{type: schedule, cron: "* * * * *", overlap: buffer_one}');
    try {
      const MIN = 60_000;
      const tick = Math.ceil(Date.now() / MIN) * MIN + MIN;
      let now = tick + 1000;
      const clock: SchedulerClock = { now: () => now, sleep: async () => undefined };
      const sa = a.scheduler({ holder: 'a', clock });
      const sb = b.scheduler({ holder: 'b', clock, renewEveryMs: 0 });
      expect((await sa.pass()).fired).toHaveLength(1);
      now = tick + MIN + 1000;
      expect((await sa.pass()).buffered).toEqual([`schedule:pulse:${new Date(tick + MIN).toISOString()}`]);
      await sa.stop();
      now = tick + MIN + 2000;
      expect(await sb.pass()).toMatchObject({ holder: true, fired: [] });
      const [first] = await b.listRuns({ workflow: 'pulse', limit: 10 });
      await b.cancel(first!.id);
      // Passes racing from b and from a (which no longer holds the lease) fire it once.
      const results = await Promise.all([sb.pass(), sb.pass(), sa.pass()]);
      expect(results.flatMap((r) => r.fired.filter((f) => f.created)).map((f) => f.key)).toEqual([`schedule:pulse:${new Date(tick + MIN).toISOString()}`]);
      expect((await sb.pass()).fired).toEqual([]);
      expect(await ticksOf(b)).toEqual([tick, tick + MIN]);
      expect((await b.store.listTriggers({ workflow: 'pulse' }))[0]?.buffered_tick).toBeNull();
    } finally {
      await a.close();
      await b.close();
      removeProject(dir);
    }
  });

  it('the holder loses its database: the other loop takes the lease over and no tick fires twice', async () => {
    const { a, b, dir } = await pair('{type: schedule, cron: "* * * * * *", overlap: allow_all, catchup: {policy: all, window: 1h, max_runs: 5}}');
    const logs: string[] = [];
    const options = { leaseTtlMs: 1500, renewEveryMs: 500, log: (l: string) => logs.push(l) };
    const sa = a.scheduler({ holder: 'a', ...options });
    const sb = b.scheduler({ holder: 'b', ...options });
    const loops = [sa.start(), sb.start()];
    let aClosed = false;
    try {
      await until('three ticks', async () => ((await ticksOf(b)).length >= 3 ? true : undefined), 15_000);
      const lease = await b.store.getLease('scheduler');
      const [dead, alive, deadSwarm, aliveSwarm] = lease?.holder === 'a' ? [sa, sb, a, b] : [sb, sa, b, a];
      // Its connections gone, the holder can neither fire nor renew nor release: the lease expires.
      await deadSwarm.store.close();
      if (deadSwarm === a) aClosed = true;
      const cut = Date.now();
      await until('the takeover', async () => ((await aliveSwarm.store.getLease('scheduler'))?.holder === alive.holder ? true : undefined), 10_000);
      await until('three ticks after it', async () => ((await ticksOf(aliveSwarm)).filter((t) => t > cut).length >= 3 ? true : undefined), 10_000);
      const ticks = await ticksOf(aliveSwarm);
      expect(new Set(ticks).size).toBe(ticks.length);
      // The gap while the lease expired (about 2 s) was caught up: a run for every second.
      for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!).toBe(1000);
      expect(logs.join('\n')).toMatch(new RegExp(`${alive.holder} holds the schedule lease`));
      await dead.stop();
      await alive.stop();
      await Promise.all(loops);
      expect(await aliveSwarm.store.getLease('scheduler')).toBeUndefined();
    } finally {
      await sa.stop();
      await sb.stop();
      await (aClosed ? b : a).close();
      // The other's store is closed already (or is closed now): its schedulers have stopped.
      await (aClosed ? a : b).close().catch(() => undefined);
      removeProject(dir);
    }
  });
});
