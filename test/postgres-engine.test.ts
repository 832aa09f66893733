/**
 * The whole engine on PostgreSQL: the library, the CLI and several worker processes, against a real
 * (embedded) PostgreSQL server. The store itself is covered by the contract suite.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { Swarm } from '../src/swarm.js';
import { SCHEMA_VERSION as PG_SCHEMA_VERSION } from '../src/store/postgres/migrations.js';
import { SCHEMA_VERSION as SQLITE_SCHEMA_VERSION } from '../src/store/sqlite/migrations.js';
import { ScriptedModel } from '../src/testing/scripted-model.js';
import { pgTestServer, stopPgTestServer, type PgTestServer } from './helpers/pg.js';
import { cliEnv, EXAMPLES, exited, registerPackages, removeProject, runCli, spawnCli, tempProject, until, writeAgent, writeWorkflow } from './helpers/project.js';

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

  it('store.schema and store.pool_size in swarm.yaml: the tables live in that schema and runs work there', async () => {
    // Empty: the tables must be made in team_a (a migrated test database has them in public).
    const url = await server.createDatabase({ empty: true });
    const dir = tempProject(`name: t\nstore: { type: postgres, url: "${url}", schema: team_a, pool_size: 3 }\n`);
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') } });
    const admin = new pg.Client({ connectionString: url });
    try {
      expect(swarm.store.location).toContain('(schema team_a)');
      await swarm.registerAgents(join(EXAMPLES, 'agents'));
      await swarm.registerWorkflows(join(EXAMPLES, 'workflows'));
      const id = await swarm.startRun('echo-chain', { message: 'in a schema' });
      await swarm.worker({ runIds: [id] }).start();
      expect((await swarm.getRun(id)).run.status).toBe('completed');
      await admin.connect();
      const tables = await admin.query<{ table_schema: string }>(`SELECT DISTINCT schemaname AS table_schema FROM pg_tables WHERE tablename = 'workflow_runs'`);
      expect(tables.rows.map((r) => r.table_schema)).toEqual(['team_a']);
      const runs = await admin.query<{ id: string; status: string }>(`SELECT id, status FROM team_a.workflow_runs`);
      expect(runs.rows).toEqual([{ id, status: 'completed' }]);
    } finally {
      await admin.end();
      await swarm.close();
      removeProject(dir);
      await server.dropDatabase(url);
    }
  });

  it("a worker whose clock is an hour ahead: leases, heartbeats and durations follow the database's clock", async () => {
    const url = await server.createDatabase();
    const dir = tempProject();
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_DATABASE_URL: url } });
    const skew = vi.spyOn(Date, 'now').mockImplementation(() => Math.round(performance.timeOrigin + performance.now()) + 3_600_000);
    try {
      writeAgent(dir, 'nap', 'name: nap\nversion: 1.0.0\nruntime: { type: builtin, entry: sleep }\ninputs: { type: object }\noutputs: { type: object }\n');
      writeWorkflow(dir, 'naps', 'name: naps\nversion: 1.0.0\nsteps:\n  - { id: a, agent: nap, inputs: { ms: 50 } }\n  - { id: b, agent: nap, depends_on: [a], inputs: { ms: 50 } }\n');
      await swarm.registerAgent(join(dir, 'agents', 'nap'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'naps'));
      const id = await swarm.startRun('naps', {});
      const dbNow = await swarm.store.now();
      expect(Math.abs(dbNow - (Date.now() - 3_600_000))).toBeLessThan(5_000);
      const w = swarm.worker({ runIds: [id] });
      await w.start();
      const { run, steps } = await swarm.getRun(id);
      expect(run.status).toBe('completed');
      for (const s of steps) {
        expect(s.duration_ms).toBeGreaterThanOrEqual(45);
        expect(s.duration_ms).toBeLessThan(5_000);
        expect(Math.abs(s.started_at! - dbNow)).toBeLessThan(60_000);
      }
      const workers = await swarm.store.listWorkers();
      expect(workers).toEqual([]); // stopped on the database's clock, not an hour in the future
    } finally {
      skew.mockRestore();
      await swarm.close();
      removeProject(dir);
      await server.dropDatabase(url);
    }
  });

  it('llm steps on PostgreSQL: the session journal, a tool approval that pauses the run, approve, and the tool run once', async () => {
    const url = await server.createDatabase();
    const dir = tempProject();
    let ran = 0;
    writeAgent(dir, 'cashier', 'name: cashier\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: m }\ntools:\n  - module: tools.mjs\n    needs_approval: true\n', {
      'tools.mjs': "export const pay = { name: 'pay', description: 'Pay', parameters: { type: 'object' }, execute: () => { globalThis.__paid = (globalThis.__paid ?? 0) + 1; return 'paid'; } };\n",
    });
    writeWorkflow(dir, 'till', 'name: till\nversion: 1.0.0\nsteps:\n  - { id: pay, agent: cashier, inputs: { message: "pay it" } }\n');
    const model = new ScriptedModel([{ toolCalls: [{ id: 'c1', name: 'pay', arguments: {} }], usage: { input_tokens: 7, output_tokens: 2 } }, { content: 'Paid.', usage: { input_tokens: 9, output_tokens: 1 } }]);
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_DATABASE_URL: url }, models: () => model });
    try {
      await swarm.registerAgent(join(dir, 'agents', 'cashier'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'till'));
      const id = await swarm.startRun('till', {});
      expect((await swarm.runToCompletion(id)).run.status).toBe('waiting');
      expect((await swarm.listApprovals({ runId: id })).map((a) => a.tool)).toEqual(['pay']);
      await swarm.approve(id);
      const { run, steps } = await swarm.runToCompletion(id);
      expect(run.status).toBe('completed');
      expect(steps[0]?.outputs).toMatchObject({ content: 'Paid.', agent: 'cashier', usage: { input_tokens: 16, output_tokens: 3 } });
      ran = (globalThis as { __paid?: number }).__paid ?? 0;
      expect(ran).toBe(1);
      const s = await swarm.getSession(`${id}/pay`);
      expect(s.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
      expect(s.toolCalls.map((t) => t.output)).toEqual(['paid']);
      expect((await swarm.verify(id)).ok).toBe(true);
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
        // Each backend has its own migrations (PostgreSQL's third is an index SQLite does not need).
        const version = 'SWARM_DATABASE_URL' in env ? PG_SCHEMA_VERSION : SQLITE_SCHEMA_VERSION;
        expect(migrate.stdout).toMatch(new RegExp(`store at .*: schema version ${version} \\(up to date\\)`));
        const status = JSON.parse((await runCli(['db', 'status', '--json'], dir, env)).stdout) as Record<string, unknown>;
        expect(status).toMatchObject({ backend: 'SWARM_DATABASE_URL' in env ? 'postgres' : 'sqlite', schema_version: version, supported_schema_version: version, runs: { completed: 1 }, workers: [] });
      }
    } finally {
      removeProject(dir);
      await server.dropDatabase(url);
    }
  });

  it('two worker processes race for the same expired leases: exactly one wins each step; the frozen owner\'s late results are refused', async () => {
    const url = await server.createDatabase();
    // The agent writes to a file of the test's: unsandboxed.
    const dir = tempProject('name: test\nsandbox: none\n');
    // 6 s, not 1 s: a racer starved for seconds on a busy machine (the whole suite runs in parallel on
    // two cores) must not lose its lease to the other racer (a third attempt); the owner, frozen,
    // loses its leases all the same.
    const env = { SWARM_DATABASE_URL: url, SWARM_LEASE_TTL_MS: '6000' };
    const go = join(dir, 'go');
    const effects = join(dir, 'effects.log');
    // Each attempt records itself, then waits for the go file, then reports which attempt it was.
    writeAgent(dir, 'hold', 'name: hold\nversion: 1.0.0\nruntime: { type: bash, entry: run.sh }\ninputs: { type: object }\noutputs: { type: object }\n', {
      'run.sh': `#!/usr/bin/env bash\necho "$SWARM_IDEMPOTENCY_KEY $SWARM_ATTEMPT" >> ${JSON.stringify(effects)}\nwhile [ ! -e ${JSON.stringify(go)} ]; do sleep 0.05; done\necho "{\\"attempt\\": $SWARM_ATTEMPT}" > "$2"\n`,
    });
    writeWorkflow(dir, 'one', 'name: one\nversion: 1.0.0\nsteps:\n  - { id: s, agent: hold }\n');
    const RUNS = 4;
    const stderr = (c: ReturnType<typeof spawnCli>): (() => string) => {
      let text = '';
      c.stderr?.on('data', (b: Buffer) => (text += b.toString()));
      return () => text;
    };
    const owner = spawnCli(['worker', '--concurrency', String(RUNS)], dir, env);
    const ownerLog = stderr(owner);
    const racers: Array<ReturnType<typeof spawnCli>> = [];
    try {
      expect(await registerPackages(dir, cliEnv(dir, env))).toEqual(['hold', 'one']);
      const ids: string[] = [];
      for (let i = 0; i < RUNS; i++) ids.push((await runCli(['run', 'one', '{}', '--detach'], dir, env)).stdout.trim());
      const running = async (): Promise<Array<{ run_id: string; attempt: number; lease_owner: string }>> =>
        (await server.query(url, `SELECT run_id, attempt, lease_owner FROM step_executions WHERE status = 'running'`)).rows as Array<{ run_id: string; attempt: number; lease_owner: string }>;
      await until(async () => (await running()).length === RUNS, 20_000, 'the owner to hold every step');
      const ownerId = (await running())[0]!.lease_owner;
      // Freeze the owner: its process is alive (so not reaped as dead) but it stops renewing.
      owner.kill('SIGSTOP');
      racers.push(spawnCli(['worker', '--concurrency', String(RUNS)], dir, env), spawnCli(['worker', '--concurrency', String(RUNS)], dir, env));
      await until(async () => (await running()).length === RUNS && (await running()).every((r) => r.attempt === 2), 45_000, 'the racers to take over every expired lease');
      const winners = await running();
      expect(winners.every((r) => r.lease_owner !== ownerId)).toBe(true);
      writeFileSync(go, '');
      await until(async () => (await server.query(url, `SELECT count(*)::int AS n FROM workflow_runs WHERE status = 'completed'`)).rows[0]?.n === RUNS, 20_000, 'every run to complete');
      // Thaw the owner: its attempt-1 results arrive late and must be refused.
      owner.kill('SIGCONT');
      await until(() => (ownerLog().match(/attempt 1: result refused/g) ?? []).length === RUNS, 20_000, "the owner's late results to be refused");

      const started = (await server.query(url, `SELECT run_id, data FROM events WHERE type = 'STEP_STARTED' ORDER BY run_id, seq`)).rows as Array<{ run_id: string; data: string }>;
      const completed = (await server.query(url, `SELECT run_id, data FROM events WHERE type = 'STEP_COMPLETED'`)).rows as Array<{ run_id: string; data: string }>;
      for (const id of ids) {
        // Attempt 1 by the owner, attempt 2 by exactly one racer; no third claim.
        const s = started.filter((e) => e.run_id === id).map((e) => JSON.parse(e.data) as { attempt: number; worker: string; reclaimed_from?: string });
        expect(s.map((e) => [e.attempt, e.reclaimed_from ?? null])).toEqual([[1, null], [2, ownerId]]);
        const c = completed.filter((e) => e.run_id === id).map((e) => (JSON.parse(e.data) as { attempt: number }).attempt);
        expect(c).toEqual([2]);
        const step = (await server.query(url, `SELECT outputs AS outputs_json, attempt FROM step_executions WHERE run_id = $1`, [id])).rows[0] as { outputs_json: string; attempt: number };
        expect([JSON.parse(step.outputs_json), step.attempt]).toEqual([{ attempt: 2 }, 2]);
        expect((await runCli(['runs', 'verify', id], dir, env)).code).toBe(0);
      }
      // Both attempts of each step ran once each, under the same idempotency key.
      const lines = readFileSync(effects, 'utf8').trim().split('\n').sort();
      expect(lines).toHaveLength(RUNS * 2);
      expect(new Set(lines).size).toBe(RUNS * 2);
      expect(new Set(lines.map((l) => l.split(' ')[0])).size).toBe(RUNS);
    } finally {
      owner.kill('SIGCONT');
      for (const w of [owner, ...racers]) w.kill('SIGTERM');
      await Promise.all([owner, ...racers].map(exited));
      removeProject(dir);
      await server.dropDatabase(url);
    }
  });

  it('worker processes share the database; one killed with SIGKILL mid-step loses nothing and repeats nothing completed', async () => {
    const url = await server.createDatabase();
    // The agent writes to a file of the test's: unsandboxed.
    const dir = tempProject('name: test\nsandbox: none\n');
    const env = { SWARM_DATABASE_URL: url };
    writeAgent(dir, 'mark', 'name: mark\nversion: 1.0.0\nruntime: { type: bash, entry: run.sh }\ninputs:\n  - { name: log, type: string, required: true }\n', {
      'run.sh': '#!/usr/bin/env bash\necho "start $SWARM_IDEMPOTENCY_KEY" >> "$(python3 -c \'import json,sys; print(json.load(open(sys.argv[1]))["log"])\' "$1")"\nsleep 0.3\necho \'{}\' > "$2"\n',
    });
    const steps = ['a', 'b', 'c'].map((s, i) => `  - id: ${s}\n    agent: mark@1.0.0\n    inputs: { log: "\${trigger.log}" }${i ? `\n    depends_on: [${'abc'[i - 1]}]` : ''}`).join('\n');
    writeWorkflow(dir, 'three', `name: three\nversion: 1.0.0\nsteps:\n${steps}\n`);
    const workers = [spawnCli(['worker', '--concurrency', '4'], dir, env), spawnCli(['worker', '--concurrency', '4'], dir, env)];
    try {
      expect(await registerPackages(dir, cliEnv(dir, env))).toEqual(['mark', 'three']);
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
