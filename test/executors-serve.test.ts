/**
 * `swarm executor serve` as a real `bin/swarm` process on SQLite: identity and remembered answers
 * kept in its state dir across a restart, SIGTERM drains and stops; an http agent's register-time
 * warning for an unregistered executor; `swarm run --shared-inputs` end to end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exited, removeProject, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';
import { runCli, serveExecutor, show, type Served } from './helpers/executor-cli.js';

describe('swarm executors and swarm executor serve', () => {
  let execDir: string;
  let dir: string;
  let served: Served;
  const stateDir = (): string => join(execDir, 'state');

  beforeAll(async () => {
    execDir = tempProject();
    writeAgent(execDir, 'echo-a', 'name: echo-a\nversion: 1.0.0\nruntime: { type: builtin, entry: echo }\n');
    const r = await runCli(['agent', 'register', '--all'], execDir);
    expect(r.code, show(r)).toBe(0);
    served = await serveExecutor(execDir, stateDir());
    dir = tempProject();
  });
  afterAll(async () => {
    if (served.child.exitCode === null) {
      served.child.kill('SIGKILL');
      await exited(served.child);
    }
    removeProject(dir);
    removeProject(execDir);
  });

  it('an http agent warns at registration until its executor exists; swarm run --shared-inputs reaches the executor', async () => {
    writeAgent(dir, 'remote-echo', 'name: remote-echo\nversion: 1.0.0\nruntime: { type: http, executor: later, task_type: echo-a }\n');
    writeAgent(dir, 'remote-ok', 'name: remote-ok\nversion: 1.0.0\nruntime: { type: http, executor: rt, task_type: echo-a }\n');
    expect((await runCli(['executors', 'add', 'rt', served.url], dir)).code).toBe(0);
    const reg = await runCli(['agent', 'register', join(dir, 'agents', 'remote-echo')], dir);
    expect(reg.code, show(reg)).toBe(0);
    expect(reg.stderr).toContain("warning: executor 'later' is not registered yet: its steps fail until 'swarm executors add later <base_url>'");
    const reg2 = await runCli(['agent', 'register', join(dir, 'agents', 'remote-ok')], dir);
    expect(reg2.stderr).not.toContain('warning');
    writeWorkflow(dir, 'via-rt', 'name: via-rt\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: remote-ok\n    inputs: {}\n');
    expect((await runCli(['workflow', 'register', '--all'], dir)).code).toBe(0);
    // The echo agent answers with the input `message`: here it comes from shared_inputs.
    writeFileSync(join(dir, 'shared.json'), JSON.stringify({ message: 'from shared inputs' }));
    const run = await runCli(['run', 'via-rt', '{}', '--shared-inputs', `@${join(dir, 'shared.json')}`, '--json'], dir);
    expect(run.code, show(run)).toBe(0);
    expect(run.stdout).toContain('"echoed": "from shared inputs"');
    const big = await runCli(['run', 'via-rt', '{}', '--shared-inputs', JSON.stringify({ blob: 'x'.repeat(70_000) })], dir);
    expect(big.code).toBe(2);
    expect(big.stderr).toContain('more than the 65536 allowed');
    const badJson = await runCli(['run', 'via-rt', '{}', '--shared-inputs', '{oops'], dir);
    expect(badJson.code).toBe(2);
    expect(badJson.stderr).toContain('--shared-inputs is not valid JSON');
  });

  it('serve keeps its identity and its remembered answers across a restart; SIGTERM drains and stops it', async () => {
    const oldKey = served.publicKey;
    const body = JSON.stringify({ task_id: 't-restart', task_type: 'echo-a', inputs: { message: 'once' }, idempotency_key: 'restart-key', deadline_ms: Date.now() + 60_000 });
    const first = await fetch(`${served.url}/execute`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const a: unknown = await first.json();
    expect(served.output()).toContain('execute t-restart: agent echo-a@1.0.0');
    served.child.kill('SIGTERM');
    expect(await exited(served.child)).toBe(0);
    expect(served.output()).toContain('SIGTERM: draining');

    served = await serveExecutor(execDir, stateDir());
    const second = await fetch(`${served.url}/execute`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(await second.json()).toEqual(a);
    // The same identity, and the answer came from the state dir: the agent did not run again.
    expect((await (await fetch(`${served.url}/capabilities`)).json()) as { public_key: string }).toMatchObject({ public_key: oldKey });
    expect(served.output()).toContain('POST /execute task t-restart');
    expect(served.output()).not.toContain('execute t-restart: agent');
    expect(served.publicKey).toBe(oldKey);
  });
});
