/**
 * A `runtime.type: sw4rm` step whose worker is killed with SIGKILL while it waits for the ACK: the
 * ACK arrives while no worker listens, the next worker's attempt resends under the same
 * idempotency token (the router drops it) and receives the stored ACK. The recipient gets the
 * message once. Real processes (`swarm worker`), real router on port 0, real gRPC.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { startSw4rm, type Sw4rmServer } from '../src/sw4rm/server.js';
import type { Swarm } from '../src/swarm.js';
import { exited, openProject, removeProject, spawnCli, tempProject, until, writeAgent, writeWorkflow } from './helpers/project.js';
import { Peer, type Envelope } from './helpers/sw4rm-peer.js';

let dir: string;
let swarm: Swarm;
let sw4rm: Sw4rmServer;
let peer: Peer | undefined;

beforeEach(async () => {
  dir = tempProject();
  swarm = await openProject(dir);
  sw4rm = await startSw4rm(swarm, { host: '127.0.0.1', ports: { router: 0, registry: 0, scheduler: 0 } });
});

afterEach(async () => {
  peer?.close();
  await sw4rm.close();
  await swarm.close();
  removeProject(dir);
});

it('a worker SIGKILLed while its sw4rm step waits: the next attempt gets the ACK that arrived meanwhile, and the message is delivered once', async () => {
  const waiting: Envelope[] = [];
  peer = new Peer(sw4rm.ports, 'ledger', (env) => {
    waiting.push(env);
  });
  await peer.start();
  await swarm.registerAgent(writeAgent(dir, 'book', `name: book\nversion: 1.0.0\nruntime: { type: sw4rm, to: ledger, router: "127.0.0.1:${sw4rm.ports.router}", timeout: 60s }\n`));
  await swarm.registerWorkflow(writeWorkflow(dir, 'post', 'name: post\nversion: 1.0.0\nsteps:\n  - id: book\n    agent: book\n    inputs: { amount: "${trigger.amount}" }\n'));
  const id = await swarm.startRun('post', { amount: 42 });
  let worker = spawnCli(['worker'], dir);
  try {
    // Liveness bounds (a busy machine starts a worker in seconds), not timings.
    await until(() => waiting.length === 1, 45_000, 'the message to reach the ledger');
    worker.kill('SIGKILL');
    await exited(worker);
    const sent = waiting[0] as Envelope;
    expect(sent.idempotency_token).toBe(`swarm-step:${id}/book`);
    // Nobody listens for it now: the router keeps it for the step's agent id.
    expect(await peer.ack(sent, 'FULFILLED', undefined, 'booked')).toMatchObject({ accepted: true });
    worker = spawnCli(['worker'], dir);
    await until(async () => (await swarm.getRun(id)).run.status === 'completed', 60_000, 'the run to complete');
  } finally {
    worker.kill('SIGTERM');
    await exited(worker);
  }
  const { steps } = await swarm.getRun(id);
  expect(steps[0]?.attempt).toBe(2);
  expect(steps[0]?.outputs).toMatchObject({ stage: 'FULFILLED', note: 'booked', message_id: (waiting[0] as Envelope).message_id });
  expect(peer.received).toHaveLength(1);
}, 150_000);
