/**
 * `log replay`: real runs of many shapes (fan-out with a skipped step, map, sub-workflow, retries and
 * a fork that copies the retried step, a failed run retried, on_error: continue, waits taken by a
 * signal and an event, an approval, a cancelled waiting run) replay to exactly the stored run and
 * step rows, on a SQLite file and on PostgreSQL.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeDifference } from '../src/log/compare.js';
import { replayStoredRun } from '../src/log/log-service.js';
import { Swarm } from '../src/swarm.js';
import { runScenarios } from './helpers/log-scenarios.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { openProject, removeProject, tempProject } from './helpers/project.js';

afterAll(async () => {
  await stopPgTestServer();
});

async function expectReplaysEqual(swarm: Swarm, runs: Record<string, string>): Promise<void> {
  const statuses: Record<string, string> = {};
  for (const [name, id] of Object.entries(runs)) {
    statuses[name] = (await swarm.getRun(id)).run.status;
    const report = await replayStoredRun(swarm, id);
    expect({ name, differences: report.differences.map(describeDifference), notes: report.notes }).toEqual({ name, differences: [], notes: [] });
    expect(report.events).toBeGreaterThan(1);
  }
  // The scenarios reached the states they are about.
  expect(statuses).toMatchObject({ fanOutLong: 'completed', fanOutSkipped: 'completed', map: 'completed', child: 'completed', retries: 'completed', forked: 'completed', fails: 'completed', goesOn: 'completed', waits: 'completed', asks: 'completed', parked: 'cancelled' });
}

describe('log replay', () => {
  it('every kind of run replays to its stored state on SQLite', async () => {
    const dir = tempProject();
    const swarm = await openProject(dir, { overrides: { pollMs: 50 } });
    try {
      const runs = await runScenarios(swarm, dir);
      await expectReplaysEqual(swarm, runs);
      // The skipped step, the map's elements and the retried step are in the replay too.
      const skipped = await swarm.getRun(runs.fanOutSkipped as string);
      expect(skipped.steps.find((s) => s.step_id === 'long-text')?.status).toBe('skipped');
      expect((await swarm.getRun(runs.map as string)).steps.filter((s) => s.map_index !== undefined)).toHaveLength(6);
      // The fork copied the retried step with its retry count, which its STEP_COPIED does not record.
      expect((await swarm.getRun(runs.forked as string)).steps.find((s) => s.step_id === 'a')).toMatchObject({ status: 'completed', retry_count: 2 });
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  }, 60_000);

  it('every kind of run replays to its stored state on PostgreSQL', async () => {
    const server = await pgTestServer();
    const url = await server.createDatabase();
    const dir = tempProject();
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_DATABASE_URL: url }, overrides: { pollMs: 50 } });
    try {
      expect(swarm.store.kind).toBe('postgres');
      await expectReplaysEqual(swarm, await runScenarios(swarm, dir));
    } finally {
      await swarm.close();
      removeProject(dir);
      await server.dropDatabase(url);
    }
  }, 60_000);
});
