import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { memoryLimitMechanism } from '../src/executors/memory-limit.js';
import { LOG_LIMIT_BYTES } from '../src/executors/process.js';
import type { Swarm } from '../src/swarm.js';
import { agentPids } from './helpers/processes.js';
import { openProject, removeProject, tempProject, until, writeAgent, writeWorkflow } from './helpers/project.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(): Promise<{ dir: string; swarm: Swarm }> {
  const dir = tempProject();
  const swarm = await openProject(dir);
  cleanups.push(() => removeProject(dir));
  cleanups.push(() => swarm.close());
  return { dir, swarm };
}

/** Register a bash agent running `script` and a one-step workflow using it; returns the workflow name. */
async function bashStep(swarm: Swarm, dir: string, name: string, script: string, runtime = '', step = ''): Promise<string> {
  writeAgent(dir, name, `name: ${name}\nversion: 1.0.0\nruntime:\n  type: bash\n  entry: run.sh\n${runtime}`, { 'run.sh': `#!/usr/bin/env bash\n${script}\n` });
  await swarm.registerAgent(join(dir, 'agents', name));
  await swarm.registerWorkflow(writeWorkflow(dir, `wf-${name}`, `name: wf-${name}\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: ${name}@1.0.0\n${step}`));
  return `wf-${name}`;
}

describe('process agents', () => {
  it('follow the file contract and get the SWARM_* environment, in the package directory', async () => {
    const { dir, swarm } = await setup();
    const wf = await bashStep(
      swarm,
      dir,
      'env',
      `python3 - "$1" "$2" <<'PY'
import json, os, sys
inp = json.load(open(sys.argv[1]))
keys = ["SWARM_RUN_ID", "SWARM_STEP_ID", "SWARM_ATTEMPT", "SWARM_IDEMPOTENCY_KEY"]
json.dump({"env": {k: os.environ[k] for k in keys}, "cwd": os.getcwd(), "got": inp, "args": sys.argv[1:]}, open(sys.argv[2], "w"))
PY`,
      '',
      '    inputs: { x: "${trigger.x}" }\n',
    );
    const id = await swarm.startRun(wf, { x: [1, 2] });
    const r = await swarm.runToCompletion(id);
    expect(r.run.status).toBe('completed');
    const out = r.steps[0]?.outputs as { env: Record<string, string>; cwd: string; got: unknown; args: string[] };
    expect(out.env).toEqual({ SWARM_RUN_ID: id, SWARM_STEP_ID: 's', SWARM_ATTEMPT: '1', SWARM_IDEMPOTENCY_KEY: `${id}/s` });
    expect(out.cwd).toBe(join(dir, 'agents', 'env'));
    expect(out.got).toEqual({ x: [1, 2] });
    expect(out.args.map((a) => a.split('/').pop())).toEqual(['input.json', 'output.json']);
  });

  it('runs node, python and `process` runtimes', async () => {
    const { dir, swarm } = await setup();
    writeAgent(dir, 'n', 'name: n\nversion: 1.0.0\nruntime: { type: node, entry: main.js }\n', {
      'main.js': "const fs=require('fs');const [i,o]=process.argv.slice(2);fs.writeFileSync(o,JSON.stringify({v:JSON.parse(fs.readFileSync(i,'utf8')).v+1}))",
    });
    writeAgent(dir, 'p', 'name: p\nversion: 1.0.0\nruntime: { type: python, entry: main.py }\n', {
      'main.py': 'import json,sys\njson.dump({"v": json.load(open(sys.argv[1]))["v"] * 10}, open(sys.argv[2], "w"))\n',
    });
    writeAgent(dir, 'x', 'name: x\nversion: 1.0.0\nruntime: { type: process, command: "sh -e", entry: go.sh }\n', {
      'go.sh': 'v=$(sed -e \'s/[^0-9]//g\' "$1")\nprintf \'{"v": %s}\' "$((v + 5))" > "$2"\n',
    });
    for (const a of ['n', 'p', 'x']) await swarm.registerAgent(join(dir, 'agents', a));
    await swarm.registerWorkflow(
      writeWorkflow(
        dir,
        'mix',
        `name: mix\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: n@1.0.0\n    inputs: { v: 1 }\n  - id: b\n    agent: p@1.0.0\n    inputs: { v: "\${steps.a.outputs.v}" }\n  - id: c\n    agent: x@1.0.0\n    inputs: { v: "\${steps.b.outputs.v}" }\n`,
      ),
    );
    const r = await swarm.runToCompletion(await swarm.startRun('mix'));
    expect(r.steps.map((s) => s.outputs)).toEqual([{ v: 2 }, { v: 20 }, { v: 25 }]);
  });

  it('fails on a non-zero exit, a missing or invalid output file, with the stderr tail; logs are kept per attempt', async () => {
    const { dir, swarm } = await setup();
    const cases: Array<[string, string, string, RegExp]> = [
      ['exit3', 'echo "bad thing happened" >&2; exit 3', 'PROCESS_EXIT', /exited with code 3; stderr: bad thing happened/],
      ['noout', 'echo fine', 'OUTPUT_MISSING', /wrote no output file/],
      ['badjson', 'echo "{nope" > "$2"', 'OUTPUT_INVALID', /not valid JSON/],
      ['array', 'echo "[1,2]" > "$2"', 'OUTPUT_INVALID', /JSON object/],
    ];
    for (const [name, script, code, message] of cases) {
      const wf = await bashStep(swarm, dir, name, script);
      const id = await swarm.startRun(wf);
      const r = await swarm.runToCompletion(id);
      expect(r.run.status, name).toBe('failed');
      expect(r.steps[0]?.error, name).toMatch(message);
      const failed = (await swarm.events(id)).find((e) => e.type === 'STEP_FAILED');
      expect(failed?.data.code, name).toBe(code);
    }
    const logs = await swarm.logs((await swarm.listRuns({ workflow: 'wf-exit3' }))[0]?.id as string, 's');
    expect(logs).toHaveLength(1);
    expect(logs[0]?.stderr).toBe('bad thing happened\n');
  });

  it('keeps only the tail of very long output', async () => {
    const { dir, swarm } = await setup();
    const wf = await bashStep(swarm, dir, 'chatty', 'for i in $(seq 1 30000); do echo "line $i of chatter"; done; echo "{}" > "$2"');
    const id = await swarm.startRun(wf);
    expect((await swarm.runToCompletion(id)).run.status).toBe('completed');
    const [log] = await swarm.logs(id);
    expect(log?.truncated).toBe(true);
    expect(Buffer.byteLength(log?.stdout ?? '')).toBeLessThanOrEqual(LOG_LIMIT_BYTES);
    expect(log?.stdout.trimEnd().endsWith('line 30000 of chatter')).toBe(true);
  });

  it('kills the whole process group on timeout, and leftovers when the agent exits', async () => {
    const { dir, swarm } = await setup();
    const wf = await bashStep(swarm, dir, 'hang', `sleep 60 & echo "child $!" >&2; wait`, '  timeout_seconds: 1\n');
    const id = await swarm.startRun(wf);
    const done = swarm.runToCompletion(id);
    await until(() => agentPids(id).length >= 2, 10_000, 'the agent and its child to start');
    const r = await done;
    expect(r.run.status).toBe('failed');
    expect(r.steps[0]?.error).toMatch(/timed out after 1s/);
    await until(() => agentPids(id).length === 0, 5000, 'timed-out processes to die');

    const wf2 = await bashStep(swarm, dir, 'leaver', `sleep 60 & echo '{}' > "$2"`);
    const id2 = await swarm.startRun(wf2);
    expect((await swarm.runToCompletion(id2)).run.status).toBe('completed');
    await until(() => agentPids(id2).length === 0, 5000, 'the background child to be killed');
  });

  it('enforces memory_mb with the operating system', async () => {
    const { dir, swarm } = await setup();
    const wf = await bashStep(
      swarm,
      dir,
      'hog',
      `python3 -c "
b = []
for i in range(400):
    b.append(bytearray(1024 * 1024))
print('allocated', len(b))
"
echo '{}' > "$2"`,
      '  memory_mb: 64\n',
    );
    const id = await swarm.startRun(wf);
    const r = await swarm.runToCompletion(id);
    expect(r.run.status).toBe('failed');
    if (memoryLimitMechanism() === 'rlimit') expect(r.steps[0]?.error).toMatch(/MemoryError/);
    else expect(r.steps[0]?.error).toMatch(/exceeded memory_mb=64 and was killed by the OS/);
    const [log] = await swarm.logs(id);
    expect(log?.stdout ?? '').not.toContain('allocated 400');

    // The same allocation fits under a larger limit: the limit, not the program, made it fail.
    const wf2 = await bashStep(swarm, dir, 'roomy', `python3 -c "b = [bytearray(1024 * 1024) for i in range(100)]"; echo '{}' > "$2"`, '  memory_mb: 512\n');
    expect((await swarm.runToCompletion(await swarm.startRun(wf2))).run.status).toBe('completed');
  });

  it('cancelling a run stops its running agent process', async () => {
    const { dir, swarm } = await setup();
    const wf = await bashStep(swarm, dir, 'slow', `sleep 60; echo '{}' > "$2"`);
    const id = await swarm.startRun(wf);
    const done = swarm.runToCompletion(id);
    await until(() => agentPids(id).length > 0, 10_000, 'the agent to start');
    await swarm.cancel(id);
    const r = await done;
    expect(r.run.status).toBe('cancelled');
    await until(() => agentPids(id).length === 0, 5000, 'the cancelled agent to die');
    await sleep(50);
    expect(r.steps[0]?.status).toBe('cancelled');
  });
});
