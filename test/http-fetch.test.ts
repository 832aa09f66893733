import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Swarm } from '../src/swarm.js';
import { EXAMPLES, openProject, removeProject, tempProject, writeWorkflow } from './helpers/project.js';

/** A real HTTP server on loopback: JSON echo, a big body, a slow endpoint, and a flaky one. */
let server: Server;
let base: string;
let flakyCalls = 0;
const received: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.url === '/json') {
        res.writeHead(201, { 'content-type': 'application/json', 'x-test': 'yes' });
        res.end(JSON.stringify({ got: body ? (JSON.parse(body) as unknown) : null, method: req.method }));
      } else if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('x'.repeat(5000));
      } else if (req.url === '/slow') {
        setTimeout(() => res.end('late'), 3000).unref();
      } else if (req.url === '/flaky') {
        flakyCalls++;
        if (flakyCalls < 3) req.socket.destroy();
        else res.end('finally');
      } else {
        res.writeHead(404);
        res.end('nope');
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

async function fetchRun(swarm: Swarm, dir: string, name: string, inputs: string, extra = ''): Promise<Awaited<ReturnType<Swarm['runToCompletion']>>> {
  await swarm.registerWorkflow(writeWorkflow(dir, name, `name: ${name}\nversion: 1.0.0\nsteps:\n  - id: f\n    agent: http-fetch@1.0.0\n    inputs: ${inputs}\n${extra}`));
  return swarm.runToCompletion(await swarm.startRun(name, { base }));
}

describe('http-fetch built-in', () => {
  let dir: string;
  let swarm: Swarm;
  beforeAll(async () => {
    // The test server is on loopback, which http-fetch reaches only when it is allow-listed.
    dir = tempProject('name: http\nnetwork: { allow: ["127.0.0.1"] }\n');
    swarm = await openProject(dir, { env: { SWARM_HOME: join(dir, '.swarm'), SWARM_SECRET_API_TOKEN: 's3cret' } });
    await swarm.registerAgent(join(EXAMPLES, 'agents', 'http-fetch'));
  });
  afterAll(async () => {
    await swarm.close();
    removeProject(dir);
  });

  it('sends method, headers (with a secret) and a JSON body; returns status, headers, text and parsed JSON', async () => {
    const r = await fetchRun(swarm, dir, 'post', `{ url: "\${trigger.base}/json", method: post, headers: { authorization: "Bearer \${secrets.API_TOKEN}" }, body: { a: 1 } }`);
    expect(r.run.status).toBe('completed');
    const out = r.steps[0]?.outputs as { status: number; headers: Record<string, string>; body: string; json: unknown };
    expect(out.status).toBe(201);
    expect(out.headers['x-test']).toBe('yes');
    expect(out.json).toEqual({ got: { a: 1 }, method: 'POST' });
    expect(JSON.parse(out.body)).toEqual(out.json);
    const req = received.find((q) => q.url === '/json');
    expect(req?.headers.authorization).toBe('Bearer s3cret');
    expect(req?.headers['content-type']).toBe('application/json');
  });

  it('returns non-2xx statuses instead of failing', async () => {
    const r = await fetchRun(swarm, dir, 'missing', `{ url: "\${trigger.base}/nowhere" }`);
    expect(r.run.status).toBe('completed');
    expect(r.steps[0]?.outputs).toMatchObject({ status: 404, body: 'nope', json: null });
  });

  it('fails on a response larger than max_bytes, and on a timeout', async () => {
    const big = await fetchRun(swarm, dir, 'big', `{ url: "\${trigger.base}/big", max_bytes: 1000 }`);
    expect(big.run.status).toBe('failed');
    expect(big.steps[0]?.error).toMatch(/exceeds max_bytes=1000/);
    const slow = await fetchRun(swarm, dir, 'slow', `{ url: "\${trigger.base}/slow", timeout_ms: 200 }`);
    expect(slow.run.status).toBe('failed');
    expect(slow.steps[0]?.error).toMatch(/timed out after 200 ms/);
  });

  it('retries network errors under the step retry policy', async () => {
    const r = await fetchRun(swarm, dir, 'flaky', `{ url: "\${trigger.base}/flaky" }`, '    retry: { max_attempts: 3, backoff_ms: 10 }\n');
    expect(r.run.status).toBe('completed');
    expect(r.steps[0]?.attempt).toBe(3);
    expect(flakyCalls).toBe(3);
    expect(r.steps[0]?.outputs).toMatchObject({ body: 'finally' });
  });

  it('rejects URLs that are not http(s) without retrying', async () => {
    const r = await fetchRun(swarm, dir, 'file', `{ url: "file:///etc/passwd" }`, '    retry: { max_attempts: 3, backoff_ms: 10 }\n');
    expect(r.run.status).toBe('failed');
    expect(r.steps[0]?.attempt).toBe(1);
    expect(r.steps[0]?.error).toMatch(/only http and https/);
  });
});
