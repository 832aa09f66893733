/**
 * `swarm log replay` of imported runs, through the real CLI on real SQLite files: runs made in one
 * project (examples/branching's pipeline, a step skipped by its condition, a step that completed
 * after a retry, a failed run, a run cancelled before it started, a fork) are exported with
 * `swarm runs export`, imported into a second project with `swarm runs import`, and replay there to
 * exactly the rows the import wrote (exit 0), as they replay where they ran: the import's log says
 * the run's times (its terminal event carries the bundle's `started_at` and `completed_at`) and how
 * each step the bundle did not complete ended (STEP_SKIPPED, STEP_FAILED, STEP_CANCELLED with the
 * bundle's attempt). A row of an imported run changed behind the store's back still exits 3 naming
 * the run and what differs. Build first: the CLI runs from dist/.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Swarm } from '../src/swarm.js';
import { cleanupSandboxes, EXAMPLES, makeSandbox, REPO_ROOT, show, type Sandbox } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

const WORKFLOWS: Record<string, string> = {
  // `maybe` is skipped (its condition is false) and `last` runs after it.
  maybe: `name: maybe
version: 1.0.0
inputs:
  - { name: go, type: boolean, required: true }
steps:
  - { id: first, agent: echo@1.0.0, inputs: { message: one } }
  - { id: maybe, agent: echo@1.0.0, depends_on: [first], condition: "trigger.go == true", inputs: { message: maybe } }
  - { id: last, agent: echo@1.0.0, depends_on: [maybe], inputs: { message: last } }
`,
  // `a` fails its first attempt and completes on its second: retry_count 1.
  retried: `name: retried
version: 1.0.0
steps:
  - { id: a, agent: flaky@1.0.0, retry: { max_attempts: 3, backoff_ms: 10 } }
  - { id: b, agent: echo@1.0.0, depends_on: [a], inputs: { message: b } }
`,
  // `bad` fails both attempts: the run fails and `after` is cancelled.
  breaks: `name: breaks
version: 1.0.0
steps:
  - { id: first, agent: echo@1.0.0, inputs: { message: one } }
  - { id: bad, agent: broken@1.0.0, depends_on: [first], retry: { max_attempts: 2, backoff_ms: 10 } }
  - { id: after, agent: echo@1.0.0, depends_on: [bad], inputs: { message: never } }
`,
};

/** A bash agent package under the sandbox's agents/. */
function bashAgent(s: Sandbox, name: string, script: string): string {
  s.write(`agents/${name}/agent.yaml`, `name: ${name}\nversion: 1.0.0\nruntime:\n  type: bash\n  entry: run.sh\n`);
  s.write(`agents/${name}/run.sh`, script, 0o755);
  return s.path('agents', name);
}

/** The runs of the first installation, made through the library on its store; returns them by name. */
async function sourceRuns(a: Sandbox): Promise<Record<string, string>> {
  const flaky = bashAgent(a, 'flaky', `if [ "$SWARM_ATTEMPT" = 1 ]; then echo 'the first attempt fails' >&2; exit 1; fi\necho '{"tries": '"$SWARM_ATTEMPT"'}' > "$2"\n`);
  const broken = bashAgent(a, 'broken', `echo 'broken for good' >&2\nexit 1\n`);
  const swarm = await Swarm.open({ cwd: a.root, env: a.env });
  try {
    for (const agent of [join(EXAMPLES.agents, 'echo'), flaky, broken]) await swarm.registerAgent(agent);
    await swarm.registerWorkflow(join(REPO_ROOT, 'examples', 'branching', 'workflows', 'pipeline'));
    for (const [name, yaml] of Object.entries(WORKFLOWS)) await swarm.registerWorkflow(a.write(`workflows/${name}/workflow.yaml`, yaml));
    const run = async (workflow: string, input: unknown): Promise<string> => {
      const id = await swarm.startRun(workflow, input);
      await swarm.runToCompletion(id);
      return id;
    };
    const ids: Record<string, string> = {};
    ids.pipeline = await run('pipeline', { topic: 'imports' });
    ids.skipped = await run('maybe', { go: false });
    ids.retried = await run('retried', {});
    ids.failed = await run('breaks', {});
    ids.cancelled = await swarm.startRun('pipeline', { topic: 'never started' });
    await swarm.cancel(ids.cancelled, 'not needed after all');
    // A fork copies `a` with its retry count: its STEP_COPIED does not record one.
    ids.fork = (await swarm.fork(ids.retried, { at: 'b' })).run_id;
    await swarm.runToCompletion(ids.fork);

    // The runs are what they are about.
    const status = async (id: string): Promise<[string, Array<[string, string, number, number]>]> => {
      const { run: r, steps } = await swarm.getRun(id);
      return [r.status, steps.map((s) => [s.step_id, s.status, s.attempt, s.retry_count])];
    };
    expect(await status(ids.skipped)).toEqual(['completed', [['first', 'completed', 1, 0], ['maybe', 'skipped', 1, 0], ['last', 'completed', 1, 0]]]);
    expect(await status(ids.retried)).toEqual(['completed', [['a', 'completed', 2, 1], ['b', 'completed', 1, 0]]]);
    expect(await status(ids.failed)).toEqual(['failed', [['first', 'completed', 1, 0], ['bad', 'failed', 2, 2], ['after', 'cancelled', 0, 0]]]);
    expect(await status(ids.cancelled)).toEqual(['cancelled', [['draft', 'cancelled', 0, 0], ['review', 'cancelled', 0, 0], ['publish', 'cancelled', 0, 0]]]);
    expect((await status(ids.fork))[0]).toBe('completed');
    expect((await swarm.getRun(ids.cancelled)).run.started_at).toBeNull();
    return ids;
  } finally {
    await swarm.close();
  }
}

async function expectReplays(s: Sandbox, id: string): Promise<void> {
  const r = await s.run(['log', 'replay', id]);
  expect(r.code, show(r)).toBe(0);
  expect(r.stdout).toContain(`ok: run ${id}:`);
}

describe('swarm log replay of imported runs (SQLite)', () => {
  it('an imported run replays to its rows as it does where it ran; a changed row still exits 3', async () => {
    const a = makeSandbox();
    const b = makeSandbox();
    const ids = await sourceRuns(a);
    for (const id of Object.values(ids)) await expectReplays(a, id);

    // The second installation: the agents registered (the workflows come with the bundles).
    for (const args of [['agent', 'register', '--all', a.path('agents')], ['agent', 'register', join(EXAMPLES.agents, 'echo')]]) {
      const r = await b.run(args);
      expect(r.code, show(r)).toBe(0);
    }
    for (const [name, id] of Object.entries(ids)) {
      const exported = await a.run(['runs', 'export', id, '-o', b.path(`${name}.tar`)]);
      expect(exported.code, show(exported)).toBe(0);
      const imported = await b.run(['runs', 'import', `${name}.tar`, '--json']);
      expect(imported.code, show(imported)).toBe(0);
      expect(JSON.parse(imported.stdout)).toMatchObject({ run_id: id, created: true });
    }
    for (const id of Object.values(ids)) await expectReplays(b, id);
    const verified = await b.run(['log', 'verify']);
    expect(verified.code, show(verified)).toBe(0);
    expect(verified.stdout).toContain(`${Object.keys(ids).length} run(s)`);

    // What the log of an import says: the steps the bundle did not complete end with their own
    // event, and the terminal event carries the times the run had where it ran (those the rows keep).
    const events = (id: string): Array<{ type: string; step_id: string | null; data: Record<string, unknown> }> =>
      b.query<{ type: string; step_id: string | null; data: string }>('SELECT type, step_id, data FROM events WHERE run_id = ? ORDER BY seq', id).map((e) => ({ ...e, data: JSON.parse(e.data) as Record<string, unknown> }));
    const times = (s: Sandbox, id: string): { started_at: number | null; completed_at: number | null } | undefined =>
      s.query<{ started_at: number | null; completed_at: number | null }>('SELECT started_at, completed_at FROM workflow_runs WHERE id = ?', id)[0];
    const skipped = events(ids.skipped as string);
    expect(skipped.map((e) => [e.type, e.step_id])).toEqual([
      ['RUN_CREATED', null],
      ['RUN_IMPORTED', null],
      ['STEP_COPIED', 'first'],
      ['STEP_SKIPPED', 'maybe'],
      ['STEP_COPIED', 'last'],
      ['RUN_COMPLETED', null],
    ]);
    expect(skipped[3]?.data).toMatchObject({ attempt: 1, reason: 'condition is false: trigger.go == true', retry_count: 0 });
    expect(skipped[5]?.data).toMatchObject({ imported: true, ...times(a, ids.skipped as string) });
    expect(times(b, ids.skipped as string)).toEqual(times(a, ids.skipped as string));
    expect(events(ids.failed as string).map((e) => [e.type, e.step_id])).toEqual([
      ['RUN_CREATED', null],
      ['RUN_IMPORTED', null],
      ['STEP_COPIED', 'first'],
      ['STEP_FAILED', 'bad'],
      ['STEP_CANCELLED', 'after'],
      ['RUN_FAILED', null],
    ]);
    expect(events(ids.cancelled as string).at(-1)?.data).toMatchObject({ imported: true, started_at: null, error: 'not needed after all' });

    // Rows changed behind the store's back: replay names the run and what differs, exit 3.
    const db = new Database(b.db);
    try {
      expect(db.prepare('UPDATE workflow_runs SET started_at = started_at + 1 WHERE id = ?').run(ids.pipeline).changes).toBe(1);
      expect(db.prepare(`UPDATE step_executions SET status = 'cancelled' WHERE run_id = ? AND step_id = 'maybe'`).run(ids.skipped).changes).toBe(1);
      expect(db.prepare(`UPDATE step_executions SET attempt = 3 WHERE run_id = ? AND step_id = 'bad'`).run(ids.failed).changes).toBe(1);
    } finally {
      db.close();
    }
    const started = times(a, ids.pipeline as string)?.started_at as number;
    const cases: Array<[string, string]> = [
      [ids.pipeline as string, `run started_at: the log says ${started}, the store holds ${started + 1}`],
      [ids.skipped as string, "step 'maybe' status: the log says skipped, the store holds cancelled"],
      [ids.failed as string, "step 'bad' attempt: the log says 2, the store holds 3"],
    ];
    for (const [id, difference] of cases) {
      const r = await b.run(['log', 'replay', id]);
      expect(r.code, show(r)).toBe(3);
      expect(r.stderr).toContain(`run ${id}: 1 difference(s)`);
      expect(r.stderr).toContain(difference);
    }
  }, 180_000);
});
