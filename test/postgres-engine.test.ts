/**
 * The whole engine on PostgreSQL: the library, the CLI and several worker processes, against a real
 * (embedded) PostgreSQL server. The store itself is covered by the contract suite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Swarm } from '../src/swarm.js';
import { pgTestServer, stopPgTestServer, type PgTestServer } from './helpers/pg.js';
import { EXAMPLES, exited, removeProject, runCli, spawnCli, tempProject, until, writeAgent, writeWorkflow } from './helpers/project.js';

let server: PgTestServer;
beforeAll(async () => {
  server = await pgTestServer();
});
afterAll(async () => {
  await stopPgTestServer();
});

describe('the engine on PostgreSQL', () => {
  it('runs workflows with built-in and process agents through the library, and their chains verify', async () => {
    const url = await server.createDatabase();
    const dir = tempProject();
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_DATABASE_URL: url } });
    try {
      expect(swarm.store.kind).toBe('postgres');
      await swarm.registerAgents(join(EXAMPLES, 'agents'));
      await swarm.registerWorkflows(join(EXAMPLES, 'workflows'));
      const a = await swarm.startRun('echo-chain', { message: 'Hello Postgres!' });
      const b = await swarm.startRun('fan-out', { text: 'one two three four five six seven' });
      const w = swarm.worker({ runIds: [a, b] });
      await w.start();
      const ra = await swarm.getRun(a);
      const rb = await swarm.getRun(b);
      expect(ra.run.status).toBe('completed');
      expect(ra.steps.at(-1)?.outputs).toEqual({ echoed: 'Step 2 received: Hello Postgres!' });
      expect(rb.run.status).toBe('completed');
      expect(rb.steps.find((s) => s.step_id === 'join')?.outputs).toEqual({
        echoed: { words: 7, shouted: 'ONE TWO THREE FOUR FIVE SIX SEVEN!', longest: 'three' },
      });
      for (const id of [a, b]) expect((await swarm.verify(id)).ok).toBe(true);
    } finally {
      await swarm.close();
      removeProject(dir);
      await server.dropDatabase(url);
    }
  });

  it('the CLI works the same with SWARM_DATABASE_URL: demo, runs list, verify', async () => {
    const url = await server.createDatabase();
    const dir = tempProject();
    try {
      const demo = await runCli(['demo'], dir, { SWARM_DATABASE_URL: url });
      expect(demo.code).toBe(0);
      expect(JSON.parse(demo.stdout)).toEqual({ step2: { echoed: 'Step 2 received: Hello Swarm!' } });
      expect(demo.stderr).toContain('into postgres://');
      expect(demo.stderr).not.toContain(new URL(url).password || '\u0000');
      const runs = JSON.parse((await runCli(['runs', 'list', '--json'], dir, { SWARM_DATABASE_URL: url })).stdout) as Array<{ id: string; status: string }>;
      expect(runs.map((r) => r.status)).toEqual(['completed']);
      expect((await runCli(['runs', 'verify', runs[0]?.id ?? ''], dir, { SWARM_DATABASE_URL: url })).code).toBe(0);
      // swarm db: the same report on both backends.
      const envs: Array<Record<string, string>> = [{ SWARM_DATABASE_URL: url }, {}];
      for (const env of envs) {
        if (!('SWARM_DATABASE_URL' in env)) expect((await runCli(['demo'], dir, env)).code).toBe(0);
        const migrate = await runCli(['db', 'migrate'], dir, env);
        expect(migrate.code).toBe(0);
        expect(migrate.stdout).toMatch(/store at .*: schema version 1 \(up to date\)/);
        const status = JSON.parse((await runCli(['db', 'status', '--json'], dir, env)).stdout) as Record<string, unknown>;
        expect(status).toMatchObject({ backend: 'SWARM_DATABASE_URL' in env ? 'postgres' : 'sqlite', schema_version: 1, supported_schema_version: 1, runs: { completed: 1 }, workers: [] });
      }
    } finally {
      removeProject(dir);
      await server.dropDatabase(url);
    }
  });

  it('worker processes share the database; one killed with SIGKILL mid-step loses nothing and repeats nothing completed', async () => {
    const url = await server.createDatabase();
    const dir = tempProject();
    const env = { SWARM_DATABASE_URL: url };
    writeAgent(dir, 'mark', 'name: mark\nversion: 1.0.0\nruntime: { type: bash, entry: run.sh }\ninputs:\n  - { name: log, type: string, required: true }\n', {
      'run.sh': '#!/usr/bin/env bash\necho "start $SWARM_IDEMPOTENCY_KEY" >> "$(python3 -c \'import json,sys; print(json.load(open(sys.argv[1]))["log"])\' "$1")"\nsleep 0.3\necho \'{}\' > "$2"\n',
    });
    const steps = ['a', 'b', 'c'].map((s, i) => `  - id: ${s}\n    agent: mark@1.0.0\n    inputs: { log: "\${trigger.log}" }${i ? `\n    depends_on: [${'abc'[i - 1]}]` : ''}`).join('\n');
    writeWorkflow(dir, 'three', `name: three\nversion: 1.0.0\nsteps:\n${steps}\n`);
    const workers = [spawnCli(['worker', '--concurrency', '4'], dir, env), spawnCli(['worker', '--concurrency', '4'], dir, env)];
    try {
      expect((await runCli(['agent', 'register', '--all'], dir, env)).code).toBe(0);
      expect((await runCli(['workflow', 'register', '--all'], dir, env)).code).toBe(0);
      const log = join(dir, 'effects.log');
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push((await runCli(['run', 'three', JSON.stringify({ log }), '--detach'], dir, env)).stdout.trim());
      // Kill one worker while steps are running, then start a replacement.
      await until(async () => (await server.query(url, `SELECT count(*)::int AS n FROM step_executions WHERE status = 'running'`)).rows[0]?.n > 0, 20_000, 'a running step');
      workers[0]?.kill('SIGKILL');
      await exited(workers[0]!);
      workers[0] = spawnCli(['worker', '--concurrency', '4'], dir, env);
      await until(
        async () => (await server.query(url, `SELECT count(*)::int AS n FROM workflow_runs WHERE status = 'completed'`)).rows[0]?.n === ids.length,
        60_000,
        'every run to complete',
      );
      const completed = await server.query(url, `SELECT run_id, step_id, count(*)::int AS n FROM events WHERE type = 'STEP_COMPLETED' GROUP BY run_id, step_id`);
      expect(completed.rows).toHaveLength(ids.length * 3);
      for (const row of completed.rows as Array<{ n: number }>) expect(row.n).toBe(1);
      for (const id of ids) expect((await runCli(['runs', 'verify', id], dir, env)).code).toBe(0);
    } finally {
      for (const w of workers) w.kill('SIGTERM');
      await Promise.all(workers.map(exited));
      removeProject(dir);
      await server.dropDatabase(url);
    }
  });
});
