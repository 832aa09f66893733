import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Tool, ToolContext } from '../src/agents/agent.js';
import {
  BUILTIN_TOOLS,
  loadTools,
  TOOL_SPEC_SCHEMA,
  ToolCallError,
  ToolLoadError,
  validateToolArguments,
  zonedTime,
  type ToolSet,
  type ToolSpec,
} from '../src/agents/tools/index.js';
import { httpFetchTool } from '../src/agents/tools/builtins.js';
import { ManifestError } from '../src/core/errors.js';
import { NetworkGuard } from '../src/net/guard.js';
import { checkManifest } from '../src/core/manifest/schema-check.js';
import { parseYaml } from '../src/core/manifest/yaml-source.js';
import { serveHttp, type HttpFixture } from './fixtures/mcp-server.js';
import { ROOT } from './helpers/project.js';

const FIXTURE = join(ROOT, 'test', 'fixtures', 'mcp-server.ts');
const NOTES_SERVER = join(ROOT, 'examples', 'mcp', 'notes-server.mjs');
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const AGENT_TS = pathToFileURL(join(ROOT, 'src', 'agents', 'agent.ts')).href;

const dirs: string[] = [];
const sets: ToolSet[] = [];

/** A fresh agent package directory with these files. */
function pkg(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-tools-'));
  dirs.push(dir);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), text);
  }
  return dir;
}

/** The test servers listen on loopback, which HTTP tools reach only when it is allow-listed. */
const LOOPBACK = new NetworkGuard({ allow: ['127.0.0.1'] });
afterAll(() => LOOPBACK.close());

/** loadTools, remembering the set so that every test's MCP servers are stopped. */
async function load(specs: ToolSpec[], packageDir: string, extra: { signal?: AbortSignal; log?: (m: string) => void; network?: NetworkGuard } = {}): Promise<ToolSet> {
  const set = await loadTools(specs, { packageDir, ...extra });
  sets.push(set);
  return set;
}

async function loadError(specs: ToolSpec[], packageDir: string): Promise<ToolLoadError> {
  const e: unknown = await loadTools(specs, { packageDir }).then(
    () => new Error('loadTools succeeded'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ToolLoadError);
  return e as ToolLoadError;
}

function ctx(over: Partial<ToolContext> = {}): ToolContext {
  return { contextVariables: {}, callId: 'call-1', agent: 'helper', idempotencyKey: 'session-1/call-1', signal: new AbortController().signal, ...over };
}

function byName(set: ToolSet, name: string): Tool {
  const t = set.tools.find((x) => x.name === name);
  if (!t) throw new Error(`no tool ${name} (have ${set.tools.map((x) => x.name).join(', ')})`);
  return t;
}

async function callError(t: Tool, args: Record<string, unknown>, c = ctx()): Promise<Error> {
  const e: unknown = await Promise.resolve()
    .then(() => t.execute(args, c))
    .then(
      () => new Error('the call succeeded'),
      (err: unknown) => err,
    );
  expect(e).toBeInstanceOf(Error);
  return e as Error;
}

/** Processes whose parent is this test process and whose command line contains `marker`. */
function childProcesses(marker: string): number[] {
  const out = execFileSync('ps', ['-A', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && Number(m[2]) === process.pid && (m[3] as string).includes(marker))
    .map((m) => Number(m[1]));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const fixtureSpec = (over: Partial<{ env: Record<string, string>; cwd: string }> = {}, entry: Partial<ToolSpec> = {}): ToolSpec =>
  ({ mcp: { command: 'node', args: ['--import', TSX_LOADER, FIXTURE], ...over }, name: 'fx', ...entry });

afterEach(async () => {
  for (const s of sets.splice(0)) await s.close();
});

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('module tools', () => {
  const JS_TOOLS = `
export const add = {
  name: 'add',
  description: 'Add two numbers',
  parameters: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] },
  execute: ({ a, b }) => a + b,
};
export const shout = {
  name: 'shout',
  description: 'Upper-case a text',
  parameters: { type: 'object', properties: { text: { type: 'string' } } },
  async execute({ text }, ctx) { return text.toUpperCase() + ' from ' + ctx.agent; },
};
export const VERSION = 3;
export function helper() {}
`;

  it('takes every tool a JS module exports, ignores other exports, and applies needs_approval', async () => {
    const dir = pkg({ 'tools.mjs': JS_TOOLS });
    const set = await load([{ module: 'tools.mjs', needs_approval: true }], dir);
    expect(set.tools.map((t) => t.name)).toEqual(['add', 'shout']);
    expect(set.tools.every((t) => t.needsApproval === true)).toBe(true);
    expect(await byName(set, 'add').execute({ a: 2, b: 40 }, ctx())).toBe(42);
    expect(await byName(set, 'shout').execute({ text: 'hi' }, ctx())).toBe('HI from helper');
    // The module's own objects are not changed by an entry's flag.
    const again = await load([{ module: 'tools.mjs' }], dir);
    expect(again.tools.map((t) => t.needsApproval)).toEqual([undefined, undefined]);
  });

  it('takes one export by name, and a CommonJS module.exports object', async () => {
    const dir = pkg({
      'lib/tools.js': JS_TOOLS,
      'lib/package.json': '{"type":"module"}',
      'cjs/tools.cjs': `module.exports = { lookup: { name: 'lookup', description: 'Look up', parameters: { type: 'object' }, execute: (a) => 'found ' + a.key } };`,
    });
    const set = await load([{ module: 'lib/tools.js', export: 'shout' }, { module: './cjs/tools.cjs' }], dir);
    expect(set.tools.map((t) => t.name)).toEqual(['shout', 'lookup']);
    expect(await byName(set, 'lookup').execute({ key: 'k' }, ctx())).toBe('found k');
  });

  it('loads a TypeScript module through tsx, with types, a sibling import and tool()', async () => {
    const dir = pkg({
      'src/format.ts': `export function greeting(name: string, punctuation: '!' | '.'): string { return \`Hello, \${name}\${punctuation}\`; }\n`,
      'tools.ts': `
import { tool, type Tool } from '${AGENT_TS}';
import { greeting } from './src/format.js';

interface GreetArgs { name: string; excited?: boolean }

export const greet: Tool = tool({
  name: 'greet',
  description: 'Greet someone',
  parameters: { type: 'object', properties: { name: { type: 'string' }, excited: { type: 'boolean' } }, required: ['name'] },
  execute(args) {
    const { name, excited } = args as unknown as GreetArgs;
    return greeting(name, excited ? '!' : '.');
  },
});
export const count = tool({
  name: 'count_letters',
  description: 'Count letters',
  parameters: { type: 'object', properties: { text: { type: 'string' } } },
  execute: (args) => String(args.text).replace(/[^a-z]/gi, '').length,
});
export default [greet, count];
`,
    });
    const set = await load([{ module: 'tools.ts' }], dir);
    // In export-name order (count, default, greet), each tool once.
    expect(set.tools.map((t) => t.name)).toEqual(['count_letters', 'greet']);
    expect(await byName(set, 'greet').execute({ name: 'Ada', excited: true }, ctx())).toBe('Hello, Ada!');
    expect(await byName(set, 'count_letters').execute({ text: 'a-b c1' }, ctx())).toBe(3);
    const one = await load([{ module: 'tools.ts', export: 'count' }], dir);
    expect(one.tools.map((t) => t.name)).toEqual(['count_letters']);
  });

  it('a tool importing swarm-runtime where it is not installed: the error says how to install it', async () => {
    const dir = pkg({ 'tools.mjs': `import { tool } from 'swarm-runtime';\nexport const t = tool({ name: 't', description: 't', parameters: { type: 'object' }, execute: () => 'x' });\n` });
    const e = await loadError([{ module: 'tools.mjs' }], dir);
    expect(e.code).toBe('TOOL_MODULE_FAILED');
    expect(e.message).toMatch(/'tools\.mjs' failed to load: Cannot find package 'swarm-runtime'.*; it imports swarm-runtime, which is not installed where the agent's package is: in your project, npm install \/\S+ \(or npm link swarm-runtime\)$/);
  });

  it('loads a module again after its file changes', async () => {
    const dir = pkg({ 'v.mjs': `export const v = { name: 'version', description: 'v', parameters: { type: 'object' }, execute: () => 'one' };` });
    const first = await load([{ module: 'v.mjs' }], dir);
    expect(await byName(first, 'version').execute({}, ctx())).toBe('one');
    writeFileSync(join(dir, 'v.mjs'), `export const v = { name: 'version', description: 'v', parameters: { type: 'object' }, execute: () => 'two, longer' };`);
    const second = await load([{ module: 'v.mjs' }], dir);
    expect(await byName(second, 'version').execute({}, ctx())).toBe('two, longer');
  });

  it('names the file and the export when a module cannot give tools', async () => {
    const dir = pkg({
      'tools.mjs': JS_TOOLS,
      'broken.mjs': 'export const x = ;\n',
      'throws.ts': `throw new Error('no API key configured');\nexport {};\n`,
      'none.mjs': 'export const a = 1; export function b() {}\n',
      'tools.py': 'print(1)\n',
    });
    let e = await loadError([{ module: 'missing.mjs' }], dir);
    expect(e.code).toBe('TOOL_MODULE_NOT_FOUND');
    expect(e.message).toBe("tools[0] (module 'missing.mjs'): the package has no file 'missing.mjs'");

    e = await loadError([{ builtin: 'calculator' }, { module: 'tools.mjs', export: 'search' }], dir);
    expect(e.code).toBe('TOOL_EXPORT_MISSING');
    expect(e.message).toBe("tools[1] (module 'tools.mjs', export 'search'): 'tools.mjs' has no export 'search' (its exports: VERSION, add, helper, shout)");

    e = await loadError([{ module: 'tools.mjs', export: 'helper' }], dir);
    expect(e.code).toBe('TOOL_EXPORT_INVALID');
    expect(e.message).toContain("export 'helper' of 'tools.mjs' is not a tool: it is a function; wrap it with tool(");

    e = await loadError([{ module: 'tools.mjs', export: 'VERSION' }], dir);
    expect(e.message).toContain("export 'VERSION' of 'tools.mjs' is not a tool: it is a number");

    e = await loadError([{ module: 'none.mjs' }], dir);
    expect(e.message).toContain("'none.mjs' exports no tools (its exports: a, b)");

    e = await loadError([{ module: 'broken.mjs' }], dir);
    expect(e.code).toBe('TOOL_MODULE_FAILED');
    expect(e.message).toMatch(/^tools\[0\] \(module 'broken\.mjs'\): 'broken\.mjs' failed to load: /);
    expect(e.retryable).toBe(false);

    e = await loadError([{ module: 'throws.ts' }], dir);
    expect(e.message).toContain("'throws.ts' failed to load: no API key configured");

    e = await loadError([{ module: 'tools.py' }], dir);
    expect(e.code).toBe('TOOL_MODULE_INVALID');
  });

  it('refuses module paths outside the package, symbolic links included', async () => {
    const outside = pkg({ 'evil.mjs': 'export const t = 1;\n' });
    const dir = pkg({ 'tools.mjs': JS_TOOLS });
    symlinkSync(join(outside, 'evil.mjs'), join(dir, 'link.mjs'));
    for (const module of ['../evil.mjs', join(outside, 'evil.mjs'), 'link.mjs']) {
      const e = await loadError([{ module }], dir);
      expect(e.code).toBe('TOOL_PATH_OUTSIDE_PACKAGE');
      expect(e.message).toContain('is outside the package directory');
    }
  });

  it('rejects a tool name given by two entries, naming both', async () => {
    const dir = pkg({ 'tools.mjs': JS_TOOLS, 'more.mjs': `export const calc = { name: 'calculator', description: 'mine', parameters: { type: 'object' }, execute: () => 0 };` });
    let e = await loadError([{ builtin: 'calculator' }, { module: 'tools.mjs' }, { module: 'more.mjs' }], dir);
    expect(e.code).toBe('TOOL_NAME_COLLISION');
    expect(e.message).toBe("tool name 'calculator' is defined by tools[0] (built-in 'calculator') and by tools[2] (module 'more.mjs'); every tool of an agent needs its own name");
    e = await loadError([{ module: 'tools.mjs' }, { module: 'tools.mjs', export: 'add' }], dir);
    expect(e.message).toContain("tool name 'add' is defined by tools[0] (module 'tools.mjs') and by tools[1] (module 'tools.mjs', export 'add')");
  });
});

describe('HTTP tools', () => {
  let server: Server;
  let base: string;
  const received: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        const path = (req.url ?? '').split('?')[0];
        if (path?.startsWith('/items/')) {
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
          res.end(JSON.stringify({ path, query: Object.fromEntries(new URL(req.url ?? '', 'http://x').searchParams), method: req.method }));
        } else if (path === '/tickets') {
          res.writeHead(201, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ id: 7, got: JSON.parse(body) as unknown }));
        } else if (path === '/text') {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('plain words');
        } else if (path === '/big') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ data: 'x'.repeat(5000) }));
        } else if (path === '/slow') {
          setTimeout(() => res.end('late'), 3000).unref();
        } else if (path === '/full') {
          res.writeHead(503, 'Service Unavailable', { 'content-type': 'text/plain' });
          res.end('the queue is full');
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('no such thing');
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('GET: fills URL placeholders and sends the other arguments as a query string', async () => {
    const set = await load(
      [
        {
          name: 'get_item',
          description: 'Fetch an item',
          http: { url: `${base}/items/{id}`, method: 'GET' },
          parameters: { type: 'object', properties: { id: { type: 'string' }, q: { type: 'string' }, tags: { type: 'array' } }, required: ['id'] },
        },
      ],
      pkg(),
      { network: LOOPBACK },
    );
    const t = byName(set, 'get_item');
    expect(t.parameters.required).toEqual(['id']);
    const out = await t.execute({ id: 'a b/c', q: 'x&y', tags: ['1', '2'], skip: null }, ctx());
    expect(out).toEqual({ path: '/items/a%20b%2Fc', query: { q: 'x&y', tags: '2' }, method: 'GET' });
    const req = received.at(-1)!;
    expect(req.url).toBe('/items/a%20b%2Fc?q=x%26y&tags=1&tags=2');
    expect(req.headers['idempotency-key']).toBeUndefined();
    expect((await callError(t, { q: 'no id' })).message).toBe("missing 'id' for the URL");
  });

  it('POST: sends the arguments as JSON with the configured headers and the idempotency key', async () => {
    const set = await load(
      [{ name: 'create_ticket', description: 'Open a ticket', http: { url: `${base}/tickets`, headers: { authorization: 'Bearer t0ken', 'x-team': 42 } }, needs_approval: true }],
      pkg(),
      { network: LOOPBACK },
    );
    const t = byName(set, 'create_ticket');
    expect(t.needsApproval).toBe(true);
    expect(t.parameters).toEqual({ type: 'object', properties: {}, additionalProperties: false });
    expect(await t.execute({ title: 'Printer on fire', priority: 1 }, ctx({ idempotencyKey: 'run-9/call-3' }))).toEqual({ id: 7, got: { title: 'Printer on fire', priority: 1 } });
    const req = received.at(-1)!;
    expect(req.method).toBe('POST');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers.authorization).toBe('Bearer t0ken');
    expect(req.headers['x-team']).toBe('42');
    expect(req.headers['idempotency-key']).toBe('run-9/call-3');
  });

  it('turns a status outside 2xx into a tool error with the status and the body', async () => {
    const set = await load(
      [
        { name: 'missing', description: 'm', http: { url: `${base}/nope`, method: 'GET' } },
        { name: 'busy', description: 'b', http: { url: `${base}/full` } },
      ],
      pkg(),
      { network: LOOPBACK },
    );
    const e = await callError(byName(set, 'missing'), {});
    expect(e).toBeInstanceOf(ToolCallError);
    expect(e.message).toBe('HTTP 404 Not Found: no such thing');
    expect((await callError(byName(set, 'busy'), { x: 1 })).message).toBe('HTTP 503 Service Unavailable: the queue is full');
  });

  it('returns text as text, cuts large responses and times out', async () => {
    const set = await load(
      [
        { name: 'text', description: 't', http: { url: `${base}/text`, method: 'GET' } },
        { name: 'big', description: 'b', http: { url: `${base}/big`, method: 'GET', max_bytes: 100 } },
        { name: 'slow', description: 's', http: { url: `${base}/slow`, method: 'GET', timeout_seconds: 0.2 } },
      ],
      pkg(),
      { network: LOOPBACK },
    );
    expect(await byName(set, 'text').execute({}, ctx())).toBe('plain words');
    const big = (await byName(set, 'big').execute({}, ctx())) as string;
    expect(big).toBe(`{"data":"${'x'.repeat(91)}\n[truncated: the response is larger than 100 bytes]`);
    const started = Date.now();
    const e = await callError(byName(set, 'slow'), {});
    expect(e.message).toBe(`GET ${base}/slow timed out after 200 ms`);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('refuses loopback unless the network policy allows it, without sending the request', async () => {
    const before = received.length;
    const set = await load([{ name: 'text', description: 't', http: { url: `${base}/text`, method: 'GET' } }], pkg());
    const e = await callError(byName(set, 'text'), {});
    expect(e).toBeInstanceOf(ToolCallError);
    expect((e as ToolCallError).code).toBe('NETWORK_REFUSED');
    expect(e.message).toBe(`refused ${base}/text (127.0.0.1 is loopback); allow it with network.allow in swarm.yaml`);
    expect(received.length).toBe(before);
  });

  it('rejects a URL that is not http(s) when loading', async () => {
    const e = await loadError([{ name: 'f', description: 'f', http: { url: 'http://[not a host' } }], pkg());
    expect(e.code).toBe('TOOL_SPEC_INVALID');
    expect(e.message).toContain("tools[0] (HTTP tool 'f'): http.url: 'http://[not a host' is not a valid URL");
  });
});

describe('MCP over stdio', () => {
  it('lists the server tools under the prefix and calls them', async () => {
    const dir = pkg();
    const lines: string[] = [];
    const set = await load([fixtureSpec({ env: { FIXTURE_GREETING: 'bonjour' } })], dir, { log: (m) => lines.push(m) });
    expect(set.tools.map((t) => t.name)).toEqual(['fx_echo', 'fx_add', 'fx_fail', 'fx_multi', 'fx_whoami', 'fx_slow', 'fx_exit', 'fx_dotted_name', 'fx_meta']);
    const add = byName(set, 'fx_add');
    expect(add.description).toBe('Add two numbers');
    expect(add.parameters).toMatchObject({ type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] });
    expect(add.needsApproval).toBeUndefined();

    expect(await byName(set, 'fx_echo').execute({ text: 'hi there' }, ctx())).toBe('hi there');
    expect(await add.execute({ a: 2, b: 3 }, ctx())).toEqual({ sum: 5 });
    expect(await byName(set, 'fx_multi').execute({}, ctx())).toBe('first\n[image: image/png]\nsecond');
    expect(await byName(set, 'fx_dotted_name').execute({}, ctx())).toBe('dotted');

    const failed = await callError(byName(set, 'fx_fail'), { reason: 'the disk is full' });
    expect(failed).toBeInstanceOf(ToolCallError);
    expect(failed.message).toBe('failed: the disk is full');
    // Arguments the server rejects come back as a tool error too.
    expect((await callError(add, { a: 'two', b: 3 })).message).toContain('Input validation error');

    expect(lines).toContain('[mcp fx] fixture server starting');
    expect(lines.some((l) => /^\[mcp fx\] started \(pid \d+\): fx_echo, fx_add/.test(l))).toBe(true);
  });

  it('runs the server in the package directory with the entry environment but without Swarm secrets', async () => {
    process.env.SWARM_SECRET_TOOLS_TEST = 'hidden';
    try {
      const dir = pkg({ 'data/.keep': '' });
      const set = await load([fixtureSpec({ env: { FIXTURE_GREETING: 'bonjour' } }), fixtureSpec({ cwd: 'data' }, { name: 'fy' })], dir);
      const who = async (tool: string, env: string): Promise<{ cwd: string; value: string | null }> =>
        JSON.parse((await byName(set, tool).execute({ env }, ctx())) as string) as { cwd: string; value: string | null };
      expect(await who('fx_whoami', 'FIXTURE_GREETING')).toMatchObject({ cwd: realpathSync(dir), value: 'bonjour' });
      expect((await who('fx_whoami', 'SWARM_SECRET_TOOLS_TEST')).value).toBeNull();
      expect((await who('fx_whoami', 'PATH')).value).toBe(process.env.PATH);
      expect((await who('fy_whoami', 'FIXTURE_GREETING')).cwd).toBe(join(realpathSync(dir), 'data'));
    } finally {
      delete process.env.SWARM_SECRET_TOOLS_TEST;
    }
  });

  it('include picks tools, needs_approval marks them, and close() stops the server', async () => {
    const set = await loadTools([fixtureSpec({}, { include: ['whoami', 'echo'], needs_approval: true })], { packageDir: pkg() });
    expect(set.tools.map((t) => t.name)).toEqual(['fx_echo', 'fx_whoami']);
    expect(set.tools.map((t) => t.needsApproval)).toEqual([true, true]);
    const { pid } = JSON.parse((await byName(set, 'fx_whoami').execute({}, ctx())) as string) as { pid: number };
    expect(childProcesses(FIXTURE)).toContain(pid);
    await set.close();
    expect(alive(pid)).toBe(false);
    expect(childProcesses(FIXTURE)).toEqual([]);
    await set.close(); // a second close is harmless
    const e = await callError(byName(set, 'fx_echo'), { text: 'x' });
    expect(e.message).toBe("the MCP server 'fx' is no longer connected");
  });

  it('aborting a call stops waiting for it', async () => {
    const set = await load([fixtureSpec()], pkg());
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('step cancelled')), 200);
    const e = await callError(byName(set, 'fx_slow'), { ms: 20_000 }, ctx({ signal: controller.signal }));
    expect(e.message).toBe('step cancelled');
    expect(Date.now() - started).toBeLessThan(5000);
    // The session is still usable.
    expect(await byName(set, 'fx_echo').execute({ text: 'still here' }, ctx())).toBe('still here');
  });

  it('a server that exits by itself gives a clear error on the next call', async () => {
    const lines: string[] = [];
    const set = await load([fixtureSpec()], pkg(), { log: (m) => lines.push(m) });
    expect(await byName(set, 'fx_exit').execute({}, ctx())).toBe('bye');
    for (let i = 0; i < 100 && !lines.includes('[mcp fx] the server closed the connection'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(lines).toContain('[mcp fx] the server closed the connection');
    expect((await callError(byName(set, 'fx_echo'), { text: 'x' })).message).toBe("the MCP server 'fx' is no longer connected (it closed the connection)");
    expect(childProcesses(FIXTURE)).toEqual([]);
  });

  it('reports unknown include names with the tools the server has, and leaves no process behind', async () => {
    const e = await loadError([fixtureSpec({}, { include: ['echo', 'search'] })], pkg());
    expect(e.code).toBe('MCP_TOOL_NOT_FOUND');
    expect(e.message).toBe("tools[0] (MCP server 'fx'): include: the server has no tool 'search' (its tools: echo, add, fail, multi, whoami, slow, exit, dotted.name, meta)");
    expect(childProcesses(FIXTURE)).toEqual([]);
  });

  it('stops the servers already started when a later entry fails', async () => {
    const e = await loadError([fixtureSpec(), { module: 'missing.mjs' }], pkg());
    expect(e.code).toBe('TOOL_MODULE_NOT_FOUND');
    expect(childProcesses(FIXTURE)).toEqual([]);
  });

  it('explains a server that does not start, with the end of its standard error', async () => {
    let e = await loadError([fixtureSpec({ env: { FIXTURE_CRASH: '1' } })], pkg());
    expect(e.code).toBe('MCP_CONNECT_FAILED');
    expect(e.message).toMatch(/^tools\[0\] \(MCP server 'fx'\): starting the MCP server failed: .*; its standard error ends with: fixture server starting \| fixture: cannot open the database$/);

    e = await loadError([{ mcp: { command: 'no-such-mcp-server-7f3a' } }], pkg());
    expect(e.message).toBe("tools[0] (MCP server 'no-such-mcp-server-7f3a'): starting the MCP server failed: command 'no-such-mcp-server-7f3a' not found");
    expect(e.retryable).toBe(false);

    e = await loadError([fixtureSpec({ cwd: '../..' })], pkg());
    expect(e.code).toBe('TOOL_PATH_OUTSIDE_PACKAGE');
    expect(childProcesses(FIXTURE)).toEqual([]);
  });
});

describe('MCP over streamable HTTP', () => {
  let fixture: HttpFixture;
  beforeAll(async () => {
    fixture = await serveHttp('s3cret');
  });
  afterAll(async () => {
    await fixture.close();
  });

  it('connects with the configured headers, calls tools and ends the session on close', async () => {
    const set = await loadTools([{ mcp: { url: fixture.url, headers: { Authorization: 'Bearer s3cret' } }, include: ['add', 'fail', 'echo'] }], { packageDir: pkg() });
    expect(set.tools.map((t) => t.name)).toEqual(['echo', 'add', 'fail']);
    expect(fixture.sessions()).toBe(1);
    expect(await byName(set, 'add').execute({ a: 20, b: 22 }, ctx())).toEqual({ sum: 42 });
    expect(await byName(set, 'echo').execute({ text: 'over http' }, ctx())).toBe('over http');
    expect((await callError(byName(set, 'fail'), { reason: 'nope' })).message).toBe('failed: nope');
    await set.close();
    expect(fixture.sessions()).toBe(0);
  });

  it('reports a refused connection without retrying, and an unreachable server as retryable', async () => {
    let e = await loadError([{ mcp: { url: fixture.url, headers: { Authorization: 'Bearer wrong' } }, name: 'remote' }], pkg());
    expect(e.code).toBe('MCP_CONNECT_FAILED');
    expect(e.message).toContain("tools[0] (MCP server 'remote'): connecting to the MCP server failed:");
    expect(e.message).toContain('(HTTP 401)');
    expect(e.retryable).toBe(false);

    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    e = await loadError([{ mcp: { url: `http://127.0.0.1:${port}/mcp` } }], pkg());
    expect(e.message).toContain('ECONNREFUSED');
    expect(e.retryable).toBe(true);
  });
});

describe('the notes example server', () => {
  it('adds, lists and deletes notes kept in NOTES_FILE, across restarts', async () => {
    const dir = pkg();
    const spec: ToolSpec = { mcp: { command: 'node', args: [NOTES_SERVER], env: { NOTES_FILE: 'notes.json' } }, name: 'notes' };
    const first = await loadTools([spec], { packageDir: dir });
    expect(first.tools.map((t) => t.name)).toEqual(['notes_add_note', 'notes_list_notes', 'notes_delete_note']);
    const added = (await byName(first, 'notes_add_note').execute({ text: 'Buy milk', tags: ['errand'] }, ctx())) as Record<string, unknown>;
    expect(added).toMatchObject({ id: 'n1', text: 'Buy milk', tags: ['errand'] });
    await byName(first, 'notes_add_note').execute({ text: 'Call Ada about the report' }, ctx());
    await first.close();

    const stored = JSON.parse(readFileSync(join(dir, 'notes.json'), 'utf8')) as { notes: Array<{ id: string }> };
    expect(stored.notes.map((n) => n.id)).toEqual(['n1', 'n2']);

    const second = await load([spec], dir);
    const list = byName(second, 'notes_list_notes');
    expect(((await list.execute({}, ctx())) as { notes: unknown[] }).notes).toHaveLength(2);
    expect(await list.execute({ tag: 'errand' }, ctx())).toMatchObject({ notes: [{ id: 'n1', text: 'Buy milk' }] });
    expect(await list.execute({ contains: 'ADA' }, ctx())).toMatchObject({ notes: [{ id: 'n2' }] });
    expect(await byName(second, 'notes_delete_note').execute({ id: 'n1' }, ctx())).toBe('Deleted note n1.');
    expect((await callError(byName(second, 'notes_delete_note'), { id: 'n1' })).message).toBe("No note with id 'n1'.");
    expect(await list.execute({}, ctx())).toMatchObject({ notes: [{ id: 'n2' }] });
    expect(await byName(second, 'notes_add_note').execute({ text: 'Third' }, ctx())).toMatchObject({ id: 'n3' });
  });
});

describe('built-in tools', () => {
  it('are loaded as copies carrying the entry flag', async () => {
    const set = await load([{ builtin: 'calculator', needs_approval: true }, { builtin: 'current_time' }, { builtin: 'http_fetch' }], pkg());
    expect(set.tools.map((t) => t.name)).toEqual(['calculator', 'current_time', 'http_fetch']);
    expect(set.tools[0]!.needsApproval).toBe(true);
    expect(BUILTIN_TOOLS.calculator.needsApproval).toBeUndefined();
    expect(set.tools[0]!.parameters).toBe(BUILTIN_TOOLS.calculator.parameters);
  });

  it('calculator evaluates arithmetic without eval', async () => {
    const calc = BUILTIN_TOOLS.calculator;
    const run = (expression: string): unknown => calc.execute({ expression }, ctx());
    expect(run('(2 + 3) * sqrt(16) / 4')).toBe(5);
    expect(run('2^10 + 2**3**2')).toBe(1024 + 512);
    expect(run('-2^2')).toBe(-4);
    expect(run('0.1 + 0.2')).toBe(0.3);
    expect(run('round(pi, 3) + max(1, 7, 3) % 4')).toBe(6.142);
    expect(run('log(8, 2) + ln(e) + log10(1000)')).toBe(7);
    const message = (expression: string): string => {
      try {
        run(expression);
      } catch (e) {
        expect(e).toBeInstanceOf(ToolCallError);
        return (e as Error).message;
      }
      throw new Error(`'${expression}' evaluated`);
    };
    expect(message('process.exit(1)')).toBe("cannot evaluate 'process.exit(1)': only named functions can be called");
    expect(message('constructor')).toContain("unknown name 'constructor'");
    expect(message('toString(1)')).toContain("unknown function 'toString'");
    expect(message('__proto__')).toContain("unknown name '__proto__'");
    expect(message('alert(1)')).toContain("unknown function 'alert'");
    expect(message('1 / 0')).toBe("'1 / 0' is infinite (division by zero or overflow)");
    expect(message('1 +')).toContain("cannot parse '1 +'");
    expect(message('"a" + 1')).toContain('"a" is not a number');
    expect(message('1 ? 2 : 3')).toBe("cannot evaluate '1 ? 2 : 3': conditional expressions are not supported");
    expect(message('1 == 1')).toContain("operator '==' is not supported");
    expect(message('pow(2)')).toBe("cannot evaluate 'pow(2)': pow() takes 2 arguments");
  });

  it('current_time gives ISO time in UTC or an IANA zone', async () => {
    const now = BUILTIN_TOOLS.current_time.execute({}, ctx()) as { iso: string; utc: string; time_zone: string };
    expect(now.time_zone).toBe('UTC');
    expect(now.iso).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Math.abs(Date.parse(now.utc) - Date.now())).toBeLessThan(5000);
    const kolkata = BUILTIN_TOOLS.current_time.execute({ time_zone: 'Asia/Kolkata' }, ctx()) as { iso: string };
    expect(kolkata.iso).toMatch(/\+05:30$/);
    expect(Math.abs(Date.parse(kolkata.iso) - Date.now())).toBeLessThan(5000);
    expect(zonedTime(new Date('2024-07-01T12:00:00Z'), 'America/New_York')).toEqual({
      time_zone: 'America/New_York',
      iso: '2024-07-01T08:00:00-04:00',
      utc: '2024-07-01T12:00:00.000Z',
      weekday: 'Monday',
    });
    expect(zonedTime(new Date('2024-12-31T23:30:00Z'), 'Asia/Kathmandu').iso).toBe('2025-01-01T05:15:00+05:45');
    expect(() => BUILTIN_TOOLS.current_time.execute({ time_zone: 'Mars/Olympus' }, ctx())).toThrow("unknown time zone 'Mars/Olympus'");
  });

  it('http_fetch gets and posts, returning the status rather than throwing', async () => {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (req.url === '/missing') {
          res.writeHead(404).end('gone');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, type: req.headers['content-type'] ?? null, key: req.headers['idempotency-key'] ?? null, body }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      // Without an allow-list (the shared built-in), loopback is refused; allowed, the tool works.
      const refused = await callError(BUILTIN_TOOLS.http_fetch, { url: `${base}/x` });
      expect((refused as ToolCallError).code).toBe('NETWORK_REFUSED');
      expect(refused.message).toContain('127.0.0.1 is loopback');
      const fetchTool = httpFetchTool(LOOPBACK);
      expect(await fetchTool.execute({ url: `${base}/x` }, ctx())).toEqual({
        status: 200,
        content_type: 'application/json',
        body: { method: 'GET', type: null, key: null, body: '' },
      });
      expect(await fetchTool.execute({ url: `${base}/x`, method: 'POST', body: { a: 1 } }, ctx())).toMatchObject({
        body: { method: 'POST', type: 'application/json', key: 'session-1/call-1', body: '{"a":1}' },
      });
      expect(await fetchTool.execute({ url: `${base}/missing` }, ctx())).toEqual({ status: 404, content_type: '', body: 'gone' });
      expect((await callError(fetchTool, { url: 'file:///etc/passwd' })).message).toBe("only http and https URLs are allowed, not 'file:'");
      expect((await callError(fetchTool, { url: `${base}/x`, method: 'DELETE' })).message).toBe("method must be GET or POST, not 'DELETE'");
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('validateToolArguments', () => {
  const weather: Tool = {
    name: 'weather',
    description: 'Forecast',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string' },
        units: { type: 'string', enum: ['c', 'f'], default: 'c' },
        days: { type: 'integer', minimum: 1, maximum: 7 },
        filter: { type: 'object', properties: { tags: { type: 'array', items: { type: 'string' } } } },
        context_variables: { type: 'object' },
      },
      required: ['city', 'context_variables'],
      additionalProperties: false,
    },
    execute: () => 'sunny',
  };

  it('accepts valid arguments (text or object), fills defaults and leaves the input alone', () => {
    const input = { city: 'Oslo' };
    expect(validateToolArguments(weather, input)).toEqual({ ok: true, value: { city: 'Oslo', units: 'c' } });
    expect(input).toEqual({ city: 'Oslo' });
    expect(validateToolArguments(weather, '{"city":"Lima","units":"f","days":3}')).toEqual({ ok: true, value: { city: 'Lima', units: 'f', days: 3 } });
    const none: Tool = { ...weather, parameters: { type: 'object', properties: {} } };
    expect(validateToolArguments(none, '')).toEqual({ ok: true, value: {} });
  });

  it('names the offending argument in each message', () => {
    const check = (args: unknown): string => {
      const r = validateToolArguments(weather, args);
      if (r.ok) throw new Error('arguments accepted');
      return r.message;
    };
    expect(check({})).toBe("'city' is required");
    expect(check({ city: 'Oslo', units: 'k' })).toBe(`'units' must be one of "c", "f" (got "k")`);
    expect(check({ city: 'Oslo', days: '3' })).toBe(`'days' must be integer (got "3")`);
    expect(check({ city: 'Oslo', days: 9 })).toBe("'days' must be <= 7");
    expect(check({ city: 'Oslo', filter: { tags: ['a', 2] } })).toBe("'filter.tags[1]' must be string (got 2)");
    expect(check({ city: 'Oslo', colour: 'red' })).toBe("'colour' is not an accepted argument (accepted: city, units, days, filter)");
    expect(check({ units: 'x', days: 0 })).toBe(`'city' is required; 'units' must be one of "c", "f" (got "x"); 'days' must be >= 1`);
    expect(check('{"city": ')).toMatch(/^the arguments are not valid JSON \(/);
    expect(check('[1]')).toBe('the arguments must be a JSON object, not an array');
    expect(check(7)).toBe('the arguments must be a JSON object, not number');
  });

  it('merges alternatives into one message and understands 2020-12 schemas', () => {
    const t: Tool = {
      name: 't',
      description: 't',
      parameters: {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        properties: { id: { type: ['string', 'integer'] }, pair: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'number' }] } },
      },
      execute: () => null,
    };
    const r1 = validateToolArguments(t, { id: true });
    expect(r1).toEqual({ ok: false, message: "'id' must be string or integer (got true)" });
    const r2 = validateToolArguments(t, { pair: ['a', 'b'] });
    expect(r2).toEqual({ ok: false, message: `'pair[1]' must be number (got "b")` });
    expect(validateToolArguments(t, { id: 3, pair: ['a', 1] }).ok).toBe(true);
  });

  it('accepts anything when the schema cannot be compiled, leaving the check to the tool', () => {
    const t: Tool = { name: 't', description: 't', parameters: { type: 'object', properties: { a: { $ref: '#/$defs/missing' } } }, execute: () => null };
    expect(validateToolArguments(t, { a: 1 })).toEqual({ ok: true, value: { a: 1 } });
  });
});

describe('TOOL_SPEC_SCHEMA', () => {
  const schema = { type: 'object', properties: { tools: { type: 'array', items: TOOL_SPEC_SCHEMA } } };
  const problem = (yaml: string): string => {
    try {
      checkManifest(parseYaml(yaml, 'agents/helper/agent.yaml'), schema);
    } catch (e) {
      expect(e).toBeInstanceOf(ManifestError);
      return (e as Error).message;
    }
    throw new Error('the YAML was accepted');
  };

  it('accepts every form', () => {
    const yaml = `tools:
  - builtin: calculator
  - { builtin: http_fetch, needs_approval: true }
  - module: tools.ts
    export: search
  - name: create_ticket
    description: Open a ticket
    http: { url: "https://tickets.example.com/api/{team}", method: PUT, headers: { X-Team: 7 }, timeout_seconds: 5, max_bytes: 2000 }
    parameters: { type: object, properties: { team: { type: string } } }
  - mcp: { command: node, args: [notes-server.mjs], env: { NOTES_FILE: notes.json, DEBUG: true }, cwd: servers }
    name: notes
    include: [add_note]
  - mcp: { url: "http://localhost:3000/mcp", headers: { Authorization: Bearer x } }
    needs_approval: true
`;
    expect(() => checkManifest(parseYaml(yaml, 'agent.yaml'), schema)).not.toThrow();
  });

  it('reports a wrong entry with its field and line', () => {
    expect(problem('tools:\n  - builtin: calculater\n')).toBe(
      'agents/helper/agent.yaml:2: tools[0].builtin: must be one of "http_fetch", "current_time", "calculator"',
    );
    expect(problem('tools:\n  - builtin: calculator\n  - module: tools.js\n    exports: search\n')).toBe(
      'agents/helper/agent.yaml:4: tools[1].exports: unknown field (allowed: module, export, needs_approval, trusted, sensitive)',
    );
    expect(problem('tools:\n  - name: t\n    description: d\n    parameters: { type: object }\n')).toBe(
      [
        'agents/helper/agent.yaml:2: tools[0].name: unknown field (allowed: builtin, module, http, mcp, sw4rm)',
        'agents/helper/agent.yaml:3: tools[0].description: unknown field (allowed: builtin, module, http, mcp, sw4rm)',
        'agents/helper/agent.yaml:4: tools[0].parameters: unknown field (allowed: builtin, module, http, mcp, sw4rm)',
      ].join('\n'),
    );
    expect(problem('tools:\n  - http: { url: "https://x.example" }\n    name: t\n')).toBe('agents/helper/agent.yaml:2: tools[0].description: is required');
    expect(problem('tools:\n  - http: { url: "ftp://x.example" }\n    name: t\n    description: d\n')).toContain('tools[0].http.url: must match pattern');
    expect(problem('tools:\n  - name: t\n    description: d\n    http: { url: "https://x.example" }\n    parameters: { type: array }\n')).toBe(
      'agents/helper/agent.yaml:5: tools[0].parameters.type: must be one of "object"',
    );
    expect(problem('tools:\n  - mcp:\n      url: "http://localhost/mcp"\n      command: node\n')).toBe(
      'agents/helper/agent.yaml:4: tools[0].mcp.command: unknown field (allowed: url, headers, timeout_seconds)',
    );
    expect(problem('tools:\n  - mcp: { args: [x] }\n')).toBe('agents/helper/agent.yaml:2: tools[0].mcp.command: is required');
    expect(problem('tools:\n  - mcp: { command: node }\n    name: "my server"\n')).toContain('agents/helper/agent.yaml:3: tools[0].name: must match pattern');
    expect(problem('tools:\n  - calculator\n')).toBe('agents/helper/agent.yaml:2: tools[0]: must be object');
  });

  it('is enforced by loadTools for lists built in code', async () => {
    const e = await loadError([{ mcp: { command: 'node' }, include: [] }], pkg());
    expect(e.code).toBe('TOOL_SPEC_INVALID');
    expect(e.message).toBe('tools[0].include: must NOT have fewer than 1 items');
    const e2 = await loadError([{ builtin: 'calculator' }, { builtin: 'shell' } as unknown as ToolSpec], pkg());
    expect(e2.message).toBe('tools[1].builtin: must be one of "http_fetch", "current_time", "calculator"');
  });
});
