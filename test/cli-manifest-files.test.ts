/**
 * Hostile and careless manifest files at the `swarm` command line: paths that are not regular files
 * (a symlink to /dev/zero, a FIFO, a directory), files over the size cap, YAML alias bombs and
 * undefined aliases, reserved names, and a manifest with several mistakes. Each gets exit 2, a
 * message naming the file (and line), nothing registered, and returns at once.
 * Real processes, real files. Build first: `npm run build`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync } from 'node:fs';
import { afterAll, describe, test, type ExpectStatic } from 'vitest';
import { cleanupSandboxes, examplesStore, lines, makeSandbox, show, type CliResult, type Sandbox } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

/** Generous: each of these used to hang or read without end; a correct refusal takes well under a second
 * on a quiet machine, and took 14–16 s (CLI start-up starved of CPU) on a fully loaded one. */
const RETURNS_WITHIN_MS = 45_000;

/** Exit 2, every stderr line starts with `swarm: `, nothing on stdout, and it returned at once. */
function refused(expect: ExpectStatic, r: CliResult): string[] {
  expect(r.signal, show(r)).toBeNull();
  expect(r.code, show(r)).toBe(2);
  expect(r.stdout, show(r)).toBe('');
  expect(r.ms, show(r)).toBeLessThan(RETURNS_WITHIN_MS);
  const all = lines(r.stderr);
  for (const l of all) expect(l, show(r)).toMatch(/^swarm: /);
  expect(r.stderr, show(r)).not.toContain('unexpected error');
  return all;
}

async function noAgents(expect: ExpectStatic, s: Sandbox): Promise<void> {
  expect(await s.json<unknown[]>(['agent', 'list', '--json'])).toEqual([]);
}

async function workflowNames(s: Sandbox): Promise<string[]> {
  return (await s.json<Array<{ name: string }>>(['workflow', 'list', '--json'])).map((w) => w.name);
}

async function withExamples(): Promise<Sandbox> {
  const s = makeSandbox();
  s.copyStore(await examplesStore());
  return s;
}

const RUN = { timeoutMs: 20_000 };

describe.concurrent('manifest files that are not regular files', () => {
  test('agent.yaml a symlink to /dev/zero: exit 2 naming the path, at once; nothing registered', async ({ expect }) => {
    const s = makeSandbox();
    mkdirSync(s.path('agents/zero'), { recursive: true });
    symlinkSync('/dev/zero', s.path('agents/zero/agent.yaml'));
    const [msg, ...rest] = refused(expect, await s.run(['agent', 'register', 'agents/zero'], RUN));
    expect(rest).toEqual([]);
    expect(msg).toBe(`swarm: ${s.path('agents/zero/agent.yaml')}: is a device, not a regular file (manifests must be regular files)`);
    await noAgents(expect, s);
  });

  test('agent.yaml a FIFO: exit 2 naming the path, without waiting for a writer; nothing registered', async ({ expect }) => {
    const s = makeSandbox();
    mkdirSync(s.path('agents/pipe'), { recursive: true });
    execFileSync('mkfifo', [s.path('agents/pipe/agent.yaml')]);
    const [msg] = refused(expect, await s.run(['agent', 'register', 'agents/pipe'], RUN));
    expect(msg).toContain(`${s.path('agents/pipe/agent.yaml')}: is a FIFO (named pipe), not a regular file`);
    // The file given directly, and a workflow.yaml that is a FIFO, are refused the same way.
    expect(refused(expect, await s.run(['agent', 'register', 'agents/pipe/agent.yaml'], RUN))[0]).toContain('is a FIFO');
    mkdirSync(s.path('workflows/pipe'), { recursive: true });
    execFileSync('mkfifo', [s.path('workflows/pipe/workflow.yaml')]);
    expect(refused(expect, await s.run(['workflow', 'register', 'workflows/pipe'], RUN))[0]).toContain(`${s.path('workflows/pipe/workflow.yaml')}: is a FIFO`);
    await noAgents(expect, s);
    expect(await workflowNames(s)).toEqual([]);
  });

  test('a directory named agent.yaml: exit 2 naming it; register --all reports it and registers the rest', async ({ expect }) => {
    const s = makeSandbox();
    mkdirSync(s.path('agents/dir/agent.yaml'), { recursive: true });
    const [msg] = refused(expect, await s.run(['agent', 'register', 'agents/dir'], RUN));
    expect(msg).toBe(`swarm: ${s.path('agents/dir/agent.yaml')}: is a directory, not a file`);
    await noAgents(expect, s);
    s.write('agents/good/agent.yaml', 'name: good\nversion: 1.0.0\nruntime: {type: builtin, entry: echo}\n');
    const all = await s.run(['agent', 'register', '--all', 'agents'], RUN);
    expect(all.code, show(all)).toBe(2);
    expect(all.stderr).toContain(`${s.path('agents/dir')}: ${s.path('agents/dir/agent.yaml')}: is a directory`);
    expect((await s.json<Array<{ name: string }>>(['agent', 'list', '--json'])).map((a) => a.name)).toEqual(['good']);
  });

  test('limits.manifest_bytes in swarm.yaml lowers the cap: a 3 KiB agent.yaml over a 2 KiB limit is refused', async ({ expect }) => {
    const s = makeSandbox();
    s.write('swarm.yaml', 'name: small\nlimits: {manifest_bytes: 2048}\n');
    const head = 'name: big\nversion: 1.0.0\nruntime: {type: builtin, entry: echo}\n';
    const file = s.write('agents/big/agent.yaml', head + `# ${'x'.repeat(3000)}\n`);
    const size = Buffer.byteLength(head) + 3000 + 3;
    const [msg] = refused(expect, await s.run(['agent', 'register', 'agents/big'], RUN));
    expect(msg).toBe(`swarm: ${file}: is ${(size / 1024).toFixed(1)} KiB (${size} bytes), more than the 2 KiB (2048 bytes) a manifest may be (limits.manifest_bytes in swarm.yaml)`);
    await noAgents(expect, s);
  });

  test('swarm.yaml a FIFO: every command exits 2 naming it, at once', async ({ expect }) => {
    const s = makeSandbox();
    execFileSync('mkfifo', [s.path('swarm.yaml')]);
    const [msg] = refused(expect, await s.run(['agent', 'list'], RUN));
    expect(msg).toContain(`${s.path('swarm.yaml')}: is a FIFO`);
  });

  test('a manifest over the 1 MiB cap: exit 2 with the limit and the size, before it is parsed', async ({ expect }) => {
    const s = makeSandbox();
    const head = 'name: big\nversion: 1.0.0\nruntime: {type: builtin, entry: echo}\n';
    const file = s.write('agents/big/agent.yaml', head + `# ${'x'.repeat(1024 * 1024)}\n`);
    const size = Buffer.byteLength(head) + 1024 * 1024 + 3;
    const [msg] = refused(expect, await s.run(['agent', 'register', 'agents/big'], RUN));
    expect(msg).toBe(`swarm: ${file}: is 1.0 MiB (${size} bytes), more than the 1 MiB (1048576 bytes) a manifest may be (limits.manifest_bytes in swarm.yaml)`);
    await noAgents(expect, s);
  });
});

describe.concurrent('YAML aliases', () => {
  test('an alias bomb: exit 2 naming file:line of the alias that crosses the limit; nothing registered', async ({ expect }) => {
    const s = makeSandbox();
    const text = [
      'name: bomb',
      'version: 1.0.0',
      'runtime: {type: builtin, entry: echo}',
      'tags: &a [x, x, x, x, x, x, x, x, x, x]',
      'description: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'author: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'capabilities: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
      'triggers: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]',
      '',
    ].join('\n');
    const file = s.write('agents/bomb/agent.yaml', text);
    const [msg, ...rest] = refused(expect, await s.run(['agent', 'register', 'agents/bomb'], RUN));
    expect(rest).toEqual([]);
    expect(msg).toMatch(new RegExp(`^swarm: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:7: invalid YAML: alias \\*c expands anchor &c too often`));
    await noAgents(expect, s);
  });

  test('aliases to anchors that do not exist: exit 2, each named with file:line', async ({ expect }) => {
    const s = makeSandbox();
    const text = 'name: w\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: echo\n    inputs: *missing\n  - id: b\n    agent: *nobody\n';
    const file = s.write('workflows/w/workflow.yaml', text);
    const out = refused(expect, await s.run(['workflow', 'register', 'workflows/w'], RUN));
    expect(out).toEqual([
      `swarm: ${file}:6: invalid YAML: alias *missing names no anchor &missing defined before it`,
      `swarm: ${file}:8: invalid YAML: alias *nobody names no anchor &nobody defined before it`,
    ]);
    expect(await workflowNames(s)).toEqual([]);
  });
});

describe.concurrent('reserved names', () => {
  test('__proto__ as a step id: exit 2 at registration, naming file:line; nothing registered', async ({ expect }) => {
    const s = await withExamples();
    const text = 'name: proto\nversion: 1.0.0\nsteps:\n  - id: __proto__\n    agent: echo@1.0.0\n    inputs: {message: hi}\n';
    const file = s.write('workflows/proto/workflow.yaml', text);
    const out = refused(expect, await s.run(['workflow', 'register', 'workflows/proto'], RUN));
    expect(out).toEqual([`swarm: ${file}:4: steps[0].id: '__proto__' is reserved and cannot be used as a step id (reserved: __proto__, constructor, prototype)`]);
    expect(await workflowNames(s)).not.toContain('proto');
  });

  test('constructor and prototype as a step id, an agent name, a field name, a variable: each refused', async ({ expect }) => {
    const s = await withExamples();
    const wf = s.write(
      'workflows/ctor/workflow.yaml',
      'name: ctor\nversion: 1.0.0\nvariables: {prototype: 1}\nsteps:\n  - id: constructor\n    agent: echo@1.0.0\n    inputs: {message: hi}\n',
    );
    const out = refused(expect, await s.run(['workflow', 'register', 'workflows/ctor'], RUN));
    expect(out).toEqual([
      `swarm: ${wf}:3: variables.prototype: 'prototype' is reserved and cannot be used as a variable name (reserved: __proto__, constructor, prototype)`,
      `swarm: ${wf}:5: steps[0].id: 'constructor' is reserved and cannot be used as a step id (reserved: __proto__, constructor, prototype)`,
    ]);
    const ag = s.write('agents/constructor/agent.yaml', 'name: constructor\nversion: 1.0.0\nruntime: {type: builtin, entry: echo}\noutputs:\n  - {name: prototype, type: string}\n');
    expect(refused(expect, await s.run(['agent', 'register', 'agents/constructor'], RUN))).toEqual([
      `swarm: ${ag}:1: name: 'constructor' is reserved and cannot be used as an agent name (reserved: __proto__, constructor, prototype)`,
      `swarm: ${ag}:5: outputs[0].name: 'prototype' is reserved and cannot be used as a field name (reserved: __proto__, constructor, prototype)`,
    ]);
    expect(await workflowNames(s)).not.toContain('ctor');
    expect((await s.json<Array<{ name: string }>>(['agent', 'list', '--json'])).map((a) => a.name)).not.toContain('constructor');
  });
});

describe.concurrent('every problem at once', () => {
  test('a workflow with three mistakes: all three reported, one line each with file:line: field; nothing registered', async ({ expect }) => {
    const s = await withExamples();
    const text = [
      'name: three',
      'version: one', // 2: not a semantic version
      'steps:',
      '  - id: a',
      '    agent: echo@1.0.0',
      '    inputs: {message: hi}',
      '  - id: a', // 7: duplicate id
      '    agent: echo@1.0.0',
      '    inputs: {message: hi}',
      '  - id: c',
      '    agent: echo@1.0.0',
      '    depends_on: [nothere]', // 12: unknown step
      '    inputs: {message: hi}',
      '',
    ].join('\n');
    const file = s.write('workflows/three/workflow.yaml', text);
    const out = refused(expect, await s.run(['workflow', 'register', 'workflows/three'], RUN));
    expect(out).toEqual([
      `swarm: ${file}:2: version: 'one' is not a semantic version (like 1.0.0)`,
      `swarm: ${file}:7: steps[1].id: duplicate step id 'a' (first used by steps[0])`,
      `swarm: ${file}:12: steps[2].depends_on: unknown step 'nothere'`,
    ]);
    expect(await workflowNames(s)).not.toContain('three');
  });

  test('an agent.yaml with three schema mistakes: all reported; register --all prints them under the package', async ({ expect }) => {
    const s = makeSandbox();
    const text = 'name: Bad Name\nversion: 1.0.0\nruntime:\n  type: rust\n  entry: main\ncolour: red\n';
    const file = s.write('agents/bad/agent.yaml', text);
    const out = refused(expect, await s.run(['agent', 'register', 'agents/bad'], RUN));
    expect(out).toHaveLength(3);
    expect(out[0]).toBe(`swarm: ${file}:1: name: must match pattern "^[a-z0-9][a-z0-9._-]{0,63}$"`);
    expect(out[1]).toMatch(new RegExp(`^swarm: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4: runtime.type: must be one of "node", `));
    expect(out[2]).toMatch(/:6: colour: unknown field/);
    const all = await s.run(['agent', 'register', '--all', 'agents'], RUN);
    expect(all.code, show(all)).toBe(2);
    const err = lines(all.stderr);
    expect(err[0]).toContain(`✖ ${s.path('agents/bad')}: ${file}:1: name:`);
    expect(err[1]).toMatch(/^ {4}\S+:4: runtime\.type: /);
    expect(err[2]).toMatch(/^ {4}\S+:6: colour: /);
    await noAgents(expect, s);
  });
});
