/**
 * Real runs of many shapes for the log's replay tests: fan-out with a skipped step, a map step, a
 * sub-workflow, retries that succeed (and a fork of that run, copying the retried step), a failed
 * run retried to completion, `on_error: continue`, sleep/wait steps taken by a signal and an event,
 * an approval, and a cancelled waiting run.
 */
import { join } from 'node:path';
import { StepError } from '../../src/core/errors.js';
import type { Swarm } from '../../src/swarm.js';
import { builtinAgent, EXAMPLES, until, writeWorkflow } from './project.js';

async function register(swarm: Swarm, dir: string, name: string, steps: string): Promise<void> {
  await swarm.registerWorkflow(writeWorkflow(dir, name, `name: ${name}\nversion: 1.0.0\nsteps:\n${steps}`));
}

async function stepStatus(swarm: Swarm, runId: string, stepId: string): Promise<string | undefined> {
  return (await swarm.getRun(runId)).steps.find((s) => s.step_id === stepId)?.status;
}

/** Run every scenario to its end state with a worker of the store; returns the runs by name. */
export async function runScenarios(swarm: Swarm, dir: string): Promise<Record<string, string>> {
  await swarm.registerAgents(join(EXAMPLES, 'agents'));
  await swarm.registerWorkflows(join(EXAMPLES, 'workflows'));
  let flaky = 0;
  let broken = true;
  swarm.defineBuiltin('flaky', async () => {
    flaky++;
    if (flaky % 3 !== 0) throw new StepError('FLAKY', `flaky failure ${flaky}`, true);
    return { tries: flaky };
  });
  swarm.defineBuiltin('broken', async () => {
    if (broken) throw new StepError('BROKEN', 'broken until fixed', false);
    return { fixed: true };
  });
  builtinAgent(dir, 'flaky', 'flaky');
  builtinAgent(dir, 'broken', 'broken');
  await swarm.registerAgent(join(dir, 'agents', 'flaky'));
  await swarm.registerAgent(join(dir, 'agents', 'broken'));
  await register(swarm, dir, 'retries', `  - { id: a, agent: flaky, retry: { max_attempts: 5, backoff_ms: 10 } }\n  - { id: b, agent: echo, depends_on: a, inputs: { message: done } }\n`);
  await register(swarm, dir, 'fails', `  - { id: first, agent: echo, inputs: { message: one } }\n  - { id: bad, agent: broken, depends_on: first }\n  - { id: side, agent: echo, depends_on: first, inputs: { message: side } }\n  - { id: last, agent: echo, depends_on: [bad, side], inputs: { message: last } }\n`);
  await register(swarm, dir, 'goes-on', `  - { id: bad, agent: broken, on_error: continue }\n  - { id: after, agent: echo, depends_on: bad, inputs: { message: after } }\n`);
  await register(swarm, dir, 'waits', `  - { id: sig, kind: wait, signal: go, timeout: 1h }\n  - { id: ev, kind: wait, event: log.test, buffer: true, timeout: 1h }\n  - { id: nap, kind: sleep, for: 1s, depends_on: [sig, ev] }\n  - { id: end, agent: echo, depends_on: nap, inputs: { message: woke } }\n`);
  await register(swarm, dir, 'asks', `  - { id: ask, agent: approval }\n  - { id: then, agent: echo, depends_on: ask, inputs: { message: approved } }\n`);
  await register(swarm, dir, 'parked', `  - { id: hold, kind: wait, signal: never, timeout: 1h }\n  - { id: then, agent: echo, depends_on: hold, inputs: { message: never } }\n`);

  const w = swarm.worker({ pollMs: 50 });
  try {
    const runs: Record<string, string> = {};
    runs.fanOutLong = await swarm.startRun('fan-out', { text: 'one two three four five six seven' });
    runs.fanOutSkipped = await swarm.startRun('fan-out', { text: 'short text' });
    runs.map = await swarm.startRun('map-resize', { images: ['a.png', 'b.png', 'c.png', 'd.png', 'e.png', 'f.png'] });
    runs.mapEmpty = await swarm.startRun('map-resize', { images: [] });
    runs.child = await swarm.startRun('parent-child', { message: 'hi' });
    runs.retries = await swarm.startRun('retries', {});
    runs.fails = await swarm.startRun('fails', {});
    runs.goesOn = await swarm.startRun('goes-on', {});
    runs.waits = await swarm.startRun('waits', {});
    runs.asks = await swarm.startRun('asks', {});
    runs.parked = await swarm.startRun('parked', {});
    for (const k of ['fanOutLong', 'fanOutSkipped', 'map', 'mapEmpty', 'child', 'retries', 'fails', 'goesOn']) await swarm.wait(runs[k] as string);

    // A fork of the retried run at its last step: it copies `a` with the retry count it had there.
    runs.forked = (await swarm.fork(runs.retries, { at: 'b' })).run_id;
    await swarm.wait(runs.forked);

    // The failed run, fixed and retried: only what failed (and what it held back) runs again.
    broken = false;
    await swarm.retry(runs.fails);
    await swarm.wait(runs.fails);

    await until(async () => (await stepStatus(swarm, runs.waits as string, 'sig')) === 'waiting', 15_000, 'sig waiting');
    await swarm.signalRun(runs.waits, 'go', { n: 1 });
    await swarm.signalRun(runs.waits, 'extra', { kept: true });
    await swarm.emitEvent('log.test', { n: 2 });
    await swarm.wait(runs.waits);

    await until(async () => (await swarm.getRun(runs.asks as string)).run.status === 'waiting', 15_000, 'approval asked');
    await swarm.approve(runs.asks, 'ask', { reason: 'fine', by: 'tester' });
    await swarm.wait(runs.asks);

    await until(async () => (await stepStatus(swarm, runs.parked as string, 'hold')) === 'waiting', 15_000, 'hold waiting');
    await swarm.cancel(runs.parked, 'no longer needed');
    return runs;
  } finally {
    await w.stop(2000);
  }
}
