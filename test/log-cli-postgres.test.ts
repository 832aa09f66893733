/**
 * `swarm log replay | verify | head` through the real CLI on PostgreSQL: a map run replays equal to
 * its rows; a checkpoint changed behind the store's back makes replay and verify exit 3 naming the
 * run and the step. Build first: `node scripts/build.mjs`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Swarm } from '../src/swarm.js';
import { cleanupSandboxes, EXAMPLES, makeSandbox, show } from './helpers/cli.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';

afterAll(async () => {
  cleanupSandboxes();
  await stopPgTestServer();
});

describe('swarm log on PostgreSQL', () => {
  it('replay and verify of a run; a changed step row exits 3 naming the run and the difference', async () => {
    const server = await pgTestServer();
    const url = await server.createDatabase();
    const s = makeSandbox({ env: { SWARM_DATABASE_URL: url } });
    try {
      // The run is made through the library, in this process, on the store the CLI then reads.
      const swarm = await Swarm.open({ cwd: s.root, env: s.env });
      let id: string;
      try {
        await swarm.registerAgents(EXAMPLES.agents);
        await swarm.registerWorkflows(EXAMPLES.workflows);
        id = await swarm.startRun('map-resize', { images: ['a.png', 'b.png', 'c.png'] });
        expect((await swarm.runToCompletion(id)).run.status).toBe('completed');
      } finally {
        await swarm.close();
      }
      const replay = await s.run(['log', 'replay', id]);
      expect(replay.code, show(replay)).toBe(0);
      expect((await s.run(['log', 'verify'])).code).toBe(0);
      const head = await s.json<{ runs: number; latest: unknown[] }>(['log', 'head', '--json']);
      expect(head).toMatchObject({ runs: 1, latest: [{ run_id: id, type: 'RUN_COMPLETED' }] });

      await server.query(url, `UPDATE step_executions SET outputs = '{"echoed": "forged"}' WHERE run_id = $1 AND step_id = 'resize[1]'`, [id]);
      const after = await s.run(['log', 'replay', id]);
      expect(after.code, show(after)).toBe(3);
      expect(after.stderr).toContain(`run ${id}`);
      expect(after.stderr).toContain("step 'resize[1]' outputs digest: the log says");
      const verify = await s.run(['log', 'verify']);
      expect(verify.code, show(verify)).toBe(3);
      expect(verify.stderr).toContain(`✖ run ${id} (map-resize)`);
    } finally {
      await server.dropDatabase(url);
    }
  }, 60_000);
});
