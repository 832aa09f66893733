/**
 * Two things a new user tripped on, at the command line: "did you mean" for a mistyped agent name
 * (as workflows already had), and an agent whose outputs do not fit its declared schema failing at
 * once instead of using up its step's retries. Real processes, real files. Build first: `npm run build`.
 */
import { afterAll, describe, test } from 'vitest';
import { cleanupSandboxes, examplesStore, lines, makeSandbox, show } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

describe.concurrent('did you mean, for agents', () => {
  test('a workflow naming a mistyped agent is refused with the near name; agent info suggests it too', async ({ expect }) => {
    const s = makeSandbox();
    s.copyStore(await examplesStore());
    const text = 'name: typo\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: ecoh@1.0.0\n    inputs: {message: hi}\n  - id: b\n    agent: wrod-count\n    inputs: {text: hi}\n';
    const file = s.write('workflows/typo/workflow.yaml', text);
    const r = await s.run(['workflow', 'register', 'workflows/typo']);
    expect(r.code, show(r)).toBe(2);
    expect(lines(r.stderr)).toEqual([
      `swarm: ${file}:5: steps[0].agent: step 'a': agent 'ecoh@1.0.0' not found; did you mean 'echo'?`,
      `swarm: ${file}:8: steps[1].agent: step 'b': agent 'wrod-count' not found; did you mean 'word-count'?`,
    ]);
    expect((await s.json<Array<{ name: string }>>(['workflow', 'list', '--json'])).map((w) => w.name)).not.toContain('typo');

    const info = await s.run(['agent', 'info', 'ecoh']);
    expect(info.code, show(info)).toBe(2);
    expect(info.stderr.trim()).toBe("swarm: agent 'ecoh' not found: did you mean 'echo'?");
  });
});

describe.concurrent('output mismatches are not retried', () => {
  test('a process agent returning the wrong type under retry max_attempts 3: one attempt, a clear error, exit 4', async ({ expect }) => {
    const s = makeSandbox();
    s.write(
      'agents/counter/agent.yaml',
      'name: counter\nversion: 1.0.0\nruntime: {type: bash, entry: run.sh}\noutputs:\n  - {name: count, type: integer}\n',
    );
    s.write('agents/counter/run.sh', `#!/bin/bash\necho '{"count": "three"}' > "$2"\n`, 0o755);
    s.write(
      'workflows/count/workflow.yaml',
      'name: count\nversion: 1.0.0\nsteps:\n  - id: tally\n    agent: counter\n    retry: {max_attempts: 3, backoff_ms: 0}\n',
    );
    expect((await s.run(['agent', 'register', 'agents/counter'])).code).toBe(0);
    expect((await s.run(['workflow', 'register', 'workflows/count'])).code).toBe(0);
    const r = await s.run(['run', 'count', '--json'], { timeoutMs: 30_000 });
    expect(r.code, show(r)).toBe(4);
    const doc = JSON.parse(r.stdout) as { run_id: string; status: string; steps: Array<{ id: string; status: string; attempts: number; error: string }>; error: { message: string; step: string } };
    expect(doc.status).toBe('failed');
    expect(doc.steps[0]).toMatchObject({ id: 'tally', status: 'failed', attempts: 1 });
    expect(doc.steps[0]!.error).toMatch(/^outputs do not match agent counter@1\.0\.0: .*count.*integer.*\(not retried: the agent declares these outputs\)$/);
    expect(doc.error.step).toBe('tally');
    // The agent ran once: one start, no retry scheduled.
    const events = (await s.run(['runs', 'events', doc.run_id, '--json'])).stdout;
    expect(events.match(/"STEP_STARTED"/g)).toHaveLength(1);
    expect(events).not.toContain('STEP_RETRY_SCHEDULED');
  });
});
