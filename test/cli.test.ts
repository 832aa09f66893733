/**
 * The `swarm` command line as a new user meets it: real processes (bin/*.js over dist/), real SQLite
 * files in fresh temporary directories. Build first: `npm run build`.
 */
import Database from 'better-sqlite3';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, test, type ExpectStatic } from 'vitest';
import { cleanupSandboxes, EXAMPLES, examplesStore, lines, makeSandbox, show, until, type CliResult, type Sandbox } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface StepDoc {
  id: string;
  agent: string;
  status: string;
  attempts: number;
  outputs: Record<string, unknown> | null;
  error: string | null;
  duration_ms: number | null;
}
interface RunDoc {
  run_id: string;
  workflow: string;
  version: string;
  status: string;
  trigger: unknown;
  steps: StepDoc[];
  error: { message: string; step: string | null } | null;
}
interface RunRow {
  run_id: string;
  /** Deprecated alias of run_id. */
  id: string;
  workflow_name: string;
  status: string;
  created_at: number;
  error: string | null;
}
interface EventLine {
  seq: number;
  type: string;
  step: string | null;
  data: Record<string, unknown>;
  hash: string;
}

function ok(expect: ExpectStatic, r: CliResult): CliResult {
  expect(r.code, show(r)).toBe(0);
  return r;
}

/** A sandbox whose store starts with the bundled examples registered (through the CLI, once per file). */
async function withExamples(): Promise<Sandbox> {
  const s = makeSandbox();
  s.copyStore(await examplesStore());
  return s;
}

/** Wait until a step of a run is running, reading the store directly (cheaper than polling the CLI). */
function stepRunning(s: Sandbox, runId: string, stepId: string): Promise<true> {
  return until(`step ${stepId} of run ${runId} to run`, async () => {
    const [row] = s.query<{ status: string }>('SELECT status FROM step_executions WHERE run_id = ? AND step_id = ?', runId, stepId);
    return row?.status === 'running' ? true : undefined;
  });
}

function packagesIn(dir: string, file: string): string[] {
  return readdirSync(dir).filter((d) => existsSync(join(dir, d, file)));
}

function stepOf(doc: RunDoc, id: string): StepDoc {
  const s = doc.steps.find((x) => x.id === id);
  if (!s) throw new Error(`run ${doc.run_id} has no step '${id}' (has ${doc.steps.map((x) => x.id).join(', ')})`);
  return s;
}

const ECHO_CHAIN_OUTPUT = { step2: { echoed: 'Step 2 received: Hello Swarm!' } };

const NAPPER_AGENT = `name: napper
version: 1.0.0
description: sleeps (the built-in sleep agent)
runtime: {type: builtin, entry: sleep}
inputs:
  - {name: ms, type: integer}
outputs:
  - {name: slept_ms, type: integer}
`;
const NAP_WORKFLOW = `name: napwf
version: 1.0.0
steps:
  - id: nap
    agent: napper@1.0.0
    inputs: {ms: 240000}
  - id: after
    agent: echo@^1.0.0
    inputs: {message: "\${steps.nap.outputs.slept_ms}"}
`;

describe.concurrent('swarm CLI', () => {
  test('demo in an empty directory registers the examples, runs echo-chain and creates .swarm/swarm.db', async ({ expect }) => {
    const s = makeSandbox({ home: 'default' });
    const r = ok(expect, await s.run(['demo']));
    expect(JSON.parse(r.stdout)).toEqual(ECHO_CHAIN_OUTPUT);
    const agents = packagesIn(EXAMPLES.agents, 'agent.yaml').length;
    const workflows = packagesIn(EXAMPLES.workflows, 'workflow.yaml').length;
    expect(r.stderr).toContain(`registered ${agents} example agents and ${workflows} workflows into ${s.path('.swarm', 'swarm.db')}`);
    expect(r.stderr).toMatch(/run [0-9a-f]{12} completed/);
    expect(s.exists('.swarm/swarm.db')).toBe(true);
    expect(readFileSync(s.path('.swarm/swarm.db')).subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');

    // The run is really in that file, and it verifies.
    const runs = await s.json<RunRow[]>(['runs', 'list', '--json']);
    expect(runs.map((x) => [x.workflow_name, x.status])).toEqual([['echo-chain', 'completed']]);
    const v = ok(expect, await s.run(['runs', 'verify', runs[0]!.run_id]));
    expect(v.stdout).toMatch(/^ok: \d+ events, hash chain and checkpoints verify\n$/);
    // The hint it prints names the run.
    // The hint names the run by its short id: the end of the id.
    expect(r.stderr).toContain(`swarm runs show ${runs[0]!.run_id.slice(-12)}`);
    expect(s.query('SELECT id FROM agents')).toHaveLength(agents);
    // Among them the trigger examples, registered with their triggers: a schedule and a signed webhook.
    expect(await s.json<unknown[]>(['schedules', 'list', '--json'])).toMatchObject([{ workflow: 'nightly', cron: '0 2 * * *', timezone: 'Europe/Paris', paused: false }]);
    expect(s.query("SELECT workflow_name, webhook_path, webhook_scheme FROM triggers WHERE type = 'webhook'")).toEqual([{ workflow_name: 'orders', webhook_path: 'orders', webhook_scheme: 'standard' }]);
  });

  test('SWARM_HOME moves the store out of the project', async ({ expect }) => {
    const s = makeSandbox();
    ok(expect, await s.run(['agent', 'register', join(EXAMPLES.agents, 'echo')]));
    expect(existsSync(join(s.home!, 'swarm.db'))).toBe(true);
    expect(s.exists('.swarm')).toBe(false);
    // Another directory with the same SWARM_HOME sees the same registry.
    s.write('elsewhere/README', 'x');
    const list = await s.json<Array<{ id: string }>>(['agent', 'list', '--json'], { cwd: 'elsewhere' });
    expect(list.map((a) => a.id)).toEqual(['echo@1.0.0']);
  });

  test('init <dir> makes a project that runs hello at once; agent/workflow list and info show it', async ({ expect }) => {
    const s = makeSandbox({ home: 'default' });
    const init = ok(expect, await s.run(['init', 'proj']));
    for (const f of ['swarm.yaml', 'agents/echo/agent.yaml', 'agents/hello-agent/agent.yaml', 'workflows/hello/workflow.yaml']) {
      expect(init.stdout).toContain(`created ${s.path('proj', f)}`);
      expect(s.exists(`proj/${f}`)).toBe(true);
    }
    expect(init.stdout).toContain(`swarm run hello '{"name": "you"}'`);
    expect(s.exists('proj/.swarm/swarm.db')).toBe(true);

    const run = ok(expect, await s.run(['run', 'hello', '{"name":"you"}'], { cwd: 'proj' }));
    const greeting = 'Hello, you!';
    expect(JSON.parse(run.stdout)).toEqual({ measure: { result: { received: greeting, length: greeting.length } } });
    expect(run.stderr).toContain(`hello finished: ${greeting.length} characters`);

    // From a subdirectory the project (and its store) is found by walking up.
    const fromSub = ok(expect, await s.run(['run', 'hello'], { cwd: 'proj/agents' }));
    expect(JSON.parse(fromSub.stdout)).toEqual({ measure: { result: { received: 'Hello, world!', length: 13 } } });
    expect(s.exists('proj/agents/.swarm')).toBe(false);

    const agents = ok(expect, await s.run(['agent', 'list'], { cwd: 'proj' }));
    expect(lines(agents.stdout)[0]).toMatch(/^NAME\s+VERSION\s+RUNTIME\s+DESCRIPTION$/);
    expect(agents.stdout).toMatch(/^echo\s+1\.0\.0\s+builtin\s/m);
    expect(agents.stdout).toMatch(/^hello-agent\s+1\.0\.0\s+node\s/m);
    const agentsJson = await s.json<Array<{ id: string; runtime: string; path: string }>>(['agent', 'list', '--json'], { cwd: 'proj' });
    expect(agentsJson.map((a) => [a.id, a.runtime, a.path])).toEqual([
      ['echo@1.0.0', 'builtin', s.path('proj/agents/echo')],
      ['hello-agent@1.0.0', 'node', s.path('proj/agents/hello-agent')],
    ]);

    const wfs = ok(expect, await s.run(['workflow', 'list'], { cwd: 'proj' }));
    expect(wfs.stdout).toMatch(/^hello\s+1\.0\.0\s+yes\s+2\s+manual\s/m);
    const wfsJson = await s.json<Array<{ id: string; enabled: boolean; steps: number }>>(['workflow', 'list', '--json'], { cwd: 'proj' });
    expect(wfsJson).toEqual([expect.objectContaining({ id: 'hello@1.0.0', enabled: true, steps: 2 })]);

    const ai = ok(expect, await s.run(['agent', 'info', 'hello-agent'], { cwd: 'proj' }));
    expect(ai.stdout).toContain('hello-agent@1.0.0');
    expect(ai.stdout).toMatch(/^runtime:\s+node main\.js/m);
    expect(ai.stdout).toMatch(/^input_data\s+string\s+yes/m);
    expect(ai.stdout).toMatch(/^result\s+object/m);
    const aiJson = await s.json<{ id: string; name: string; runtime: { type: string; entry: string }; inputs: { required: string[] } }>(['agent', 'info', 'hello-agent@1.0.0', '--json'], { cwd: 'proj' });
    expect(aiJson).toMatchObject({ id: 'hello-agent@1.0.0', name: 'hello-agent', runtime: { type: 'node', entry: 'main.js' }, inputs: { required: ['input_data'] } });

    const wi = ok(expect, await s.run(['workflow', 'info', 'hello'], { cwd: 'proj' }));
    expect(wi.stdout).toContain('hello@1.0.0');
    expect(wi.stdout).toMatch(/^greet\s+echo@\^1\.0\.0\s/m);
    expect(wi.stdout).toMatch(/^measure\s+hello-agent@\^1\.0\.0\s+greet\s/m);
    const wiJson = await s.json<{ id: string; enabled: boolean; steps: Array<{ id: string; deps: string[] }> }>(['workflow', 'info', 'hello', '--json'], { cwd: 'proj' });
    expect(wiJson.id).toBe('hello@1.0.0');
    expect(wiJson.enabled).toBe(true);
    expect(wiJson.steps.map((x) => [x.id, x.deps])).toEqual([
      ['greet', []],
      ['measure', ['greet']],
    ]);

    // The demo in that project: the project's own echo@1.0.0 is kept (a warning says so), the other
    // examples are registered, and echo-chain runs on it.
    const demo = ok(expect, await s.run(['demo'], { cwd: 'proj' }));
    expect(demo.stderr).toContain("warning: agent echo@1.0.0 is already registered with different content: this project's is kept, the example's is not registered");
    expect(demo.stdout).toContain('Step 2 received: Hello Swarm!');
    expect((await s.json<Array<{ id: string; path: string }>>(['agent', 'list', '--json'], { cwd: 'proj' })).find((a) => a.id === 'echo@1.0.0')?.path).toBe(s.path('proj/agents/echo'));
  });

  test('agent create --template basic|python|bash|builtin: register and run them', async ({ expect }) => {
    const s = makeSandbox();
    for (const t of ['basic', 'python', 'bash', 'builtin']) {
      const r = ok(expect, await s.run(['agent', 'create', `a-${t}`, '--template', t]));
      expect(r.stdout).toContain(`created ${s.path('agents', `a-${t}`)}`);
      expect(s.exists(`agents/a-${t}/agent.yaml`)).toBe(true);
    }
    const reg = ok(expect, await s.run(['agent', 'register', '--all']));
    expect(reg.stdout).toContain('4 agent(s) registered');
    const listed = await s.json<Array<{ id: string; runtime: string }>>(['agent', 'list', '--json']);
    expect(listed.map((a) => [a.id, a.runtime]).sort()).toEqual([
      ['a-basic@1.0.0', 'node'],
      ['a-bash@1.0.0', 'bash'],
      ['a-builtin@1.0.0', 'builtin'],
      ['a-python@1.0.0', 'python'],
    ].sort());
    s.write(
      'workflows/tpl/workflow.yaml',
      `name: tpl
version: 1.0.0
inputs:
  - {name: text, type: string, required: true}
steps:
  - id: node
    agent: a-basic@1.0.0
    inputs: {input_data: "\${trigger.text}"}
  - id: py
    agent: a-python@1.0.0
    inputs: {input_data: "\${trigger.text}"}
  - id: sh
    agent: a-bash@1.0.0
    inputs: {input_data: "\${trigger.text}"}
  - id: builtin
    agent: a-builtin@^1
    inputs: {message: "\${trigger.text}"}
`,
    );
    ok(expect, await s.run(['workflow', 'register', 'workflows/tpl']));
    const text = 'templates work';
    const r = ok(expect, await s.run(['run', 'tpl', JSON.stringify({ text })]));
    const out = JSON.parse(r.stdout) as Record<string, Record<string, unknown>>;
    expect(out.node).toEqual({ result: { received: text, length: text.length } });
    expect(out.py).toEqual({ result: { received: text, key: expect.any(String) } });
    expect(out.sh).toEqual({ result: expect.stringMatching(/^input was \d+ bytes$/) });
    expect(out.builtin).toEqual({ echoed: text });
  });

  test('workflow create --template linear: register and run it', async ({ expect }) => {
    const s = makeSandbox();
    ok(expect, await s.run(['agent', 'create', 'echo', '--template', 'builtin']));
    ok(expect, await s.run(['agent', 'register', 'agents/echo']));
    const c = ok(expect, await s.run(['workflow', 'create', 'lin', '--template', 'linear']));
    expect(c.stdout).toContain(`created ${s.path('workflows/lin/workflow.yaml')}`);
    const reg = ok(expect, await s.run(['workflow', 'register', s.path('workflows/lin')]));
    expect(reg.stdout).toMatch(/lin@1\.0\.0 created/);
    const r = ok(expect, await s.run(['run', 'lin']));
    expect(JSON.parse(r.stdout)).toEqual({ step2: { echoed: 'Step 2 received: Step 1 complete' } });
  });

  test('workflow create --template parallel: register and run it', async ({ expect }) => {
    const s = makeSandbox();
    ok(expect, await s.run(['agent', 'create', 'echo', '-t', 'builtin']));
    ok(expect, await s.run(['agent', 'register', 'agents/echo']));
    ok(expect, await s.run(['workflow', 'create', 'par', '-t', 'parallel']));
    const reg = await s.run(['workflow', 'register', 'workflows/par']);
    expect(reg.code, `the parallel template does not register:\n${show(reg)}`).toBe(0);
    const r = ok(expect, await s.run(['run', 'par', '{"message": "m"}']));
    expect(JSON.parse(r.stdout)).toEqual({ join: { echoed: { left: 'left got m', right: 'right got m' } } });
  });

  test("run takes input inline, as @file.json and from stdin ('-'); --json prints one run document", async ({ expect }) => {
    const s = await withExamples();
    const inline = ok(expect, await s.run(['run', 'echo-chain', '{"message": "inline"}']));
    expect(JSON.parse(inline.stdout)).toEqual({ step2: { echoed: 'Step 2 received: inline' } });

    s.write('in.json', '{"message": "from a file"}');
    const file = ok(expect, await s.run(['run', 'echo-chain', '@in.json']));
    expect(JSON.parse(file.stdout)).toEqual({ step2: { echoed: 'Step 2 received: from a file' } });

    const stdin = ok(expect, await s.run(['run', 'echo-chain', '-'], { input: '{"message": "piped"}\n' }));
    expect(JSON.parse(stdin.stdout)).toEqual({ step2: { echoed: 'Step 2 received: piped' } });

    const j = ok(expect, await s.run(['run', 'echo-chain', '{"message": "json"}', '--json']));
    const doc = JSON.parse(j.stdout) as RunDoc;
    expect(doc.run_id).toMatch(UUID);
    expect(doc).toMatchObject({ workflow: 'echo-chain', version: '1.0.0', status: 'completed', trigger: { message: 'json' }, error: null });
    expect(doc.steps.map((x) => x.id)).toEqual(['step1', 'step2']);
    for (const st of doc.steps) {
      expect(Object.keys(st)).toEqual(expect.arrayContaining(['id', 'status', 'outputs', 'error', 'duration_ms']));
      expect(st.status).toBe('completed');
      expect(st.error).toBeNull();
      expect(typeof st.duration_ms).toBe('number');
    }
    expect(stepOf(doc, 'step1').outputs).toEqual({ echoed: 'json' });
    expect(stepOf(doc, 'step2').outputs).toEqual({ echoed: 'Step 2 received: json' });
    // --json keeps stdout to the one document: no progress lines there.
    expect(j.stdout.trim().startsWith('{')).toBe(true);

    // Every run is recorded with its own input.
    const runs = await s.json<Array<RunRow & { trigger_data: { message: string } }>>(['runs', 'list', '--json']);
    expect(runs.map((x) => x.trigger_data.message)).toEqual(['json', 'piped', 'from a file', 'inline']);
    expect(runs[0]!.run_id).toBe(doc.run_id);
    expect(runs[0]!.id, 'id: the deprecated alias of run_id').toBe(doc.run_id);
  });

  test('a failed run under --json: status failed, the error names the step, exit 4', async ({ expect }) => {
    const s = await withExamples();
    s.write('agents/boom/agent.yaml', 'name: boom\nversion: 1.0.0\nruntime: {type: bash, entry: run.sh}\n');
    s.write('agents/boom/run.sh', 'echo "about to fail" >&2\nexit 7\n');
    s.write('workflows/bw/workflow.yaml', 'name: bw\nversion: 1.0.0\nsteps:\n  - id: ok\n    agent: echo@1.0.0\n    inputs: {message: hi}\n  - id: bad\n    agent: boom@1.0.0\n    depends_on: [ok]\n');
    ok(expect, await s.run(['agent', 'register', 'agents/boom']));
    ok(expect, await s.run(['workflow', 'register', 'workflows/bw']));
    const r = await s.run(['run', 'bw', '--json']);
    expect(r.code, show(r)).toBe(4);
    const doc = JSON.parse(r.stdout) as RunDoc;
    expect(doc.status).toBe('failed');
    expect(doc.error?.step).toBe('bad');
    expect(doc.error?.message).toContain('exited with code 7');
    expect(stepOf(doc, 'ok')).toMatchObject({ status: 'completed', outputs: { echoed: 'hi' } });
    expect(stepOf(doc, 'bad')).toMatchObject({ status: 'failed', outputs: null });
    expect(stepOf(doc, 'bad').error).toContain('exited with code 7');

    const plain = await s.run(['run', 'bw']);
    expect(plain.code).toBe(4);
    expect(plain.stdout).toBe('');
    expect(plain.stderr).toMatch(/run [0-9a-f]{12} failed/);
    expect(plain.stderr).toContain("error in step 'bad': agent process exited with code 7");
  });

  test('--detach prints only the run id; runs resume <id> then completes it', async ({ expect }) => {
    const s = await withExamples();
    const d = ok(expect, await s.run(['run', 'echo-chain', '{"message": "later"}', '--detach']));
    const id = d.stdout.trim();
    expect(id).toMatch(UUID);
    expect(d.stdout).toBe(`${id}\n`);
    expect(d.stderr).toContain('swarm runs resume');

    const queued = await s.json<RunRow[]>(['runs', 'list', '--status', 'queued', '--json']);
    expect(queued.map((x) => x.run_id)).toEqual([id]);
    const before = await s.json<RunDoc>(['runs', 'show', id, '--json']);
    expect(before.status).toBe('queued');
    expect(before.steps.every((x) => x.outputs === null)).toBe(true);

    const res = ok(expect, await s.run(['runs', 'resume', id]));
    expect(JSON.parse(res.stdout)).toEqual({ step2: { echoed: 'Step 2 received: later' } });
    expect(res.stderr).toContain(`run ${id.slice(-12)} completed`);
    expect(s.query('SELECT status FROM workflow_runs WHERE id = ?', id)).toEqual([{ status: 'completed' }]);

    const dj = ok(expect, await s.run(['run', 'echo-chain', '{"message": "x"}', '-d', '--json']));
    const dd = JSON.parse(dj.stdout) as { run_id: string; status: string };
    expect(dd.run_id).toMatch(UUID);
    expect(dd.status).toBe('queued');
    // resume with no id continues every unfinished run.
    const all = ok(expect, await s.run(['runs', 'resume']));
    expect(all.stdout).toContain('1 run(s) resumed: 1 completed');
    expect(s.query('SELECT status FROM workflow_runs WHERE id = ?', dd.run_id)).toEqual([{ status: 'completed' }]);
  });

  test('runs list filters (--workflow, --status, --since, -n); runs show by id and unique prefix; runs events', async ({ expect }) => {
    const s = await withExamples();
    const a = (await s.json<RunDoc>(['run', 'echo-chain', '{"message": "a"}', '--json'])).run_id;
    const b = (await s.json<RunDoc>(['run', 'fan-out', '{"text": "one two"}', '--json'])).run_id;
    const c = (await s.run(['run', 'echo-chain', '{"message": "c"}', '-d'])).stdout.trim();
    expect(c).toMatch(UUID);

    const ids = async (...args: string[]): Promise<string[]> => (await s.json<RunRow[]>(['runs', 'list', '--json', ...args])).map((x) => x.run_id);
    expect(await ids()).toEqual([c, b, a]);
    expect(await ids('--workflow', 'echo-chain')).toEqual([c, a]);
    expect(await ids('--status', 'completed')).toEqual([b, a]);
    expect(await ids('-s', 'queued', '--workflow', 'echo-chain')).toEqual([c]);
    expect(await ids('-n', '1')).toEqual([c]);

    // Age one run by three days: --since keeps it out of 1d and in 7d.
    const db = new Database(s.db);
    db.prepare('UPDATE workflow_runs SET created_at = created_at - ? WHERE id = ?').run(3 * 86_400_000, a);
    db.close();
    expect(await ids('--since', '1d')).toEqual([c, b]);
    expect(await ids('--since', '7d')).toEqual([c, b, a]);
    expect(await ids('--since', new Date(Date.now() + 86_400_000).toISOString().slice(0, 10))).toEqual([]);

    const table = ok(expect, await s.run(['runs', 'list']));
    expect(lines(table.stdout)[0]).toMatch(/^RUN\s+WORKFLOW\s+STATUS\s+FINISHED\s+CREATED\s+DURATION\s+ERROR$/);
    // The table shows short ids: the last 12 characters.
    expect(table.stdout).toMatch(new RegExp(`^${b.slice(-12)}\\s+fan-out@1\\.0\\.0\\s+completed\\s+5/5\\s`, 'm'));
    expect(table.stdout).toMatch(new RegExp(`^${c.slice(-12)}\\s+echo-chain@1\\.0\\.0\\s+queued\\s+0/2\\s`, 'm'));

    const shown = ok(expect, await s.run(['runs', 'show', b]));
    expect(lines(shown.stdout)[0]).toBe(`run ${b}  fan-out@1.0.0  completed`);
    expect(shown.stdout).toContain('trigger (manual): {"text":"one two"}');
    for (const step of ['split', 'count', 'shout', 'long-text', 'join']) expect(shown.stdout).toMatch(new RegExp(`^${step}\\s`, 'm'));
    // fan-out's long-text step only runs for more than 5 words.
    expect(shown.stdout).toMatch(/^long-text\s+echo@1\.0\.0\s+skipped/m);

    // A unique prefix is enough.
    const prefix = b.slice(0, 23);
    expect([a, c].some((x) => x.startsWith(prefix))).toBe(false);
    const byPrefix = ok(expect, await s.run(['runs', 'show', prefix]));
    expect(byPrefix.stdout).toBe(shown.stdout);
    // A prefix that several runs share is refused (UUIDv7 ids share their leading time digits).
    expect(a.slice(0, 4)).toBe(c.slice(0, 4));
    const ambiguous = await s.run(['runs', 'show', a.slice(0, 4)]);
    expect(ambiguous.code, show(ambiguous)).toBe(2);
    expect(ambiguous.stderr.trim()).toMatch(new RegExp(`^swarm: '${a.slice(0, 4)}' matches 3 runs: .*; give more characters of the id`));
    for (const x of [a, b, c]) expect(ambiguous.stderr).toContain(x);
    // The end of an id (its random part) is enough too.
    const bySuffix = ok(expect, await s.run(['runs', 'show', b.slice(-8)]));
    expect(bySuffix.stdout).toBe(shown.stdout);

    // runs events: the log of the run, in order, hash-chained.
    const ev = ok(expect, await s.run(['runs', 'events', a, '--json']));
    const events = lines(ev.stdout).map((l) => JSON.parse(l) as EventLine);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events[0]!.type).toBe('RUN_CREATED');
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['RUN_STARTED', 'STEP_STARTED', 'STEP_COMPLETED', 'RUN_COMPLETED']));
    expect(events.filter((e) => e.type === 'STEP_COMPLETED').map((e) => e.step)).toEqual(['step1', 'step2']);
    expect(new Set(events.map((e) => e.hash)).size).toBe(events.length);
    const evPlain = ok(expect, await s.run(['runs', 'events', c]));
    expect(lines(evPlain.stdout)).toHaveLength(1);
    expect(lines(evPlain.stdout)[0]).toMatch(/^\s+1\s+\S+ \S+\s+RUN_CREATED\s/);
    // About 25 CLI processes in a row: allow a loaded machine the time.
  }, 120_000);

  test('runs logs <id> <step> shows what a node or bash step printed', async ({ expect }) => {
    const s = await withExamples();
    const id = (await s.json<RunDoc>(['run', 'fan-out', '{"text": "alpha beta"}', '--json'])).run_id;
    const count = ok(expect, await s.run(['runs', 'logs', id, 'count']));
    expect(count.stdout).toContain('── count (attempt 1)');
    expect(count.stdout).toMatch(/stdout:\ncounting 2 words \(idempotency key \S+\)/);
    const shout = ok(expect, await s.run(['runs', 'logs', id, 'shout']));
    expect(shout.stdout).toContain('── shout (attempt 1)');
    expect(shout.stdout).toMatch(new RegExp(`stderr:\\nshouting for run ${id}, attempt 1`));
    expect(shout.stdout).not.toContain('counting');
    const all = ok(expect, await s.run(['runs', 'logs', id]));
    expect(all.stdout).toContain('── count (attempt 1)');
    expect(all.stdout).toContain('── shout (attempt 1)');
    const builtin = ok(expect, await s.run(['runs', 'logs', id, 'split']));
    expect(builtin.stdout.trim()).toBe("no logs for step 'split'");
  });

  test('runs cancel stops a running step at once; the attached process exits 4', async ({ expect }) => {
    const s = await withExamples();
    s.write('agents/napper/agent.yaml', NAPPER_AGENT);
    s.write('workflows/napwf/workflow.yaml', NAP_WORKFLOW);
    ok(expect, await s.run(['agent', 'register', 'agents/napper']));
    ok(expect, await s.run(['workflow', 'register', 'workflows/napwf']));
    const id = (await s.run(['run', 'napwf', '--detach'])).stdout.trim();
    expect(id).toMatch(UUID);
    // Killed (exit null, failing the test) long before the 4 min sleep would end by itself, and well
    // after a cancel on a busy machine (two CLI start-ups).
    const attached = s.start(['runs', 'resume', id], { timeoutMs: 110_000 });
    try {
      await stepRunning(s, id, 'nap');
      expect(stepOf(await s.json<RunDoc>(['runs', 'show', id, '--json']), 'nap').status).toBe('running');
      const cancelledAt = Date.now();
      const c = ok(expect, await s.run(['runs', 'cancel', id, '--reason', 'enough napping']));
      expect(c.stdout.trim()).toBe(`run ${id} cancelled (nap, after)`);
      const r = await attached.done;
      expect(r.code, show(r)).toBe(4);
      // The 4 min sleep was interrupted, not waited out (measured from the cancel, not from the process's start).
      expect(Date.now() - cancelledAt).toBeLessThan(90_000);
      expect(r.stderr).toContain(`run ${id.slice(-12)} cancelled`);
      expect(r.stderr).toContain('enough napping');
    } finally {
      attached.child.kill('SIGKILL');
    }
    const d = await s.json<RunDoc>(['runs', 'show', id, '--json']);
    expect(d.status).toBe('cancelled');
    expect(d.error?.message).toBe('enough napping');
    expect(d.steps.map((x) => [x.id, x.status])).toEqual([
      ['nap', 'cancelled'],
      ['after', 'cancelled'],
    ]);
    ok(expect, await s.run(['runs', 'verify', id]));
    // A queued run can be cancelled too.
    const q = (await s.run(['run', 'napwf', '-d'])).stdout.trim();
    ok(expect, await s.run(['runs', 'cancel', q]));
    expect(s.query('SELECT status FROM workflow_runs WHERE id = ?', q)).toEqual([{ status: 'cancelled' }]);
  });

  test('an attached `swarm run` executes only its own run, even when it is cancelled (other queued runs stay queued)', async ({ expect }) => {
    const s = await withExamples();
    s.write('agents/napper/agent.yaml', NAPPER_AGENT);
    s.write('workflows/napwf/workflow.yaml', NAP_WORKFLOW);
    s.write('workflows/quick/workflow.yaml', 'name: quick\nversion: 1.0.0\nsteps:\n  - id: only\n    agent: echo@1.0.0\n    inputs: {message: quick}\n');
    ok(expect, await s.run(['agent', 'register', 'agents/napper']));
    ok(expect, await s.run(['workflow', 'register', '--all', 'workflows']));
    // Someone queues a run for a worker that is not running yet.
    const queued = (await s.run(['run', 'quick', '--detach'])).stdout.trim();
    expect(queued).toMatch(UUID);
    const attached = s.start(['run', 'napwf'], { timeoutMs: 110_000 });
    let napId: string;
    try {
      napId = await until('the napwf run to start', async () => s.query<{ id: string }>(`SELECT id FROM workflow_runs WHERE workflow_name = 'napwf'`)[0]?.id);
      await stepRunning(s, napId, 'nap');
      ok(expect, await s.run(['runs', 'cancel', napId]));
      const r = await attached.done;
      expect(r.code, show(r)).toBe(4);
    } finally {
      attached.child.kill('SIGKILL');
    }
    const [other] = s.query<{ status: string }>('SELECT status FROM workflow_runs WHERE id = ?', queued);
    expect(other?.status, `run ${queued} of 'quick' was executed by the process attached to run ${napId}`).toBe('queued');
  });

  test('runs retry re-runs only the failed step and what follows it; completed steps are kept', async ({ expect }) => {
    // The agents count their calls in files beside them: unsandboxed (bubblewrap shows packages read-only).
    const s = makeSandbox({ env: { SWARM_SANDBOX: 'none' } });
    s.write('agents/counter/agent.yaml', 'name: counter\nversion: 1.0.0\nruntime: {type: bash, entry: run.sh}\noutputs:\n  - {name: calls, type: integer}\n');
    s.write('agents/counter/run.sh', 'set -eu\necho x >> "calls-$SWARM_STEP_ID.txt"\nn=$(wc -l < "calls-$SWARM_STEP_ID.txt")\necho "counter $SWARM_STEP_ID call $n"\nprintf \'{"calls": %d}\' "$n" > "$2"\n');
    s.write('agents/flaky/agent.yaml', 'name: flaky\nversion: 1.0.0\nruntime: {type: bash, entry: run.sh}\noutputs:\n  - {name: ok, type: boolean}\n');
    s.write(
      'agents/flaky/run.sh',
      [
        'set -eu',
        'echo x >> calls-flaky.txt',
        'echo "flaky stdout: attempt $SWARM_ATTEMPT"',
        'echo "flaky stderr: attempt $SWARM_ATTEMPT" >&2',
        'if [ ! -f marker ]; then touch marker; echo "first call fails on purpose" >&2; exit 3; fi',
        'printf \'{"ok": true}\' > "$2"',
        '',
      ].join('\n'),
    );
    s.write(
      'workflows/flow/workflow.yaml',
      'name: flow\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: counter@1.0.0\n  - id: b\n    agent: counter@1.0.0\n    depends_on: [a]\n  - id: c\n    agent: flaky@1.0.0\n    depends_on: [b]\n  - id: d\n    agent: counter@1.0.0\n    depends_on: [c]\n',
    );
    ok(expect, await s.run(['agent', 'register', '--all']));
    ok(expect, await s.run(['workflow', 'register', '--all']));
    const calls = (file: string): number => (s.exists(file) ? lines(s.read(file)).length : 0);

    const first = await s.run(['run', 'flow', '--json']);
    expect(first.code, show(first)).toBe(4);
    const failed = JSON.parse(first.stdout) as RunDoc;
    expect(failed.status).toBe('failed');
    expect(failed.error?.step).toBe('c');
    expect(failed.steps.map((x) => [x.id, x.status])).toEqual([
      ['a', 'completed'],
      ['b', 'completed'],
      ['c', 'failed'],
      ['d', expect.not.stringMatching(/^completed$/)],
    ]);
    expect([calls('agents/counter/calls-a.txt'), calls('agents/counter/calls-b.txt'), calls('agents/flaky/calls-flaky.txt'), calls('agents/counter/calls-d.txt')]).toEqual([1, 1, 1, 0]);

    const logs1 = ok(expect, await s.run(['runs', 'logs', failed.run_id, 'c']));
    expect(logs1.stdout).toContain('── c (attempt 1)');
    expect(logs1.stdout).toMatch(/stdout:\nflaky stdout: attempt 1/);
    expect(logs1.stdout).toMatch(/stderr:\nflaky stderr: attempt 1\nfirst call fails on purpose/);

    const retry = ok(expect, await s.run(['runs', 'retry', failed.run_id]));
    expect(retry.stderr).toContain(`retrying c, d of run ${failed.run_id}`);
    expect(JSON.parse(retry.stdout)).toEqual({ d: { calls: 1 } });
    // a and b were not run again; c ran a second time; d once.
    expect([calls('agents/counter/calls-a.txt'), calls('agents/counter/calls-b.txt'), calls('agents/flaky/calls-flaky.txt'), calls('agents/counter/calls-d.txt')]).toEqual([1, 1, 2, 1]);
    const done = await s.json<RunDoc>(['runs', 'show', failed.run_id, '--json']);
    expect(done.status).toBe('completed');
    expect(done.error).toBeNull();
    expect(done.steps.map((x) => [x.id, x.status, x.attempts])).toEqual([
      ['a', 'completed', 1],
      ['b', 'completed', 1],
      ['c', 'completed', 2],
      ['d', 'completed', 1],
    ]);
    expect(stepOf(done, 'a').outputs).toEqual({ calls: 1 });
    const logs2 = ok(expect, await s.run(['runs', 'logs', failed.run_id, 'c']));
    expect(logs2.stdout).toContain('── c (attempt 1)');
    expect(logs2.stdout).toContain('── c (attempt 2)');
    expect(logs2.stdout).toMatch(/stdout:\nflaky stdout: attempt 2/);
    ok(expect, await s.run(['runs', 'verify', failed.run_id]));
  });

  test('runs verify: exit 0 on an intact run, 3 after the database is tampered with', async ({ expect }) => {
    const s = await withExamples();
    const a = (await s.json<RunDoc>(['run', 'echo-chain', '{"message": "a"}', '--json'])).run_id;
    const b = (await s.json<RunDoc>(['run', 'echo-chain', '{"message": "b"}', '--json'])).run_id;
    const events = lines(ok(expect, await s.run(['runs', 'events', a, '--json'])).stdout).map((l) => JSON.parse(l) as EventLine);
    const v = ok(expect, await s.run(['runs', 'verify', a]));
    expect(v.stdout.trim()).toBe(`ok: ${events.length} events, hash chain and checkpoints verify`);
    const vj = await s.json<{ ok: boolean; events: number; problems: unknown[] }>(['runs', 'verify', a, '--json']);
    expect(vj).toEqual({ ok: true, events: events.length, problems: [] });

    const target = events.find((e) => e.type === 'STEP_COMPLETED' && e.step === 'step1');
    expect(target).toBeDefined();
    const db = new Database(s.db);
    const changed = db.prepare('UPDATE events SET data = ? WHERE run_id = ? AND seq = ?').run(JSON.stringify({ ...target!.data, duration_ms: 999_999 }), a, target!.seq);
    expect(changed.changes).toBe(1);
    // On run b, change a completed step's stored outputs instead.
    const changedOut = db.prepare(`UPDATE step_executions SET outputs = ? WHERE run_id = ? AND step_id = 'step2'`).run(JSON.stringify({ echoed: 'forged' }), b);
    expect(changedOut.changes).toBe(1);
    db.close();

    const bad = await s.run(['runs', 'verify', a]);
    expect(bad.code, show(bad)).toBe(3);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain(`event ${target!.seq}: hash does not match the event contents`);
    const badJson = await s.run(['runs', 'verify', a, '--json']);
    expect(badJson.code).toBe(3);
    const report = JSON.parse(badJson.stdout) as { ok: boolean; problems: Array<{ seq: number | null; problem: string }> };
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.seq)).toContain(target!.seq);

    const badOut = await s.run(['runs', 'verify', b.slice(0, 30)]);
    expect(badOut.code, show(badOut)).toBe(3);
    expect(badOut.stderr).toContain("outputs of step 'step2' do not match the digest in its STEP_COMPLETED event");
  });

  test('runs verify and export: the run input and a step’s inputs changed in the database are found', async ({ expect }) => {
    const s = await withExamples();
    const c = (await s.json<RunDoc>(['run', 'echo-chain', '{"message": "c"}', '--json'])).run_id;
    const d = (await s.json<RunDoc>(['run', 'echo-chain', '{"message": "d"}', '--json'])).run_id;
    ok(expect, await s.run(['runs', 'verify', c]));
    const db = new Database(s.db);
    expect(db.prepare(`UPDATE workflow_runs SET trigger_data = ? WHERE id = ?`).run(JSON.stringify({ message: 'forged' }), c).changes).toBe(1);
    expect(db.prepare(`UPDATE step_executions SET inputs = ? WHERE run_id = ? AND step_id = 'step1'`).run(JSON.stringify({ message: 'forged' }), d).changes).toBe(1);
    db.close();
    const input = await s.run(['runs', 'verify', c]);
    expect(input.code, show(input)).toBe(3);
    expect(input.stderr).toContain("the run's input does not match the digest in its RUN_CREATED event");
    const inputs = await s.run(['runs', 'verify', d]);
    expect(inputs.code, show(inputs)).toBe(3);
    expect(inputs.stderr).toContain("inputs of step 'step1' do not match the digest in its STEP_COMPLETED event");
    // Export signs nothing the chain does not vouch for.
    const exported = await s.run(['runs', 'export', c, '-o', 'c.tar']);
    expect(exported.code, show(exported)).toBe(3);
    expect(exported.stderr).toContain("the run's input does not match");
  });

  test('aliases: swarm-run, swarm-agent and swarm-workflow behave like the swarm subcommands', async ({ expect }) => {
    const s = await withExamples();
    const r = ok(expect, await s.run(['echo-chain', '{"message": "Hello Swarm!"}'], { bin: 'swarm-run' }));
    expect(JSON.parse(r.stdout)).toEqual(ECHO_CHAIN_OUTPUT);
    expect(r.stderr).toMatch(/run [0-9a-f]{12} completed/);

    const [agentAlias, agentMain, wfAlias, wfMain] = await Promise.all([
      s.run(['list'], { bin: 'swarm-agent' }),
      s.run(['agent', 'list']),
      s.run(['list'], { bin: 'swarm-workflow' }),
      s.run(['workflow', 'list']),
    ]);
    ok(expect, agentAlias);
    ok(expect, wfAlias);
    expect(agentAlias.stdout).toBe(agentMain.stdout);
    expect(agentAlias.stdout).toMatch(/^echo\s+1\.0\.0\s+builtin/m);
    expect(wfAlias.stdout).toBe(wfMain.stdout);
    expect(wfAlias.stdout).toMatch(/^echo-chain\s+1\.0\.0\s+yes\s+2\s/m);
    const info = await s.json<{ id: string }>(['info', 'echo-chain', '--json'], { bin: 'swarm-workflow' });
    expect(info.id).toBe('echo-chain@1.0.0');
    // The alias's errors are the main command's errors.
    const bad = await s.run(['nosuch-workflow'], { bin: 'swarm-run' });
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toMatch(/^swarm: workflow 'nosuch-workflow' not found: no workflow of that name in the store /);
  });

  test('--version and --help', async ({ expect }) => {
    const s = makeSandbox();
    const pkg = JSON.parse(readFileSync(join(EXAMPLES.agents, '..', '..', 'package.json'), 'utf8')) as { version: string };
    const v = ok(expect, await s.run(['--version']));
    expect(v.stdout.trim()).toBe(pkg.version);
    const h = ok(expect, await s.run(['--help']));
    for (const cmd of ['run', 'runs', 'agent', 'workflow', 'worker', 'init', 'demo']) expect(h.stdout).toMatch(new RegExp(`^  ${cmd}\\b`, 'm'));
    expect(h.stdout).toContain('Exit codes:');
    const rh = ok(expect, await s.run(['runs', 'list', '--help']));
    expect(rh.stdout).toContain('--since');
    // --help touches no store.
    expect(existsSync(s.db)).toBe(false);
  });
});
