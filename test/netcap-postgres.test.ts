/**
 * net_cap on PostgreSQL: a sandboxed agent's connections through the policy proxy are NET_CONNECTION
 * events in the run's log, chained with the rest (the run still verifies), allowed and refused alike.
 */
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeBubblewrap } from '../src/sandbox/sandbox.js';
import { Swarm } from '../src/swarm.js';
import { PROBE_AGENT, type ProbeReport } from './helpers/netcap-probe.js';
import { pgTestServer, stopPgTestServer, type PgTestServer } from './helpers/pg.js';
import { removeProject, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';

const bwrap = probeBubblewrap();
let pg: PgTestServer;
const servers: Server[] = [];
let dir: string | undefined;
let swarm: Swarm | undefined;

beforeAll(async () => {
  pg = await pgTestServer();
});
afterAll(async () => {
  await swarm?.close();
  for (const s of servers) s.close();
  if (dir) removeProject(dir);
  await stopPgTestServer();
});

function listen(body: string): Promise<number> {
  const s = createServer((_req, res) => res.end(body));
  servers.push(s);
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));
}

describe.skipIf(!bwrap.ok)('net_cap on PostgreSQL', () => {
  it('allowed and refused connections are NET_CONNECTION events with bytes; the run verifies', async () => {
    const a = await listen('from A');
    const b = await listen('from B');
    dir = tempProject('name: netcap-pg\nsandbox: bwrap\n');
    swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_DATABASE_URL: await pg.createDatabase() } });
    writeAgent(dir, 'probe', `name: probe\nversion: 1.0.0\nruntime:\n  type: node\n  entry: probe.js\ncapabilities: ['net:127.0.0.1:${a}']\n`, { 'probe.js': PROBE_AGENT });
    await swarm.registerAgent(join(dir, 'agents', 'probe'));
    await swarm.registerWorkflow(writeWorkflow(dir, 'wf', 'name: wf\nversion: 1.0.0\nsteps:\n  - id: probe\n    agent: probe@1.0.0\n    inputs: { targets: "${trigger.targets}" }\n'));
    const runId = await swarm.startRun('wf', { targets: { a, b, c: b, external: null } });
    const r = await swarm.runToCompletion(runId);
    expect(r.run.status).toBe('completed');
    const report = r.steps[0]?.outputs as ProbeReport;
    expect(report.http_a).toEqual({ status: 200, body: 'from A' });
    expect(report.connect_b).toMatchObject({ status: 403 });
    expect(report.raw_a).toBe('ECONNREFUSED');
    const events = await swarm.events(runId);
    const net = events.filter((e) => e.type === 'NET_CONNECTION');
    expect(net.map((e) => [e.data.method, e.data.port, e.data.allowed]).sort()).toEqual(
      [
        ['CONNECT', a, true],
        ['CONNECT', b, false],
        ['GET', a, true],
        ['GET', a, true],
        ['GET', b, false],
      ].sort(),
    );
    for (const e of net) {
      expect(e.step_id).toBe('probe');
      if (e.data.allowed) expect((e.data.bytes_in as number) > 0 && (e.data.bytes_out as number) > 0).toBe(true);
    }
    // The events come before the step's outcome, inside the run's chain.
    const completed = events.findIndex((e) => e.type === 'STEP_COMPLETED');
    expect(Math.max(...net.map((e) => events.indexOf(e)))).toBeLessThan(completed);
    expect((await swarm.verify(runId)).ok).toBe(true);
  }, 50_000);
});
