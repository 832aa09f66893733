/**
 * What a `swarm` start loads: the CLI tests start it hundreds of times, and module loading is most
 * of each start's CPU time. Subsystems a command does not use load at first use (the consensus
 * driver, the guardrails, the agent loop, fork, the live view, …); this checks that a plain store
 * command and `--version` still leave them out, by tracing the modules the real bin/swarm.js loads.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupSandboxes, makeSandbox, REPO_ROOT } from './helpers/cli.js';

afterAll(cleanupSandboxes);

// A loader hook that names each module as it loads (on stderr), registered from a data: URL.
const HOOKS = `export async function load(url, context, next) { const r = await next(url, context); process.stderr.write('LOADED ' + url + '\\n'); return r; }`;
const REGISTER = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`;

function loadedBy(args: string[]): string[] {
  const sandbox = makeSandbox();
  const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`, join(REPO_ROOT, 'bin', 'swarm.js'), ...args], { cwd: sandbox.root, env: sandbox.env, encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return r.stderr
    .split('\n')
    .filter((l) => l.startsWith('LOADED '))
    .map((l) => l.slice('LOADED '.length).replace(`file://${REPO_ROOT}/`, ''));
}

/** Loaded at first use only: none of these is needed to list runs or print the version. */
const LAZY = [
  'dist/src/consensus/driver/driver.js',
  'dist/src/consensus/facade.js',
  'dist/src/consensus/knowledge/index.js',
  'dist/src/guardrails/index.js',
  'dist/src/agents/loop.js',
  'dist/src/agents/chat.js',
  'dist/src/branching/fork.js',
  'dist/src/secrets/rotate.js',
  'dist/src/triggers/webhook-delivery.js',
  'dist/src/executors/http/resolver.js',
  'dist/src/observability/metrics-server.js',
  '/log-update/',
  '/semver/index.js',
];

describe('swarm start-up', () => {
  it('`swarm runs list` opens the store without loading the subsystems it does not use', () => {
    const loaded = loadedBy(['runs', 'list']);
    expect(loaded).toContain('dist/src/store/sqlite/sqlite-store.js'); // the trace works
    for (const m of LAZY) expect(loaded.filter((u) => u.includes(m)), m).toEqual([]);
  });

  it('`swarm --version` loads neither the store nor the manifest parsers', () => {
    const loaded = loadedBy(['--version']);
    expect(loaded).toContain('dist/src/cli/main.js');
    for (const m of ['dist/src/swarm.js', 'dist/src/store/sqlite/sqlite-store.js', 'dist/src/scaffold.js', 'dist/src/config/config.js', ...LAZY]) {
      expect(loaded.filter((u) => u.includes(m)), m).toEqual([]);
    }
  });
});

/**
 * src/cli/fast-start.ts: V8's optimising compiler is off for a start-up's first second and on again
 * after it. A hot function (V8's own `%GetOptimizationStatus`, bit 16: optimised) is not optimised
 * during that second, and is once it has passed; with SWARM_NODE_OPT set, and in a server (`serve`,
 * `worker`, `dev`, `executor serve`), it is from the start.
 */
describe('fast start', () => {
  const SCRIPT = `await import(${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'dist/src/cli/fast-start.js')).href)});
function hot(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }
const optimised = () => (%GetOptimizationStatus(hot) & 16) !== 0;
for (let i = 0; i < 5000; i++) hot(1000);
const before = optimised();
await new Promise((r) => setTimeout(r, 1100));
for (let i = 0; i < 100000 && !optimised(); i++) hot(1000);
console.log(JSON.stringify({ before, after: optimised() }));
`;
  // `args`: the command line the script sees, as bin/swarm.js would (`worker`, `executor serve`).
  const statuses = (env: NodeJS.ProcessEnv, args: string[] = []): { before: boolean; after: boolean } => {
    const sandbox = makeSandbox();
    const file = sandbox.write('hot.mjs', SCRIPT);
    const r = spawnSync(process.execPath, ['--allow-natives-syntax', file, ...args], { cwd: sandbox.root, env: { ...sandbox.env, ...env }, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as { before: boolean; after: boolean };
  };

  it('keeps hot functions unoptimised for the first second, then optimises them', () => {
    expect(statuses({})).toEqual({ before: false, after: true });
  });

  it('optimises from the start with SWARM_NODE_OPT set, and for the servers', () => {
    expect(statuses({ SWARM_NODE_OPT: '1' })).toEqual({ before: true, after: true });
    expect(statuses({}, ['worker', '--concurrency', '2'])).toEqual({ before: true, after: true });
    expect(statuses({}, ['executor', 'serve'])).toEqual({ before: true, after: true });
    expect(statuses({}, ['executor', 'list'])).toEqual({ before: false, after: true });
  });
});
