/**
 * Bad input at the `swarm` command line: each mistake gets a one-line message on stderr that names
 * what is wrong and where, the documented exit code, and nothing half-written in the store.
 * Real processes, real SQLite files. Build first: `npm run build`.
 */
import Database from 'better-sqlite3';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, describe, test, type ExpectStatic } from 'vitest';
import { cleanupSandboxes, examplesStore, lines, makeSandbox, show, type CliResult, type Sandbox } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

const EXIT = { OK: 0, INVALID: 2, VERIFY: 3, EXEC: 4, RESUME: 5, POLICY: 6 } as const;
const DOCUMENTED_EXIT_CODES = [0, 2, 3, 4, 5, 6, 130];

/** The command failed with `code`, wrote one line to stderr (returned), and nothing to stdout. */
function oneLineError(expect: ExpectStatic, r: CliResult, code: number): string {
  expect(r.code, show(r)).toBe(code);
  expect(lines(r.stderr), `stderr should be one line:\n${r.stderr}`).toHaveLength(1);
  expect(r.stdout, show(r)).toBe('');
  return r.stderr.trim();
}

/** Commander's usage errors: the error line, optionally followed by the "(run with --help …)" hint. */
function usageError(expect: ExpectStatic, r: CliResult): string {
  expect(r.code, show(r)).toBe(EXIT.INVALID);
  const [first, ...rest] = lines(r.stderr);
  expect(rest, show(r)).toEqual([]);
  return first ?? '';
}

async function withExamples(): Promise<Sandbox> {
  const s = makeSandbox();
  s.copyStore(await examplesStore());
  return s;
}

function count(s: Sandbox, table: string): number {
  return s.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`)[0]!.n;
}

/** A store file's bytes and its directory listing: to check a failed command changed neither. */
function snapshot(file: string): { bytes: Buffer; dir: string[] } {
  return { bytes: readFileSync(file), dir: readdirSync(dirname(file)).sort() };
}

function esc(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The 1-based line of the first line of `text` containing `needle`. */
function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`'${needle}' is not in the text`);
  return i + 1;
}

describe.concurrent('swarm CLI errors', () => {
  test('malformed YAML in agent.yaml: exit 2, one line naming file:line; nothing registered', async ({ expect }) => {
    const s = makeSandbox();
    const text = 'name: broken\nversion: 1.0.0\nruntime:\n  type: builtin\n  entry: echo\ninputs: [unclosed\n  - name: x\n';
    const file = s.write('agents/broken/agent.yaml', text);
    const r = await s.run(['agent', 'register', 'agents/broken']);
    const msg = oneLineError(expect, r, EXIT.INVALID);
    expect(msg).toContain('invalid YAML');
    // The flow sequence opened on line 6 is never closed.
    expect(msg).toMatch(new RegExp(`^swarm: ${esc(file)}:[67]: invalid YAML: `));
    expect(await s.json<unknown[]>(['agent', 'list', '--json'])).toEqual([]);
  });

  test('malformed YAML in workflow.yaml and swarm.yaml: the message names file:line too', async ({ expect }) => {
    const s = makeSandbox();
    // Line 6 is indented one space too far (a parser may blame line 5, whose value it continues).
    const wf = s.write('workflows/w/workflow.yaml', 'name: w\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: echo\n     inputs: {}\n');
    const r = await s.run(['workflow', 'register', 'workflows/w']);
    expect.soft(oneLineError(expect, r, EXIT.INVALID)).toMatch(new RegExp(`^swarm: ${esc(wf)}:[56]: invalid YAML`));
    const p = makeSandbox();
    // Line 4 is indented one space: neither under concurrency nor at the top.
    const cfg = p.write('swarm.yaml', 'name: p\nconcurrency:\n  worker: 2\n run: 3\n');
    const c = await p.run(['agent', 'list']);
    expect.soft(oneLineError(expect, c, EXIT.INVALID)).toMatch(new RegExp(`^swarm: ${esc(cfg)}:4: invalid YAML`));
  });

  test('unknown field in agent.yaml: exit 2, one line naming file:line and the field; nothing registered', async ({ expect }) => {
    const s = makeSandbox();
    const top = 'name: extra\nversion: 1.0.0\nruntime: {type: builtin, entry: echo}\ncolour: red\n';
    const topFile = s.write('agents/extra/agent.yaml', top);
    const msg = oneLineError(expect, await s.run(['agent', 'register', 'agents/extra']), EXIT.INVALID);
    expect(msg).toContain(`${topFile}:${lineOf(top, 'colour')}: colour: unknown field`);

    const nested = 'name: nested\nversion: 1.0.0\nruntime:\n  type: builtin\n  entry: echo\n  colour: red\n';
    const nestedFile = s.write('agents/nested/agent.yaml', nested);
    const msg2 = oneLineError(expect, await s.run(['agent', 'register', 'agents/nested']), EXIT.INVALID);
    expect(msg2).toContain(`${nestedFile}:${lineOf(nested, 'colour')}: runtime.colour: unknown field`);
    expect(await s.json<unknown[]>(['agent', 'list', '--json'])).toEqual([]);
  });

  test('an unknown-field error lists the fields that are allowed', async ({ expect }) => {
    const s = makeSandbox();
    s.write('agents/extra/agent.yaml', 'name: extra\nversion: 1.0.0\nruntime: {type: builtin, entry: echo}\ncolour: red\n');
    const msg = oneLineError(expect, await s.run(['agent', 'register', 'agents/extra']), EXIT.INVALID);
    expect(msg).toMatch(/unknown field \(allowed: [^)]*\bname\b[^)]*\bruntime\b[^)]*\)/);
  });

  test('a workflow with a dependency cycle: exit 2, one line naming the steps of the cycle; nothing registered', async ({ expect }) => {
    const s = await withExamples();
    const text = [
      'name: loop',
      'version: 1.0.0',
      'steps:',
      '  - id: start',
      '    agent: echo@1.0.0',
      '    inputs: {message: go}',
      '  - id: alpha',
      '    agent: echo@1.0.0',
      '    depends_on: [gamma, start]',
      '  - id: beta',
      '    agent: echo@1.0.0',
      '    depends_on: [alpha]',
      '  - id: gamma',
      '    agent: echo@1.0.0',
      '    inputs: {message: "${steps.beta.outputs.echoed}"}',
      '',
    ].join('\n');
    const file = s.write('workflows/loop/workflow.yaml', text);
    const msg = oneLineError(expect, await s.run(['workflow', 'register', 'workflows/loop']), EXIT.INVALID);
    expect(msg).toContain(file);
    expect(msg).toContain('cycle');
    for (const step of ['alpha', 'beta', 'gamma']) expect(msg).toContain(step);
    expect(msg).not.toMatch(/\bstart\b/);
    expect((await s.json<Array<{ name: string }>>(['workflow', 'list', '--json'])).map((w) => w.name)).not.toContain('loop');
  });

  test('a workflow naming an unknown agent: exit 2, one line naming the step, file and line; nothing registered', async ({ expect }) => {
    const s = await withExamples();
    const text = 'name: ghostly\nversion: 1.0.0\nsteps:\n  - id: first\n    agent: echo@1.0.0\n    inputs: {message: hi}\n  - id: haunted\n    agent: ghost@1.0.0\n    depends_on: [first]\n';
    const file = s.write('workflows/ghostly/workflow.yaml', text);
    const msg = oneLineError(expect, await s.run(['workflow', 'register', 'workflows/ghostly']), EXIT.INVALID);
    expect(msg).toContain(`${file}:${lineOf(text, 'ghost@')}: steps[1].agent: step 'haunted': agent 'ghost@1.0.0' not found`);
    expect((await s.json<Array<{ name: string }>>(['workflow', 'list', '--json'])).map((w) => w.name)).not.toContain('ghostly');
  });

  test('unknown agent in a step declared before the step it depends on: the index and line are still that step’s', async ({ expect }) => {
    const s = await withExamples();
    const text = 'name: ghostly\nversion: 1.0.0\nsteps:\n  - id: haunted\n    agent: ghost@1.0.0\n    depends_on: [first]\n  - id: first\n    agent: echo@1.0.0\n    inputs: {message: hi}\n';
    const file = s.write('workflows/ghostly/workflow.yaml', text);
    const msg = oneLineError(expect, await s.run(['workflow', 'register', 'workflows/ghostly']), EXIT.INVALID);
    expect(msg).toContain(`step 'haunted': agent 'ghost@1.0.0' not found`);
    // 'haunted' is steps[0], and its agent is on the line of 'ghost@'.
    expect(msg).toContain(`${file}:${lineOf(text, 'ghost@')}: steps[0].agent:`);
  });

  test('run of an unknown workflow: exit 2, one line naming it; no run created', async ({ expect }) => {
    const s = await withExamples();
    const msg = oneLineError(expect, await s.run(['run', 'no-such-flow', '{}']), EXIT.INVALID);
    expect(msg).toMatch(/^swarm: workflow 'no-such-flow' not found: no workflow of that name in the store \S+swarm\.db; 'swarm workflow list' shows what is registered$/);
    // A near name is suggested.
    expect(oneLineError(expect, await s.run(['run', 'echo-chian', '{}']), EXIT.INVALID)).toBe("swarm: workflow 'echo-chian' not found: did you mean 'echo-chain'?");
    const v = oneLineError(expect, await s.run(['run', 'echo-chain@2.0.0', '{"message": "x"}']), EXIT.INVALID);
    expect(v).toBe("swarm: workflow 'echo-chain@2.0.0' not found: registered versions: 1.0.0");
    expect(count(s, 'workflow_runs')).toBe(0);
  });

  test('run input that is not JSON (inline, stdin, @file): exit 2, one line naming the source; no run created', async ({ expect }) => {
    const s = await withExamples();
    const [inline, stdin, missing, badFile] = await Promise.all([
      s.run(['run', 'echo-chain', "{message: 'hi'}"]),
      s.run(['run', 'echo-chain', '-'], { input: 'not json at all' }),
      s.run(['run', 'echo-chain', '@nope.json']),
      (async () => {
        s.write('bad.json', '{"message": "unterminated');
        return s.run(['run', 'echo-chain', '@bad.json']);
      })(),
    ]);
    expect(oneLineError(expect, inline, EXIT.INVALID)).toMatch(/^swarm: the input argument is not valid JSON: /);
    expect(oneLineError(expect, stdin, EXIT.INVALID)).toMatch(/^swarm: standard input is not valid JSON: /);
    expect(oneLineError(expect, missing, EXIT.INVALID)).toBe('swarm: cannot read input file nope.json: ENOENT');
    expect(oneLineError(expect, badFile, EXIT.INVALID)).toMatch(/^swarm: bad\.json is not valid JSON: /);
    expect(count(s, 'workflow_runs')).toBe(0);
  });

  test("run input that does not match the workflow's inputs: exit 2, one line naming the field; no run created", async ({ expect }) => {
    const s = await withExamples();
    const [wrongType, missing, notObject] = await Promise.all([
      s.run(['run', 'echo-chain', '{"message": 42}']),
      s.run(['run', 'echo-chain', '{"msg": "typo"}']),
      s.run(['run', 'echo-chain', '["message"]']),
    ]);
    expect(oneLineError(expect, wrongType, EXIT.INVALID)).toMatch(/^swarm: input for workflow echo-chain: .*message.* string/);
    expect(oneLineError(expect, missing, EXIT.INVALID)).toMatch(/^swarm: input for workflow echo-chain: .*message.*required/);
    expect(oneLineError(expect, notObject, EXIT.INVALID)).toMatch(/^swarm: run input must be a JSON object/);
    expect(count(s, 'workflow_runs')).toBe(0);
    expect(count(s, 'events')).toBe(0);
  });

  test('an unknown run id: exit 2 and one line naming it, for every runs subcommand', async ({ expect }) => {
    const s = await withExamples();
    const id = '01234567-89ab-7def-8123-456789abcdef';
    const results = await Promise.all(
      [['show', id], ['events', id], ['logs', id], ['logs', id, 'step1'], ['cancel', id], ['retry', id], ['resume', id], ['verify', id], ['show', 'zzzz']].map((args) => s.run(['runs', ...args])),
    );
    for (const r of results) expect(oneLineError(expect, r, EXIT.INVALID)).toMatch(/^swarm: run '(01234567-89ab-7def-8123-456789abcdef|zzzz)' not found/);
    expect(count(s, 'workflow_runs')).toBe(0);
  });

  test('a disabled workflow: run exits 6 with one line; no run created; enabling it again works', async ({ expect }) => {
    const s = await withExamples();
    expect(ok(expect, await s.run(['workflow', 'disable', 'echo-chain'])).stdout.trim()).toBe('echo-chain disabled');
    const msg = oneLineError(expect, await s.run(['run', 'echo-chain', '{"message": "x"}']), EXIT.POLICY);
    expect(msg).toBe("swarm: workflow echo-chain is disabled; enable it with 'swarm workflow enable echo-chain'");
    expect(count(s, 'workflow_runs')).toBe(0);
    const list = await s.json<Array<{ name: string; enabled: boolean }>>(['workflow', 'list', '--json']);
    expect(list.find((w) => w.name === 'echo-chain')?.enabled).toBe(false);
    ok(expect, await s.run(['workflow', 'enable', 'echo-chain']));
    ok(expect, await s.run(['run', 'echo-chain', '{"message": "x"}', '-d']));
    expect(count(s, 'workflow_runs')).toBe(1);
  });

  test('runs resume (and retry) of a completed run: exit 5, one line; nothing written', async ({ expect }) => {
    const s = await withExamples();
    const r = ok(expect, await s.run(['run', 'echo-chain', '{"message": "x"}', '--json']));
    const id = (JSON.parse(r.stdout) as { run_id: string }).run_id;
    const events = count(s, 'events');
    const resume = oneLineError(expect, await s.run(['runs', 'resume', id]), EXIT.RESUME);
    expect(resume).toBe(`swarm: run ${id} is already completed; nothing to resume`);
    const retry = oneLineError(expect, await s.run(['runs', 'retry', id]), EXIT.RESUME);
    expect(retry).toContain(`run ${id} is completed`);
    expect(count(s, 'events')).toBe(events);
    expect(s.query<{ status: string }>('SELECT status FROM workflow_runs WHERE id = ?', id)).toEqual([{ status: 'completed' }]);
  });

  test('a store file that is not a Swarm database: exit 2, one line naming the file; the file is left alone', async ({ expect }) => {
    const s = makeSandbox();
    s.write(s.db, 'this is not a database, it is a shopping list: eggs, milk\n');
    const before = snapshot(s.db);
    const [list, run] = await Promise.all([s.run(['agent', 'list']), s.run(['run', 'echo-chain', '{"message": "x"}'])]);
    for (const r of [list, run]) expect(oneLineError(expect, r, EXIT.INVALID)).toBe(`swarm: ${s.db} is not a Swarm database: it is not a SQLite database`);
    expect(snapshot(s.db)).toEqual(before);
  });

  test("another application's SQLite file as the store: exit 2, one line naming it; the file is not modified", async ({ expect }) => {
    const other = makeSandbox();
    const made = other.path('customers.db');
    const db = new Database(made);
    db.exec('CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)');
    db.close();
    other.write(other.db, '');
    writeFileSync(other.db, readFileSync(made));
    const before = snapshot(other.db);
    const msg = oneLineError(expect, await other.run(['agent', 'list']), EXIT.INVALID);
    expect(msg).toBe(`swarm: ${other.db} is not a Swarm database: it has tables (customers) but no Swarm schema`);
    const check = new Database(other.db, { readonly: true });
    const journal = check.pragma('journal_mode', { simple: true }) as string;
    check.close();
    expect(journal, 'Swarm switched the foreign database to WAL mode').toBe('delete');
    expect(snapshot(other.db)).toEqual(before);
  });

  test('a store from a newer schema: exit 2, one line naming the versions; nothing migrated or written', async ({ expect }) => {
    const s = await withExamples();
    const db = new Database(s.db);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, 0)').run('from the future');
    db.close();
    const migrations = s.query('SELECT * FROM schema_migrations ORDER BY version');
    const [list, run] = await Promise.all([s.run(['agent', 'list']), s.run(['run', 'echo-chain', '{"message": "x"}'])]);
    for (const r of [list, run]) {
      const msg = oneLineError(expect, r, EXIT.INVALID);
      expect(msg).toContain(`the store at ${s.db} records schema migration 999 ('from the future') that this Swarm does not know`);
      expect(msg).toContain('open it with that build (or upgrade Swarm)');
    }
    expect(s.query('SELECT * FROM schema_migrations ORDER BY version')).toEqual(migrations);
    expect(count(s, 'workflow_runs')).toBe(0);
  });

  test('a store migrated by another build (a migration of the same number under another name): exit 2, one line naming the version and both names; nothing written', async ({ expect }) => {
    const s = await withExamples();
    const db = new Database(s.db);
    db.prepare('UPDATE schema_migrations SET name = ? WHERE version = 8').run('work queues');
    db.close();
    const migrations = s.query('SELECT * FROM schema_migrations ORDER BY version');
    const r = await s.run(['run', 'echo-chain', '{"message": "x"}']);
    expect(oneLineError(expect, r, EXIT.INVALID)).toBe(
      `swarm: the store at ${s.db} records schema migration 8 as 'work queues', but this Swarm's migration 8 is 'emitted events': another build of Swarm migrated it, and its tables may not be the ones this build expects; open it with that build, or use another store`,
    );
    expect(s.query('SELECT * FROM schema_migrations ORDER BY version')).toEqual(migrations);
    expect(count(s, 'workflow_runs')).toBe(0);
  });

  test('unknown command, unknown option, missing argument: exit 2 with the error first', async ({ expect }) => {
    const s = makeSandbox();
    const [cmd, opt, sub, arg] = await Promise.all([
      s.run(['frobnicate']),
      s.run(['run', '--frobnicate', 'x']),
      s.run(['runs', 'explode']),
      s.run(['run']),
    ]);
    expect(usageError(expect, cmd)).toBe("swarm: unknown command 'frobnicate' (see --help)");
    expect(usageError(expect, opt)).toBe("swarm: unknown option '--frobnicate' (see --help)");
    // Commander's suggestion stays on the error's one line.
    expect(usageError(expect, sub)).toBe("swarm: unknown command 'explode' (Did you mean export?) (see --help)");
    expect(usageError(expect, arg)).toBe("swarm: missing required argument 'workflow' (see --help)");
    for (const r of [cmd, opt, sub, arg]) expect(r.stdout).toBe('');
  });

  test('bad option values (--status, --since, --limit): exit 2, one line naming the option and value', async ({ expect }) => {
    const s = makeSandbox();
    const [status, since, limit] = await Promise.all([
      s.run(['runs', 'list', '--status', 'exploded']),
      s.run(['runs', 'list', '--since', 'last tuesday']),
      s.run(['runs', 'list', '-n', '0']),
    ]);
    expect(oneLineError(expect, status, EXIT.INVALID)).toMatch(/^swarm: --status 'exploded' is not one of queued, running, waiting, completed, failed, cancelled$/);
    expect(oneLineError(expect, since, EXIT.INVALID)).toContain("--since 'last tuesday' is not a date");
    expect(oneLineError(expect, limit, EXIT.INVALID)).toContain("--limit must be a positive whole number, not '0'");
  });

  test('registering changed content under the same version: exit 2, one line; the registered version is kept', async ({ expect }) => {
    const s = makeSandbox();
    s.write('agents/mine/agent.yaml', 'name: mine\nversion: 1.0.0\ndescription: first\nruntime: {type: builtin, entry: echo}\n');
    ok(expect, await s.run(['agent', 'register', 'agents/mine']));
    s.write('agents/mine/agent.yaml', 'name: mine\nversion: 1.0.0\ndescription: second\nruntime: {type: builtin, entry: echo}\n');
    const msg = oneLineError(expect, await s.run(['agent', 'register', 'agents/mine']), EXIT.INVALID);
    expect(msg).toBe('swarm: agent mine@1.0.0 is already registered with different content; bump its version or use --force');
    expect((await s.json<{ description: string }>(['agent', 'info', 'mine', '--json'])).description).toBe('first');
  });

  test('agent create with an unknown template, a bad name, or over an existing package: exit 2, one line; nothing created', async ({ expect }) => {
    const s = makeSandbox();
    const [tpl, name] = await Promise.all([s.run(['agent', 'create', 'x', '--template', 'cobol']), s.run(['agent', 'create', 'Bad Name'])]);
    expect(oneLineError(expect, tpl, EXIT.INVALID)).toBe("swarm: template 'cobol' not found: agent templates: basic, python, bash, builtin");
    expect(oneLineError(expect, name, EXIT.INVALID)).toContain("'Bad Name' is not a valid name");
    expect(s.exists('agents/x')).toBe(false);
    expect(s.exists('agents/Bad Name')).toBe(false);
    s.write('agents/taken/keep.txt', 'mine');
    const taken = oneLineError(expect, await s.run(['agent', 'create', 'taken']), EXIT.INVALID);
    expect(taken).toBe(`swarm: ${s.path('agents/taken')} already exists and is not empty`);
    expect(readdirSync(s.path('agents/taken'))).toEqual(['keep.txt']);
  });

  test('init in an existing project: exit 2, one line; the project is left alone', async ({ expect }) => {
    const s = makeSandbox();
    const cfg = s.write('swarm.yaml', 'name: mine\n');
    const msg = oneLineError(expect, await s.run(['init', '.']), EXIT.INVALID);
    expect(msg).toBe(`swarm: ${cfg} already exists: this is already a Swarm project`);
    expect(s.read('swarm.yaml')).toBe('name: mine\n');
    expect(s.exists('agents')).toBe(false);
  });

  test('output to a closed pipe (swarm … | head) ends quietly, not with a stack trace', async ({ expect }) => {
    const s = await withExamples();
    const { child, done } = s.start(['agent', 'list']);
    child.stdout?.destroy();
    const r = await done;
    expect(r.stderr, show(r)).not.toMatch(/Unhandled 'error' event|EPIPE|\n\s+at /);
    expect(DOCUMENTED_EXIT_CODES, show(r)).toContain(r.code);
  });
});

function ok(expect: ExpectStatic, r: CliResult): CliResult {
  expect(r.code, show(r)).toBe(0);
  return r;
}
