/**
 * examples/sw4rm/, each run for real as its README says: a real `swarm sw4rm serve` (child process,
 * ports 0, the ports read from what it prints), the example scripts as child processes pointed at it
 * by SW4RM_ROUTER_ADDR / SW4RM_REGISTRY_ADDR, real gRPC. Needs `npm run build` (the examples import
 * `swarm-runtime/sw4rm`, i.e. dist/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../src/sw4rm/client/registry-client.js';
import { cleanupSandboxes, makeSandbox, REPO_ROOT, type CliResult } from './helpers/cli.js';

const EXAMPLES = join(REPO_ROOT, 'examples', 'sw4rm');

interface Proc {
  child: ChildProcess;
  out(): string;
  /** Resolves with the first match of `re` in stdout; rejects if the process exits first. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exit: Promise<CliResult>;
}

function startExample(file: string, args: string[], env: Record<string, string>): Proc {
  const began = Date.now();
  const child = spawn(process.execPath, [join(EXAMPLES, file), ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return watch(child, began);
}

function watch(child: ChildProcess, began: number, done?: Promise<CliResult>): Proc {
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const l of listeners) l();
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exit =
    done ??
    new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - began })));
  // Liveness bound: an example that hangs is killed and fails its test.
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exit.then(() => clearTimeout(timer));
  return {
    child,
    out: () => stdout,
    exit,
    waitFor: (re, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const m = stdout.match(re);
          if (m) {
            listeners.delete(check);
            clearTimeout(t);
            resolve(m);
          }
        };
        const t = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no ${String(re)} within ${timeoutMs} ms; stdout:\n${stdout}\nstderr:\n${stderr}`));
        }, timeoutMs);
        listeners.add(check);
        void exit.then((r) => {
          if (!stdout.match(re)) {
            clearTimeout(t);
            reject(new Error(`exited (${r.code ?? r.signal}) before ${String(re)}; stdout:\n${r.stdout}\nstderr:\n${r.stderr}`));
          }
        });
        check();
      }),
  };
}

async function stop(p: Proc): Promise<CliResult> {
  p.child.kill('SIGTERM');
  return p.exit;
}

describe('examples/sw4rm against swarm sw4rm serve', () => {
  let serve: Proc;
  let env: Record<string, string>;
  const dirs: string[] = [];

  beforeAll(async () => {
    const sandbox = makeSandbox();
    const started = sandbox.start(['sw4rm', 'serve', '--router', '0', '--registry', '0', '--scheduler', '0'], { timeoutMs: 120_000 });
    serve = watch(started.child, Date.now(), started.done);
    const m = await serve.waitFor(/router [\d.]+:(\d+), registry [\d.]+:(\d+), scheduler [\d.]+:(\d+)/);
    env = { SW4RM_ROUTER_ADDR: `127.0.0.1:${m[1]}`, SW4RM_REGISTRY_ADDR: `127.0.0.1:${m[2]}`, SW4RM_SCHEDULER_ADDR: `127.0.0.1:${m[3]}` };
  });

  afterAll(async () => {
    if (serve) {
      const r = await stop(serve);
      expect(r.code, r.stderr).toBe(0);
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    cleanupSandboxes();
  });

  it('the echo agent answers the test client, and deregisters on SIGTERM', async () => {
    const echo = startExample('echo-agent.mjs', ['--agent-id', 'echo-ex'], env);
    await echo.waitFor(/echo-ex ready/);
    const client = startExample('test-client.mjs', ['--target-agent', 'echo-ex', '--test', 'data'], env);
    const r = await client.exit;
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    // RECEIVED from the router, then the agent's RECEIVED, READ and FULFILLED.
    expect(r.stdout).toMatch(/PASS data: ACKs RECEIVED → RECEIVED → READ → FULFILLED, reply "\{\\"hello\\":\\"echo-ex\\"/);
    await echo.waitFor(/echoed [0-9a-f-]{36} from test-client-\d+/);
    const e = await stop(echo);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toContain('echo-ex stopped and deregistered');
  });

  it('the advanced agent handles data, control and unknown types, and keeps its state across a restart', async () => {
    const data = mkdtempSync(join(tmpdir(), 'sw4rm-advanced-'));
    dirs.push(data);
    const args = ['--agent-id', 'advanced-ex', '--data-dir', data];
    const first = startExample('advanced-agent.mjs', args, env);
    await first.waitFor(/advanced-ex ready/);
    expect(first.out()).toContain('0 message(s) received before');
    const client = await startExample('test-client.mjs', ['--target-agent', 'advanced-ex', '--test', 'all'], env).exit;
    expect(client.code, `${client.stdout}\n${client.stderr}`).toBe(0);
    for (const t of ['data', 'control', 'bind', 'unknown']) expect(client.stdout).toMatch(new RegExp(`PASS ${t}: ACKs RECEIVED( → \\w+)* → FULFILLED`));
    await first.waitFor(/bound to demo-repo\/main/);
    expect((await stop(first)).code).toBe(0);
    const state = JSON.parse(readFileSync(join(data, 'agent.json'), 'utf8')) as { entries: { activity: { records: unknown[] }; worktree: unknown } };
    expect(state.entries.activity.records.length).toBeGreaterThanOrEqual(4);
    expect(existsSync(join(data, 'agent.json.tmp'))).toBe(false);

    const second = startExample('advanced-agent.mjs', args, env);
    await second.waitFor(/advanced-ex ready/);
    expect(second.out()).toMatch(/4 message\(s\) received before, \d+ in the activity buffer, worktree demo-repo\/main/);
    expect((await stop(second)).code).toBe(0);
  });

  it("the seed's ACK demo prints RECEIVED then FULFILLED and stops its agent", async () => {
    const r = await startExample('ack-demo.mjs', [], env).exit;
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/RECEIVED +from/);
    expect(r.stdout).toMatch(/FULFILLED from ack-agent-\d+ after [\d.]+ ms/);
    expect(r.stdout).toContain('ACK lifecycle: RECEIVED → RECEIVED → READ → FULFILLED');
    expect(r.stdout).toContain('ACK agent stopped; demo complete');
  });
});

describe('swarm serve --sw4rm', () => {
  afterAll(() => cleanupSandboxes());

  it('serves the SW4RM services beside the HTTP API and stops them on SIGTERM; a bad port is refused', async () => {
    const sandbox = makeSandbox();
    const bad = await sandbox.run(['serve', '--port', '0', '--sw4rm', '--sw4rm-router', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--sw4rm-router must be a port number from 0 to 65535, not 'x'");
    const started = sandbox.start(['serve', '--port', '0', '--no-worker', '--sw4rm', '--sw4rm-router', '0', '--sw4rm-registry', '0', '--sw4rm-scheduler', '0'], { timeoutMs: 120_000 });
    const serve = watch(started.child, Date.now(), started.done);
    await serve.waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/);
    const m = await serve.waitFor(/SW4RM router 127\.0\.0\.1:(\d+), registry 127\.0\.0\.1:(\d+), scheduler 127\.0\.0\.1:(\d+)/);
    const registry = new RegistryClient({ address: `127.0.0.1:${m[2]}` });
    await registry.register({ agent_id: 'in-serve', name: 'In serve' });
    expect(await registry.heartbeat('in-serve')).toBe(true);
    registry.close();
    const r = await stop(serve);
    expect(r.code, r.stderr).toBe(0);
  });
});
