/**
 * Durable sleep and wait steps through the public API, on a real SQLite file with a real worker:
 * parking (no lease), waking on time, event delivery with match and buffer, timeouts, signals,
 * cancel, and the registration checks with file and line.
 */
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ManifestError, UserError } from '../src/core/errors.js';
import { Swarm } from '../src/swarm.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { builtinAgent, EXAMPLES, openProject, removeProject, tempProject, until, writeWorkflow } from './helpers/project.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(): Promise<{ dir: string; swarm: Swarm }> {
  const dir = tempProject();
  const swarm = await openProject(dir, { overrides: { pollMs: 100 } });
  cleanups.push(() => removeProject(dir));
  cleanups.push(() => swarm.close());
  builtinAgent(dir, 'noop', 'noop');
  await swarm.registerAgent(join(dir, 'agents', 'noop'));
  return { dir, swarm };
}

async function register(swarm: Swarm, dir: string, name: string, steps: string): Promise<void> {
  await swarm.registerWorkflow(writeWorkflow(dir, name, `name: ${name}\nversion: 1.0.0\nsteps:\n${steps}`));
}

/** A worker for the whole store, stopped at the end of the test. */
function worker(swarm: Swarm): void {
  const w = swarm.worker({ pollMs: 100 });
  cleanups.push(() => w.stop(1000));
}

async function stepOf(swarm: Swarm, runId: string, stepId: string) {
  return (await swarm.getRun(runId)).steps.find((s) => s.step_id === stepId);
}

async function waitingStep(swarm: Swarm, runId: string, stepId: string): Promise<void> {
  await until(async () => (await stepOf(swarm, runId, stepId))?.status === 'waiting', 15_000, `${stepId} waiting`);
}

describe('sleep steps', () => {
  it('a 1s sleep parks the step without a lease, wakes on time and completes the run; no approval is asked', async () => {
    const { dir, swarm } = await setup();
    await register(swarm, dir, 'nap', `  - { id: nap, kind: sleep, for: 1s }\n  - { id: after, agent: noop, depends_on: nap }\n`);
    worker(swarm);
    const t0 = Date.now();
    const id = await swarm.startRun('nap', {});
    await waitingStep(swarm, id, 'nap');
    const parked = await stepOf(swarm, id, 'nap');
    expect(parked).toMatchObject({ status: 'waiting', lease_owner: null });
    expect((await swarm.getRun(id)).run.status).toBe('waiting');
    const { run, steps } = await swarm.wait(id);
    expect(run.status).toBe('completed');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(steps.find((s) => s.step_id === 'nap')?.outputs).toMatchObject({ slept_until: expect.any(String), woke_at: expect.any(String) });
    const types = (await swarm.events(id)).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['STEP_WAITING', 'WAIT_RESOLVED', 'RUN_COMPLETED']));
    expect(await swarm.listApprovals({ runId: id, status: 'all' })).toEqual([]);
  });

  it('until: a reference to a time in the past wakes at once; a value that is no time fails the step, not retried', async () => {
    const { dir, swarm } = await setup();
    swarm.defineBuiltin('due', async (inputs) => ({ due_at: inputs.at }));
    builtinAgent(dir, 'due', 'due', 'inputs:\n  - { name: at, type: any }\noutputs:\n  - { name: due_at, type: any }\n');
    await swarm.registerAgent(join(dir, 'agents', 'due'));
    await register(swarm, dir, 'until', `  - { id: due, agent: due, inputs: { at: "\${trigger.at}" } }\n  - { id: nap, kind: sleep, until: "\${steps.due.outputs.due_at}" }\n`);
    worker(swarm);
    const past = await swarm.wait(await swarm.startRun('until', { at: '2020-01-01T00:00:00Z' }));
    expect(past.run.status).toBe('completed');
    expect(past.steps.find((s) => s.step_id === 'nap')?.outputs).toMatchObject({ slept_until: '2020-01-01T00:00:00.000Z' });
    const soon = await swarm.wait(await swarm.startRun('until', { at: Date.now() + 800 }));
    expect(soon.run.status).toBe('completed');
    const bad = await swarm.wait(await swarm.startRun('until', { at: 'next tuesday' }));
    expect(bad.run.status).toBe('failed');
    const nap = bad.steps.find((s) => s.step_id === 'nap');
    expect(nap).toMatchObject({ status: 'failed', attempt: 1 });
    expect(nap?.error).toContain('"next tuesday" is not a time');
  });

  it('cancelling a sleeping run cancels the step; the wake time passes and nothing runs', async () => {
    const { dir, swarm } = await setup();
    await register(swarm, dir, 'nap', `  - { id: nap, kind: sleep, for: 1s }\n  - { id: after, agent: noop, depends_on: nap }\n`);
    worker(swarm);
    const id = await swarm.startRun('nap', {});
    await waitingStep(swarm, id, 'nap');
    await swarm.cancel(id);
    await new Promise((r) => setTimeout(r, 1500));
    const { run, steps } = await swarm.getRun(id);
    expect(run.status).toBe('cancelled');
    expect(steps.map((s) => s.status)).toEqual(['cancelled', 'cancelled']);
    expect((await swarm.events(id)).map((e) => e.type)).not.toContain('WAIT_RESOLVED');
  });
});

describe('wait steps', () => {
  it('an event is delivered to the run whose match holds; the step outputs the event data', async () => {
    const { dir, swarm } = await setup();
    await register(swarm, dir, 'order', `  - { id: paid, kind: wait, event: order.paid, match: "event.data.order_id == trigger.order_id" }\n  - { id: ship, agent: noop, depends_on: paid }\n`);
    worker(swarm);
    const one = await swarm.startRun('order', { order_id: 1 });
    const two = await swarm.startRun('order', { order_id: 2 });
    await waitingStep(swarm, one, 'paid');
    await waitingStep(swarm, two, 'paid');
    await swarm.emitEvent('order.paid', { order_id: 2, total: 30 });
    const done = await swarm.wait(two);
    expect(done.run.status).toBe('completed');
    expect(done.steps.find((s) => s.step_id === 'paid')?.outputs).toEqual({ order_id: 2, total: 30 });
    expect((await stepOf(swarm, one, 'paid'))?.status).toBe('waiting');
    await swarm.emitEvent('order.paid', { order_id: 1, total: 10 });
    expect((await swarm.wait(one)).steps.find((s) => s.step_id === 'paid')?.outputs).toEqual({ order_id: 1, total: 10 });
  });

  it('buffer: true takes an event raised before the step began waiting; without buffer it keeps waiting', async () => {
    const { dir, swarm } = await setup();
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    swarm.defineBuiltin('gate', async () => {
      await gate;
      return {};
    });
    builtinAgent(dir, 'gate', 'gate');
    await swarm.registerAgent(join(dir, 'agents', 'gate'));
    await register(swarm, dir, 'buffered', `  - { id: g, agent: gate }\n  - { id: paid, kind: wait, event: order.paid, buffer: true, depends_on: g }\n`);
    await register(swarm, dir, 'unbuffered', `  - { id: g, agent: gate }\n  - { id: paid, kind: wait, event: order.paid, timeout: 1s, on_timeout: continue, depends_on: g }\n`);
    worker(swarm);
    const b = await swarm.startRun('buffered', {});
    const u = await swarm.startRun('unbuffered', {});
    await until(async () => (await stepOf(swarm, b, 'g'))?.status === 'running' && (await stepOf(swarm, u, 'g'))?.status === 'running');
    await swarm.emitEvent('order.paid', { n: 1 }, { id: 'evt-1' });
    open();
    const buffered = await swarm.wait(b);
    expect(buffered.steps.find((s) => s.step_id === 'paid')?.outputs).toEqual({ n: 1 });
    const unbuffered = await swarm.wait(u);
    expect(unbuffered.steps.find((s) => s.step_id === 'paid')?.outputs).toEqual({ timed_out: true });
  });

  it('a timeout with on_timeout: fail fails the run with WAIT_TIMEOUT', async () => {
    const { dir, swarm } = await setup();
    await register(swarm, dir, 'late', `  - { id: paid, kind: wait, event: order.paid, timeout: 1s }\n`);
    worker(swarm);
    const { run, steps } = await swarm.wait(await swarm.startRun('late', {}));
    expect(run.status).toBe('failed');
    expect(steps[0]?.error).toMatch(/timed out/);
  });

  it('signals are kept until a wait takes them, in order; finished and unknown runs refuse them', async () => {
    const { dir, swarm } = await setup();
    await register(swarm, dir, 'sig', `  - { id: first, kind: wait, signal: go }\n  - { id: second, kind: wait, signal: go, depends_on: first }\n`);
    const id = await swarm.startRun('sig', {});
    // Sent before any worker runs the run: both are kept.
    expect(await swarm.signalRun(id, 'go', { n: 1 })).toMatchObject({ run_id: id, seq: expect.any(Number), delivered_to: null });
    await swarm.signalRun(id, 'go', 7);
    worker(swarm);
    const { run, steps } = await swarm.wait(id);
    expect(run.status).toBe('completed');
    expect(steps.map((s) => s.outputs)).toEqual([{ n: 1 }, { data: 7 }]);
    expect((await swarm.runSignals(id)).signals.map((s) => s.consumed_by)).toEqual(['first', 'second']);
    await expect(swarm.signalRun(id, 'go', {})).rejects.toMatchObject({ code: 'RUN_FINISHED' });
    await expect(swarm.signalRun('no-such-run', 'go', {})).rejects.toBeInstanceOf(UserError);
    await expect(swarm.signalRun(id, 'bad name', {})).rejects.toMatchObject({ code: 'SIGNAL_NAME_INVALID' });
  });

  it('a signal to a waiting step is delivered in the same transaction', async () => {
    const { dir, swarm } = await setup();
    await register(swarm, dir, 'sig', `  - { id: w, kind: wait, signal: go }\n`);
    worker(swarm);
    const id = await swarm.startRun('sig', {});
    await waitingStep(swarm, id, 'w');
    expect((await swarm.signalRun(id, 'go', { ok: true })).delivered_to).toBe('w');
    expect((await swarm.wait(id)).steps[0]?.outputs).toEqual({ ok: true });
  });
});

describe('registration checks', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['bad duration', '  - { id: a, kind: sleep, for: 3 days }\n', /steps\[0\]\.for: '3 days' is not a duration/],
    ['for and until', '  - { id: a, kind: sleep, for: 1s, until: "2030-01-01" }\n', /'for' or 'until', not both/],
    ['neither', '  - { id: a, kind: sleep }\n', /needs 'for: <duration>'/],
    ['bad until', '  - { id: a, kind: sleep, until: "soon" }\n', /'soon' is not a time/],
    ['wait without event or signal', '  - { id: a, kind: wait }\n', /needs 'event: <name>'/],
    ['bad match', '  - { id: a, kind: wait, event: order.paid, match: "event.data.x ==" }\n', /steps\[0\]\.match: invalid match/],
    ['match on unknown root', '  - { id: a, kind: wait, event: order.paid, match: "order.x == 1" }\n', /unknown name 'order'/],
    ['on_timeout', '  - { id: a, kind: wait, signal: go, timeout: 1d, on_timeout: retry }\n', /on_timeout/],
    ['agent on a sleep', '  - { id: a, kind: sleep, for: 1s, agent: noop }\n', /runs no agent/],
    ['no agent, no kind', '  - { id: a }\n', /steps\[0\]\.agent: is required: step 'a' needs agent: \(the agent it runs\), workflow: \(the sub-workflow it runs\) or kind: sleep/],
    ['a sub-workflow on a sleep', '  - { id: a, kind: sleep, for: 1s, workflow: child }\n', /steps\[0\]\.workflow: a 'sleep' step runs no sub-workflow/],
    ['a map over a wait', '  - { id: a, kind: wait, signal: go, map: "${trigger.items}" }\n', /steps\[0\]\.map: a 'wait' step cannot map over a list/],
    ['built-in event name', '  - { id: a, kind: wait, event: run.completed }\n', /Swarm's own/],
  ];
  it('reports a step with neither agent, workflow nor kind once', async () => {
    const { dir, swarm } = await setup();
    const err = (await swarm.registerWorkflow(writeWorkflow(dir, 'bad', 'name: bad\nversion: 1.0.0\nsteps:\n  - { id: a }\n')).then(() => undefined, (e: unknown) => e)) as Error;
    expect(err.message.match(/is required/g)).toHaveLength(1);
  });
  for (const [what, steps, message] of cases) {
    it(`refuses ${what}, with file and line`, async () => {
      const { dir, swarm } = await setup();
      const err = await swarm.registerWorkflow(writeWorkflow(dir, 'bad', `name: bad\nversion: 1.0.0\nsteps:\n${steps}`)).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ManifestError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).toMatch(/workflow\.yaml:4/);
    });
  }

  it('an unknown event name is allowed; match may read the trigger and earlier steps', async () => {
    const { dir, swarm } = await setup();
    await register(swarm, dir, 'ok', `  - { id: n, agent: noop }\n  - { id: a, kind: wait, event: never.raised.yet, match: "event.data.x == trigger.x && steps.n.status == 'completed'", timeout: 2d, on_timeout: continue, buffer: true }\n`);
    const wf = await swarm.getWorkflow('ok');
    expect(wf.manifest.steps.find((s) => s.id === 'a')).toMatchObject({ kind: 'wait', agent: '', deps: ['n'], wait: { event: 'never.raised.yet', timeout_ms: 172_800_000, on_timeout: 'continue', buffer: true } });
  });
});

describe('the order-wait example', () => {
  it('a payment recorded before the step waits, a settle sleep, the warehouse signal: the confirmation quotes both', async () => {
    const { swarm } = await setup();
    await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
    await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'order-wait'));
    // The payment is recorded after the run was created, before any worker ran it (buffer: true keeps it for the run).
    const id = (await swarm.createRun('order-wait', { order_id: 7 })).runId;
    await swarm.emitEvent('order.paid', { order_id: 7, total: 130 });
    worker(swarm);
    await waitingStep(swarm, id, 'packed');
    expect((await swarm.signalRun(id, 'packed', { parcel: 'PX-1' })).delivered_to).toBe('packed');
    const { run, steps } = await swarm.wait(id);
    expect(run.status).toBe('completed');
    expect(steps.find((s) => s.step_id === 'confirm')?.outputs).toEqual({ echoed: 'order 7: paid 130, parcel PX-1' });
    expect(steps.find((s) => s.step_id === 'expired')?.status).toBe('skipped');
  });
});

describe('on PostgreSQL', () => {
  afterAll(() => stopPgTestServer());

  it('the order-wait example and a sleep, through a worker: buffered event, signal, wake on time, verified chains', async () => {
    const server = await pgTestServer();
    const url = await server.createDatabase();
    const dir = tempProject();
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_DATABASE_URL: url }, overrides: { pollMs: 100 } });
    cleanups.push(async () => {
      await swarm.close();
      removeProject(dir);
      await server.dropDatabase(url);
    });
    expect(swarm.store.kind).toBe('postgres');
    await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
    await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'order-wait'));
    await register(swarm, dir, 'nap', `  - { id: nap, kind: sleep, for: 1s }\n`);
    const order = (await swarm.createRun('order-wait', { order_id: 9 })).runId;
    await swarm.emitEvent('order.paid', { order_id: 9, total: 5 });
    const nap = await swarm.startRun('nap', {});
    worker(swarm);
    await waitingStep(swarm, order, 'packed');
    await swarm.signalRun(order, 'packed', { parcel: 'PG-1' });
    const done = await swarm.wait(order);
    expect(done.steps.find((s) => s.step_id === 'confirm')?.outputs).toEqual({ echoed: 'order 9: paid 5, parcel PG-1' });
    expect((await swarm.wait(nap)).run.status).toBe('completed');
    for (const id of [order, nap]) expect((await swarm.verify(id)).ok).toBe(true);
  });
});
