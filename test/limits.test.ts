/**
 * Size limits (`limits:` in swarm.yaml): run input through the CLI and the library (SQLite and
 * PostgreSQL), step inputs and outputs, event payloads, error messages, log capture and LLM
 * messages; and long values cut in human views but never in --json.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, ftruncateSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../src/agents/loop.js';
import { agent, tool } from '../src/agents/agent.js';
import { LIMIT_DEFAULTS, LimitExceededError } from '../src/core/limits.js';
import { resolveConfig } from '../src/config/config.js';
import { Swarm } from '../src/swarm.js';
import { ScriptedModel } from '../src/testing/scripted-model.js';
import { pgTestServer, stopPgTestServer, type PgTestServer } from './helpers/pg.js';
import { builtinAgent, cliEnv, openProject, registerPackages, removeProject, runCli, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';

const MiB = 1024 * 1024;

describe('configuration', () => {
  it('every limit has a documented default, and swarm.yaml overrides any of them', () => {
    expect(LIMIT_DEFAULTS).toEqual({
      run_input_bytes: MiB,
      step_input_bytes: MiB,
      step_output_bytes: MiB,
      event_payload_bytes: 256 * 1024,
      log_capture_bytes: 64 * 1024,
      llm_message_bytes: MiB,
      manifest_bytes: MiB,
    });
    const dir = tempProject('name: t\nlimits: { run_input_bytes: 2048, manifest_bytes: 65536 }\n');
    try {
      expect(resolveConfig({ cwd: dir }).limits).toEqual({ ...LIMIT_DEFAULTS, run_input_bytes: 2048, manifest_bytes: 65536 });
    } finally {
      removeProject(dir);
    }
    const bad = tempProject('name: t\nlimits:\n  step_output_bytes: 10\n');
    try {
      expect(() => resolveConfig({ cwd: bad })).toThrow(`${join(bad, 'swarm.yaml')}:3: limits.step_output_bytes: must be >= 1024`);
    } finally {
      removeProject(bad);
    }
  });
});

describe('run input through the CLI', () => {
  let dir: string;
  beforeAll(async () => {
    dir = tempProject();
    builtinAgent(dir, 'say', 'echo', 'inputs:\n  - { name: message, type: any }\noutputs:\n  - { name: echoed, type: any }\n');
    writeWorkflow(dir, 'say', 'name: say\nversion: 1.0.0\nsteps:\n  - { id: s, agent: say, inputs: { message: "${trigger.text}" } }\n');
    expect(await registerPackages(dir, cliEnv(dir))).toEqual(['say', 'say']);
  });
  afterAll(() => removeProject(dir));

  const noRuns = async (): Promise<void> => {
    const list = await runCli(['runs', 'list', '--json'], dir);
    expect(JSON.parse(list.stdout)).toEqual([]);
  };

  it('a 50 MB input file is refused from its size, without being read: exit 2, the limit and the size, no run', async () => {
    const file = join(dir, 'big.json');
    // A sparse file: 50 MB long, no blocks; reading it all would still take 50 MB of memory.
    const fd = openSync(file, 'w');
    ftruncateSync(fd, 50 * MiB);
    closeSync(fd);
    const started = Date.now();
    const r = await runCli(['run', 'say', `@${file}`], dir);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`swarm: run input ${file} is 52,428,800 bytes; limits.run_input_bytes is 1,048,576`);
    expect(Date.now() - started).toBeLessThan(10_000);
    await noRuns();
  });

  it('standard input over the limit is counted, not kept: exit 2 with its size', async () => {
    const text = JSON.stringify({ text: 'x'.repeat(2 * MiB) });
    const r = await runCli(['run', 'say', '-'], dir, {}, text);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`swarm: run input from standard input is ${Buffer.byteLength(text).toLocaleString('en-US')} bytes; limits.run_input_bytes is 1,048,576`);
    await noRuns();
  });

  it('a smaller limit in swarm.yaml applies to inline input; under it the run works', async () => {
    writeFileSync(join(dir, 'swarm.yaml'), 'name: t\nlimits: { run_input_bytes: 1024 }\n');
    try {
      const input = JSON.stringify({ text: 'y'.repeat(2000) });
      const r = await runCli(['run', 'say', input], dir);
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe(`swarm: run input is ${input.length.toLocaleString('en-US')} bytes; limits.run_input_bytes is 1,024`);
      await noRuns();
      const ok = await runCli(['run', 'say', '{"text": "small"}', '--json'], dir);
      expect(ok.code).toBe(0);
    } finally {
      writeFileSync(join(dir, 'swarm.yaml'), 'name: t\n');
    }
  });

  it('runs show cuts long values and says how to see them; runs show --json and run --json print everything', async () => {
    const long = 'z'.repeat(100_000);
    const file = join(dir, 'long.json');
    writeFileSync(file, JSON.stringify({ text: long }));
    const started = await runCli(['run', 'say', `@${file}`], dir);
    expect(started.code).toBe(0);
    // The output of `swarm run` (human) is cut too.
    expect(started.stdout.length).toBeLessThan(20_000);
    expect(started.stdout).toMatch(/more bytes not shown: '(npx )?swarm runs show [0-9a-f-]+ --json' prints all\]/);
    const id = (JSON.parse((await runCli(['runs', 'list', '--json'], dir)).stdout) as Array<{ id: string }>)[0]?.id as string;
    const human = await runCli(['runs', 'show', id], dir);
    expect(human.code).toBe(0);
    expect(human.stdout.length).toBeLessThan(10_000);
    expect(human.stdout).toContain(`swarm runs show ${id} --json' prints all]`);
    const json = JSON.parse((await runCli(['runs', 'show', id, '--json'], dir)).stdout) as { trigger: { text: string }; steps: Array<{ outputs: { echoed: string } }> };
    expect(json.trigger.text).toBe(long);
    expect(json.steps[0]?.outputs.echoed).toBe(long);
  });
});

describe.each(['sqlite', 'postgres'] as const)('limits in the engine (%s)', (backend) => {
  let server: PgTestServer | undefined;
  let dir: string;
  const databases: string[] = [];
  beforeAll(async () => {
    if (backend === 'postgres') server = await pgTestServer();
  });
  afterAll(async () => {
    for (const url of databases) await server?.dropDatabase(url);
    if (backend === 'postgres') await stopPgTestServer();
  });

  /** A new project, on a new database. */
  const open = async (yaml = 'name: t\n'): Promise<Swarm> => {
    dir = tempProject(yaml);
    const url = server ? await server.createDatabase() : undefined;
    if (url) databases.push(url);
    return openProject(dir, { env: { SWARM_HOME: join(dir, '.swarm'), ...(url ? { SWARM_DATABASE_URL: url } : {}) } });
  };

  it('startRun refuses input over the limit before anything is written', async () => {
    const swarm = await open('name: t\nlimits: { run_input_bytes: 4096 }\n');
    try {
      await swarm.registerAgent(builtinAgent(dir, 'say', 'echo'));
      await swarm.registerWorkflow(writeWorkflow(dir, 'say', 'name: say\nversion: 1.0.0\nsteps:\n  - { id: s, agent: say, inputs: { message: "${trigger.text}" } }\n'));
      const before = (await swarm.listRuns({ workflow: 'say', limit: 1000 })).length;
      const e = await swarm.startRun('say', { text: 'q'.repeat(5000) }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(LimitExceededError);
      const size = JSON.stringify({ text: 'q'.repeat(5000) }).length;
      expect((e as LimitExceededError).message).toBe(`run input is ${size.toLocaleString('en-US')} bytes; limits.run_input_bytes is 4,096`);
      expect((e as LimitExceededError).exitCode).toBe(2);
      expect((await swarm.listRuns({ workflow: 'say', limit: 1000 })).length).toBe(before);
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });

  it('a step whose output is over the limit fails once (not retried), naming the limit and the size; nothing of it is stored', async () => {
    const swarm = await open();
    try {
      await swarm.registerAgent(
        writeAgent(dir, 'big', 'name: big\nversion: 1.0.0\nruntime: { type: node, entry: main.js }\n', {
          'main.js': "require('fs').writeFileSync(process.argv[3], JSON.stringify({ data: 'x'.repeat(2 * 1024 * 1024) }));\n",
        }),
      );
      await swarm.registerWorkflow(writeWorkflow(dir, 'big', 'name: big\nversion: 1.0.0\nsteps:\n  - { id: s, agent: big, retry: { max_attempts: 3, backoff_ms: 10 } }\n'));
      const { run, steps } = await swarm.runToCompletion(await swarm.startRun('big', {}));
      expect(run.status).toBe('failed');
      expect(steps[0]?.attempt).toBe(1);
      expect(steps[0]?.error).toBe(`step output is ${(2 * MiB + 11).toLocaleString('en-US')} bytes; limits.step_output_bytes is 1,048,576`);
      expect(steps[0]?.outputs).toBeNull();
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });

  it('configured smaller step limits: a step whose input or output is over its limit fails, naming limit and size', async () => {
    const swarm = await open('name: t\nlimits: { step_input_bytes: 2048, step_output_bytes: 4096 }\n');
    try {
      await swarm.registerAgent(builtinAgent(dir, 'say', 'echo'));
      swarm.defineBuiltin('grow', async (inputs) => ({ text: String(inputs.text).repeat(4) }));
      await swarm.registerAgent(builtinAgent(dir, 'grow', 'grow'));
      await swarm.registerWorkflow(writeWorkflow(dir, 'in', 'name: in\nversion: 1.0.0\nsteps:\n  - { id: s, agent: say, inputs: { message: "${trigger.text}" } }\n'));
      await swarm.registerWorkflow(writeWorkflow(dir, 'out', 'name: out\nversion: 1.0.0\nsteps:\n  - { id: s, agent: grow, inputs: { text: "${trigger.text}" } }\n'));
      const a = await swarm.runToCompletion(await swarm.startRun('in', { text: 'i'.repeat(3000) }));
      expect(a.steps[0]?.status).toBe('failed');
      const inputBytes = JSON.stringify({ message: 'i'.repeat(3000) }).length;
      expect(a.steps[0]?.error).toBe(`step input is ${inputBytes.toLocaleString('en-US')} bytes; limits.step_input_bytes is 2,048`);
      const b = await swarm.runToCompletion(await swarm.startRun('out', { text: 'o'.repeat(1500) }));
      const outputBytes = JSON.stringify({ text: 'o'.repeat(6000) }).length;
      expect(b.steps[0]?.error).toBe(`step output is ${outputBytes.toLocaleString('en-US')} bytes; limits.step_output_bytes is 4,096`);
      const c = await swarm.runToCompletion(await swarm.startRun('out', { text: 'o'.repeat(500) }));
      expect(c.run.status).toBe('completed');
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });

  it('event payloads: a handler message over the limit is refused (logged as such), a long cancel reason is refused with nothing written, long errors are cut', async () => {
    const swarm = await open('name: t\nlimits: { event_payload_bytes: 4096 }\n');
    try {
      swarm.defineBuiltin('blob', async () => ({ text: 'b'.repeat(6000) }));
      swarm.defineBuiltin('boom', async () => {
        throw new Error(`bad ${'e'.repeat(10_000)}`);
      });
      swarm.defineBuiltin('wait', async (_i, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped')))));
      for (const n of ['blob', 'boom', 'wait']) await swarm.registerAgent(builtinAgent(dir, n, n));
      await swarm.registerWorkflow(writeWorkflow(dir, 'tell', 'name: tell\nversion: 1.0.0\nsteps:\n  - { id: s, agent: blob }\non_success:\n  - notify: { message: "got ${steps.s.outputs.text}" }\n'));
      await swarm.registerWorkflow(writeWorkflow(dir, 'fail', 'name: fail\nversion: 1.0.0\nsteps:\n  - { id: s, agent: boom }\n'));
      await swarm.registerWorkflow(writeWorkflow(dir, 'hold', 'name: hold\nversion: 1.0.0\nsteps:\n  - { id: s, agent: wait }\n'));

      const told = await swarm.startRun('tell', {});
      expect((await swarm.runToCompletion(told)).run.status).toBe('completed');
      const log = (await swarm.events(told)).find((e) => e.type === 'HANDLER_LOG');
      const size = JSON.stringify({ handler: 'on_success[0]', message: `got ${'b'.repeat(6000)}` }).length;
      expect(log?.data).toEqual({ handler: 'on_success[0]', error: `the data of a HANDLER_LOG event is ${size.toLocaleString('en-US')} bytes; limits.event_payload_bytes is 4,096` });
      expect((await swarm.verify(told)).ok).toBe(true);

      const failed = await swarm.runToCompletion(await swarm.startRun('fail', {}));
      const error = failed.steps[0]?.error ?? '';
      expect(error.startsWith('bad eee')).toBe(true);
      expect(error).toMatch(/… \[8,980 more bytes cut; limits\.event_payload_bytes is 4,096\]$/);
      expect(Buffer.byteLength(error)).toBeLessThan(1200);

      const held = await swarm.startRun('hold', {});
      const seq = (await swarm.getRun(held)).run.event_seq;
      const e = await swarm.cancel(held, 'r'.repeat(5000)).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(LimitExceededError);
      expect((e as Error).message).toMatch(/^the data of a RUN_CANCELLED event is 5,0\d\d bytes; limits\.event_payload_bytes is 4,096$/);
      const after = await swarm.getRun(held);
      expect([after.run.status, after.run.event_seq]).toEqual(['queued', seq]);
      await swarm.cancel(held, 'short reason');
      expect((await swarm.getRun(held)).run.status).toBe('cancelled');
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });
});

// The capture belongs to the process executor, not to the store: one backend is enough.
describe('log capture', () => {
  it('log capture keeps the configured number of bytes (the end)', async () => {
    const dir = tempProject('name: t\nlimits: { log_capture_bytes: 1024 }\n');
    const swarm = await openProject(dir);
    try {
      await swarm.registerAgent(
        writeAgent(dir, 'chatty', 'name: chatty\nversion: 1.0.0\nruntime: { type: node, entry: main.js }\n', {
          'main.js': "process.stdout.write('a'.repeat(5000) + 'END');\nrequire('fs').writeFileSync(process.argv[3], '{}');\n",
        }),
      );
      await swarm.registerWorkflow(writeWorkflow(dir, 'chatty', 'name: chatty\nversion: 1.0.0\nsteps:\n  - { id: s, agent: chatty }\n'));
      const id = await swarm.startRun('chatty', {});
      expect((await swarm.runToCompletion(id)).run.status).toBe('completed');
      const [log] = await swarm.logs(id);
      expect(log?.stdout.length).toBe(1024);
      expect(log?.stdout.endsWith('aEND')).toBe(true);
      expect(log?.truncated).toBe(true);
    } finally {
      await swarm.close();
      removeProject(dir);
    }
  });
});

describe('LLM message size', () => {
  it('a tool result over the limit reaches the model as an error; an answer over it fails the loop; so does an input message', async () => {
    const big = tool({ name: 'dump', description: 'd', parameters: { type: 'object', properties: {} }, execute: () => 'd'.repeat(5000) });
    const model = new ScriptedModel([{ toolCalls: [{ id: 'c1', name: 'dump', arguments: {} }] }, { content: 'ok' }]);
    const r = await run(agent({ name: 'a', model, tools: [big] }), [{ role: 'user', content: 'go' }], { maxMessageBytes: 2048 });
    expect(r.status).toBe('completed');
    const toolMessage = model.requests[1]?.messages.find((m) => m.role === 'tool');
    expect(toolMessage?.content).toBe("Error: the result of tool 'dump' is 5,000 bytes; limits.llm_message_bytes is 2,048. Ask for less.");

    const chatty = new ScriptedModel([{ content: 'w'.repeat(3000) }]);
    const e = await run(agent({ name: 'b', model: chatty }), [{ role: 'user', content: 'go' }], { maxMessageBytes: 2048 }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(LimitExceededError);
    expect((e as Error).message).toBe("the answer of agent 'b' (turn 1) is 3,000 bytes; limits.llm_message_bytes is 2,048");

    const e2 = await run(agent({ name: 'c', model: chatty }), [{ role: 'user', content: 'u'.repeat(3000) }], { maxMessageBytes: 2048 }).catch((err: unknown) => err);
    expect((e2 as Error).message).toBe('message 1 (user) of the conversation is 3,000 bytes; limits.llm_message_bytes is 2,048');
  });
});
