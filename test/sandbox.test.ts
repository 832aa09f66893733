import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '../src/config/config.js';
import { ManifestError } from '../src/core/errors.js';
import { pidAlive } from '../src/engine/reaper.js';
import { probeBubblewrap } from '../src/sandbox/sandbox.js';
import type { Swarm } from '../src/swarm.js';
import { openProject, removeProject, runCli, spawnCli, tempProject, until, writeAgent, writeWorkflow } from './helpers/project.js';
import { agentPids, leftoverCgroups } from './helpers/processes.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Driver = 'none' | 'bubblewrap';

async function setup(sandbox: Driver, env: Record<string, string> = {}, memoryCgroups = true): Promise<{ dir: string; swarm: Swarm }> {
  const dir = tempProject(`name: test\nsandbox: ${sandbox}\n`);
  const swarm = await openProject(dir, { env: { SWARM_HOME: join(dir, '.swarm'), ...env }, overrides: { memoryCgroups } });
  cleanups.push(() => removeProject(dir));
  cleanups.push(() => swarm.close());
  return { dir, swarm };
}

/** A bash agent and a one-step workflow `wf-<name>` that uses it. */
async function bashStep(swarm: Swarm, dir: string, name: string, script: string, extra = ''): Promise<string> {
  writeAgent(dir, name, `name: ${name}\nversion: 1.0.0\nruntime:\n  type: bash\n  entry: run.sh\n${extra}`, { 'run.sh': `#!/usr/bin/env bash\n${script}\n` });
  await swarm.registerAgent(join(dir, 'agents', name));
  await swarm.registerWorkflow(writeWorkflow(dir, `wf-${name}`, `name: wf-${name}\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: ${name}@1.0.0\n    inputs: { other: "\${trigger.other}" }\n`));
  return `wf-${name}`;
}

/** Try what a hostile agent would: read the store and another run's files, write its own package. */
const PROBE = `other=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["other"])' "$1")
try() { if eval "$1" >/dev/null 2>&1; then echo true; else echo false; fi; }
db=$(try "head -c 16 '${'$'}{SWARM_DB_FILE}'")
prev=$(try "cat '$other'")
pkg=$(try "echo x > ./planted.txt")
tmp=$(try "echo x > /tmp/mine.txt && cat /tmp/mine.txt")
printf '{"read_db": %s, "read_other_run": %s, "wrote_package": %s, "wrote_tmp": %s}' "$db" "$prev" "$pkg" "$tmp" > "$2"`;

const bwrap = probeBubblewrap();

describe('sandbox drivers', () => {
  it('bubblewrap works on this machine (the CI installs it)', () => {
    expect(bwrap).toEqual({ ok: true, path: expect.stringMatching(/bwrap$/) as unknown });
  });

  it('sandbox: and SWARM_SANDBOX are validated; the default is auto, the environment overrides the file', () => {
    const dir = tempProject('name: test\nsandbox: none\n');
    cleanups.push(() => removeProject(dir));
    expect(resolveConfig({ cwd: dir }).sandbox).toBe('none');
    expect(resolveConfig({ cwd: dir, env: { SWARM_SANDBOX: 'bubblewrap' } }).sandbox).toBe('bubblewrap');
    expect(resolveConfig({ cwd: dir, env: { SWARM_SANDBOX: 'bwrap' } }).sandbox).toBe('bwrap');
    expect(() => resolveConfig({ cwd: dir, env: { SWARM_SANDBOX: 'docker' } })).toThrow(/SWARM_SANDBOX='docker' must be one of auto, bubblewrap, bwrap, none/);
    expect(() => resolveConfig({ cwd: dir, env: { SWARM_MEMORY_CGROUPS: 'no' } })).toThrow(/SWARM_MEMORY_CGROUPS='no' must be 'on' or 'off'/);
    const bad = tempProject('name: test\nsandbox: maybe\n');
    cleanups.push(() => removeProject(bad));
    expect(() => resolveConfig({ cwd: bad })).toThrow(/swarm\.yaml:2: sandbox: must be one of "auto", "bubblewrap", "bwrap", "none"/);
    const plain = tempProject();
    cleanups.push(() => removeProject(plain));
    expect(resolveConfig({ cwd: plain })).toMatchObject({ sandbox: 'auto', memoryCgroups: true });
  });

  it.each<[Driver, boolean]>([
    ['bubblewrap', false],
    ['none', true],
  ])('under %s an agent reading the store, another run’s work dir and writing its package: %s', async (driver, reachable) => {
    const { dir, swarm } = await setup(driver);
    // A failed run keeps its work directory: the file a later agent must not see.
    const leak = await bashStep(swarm, dir, 'leak', 'echo "private" > "$SWARM_WORK_DIR/result.txt"; exit 1');
    const first = await swarm.startRun(leak, { other: '' });
    expect((await swarm.runToCompletion(first)).run.status).toBe('failed');
    const otherFile = join(dir, '.swarm', 'work', first, 's', '1', 'result.txt');
    expect(readFileSync(otherFile, 'utf8')).toBe('private\n');

    const wf = await bashStep(swarm, dir, 'probe', PROBE.replace('${SWARM_DB_FILE}', join(dir, '.swarm', 'swarm.db')));
    const r = await swarm.runToCompletion(await swarm.startRun(wf, { other: otherFile }));
    expect(r.run.status).toBe('completed');
    expect(r.steps[0]?.outputs).toEqual({ read_db: reachable, read_other_run: reachable, wrote_package: reachable, wrote_tmp: true });
    expect(existsSync(join(dir, 'agents', 'probe', 'planted.txt'))).toBe(reachable);
  });

  it.each<Driver>(['bubblewrap', 'none'])('under %s the agent sees only the allow-listed environment and its declared env', async (driver) => {
    const saved = { ...process.env };
    // The worker's own environment holds keys an agent must never see.
    Object.assign(process.env, { OPENAI_API_KEY: 'sk-worker-only', SWARM_DATABASE_URL: 'postgres://u:p@db/swarm', SWARM_MASTER_KEY: 'master', SWARM_SECRET_TOKEN: 'tok-in-env' });
    cleanups.push(() => {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    });
    const { dir, swarm } = await setup(driver, { SWARM_SECRET_TOKEN: 's3cr3t', OPENAI_API_KEY: 'sk-worker-only' });
    const wf = await bashStep(
      swarm,
      dir,
      'envy',
      // The environment the agent was started with (what a shell or interpreter adds is not from the worker).
      `cp /proc/$$/environ "$SWARM_WORK_DIR/environ"\npython3 -c 'import json,sys; json.dump(dict(l.split("=", 1) for l in open(sys.argv[1]).read().split("\\0") if l), open(sys.argv[2], "w"))' "$SWARM_WORK_DIR/environ" "$2"`,
      'env:\n  API_AUTH: "Bearer ${secrets.TOKEN}"\n  PLAIN: hello\n',
    );
    const r = await swarm.runToCompletion(await swarm.startRun(wf, { other: '' }));
    expect(r.run.status).toBe('completed');
    const env = r.steps[0]?.outputs as Record<string, string>;
    // The agent saw the secret's value; what it returned is stored with the value replaced by its marker.
    expect(env.API_AUTH).toBe('Bearer [secret:TOKEN]');
    expect(env.PLAIN).toBe('hello');
    expect(env).not.toHaveProperty('OPENAI_API_KEY');
    expect(env).not.toHaveProperty('SWARM_DATABASE_URL');
    expect(env).not.toHaveProperty('SWARM_MASTER_KEY');
    expect(env).not.toHaveProperty('SWARM_SECRET_TOKEN');
    const allowed = ['SWARM_RUN_ID', 'SWARM_STEP_ID', 'SWARM_ATTEMPT', 'SWARM_IDEMPOTENCY_KEY', 'SWARM_INPUT_FILE', 'SWARM_OUTPUT_FILE', 'SWARM_WORK_DIR', 'PATH', 'HOME', 'LANG', 'API_AUTH', 'PLAIN'];
    // bubblewrap sets PWD to the working directory (the package), which the agent knows anyway.
    expect(Object.keys(env).filter((k) => !allowed.includes(k) && !(k === 'PWD' && env.PWD === join(dir, 'agents', 'envy')))).toEqual([]);
    expect(env.HOME).toBe(env.SWARM_WORK_DIR);
  });

  it('a declared env value naming an unknown secret fails the step clearly', async () => {
    const { dir, swarm } = await setup('none');
    const wf = await bashStep(swarm, dir, 'nokey', `echo '{}' > "$2"`, 'env:\n  KEY: "${secrets.NOPE}"\n');
    const r = await swarm.runToCompletion(await swarm.startRun(wf, { other: '' }));
    expect(r.run.status).toBe('failed');
    expect(r.steps[0]?.error).toMatch(/agent nokey@1\.0\.0 env\.KEY: '\$\{secrets\.NOPE\}' does not resolve \(no secret named 'NOPE' \(set SWARM_SECRET_NOPE/);
  });

  it('env: is validated at registration', async () => {
    const { dir, swarm } = await setup('none');
    const bad: Array<[string, RegExp]> = [
      ['env:\n  1BAD: x\n', /env\.1BAD: '1BAD' is not a valid variable name/],
      ['env:\n  SWARM_RUN_ID: x\n', /env\.SWARM_RUN_ID: names starting with SWARM_ belong to the process contract/],
      ['env:\n  N: 3\n', /env\.N: must be string/],
      ['env:\n  T: "${trigger.x}"\n', /env\.T: '\$\{trigger\.x\}' cannot be used here: env values may reference only \$\{secrets\.…\} and \$\{config\.…\}/],
      ['env: [a]\n', /env: must be object/],
    ];
    for (const [yaml, message] of bad) {
      writeAgent(dir, 'e', `name: e\nversion: 1.0.0\nruntime: { type: bash, entry: run.sh }\n${yaml}`, { 'run.sh': 'true\n' });
      const err = await swarm.registerAgent(join(dir, 'agents', 'e')).catch((e: unknown) => e);
      expect(err, yaml).toBeInstanceOf(ManifestError);
      expect((err as Error).message, yaml).toMatch(message);
      expect((err as Error).message, yaml).toMatch(/agent\.yaml:\d+/);
    }
  });

  it.each<[Driver, boolean]>([
    ['bubblewrap', true],
    ['none', true],
    ['none', false],
  ])('under %s (memory cgroups %s) a child detached with setsid dies with the step', async (driver, cgroups) => {
    const { dir, swarm } = await setup(driver, {}, cgroups);
    const wf = await bashStep(swarm, dir, 'detach', `setsid sleep 120 </dev/null >/dev/null 2>&1 &\nchild=$!\nsleep 0.2\nkill -0 "$child" && printf '{"child": %s}' "$child" > "$2"`);
    const id = await swarm.startRun(wf, { other: '' });
    const r = await swarm.runToCompletion(id);
    expect(r.run.status).toBe('completed');
    const child = (r.steps[0]?.outputs as { child: number }).child;
    expect(child).toBeGreaterThan(0);
    if (driver === 'none') await until(() => !pidAlive(child), 5000, 'the detached child to die');
    await until(() => agentPids(id).length === 0, 5000, 'every process of the step to die');
  });
});

describe('memory limits', () => {
  const hog = "const a = []; for (let i = 0; i < 4000; i++) a.push(new Array(100000).fill(i)); require('fs').writeFileSync(process.argv[3], '{}');";

  async function nodeHog(swarm: Swarm, dir: string): Promise<string> {
    writeAgent(dir, 'hog', 'name: hog\nversion: 1.0.0\nruntime: { type: node, entry: main.js, memory_mb: 64, timeout_seconds: 60 }\n', { 'main.js': hog });
    await swarm.registerAgent(join(dir, 'agents', 'hog'));
    await swarm.registerWorkflow(writeWorkflow(dir, 'wf-hog', 'name: wf-hog\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: hog@1.0.0\n'));
    return swarm.startRun('wf-hog');
  }

  it('a node agent far over memory_mb is killed by its cgroup (inside bubblewrap), and no cgroup is left', async () => {
    const { dir, swarm } = await setup('bubblewrap');
    expect(swarm.isolation()).toMatchObject({ sandbox: 'bubblewrap', isolated: true, memory_enforced: true });
    const id = await nodeHog(swarm, dir);
    const r = await swarm.runToCompletion(id);
    expect(r.run.status).toBe('failed');
    expect(r.steps[0]?.error).toMatch(/exceeded memory_mb=64 and was killed by the OS/);
    const failed = (await swarm.events(id)).find((e) => e.type === 'STEP_FAILED');
    expect(failed?.data).toMatchObject({ code: 'STEP_OUT_OF_MEMORY', sandbox: 'bubblewrap', memory_limit: expect.stringMatching(/^cgroup-v/) as unknown });
    expect(failed?.data).not.toHaveProperty('memory_warning');
    expect(leftoverCgroups()).toEqual([]);
  });

  it('with memory cgroups off the step’s events say memory_mb is not enforced by the OS, and node’s heap limit still stops it', async () => {
    const { dir, swarm } = await setup('bubblewrap', {}, false);
    expect(swarm.isolation()).toMatchObject({ memory_enforced: false });
    const id = await nodeHog(swarm, dir);
    const r = await swarm.runToCompletion(id);
    expect(r.run.status).toBe('failed');
    expect(r.steps[0]?.error).toMatch(/exceeded memory_mb=64 \(node's heap limit; the OS does not enforce memory_mb here\)/);
    const failed = (await swarm.events(id)).find((e) => e.type === 'STEP_FAILED');
    expect(failed?.data).toMatchObject({ code: 'STEP_OUT_OF_MEMORY', memory_limit: 'node-heap' });
    expect(String(failed?.data.memory_warning)).toMatch(/memory_mb=64 is not enforced by the OS \(no memory cgroup\): only node's heap is limited/);
  });
});

describe('attempt files', () => {
  it('the work dir is 0700, input.json 0600 and gone once the agent exited; no work dir after success', async () => {
    const { dir, swarm } = await setup('bubblewrap');
    const wf = await bashStep(swarm, dir, 'modes', `printf '%s %s\\n' "$(stat -c %a "$SWARM_WORK_DIR")" "$(stat -c %a "$1")" > "$SWARM_WORK_DIR/modes.txt"; exit 1`);
    const id = await swarm.startRun(wf, { other: 'the resolved input' });
    expect((await swarm.runToCompletion(id)).run.status).toBe('failed');
    const work = join(dir, '.swarm', 'work', id, 's', '1');
    expect(readFileSync(join(work, 'modes.txt'), 'utf8')).toBe('700 600\n');
    expect(existsSync(join(work, 'input.json'))).toBe(false);

    const ok = await bashStep(swarm, dir, 'fine', `echo '{}' > "$2"`);
    const id2 = await swarm.startRun(ok, { other: '' });
    expect((await swarm.runToCompletion(id2)).run.status).toBe('completed');
    // Neither the attempt's directory nor the empty step and run directories above it remain.
    expect(existsSync(join(dir, '.swarm', 'work', id2))).toBe(false);
  });
});

describe('the CLI says which sandbox is in force', () => {
  it('sandbox none: db status and swarm run say agents are not isolated; a worker without cgroups warns about memory', async () => {
    const dir = tempProject('name: test\nsandbox: none\n');
    cleanups.push(() => removeProject(dir));
    writeAgent(dir, 'ok', 'name: ok\nversion: 1.0.0\nruntime: { type: bash, entry: run.sh }\n', { 'run.sh': `#!/usr/bin/env bash\necho '{}' > "$2"\n` });
    writeWorkflow(dir, 'one', 'name: one\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: ok@1.0.0\n');
    expect((await runCli(['agent', 'register', 'agents/ok'], dir)).code).toBe(0);
    expect((await runCli(['workflow', 'register', 'workflows/one'], dir)).code).toBe(0);

    const status = await runCli(['db', 'status'], dir);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/process agents: sandbox none \(NOT isolated\)/);
    const json = JSON.parse((await runCli(['db', 'status', '--json'], dir)).stdout) as { isolation: { sandbox: string; isolated: boolean } };
    expect(json.isolation).toMatchObject({ sandbox: 'none', isolated: false });
    const bw = await runCli(['db', 'status'], dir, { SWARM_SANDBOX: 'bubblewrap' });
    expect(bw.stdout).toMatch(/process agents: sandbox bubblewrap \(isolated\)/);

    const run = await runCli(['run', 'one'], dir);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/note: process agents are NOT isolated \(sandbox none/);

    // Where bwrap cannot be found: auto falls back to none and says why; bubblewrap refuses to start.
    const auto = await runCli(['db', 'status'], dir, { SWARM_SANDBOX: 'auto', PATH: '/nonexistent' });
    expect(auto.stdout).toMatch(/warning: process agents are NOT isolated \(sandbox none: 'bwrap' is not installed/);
    const refused = await runCli(['worker'], dir, { SWARM_SANDBOX: 'bubblewrap', PATH: '/nonexistent' });
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/sandbox 'bubblewrap' is configured but 'bwrap' is not installed/);

    const worker = spawnCli(['worker'], dir, { SWARM_MEMORY_CGROUPS: 'off' });
    let err = '';
    worker.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    cleanups.push(() => void worker.kill('SIGKILL'));
    await until(() => /memory_mb is NOT enforced/.test(err), 15_000, 'the worker start-up output');
    expect(err).toMatch(/started: .*sandbox none, memory limit (rlimit|none)/);
    expect(err).toMatch(/warning: process agents are NOT isolated/);
    expect(err).toMatch(/warning: memory_mb is NOT enforced by the OS \(no memory cgroup: SWARM_MEMORY_CGROUPS=off\)/);
  });
});
