/**
 * `swarm runs fork` and `POST /api/v1/runs/{id}/fork` as real processes on a real SQLite file, for
 * what a fork refuses and what it tells: a parent whose stored output was rewritten in the database
 * is refused like `runs export` refuses it (exit 3 / VERIFICATION_FAILED naming the run and the
 * mismatch, nothing written); an unfinished parent names a command that exists; a fork without
 * --wait says it is queued and what runs it; the API's problems name the body's fields, not the
 * CLI's flags.
 *
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import Database from 'better-sqlite3';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLES, exited, removeProject, runCli, spawnCli, tempProject, until, type CliResult } from './helpers/project.js';

type Json = Record<string, unknown>;

let dir: string;
/** As a user types it (not through `npx`, whose advice says `npx swarm`). */
const ENV = { npm_command: '' };
const cli = (args: string[]): Promise<CliResult> => runCli(args, dir, ENV);
const db = (): Database.Database => new Database(join(dir, '.swarm', 'swarm.db'));
/** Runs and events in the store: what a refused fork must leave as it was. */
const counts = (): { runs: number; events: number } => {
  const d = db();
  try {
    return { runs: (d.prepare('SELECT count(*) AS n FROM workflow_runs').get() as { n: number }).n, events: (d.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n };
  } finally {
    d.close();
  }
};
const shortId = (id: string): string => id.replace(/-/g, '').slice(-12);

/** A finished run of examples/branching's pipeline (draft → review → publish, echo agents). */
async function pipelineRun(topic: string): Promise<string> {
  const r = await cli(['run', 'pipeline', JSON.stringify({ topic }), '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { run_id: string }).run_id;
}

beforeAll(async () => {
  dir = tempProject('name: fork-refusals\nsandbox: none\n');
  for (const args of [['agent', 'register', join(EXAMPLES, 'agents', 'echo')], ['workflow', 'register', join(EXAMPLES, 'branching', 'workflows', 'pipeline')]]) {
    const r = await cli(args);
    expect(r.code, r.stderr).toBe(0);
  }
}, 60_000);
afterAll(() => {
  if (dir) removeProject(dir);
});

describe('swarm runs fork: refusals and what it says', () => {
  it('a parent whose stored output was rewritten is refused with exit 3 naming the run and the step, and nothing is written', async () => {
    const parent = await pipelineRun('x');
    const d = db();
    d.prepare(`UPDATE step_executions SET outputs = '{"echoed":"forged"}' WHERE run_id = ? AND step_id = 'draft'`).run(parent);
    d.close();
    const before = counts();

    const forked = await cli(['runs', 'fork', parent, '--at', 'publish', '--wait']);
    expect(forked.code, forked.stderr).toBe(3);
    expect(forked.stderr).toContain(`run ${parent}: the store's event chain does not verify`);
    expect(forked.stderr).toContain("outputs of step 'draft' do not match the digest in its STEP_COMPLETED event");
    expect(forked.stderr).toContain('not forked');
    expect(forked.stdout).not.toContain('forged');
    // Not a run, not an event: the store is as it was.
    expect(counts()).toEqual(before);
    // The same refusal as export's, from the same check.
    const exported = await cli(['runs', 'export', parent, '-o', 'tampered.tar']);
    expect(exported.code).toBe(3);
    expect(exported.stderr).toContain("outputs of step 'draft' do not match the digest in its STEP_COMPLETED event");
  }, 120_000);

  it('an unfinished parent is refused naming commands that exist, and the one it names runs the parent', async () => {
    const queued = await cli(['run', 'pipeline', JSON.stringify({ topic: 'later' }), '--detach']);
    expect(queued.code, queued.stderr).toBe(0);
    const queuedId = queued.stdout.trim();
    const refused = await cli(['runs', 'fork', queuedId, '--at', 'publish']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`run ${queuedId} is queued: only a finished run`);
    expect(refused.stderr).not.toContain('runs wait');
    expect(refused.stderr).toContain(`'swarm runs resume ${queuedId}'`);
    expect(refused.stderr).toContain(`'swarm runs cancel ${queuedId}'`);
    // The command it names runs the parent to its end; then the fork is accepted.
    const resumed = await cli(['runs', 'resume', queuedId]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect((await cli(['runs', 'fork', queuedId, '--at', 'publish', '--wait'])).code).toBe(0);
  }, 120_000);

  it('without --wait the fork says it is queued and how to run it (no worker running), and that runs it', async () => {
    const parent = await pipelineRun('y');
    const before = counts();
    const forked = await cli(['runs', 'fork', parent, '--at', 'publish']);
    expect(forked.code, forked.stderr).toBe(0);
    const forkId = forked.stdout.trim();
    expect(forkId).toMatch(/^[0-9a-f-]{36}$/);
    expect(forked.stderr).toContain(`forked run ${shortId(parent)} at 'publish': copied draft, review; runs again publish`);
    expect(forked.stderr).toContain(`run ${shortId(forkId)} is queued and no worker is running: run it here with 'swarm runs resume ${shortId(forkId)}', or start 'swarm worker' (or fork with --wait to run it at once)`);
    expect(counts().runs).toBe(before.runs + 1);
    // What it says to do runs it.
    const ran = await cli(['runs', 'resume', shortId(forkId), '--json']);
    expect(ran.code, ran.stderr).toBe(0);
    expect((JSON.parse(ran.stdout) as { status: string }).status).toBe('completed');
  }, 120_000);
});

describe('POST /api/v1/runs/{id}/fork (swarm serve, a real process)', () => {
  let server: ChildProcess | undefined;
  let url: string;
  let good: string;
  let bad: string;
  const fork = async (id: string, body: Json): Promise<{ status: number; json: Json }> => {
    const res = await fetch(`${url}/api/v1/runs/${id}/fork`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as Json };
  };

  beforeAll(async () => {
    good = await pipelineRun('good');
    bad = await pipelineRun('bad');
    const d = db();
    d.prepare(`UPDATE step_executions SET outputs = '{"echoed":"forged"}' WHERE run_id = ? AND step_id = 'draft'`).run(bad);
    d.close();
    server = spawnCli(['serve', '--port', '0'], dir, ENV);
    let out = '';
    server.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    server.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    url = await until(() => /listening on (http:\/\/\S+)/.exec(out)?.[1], 30_000, 'swarm serve to listen');
  }, 90_000);
  afterAll(async () => {
    if (!server) return;
    server.kill('SIGTERM');
    await exited(server);
  });

  it('refuses a tampered parent with 500 VERIFICATION_FAILED naming the run and the step; nothing is written', async () => {
    const before = counts();
    const tampered = await fork(bad, { at: 'publish' });
    expect(tampered.status).toBe(500);
    expect(tampered.json).toMatchObject({ code: 'VERIFICATION_FAILED', run_id: bad });
    expect(tampered.json.detail).toContain(`run ${bad}: the store's event chain does not verify`);
    expect(tampered.json.detail).toContain("outputs of step 'draft' do not match the digest in its STEP_COMPLETED event");
    expect(counts()).toEqual(before);
  }, 60_000);

  it("names the request body's fields in its problems; the CLI keeps its flags", async () => {
    const before = counts();
    const notCopied = await fork(good, { at: 'review', replace_outputs: { publish: { echoed: 'x' } } });
    expect([notCopied.status, notCopied.json.code]).toEqual([400, 'REPLACE_OUTPUT_NOT_COPIED']);
    expect(notCopied.json.detail).toMatch(/^replace_outputs\.publish: step 'publish' is not copied by this fork/);
    const invalid = await fork(good, { at: 'review', replace_outputs: { draft: { echoed: 'x', extra: 1 } } });
    expect([invalid.status, invalid.json.code]).toEqual([422, 'OUTPUT_INVALID']);
    expect(invalid.json.detail).toMatch(/^replace_outputs\.draft: the output does not match agent echo@1\.0\.0's outputs/);
    const turn = await fork(good, { at: 'review', turn: 2 });
    expect([turn.status, turn.json.code]).toEqual([400, 'TURN_NOT_LLM']);
    expect(turn.json.detail).toMatch(/^turn applies to an LLM step only/);
    for (const p of [notCopied, invalid, turn]) expect(String(p.json.detail)).not.toMatch(/--replace-output|--turn|--input/);
    expect(counts()).toEqual(before);

    const cliTurn = await cli(['runs', 'fork', good, '--at', 'review', '--turn', '2']);
    expect(cliTurn.code).toBe(2);
    expect(cliTurn.stderr).toContain('--turn applies to an LLM step only');
    const cliInvalid = await cli(['runs', 'fork', good, '--at', 'review', '--replace-output', 'draft={"echoed":"x","extra":1}']);
    expect(cliInvalid.code).toBe(2);
    expect(cliInvalid.stderr).toContain("--replace-output draft: the output does not match agent echo@1.0.0's outputs");
  }, 60_000);

  it('with a worker running, a fork without --wait says that worker runs it, and it does', async () => {
    const withWorker = await cli(['runs', 'fork', good, '--at', 'publish']);
    expect(withWorker.code, withWorker.stderr).toBe(0);
    const forkId = withWorker.stdout.trim();
    expect(withWorker.stderr).toContain(`run ${shortId(forkId)} is queued for the running worker ('swarm runs show ${shortId(forkId)}' shows how far it got)`);
    await until(async () => ((await (await fetch(`${url}/api/v1/runs/${forkId}`)).json()) as Json).status === 'completed', 30_000, 'the worker to run the fork');
  }, 60_000);
});
