/**
 * Operations from the command line, as real processes: `swarm serve` and `swarm worker` logging JSON
 * (every stdout line an object; the lines about a run carry its run and step ids), and `swarm doctor`
 * on a healthy project (exit 0), on a broken one (a store from a newer schema, a master key file
 * others may read, a run stuck behind a SIGKILLed worker: exit 7, the right checks failing), and on
 * PostgreSQL (the clock check measures the database's clock).
 *
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import Database from 'better-sqlite3';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DOCTOR_CHECKS, type DoctorReport } from '../src/observability/doctor.js';
import { cleanupSandboxes, examplesStore, makeSandbox, show, until, type CliResult, type Sandbox } from './helpers/cli.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';

afterAll(async () => {
  cleanupSandboxes();
  await stopPgTestServer();
});

type Json = Record<string, unknown>;

async function examples(env: Record<string, string> = {}): Promise<Sandbox> {
  const s = makeSandbox({ env: { SWARM_SANDBOX: 'none', ...env } });
  s.copyStore(await examplesStore());
  return s;
}

/** Every line of stdout parsed as JSON (a line that is not fails the test, naming it). */
function jsonLines(stdout: string): Json[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Json;
      } catch {
        throw new Error(`a stdout line is not JSON: ${l}`);
      }
    });
}

async function doctor(s: Sandbox, env: Record<string, string> = {}): Promise<{ r: CliResult; report: DoctorReport; by: (id: string) => DoctorReport['checks'][number] }> {
  const r = await s.run(['doctor', '--json'], { env });
  let report: DoctorReport;
  try {
    report = JSON.parse(r.stdout) as DoctorReport;
  } catch {
    throw new Error(`doctor --json printed no JSON: ${show(r)}`);
  }
  // The shape every caller relies on: the ten checks in order, each with its four fields.
  expect(report.checks.map((c) => c.id)).toEqual([...DOCTOR_CHECKS]);
  for (const c of report.checks) {
    expect(['ok', 'warn', 'fail']).toContain(c.status);
    expect(typeof c.detail === 'string' && c.detail.length > 0 && !c.detail.includes('\n')).toBe(true);
    expect(typeof c.hint).toBe('string');
    if (c.status !== 'ok') expect(c.hint.length).toBeGreaterThan(0);
  }
  expect(report.ok).toBe(report.checks.every((c) => c.status !== 'fail'));
  return { r, report, by: (id) => report.checks.find((c) => c.id === id) as DoctorReport['checks'][number] };
}

describe('swarm doctor', () => {
  it('a healthy SQLite project: exit 0, the JSON report and the table', async () => {
    const s = await examples();
    const { r, report, by } = await doctor(s);
    expect(r.code, show(r)).toBe(0);
    expect(report.ok).toBe(true);
    expect(by('store').status).toBe('ok');
    expect(by('migrations')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^schema version \d+ \(current\)$/) as unknown });
    expect(by('master-key').status).toBe('ok');
    expect(by('clock').detail).toMatch(/not applicable/);
    expect(by('stuck-runs').status).toBe('ok');
    const text = await s.run(['doctor']);
    expect(text.code, show(text)).toBe(0);
    expect(text.stdout).toMatch(/^check\s+status\s+detail$/m);
    expect(text.stdout).toMatch(/^stuck-runs\s+ok\s+/m);
    expect(text.stdout).toMatch(/no check failed/);
  });

  it('a store from a newer schema and a key file others may read: those two checks fail, exit 7', async () => {
    const s = await examples();
    const db = new Database(s.db);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(999, 'from the future', Date.now());
    db.close();
    chmodSync(join(s.home ?? '', 'master.key'), 0o644);
    const { r, by } = await doctor(s);
    expect(r.code, show(r)).toBe(7);
    expect(by('store').status).toBe('ok');
    expect(by('migrations')).toMatchObject({ status: 'fail', detail: expect.stringContaining("999 ('from the future')") as unknown });
    expect(by('master-key')).toMatchObject({ status: 'fail', hint: expect.stringMatching(/^chmod 600 /) as unknown });
    // Nothing was changed: the newer migration is still recorded, the file's mode is as it was.
    expect(s.query<{ n: number }>('SELECT COUNT(*) AS n FROM schema_migrations WHERE version = 999')[0]?.n).toBe(1);
  });

  it('a store it cannot use is a failed store check, exit 7: a home under a regular file, a file that is not a Swarm database', async () => {
    // SWARM_HOME through a regular file: the store's directory cannot exist (ENOTDIR, not "no store yet").
    const s = makeSandbox({ env: { SWARM_SANDBOX: 'none' } });
    s.write('a-file', 'not a directory');
    const through = await doctor(s, { SWARM_HOME: join(s.root, 'a-file', 'home') });
    expect(through.r.code, show(through.r)).toBe(7);
    expect(through.by('store')).toMatchObject({ status: 'fail', detail: expect.stringContaining('ENOTDIR while looking for the file') as unknown, hint: expect.stringContaining('read and write') as unknown });
    expect(through.by('migrations').status).toBe('warn');
    // A file that is not SQLite: named as such, with a hint that fits.
    s.write('junk-home/swarm.db', 'random bytes, not a database '.repeat(200));
    const junk = await doctor(s, { SWARM_HOME: join(s.root, 'junk-home') });
    expect(junk.r.code, show(junk.r)).toBe(7);
    expect(junk.by('store')).toMatchObject({ status: 'fail', detail: expect.stringContaining('is not a Swarm database') as unknown, hint: expect.stringContaining('point SWARM_HOME') as unknown });
  });

  it('on PostgreSQL: the clock check measures the database clock; SWARM_MASTER_KEY is checked against the store', async () => {
    const url = await (await pgTestServer()).createDatabase();
    const s = makeSandbox({ env: { SWARM_SANDBOX: 'none', SWARM_DATABASE_URL: url } });
    const { r, by } = await doctor(s);
    expect(r.code, show(r)).toBe(0);
    // The URL shown without its password.
    expect(by('store').detail).toMatch(/^the store postgres:\/\/\S+ is reachable \(postgres\)$/);
    const password = new URL(url).password;
    expect(by('store').detail).toContain(password ? ':***@' : '@');
    if (password) expect(by('store').detail).not.toContain(password);
    expect(by('migrations').status).toBe('ok');
    expect(by('clock').detail).toMatch(/^the database clock is \d+ ms (ahead of|behind) this machine’s \(round trip \d+ ms\)$/);
    // No key anywhere and no secrets in the store: a warning, not a failure.
    expect(by('master-key').status).toBe('warn');
    // SWARM_MASTER_KEY: the first key the store sees is its key; another one is refused, a malformed one too.
    const first = await doctor(s, { SWARM_MASTER_KEY: 'a1'.repeat(32) });
    expect(first.by('master-key')).toMatchObject({ status: 'ok', detail: 'from SWARM_MASTER_KEY, matches the store' });
    const [other, malformed] = await Promise.all([doctor(s, { SWARM_MASTER_KEY: 'b2'.repeat(32) }), doctor(s, { SWARM_MASTER_KEY: 'abc' })]);
    expect(other.r.code, show(other.r)).toBe(7);
    expect(other.by('master-key')).toMatchObject({ status: 'fail', detail: 'the key from SWARM_MASTER_KEY is not the one the store was set up with' });
    expect(malformed.by('master-key').detail).toMatch(/SWARM_MASTER_KEY: a hex master key must be 64 hex digits/);
  });
});

describe('JSON logs', () => {
  it('swarm worker --log-format json: every stdout line is JSON, step and run lines carry their ids; killed mid-step, doctor finds the stuck run (exit 7)', async () => {
    const s = await examples();
    s.write('agents/napper/agent.yaml', 'name: napper\nversion: 1.0.0\nruntime:\n  type: builtin\n  entry: sleep\ninputs:\n  - name: ms\n    type: integer\n');
    s.write('workflows/nap/workflow.yaml', 'name: nap\nversion: 1.0.0\nsteps:\n  - id: doze\n    agent: napper\n    inputs:\n      ms: 120000\n');
    for (const args of [['agent', 'register', 'agents/napper'], ['workflow', 'register', 'workflows/nap']]) {
      const r = await s.run(args);
      expect(r.code, show(r)).toBe(0);
    }
    const started = await Promise.all([s.run(['run', 'echo-chain', '{"message": "hi"}', '--detach']), s.run(['run', 'nap', '--detach'])]);
    for (const r of started) expect(r.code, show(r)).toBe(0);
    const [echoId, napId] = started.map((r) => r.stdout.trim());

    const worker = s.start(['worker', '--log-format', 'json'], { timeoutMs: 60_000 });
    let out = '';
    worker.child.stdout?.on('data', (d: Buffer | string) => (out += String(d)));
    await until('the echo-chain run to finish', async () => (/"msg":"run \S+ completed"/.test(out) ? true : undefined), 30_000, 50);
    await until('the nap step to run', async () => s.query<{ status: string }>("SELECT status FROM step_executions WHERE run_id = ? AND step_id = 'doze'", napId)[0]?.status === 'running' || undefined, 30_000, 50);
    worker.child.kill('SIGKILL');
    const w = await worker.done;
    expect(w.signal).toBe('SIGKILL');
    expect(w.stderr, show(w)).toBe('');

    const lines = jsonLines(w.stdout);
    for (const l of lines) {
      expect(['info', 'warn', 'error']).toContain(l.level);
      expect(typeof l.time === 'string' && typeof l.msg === 'string').toBe(true);
    }
    expect(lines[0]?.msg).toMatch(/^worker w-\S+ started: concurrency /);
    const steps = lines.filter((l) => l.run_id === echoId && typeof l.step_id === 'string');
    expect(steps.map((l) => [l.step_id, l.attempt, l.status, l.workflow])).toEqual([
      ['step1', 1, 'completed', 'echo-chain'],
      ['step2', 1, 'completed', 'echo-chain'],
    ]);
    expect(lines.find((l) => l.run_id === echoId && l.step_id === undefined && /completed$/.test(l.msg as string))).toMatchObject({ workflow: 'echo-chain', status: 'completed' });

    // The worker died holding the nap step's lease: nothing is left to finish the run.
    const { r, by } = await doctor(s);
    expect(r.code, show(r)).toBe(7);
    expect(by('stuck-runs')).toMatchObject({ status: 'fail', detail: expect.stringContaining(napId ?? '?') as unknown });
    expect(by('stuck-runs').hint).toMatch(/swarm worker/);
    expect(by('workers')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/^no live worker, and 1 run\(s\) are queued or running/) as unknown });
  });

  it('swarm serve (SWARM_LOG_FORMAT=json): the start-up line, the run and step lines, the shutdown, all JSON on stdout', async () => {
    const s = await examples({ SWARM_LOG_FORMAT: 'json' });
    const { child, done } = s.start(['serve', '--port', '0'], { timeoutMs: 60_000 });
    let out = '';
    child.stdout?.on('data', (d: Buffer | string) => (out += String(d)));
    const url = await until('the start-up line', async () => /listening on (http:\/\/[^\s"]+)/.exec(out)?.[1], 20_000, 50);
    const res = await fetch(`${url}/api/v1/workflows/echo-chain/runs?wait=30s`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: { message: 'hi' } }) });
    const run = (await res.json()) as Json;
    expect(run.status).toBe('completed');
    await until('the run line', async () => (out.includes(`"msg":"run ${String(run.run_id)} completed"`) ? true : undefined), 10_000, 50);
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr, show(r)).toBe('');
    const lines = jsonLines(r.stdout);
    expect(lines[0]).toMatchObject({ level: 'info', url, store: 'sqlite' });
    const about = lines.filter((l) => l.run_id === run.run_id);
    expect(about.filter((l) => l.step_id !== undefined).map((l) => [l.step_id, l.status])).toEqual([['step1', 'completed'], ['step2', 'completed']]);
    // The workflow's on-complete handler message, then the run's own line, both about the run.
    expect(about.filter((l) => l.step_id === undefined).map((l) => l.msg)).toEqual(['echo-chain finished: Step 2 received: hi', `run ${String(run.run_id)} completed`]);
    expect(lines.at(-1)?.msg).toMatch(/^swarm serve stopped/);
  });

  it('a log format that is neither text nor json: exit 2, naming the flag or the variable', async () => {
    const s = makeSandbox();
    const [flag, variable] = await Promise.all([s.run(['worker', '--log-format', 'xml']), s.run(['serve', '--port', '0'], { env: { SWARM_LOG_FORMAT: 'xml' } })]);
    expect(flag.code, show(flag)).toBe(2);
    expect(flag.stderr).toMatch(/--log-format must be one of text, json, not 'xml'/);
    expect(variable.code, show(variable)).toBe(2);
    expect(variable.stderr).toMatch(/SWARM_LOG_FORMAT='xml' must be one of text, json/);
  });
});
