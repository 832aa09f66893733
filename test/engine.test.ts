import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { ManifestError, PolicyError, UserError } from '../src/core/errors.js';
import { loadPlan, PlanCache } from '../src/engine/plan.js';
import { OutputCache, runStep } from '../src/engine/step-runner.js';
import type { Executor } from '../src/executors/executor.js';
import type { Swarm } from '../src/swarm.js';
import { builtinAgent, EXAMPLES, openProject, removeProject, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(swarmYaml?: string): Promise<{ dir: string; swarm: Swarm }> {
  const dir = tempProject(swarmYaml);
  const swarm = await openProject(dir);
  cleanups.push(() => removeProject(dir));
  cleanups.push(() => swarm.close());
  await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
  await swarm.registerAgent(join(EXAMPLES, 'agents', 'noop'));
  return { dir, swarm };
}

/** A builtin that records how many calls overlap, to observe parallelism without timing. */
function concurrencyProbe(swarm: Swarm, name: string, holdMs = 40): { max: () => number; calls: () => number } {
  let now = 0;
  let max = 0;
  let calls = 0;
  swarm.defineBuiltin(name, async () => {
    calls++;
    now++;
    max = Math.max(max, now);
    await sleep(holdMs);
    now--;
    return { ok: true };
  });
  return { max: () => max, calls: () => calls };
}

describe('engine', () => {
  it('runs echo-chain: outputs flow between steps, events are ordered and verify', async () => {
    const { swarm } = await setup();
    await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'echo-chain'));
    const id = await swarm.startRun('echo-chain', { message: 'Hello Swarm!' });
    const { run, steps } = await swarm.runToCompletion(id);
    expect(run.status).toBe('completed');
    expect(steps.map((s) => [s.step_id, s.status, s.outputs])).toEqual([
      ['step1', 'completed', { echoed: 'Hello Swarm!' }],
      ['step2', 'completed', { echoed: 'Step 2 received: Hello Swarm!' }],
    ]);
    const types = (await swarm.events(id)).map((e) => `${e.type}${e.step_id ? `:${e.step_id}` : ''}`);
    expect(types).toEqual([
      'RUN_CREATED',
      'RUN_STARTED',
      'STEP_STARTED:step1',
      'STEP_COMPLETED:step1',
      'STEP_STARTED:step2',
      'STEP_COMPLETED:step2',
      'RUN_COMPLETED',
      'HANDLER_LOG',
    ]);
    expect((await swarm.events(id)).at(-1)?.data.message).toBe('echo-chain finished: Step 2 received: Hello Swarm!');
    expect((await swarm.verify(id)).ok).toBe(true);
  });

  it('runs independent steps in parallel, bounded by the run and the worker concurrency', async () => {
    const { dir, swarm } = await setup();
    const probe = concurrencyProbe(swarm, 'probe');
    builtinAgent(dir, 'probe', 'probe');
    await swarm.registerAgent(join(dir, 'agents', 'probe'));
    const steps = Array.from({ length: 6 }, (_, i) => `  - id: p${i}\n    agent: probe@1.0.0\n    depends_on: [start]`).join('\n');
    const yaml = (conc: number): string =>
      `name: wide${conc}\nversion: 1.0.0\nconcurrency: ${conc}\nsteps:\n  - id: start\n    agent: noop@1.0.0\n${steps}\n  - id: join\n    agent: noop@1.0.0\n    depends_on: [p0, p1, p2, p3, p4, p5]\n`;
    await swarm.registerWorkflow(writeWorkflow(dir, 'wide6', yaml(6)));
    await swarm.registerWorkflow(writeWorkflow(dir, 'wide2', yaml(2)));

    const a = await swarm.runToCompletion(await swarm.startRun('wide6'), { concurrency: 16 });
    expect(a.run.status).toBe('completed');
    expect(probe.max()).toBe(6);

    const probe2 = concurrencyProbe(swarm, 'probe');
    const b = await swarm.runToCompletion(await swarm.startRun('wide2'), { concurrency: 16 });
    expect(b.run.status).toBe('completed');
    expect(probe2.max()).toBe(2);

    const probe3 = concurrencyProbe(swarm, 'probe');
    const c = await swarm.runToCompletion(await swarm.startRun('wide6'), { concurrency: 1 });
    expect(c.run.status).toBe('completed');
    expect(probe3.max()).toBe(1);
    expect(probe3.calls()).toBe(6);
  });

  it('skips a step whose condition is false; skipping propagates through data references only', async () => {
    const { dir, swarm } = await setup();
    await swarm.registerWorkflow(
      writeWorkflow(
        dir,
        'cond',
        `name: cond
version: 1.0.0
steps:
  - id: check
    agent: echo@1.0.0
    inputs: { message: "\${trigger.n}" }
  - id: big
    agent: echo@1.0.0
    condition: "steps.check.outputs.echoed > 10"
    inputs: { message: big }
  - id: uses-big
    agent: echo@1.0.0
    inputs: { message: "\${steps.big.outputs.echoed}" }
  - id: after-big
    agent: echo@1.0.0
    depends_on: [big]
    inputs: { message: "big was \${steps.check.outputs.echoed}" }
  - id: small
    agent: echo@1.0.0
    condition: "\${steps.big.status} == 'skipped' && trigger.n <= 10"
    inputs: { message: small }
`,
      ),
    );
    const r = await swarm.runToCompletion(await swarm.startRun('cond', { n: 3 }));
    const status = Object.fromEntries(r.steps.map((s) => [s.step_id, s.status]));
    expect(r.run.status).toBe('completed');
    expect(status).toEqual({ check: 'completed', big: 'skipped', 'uses-big': 'skipped', 'after-big': 'completed', small: 'completed' });

    const r2 = await swarm.runToCompletion(await swarm.startRun('cond', { n: 30 }));
    const status2 = Object.fromEntries(r2.steps.map((s) => [s.step_id, s.status]));
    expect(status2).toEqual({ check: 'completed', big: 'completed', 'uses-big': 'completed', 'after-big': 'completed', small: 'skipped' });
  });

  it('retries a flaky step with backoff, keeping the idempotency key; gives up after max_attempts', async () => {
    const { dir, swarm } = await setup();
    const seen: Array<{ key: string; attempt: number }> = [];
    let failuresLeft = 2;
    swarm.defineBuiltin('flaky', async (_inputs, ctx) => {
      seen.push({ key: ctx.idempotencyKey, attempt: ctx.attempt });
      if (failuresLeft-- > 0) throw new Error('temporary glitch');
      return { ok: true };
    });
    builtinAgent(dir, 'flaky', 'flaky');
    await swarm.registerAgent(join(dir, 'agents', 'flaky'));
    const wf = (attempts: number): string =>
      `name: flaky${attempts}\nversion: 1.0.0\nsteps:\n  - id: try\n    agent: flaky@1.0.0\n    retry: { max_attempts: ${attempts}, backoff_ms: 20, max_backoff_ms: 40 }\n`;
    await swarm.registerWorkflow(writeWorkflow(dir, 'flaky3', wf(3)));
    await swarm.registerWorkflow(writeWorkflow(dir, 'flaky2', wf(2)));

    const id = await swarm.startRun('flaky3');
    const r = await swarm.runToCompletion(id);
    expect(r.run.status).toBe('completed');
    expect(seen.map((s) => s.attempt)).toEqual([1, 2, 3]);
    expect(new Set(seen.map((s) => s.key))).toEqual(new Set([`${id}/try`]));
    const retries = (await swarm.events(id)).filter((e) => e.type === 'STEP_RETRY_SCHEDULED');
    expect(retries).toHaveLength(2);
    for (const e of retries) {
      expect(e.data.error).toBe('temporary glitch');
      expect(e.data.retry_in_ms).toBeGreaterThanOrEqual(10);
      expect(e.data.retry_in_ms).toBeLessThanOrEqual(40);
    }

    failuresLeft = 5;
    const r2 = await swarm.runToCompletion(await swarm.startRun('flaky2'));
    expect(r2.run.status).toBe('failed');
    expect(r2.run.error).toBe('temporary glitch');
    expect(r2.steps[0]?.retry_count).toBe(2);
  });

  it('fails the run on a failing step (pending steps cancelled, on_error handler runs); on_error: continue goes on', async () => {
    const { dir, swarm } = await setup();
    swarm.defineBuiltin('boom', async () => {
      throw new Error('kaboom');
    });
    builtinAgent(dir, 'boom', 'boom');
    await swarm.registerAgent(join(dir, 'agents', 'boom'));
    await swarm.registerWorkflow(
      writeWorkflow(
        dir,
        'cleanup',
        `name: cleanup\nversion: 1.0.0\nsteps:\n  - id: note\n    agent: echo@1.0.0\n    inputs: { message: "cleaning up after \${trigger.failed_run}" }\n`,
      ),
    );
    await swarm.registerWorkflow(
      writeWorkflow(
        dir,
        'fails',
        `name: fails
version: 1.0.0
steps:
  - id: ok
    agent: echo@1.0.0
    inputs: { message: fine }
  - id: bad
    agent: boom@1.0.0
    depends_on: [ok]
  - id: never
    agent: echo@1.0.0
    depends_on: [bad]
    inputs: { message: never }
on_error:
  - notify: { type: log, message: "failed at \${error.step}: \${error.message}" }
  - workflow: { name: cleanup, inputs: { failed_run: "\${run.id}" } }
`,
      ),
    );
    const id = await swarm.startRun('fails');
    const r = await swarm.runToCompletion(id);
    expect(r.run.status).toBe('failed');
    expect(r.run.error_step).toBe('bad');
    expect(Object.fromEntries(r.steps.map((s) => [s.step_id, s.status]))).toEqual({ ok: 'completed', bad: 'failed', never: 'cancelled' });
    const events = await swarm.events(id);
    expect(events.find((e) => e.type === 'HANDLER_LOG')?.data.message).toBe('failed at bad: kaboom');
    const started = events.find((e) => e.type === 'HANDLER_STARTED_RUN');
    expect(started?.data.workflow).toBe('cleanup');
    const child = await swarm.getRun(started?.data.run_id as string);
    expect(child.run.parent_run_id).toBe(id);
    expect(child.run.trigger_data).toEqual({ failed_run: id });
    const done = await swarm.runToCompletion(child.run.id);
    expect(done.steps[0]?.outputs).toEqual({ echoed: `cleaning up after ${id}` });

    await swarm.registerWorkflow(
      writeWorkflow(
        dir,
        'goes-on',
        `name: goes-on
version: 1.0.0
steps:
  - id: bad
    agent: boom@1.0.0
    on_error: continue
  - id: report
    agent: echo@1.0.0
    inputs: { message: "bad was \${steps.bad.status}: \${steps.bad.error}" }
`,
      ),
    );
    const g = await swarm.runToCompletion(await swarm.startRun('goes-on'));
    expect(g.run.status).toBe('completed');
    expect(g.steps.find((s) => s.step_id === 'report')?.outputs).toEqual({ echoed: 'bad was failed: kaboom' });
  });

  it('times out a step, and fails bad inputs, bad outputs and unresolved references without retrying', async () => {
    const { dir, swarm } = await setup();
    let wrongCalls = 0;
    swarm.defineBuiltin('wrong', async () => {
      wrongCalls++;
      return { count: 'not a number' };
    });
    builtinAgent(dir, 'sleeper', 'sleep', 'inputs:\n  - { name: ms, type: integer, required: true }\n');
    builtinAgent(dir, 'wrong', 'wrong', 'outputs:\n  - { name: count, type: integer }\n');
    for (const a of ['sleeper', 'wrong']) await swarm.registerAgent(join(dir, 'agents', a));
    const retry = 'retry: { max_attempts: 3, backoff_ms: 1 }';
    const cases: Array<[string, string, string, number]> = [
      ['slow', `agent: sleeper@1.0.0\n    timeout_seconds: 0.2\n    inputs: { ms: 5000 }`, 'STEP_TIMEOUT', 1],
      ['badin', `agent: sleeper@1.0.0\n    ${retry}\n    inputs: { ms: "\${run.id}" }`, 'INPUT_INVALID', 1],
      ['missing', `agent: echo@1.0.0\n    ${retry}\n    inputs: { message: "\${trigger.nope}" }`, 'REFERENCE_UNRESOLVED', 1],
      // The same program returns the same wrong shape: retrying would only repeat it.
      ['badout', `agent: wrong@1.0.0\n    ${retry}`, 'OUTPUT_INVALID', 1],
    ];
    for (const [name, step, code, attempts] of cases) {
      await swarm.registerWorkflow(writeWorkflow(dir, name, `name: ${name}\nversion: 1.0.0\nsteps:\n  - id: s\n    ${step}\n`));
      const id = await swarm.startRun(name);
      const r = await swarm.runToCompletion(id);
      expect(r.run.status, name).toBe('failed');
      const failed = (await swarm.events(id)).find((e) => e.type === 'STEP_FAILED');
      expect(failed?.data.code, name).toBe(code);
      expect(r.steps[0]?.attempt, name).toBe(attempts);
    }
    expect(wrongCalls).toBe(1);
  });

  it('retry re-runs only what failed; completed steps are never executed again', async () => {
    const { dir, swarm } = await setup();
    const calls: Record<string, number> = {};
    let broken = true;
    swarm.defineBuiltin('counted', async (inputs) => {
      const name = String(inputs.name);
      calls[name] = (calls[name] ?? 0) + 1;
      if (name === 'b' && broken) throw new Error('b is broken');
      return { name };
    });
    builtinAgent(dir, 'counted', 'counted', 'inputs:\n  - { name: name, type: string, required: true }\n');
    await swarm.registerAgent(join(dir, 'agents', 'counted'));
    await swarm.registerWorkflow(
      writeWorkflow(
        dir,
        'abc',
        `name: abc\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: counted@1.0.0\n    inputs: { name: a }\n  - id: b\n    agent: counted@1.0.0\n    inputs: { name: b }\n    depends_on: [a]\n  - id: c\n    agent: counted@1.0.0\n    inputs: { name: c }\n    depends_on: [b]\n`,
      ),
    );
    const id = await swarm.startRun('abc');
    expect((await swarm.runToCompletion(id)).run.status).toBe('failed');
    expect(calls).toEqual({ a: 1, b: 1 });
    broken = false;
    expect(await swarm.retry(id)).toEqual(['b', 'c']);
    const r = await swarm.runToCompletion(id);
    expect(r.run.status).toBe('completed');
    expect(calls).toEqual({ a: 1, b: 2, c: 1 });
    expect((await swarm.verify(id)).ok).toBe(true);
    await expect(swarm.retry(id)).rejects.toMatchObject({ code: 'RUN_NOT_RETRYABLE', exitCode: 5 });
  });

  it('cancels a running run: the running step is aborted and nothing else starts', async () => {
    const { dir, swarm } = await setup();
    let aborted = false;
    swarm.defineBuiltin('wait', async (_i, ctx) => {
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
      aborted = true;
      throw new Error('aborted');
    });
    builtinAgent(dir, 'wait', 'wait');
    await swarm.registerAgent(join(dir, 'agents', 'wait'));
    await swarm.registerWorkflow(writeWorkflow(dir, 'long', `name: long\nversion: 1.0.0\nsteps:\n  - id: w\n    agent: wait@1.0.0\n  - id: after\n    agent: noop@1.0.0\n    depends_on: [w]\n`));
    const id = await swarm.startRun('long');
    const done = swarm.runToCompletion(id);
    await untilStatus(swarm, id, 'w', 'running');
    expect(await swarm.cancel(id, 'changed my mind')).toEqual(['w', 'after']);
    const r = await done;
    expect(r.run.status).toBe('cancelled');
    expect(r.run.error).toBe('changed my mind');
    expect(aborted).toBe(true);
    expect(r.steps.map((s) => s.status)).toEqual(['cancelled', 'cancelled']);
    await expect(swarm.cancel(id)).rejects.toMatchObject({ code: 'RUN_NOT_CANCELLABLE', exitCode: 2 });
  });

  it('refuses bad run requests before writing anything', async () => {
    const { dir, swarm } = await setup();
    await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'echo-chain'));
    await expect(swarm.startRun('echo-chain', { message: 42 })).rejects.toBeInstanceOf(UserError);
    await expect(swarm.startRun('echo-chain', [1, 2])).rejects.toMatchObject({ code: 'INPUT_INVALID' });
    await expect(swarm.startRun('nope')).rejects.toMatchObject({ code: 'WORKFLOW_NOT_FOUND', exitCode: 2 });
    await swarm.setWorkflowEnabled('echo-chain', false);
    await expect(swarm.startRun('echo-chain', { message: 'x' })).rejects.toBeInstanceOf(PolicyError);
    expect(await swarm.listRuns()).toEqual([]);
    writeWorkflow(dir, 'ghost', 'name: ghost\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: ghost-agent@1.0.0\n');
    await expect(swarm.registerWorkflow(join(dir, 'workflows', 'ghost'))).rejects.toBeInstanceOf(ManifestError);
    expect((await swarm.listWorkflows()).map((w) => w.name)).toEqual(['echo-chain']);
  });

  it('pins agent versions when a run is created', async () => {
    const { dir, swarm } = await setup();
    builtinAgent(dir, 'v1', 'echo', 'inputs:\n  - { name: message, type: any }\n');
    await swarm.registerAgent(join(dir, 'agents', 'v1'));
    await swarm.registerWorkflow(writeWorkflow(dir, 'pin', `name: pin\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: v1@^1.0.0\n    inputs: { message: hi }\n`));
    const id = await swarm.startRun('pin');
    writeFileSync(join(dir, 'agents', 'v1', 'agent.yaml'), 'name: v1\nversion: 1.1.0\nruntime: { type: builtin, entry: noop }\n');
    await swarm.registerAgent(join(dir, 'agents', 'v1'));
    const r = await swarm.runToCompletion(id);
    expect(r.steps[0]?.agent_version).toBe('1.0.0');
    expect(r.steps[0]?.outputs).toEqual({ echoed: 'hi' });
    const r2 = await swarm.runToCompletion(await swarm.startRun('pin'));
    expect(r2.steps[0]?.agent_version).toBe('1.1.0');
    expect(r2.steps[0]?.outputs).toEqual({});
  });

  it('group commit: many concurrent runs share transactions and all complete exactly once', async () => {
    const dir = tempProject('name: gc\ncommit_window_ms: 5\n');
    const swarm = await openProject(dir);
    cleanups.push(() => removeProject(dir));
    cleanups.push(() => swarm.close());
    await swarm.registerAgent(join(EXAMPLES, 'agents', 'noop'));
    const steps = Array.from({ length: 5 }, (_, i) => `  - id: s${i}\n    agent: noop@1.0.0${i ? `\n    depends_on: [s${i - 1}]` : ''}`).join('\n');
    await swarm.registerWorkflow(writeWorkflow(dir, 'five', `name: five\nversion: 1.0.0\nsteps:\n${steps}\n`));
    expect(swarm.config.commitWindowMs).toBe(5);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await swarm.startRun('five'));
    const w = swarm.worker({ concurrency: 64, runIds: ids });
    await w.start();
    for (const id of ids) {
      const { run } = await swarm.getRun(id);
      expect(run.status).toBe('completed');
      const completed = (await swarm.events(id)).filter((e) => e.type === 'STEP_COMPLETED').map((e) => e.step_id);
      expect(completed).toEqual(['s0', 's1', 's2', 's3', 's4']);
      expect((await swarm.verify(id)).ok).toBe(true);
    }
    expect(w.completedCount).toBe(200);
  });
});

async function untilStatus(swarm: Swarm, runId: string, stepId: string, status: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const { steps } = await swarm.getRun(runId);
    if (steps.find((s) => s.step_id === stepId)?.status === status) return;
    await sleep(10);
  }
  throw new Error(`step ${stepId} never became ${status}`);
}

describe('engine: hard cases', () => {
  it('a step whose output cannot be stored fails alone; the worker goes on', async () => {
    const { dir, swarm } = await setup();
    swarm.defineBuiltin('loop', async () => {
      const o: Record<string, unknown> = {};
      o.self = o;
      return o;
    });
    builtinAgent(dir, 'loop', 'loop');
    await swarm.registerAgent(join(dir, 'agents', 'loop'));
    await swarm.registerWorkflow(writeWorkflow(dir, 'poison', `name: poison\nversion: 1.0.0\nsteps:\n  - id: bad\n    agent: loop@1.0.0\n  - id: fine\n    agent: noop@1.0.0\n`));
    const id = await swarm.startRun('poison');
    const r = await swarm.runToCompletion(id);
    expect(r.run.status).toBe('failed');
    expect(r.steps.find((s) => s.step_id === 'bad')?.error).toMatch(/cannot be stored as JSON/);
    expect(r.steps.find((s) => s.step_id === 'fine')?.status).toBe('completed');
    await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'echo-chain'));
    expect((await swarm.runToCompletion(await swarm.startRun('echo-chain', { message: 'after' }))).run.status).toBe('completed');
  });

  it('a built-in that ignores its abort signal still times out, and the worker still stops', async () => {
    const { dir, swarm } = await setup();
    swarm.defineBuiltin('stuck', () => new Promise(() => undefined));
    builtinAgent(dir, 'stuck', 'stuck');
    await swarm.registerAgent(join(dir, 'agents', 'stuck'));
    await swarm.registerWorkflow(writeWorkflow(dir, 'stuck', `name: stuck\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: stuck@1.0.0\n    timeout_seconds: 0.2\n`));
    const r = await swarm.runToCompletion(await swarm.startRun('stuck'));
    expect(r.run.status).toBe('failed');
    expect(r.steps[0]?.error).toBe('timed out after 0.2s');
    const id = await swarm.startRun('stuck');
    const w = swarm.worker({ runIds: [id] });
    await untilStatus(swarm, id, 's', 'running');
    await w.stop(50);
    expect((await swarm.getRun(id)).steps[0]?.status).toBe('ready');
  });

  it('a step released while its run has already failed is cancelled, and does not block later runs', async () => {
    const { dir, swarm } = await setup();
    swarm.defineBuiltin('boom', async () => {
      throw new Error('boom');
    });
    swarm.defineBuiltin('slow', async (_i, ctx) => {
      await sleep(5000, undefined, { signal: ctx.signal });
      return {};
    });
    builtinAgent(dir, 'boom', 'boom');
    builtinAgent(dir, 'slow', 'slow');
    for (const a of ['boom', 'slow']) await swarm.registerAgent(join(dir, 'agents', a));
    await swarm.registerWorkflow(writeWorkflow(dir, 'race', `name: race\nversion: 1.0.0\nsteps:\n  - id: slow\n    agent: slow@1.0.0\n  - id: bad\n    agent: boom@1.0.0\n`));
    const id = await swarm.startRun('race');
    const w = swarm.worker({ concurrency: 1 });
    await untilStatus(swarm, id, 'slow', 'running');
    // Let "bad" fail the run while "slow" still runs elsewhere: a second worker.
    const w2 = swarm.worker({ concurrency: 1 });
    await untilStatus(swarm, id, 'bad', 'failed');
    await w.stop(0);
    const r = await swarm.getRun(id);
    expect(r.run.status).toBe('failed');
    expect(r.steps.find((s) => s.step_id === 'slow')?.status).toBe('cancelled');
    await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'echo-chain'));
    const next = await swarm.startRun('echo-chain', { message: 'next' });
    expect((await swarm.wait(next)).run.status).toBe('completed');
    await w2.stop();
  });

  it('a run started by a handler is validated and executed by the same one-off worker', async () => {
    const { dir, swarm } = await setup();
    await swarm.registerWorkflow(
      writeWorkflow(dir, 'child', `name: child\nversion: 1.0.0\ninputs:\n  - { name: from, type: string, required: true }\nsteps:\n  - id: c\n    agent: echo@1.0.0\n    inputs: { message: "\${trigger.from}" }\n`),
    );
    const parent = (inputs: string): string =>
      `name: parent-${inputs ? 'ok' : 'bad'}\nversion: 1.0.0\nsteps:\n  - id: p\n    agent: noop@1.0.0\non_success:\n  - workflow: { name: child${inputs} }\n`;
    await swarm.registerWorkflow(writeWorkflow(dir, 'parent-ok', parent(', inputs: { from: "${run.id}" }')));
    await swarm.registerWorkflow(writeWorkflow(dir, 'parent-bad', parent('')));
    const ok = await swarm.startRun('parent-ok');
    await swarm.runToCompletion(ok);
    const started = (await swarm.events(ok)).find((e) => e.type === 'HANDLER_STARTED_RUN');
    const child = await swarm.getRun(String(started?.data.run_id));
    expect(child.run.status).toBe('completed');
    expect(child.steps[0]?.outputs).toEqual({ echoed: ok });

    const bad = await swarm.startRun('parent-bad');
    expect((await swarm.runToCompletion(bad)).run.status).toBe('completed');
    const log = (await swarm.events(bad)).find((e) => e.type === 'HANDLER_LOG');
    expect(log?.data.error).toMatch(/inputs for workflow child: from is required/);
    expect((await swarm.listRuns({ workflow: 'child' })).map((r) => r.id)).toEqual([child.run.id]);
  });
});

describe('registry checks a user relies on', () => {
  it('registration checks fixed step inputs against the agent, and names what is wrong', async () => {
    const { dir, swarm } = await setup();
    builtinAgent(dir, 'sleeper', 'sleep', 'inputs:\n  - { name: ms, type: integer, required: true }\n');
    await swarm.registerAgent(join(dir, 'agents', 'sleeper'));
    const wf = (inputs: string): string => `name: nap\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: sleeper@1.0.0\n    inputs: ${inputs}\n`;
    await expect(swarm.registerWorkflow(writeWorkflow(dir, 'nap', wf('{ m: 5 }')))).rejects.toThrow(/workflow.yaml:\d+: steps\[0\]\.inputs: step 's': agent sleeper@1.0.0 requires input 'ms' \(did you mean to name 'm' 'ms'\?\)/);
    await expect(swarm.registerWorkflow(writeWorkflow(dir, 'nap', wf('{ ms: "five" }')))).rejects.toThrow(/steps\[0\]\.inputs\.ms: step 's': "five" does not fit agent sleeper@1.0.0's input 'ms': must be integer/);
    // A reference is checked when the step runs, not now.
    expect((await swarm.registerWorkflow(writeWorkflow(dir, 'nap', wf('{ ms: "${trigger.ms}" }')))).result).toBe('created');
    expect((await swarm.listWorkflows()).map((w) => w.name)).toEqual(['nap']);
  });

  it('a process agent whose entry is not executable is refused at registration', async () => {
    const { dir, swarm } = await setup();
    writeAgent(dir, 'tool', 'name: tool\nversion: 1.0.0\nruntime: { type: process, entry: tool.bin }\n', { 'tool.bin': '#!/bin/sh\n' });
    await expect(swarm.registerAgent(join(dir, 'agents', 'tool'))).rejects.toThrow(/runtime.entry: 'tool.bin' is not executable: run 'chmod \+x/);
  });

  it('an agent that a workflow needs cannot be deleted without --force', async () => {
    const { swarm } = await setup();
    await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'echo-chain'));
    await expect(swarm.deleteAgent('echo@1.0.0')).rejects.toMatchObject({ code: 'AGENT_IN_USE', message: expect.stringMatching(/used by echo-chain@1.0.0 \(step 'step1'\)/) as unknown });
    expect((await swarm.deleteAgent('noop@1.0.0')).id).toBe('noop@1.0.0');
    expect((await swarm.deleteAgent('echo@1.0.0', { force: true })).id).toBe('echo@1.0.0');
  });

  it('tells when the workflow file changed since it was registered', async () => {
    const { dir, swarm } = await setup();
    const path = writeWorkflow(dir, 'greet', 'name: greet\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: echo@1.0.0\n    inputs: { message: hi }\n');
    const { record } = await swarm.registerWorkflow(path);
    expect(swarm.sourceChanged(record)).toBeUndefined();
    writeFileSync(join(path, 'workflow.yaml'), 'name: greet\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: echo@1.0.0\n    inputs: { message: hello }\n');
    expect(swarm.sourceChanged(record)).toMatch(/has changed since greet@1.0.0 was registered; this run uses the registered version/);
  });

  it("a step reading a skipped step's status runs; one reading its outputs is skipped, with the reason kept", async () => {
    const { dir, swarm } = await setup();
    await swarm.registerWorkflow(
      writeWorkflow(
        dir,
        'skips',
        `name: skips\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: echo@1.0.0\n    condition: "false"\n    inputs: { message: x }\n  - id: status\n    agent: echo@1.0.0\n    inputs: { message: "a was \${steps.a.status}" }\n  - id: data\n    agent: echo@1.0.0\n    inputs: { message: "\${steps.a.outputs.echoed}" }\n`,
      ),
    );
    const r = await swarm.runToCompletion(await swarm.startRun('skips'));
    const by = Object.fromEntries(r.steps.map((s) => [s.step_id, s]));
    expect(by.status?.outputs).toEqual({ echoed: 'a was skipped' });
    expect(by.data?.status).toBe('skipped');
    expect(by.a?.error).toBe('condition is false: false');
    expect(by.data?.error).toBe("its inputs use step 'a', which was skipped");
  });
});

describe('what a worker reads before running a step', () => {
  it('only the trigger and the upstream outputs that the inputs and condition reference', async () => {
    const { dir, swarm } = await setup();
    await swarm.registerWorkflow(
      writeWorkflow(
        dir,
        'reads',
        `name: reads
version: 1.0.0
steps:
  - id: plain
    agent: echo@1.0.0
    inputs: { message: fixed }
  - id: after
    agent: echo@1.0.0
    depends_on: [plain]
    inputs: { message: still fixed }
  - id: gate
    agent: echo@1.0.0
    depends_on: [after]
    condition: "trigger.n > 1"
    inputs: { message: open }
  - id: checks
    agent: echo@1.0.0
    depends_on: [after]
    condition: "steps.plain.outputs.echoed == 'fixed'"
    inputs: { message: checked }
  - id: uses
    agent: echo@1.0.0
    depends_on: [after]
    inputs: { message: "\${steps.plain.outputs.echoed} \${trigger.n}" }
  - id: status
    agent: echo@1.0.0
    depends_on: [plain]
    inputs: { message: "uses \${steps.uses.status}" }
`,
      ),
    );
    const id = await swarm.startRun('reads', { n: 2 });
    const planId = (await swarm.store.getRun(id))?.plan_id as string;

    // The plan says what each step reads (references in conditions count as much as in inputs).
    const plan = loadPlan((await swarm.store.getPlanById(planId)) as string);
    expect(Object.fromEntries(plan.reads)).toEqual({
      plain: { trigger: false, steps: [] },
      after: { trigger: false, steps: [] },
      gate: { trigger: true, steps: [] },
      checks: { trigger: false, steps: ['plain'] },
      uses: { trigger: true, steps: ['plain'] },
      status: { trigger: false, steps: ['uses'] },
    });

    // Steps run as a worker that has cached nothing of the run runs them; the store's reads counted.
    const calls: string[] = [];
    const store = new Proxy(swarm.store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'getRun' || prop === 'getStepOutputs') {
          return (...args: unknown[]) => {
            calls.push(`${prop}${prop === 'getStepOutputs' ? ` ${(args[1] as string[]).join(',')}` : ''}`);
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const echo: Executor = { execute: async (c) => ({ ok: true, outputs: { echoed: c.inputs.message } }) };
    const run = async (stepId: string): Promise<{ calls: string[]; result: unknown }> => {
      calls.length = 0;
      const done = await runStep(
        { store, plans: new PlanCache(), outputs: new OutputCache(), executorFor: () => echo, secrets: () => undefined, workRoot: dir },
        { run_id: id, step_id: stepId, plan_id: planId, attempt: 1, retry_count: 0, reclaimed: false },
        'w-test',
        new AbortController(),
      );
      return { calls: [...calls], result: done.result.kind === 'completed' ? done.result.outputs : done.result.kind };
    };
    expect(await run('plain')).toEqual({ calls: [], result: { echoed: 'fixed' } });
    expect(await run('after')).toEqual({ calls: [], result: { echoed: 'still fixed' } });
    // The first step of this run to use the trigger reads it (later ones find it in the process's cache).
    expect(await run('gate')).toEqual({ calls: ['getRun'], result: { echoed: 'open' } });
    // Nothing is committed yet: the reference to `plain` finds no outputs and the step fails.
    expect(await run('checks')).toEqual({ calls: ['getStepOutputs plain'], result: 'skipped' });

    // The engine runs the steps for real, so that there are upstream outputs to read.
    await swarm.runToCompletion(id);
    expect(await run('checks')).toEqual({ calls: ['getStepOutputs plain'], result: { echoed: 'checked' } });
    expect(await run('uses')).toEqual({ calls: ['getStepOutputs plain'], result: { echoed: 'fixed 2' } });
    expect(await run('status')).toEqual({ calls: ['getStepOutputs uses'], result: { echoed: 'uses completed' } });
  });
});
