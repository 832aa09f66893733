/**
 * `trigger:` blocks are checked in full when a workflow is registered: a schedule with a bad cron or
 * an unknown time zone, a webhook that could never be verified, an event trigger with a bad filter
 * are refused with file and line (all problems at once), and a valid non-manual trigger registers
 * (its trigger row is written with it). Build first: `npm run build`.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { ManifestError } from '../src/core/errors.js';
import { parseWorkflowManifest } from '../src/core/manifest/workflow.js';
import { cleanupSandboxes, makeSandbox, show } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

const STEPS = 'steps:\n  - {id: a, agent: echo}\n';

function problemsOf(trigger: string): Array<{ field?: string; problem: string; line?: number }> {
  try {
    parseWorkflowManifest(`name: t\nversion: 1.0.0\n${trigger}${STEPS}`, 'workflow.yaml');
  } catch (e) {
    if (!(e instanceof ManifestError)) throw e;
    return e.problems.map((p) => ({ field: p.field, problem: p.problem, line: p.line }));
  }
  return [];
}

describe('trigger blocks', () => {
  test('valid triggers of every type parse', () => {
    expect(problemsOf('trigger: {type: manual}\n')).toEqual([]);
    expect(problemsOf('trigger: {type: schedule, cron: "0 9 * * 1-5", timezone: Europe/Paris, overlap: skip, catchup: {policy: all, window: 2h, max_runs: 5}}\n')).toEqual([]);
    expect(problemsOf('trigger: {type: webhook, path: shop/orders, secret: "${secrets.ORDERS_HOOK}", scheme: github}\n')).toEqual([]);
    expect(problemsOf('trigger: {type: webhook, path: orders, secret: ["${secrets.NEW}", "${secrets.OLD}"]}\n')).toEqual([]);
    expect(problemsOf('trigger: {type: webhook, path: open, auth: none}\n')).toEqual([]);
    expect(problemsOf('trigger: {type: event, on: run.failed, source: billing, filter: "trigger.error != null"}\n')).toEqual([]);
  });

  test('a schedule with a bad cron and an unknown time zone: both problems, on their lines', () => {
    const p = problemsOf('trigger:\n  type: schedule\n  cron: "61 * * * *"\n  timezone: Europe/Pariss\n');
    expect(p.map((x) => [x.field, x.line])).toEqual([
      ['trigger.cron', 5],
      ['trigger.timezone', 6],
    ]);
    expect(p[1]!.problem).toMatch(/unknown time zone 'Europe\/Pariss'.*Europe\/Paris/);
  });

  test('a webhook without a secret, a secret written in the file, a bad path, a bad scheme', () => {
    expect(problemsOf('trigger: {type: webhook, path: orders}\n')).toEqual([
      { field: 'trigger', line: 3, problem: expect.stringMatching(/needs a secret.*auth: none/) },
    ]);
    const p = problemsOf('trigger:\n  type: webhook\n  path: /Orders\n  secret: hunter2\n  scheme: {type: hmac, header: X-Sig, algorithm: md5}\n');
    expect(p.map((x) => x.field)).toEqual(['trigger.path', 'trigger.secret', 'trigger.scheme.algorithm']);
    expect(p[1]!.problem).toMatch(/must reference a secret, such as \$\{secrets\.ORDERS_HOOK\}, not hold its value/);
    // The value is not repeated in the error.
    expect(JSON.stringify(p)).not.toContain('hunter2');
    expect(problemsOf('trigger: {type: webhook, path: o, auth: none, secret: "${secrets.X}"}\n').map((x) => x.field)).toEqual(['trigger.auth']);
  });

  test('an event trigger without a name, with a bad filter, or an unknown option', () => {
    expect(problemsOf('trigger: {type: event}\n').map((x) => x.problem)).toEqual([expect.stringContaining('needs on:')]);
    const p = problemsOf('trigger:\n  type: event\n  on: Order Paid\n  filter: "trigger.total >"\n  cron: "* * * * *"\n');
    expect(p.map((x) => [x.field, x.line])).toEqual([
      ['trigger.on', 5],
      ['trigger.filter', 6],
      ['trigger.cron', 7],
    ]);
    // The filter sees the event as `trigger`, the data the started run gets: other names are refused.
    expect(problemsOf('trigger: {type: event, on: order.paid, filter: "event.total > 1"}\n').map((x) => x.problem)).toEqual([expect.stringContaining("unknown name 'event'")]);
  });
});

describe('registering a workflow with a trigger', () => {
  test('a valid schedule registers without a warning; a bad one exits 2 naming file and line, and nothing is stored', async () => {
    const s = makeSandbox();
    s.write('agents/echo/agent.yaml', 'name: echo\nversion: 1.0.0\nruntime: {type: builtin, entry: echo}\n');
    s.write('workflows/nightly/workflow.yaml', `name: nightly\nversion: 1.0.0\ntrigger: {type: schedule, cron: "0 2 * * *"}\n${STEPS}`);
    const bad = s.write('workflows/broken/workflow.yaml', `name: broken\nversion: 1.0.0\ntrigger:\n  type: schedule\n  cron: "0 25 * * *"\n${STEPS}`);
    expect((await s.run(['agent', 'register', 'agents/echo'])).code).toBe(0);

    const ok = await s.run(['workflow', 'register', 'workflows/nightly']);
    expect(ok.code, show(ok)).toBe(0);
    // Fired by `swarm serve` (docs/schedules.md): no "not fired yet" warning any more.
    expect(ok.stderr).not.toContain('warning');

    const r = await s.run(['workflow', 'register', 'workflows/broken']);
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr.trim()).toMatch(new RegExp(`^swarm: ${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:5: trigger\\.cron: `));
    const list = await s.run(['workflow', 'list', '--json']);
    expect((JSON.parse(list.stdout) as Array<{ name: string }>).map((w) => w.name)).toEqual(['nightly']);
  });
});
