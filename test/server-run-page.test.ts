/**
 * What a run's page reads besides the run itself, on SQLite and PostgreSQL in process
 * (`app.request()`): `GET /api/v1/runs/{id}/verify` (the report of `swarm verify`, and a tampered
 * chain reported as failed) and the resolved inputs of each step in `GET /api/v1/runs/{id}/steps`.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/server/app.js';
import { Swarm } from '../src/swarm.js';
import { expectProblem, request, type Json } from './helpers/http.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { EXAMPLES, removeProject, tempProject } from './helpers/project.js';

afterAll(async () => {
  await stopPgTestServer();
});

/** Each store, and how to move one event's time behind the store's back (the chain covers it). */
const backends: Array<[string, () => Promise<{ env: Record<string, string>; tamper: (dir: string, runId: string) => Promise<void> }>]> = [
  [
    'sqlite',
    async () => ({
      env: {},
      tamper: async (dir, runId) => {
        const db = new Database(join(dir, '.swarm', 'swarm.db'));
        try {
          expect(db.prepare('UPDATE events SET at = at + 1 WHERE run_id = ? AND seq = 2').run(runId).changes).toBe(1);
        } finally {
          db.close();
        }
      },
    }),
  ],
  [
    'postgres',
    async () => {
      const server = await pgTestServer();
      const url = await server.createDatabase();
      return {
        env: { SWARM_DATABASE_URL: url },
        tamper: async (_dir, runId) => {
          expect((await server.query(url, 'UPDATE events SET at = at + 1 WHERE run_id = $1 AND seq = 2', [runId])).rowCount).toBe(1);
        },
      };
    },
  ],
];

describe.each(backends)('a run page’s reads on %s', (_name, setup) => {
  it('verify reports a whole chain as ok and a tampered one as failed at its seq; steps carry the inputs they ran with', async () => {
    const dir = tempProject();
    const { env, tamper } = await setup();
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), ...env } });
    const worker = swarm.worker({ concurrency: 2 });
    try {
      await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
      await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'echo-chain'));
      const app = createApp(swarm, { version: '9.9.9' });
      const runId = await swarm.startRun('echo-chain', { message: 'hi' });
      expect((await swarm.wait(runId)).run.status).toBe('completed');

      const steps = (await request(app, 'GET', `/api/v1/runs/${runId}/steps`)).json.steps as Json[];
      // The inputs as the engine recorded them: step2's come from step1's output, resolved.
      expect(steps.map((s) => [s.id, s.inputs])).toEqual([
        ['step1', { message: 'hi' }],
        ['step2', { message: 'Step 2 received: hi' }],
      ]);

      const ok = await request(app, 'GET', `/api/v1/runs/${runId.slice(-12)}/verify`);
      expect(ok.status, ok.text).toBe(200);
      expect(ok.json).toEqual({ run_id: runId, ok: true, events: expect.any(Number) as unknown, problems: [] });
      expect(ok.json.events as number).toBeGreaterThan(3);

      await tamper(dir, runId);
      const bad = await request(app, 'GET', `/api/v1/runs/${runId}/verify`);
      expect(bad.status).toBe(200);
      expect(bad.json.ok).toBe(false);
      expect((bad.json.problems as Array<{ seq: number | null }>)[0]?.seq).toBe(2);

      expectProblem(await request(app, 'GET', '/api/v1/runs/0000-nope/verify'), 404, 'RUN_NOT_FOUND');
    } finally {
      await worker.stop(1000);
      await swarm.close();
      removeProject(dir);
    }
  });
});
