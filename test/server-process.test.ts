/**
 * `swarm serve` as a real process over real HTTP: start-up line, runs created with fetch and run by
 * the in-process worker, Idempotency-Key repeats, a port in use (exit 2), and SIGTERM draining to
 * exit 0 with nothing lost (a run cut off mid-step is released and finishes on resume).
 *
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupSandboxes, examplesStore, makeSandbox, show, until, type CliResult, type Sandbox } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

type Json = Record<string, unknown>;

/** A sandbox with the examples and a `slow` workflow whose node agent sleeps for `ms` before answering. */
async function project(): Promise<Sandbox> {
  const s = makeSandbox({ env: { SWARM_SANDBOX: 'none' } });
  s.copyStore(await examplesStore());
  s.write(
    'agents/sleeper/agent.yaml',
    'name: sleeper\nversion: 1.0.0\nruntime:\n  type: node\n  entry: main.js\n  timeout_seconds: 60\ninputs:\n  - name: ms\n    type: integer\noutputs:\n  - name: slept\n    type: integer\n',
  );
  s.write('agents/sleeper/package.json', '{"type":"commonjs"}');
  s.write(
    'agents/sleeper/main.js',
    "const fs = require('node:fs');\nconst [i, o] = process.argv.slice(2);\nconst { ms } = JSON.parse(fs.readFileSync(i, 'utf8'));\nsetTimeout(() => fs.writeFileSync(o, JSON.stringify({ slept: ms })), ms);\n",
  );
  s.write('workflows/slow/workflow.yaml', 'name: slow\nversion: 1.0.0\nsteps:\n  - id: nap\n    agent: sleeper\n    inputs:\n      ms: ${trigger.ms}\n');
  for (const args of [['agent', 'register', 'agents/sleeper'], ['workflow', 'register', 'workflows/slow']]) {
    const r = await s.run(args);
    expect(r.code, show(r)).toBe(0);
  }
  return s;
}

interface Served {
  url: string;
  child: ChildProcess;
  done: Promise<CliResult>;
  output: () => string;
}

async function serve(s: Sandbox, args: string[] = []): Promise<Served> {
  const { child, done } = s.start(['serve', '--port', '0', ...args], { timeoutMs: 90_000 });
  let out = '';
  child.stdout?.on('data', (d: Buffer | string) => (out += String(d)));
  child.stderr?.on('data', (d: Buffer | string) => (out += String(d)));
  const url = await until('the start-up line', async () => /listening on (http:\/\/\S+)/.exec(out)?.[1], 20_000, 50);
  return { url, child, done, output: () => out };
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Json }> {
  const res = await fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
  return { status: res.status, json: (await res.json()) as Json };
}

describe('swarm serve (a real process)', () => {
  it('prints one start-up line with the URL, runs what is created over HTTP, answers an Idempotency-Key repeat with the same run', async () => {
    const s = await project();
    const srv = await serve(s);
    try {
      expect(srv.output()).toMatch(/^swarm serve: listening on http:\/\/127\.0\.0\.1:\d+ /m);
      expect(((await (await fetch(`${srv.url}/readyz`)).json()) as Json).status).toBe('ready');
      // Ten runs at once, then read each back until it is finished: the server's own worker runs them.
      const created = await Promise.all(Array.from({ length: 10 }, (_, i) => post(`${srv.url}/api/v1/workflows/echo-chain/runs`, { input: { message: `m${i}` } })));
      expect(created.map((r) => r.status)).toEqual(Array(10).fill(201));
      for (const r of created) {
        const id = r.json.run_id as string;
        const run = await until(`run ${id}`, async () => {
          const j = (await (await fetch(`${srv.url}/api/v1/runs/${id}`)).json()) as Json;
          return j.status === 'completed' ? j : undefined;
        });
        expect((run.steps as Json[]).map((x) => x.status)).toEqual(['completed', 'completed']);
      }
      const waited = await post(`${srv.url}/api/v1/workflows/echo-chain/runs?wait=30s`, { input: { message: 'once' } }, { 'Idempotency-Key': 'order-1' });
      expect(waited.status).toBe(201);
      expect(waited.json.status).toBe('completed');
      const again = await post(`${srv.url}/api/v1/workflows/echo-chain/runs`, { input: { message: 'once' } }, { 'Idempotency-Key': 'order-1' });
      expect(again.status).toBe(200);
      expect(again.json.run_id).toBe(waited.json.run_id);
      expect(s.query<{ n: number }>(`SELECT COUNT(*) AS n FROM workflow_runs WHERE idempotency_key = 'order-1'`)[0]?.n).toBe(1);
      // The same document as the CLI's.
      const cli = await s.json<Json>(['runs', 'show', (waited.json.run_id as string).slice(-12), '--json']);
      expect(cli).toEqual(waited.json);
    } finally {
      srv.child.kill('SIGTERM');
      await srv.done;
    }
  });

  it('a non-loopback --host with no API token: refused with one line, exit 2; --insecure listens open; once a token exists it starts and refuses requests without it', async () => {
    const s = await project();
    const r = await s.run(['serve', '--host', '0.0.0.0', '--port', '0', '--no-worker']);
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(/^swarm: --host 0\.0\.0\.0 is not a loopback address, and no API token exists: .*'swarm tokens create --scope admin'.*or pass --insecure/);
    const open = await serve(s, ['--host', '0.0.0.0', '--insecure', '--no-worker']);
    try {
      expect(open.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
      expect(open.output()).toContain('API open: no tokens yet');
      expect(open.output()).toContain('warning: --insecure');
      const res = await fetch(`http://127.0.0.1:${new URL(open.url).port}/api/v1/runs`);
      expect(res.status).toBe(200);
    } finally {
      open.child.kill('SIGTERM');
      await open.done;
    }

    // A token, shown once on standard output; only its hash in the database.
    const created = await s.run(['tokens', 'create', '--scope', 'run', '--name', 'ci', '--expires', '30d']);
    expect(created.code, show(created)).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^swarm_[0-9a-f]{12}_[0-9a-f]{64}$/);
    expect(created.stderr).toContain('This is the only time the token is shown');
    expect(JSON.stringify(s.query('SELECT * FROM api_tokens'))).not.toContain(token.split('_')[2]);

    const srv = await serve(s, ['--host', '0.0.0.0', '--no-worker']);
    try {
      expect(srv.output()).toContain('API tokens required');
      const base = `http://127.0.0.1:${new URL(srv.url).port}`;
      const anonymous = await fetch(`${base}/api/v1/workflows/echo-chain/runs`, { method: 'POST', body: '{"input":{"message":"x"}}', headers: { 'content-type': 'application/json' } });
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toBe('Bearer realm="swarm"');
      expect(anonymous.headers.get('content-type')).toBe('application/problem+json');
      expect(((await anonymous.json()) as Json).code).toBe('AUTH_REQUIRED');
      const withToken = await post(`${base}/api/v1/workflows/echo-chain/runs`, { input: { message: 'x' } }, { authorization: `Bearer ${token}` });
      expect(withToken.status).toBe(201);
      // runs:write does not read runs.
      expect((await fetch(`${base}/api/v1/runs`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      // The use is recorded in the background.
      const listed = await until('last_used_at', async () => {
        const list = await s.json<Json[]>(['tokens', 'list', '--json']);
        return list[0]?.last_used_at ? list : undefined;
      });
      expect(listed[0]).toMatchObject({ name: 'ci', scopes: ['runs:write'], status: 'active' });
      expect(JSON.stringify(listed)).not.toContain(token.split('_')[2]);
      // Revoked from the CLI (another process): the server refuses it within its 5 s cache.
      const id = token.split('_')[1] ?? '';
      expect((await s.run(['tokens', 'revoke', id])).code).toBe(0);
      await until('the revocation', async () => ((await post(`${base}/api/v1/workflows/echo-chain/runs`, { input: { message: 'y' } }, { authorization: `Bearer ${token}` })).status === 401 ? true : undefined), 20_000, 250);
      // Every token revoked: a server started off loopback still requires one (nothing is open).
      const again = await fetch(`${base}/api/v1/runs`);
      expect(again.status).toBe(401);
    } finally {
      srv.child.kill('SIGTERM');
      await srv.done;
    }
  });

  it('--schedule-lease outside 0.3 to 86400 seconds: one message naming that range, whatever is wrong with it', async () => {
    const s = makeSandbox({ env: { SWARM_SANDBOX: 'none' } });
    for (const value of ['0', '0.2', 'abc', '', '86401', '-1']) {
      const r = await s.run(['serve', '--port', '0', '--no-worker', '--schedule-lease', value]);
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr.trim(), value).toBe(`swarm: --schedule-lease must be a number of seconds from 0.3 to 86400, not '${value}'`);
    }
  });

  it('a port in use: one line, exit 2', async () => {
    const s = await project();
    const srv = await serve(s, ['--no-worker']);
    try {
      const port = new URL(srv.url).port;
      const second = await s.run(['serve', '--port', port, '--no-worker']);
      expect(second.code, show(second)).toBe(2);
      expect(second.stderr.trim().split('\n')).toHaveLength(1);
      expect(second.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the port is in use`);
      expect(srv.output()).toContain('no worker');
    } finally {
      srv.child.kill('SIGTERM');
      await srv.done;
    }
  });

  it('SIGTERM drains: waiting requests are answered, in-flight steps are released, exit 0, and every run finishes on resume', async () => {
    const s = await project();
    const srv = await serve(s, ['--grace', '0']);
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await post(`${srv.url}/api/v1/workflows/slow/runs`, { input: { ms: 3000 } });
      expect(r.status).toBe(201);
      created.push(r.json.run_id as string);
    }
    // A request waiting for a run when the signal comes gets its answer (202: the run goes on).
    const waiting = post(`${srv.url}/api/v1/workflows/slow/runs?wait=60s`, { input: { ms: 3000 } });
    await until('steps running', async () => (s.query<{ n: number }>(`SELECT COUNT(*) AS n FROM step_executions WHERE status = 'running'`)[0]?.n ?? 0) >= 3 || undefined);
    // The signal comes once the server has the waiting request (its run exists), not while the
    // request may still be on its way: one not yet received is refused as the server stops accepting.
    await until('the waiting request received', async () => (s.query<{ n: number }>(`SELECT COUNT(*) AS n FROM workflow_runs WHERE workflow_name = 'slow'`)[0]?.n ?? 0) >= 6 || undefined);
    srv.child.kill('SIGTERM');
    const answered = await waiting;
    expect(answered.status).toBe(202);
    created.push(answered.json.run_id as string);
    const result = await srv.done;
    expect(result.code, show(result)).toBe(0);
    expect(result.signal).toBeNull();
    expect(srv.output()).toContain('SIGTERM: draining');
    // Nothing lost: every run is there; no step is left running under the dead server's lease.
    expect(s.query<{ id: string }>('SELECT id FROM workflow_runs WHERE workflow_name = ?', 'slow').map((r) => r.id).sort()).toEqual([...created].sort());
    expect(s.query<{ n: number }>(`SELECT COUNT(*) AS n FROM step_executions WHERE status = 'running'`)[0]?.n).toBe(0);
    const resumed = await s.run(['runs', 'resume'], { timeoutMs: 60_000 });
    expect(resumed.code, show(resumed)).toBe(0);
    const statuses = s.query<{ status: string }>('SELECT status FROM workflow_runs WHERE workflow_name = ?', 'slow').map((r) => r.status);
    expect(statuses).toEqual(Array(created.length).fill('completed'));
    // Each run's step completed once (a released attempt is not a failure).
    const completedEvents = s.query<{ n: number }>(`SELECT COUNT(*) AS n FROM events WHERE type = 'STEP_COMPLETED' AND run_id IN (SELECT id FROM workflow_runs WHERE workflow_name = 'slow')`)[0]?.n;
    expect(completedEvents).toBe(created.length);
  });

  it('SIGTERM is not held open by a client that keeps reconnecting an event stream on a kept-alive connection (an open dashboard)', async () => {
    const s = makeSandbox();
    s.copyStore(await examplesStore());
    const srv = await serve(s, ['--no-worker']);
    // One kept-alive socket: the stream, ended by the drain, is asked for again at once, as an
    // EventSource does after its retry delay, on the same connection.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let requests = 0;
    let stop = false;
    const reconnecting = (async () => {
      while (!stop) {
        await new Promise<void>((done) => {
          const req = http.get(`${srv.url}/api/v1/runs/stream`, { agent, headers: { accept: 'text/event-stream' } }, (res) => {
            res.resume();
            res.on('close', () => done());
          });
          req.on('error', () => done());
        });
        requests++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      await until('the stream open', async () => Object.keys(agent.sockets).length > 0 || undefined);
      await new Promise((r) => setTimeout(r, 200));
      const before = requests;
      const t0 = Date.now();
      srv.child.kill('SIGTERM');
      const result = await srv.done;
      expect(result.code, show(result)).toBe(0);
      // Well within the grace the worker would have had (10 s by default), and after more requests came.
      expect(Date.now() - t0).toBeLessThan(8000);
      expect(requests).toBeGreaterThan(before);
    } finally {
      stop = true;
      srv.child.kill('SIGKILL');
      await reconnecting;
      agent.destroy();
    }
  });
});
