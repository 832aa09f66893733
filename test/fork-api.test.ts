/**
 * The fork API on SQLite and PostgreSQL: `POST /api/v1/runs/{id}/fork` creates the fork (201, what it
 * copies and runs again, the run document with its fork point), `GET /api/v1/runs/{id}/lineage` gives
 * the tree; refusals are problem+json with the CLI's codes (409 RUN_NOT_FINISHED, 400 UNKNOWN_STEP and
 * REPLACE_OUTPUT_NOT_COPIED, 422 OUTPUT_INVALID, 404 RUN_NOT_FOUND).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/server/app.js';
import type { Swarm } from '../src/swarm.js';
import { expectProblem, request, type Json } from './helpers/http.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { builtinAgent, openProject, removeProject, tempProject, writeWorkflow } from './helpers/project.js';

afterAll(async () => {
  await stopPgTestServer();
});

const BACKENDS = [
  { name: 'SQLite', env: async (): Promise<Record<string, string>> => ({}) },
  { name: 'PostgreSQL', env: async (): Promise<Record<string, string>> => ({ SWARM_DATABASE_URL: await (await pgTestServer()).createDatabase() }) },
];

const FLOW = 'name: flow\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: num\n  - id: b\n    agent: num\n    depends_on: [a]\n  - id: c\n    agent: num\n    depends_on: [b]\n';

describe.each(BACKENDS)('fork API on $name', ({ env }) => {
  it('POST fork, GET lineage, and the refusals as problem+json', async () => {
    const dir = tempProject('name: fork-api\nsandbox: none\n');
    const swarm: Swarm = await openProject(dir, { env: { SWARM_HOME: `${dir}/.swarm`, ...(await env()) } });
    try {
      const ran: string[] = [];
      swarm.defineBuiltin('num', async (_inputs, ctx) => {
        ran.push(ctx.stepId);
        return { n: ran.length };
      });
      await swarm.registerAgent(builtinAgent(dir, 'num', 'num', 'outputs:\n  - {name: n, type: integer}\n'));
      await swarm.registerWorkflow(writeWorkflow(dir, 'flow', FLOW));
      const app = createApp(swarm, { version: 'test' });
      const call = (method: string, path: string, body?: unknown) => request(app, method, path, body);

      const queued = await swarm.startRun('flow', {});
      expectProblem(await call('POST', `/api/v1/runs/${queued}/fork`, { at: 'b' }), 409, 'RUN_NOT_FINISHED');
      await swarm.runToCompletion(queued);
      ran.length = 0;

      const unknown = expectProblem(await call('POST', `/api/v1/runs/${queued}/fork`, { at: 'zz' }), 400, 'UNKNOWN_STEP');
      expect(unknown.steps).toEqual(['a', 'b', 'c']);
      expectProblem(await call('POST', `/api/v1/runs/${queued}/fork`, { at: 'b', replace_outputs: { c: { n: 1 } } }), 400, 'REPLACE_OUTPUT_NOT_COPIED');
      expectProblem(await call('POST', `/api/v1/runs/${queued}/fork`, { at: 'b', replace_outputs: { a: { n: 'one' } } }), 422, 'OUTPUT_INVALID');
      expectProblem(await call('POST', '/api/v1/runs/no-such-run-at-all/fork', { at: 'b' }), 404, 'RUN_NOT_FOUND');

      const created = await call('POST', `/api/v1/runs/${queued}/fork`, { at: 'b', replace_outputs: { a: { n: 40 } } });
      expect(created.status).toBe(201);
      const f = created.json as Json & { run_id: string; run: Json };
      expect(f).toMatchObject({ parent_run_id: queued, at: 'b', copied: ['a'], rerun: ['b', 'c'], replaced: ['a'], turn: null });
      expect(f.run).toMatchObject({ run_id: f.run_id, status: 'queued', parent_run_id: queued, fork_step_id: 'b' });
      const done = await swarm.runToCompletion(f.run_id);
      expect(done.run.status).toBe('completed');
      expect(ran).toEqual(['b', 'c']);
      expect(done.steps.find((s) => s.step_id === 'a')?.outputs).toEqual({ n: 40 });

      const lineage = await call('GET', `/api/v1/runs/${f.run_id}/lineage`);
      expect(lineage.status).toBe(200);
      expect((lineage.json.nodes as Json[]).map((n) => [n.run_id, n.parent_run_id, n.fork_step_id, n.depth])).toEqual([
        [queued, null, null, 0],
        [f.run_id, queued, 'b', 1],
      ]);
      expectProblem(await call('GET', '/api/v1/runs/no-such-run-at-all/lineage'), 404, 'RUN_NOT_FOUND');
      expect((await call('GET', `/api/v1/runs/${f.run_id}`)).json).toMatchObject({ fork_step_id: 'b', parent_run_id: queued });
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });
});
