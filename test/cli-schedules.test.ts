/**
 * `swarm schedules list | show | preview | pause | resume | trigger` as a user runs them, with
 * `--json`, and the errors for an unknown workflow or one without a schedule (exit 2).
 * Build first: `npm run build`.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupSandboxes, EXAMPLES, makeSandbox, show } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

describe('swarm schedules', () => {
  it('lists, previews, pauses, resumes and triggers; unknown or unscheduled workflows exit 2', async () => {
    const s = makeSandbox();
    s.write('workflows/nightly/workflow.yaml', 'name: nightly\nversion: 1.0.0\ntrigger: {type: schedule, cron: "30 2 * * *", timezone: America/New_York}\nsteps:\n  - {id: a, agent: echo, inputs: {message: hi}}\n');
    s.write('workflows/plain/workflow.yaml', 'name: plain\nversion: 1.0.0\nsteps:\n  - {id: a, agent: echo, inputs: {message: hi}}\n');
    for (const args of [['agent', 'register', join(EXAMPLES.agents, 'echo')], ['workflow', 'register', 'workflows/nightly'], ['workflow', 'register', 'workflows/plain']]) {
      const r = await s.run(args);
      expect(r.code, show(r)).toBe(0);
    }

    const list = await s.run(['schedules', 'list']);
    expect(list.code, show(list)).toBe(0);
    expect(list.stdout).toMatch(/WORKFLOW\s+CRON\s+TIMEZONE\s+NEXT RUN\s+LAST FIRED\s+STATE/);
    expect(list.stdout).toMatch(/nightly\s+30 2 \* \* \*\s+America\/New_York\s+\d{4}-\d\d-\d\d 0[67]:30:00Z\s+-\s+active/);
    const json = await s.json<Array<Record<string, unknown>>>(['schedules', 'list', '--json']);
    expect(json).toMatchObject([{ workflow: 'nightly', cron: '30 2 * * *', timezone: 'America/New_York', paused: false, enabled: true, last_fired_at: null }]);

    const preview = await s.json<{ ticks: string[] }>(['schedules', 'preview', 'nightly', '--count', '3', '--json']);
    expect(preview.ticks).toHaveLength(3);
    expect(preview.ticks[0]).toBe(json[0]!.next_run_at);
    const text = await s.run(['schedules', 'preview', 'nightly']);
    expect(text.stdout.trim().split('\n')).toHaveLength(6);

    expect((await s.run(['schedules', 'pause', 'nightly'])).stdout).toContain('schedule of nightly paused');
    expect((await s.run(['schedules', 'list'])).stdout).toMatch(/nightly .* paused/);
    expect((await s.run(['schedules', 'resume', 'nightly'])).stdout).toMatch(/schedule of nightly resumed \(next tick \d{4}-\d\d-\d\d \S+Z(; a tick missed while it was paused fires first \(catchup: \w+\))?\)/);
    // `show`: every value starts in the same column.
    const shown = (await s.run(['schedules', 'show', 'nightly'])).stdout.split('\n').filter((l) => l.startsWith('  '));
    expect(shown.map((l) => l.slice(0, 13).trimEnd())).toEqual(['  cron', '  overlap', '  catchup', '  next run', '  last fired']);
    expect(new Set(shown.map((l) => /^ {2}\S+(?: \S+)? +/.exec(l)?.[0].length)).size).toBe(1);

    const fired = await s.json<{ run_id: string }>(['schedules', 'trigger', 'nightly', '--json']);
    const runs = s.query<{ id: string; trigger_type: string }>('SELECT id, trigger_type FROM workflow_runs');
    expect(runs).toEqual([{ id: fired.run_id, trigger_type: 'schedule' }]);

    const unknown = await s.run(['schedules', 'pause', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/workflow 'nope' not found/);
    const plain = await s.run(['schedules', 'preview', 'plain']);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/workflow plain has no schedule \(its trigger is manual\)/);
    // One range, whichever end is crossed.
    for (const n of ['0', '1001']) {
      const bad = await s.run(['schedules', 'preview', 'nightly', '--count', n]);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim()).toBe(`swarm: --count must be a whole number from 1 to 1000, not '${n}'`);
    }
  });
});
