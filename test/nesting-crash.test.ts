/**
 * A worker killed with SIGKILL while a run maps over 200 elements and waits on a sub-workflow run;
 * another worker finishes it. Every element completes exactly once (only the elements in flight at
 * the kill run again, with the same idempotency key), exactly one child run exists, and `runs show`
 * links the parent and the child.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import { cliEnv, exited, registerPackages, removeProject, runCli, spawnCli, tempProject, until, writeAgent, writeWorkflow } from './helpers/project.js';

const ELEMENTS = 200;

function project(): string {
  // The agent appends to a log file of the test's: it runs unsandboxed (the sandbox would hide the file).
  const dir = tempProject('name: test\nsandbox: none\n');
  writeAgent(
    dir,
    'effect',
    `name: effect
version: 1.0.0
runtime: { type: bash, entry: main.sh, timeout_seconds: 60 }
inputs:
  - { name: log, type: string, required: true }
  - { name: item, type: string }
  - { name: first_attempt_ms, type: integer, default: 0 }
outputs:
  - { name: item, type: any }
`,
    {
      // bash builtins, not node or sed: 200 elements start 200 processes; a shell alone starts in a few milliseconds.
      'main.sh': `json=$(<"$1")
field() { local re="\\"$1\\":\\"?([^\\",}]*)"; [[ $json =~ $re ]] && printf '%s' "\${BASH_REMATCH[1]}"; }
log=$(field log); item=$(field item); ms=$(field first_attempt_ms)
echo "start $SWARM_IDEMPOTENCY_KEY $SWARM_ATTEMPT" >> "$log"
if [ "$SWARM_ATTEMPT" = 1 ] && [ "\${ms:-0}" -gt 0 ]; then sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"; fi
echo "done $SWARM_IDEMPOTENCY_KEY $SWARM_ATTEMPT" >> "$log"
printf '{"item":"%s"}' "$item" > "$2"
`,
    },
  );
  writeWorkflow(
    dir,
    'kid',
    `name: kid
version: 1.0.0
inputs:
  - { name: log, type: string, required: true }
steps:
  - id: k1
    agent: effect@1.0.0
    inputs: { log: "\${trigger.log}", item: kid, first_attempt_ms: 4000 }
`,
  );
  writeWorkflow(
    dir,
    'fanout',
    `name: fanout
version: 1.0.0
concurrency: 32
steps:
  - id: each
    agent: effect@1.0.0
    map: \${trigger.items}
    max_concurrency: 16
    inputs: { log: "\${trigger.log}", item: "\${map.item}", first_attempt_ms: 0 }
  - id: sub
    workflow: kid
    inputs: { log: "\${trigger.log}" }
  - id: join
    agent: effect@1.0.0
    inputs: { log: "\${trigger.log}", item: "\${steps.each.outputs[199].item}" }
    depends_on: [sub]
`,
  );
  return dir;
}

/** start/done lines per idempotency key. */
function effects(file: string): { starts: Map<string, number[]>; dones: Map<string, number> } {
  const starts = new Map<string, number[]>();
  const dones = new Map<string, number>();
  if (!existsSync(file)) return { starts, dones };
  for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
    const [kind, key = '', attempt] = line.split(' ');
    if (kind === 'start') starts.set(key, [...(starts.get(key) ?? []), Number(attempt)]);
    if (kind === 'done') dones.set(key, (dones.get(key) ?? 0) + 1);
  }
  return { starts, dones };
}

/** Read the project's store directly (a CLI process per poll would cost a second each). */
async function withStore<T>(dir: string, fn: (s: Store) => Promise<T>): Promise<T> {
  const store = openSqliteStore({ path: join(dir, '.swarm', 'swarm.db'), durability: 'full' });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function json<T>(args: string[], dir: string): Promise<T> {
  const r = await runCli([...args, '--json'], dir);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

describe('map and sub-workflow steps under SIGKILL', () => {
  let dir: string;
  let runId = '';
  beforeAll(async () => {
    dir = project();
    expect((await registerPackages(dir, cliEnv(dir))).length).toBeGreaterThanOrEqual(2);
  });
  afterAll(() => removeProject(dir));

  it('a worker killed mid-map and mid-child: after a restart every element completed once, one child run', async () => {
    const log = join(dir, 'effects.log');
    const items = Array.from({ length: ELEMENTS }, (_, i) => `img-${i}`);
    const first = spawnCli(['worker', '--concurrency', '24'], dir);
    const submitted = await runCli(['run', 'fanout', JSON.stringify({ log, items }), '--detach'], dir);
    expect(submitted.code, submitted.stderr).toBe(0);
    runId = submitted.stdout.trim();
    const childKey = (key: string): boolean => key.endsWith('/k1');
    // Killed once the child's step is running (slowly) and some elements, not all, are done.
    await until(() => {
      const fx = effects(log);
      const done = [...fx.dones.keys()].filter((k) => k.includes('/each[')).length;
      return [...fx.starts.keys()].some(childKey) && done >= 20 ? true : undefined;
    }, 30_000, 'the child step to start and 20 elements to finish');
    first.kill('SIGKILL');
    await exited(first);
    const atKill = effects(log);
    const doneAtKill = [...atKill.dones.keys()].filter((k) => k.includes('/each[')).length;
    expect(doneAtKill).toBeLessThan(ELEMENTS);

    const second = spawnCli(['worker', '--concurrency', '24'], dir);
    await until(() => withStore(dir, async (s) => ((await s.getRun(runId))?.status === 'completed' ? true : undefined)), 60_000, 'the run to complete');
    second.kill('SIGTERM');
    expect(await exited(second)).toBe(0);

    const { steps, events, children } = await withStore(dir, async (s) => ({ steps: await s.getSteps(runId), events: await s.getEvents(runId), children: await s.listRuns({ parent: runId }) }));
    const elements = steps.filter((s) => s.map_index !== undefined);
    expect(elements.map((s) => s.map_index)).toEqual(items.map((_, i) => i));
    expect(elements.every((s) => s.status === 'completed')).toBe(true);
    expect(steps.find((s) => s.step_id === 'each')?.outputs).toEqual(items.map((item) => ({ item })));
    expect(steps.find((s) => s.step_id === 'join')?.outputs).toEqual({ item: `img-${ELEMENTS - 1}` });

    const fx = effects(log);
    let repeated = 0;
    for (let i = 0; i < ELEMENTS; i++) {
      const key = `${runId}/each[${i}]`;
      const starts = fx.starts.get(key) ?? [];
      expect(starts.length, `element ${i} started`).toBeGreaterThan(0);
      expect(fx.dones.get(key) ?? 0, `element ${i} finished`).toBeGreaterThan(0);
      if (starts.length > 1) repeated++;
    }
    // Each element's result was committed once (one STEP_COMPLETED each); an element ran again only
    // if the killed worker held it (its second attempt took it over from that worker).
    const completed = new Map<string, number>();
    for (const e of events) if (e.type === 'STEP_COMPLETED' && e.step_id) completed.set(e.step_id, (completed.get(e.step_id) ?? 0) + 1);
    for (let i = 0; i < ELEMENTS; i++) expect(completed.get(`each[${i}]`), `element ${i} committed once`).toBe(1);
    const firstWorker = events.find((e) => e.type === 'STEP_STARTED' && e.step_id === 'each')?.data.worker;
    const takenOver = new Set(events.filter((e) => e.type === 'STEP_STARTED' && e.data.reclaimed_from === firstWorker).map((e) => e.step_id));
    for (let i = 0; i < ELEMENTS; i++) {
      const starts = fx.starts.get(`${runId}/each[${i}]`) ?? [];
      if (starts.length > 1) expect(takenOver.has(`each[${i}]`), `element ${i} ran again without being taken over`).toBe(true);
    }
    expect(repeated).toBeLessThanOrEqual(16);

    // Exactly one child run; its step ran again after the kill, under the same key.
    expect(children.map((c) => [c.workflow_name, c.parent_step_id, c.status])).toEqual([['kid', 'sub', 'completed']]);
    const kidKeys = [...fx.starts.keys()].filter(childKey);
    expect(kidKeys).toEqual([`${children[0]!.id}/k1`]);
    expect(fx.starts.get(kidKeys[0]!)).toEqual([1, 2]);
    expect((await runCli(['runs', 'verify', runId], dir)).code).toBe(0);
  }, 120_000);

  it('`runs show` names the child of a sub-workflow step and the parent of a child run', async () => {
    expect(runId).not.toBe('');
    const children = await json<Array<{ run_id: string; parent_step_id: string }>>(['runs', 'list', '--parent', runId], dir);
    expect(children.map((c) => c.parent_step_id)).toEqual(['sub']);
    const kid = children[0]!.run_id;
    const plain = (s: string): string => s.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '');
    const parent = await runCli(['runs', 'show', runId], dir);
    expect(parent.code).toBe(0);
    expect(plain(parent.stdout)).toContain(`child: run ${kid} (kid@1.0.0, step 'sub') completed`);
    expect(plain(parent.stdout)).toMatch(/each\[199\]\s+effect@1\.0\.0\s+completed/);
    const shown = await runCli(['runs', 'show', kid], dir);
    expect(plain(shown.stdout)).toContain(`parent: run ${runId}, step 'sub'`);
    const asJson = await json<{ parent_run_id: string; parent_step_id: string }>(['runs', 'show', kid], dir);
    expect(asJson).toMatchObject({ parent_run_id: runId, parent_step_id: 'sub' });
  }, 60_000);
});
