/**
 * Retention through real processes: `swarm gc` (a bad duration and an unfinished status refused
 * with exit 2, a dry run that deletes nothing, a real run with an archive whose lines are the runs
 * deleted, a project whose store does not exist yet left without one), and `swarm serve` applying
 * swarm.yaml's `retention:` policy every second. Old runs are made by back-dating finished runs in
 * the store in the test's setup.
 *
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import Database from 'better-sqlite3';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Swarm } from '../src/swarm.js';
import { cleanupSandboxes, examplesStore, makeSandbox, show, until, type Sandbox } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

const DAY_MS = 86_400_000;

/** A sandbox with the examples, `old` finished runs back-dated 40 days, `recent` fresh ones and one old queued run. */
async function project(yaml: string, old: number, recent: number): Promise<{ s: Sandbox; old: string[]; recent: string[]; queued: string }> {
  const s = makeSandbox({ env: { SWARM_SANDBOX: 'none' } });
  s.copyStore(await examplesStore());
  s.write('swarm.yaml', yaml);
  const swarm = await Swarm.open({ cwd: s.root, env: s.env });
  const ids: string[] = [];
  let queued: string;
  try {
    for (let i = 0; i < old + recent; i++) {
      const id = await swarm.startRun('echo-chain', { message: `run ${i}` });
      expect((await swarm.runToCompletion(id)).run.status).toBe('completed');
      ids.push(id);
    }
    queued = await swarm.startRun('echo-chain', { message: 'never run' });
  } finally {
    await swarm.close();
  }
  const db = new Database(s.db);
  try {
    const backdate = db.prepare('UPDATE workflow_runs SET created_at = created_at - ?, completed_at = completed_at - ? WHERE id = ?');
    for (const id of ids.slice(0, old)) backdate.run(40 * DAY_MS, 40 * DAY_MS, id);
    db.prepare('UPDATE workflow_runs SET created_at = created_at - ? WHERE id = ?').run(40 * DAY_MS, queued);
  } finally {
    db.close();
  }
  return { s, old: ids.slice(0, old), recent: ids.slice(old), queued };
}

/** Every file and directory under `dir`, relative to it, sorted. */
function tree(dir: string, rel = ''): string[] {
  return readdirSync(join(dir, rel), { withFileTypes: true })
    .flatMap((e) => {
      const p = rel ? `${rel}/${e.name}` : e.name;
      return e.isDirectory() ? [`${p}/`, ...tree(dir, p)] : [p];
    })
    .sort();
}

const runIds = (s: Sandbox): string[] => s.query<{ id: string }>('SELECT id FROM workflow_runs ORDER BY id').map((r) => r.id);

describe('swarm gc (a real process)', () => {
  it('refuses a bad duration or an unfinished status (exit 2), counts in a dry run, deletes and archives the old finished runs', async () => {
    const { s, old, recent, queued } = await project('name: gc-test\n', 3, 2);
    const all = [...old, ...recent, queued].sort();
    expect(runIds(s)).toEqual(all);

    const bad = await s.run(['gc', '--older-than', '30x']);
    expect(bad.code, show(bad)).toBe(2);
    expect(bad.stderr).toContain("--older-than '30x' is not a duration");
    const unfinished = await s.run(['gc', '--older-than', '30d', '--status', 'completed,running']);
    expect(unfinished.code, show(unfinished)).toBe(2);
    expect(unfinished.stderr).toContain("--status 'running' is not a finished status");

    const dry = await s.json<{ dry_run: boolean; runs: number; trees: number }>(['gc', '--older-than', '30d', '--dry-run', '--json']);
    expect(dry).toMatchObject({ dry_run: true, runs: 3, trees: 3 });
    expect(runIds(s)).toEqual(all);

    const real = await s.run(['gc', '--older-than', '30d', '--archive', 'archive/runs.jsonl', '--batch', '2']);
    // The archive's directory does not exist: refused before anything is deleted.
    expect(real.code, show(real)).toBe(2);
    expect(real.stderr).toContain('cannot open the archive');
    expect(runIds(s)).toEqual(all);

    s.write('archive/.keep', '');
    const ok = await s.run(['gc', '--older-than', '30d', '--archive', 'archive/runs.jsonl', '--batch', '2']);
    expect(ok.code, show(ok)).toBe(0);
    expect(ok.stdout).toContain('deleted 3 finished run(s) (3 top-level, 0 sub-workflow) (completed, failed, cancelled) in 2 batch(es) of at most 2 run(s)');
    expect(ok.stdout).toContain('archived 3 run(s)');
    expect(ok.stdout).toMatch(/database size: [\d.]+ \w+ \(.*free for reuse.*\) before, [\d.]+ \w+ \(.*\) after/);
    expect(runIds(s)).toEqual([...recent, queued].sort());
    // Again: nothing left past the cut-off, and it says so.
    const again = await s.run(['gc', '--older-than', '30d']);
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout).toContain('deleted no runs: none finished (completed, failed, cancelled) before the cut-off');
    expect(runIds(s)).toEqual([...recent, queued].sort());
    const lines = s.read('archive/runs.jsonl').trimEnd().split('\n').map((l) => JSON.parse(l) as { run: { id: string; status: string }; steps: unknown[]; events: unknown[]; logs: unknown[] });
    expect(lines.map((l) => l.run.id).sort()).toEqual([...old].sort());
    for (const l of lines) {
      expect(l.run.status).toBe('completed');
      expect(l.steps).toHaveLength(2);
      expect(l.events.length).toBeGreaterThan(4);
    }
  });

  it("the configured archive applies to gc --older-than too; --status with no age and a --batch out of range are refused (exit 2)", async () => {
    const { s, old, recent, queued } = await project('name: gc-test\nretention:\n  completed: 30d\n  archive: kept.jsonl\n', 2, 1);
    const all = [...old, ...recent, queued].sort();
    const noAge = await s.run(['gc', '--status', 'failed']);
    expect(noAge.code, show(noAge)).toBe(2);
    expect(noAge.stderr).toContain('has no age for failed (it has completed)');
    for (const n of ['100001', '1e3', '0x10', '99999999999999999999']) {
      const bad = await s.run(['gc', '--older-than', '30d', '--batch', n]);
      expect(bad.code, show(bad)).toBe(2);
      expect(bad.stderr.trim()).toBe(`swarm: --batch must be a whole number from 1 to 100000, not '${n}'`);
    }
    expect(runIds(s)).toEqual(all);
    const ok = await s.run(['gc', '--older-than', '30d']);
    expect(ok.code, show(ok)).toBe(0);
    expect(ok.stdout).toContain('archived 2 run(s)');
    expect(s.read('kept.jsonl').trimEnd().split('\n').map((l) => (JSON.parse(l) as { run: { id: string } }).run.id).sort()).toEqual([...old].sort());
    expect(runIds(s)).toEqual([...recent, queued].sort());
    // serve refuses an archive it could never write, before it listens (every pass would delete nothing).
    s.write('swarm.yaml', 'name: gc-test\nretention:\n  completed: 30d\n  archive: missing/kept.jsonl\n');
    const serve = await s.run(['serve', '--port', '0'], { timeoutMs: 30_000 });
    expect(serve.code, show(serve)).toBe(2);
    expect(serve.stderr).toMatch(/retention\.archive in .*swarm\.yaml: cannot open the archive .*missing\/kept\.jsonl for appending: ENOENT/);
  });

  it('in a project whose store does not exist yet: nothing to do (exit 0, the path named), and nothing is written', async () => {
    // The project's own store (<project>/.swarm/swarm.db, no SWARM_HOME): neither it nor .swarm exists.
    const s = makeSandbox({ home: 'default' });
    s.write('swarm.yaml', 'name: fresh\nretention:\n  completed: 30d\n  archive: kept.jsonl\n');
    const before = tree(s.root);
    expect(before).toEqual(['swarm.yaml']);

    const [plain, dry, archive, policy, json] = await Promise.all([
      s.run(['gc', '--older-than', '30d']),
      s.run(['gc', '--older-than', '30d', '--dry-run']),
      s.run(['gc', '--older-than', '30d', '--archive', 'archive.jsonl']),
      s.run(['gc']),
      s.run(['gc', '--older-than', '30d', '--status', 'failed', '--json']),
    ]);
    for (const r of [plain, dry, archive, policy]) {
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout.trim()).toBe(`nothing to do: no store at ${s.db} yet (it is made on first use: 'swarm init', or register an agent)`);
      expect(r.stderr).toBe('');
    }
    expect(json.code, show(json)).toBe(0);
    const report = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ store_missing: s.db, dry_run: false, runs: 0, trees: 0, skipped: 0, batches: 0, archived: 0, interrupted: false, checkpoints: { examined: 0, compacted: 0, bytes_saved: 0 } });
    expect(Object.keys(report.cutoffs as object)).toEqual(['failed']);
    expect(Object.values(report.rows as Record<string, number>).every((n) => n === 0)).toBe(true);

    // Arguments are still checked first (exit 2), and refused without writing anything either.
    const bad = await s.run(['gc', '--older-than', '30x']);
    expect(bad.code, show(bad)).toBe(2);
    expect(bad.stderr).toContain("--older-than '30x' is not a duration");
    s.write('swarm.yaml', 'name: fresh\n');
    const noAge = await s.run(['gc']);
    expect(noAge.code, show(noAge)).toBe(2);
    expect(noAge.stderr).toContain('swarm gc needs --older-than');

    // No store, no .swarm directory, no master key, no archive: the tree is as it was.
    expect(tree(s.root)).toEqual(before);
  });

  it('swarm serve applies the retention policy of swarm.yaml every interval, logged', async () => {
    const { s, old, recent, queued } = await project('name: policy-test\nretention:\n  completed: 30d\n  interval: 1s\n', 2, 1);
    const { child, done } = s.start(['serve', '--port', '0', '--no-worker'], { timeoutMs: 60_000 });
    let out = '';
    child.stdout?.on('data', (d: Buffer | string) => (out += String(d)));
    child.stderr?.on('data', (d: Buffer | string) => (out += String(d)));
    try {
      await until('the old runs to be deleted', async () => (runIds(s).length === 2 ? true : undefined), 30_000, 100);
      expect(runIds(s)).toEqual([...recent, queued].sort());
      await until('the retention log line', async () => (/retention: deleted 2 finished run\(s\)/.test(out) ? true : undefined), 10_000, 50);
      expect(out).toContain('retention: finished runs are deleted after 2592000s (completed), checked every 1s');
      for (const id of old) expect(runIds(s)).not.toContain(id);
    } finally {
      child.kill('SIGTERM');
    }
    const r = await done;
    expect(r.code, show(r)).toBe(0);
  });
});
