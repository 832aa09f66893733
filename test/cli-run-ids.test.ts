/**
 * Run ids at the command line: UUIDv7 ids start with their creation time, so runs started minutes
 * apart share a prefix. The CLI shows the random end (the short id), accepts it back, refuses an
 * ambiguous part with the runs it matches, and names the id `run_id` in every JSON document.
 * Real processes, real SQLite files. Build first: `npm run build`.
 */
import { afterAll, describe, test } from 'vitest';
import { cleanupSandboxes, examplesStore, lines, makeSandbox, show } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

interface ListRow {
  run_id: string;
  id: string;
  workflow_name: string;
}

describe.concurrent('run ids', () => {
  test('short ids are shown and accepted; an ambiguous prefix is refused with the candidates', async ({ expect }) => {
    const s = makeSandbox();
    s.copyStore(await examplesStore());
    const first = await s.run(['run', 'echo-chain', '{"message": "a"}']);
    expect(first.code, show(first)).toBe(0);
    const second = await s.run(['run', 'echo-chain', '{"message": "b"}']);
    expect(second.code, show(second)).toBe(0);
    const list = await s.json<ListRow[]>(['runs', 'list', '--json']);
    const [b, a] = list.map((r) => r.run_id) as [string, string];
    // Started seconds apart: the ids begin with the same characters (a time; 8 of them while in the same minute).
    let n = 0;
    while (a[n] === b[n]) n++;
    const common = a.slice(0, n);
    expect(common.length).toBeGreaterThanOrEqual(4);
    const shortA = a.slice(-12);
    const shortB = b.slice(-12);
    expect(shortA).not.toBe(shortB);

    // `swarm run` names the run by its short id.
    expect(first.stderr).toMatch(new RegExp(`run ${shortA} completed`));
    expect(first.stderr).not.toContain(a);
    // `runs list` shows short ids.
    const table = await s.run(['runs', 'list']);
    expect(lines(table.stdout).slice(1).map((l) => l.split(/\s+/)[0])).toEqual([shortB, shortA]);

    // Short ids, full ids and unique prefixes are accepted.
    for (const [given, full] of [[shortA, a], [shortB, b], [a, a], [b.slice(0, 30), b]] as const) {
      const doc = await s.json<{ run_id: string }>(['runs', 'show', given, '--json']);
      expect(doc.run_id, `runs show ${given}`).toBe(full);
    }
    expect((await s.run(['runs', 'verify', shortA])).code).toBe(0);
    // An id copied in upper case is the same id.
    for (const given of [a.toUpperCase(), shortB.toUpperCase()]) expect((await s.json<{ run_id: string }>(['runs', 'show', given, '--json'])).run_id, given).toBe(given === a.toUpperCase() ? a : b);

    // A prefix they share (like the 8 characters the docs used to show) matches both: refused, with both runs named.
    const amb = await s.run(['runs', 'show', common]);
    expect(amb.code, show(amb)).toBe(2);
    expect(lines(amb.stderr)).toHaveLength(1);
    expect(amb.stderr).toContain(`swarm: '${common}' matches 2 runs: `);
    expect(amb.stderr).toContain(`${a} (echo-chain, `);
    expect(amb.stderr).toContain(`${b} (echo-chain, `);
    expect(amb.stderr).toContain('give more characters of the id');
  });

  test('run_id is the name of the run id in every JSON document; list output keeps id as an alias', async ({ expect }) => {
    const s = makeSandbox();
    s.copyStore(await examplesStore());
    const ran = await s.json<{ run_id: string }>(['run', 'echo-chain', '{"message": "x"}', '--json']);
    const detached = await s.json<{ run_id: string }>(['run', 'echo-chain', '{"message": "y"}', '--detach', '--json']);
    const list = await s.json<ListRow[]>(['runs', 'list', '--json']);
    expect(list.map((r) => r.run_id)).toEqual([detached.run_id, ran.run_id]);
    expect(list.map((r) => r.id)).toEqual([detached.run_id, ran.run_id]);
    const wfRuns = await s.json<ListRow[]>(['workflow', 'runs', 'echo-chain', '--json']);
    expect(wfRuns.map((r) => [r.run_id, r.id])).toEqual([
      [detached.run_id, detached.run_id],
      [ran.run_id, ran.run_id],
    ]);
    const shown = await s.json<{ run_id: string }>(['runs', 'show', ran.run_id.slice(-12), '--json']);
    expect(shown.run_id).toBe(ran.run_id);
  });

  test('a run’s times are the same in the list and in the run document: *_at_ms epoch milliseconds in both, created_at as each always gave it', async ({ expect }) => {
    const s = makeSandbox();
    s.copyStore(await examplesStore());
    type Times = { run_id: string; created_at: number | string; created_at_ms: number; started_at_ms: number | null; completed_at_ms: number | null; updated_at_ms: number };
    const ran = await s.json<Times>(['run', 'echo-chain', '{"message": "x"}', '--json']);
    const [listed] = await s.json<Array<Times & { started_at: number; completed_at: number; updated_at: number }>>(['runs', 'list', '--json']);
    const [wfListed] = await s.json<Times[]>(['workflow', 'runs', 'echo-chain', '--json']);
    const shown = await s.json<Times>(['runs', 'show', ran.run_id, '--json']);
    if (!listed || !wfListed) throw new Error('no run listed');
    const times = (d: Times) => ({ created_at_ms: d.created_at_ms, started_at_ms: d.started_at_ms, completed_at_ms: d.completed_at_ms, updated_at_ms: d.updated_at_ms });
    expect(times(shown)).toEqual(times(listed));
    expect(times(ran)).toEqual(times(listed));
    expect(times(wfListed)).toEqual(times(listed));
    // The list's *_at stay epoch milliseconds, the run document's created_at ISO 8601: the same instant.
    expect(listed).toMatchObject({ created_at: listed.created_at_ms, started_at: listed.started_at_ms, completed_at: listed.completed_at_ms, updated_at: listed.updated_at_ms });
    expect(shown.created_at).toBe(new Date(shown.created_at_ms).toISOString());
    expect(typeof shown.completed_at_ms).toBe('number');
  });
});
