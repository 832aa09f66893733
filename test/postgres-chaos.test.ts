/**
 * The chaos test of the PostgreSQL backend, with real processes: 4 worker processes killed with
 * SIGKILL at random while 80 runs progress, each replaced at once. Each step's agent records a side
 * effect (a row keyed by the step's idempotency key) in the runs' own database, so that repeated
 * work is visible. (The server's own faults, a restart under load, an outage and a connection ended
 * as it is set up: test/postgres-faults.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  allFinished,
  count,
  expectCompletedOnceAndVerified,
  project,
  runStatuses,
  startedByKey,
  startWorker,
  stopAll,
  submit,
  restartableServerOfFile,
  type WorkerProcess,
} from './helpers/pg-faults.js';
import { removeProject, runCli, until } from './helpers/project.js';

const server = restartableServerOfFile();

describe('PostgreSQL under faults', () => {
  it('chaos: 4 workers, 80 runs of 5 steps, workers killed with SIGKILL at random and restarted: every run completes, nothing completes twice, only killed work repeats', async () => {
    // 400 steps: the 8 kills land in the first quarter of them, with every worker busy.
    const RUNS = 80;
    const STEPS = 5;
    const KILLS = 8;
    const url = await server().createDatabase();
    const dir = project(STEPS);
    const env = { SWARM_DATABASE_URL: url, SWARM_LEASE_TTL_MS: '5000' };
    const workers: WorkerProcess[] = [];
    const all: WorkerProcess[] = [];
    const killedPids = new Set<number>();
    try {
      const runIds = await submit(dir, url, RUNS);
      for (let i = 0; i < 4; i++) workers.push(startWorker(dir, env));
      all.push(...workers);
      await until(async () => (await count(url, `SELECT count(*)::int AS n FROM events WHERE type = 'STEP_COMPLETED'`)) >= 40, 90_000, 'the first steps to complete');

      // Kill a random worker every 300-600 ms, each replaced at once by a new process.
      for (let k = 0; k < KILLS; k++) {
        await sleep(300 + Math.random() * 300);
        const i = Math.floor(Math.random() * workers.length);
        const victim = workers[i]!;
        killedPids.add(victim.child.pid!);
        victim.child.kill('SIGKILL');
        await victim.closed;
        expect(victim.child.signalCode).toBe('SIGKILL');
        workers[i] = startWorker(dir, env);
        all.push(workers[i]);
      }
      const progressAtLastKill = await runStatuses(url);

      // The node agent (no psql) costs about 0.1 s of CPU per step: allow it more time.
      await allFinished(url, RUNS, 30_000, 'after the kills', workers);
      await expectCompletedOnceAndVerified(dir, url, runIds, STEPS);

      // The workers that were killed, by id (a worker's id is recorded with its pid).
      const killed = new Set(
        ((await server().query(url, 'SELECT id, pid FROM workers')).rows as Array<{ id: string; pid: number }>).filter((w) => killedPids.has(w.pid)).map((w) => w.id),
      );
      expect(killed.size).toBeGreaterThan(0);

      const started = await startedByKey(url);
      const completedAttempt = new Map(
        ((await server().query(url, `SELECT run_id, step_id, data FROM events WHERE type = 'STEP_COMPLETED'`)).rows as Array<{ run_id: string; step_id: string; data: string }>).map((r) => [
          `${r.run_id}/${r.step_id}`,
          (JSON.parse(r.data) as { attempt: number }).attempt,
        ]),
      );
      expect(started.size).toBe(RUNS * STEPS);
      let reclaimed = 0;
      for (const [k, attempts] of started) {
        // Attempts 1, 2, … in order; every attempt before the last was lost with a killed worker and
        // taken over from it; the last one is the one that completed.
        expect(attempts.map((a) => a.attempt), k).toEqual(attempts.map((_, i) => i + 1));
        for (let i = 0; i < attempts.length - 1; i++) {
          expect(killed.has(attempts[i]!.worker), `${k}: attempt ${i + 1} was interrupted, so its worker was killed`).toBe(true);
          expect(attempts[i + 1]!.reclaimed_from, `${k}: attempt ${i + 2} took over from the killed worker`).toBe(attempts[i]!.worker);
        }
        expect(completedAttempt.get(k), `${k}: the last attempt completed`).toBe(attempts.length);
        if (attempts.length > 1) reclaimed++;
      }
      // The kills did hit steps in flight (each worker runs up to 4 at a time under this load).
      expect(reclaimed, `steps taken over from killed workers (runs at the last kill: ${JSON.stringify(progressAtLastKill)})`).toBeGreaterThan(0);

      // Side effects: one row per attempt that got as far as its side effect, keyed by its step's key.
      const effects = (await server().query(url, 'SELECT key, attempt FROM chaos.side_effects')).rows as Array<{ key: string; attempt: number }>;
      const rowsByKey = new Map<string, number[]>();
      for (const e of effects) rowsByKey.set(e.key, [...(rowsByKey.get(e.key) ?? []), e.attempt]);
      for (const [k, got] of rowsByKey) {
        const attempts = started.get(k);
        expect(attempts, `side effect ${k} belongs to a real step`).toBeDefined();
        // No attempt wrote its side effect twice, and each row is from an attempt that was started.
        expect(new Set(got).size, `${k}: one side effect per attempt`).toBe(got.length);
        for (const a of got) expect(a >= 1 && a <= (attempts?.length ?? 0), `${k}: attempt ${a} was started`).toBe(true);
        if (got.length > 1) {
          // Duplicated only for a step that was in flight at a kill: it has more than one attempt, and
          // every duplicate is from an attempt whose worker was killed.
          expect(attempts!.length, `${k}: duplicated side effect, so it was in flight at a kill`).toBeGreaterThan(1);
          for (const a of got) if (a !== attempts!.length) expect(killed.has(attempts![a - 1]!.worker), `${k}: attempt ${a}'s worker was killed`).toBe(true);
        }
      }
      // Every step's completed attempt did its side effect.
      for (const [k, a] of completedAttempt) expect(rowsByKey.get(k) ?? [], `${k}: the completed attempt's side effect`).toContain(a);

      // A sample through the CLI too: a run with a step taken over from a killed worker.
      const sample = [...started.values()].find((a) => a.length > 1)![0]!.run_id;
      const verified = await runCli(['runs', 'verify', sample], dir, { SWARM_DATABASE_URL: url });
      expect(verified.code, verified.stderr).toBe(0);

      // The survivors (and the replacements) stop cleanly on SIGTERM.
      expect(await stopAll(workers)).toEqual(workers.map(() => 0));
    } finally {
      for (const w of all) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await Promise.all(all.map((w) => w.closed));
      removeProject(dir);
      await server().dropDatabase(url);
    }
  }, 420_000);
});
