/**
 * What the HTTP benchmarks share (bench/http.ts, bench/http-ab.ts): the project a measured
 * `swarm serve` runs (a one-step `noop` workflow and a signed webhook), the requests sent to it, and
 * how a process's CPU time is read and where it runs.
 *
 * @example
 *   await prepare(dir);
 *   const { url, child } = await serveFor(dir);
 *   const r = await timedLoad(postRequests(url), { connections: 32, amount: 10_000, warmup: 2000, serverPid: child.pid! });
 */
import autocannon from 'autocannon';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NOOP_AGENT_DIR, openSwarm, startServe, writeWorkflow, type BenchDir } from './harness.js';
import { resolveWebhookScheme } from '../src/triggers/webhook-scheme.js';
import { signWebhook } from '../src/triggers/webhook-sign.js';

export const WORKFLOW = 'bench-one';
export const HOOK_WORKFLOW = 'bench-hook';
/** The webhook's secret, given to the server as SWARM_SECRET_BENCH_HOOK (a Standard Webhooks key). */
export const HOOK_SECRET = `whsec_${Buffer.from('swarm-bench-webhook-key-32-bytes').toString('base64')}`;
const HOOK_SCHEME = resolveWebhookScheme('standard');
export const INPUT = { message: 'hello' };

/** The webhook workflow's manifest: deliveries to /webhooks/bench, Standard Webhooks signatures. */
function hookManifest(): string {
  return `name: ${HOOK_WORKFLOW}\nversion: 1.0.0\ntrigger:\n  type: webhook\n  path: bench\n  scheme: standard\n  secret: \${secrets.BENCH_HOOK}\nsteps:\n  - id: only\n    agent: noop\n`;
}

/** Write the webhook workflow's package into the project; returns its directory. */
function writeHook(dir: BenchDir): string {
  const hook = join(dir.root, 'workflows', HOOK_WORKFLOW);
  mkdirSync(hook, { recursive: true });
  writeFileSync(join(hook, 'workflow.yaml'), hookManifest());
  return hook;
}

/** A project with the noop agent, the one-step workflow and the webhook workflow registered (this build's library); the Swarm is closed again. */
export async function prepare(dir: BenchDir): Promise<void> {
  const swarm = await openSwarm(dir, { durability: 'full' });
  await swarm.registerAgent(NOOP_AGENT_DIR);
  await swarm.registerWorkflow(writeWorkflow(dir, WORKFLOW, 'noop', [{ id: 'only' }]));
  await swarm.registerWorkflow(writeHook(dir));
  await swarm.close();
}

/** The same project registered by another build's CLI (`<root>/bin/swarm.js`), whose store may be of another schema version. */
export function prepareWith(root: string, dir: BenchDir): void {
  const swarm = (args: string[]): void => {
    execFileSync(process.execPath, [join(root, 'bin', 'swarm.js'), ...args], { cwd: dir.root, env: { ...process.env, SWARM_HOME: dir.home, NO_COLOR: '1' }, stdio: 'ignore' });
  };
  swarm(['agent', 'register', NOOP_AGENT_DIR]);
  swarm(['workflow', 'register', writeWorkflow(dir, WORKFLOW, 'noop', [{ id: 'only' }])]);
  swarm(['workflow', 'register', writeHook(dir)]);
}

/** The measured `swarm serve` (full durability, the webhook's secret), of this build or of the one at `root`. */
export function serveFor(dir: BenchDir, options: { worker?: boolean; profile?: string; root?: string } = {}): Promise<{ url: string; child: ChildProcess }> {
  return startServe(dir, {
    args: options.worker ? [] : ['--no-worker'],
    nodeArgs: options.profile ? ['--cpu-prof', '--cpu-prof-dir', options.profile] : [],
    env: { SWARM_DURABILITY: 'full', SWARM_SECRET_BENCH_HOOK: HOOK_SECRET },
    ...(options.root ? { root: options.root } : {}),
  });
}

/** The bare `node:http` server around the library (bench/http-bare.ts), on the same project: the floor of `serveFor`. */
export function bareFor(dir: BenchDir): Promise<{ url: string; child: ChildProcess }> {
  return startServe(dir, { script: fileURLToPath(new URL('./http-bare.js', import.meta.url)), env: { SWARM_DURABILITY: 'full', SWARM_SECRET_BENCH_HOOK: HOOK_SECRET } });
}

export async function stopServe(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((done) => {
    child.once('exit', () => done());
    child.kill('SIGTERM');
  });
}

/** `POST /api/v1/workflows/bench-one/runs` with the input as JSON. */
export function postRequests(url: string): autocannon.Options {
  return { url: `${url}/api/v1/workflows/${WORKFLOW}/runs`, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: INPUT }) };
}

/** Signed deliveries to `POST /webhooks/bench`, signed per request by the load generator: a fresh delivery id (a new run) each time. */
/** `n` signed deliveries of the bench webhook's body (a fresh delivery id each), as a sender makes them. */
export function signedDeliveries(n: number): { headers: Record<string, string>; body: Uint8Array }[] {
  const text = JSON.stringify({ order: 42 });
  const body = Buffer.from(text, 'utf8');
  return Array.from({ length: n }, () => ({ headers: { 'content-type': 'application/json', ...signWebhook(HOOK_SCHEME, HOOK_SECRET, text) }, body }));
}

export function webhookRequests(url: string): autocannon.Options {
  const body = JSON.stringify({ order: 42 });
  const setupRequest = (req: autocannon.Request): autocannon.Request => ({ ...req, body, headers: { 'content-type': 'application/json', ...signWebhook(HOOK_SCHEME, HOOK_SECRET, body) } });
  return { url: `${url}/webhooks/bench`, requests: [{ method: 'POST', setupRequest }] };
}

export interface LoadResult {
  /** 2xx answers. */
  ok: number;
  failed: number;
  seconds: number;
  runs_per_s: number;
  /** CPU time of the server per 2xx answer, µs. */
  cpu_us: number;
  p50_ms: number;
  p99_ms: number;
}

/** `warmup` unmeasured requests, then `amount` measured ones, from `connections` keep-alive connections. */
export async function timedLoad(opts: autocannon.Options, o: { connections: number; amount: number; warmup: number; serverPid: number }): Promise<LoadResult> {
  if (o.warmup > 0) await autocannon({ ...opts, connections: o.connections, amount: o.warmup });
  // autocannon's own start and finish are only as fine as its 1 s tick: time the first request sent
  // and the last answer received here instead.
  let last = 0;
  const timed = { ...opts, requests: (opts.requests ?? [{}]).map((q) => ({ ...q, onResponse: () => void (last = performance.now()) })) };
  const cpu0 = cpuOf(o.serverPid);
  const first = performance.now();
  const r = await autocannon({ ...timed, connections: o.connections, amount: o.amount });
  const ok = r['2xx'];
  const seconds = (last - first) / 1000;
  return { ok, failed: r.non2xx + r.errors, seconds, runs_per_s: ok / seconds, cpu_us: (cpuOf(o.serverPid) - cpu0) / ok, p50_ms: r.latency.p50, p99_ms: r.latency.p99 };
}

/**
 * Pin a process (all its threads) to one CPU, so that the run creator and the load generator do not
 * take turns on the same core: each measurement then has one core for creating runs.
 */
export function pinTo(pid: number, cpu: number): void {
  execFileSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** User + system CPU time of a process so far, µs (Linux `/proc/<pid>/stat`, in clock ticks of 10 ms). */
export function cpuOf(pid: number): number {
  if (pid === process.pid) {
    const u = process.cpuUsage();
    return u.user + u.system;
  }
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return Number.NaN;
  }
}
