/**
 * Event triggers on SQLite and PostgreSQL: a run that completes, fails or asks for an approval starts
 * the workflows listening for that event in the same transaction; `filter` decides; custom events
 * (`emitEvent`) start their runs once per event id; and webhook deliveries through the library
 * start one run per delivery id on both stores.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Swarm } from '../src/swarm.js';
import type { RunRecord } from '../src/store/types.js';
import { resolveWebhookScheme, signWebhook } from '../src/triggers/index.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { builtinAgent, openProject, removeProject, runCli, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';

afterAll(async () => {
  await stopPgTestServer();
});

const BACKENDS = [
  { name: 'SQLite', env: async (): Promise<Record<string, string>> => ({}) },
  { name: 'PostgreSQL', env: async (): Promise<Record<string, string>> => ({ SWARM_DATABASE_URL: await (await pgTestServer()).createDatabase() }) },
];

const HOOK_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

const WORKFLOWS: Record<string, string> = {
  // Sources.
  'src-ok': 'name: src-ok\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: pass\n    inputs:\n      value: ${trigger.value}\n',
  'src-fail': 'name: src-fail\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: boom\n',
  'src-approve': 'name: src-approve\nversion: 1.0.0\nsteps:\n  - id: gate\n    agent: gate\n',
  // Listeners.
  'after-ok': 'name: after-ok\nversion: 1.0.0\ntrigger: { type: event, on: run.completed, source: src-ok }\nsteps:\n  - id: a\n    agent: pass\n',
  'never': 'name: never\nversion: 1.0.0\ntrigger: { type: event, on: run.completed, source: src-ok, filter: "trigger.run.workflow == \'nope\'" }\nsteps:\n  - id: a\n    agent: pass\n',
  'after-fail': 'name: after-fail\nversion: 1.0.0\ntrigger: { type: event, on: run.failed, source: src-fail }\nsteps:\n  - id: a\n    agent: pass\n',
  'on-approval': 'name: on-approval\nversion: 1.0.0\ntrigger: { type: event, on: approval.requested }\nsteps:\n  - id: a\n    agent: pass\n',
  'big-orders': 'name: big-orders\nversion: 1.0.0\ntrigger: { type: event, on: order.paid, filter: "trigger.data.total > 100" }\nsteps:\n  - id: a\n    agent: pass\n',
  // A webhook, for deliveries through the library on both stores.
  'hooked': 'name: hooked\nversion: 1.0.0\ntrigger: { type: webhook, path: in/hooked, secret: "${secrets.HOOK}" }\nsteps:\n  - id: a\n    agent: pass\n',
  // A loop: its completion starts it again, once: the second run is in its own chain.
  'loop': 'name: loop\nversion: 1.0.0\ntrigger: { type: event, on: run.completed, source: loop }\nsteps:\n  - id: a\n    agent: pass\n',
};

async function project(env: Record<string, string>): Promise<{ swarm: Swarm; dir: string }> {
  const dir = tempProject('name: events-test\nsandbox: none\n');
  const swarm = await openProject(dir, { env: { SWARM_HOME: `${dir}/.swarm`, SWARM_SECRET_HOOK: HOOK_SECRET, ...env } });
  swarm.defineBuiltin('pass', async (inputs) => ({ value: inputs.value ?? null }));
  swarm.defineBuiltin('boom', async () => {
    throw new Error('boom on purpose');
  });
  await swarm.registerAgent(builtinAgent(dir, 'pass', 'pass'));
  await swarm.registerAgent(builtinAgent(dir, 'boom', 'boom'));
  await swarm.registerAgent(builtinAgent(dir, 'gate', 'approval'));
  for (const [name, yaml] of Object.entries(WORKFLOWS)) await swarm.registerWorkflow(writeWorkflow(dir, name, yaml));
  return { swarm, dir };
}

async function runsOf(swarm: Swarm, workflow: string): Promise<RunRecord[]> {
  return swarm.listRuns({ workflow, limit: 1000 });
}

describe.each(BACKENDS)('event triggers on $name', ({ env }) => {
  it('run.completed starts the listening workflow with the event as trigger data, in the same transaction; a filter that is false starts none', async () => {
    const { swarm, dir } = await project(await env());
    try {
      const src = await swarm.startRun('src-ok', { value: 7 });
      const { run } = await swarm.runToCompletion(src);
      expect(run.status).toBe('completed');
      const [after, ...more] = await runsOf(swarm, 'after-ok');
      expect(more).toEqual([]);
      expect(after).toBeDefined();
      const completedSeq = (await swarm.events(src)).find((e) => e.type === 'RUN_COMPLETED')?.seq;
      expect(after).toMatchObject({ trigger_type: 'event', parent_run_id: src, idempotency_key: `event:${src}:${completedSeq}:after-ok` });
      expect(after?.trigger_data).toMatchObject({
        id: `${src}:${completedSeq}`,
        name: 'run.completed',
        source: 'src-ok',
        depth: 1,
        run: { id: src, workflow: 'src-ok', version: '1.0.0', status: 'completed', error: null },
      });
      // The source run's log says which run its event started, and its chain still verifies.
      const started = (await swarm.events(src)).filter((e) => e.type === 'EVENT_STARTED_RUN');
      expect(started.map((e) => e.data)).toEqual([{ event: 'run.completed', event_id: `${src}:${completedSeq}`, trigger: 'after-ok', workflow: 'after-ok', version: '1.0.0', run_id: after?.id }]);
      expect((await swarm.verify(src)).ok).toBe(true);
      // `never` listens for the same event, but its filter is false.
      expect(await runsOf(swarm, 'never')).toEqual([]);
      // The triggered run runs like any other.
      expect((await swarm.runToCompletion(after?.id ?? '')).run.status).toBe('completed');
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });

  it('run.failed and approval.requested start their listeners; a disabled listener starts nothing', async () => {
    const { swarm, dir } = await project(await env());
    try {
      const failed = await swarm.startRun('src-fail');
      expect((await swarm.runToCompletion(failed)).run.status).toBe('failed');
      const [after] = await runsOf(swarm, 'after-fail');
      expect(after?.trigger_data).toMatchObject({ name: 'run.failed', source: 'src-fail', run: { id: failed, status: 'failed', step: 'a', error: expect.stringContaining('boom on purpose') as unknown } });

      const gated = await swarm.startRun('src-approve');
      expect((await swarm.runToCompletion(gated)).run.status).toBe('waiting');
      const [asked, ...more] = await runsOf(swarm, 'on-approval');
      expect(more).toEqual([]);
      expect(asked?.trigger_data).toMatchObject({ name: 'approval.requested', source: 'src-approve', step: 'gate', run: { id: gated } });

      await swarm.setWorkflowEnabled('after-fail', false);
      const again = await swarm.startRun('src-fail');
      await swarm.runToCompletion(again);
      expect((await runsOf(swarm, 'after-fail')).map((r) => r.parent_run_id)).toEqual([failed]);
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });

  it('emitEvent: the filter decides; the same id twice starts one run; reserved names and a reused id are refused', async () => {
    const { swarm, dir } = await project(await env());
    try {
      const small = await swarm.emitEvent('order.paid', { order: 1, total: 20 });
      expect(small).toMatchObject({ name: 'order.paid', created: true, runs: [], skipped: [] });
      const first = await swarm.emitEvent('order.paid', { order: 2, total: 130 }, { id: 'evt-2' });
      expect(first).toMatchObject({ id: 'evt-2', created: true });
      expect(first.runs).toHaveLength(1);
      const again = await swarm.emitEvent('order.paid', { order: 2, total: 130 }, { id: 'evt-2' });
      expect(again).toEqual({ id: 'evt-2', name: 'order.paid', created: false, runs: first.runs, skipped: [] });
      const runs = await runsOf(swarm, 'big-orders');
      expect(runs.map((r) => r.id)).toEqual(first.runs);
      expect(runs[0]).toMatchObject({ trigger_type: 'event', idempotency_key: 'event:evt-2:big-orders', parent_run_id: null });
      expect(runs[0]?.trigger_data).toMatchObject({ id: 'evt-2', name: 'order.paid', source: null, depth: 1, data: { order: 2, total: 130 } });
      // Concurrent repeats of one id: still one run.
      const burst = await Promise.all(Array.from({ length: 5 }, () => swarm.emitEvent('order.paid', { total: 500 }, { id: 'evt-3' })));
      expect(new Set(burst.map((b) => b.runs.join()))).toHaveProperty('size', 1);
      expect(burst.filter((b) => b.created)).toHaveLength(1);
      expect(await runsOf(swarm, 'big-orders')).toHaveLength(2);

      await expect(swarm.emitEvent('run.completed', {})).rejects.toMatchObject({ code: 'EVENT_NAME_RESERVED' });
      await expect(swarm.emitEvent('Order Paid', {})).rejects.toMatchObject({ code: 'EVENT_NAME_INVALID' });
      await expect(swarm.emitEvent('order.refunded', {}, { id: 'evt-2' })).rejects.toMatchObject({ code: 'EVENT_ID_REUSED' });
      expect(await runsOf(swarm, 'big-orders')).toHaveLength(2);
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });

  it('retention: the schedule holder prunes custom events past retention.emitted_events, at most once a minute, in batches; a pruned id repeated starts no second run', async () => {
    const DAY = 86_400_000;
    const { swarm, dir } = await project(await env());
    try {
      expect(swarm.config.retention.emittedEventsMs).toBe(30 * DAY);
      const first: string[][] = [];
      for (let i = 1; i <= 5; i++) first.push((await swarm.emitEvent('order.paid', { order: i, total: 200 }, { id: `old-${i}` })).runs);
      const batches: number[] = [];
      const prune = swarm.store.pruneEmittedEvents.bind(swarm.store);
      swarm.store.pruneEmittedEvents = async (before, limit) => {
        const n = await prune(before, limit);
        batches.push(n);
        return n;
      };
      let now = Date.now();
      const retention = { emittedEventsMs: 30 * DAY, batchSize: 2, now: () => now };
      const holder = swarm.scheduler({ holder: 'holder', retention });
      const standby = swarm.scheduler({ holder: 'standby', retention, renewEveryMs: 0 });
      // Nothing is 30 days old yet: nothing pruned, the ids still known.
      expect((await holder.pass()).pruned).toBe(0);
      expect((await swarm.emitEvent('order.paid', { order: 1, total: 200 }, { id: 'old-1' })).created).toBe(false);
      now += 31 * DAY;
      // Only the schedule holder prunes.
      expect(await standby.pass()).toMatchObject({ holder: false, pruned: 0 });
      batches.length = 0;
      expect((await holder.pass()).pruned).toBe(5);
      expect(batches).toEqual([2, 2, 1]);
      // A pruned id repeated is a new event, but its run is found by its idempotency key: no second run.
      const again = await swarm.emitEvent('order.paid', { order: 1, total: 200 }, { id: 'old-1' });
      expect(again).toMatchObject({ created: true, runs: first[0] });
      expect(await runsOf(swarm, 'big-orders')).toHaveLength(5);
      // Within a minute of the last pruning: nothing, though that record is past its retention too.
      now += 30_000;
      expect((await holder.pass()).pruned).toBe(0);
      expect((await swarm.emitEvent('order.paid', { order: 1, total: 200 }, { id: 'old-1' })).created).toBe(false);
      now += 31_000;
      expect((await holder.pass()).pruned).toBe(1);
      await holder.stop();
      await standby.stop();
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });

  it('webhook deliveries: concurrent redeliveries of one delivery id start one run; a bad signature starts none', async () => {
    const { swarm, dir } = await project(await env());
    try {
      const body = Buffer.from(JSON.stringify({ value: 1 }));
      const headers = signWebhook(resolveWebhookScheme('standard'), HOOK_SECRET, body, { id: 'msg_same' });
      const out = await Promise.all(Array.from({ length: 6 }, () => swarm.deliverWebhook('in/hooked', { headers, body })));
      expect(new Set(out.map((o) => o.runId)).size).toBe(1);
      expect(out.filter((o) => o.created)).toHaveLength(1);
      const runs = await runsOf(swarm, 'hooked');
      expect(runs.map((r) => [r.trigger_type, r.idempotency_key])).toEqual([['webhook', 'webhook:in/hooked:msg_same']]);
      const forged = signWebhook(resolveWebhookScheme('standard'), 'whsec_Zm9yZ2VkIHNlY3JldCBmb3IgdGVzdHM=', body);
      await expect(swarm.deliverWebhook('in/hooked', { headers: forged, body })).rejects.toMatchObject({ code: 'WEBHOOK_SIGNATURE_MISMATCH' });
      expect(await runsOf(swarm, 'hooked')).toHaveLength(1);
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });

  it('a workflow triggered by its own completion starts once more: its second run is in the chain, and the log says why', async () => {
    const { swarm, dir } = await project(await env());
    try {
      const first = await swarm.startRun('loop');
      await swarm.runToCompletion(first);
      const all = await runsOf(swarm, 'loop');
      expect(all).toHaveLength(2);
      const second = all.find((r) => r.parent_run_id === first);
      expect(second?.trigger_data).toMatchObject({ depth: 1, chain: [] });
      await swarm.runToCompletion(second!.id);
      expect(await runsOf(swarm, 'loop')).toHaveLength(2);
      const skipped = (await swarm.events(second!.id)).find((e) => e.type === 'EVENT_TRIGGER_SKIPPED');
      expect(skipped?.data).toMatchObject({ event: 'run.completed', trigger: 'loop', workflow: 'loop', chain: ['loop'], reason: expect.stringContaining('already ran in this chain') as unknown });
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });

  it('two listeners of run.completed with no source: one manual run starts each of them exactly twice (A, B, A→B, B→A), not 2^11 times', async () => {
    const { swarm, dir } = await project(await env());
    try {
      await swarm.registerWorkflow(writeWorkflow(dir, 'plain', 'name: plain\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: pass\n'));
      for (const n of ['any-a', 'any-b']) {
        await swarm.registerWorkflow(writeWorkflow(dir, n, `name: ${n}\nversion: 1.0.0\ntrigger: { type: event, on: run.completed }\nsteps:\n  - id: a\n    agent: pass\n`));
      }
      const root = await swarm.startRun('plain');
      await swarm.runToCompletion(root);
      // Run whatever the events started until nothing is left; the bound only stops a regression early.
      for (let i = 0; i < 20; i++) {
        const queued = (await swarm.listRuns({ limit: 1000 })).filter((r) => r.status === 'queued');
        if (queued.length === 0) break;
        for (const r of queued) await swarm.runToCompletion(r.id);
      }
      const all = await swarm.listRuns({ limit: 1000 });
      expect(all.map((r) => r.workflow_name).sort()).toEqual(['any-a', 'any-a', 'any-b', 'any-b', 'plain']);
      expect(all.every((r) => r.status === 'completed')).toBe(true);
      const chains = all.filter((r) => r.trigger_type === 'event').map((r) => `${(r.trigger_data as { chain: string[] }).chain.join('>')}|${r.workflow_name}`).sort();
      expect(chains).toEqual(['any-a|any-b', 'any-b|any-a', '|any-a', '|any-b']);
      // The first-level run of any-a did not start any-a again, and its log says why.
      const a1 = all.find((r) => r.workflow_name === 'any-a' && r.parent_run_id === root);
      const skipped = (await swarm.events(a1!.id)).filter((e) => e.type === 'EVENT_TRIGGER_SKIPPED');
      expect(skipped.map((e) => e.data)).toEqual([expect.objectContaining({ trigger: 'any-a', chain: ['any-a'] })]);
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });

  it('a chain of distinct workflows stops at the depth limit, and its log says why', async () => {
    const { swarm, dir } = await project(await env());
    try {
      for (let i = 0; i <= 11; i++) {
        const trigger = i === 0 ? '' : `trigger: { type: event, on: run.completed, source: d${i - 1} }\n`;
        await swarm.registerWorkflow(writeWorkflow(dir, `d${i}`, `name: d${i}\nversion: 1.0.0\n${trigger}steps:\n  - id: a\n    agent: pass\n`));
      }
      let id = await swarm.startRun('d0');
      for (let i = 1; i <= 12; i++) {
        await swarm.runToCompletion(id);
        const next = (await runsOf(swarm, `d${i}`)).find((r) => r.parent_run_id === id);
        if (!next) break;
        id = next.id;
      }
      expect(await runsOf(swarm, 'd10')).toHaveLength(1);
      expect(await runsOf(swarm, 'd11')).toHaveLength(0);
      const last = (await swarm.events(id)).find((e) => e.type === 'EVENT_TRIGGER_FAILED');
      expect(last?.data).toMatchObject({ event: 'run.completed', trigger: 'd11', error: expect.stringContaining('at most 10') as unknown });
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });
});

describe('registration', () => {
  it("an event trigger on a name in Swarm's own name spaces that Swarm does not raise is refused with its line", async () => {
    const dir = tempProject('name: events-reg\nsandbox: none\n');
    const swarm = await openProject(dir);
    try {
      await swarm.registerAgent(builtinAgent(dir, 'noop', 'noop'));
      const file = writeWorkflow(dir, 'bad', 'name: bad\nversion: 1.0.0\ntrigger:\n  type: event\n  on: run.started\nsteps:\n  - id: a\n    agent: noop\n');
      await expect(swarm.registerWorkflow(file)).rejects.toThrow(/workflow\.yaml:5.*trigger\.on.*Swarm raises no event 'run\.started'/);
      expect(await swarm.listWorkflows('bad')).toEqual([]);
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });
});

describe('swarm events emit (the CLI)', () => {
  it('lists the triggers; emit starts the listening run, prints the event and its runs; --id makes a repeat start none; a bad name exits 2', async () => {
    const dir = tempProject('name: events-cli\nsandbox: none\n');
    try {
      writeAgent(dir, 'noop', 'name: noop\nversion: 1.0.0\nruntime:\n  type: builtin\n  entry: noop\n');
      writeWorkflow(dir, 'paid', 'name: paid\nversion: 1.0.0\ntrigger: { type: event, on: order.paid }\nsteps:\n  - id: a\n    agent: noop\n');
      for (const args of [['agent', 'register', 'agents/noop'], ['workflow', 'register', 'workflows/paid']]) {
        const r = await runCli(args, dir);
        expect(r.code, r.stderr).toBe(0);
      }
      const first = await runCli(['events', 'emit', 'order.paid', '{"total": 5}', '--id', 'evt-cli', '--json'], dir);
      expect(first.code, first.stderr).toBe(0);
      const out = JSON.parse(first.stdout) as { event_id: string; created: boolean; runs: string[] };
      expect(out).toMatchObject({ event_id: 'evt-cli', created: true });
      expect(out.runs).toHaveLength(1);
      const again = await runCli(['events', 'emit', 'order.paid', '{"total": 5}', '--id', 'evt-cli'], dir);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain('evt-cli was emitted before: nothing started');
      const listed = await runCli(['events', 'triggers'], dir);
      expect(listed.stdout.trim()).toBe('paid@1.0.0  on order.paid');
      const bad = await runCli(['events', 'emit', 'run.completed', '{}'], dir);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/^swarm: event name 'run.completed' is Swarm's own/);
      const swarm = await openProject(dir);
      try {
        expect((await swarm.listRuns({ workflow: 'paid' })).map((r) => r.id)).toEqual(out.runs);
      } finally {
        await swarm.close();
      }
    } finally {
      removeProject(dir);
    }
  });
});
