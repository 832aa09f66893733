/**
 * Schedules fired by real `swarm serve` processes on one SQLite store, with a per-second cron:
 * exactly one process fires (the lease holder); SIGKILL the holder and the other takes over; no tick
 * ever makes two runs; after both are killed and one comes back, the missed ticks follow the
 * catch-up policy (`all`, `max_runs: 4`: the four most recent, the older ones dropped); SIGTERM
 * releases the lease and exits 0.
 *
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupSandboxes, EXAMPLES, makeSandbox, show, until, type CliResult, type Sandbox } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

interface Served {
  child: ChildProcess;
  done: Promise<CliResult>;
  holderId: string;
  output: () => string;
}

/** A lease of 1.5 s (renewed every 0.5 s): a dead holder is replaced within about 2 s. */
async function serve(s: Sandbox): Promise<Served> {
  const { child, done } = s.start(['serve', '--port', '0', '--no-worker', '--schedule-lease', '1.5'], { timeoutMs: 60_000 });
  let out = '';
  child.stdout?.on('data', (d: Buffer | string) => (out += String(d)));
  child.stderr?.on('data', (d: Buffer | string) => (out += String(d)));
  const holderId = await until('the start-up line', async () => /scheduler (serve-\S+)\)/.exec(out)?.[1], 20_000, 50);
  return { child, done, holderId, output: () => out };
}

interface TickRun {
  key: string;
  tick: number;
  fired: number;
  created: number;
}

function runs(s: Sandbox): TickRun[] {
  return s
    .query<{ idempotency_key: string; trigger_data: string; created_at: number }>(`SELECT idempotency_key, trigger_data, created_at FROM workflow_runs WHERE workflow_name = 'pulse' ORDER BY created_at`)
    .map((r) => {
      const data = JSON.parse(r.trigger_data) as { scheduled_at: string; fired_at: string };
      return { key: r.idempotency_key, tick: Date.parse(data.scheduled_at), fired: Date.parse(data.fired_at), created: r.created_at };
    });
}

const holder = (s: Sandbox): string | undefined => s.query<{ holder: string }>(`SELECT holder FROM leases WHERE name = 'scheduler'`)[0]?.holder;

/** Every run's key is its tick's, and no tick has two runs. */
function expectOneRunPerTick(all: TickRun[]): void {
  for (const r of all) expect(r.key).toBe(`schedule:pulse:${new Date(r.tick).toISOString()}`);
  expect(new Set(all.map((r) => r.tick)).size).toBe(all.length);
}

describe('schedules across real serve processes', () => {
  it('one holder fires; SIGKILL moves the lease; no tick fires twice; a restart catches up by the policy', async () => {
    const s = makeSandbox({ env: { SWARM_SANDBOX: 'none' } });
    s.write('workflows/pulse/workflow.yaml', 'name: pulse\nversion: 1.0.0\ntrigger: {type: schedule, cron: "* * * * * *", overlap: allow_all, catchup: {policy: all, window: 1h, max_runs: 4}}\nsteps:\n  - id: a\n    agent: echo\n    inputs: {message: tick}\n');
    for (const args of [['agent', 'register', join(EXAMPLES.agents, 'echo')], ['workflow', 'register', 'workflows/pulse']]) {
      const r = await s.run(args);
      expect(r.code, show(r)).toBe(0);
    }

    // Two servers on the same file: one holds the lease and fires.
    const a = await serve(s);
    const b = await serve(s);
    const servers = new Map([a, b].map((x) => [x.holderId, x]));
    await until('three ticks fired', async () => (runs(s).length >= 3 ? true : undefined), 15_000);
    const first = servers.get((await until('a lease holder', async () => holder(s))) ?? '');
    expect(first).toBeDefined();
    const second = first === a ? b : a;

    // SIGKILL the holder between ticks: the other takes over once the lease expires.
    first!.child.kill('SIGKILL');
    const killedAt = Date.now();
    expect((await first!.done).signal).toBe('SIGKILL');
    await until('the other server to hold the lease', async () => (holder(s) === second.holderId ? true : undefined), 10_000);
    await until('three ticks after the takeover', async () => (runs(s).filter((r) => r.created > killedAt).length >= 3 ? true : undefined), 10_000);
    expect(second.output()).toMatch(new RegExp(`${second.holderId} holds the schedule lease`));
    const afterTakeover = runs(s);
    expectOneRunPerTick(afterTakeover);
    // The ticks missed while the lease was expiring were caught up (max_runs 4 covers the ~2 s gap): no
    // second without its run between the first tick and the last.
    const ticks = afterTakeover.map((r) => r.tick).sort((x, y) => x - y);
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!).toBe(1000);

    // Both down for a while: seven or more ticks are missed.
    second.child.kill('SIGKILL');
    await second.done;
    const lastBefore = Math.max(...runs(s).map((r) => r.tick));
    await new Promise((r) => setTimeout(r, 6000));

    const spawnedAt = Date.now();
    const c = await serve(s);
    await until('ticks after the restart', async () => (runs(s).filter((r) => r.created >= spawnedAt).length >= 6 ? true : undefined), 15_000);
    const all = runs(s);
    expectOneRunPerTick(all);
    // Catch-up: the restarted server's first pass fires the 4 most recent missed ticks (max_runs),
    // the older ones are dropped; then one run per tick again.
    const restarted = all.filter((r) => r.created >= spawnedAt).map((r) => r.tick).sort((x, y) => x - y);
    const caughtUp = restarted.slice(0, 4);
    for (let i = 1; i <= 4; i++) expect(restarted[i]! - restarted[i - 1]!).toBe(1000);
    // Over 6 s of downtime: at least two ticks between the last fired and the first caught up were dropped.
    expect(caughtUp[0]! - lastBefore).toBeGreaterThanOrEqual(3000);
    expect(all.some((r) => r.tick > lastBefore && r.tick < caughtUp[0]!)).toBe(false);
    expect(c.output()).toMatch(/missed ticks dropped by catchup policy all; firing 4/);

    // SIGTERM: the scheduler stops, the lease is released at once, exit 0.
    c.child.kill('SIGTERM');
    const stopped = await c.done;
    expect(stopped.code, c.output()).toBe(0);
    expect(holder(s)).toBeUndefined();
    expect(c.output()).toMatch(/released the schedule lease/);
  }, 60_000);
});
