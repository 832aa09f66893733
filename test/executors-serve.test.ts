/**
 * `swarm executor serve` as a real `bin/swarm` process on SQLite: identity and remembered answers
 * kept in its state dir across a restart, SIGTERM drains and stops; an http agent's register-time
 * warning for an unregistered executor; `swarm run --shared-inputs` end to end.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exited, until, writeAgent, writeWorkflow } from './helpers/project.js';
import { runCli, serveExecutor, show, useServedExecutor } from './helpers/executor-cli.js';

describe('swarm executors and swarm executor serve', () => {
  const fx = useServedExecutor();

  it('an http agent warns at registration until its executor exists; swarm run --shared-inputs reaches the executor', async () => {
    writeAgent(fx.dir, 'remote-echo', 'name: remote-echo\nversion: 1.0.0\nruntime: { type: http, executor: later, task_type: echo-a }\n');
    writeAgent(fx.dir, 'remote-ok', 'name: remote-ok\nversion: 1.0.0\nruntime: { type: http, executor: rt, task_type: echo-a }\n');
    expect((await runCli(['executors', 'add', 'rt', fx.served.url], fx.dir)).code).toBe(0);
    const reg = await runCli(['agent', 'register', join(fx.dir, 'agents', 'remote-echo')], fx.dir);
    expect(reg.code, show(reg)).toBe(0);
    expect(reg.stderr).toContain("warning: executor 'later' is not registered yet: its steps fail until 'swarm executors add later <base_url>'");
    const reg2 = await runCli(['agent', 'register', join(fx.dir, 'agents', 'remote-ok')], fx.dir);
    expect(reg2.stderr).not.toContain('warning');
    writeWorkflow(fx.dir, 'via-rt', 'name: via-rt\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: remote-ok\n    inputs: {}\n');
    expect((await runCli(['workflow', 'register', '--all'], fx.dir)).code).toBe(0);
    // The echo agent answers with the input `message`: here it comes from shared_inputs.
    writeFileSync(join(fx.dir, 'shared.json'), JSON.stringify({ message: 'from shared inputs' }));
    const run = await runCli(['run', 'via-rt', '{}', '--shared-inputs', `@${join(fx.dir, 'shared.json')}`, '--json'], fx.dir);
    expect(run.code, show(run)).toBe(0);
    expect(run.stdout).toContain('"echoed": "from shared inputs"');
    const shown = await runCli(['runs', 'show', (JSON.parse(run.stdout) as { run_id: string }).run_id], fx.dir);
    expect(shown.stdout).toContain('shared inputs: {"message":"from shared inputs"}');
    expect(shown.stdout).not.toContain('final decision');
    const big = await runCli(['run', 'via-rt', '{}', '--shared-inputs', JSON.stringify({ blob: 'x'.repeat(70_000) })], fx.dir);
    expect(big.code).toBe(2);
    expect(big.stderr).toContain('more than the 65536 allowed');
    const badJson = await runCli(['run', 'via-rt', '{}', '--shared-inputs', '{oops'], fx.dir);
    expect(badJson.code).toBe(2);
    expect(badJson.stderr).toContain('--shared-inputs is not valid JSON');
  });

  it('serve keeps its identity and its remembered answers across a restart; SIGTERM drains and stops it', async () => {
    const oldKey = fx.served.publicKey;
    const body = JSON.stringify({ task_id: 't-restart', task_type: 'echo-a', inputs: { message: 'once' }, idempotency_key: 'restart-key', deadline_ms: Date.now() + 60_000 });
    const first = await fetch(`${fx.served.url}/execute`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const a: unknown = await first.json();
    // The log line may reach this process's pipe after the answer does.
    await until(() => fx.served.output().includes('execute t-restart: agent echo-a@1.0.0'), 20_000, "the executor's log line for t-restart");
    fx.served.child.kill('SIGTERM');
    expect(await exited(fx.served.child)).toBe(0);
    expect(fx.served.output()).toContain('SIGTERM: draining');

    fx.served = await serveExecutor(fx.execDir, fx.stateDir);
    const second = await fetch(`${fx.served.url}/execute`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(await second.json()).toEqual(a);
    // The same identity, and the answer came from the state fx.dir: the agent did not run again.
    expect((await (await fetch(`${fx.served.url}/capabilities`)).json()) as { public_key: string }).toMatchObject({ public_key: oldKey });
    await until(() => fx.served.output().includes('POST /execute task t-restart'), 20_000, "the executor's log line for the repeated request");
    expect(fx.served.output()).not.toContain('execute t-restart: agent');
    expect(fx.served.publicKey).toBe(oldKey);
  });
});
