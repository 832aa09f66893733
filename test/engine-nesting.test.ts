/**
 * Map steps and sub-workflow steps, end to end on a real SQLite project: registration checks with
 * their lines, elements run once each in order, max_concurrency, failures, children linked to their
 * parents, cancellation down the tree, retries that keep one child.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManifestError } from '../src/core/errors.js';
import type { Swarm } from '../src/swarm.js';
import { builtinAgent, EXAMPLES, openProject, removeProject, tempProject, until, writeWorkflow } from './helpers/project.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(): Promise<{ dir: string; swarm: Swarm }> {
  const dir = tempProject();
  const swarm = await openProject(dir);
  cleanups.push(() => removeProject(dir));
  cleanups.push(() => swarm.close());
  await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
  await swarm.registerAgent(join(EXAMPLES, 'agents', 'noop'));
  return { dir, swarm };
}

/** A built-in `list` agent returning {items} from its input `n`, and `square` returning {value: x*x}. */
async function mapAgents(dir: string, swarm: Swarm, onSquare?: (x: number) => Promise<void> | void): Promise<void> {
  swarm.defineBuiltin('list', async (inputs) => ({ items: Array.from({ length: Number((inputs as { n: number }).n) }, (_, i) => i + 1) }));
  swarm.defineBuiltin('square', async (inputs) => {
    const { x, i } = inputs as { x: number; i: number };
    await onSquare?.(x);
    return { value: x * x, index: i };
  });
  builtinAgent(dir, 'list', 'list', 'inputs:\n  - { name: n, type: integer, required: true }\noutputs:\n  - { name: items, type: array }\n');
  builtinAgent(dir, 'square', 'square', 'inputs:\n  - { name: x, type: number, required: true }\n  - { name: i, type: integer }\noutputs:\n  - { name: value, type: number }\n  - { name: index, type: integer }\n');
  await swarm.registerAgent(join(dir, 'agents', 'list'));
  await swarm.registerAgent(join(dir, 'agents', 'square'));
}

const MAP_YAML = (extra = ''): string => `name: squares
version: 1.0.0
inputs:
  - { name: n, type: integer, required: true }
steps:
  - id: list
    agent: list@1.0.0
    inputs: { n: "\${trigger.n}" }
  - id: sq
    agent: square@1.0.0
    map: \${steps.list.outputs.items}
${extra}    inputs: { x: "\${map.item}", i: "\${map.index}" }
  - id: total
    agent: echo@1.0.0
    inputs: { message: "\${steps.sq.outputs}" }
`;

async function registerError(swarm: Swarm, dir: string, name: string, yaml: string): Promise<ManifestError> {
  try {
    await swarm.registerWorkflow(writeWorkflow(dir, name, yaml));
  } catch (e) {
    expect(e).toBeInstanceOf(ManifestError);
    return e as ManifestError;
  }
  throw new Error(`workflow ${name} registered`);
}

describe('map steps', () => {
  it('runs the step once per element; the next step gets the outputs as a list in element order', async () => {
    const { dir, swarm } = await setup();
    const seen: number[] = [];
    await mapAgents(dir, swarm, (x) => void seen.push(x));
    await swarm.registerWorkflow(writeWorkflow(dir, 'squares', MAP_YAML()));
    const d = await swarm.runToCompletion(await swarm.startRun('squares', { n: 5 }), { concurrency: 4 });
    expect(d.run.status).toBe('completed');
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5]);
    const sq = d.steps.find((s) => s.step_id === 'sq');
    const list = [1, 2, 3, 4, 5].map((x, i) => ({ value: x * x, index: i }));
    expect(sq?.outputs).toEqual(list);
    expect(d.steps.find((s) => s.step_id === 'total')?.outputs).toEqual({ echoed: list });
    // The elements are steps of their own, after their map step, in order.
    expect(d.steps.map((s) => s.step_id)).toEqual(['list', 'sq', 'sq[0]', 'sq[1]', 'sq[2]', 'sq[3]', 'sq[4]', 'total']);
    expect(d.steps.filter((s) => s.map_index !== undefined).map((s) => [s.map_index, s.status, s.attempt])).toEqual([0, 1, 2, 3, 4].map((i) => [i, 'completed', 1]));
    expect((await swarm.verify(d.run.id)).ok).toBe(true);
  });

  it('a run waiting for an approval while a map runs goes back to running when it is approved', async () => {
    const { dir, swarm } = await setup();
    const g = await gate(dir, swarm);
    await swarm.registerAgent(builtinAgent(dir, 'ask', 'approval'));
    const yaml = `name: both\nversion: 1.0.0\nsteps:\n  - id: ok\n    agent: ask\n    inputs: { message: "go?" }\n  - id: each\n    agent: gate\n    map: \${trigger.words}\n    inputs: { message: "\${map.item}" }\n`;
    await swarm.registerWorkflow(writeWorkflow(dir, 'both', yaml));
    const id = await swarm.startRun('both', { words: ['a', 'b'] });
    const w = swarm.worker({ concurrency: 4 });
    const started = w.start();
    await until(async () => ((await swarm.getRun(id)).run.status === 'waiting' && g.calls() === 2 ? true : undefined), 10_000, 'the approval to wait while the map runs');
    await swarm.approve(id, 'ok');
    expect((await swarm.getRun(id)).run.status).toBe('running');
    g.release();
    await until(async () => ((await swarm.getRun(id)).run.status === 'completed' ? true : undefined), 10_000, 'the run to complete');
    await w.stop();
    await started;
  });

  it('an empty list completes the map step with [] at once', async () => {
    const { dir, swarm } = await setup();
    await mapAgents(dir, swarm);
    await swarm.registerWorkflow(writeWorkflow(dir, 'squares', MAP_YAML()));
    const d = await swarm.runToCompletion(await swarm.startRun('squares', { n: 0 }));
    expect(d.run.status).toBe('completed');
    expect(d.steps.find((s) => s.step_id === 'sq')?.outputs).toEqual([]);
    expect(d.steps.find((s) => s.step_id === 'total')?.outputs).toEqual({ echoed: [] });
  });

  it('max_concurrency bounds how many elements run at once', async () => {
    const { dir, swarm } = await setup();
    let now = 0;
    let max = 0;
    await mapAgents(dir, swarm, async () => {
      now++;
      max = Math.max(max, now);
      await sleep(20);
      now--;
    });
    await swarm.registerWorkflow(writeWorkflow(dir, 'squares', MAP_YAML('    max_concurrency: 2\n')));
    const d = await swarm.runToCompletion(await swarm.startRun('squares', { n: 8 }), { concurrency: 8 });
    expect(d.run.status).toBe('completed');
    expect(max).toBe(2);
    expect((d.steps.find((s) => s.step_id === 'sq')?.outputs as unknown[]).length).toBe(8);
  });

  it('an element that fails after its retries fails the map step and the run; elements not started are cancelled', async () => {
    const { dir, swarm } = await setup();
    const calls = new Map<number, number>();
    await mapAgents(dir, swarm, (x) => {
      calls.set(x, (calls.get(x) ?? 0) + 1);
      if (x === 2) throw new Error('two is bad');
    });
    await swarm.registerWorkflow(writeWorkflow(dir, 'squares', MAP_YAML('    max_concurrency: 1\n    retry: { max_attempts: 2, backoff_ms: 1 }\n')));
    const d = await swarm.runToCompletion(await swarm.startRun('squares', { n: 4 }));
    expect(d.run.status).toBe('failed');
    expect(d.run.error_step).toBe('sq');
    expect(d.run.error).toContain('element 1 failed: two is bad');
    expect(calls.get(2)).toBe(2);
    expect(calls.has(3)).toBe(false);
    const status = Object.fromEntries(d.steps.map((s) => [s.step_id, s.status]));
    expect(status).toMatchObject({ sq: 'failed', 'sq[0]': 'completed', 'sq[1]': 'failed', 'sq[2]': 'cancelled', 'sq[3]': 'cancelled', total: 'cancelled' });
    expect((await swarm.verify(d.run.id)).ok).toBe(true);
  });

  it('a value that is not a list at run time, or a list over 10,000 elements, fails the step with a clear error', async () => {
    const { dir, swarm } = await setup();
    await mapAgents(dir, swarm);
    swarm.defineBuiltin('many', async (inputs) => ({ items: (inputs as { n: number }).n > 0 ? Array.from({ length: 10_001 }, (_, i) => i) : 'not a list' }));
    builtinAgent(dir, 'many', 'many', 'inputs:\n  - { name: n, type: integer }\noutputs:\n  - { name: items, type: any }\n');
    await swarm.registerAgent(join(dir, 'agents', 'many'));
    await swarm.registerWorkflow(writeWorkflow(dir, 'big', MAP_YAML().replace('name: squares', 'name: big').replace('agent: list@1.0.0', 'agent: many@1.0.0')));
    const big = await swarm.runToCompletion(await swarm.startRun('big', { n: 1 }));
    expect(big.run.status).toBe('failed');
    expect(big.run.error).toBe('map: ${steps.list.outputs.items} has 10001 elements; a map step takes at most 10,000');
    const str = await swarm.runToCompletion(await swarm.startRun('big', { n: 0 }));
    expect(str.run.error).toBe('map: ${steps.list.outputs.items} is a string, not a list');
  });

  it('registration refuses a map that is not a reference, a variable that is not a list, a bad max_concurrency, and ${map.*} outside a map, with lines', async () => {
    const { dir, swarm } = await setup();
    await mapAgents(dir, swarm);
    const literal = await registerError(swarm, dir, 'm1', MAP_YAML().replace('map: ${steps.list.outputs.items}', 'map: "[1, 2]"'));
    expect(literal.message).toMatch(/workflow\.yaml:11: steps\[1\]\.map: step 'sq': map: must be one reference to a list/);
    const notList = await registerError(swarm, dir, 'm2', MAP_YAML().replace('steps:', 'variables:\n  sizes: 3\nsteps:').replace('${steps.list.outputs.items}', '${variables.sizes}'));
    expect(notList.message).toContain("steps[1].map: step 'sq': map: ${variables.sizes} is a number (3), not a list");
    const status = await registerError(swarm, dir, 'm3', MAP_YAML().replace('${steps.list.outputs.items}', '${steps.list.status}'));
    expect(status.message).toContain("map: ${steps.list.status} is a step's status, not a list");
    const conc = await registerError(swarm, dir, 'm4', MAP_YAML('    max_concurrency: 0\n'));
    expect(conc.message).toMatch(/workflow\.yaml:12: .*max_concurrency/);
    const noMap = await registerError(swarm, dir, 'm5', MAP_YAML().replace('    map: ${steps.list.outputs.items}\n', '').replace('inputs: { x', 'max_concurrency: 2\n    inputs: { x'));
    expect(noMap.message).toContain('max_concurrency limits the elements of a map');
    expect(noMap.message).toContain("'${map.item}' is only available in a step with map:");
    const named = await registerError(swarm, dir, 'm6', MAP_YAML().replace('${steps.sq.outputs}', '${steps.sq.outputs.value}'));
    expect(named.message).toContain("step 'sq' maps over a list, so its outputs are a list");
  });
});

const CHILD_YAML = `name: child
version: 1.0.0
inputs:
  - { name: text, type: string, required: true }
steps:
  - id: shout
    agent: gate@1.0.0
    inputs: { message: "\${trigger.text}" }
`;

const PARENT_YAML = (child = 'child@1.0.0', inputs = '{ text: "${trigger.text}" }'): string => `name: parent
version: 1.0.0
steps:
  - id: sub
    workflow: ${child}
    inputs: ${inputs}
  - id: after
    agent: echo@1.0.0
    inputs: { message: "\${steps.sub.outputs.shout.echoed}" }
`;

/** A `gate` builtin that echoes, waiting while `hold` is true (to catch a parent mid-child). */
async function gate(dir: string, swarm: Swarm): Promise<{ release: () => void; calls: () => number }> {
  let open = false;
  let calls = 0;
  swarm.defineBuiltin('gate', async (inputs, ctx) => {
    calls++;
    while (!open && !ctx.signal.aborted) await sleep(10);
    return { echoed: String((inputs as { message: string }).message).toUpperCase() };
  });
  builtinAgent(dir, 'gate', 'gate', 'inputs:\n  - { name: message, type: string, required: true }\noutputs:\n  - { name: echoed, type: string }\n');
  await swarm.registerAgent(join(dir, 'agents', 'gate'));
  return { release: () => void (open = true), calls: () => calls };
}

describe('sub-workflow steps', () => {
  it('runs a child run linked to its parent; the step completes with the child outputs', async () => {
    const { dir, swarm } = await setup();
    const g = await gate(dir, swarm);
    g.release();
    await swarm.registerWorkflow(writeWorkflow(dir, 'child', CHILD_YAML));
    await swarm.registerWorkflow(writeWorkflow(dir, 'parent', PARENT_YAML('child')));
    const d = await swarm.runToCompletion(await swarm.startRun('parent', { text: 'hi' }));
    expect(d.run.status).toBe('completed');
    expect(d.steps.find((s) => s.step_id === 'sub')?.outputs).toEqual({ shout: { echoed: 'HI' } });
    expect(d.steps.find((s) => s.step_id === 'after')?.outputs).toEqual({ echoed: 'HI' });
    const children = await swarm.listRuns({ parent: d.run.id });
    expect(children.map((r) => [r.workflow_name, r.status, r.parent_run_id, r.parent_step_id, r.trigger_type, r.idempotency_key])).toEqual([
      ['child', 'completed', d.run.id, 'sub', 'workflow', `sub:${d.run.id}:sub`],
    ]);
    expect(children[0]?.trigger_data).toEqual({ text: 'hi' });
    expect((await swarm.verify(d.run.id)).ok).toBe(true);
    expect((await swarm.verify(children[0]!.id)).ok).toBe(true);
  });

  it("a failed child fails the parent's step with its error", async () => {
    const { dir, swarm } = await setup();
    swarm.defineBuiltin('gate', async () => {
      throw new Error('child broke');
    });
    builtinAgent(dir, 'gate', 'gate', 'inputs:\n  - { name: message, type: string, required: true }\noutputs:\n  - { name: echoed, type: string }\n');
    await swarm.registerAgent(join(dir, 'agents', 'gate'));
    await swarm.registerWorkflow(writeWorkflow(dir, 'child', CHILD_YAML));
    await swarm.registerWorkflow(writeWorkflow(dir, 'parent', PARENT_YAML()));
    const d = await swarm.runToCompletion(await swarm.startRun('parent', { text: 'hi' }));
    expect(d.run.status).toBe('failed');
    expect(d.run.error_step).toBe('sub');
    expect(d.run.error).toMatch(/^child run \S+ failed: child broke$/);
  });

  it('cancelling the parent cancels the child and its children', async () => {
    const { dir, swarm } = await setup();
    const g = await gate(dir, swarm);
    await swarm.registerWorkflow(writeWorkflow(dir, 'child', CHILD_YAML));
    await swarm.registerWorkflow(writeWorkflow(dir, 'middle', PARENT_YAML().replace('name: parent', 'name: middle')));
    await swarm.registerWorkflow(writeWorkflow(dir, 'top', PARENT_YAML('middle').replace('name: parent', 'name: top').replace('${steps.sub.outputs.shout.echoed}', '${steps.sub.outputs}')));
    const top = await swarm.startRun('top', { text: 'x' });
    const w = swarm.worker({ concurrency: 2 });
    const started = w.start();
    const child = await until(async () => {
      const mids = await swarm.listRuns({ parent: top });
      const kids = mids[0] ? await swarm.listRuns({ parent: mids[0].id }) : [];
      return g.calls() > 0 && kids[0] ? { mid: mids[0]!.id, leaf: kids[0].id } : undefined;
    }, 10_000, 'the grandchild to start');
    await swarm.cancel(top, 'enough');
    g.release();
    await until(async () => ((await swarm.getRun(child.leaf)).run.status === 'cancelled' ? true : undefined), 10_000, 'the grandchild to be cancelled');
    await w.stop();
    await started;
    expect((await swarm.getRun(top)).run.status).toBe('cancelled');
    expect((await swarm.getRun(child.mid)).run).toMatchObject({ status: 'cancelled', error: `parent run ${top} cancelled` });
    expect((await swarm.getRun(child.leaf)).run).toMatchObject({ status: 'cancelled', error: `parent run ${child.mid} cancelled` });
  });

  it('registration refuses an unknown sub-workflow, agent: with workflow:, inputs the child refuses, and cycles', async () => {
    const { dir, swarm } = await setup();
    await gate(dir, swarm);
    const unknown = await registerError(swarm, dir, 'parent', PARENT_YAML('nope'));
    expect(unknown.message).toMatch(/workflow\.yaml:5: steps\[0\]\.workflow: step 'sub': sub-workflow 'nope' not found/);
    await swarm.registerWorkflow(writeWorkflow(dir, 'child', CHILD_YAML));
    const both = await registerError(swarm, dir, 'parent', PARENT_YAML().replace('    workflow: child', '    agent: echo@1.0.0\n    workflow: child'));
    expect(both.message).toContain("step 'sub' has both agent: and workflow:");
    const missing = await registerError(swarm, dir, 'parent', PARENT_YAML('child', '{ txt: "${trigger.text}" }'));
    expect(missing.message).toContain("step 'sub': workflow child@1.0.0 requires input 'text'");
    const wrong = await registerError(swarm, dir, 'parent', PARENT_YAML('child', '{ text: 5 }'));
    expect(wrong.message).toContain("inputs do not fit workflow child@1.0.0's inputs");
    const self = await registerError(swarm, dir, 'parent', PARENT_YAML('parent'));
    expect(self.message).toContain('cycle: parent → parent');
    // a → b registered; b → c registered; then c → a closes the loop.
    const link = (name: string, to: string): string => `name: ${name}\nversion: 1.0.0\nsteps:\n  - id: s\n    workflow: ${to}\n`;
    await swarm.registerWorkflow(writeWorkflow(dir, 'c', 'name: c\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: noop@1.0.0\n'));
    await swarm.registerWorkflow(writeWorkflow(dir, 'b', link('b', 'c')));
    await swarm.registerWorkflow(writeWorkflow(dir, 'a', link('a', 'b')));
    const cycle = await registerError(swarm, dir, 'c2', link('c', 'a').replace('version: 1.0.0', 'version: 2.0.0'));
    expect(cycle.message).toMatch(/workflow\.yaml:5: steps\[0\]\.workflow: step 's': sub-workflow cycle: c → a → b → c/);
  });

  it('a map over a sub-workflow runs one child per element', async () => {
    const { dir, swarm } = await setup();
    const g = await gate(dir, swarm);
    g.release();
    await swarm.registerWorkflow(writeWorkflow(dir, 'child', CHILD_YAML));
    const yaml = `name: fan\nversion: 1.0.0\nsteps:\n  - id: each\n    workflow: child\n    map: "\${trigger.words}"\n    max_concurrency: 2\n    inputs: { text: "\${map.item}" }\n`;
    await swarm.registerWorkflow(writeWorkflow(dir, 'fan', yaml));
    const d = await swarm.runToCompletion(await swarm.startRun('fan', { words: ['a', 'b', 'c'] }));
    expect(d.run.status).toBe('completed');
    expect(d.steps.find((s) => s.step_id === 'each')?.outputs).toEqual([{ shout: { echoed: 'A' } }, { shout: { echoed: 'B' } }, { shout: { echoed: 'C' } }]);
    expect((await swarm.listRuns({ parent: d.run.id })).map((r) => r.parent_step_id).sort()).toEqual(['each[0]', 'each[1]', 'each[2]']);
  });
});
