/**
 * net_cap end to end on SQLite: real bubblewrap sandboxes (network unshared), the worker's policy
 * proxy, the in-sandbox bridge, and servers on the host's loopback. A node agent tries every way
 * out (absolute-form HTTP and CONNECT through the proxy, raw TCP that ignores proxy settings) and
 * writes what happened into its output; the run's log must hold one NET_CONNECTION per proxied
 * connection, with bytes.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeBubblewrap } from '../src/sandbox/sandbox.js';
import type { Swarm } from '../src/swarm.js';
import { openProject, removeProject, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';
import { PROBE_AGENT, type ProbeReport } from './helpers/netcap-probe.js';

const bwrap = probeBubblewrap();
const servers: Array<Server | TcpServer> = [];
let dir: string;
let swarm: Swarm;
let portA: number;
let portB: number;
let portC: number;
/** A non-loopback address of this machine (a server on 0.0.0.0 answers there), when there is one. */
const external = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

function listen<T extends Server | TcpServer>(s: T, host: string): Promise<number> {
  servers.push(s);
  return new Promise((resolve) => s.listen(0, host, () => resolve((s.address() as { port: number }).port)));
}

beforeAll(async () => {
  portA = await listen(createServer((req, res) => res.end(`A says hello to ${req.method} ${req.url}`)), '127.0.0.1');
  portB = await listen(createServer((_req, res) => res.end('B should never answer')), '127.0.0.1');
  portC = await listen(createTcpServer((c) => c.end('C\n')), '0.0.0.0');
  dir = tempProject('name: netcap\nsandbox: auto\n');
  swarm = await openProject(dir);
}, 30_000);

afterAll(async () => {
  await swarm?.close();
  for (const s of servers) s.close();
  if (dir) removeProject(dir);
});

async function probeAgent(name: string, extra: string): Promise<string> {
  writeAgent(dir, name, `name: ${name}\nversion: 1.0.0\nruntime:\n  type: node\n  entry: probe.js\n${extra}`, { 'probe.js': PROBE_AGENT });
  await swarm.registerAgent(join(dir, 'agents', name));
  await swarm.registerWorkflow(writeWorkflow(dir, `wf-${name}`, `name: wf-${name}\nversion: 1.0.0\nsteps:\n  - id: probe\n    agent: ${name}@1.0.0\n    inputs: { targets: "\${trigger.targets}" }\n`));
  return `wf-${name}`;
}

async function runProbe(wf: string): Promise<{ report: ProbeReport; events: Array<{ type: string; data: Record<string, unknown> }>; runId: string }> {
  const targets = { a: portA, b: portB, c: portC, external: external ?? null };
  const runId = await swarm.startRun(wf, { targets });
  const r = await swarm.runToCompletion(runId);
  const events = await swarm.events(runId);
  if (r.run.status !== 'completed') throw new Error(`run ${r.run.status}: ${JSON.stringify(events.slice(-2))}`);
  return { report: r.steps[0]?.outputs as ProbeReport, events, runId };
}

describe.skipIf(!bwrap.ok)('a sandboxed process agent and net_cap', () => {
  it('with net:127.0.0.1:<A>: A is reached through the proxy (HTTP and CONNECT), B is refused 403, raw sockets reach nothing; every proxied connection is an event with bytes', async () => {
    const wf = await probeAgent('allowed', `capabilities: ['net:127.0.0.1:${portA}']\n`);
    const { report, events } = await runProbe(wf);
    expect(report.proxy_env).toBe('http://127.0.0.1:3128');
    expect(report.http_a).toEqual({ status: 200, body: 'A says hello to GET /via-http' });
    expect(report.connect_a).toEqual({ status: 200, body: 'A says hello to GET /via-connect' });
    expect(report.http_b).toMatchObject({ status: 403, body: expect.stringContaining(`127.0.0.1:${portB} is not among the agent's net capabilities (127.0.0.1:${portA})`) as unknown });
    expect(report.connect_b).toMatchObject({ status: 403 });
    // Raw sockets ignore the proxy: the sandbox's own loopback has nothing on A, B or C, and no route leads out.
    expect(report.raw_a).toBe('ECONNREFUSED');
    expect(report.raw_b).toBe('ECONNREFUSED');
    expect(report.raw_c_loopback).toBe('ECONNREFUSED');
    if (external) expect(report.raw_c_external).toBe('ENETUNREACH');
    expect(report.curl_a).toBe(`A says hello to GET /via-curl`);

    const net = events.filter((e) => e.type === 'NET_CONNECTION').map((e) => e.data);
    expect(net).toHaveLength(5);
    const allowed = net.filter((d) => d.allowed === true);
    const refused = net.filter((d) => d.allowed === false);
    expect(allowed).toHaveLength(3);
    for (const d of allowed) {
      expect(d).toMatchObject({ destination: '127.0.0.1', port: portA, address: '127.0.0.1', attempt: 1 });
      expect(d.bytes_out).toBeGreaterThan(30);
      expect(d.bytes_in).toBeGreaterThan(100);
    }
    expect(allowed.map((d) => d.method).sort()).toEqual(['CONNECT', 'GET', 'GET']);
    expect(refused).toHaveLength(2);
    for (const d of refused) expect(d).toMatchObject({ destination: '127.0.0.1', port: portB, bytes_out: 0, bytes_in: 0, reason: expect.stringContaining('is not among') as unknown });
    const done = events.find((e) => e.type === 'STEP_COMPLETED');
    expect(done?.data).toMatchObject({ sandbox: 'bubblewrap', network: 'proxy', net_cap: expect.stringMatching(new RegExp(`^net_cap v1 run \\S+/probe#1 → 127\\.0\\.0\\.1:${portA}; expires .*; token sha256:[0-9a-f]{8}$`)) as unknown });
  }, 40_000);

  it('without capabilities: no proxy, no bridge, no network at all', async () => {
    const wf = await probeAgent('closed', '');
    const { report, events } = await runProbe(wf);
    expect(report.proxy_env).toBeNull();
    expect(report.http_a).toEqual({ error: 'ECONNREFUSED' });
    expect(report.raw_a).toBe('ECONNREFUSED');
    expect(report.raw_c_loopback).toBe('ECONNREFUSED');
    if (external) expect(report.raw_c_external).toBe('ENETUNREACH');
    expect(events.filter((e) => e.type === 'NET_CONNECTION')).toEqual([]);
    expect(events.find((e) => e.type === 'STEP_COMPLETED')?.data).toMatchObject({ sandbox: 'bubblewrap', network: 'none' });
  }, 30_000);

  it('sandbox: none opts out under auto: the host network (the control: C answers on the raw socket)', async () => {
    const wf = await probeAgent('open', 'sandbox: none\n');
    const { report, events } = await runProbe(wf);
    expect(report.raw_a).toBe('connected');
    expect(report.raw_c_loopback).toBe('C');
    if (external) expect(report.raw_c_external).toBe('C');
    expect(events.find((e) => e.type === 'STEP_COMPLETED')?.data).toMatchObject({ sandbox: 'none', network: 'host' });
  }, 30_000);
});
