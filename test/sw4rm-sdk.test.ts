/**
 * The SW4RM SDK's clients and agent runtime (src/sw4rm/client/) over real gRPC on 127.0.0.1: addresses
 * and error mapping against servers that are absent, silent or something else; and `runAgent` against
 * a real `startSw4rm` on SQLite — handlers and their ACKs, rejections, dedup from the persisted
 * processed set, reconnection across a restart of the services, deregistration on stop.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAck, type Ack } from '../src/sw4rm/core/acks.js';
import { buildEnvelope, type Envelope } from '../src/sw4rm/core/envelope.js';
import { AgentReject, runAgent, type AgentEvent } from '../src/sw4rm/client/agent.js';
import { JSONFilePersistence } from '../src/sw4rm/core/persistence.js';
import { serviceAddress } from '../src/sw4rm/client/base.js';
import { Sw4rmClientError } from '../src/sw4rm/client/errors.js';
import { RegistryClient } from '../src/sw4rm/client/registry-client.js';
import { RouterClient } from '../src/sw4rm/client/router-client.js';
import { SchedulerClient } from '../src/sw4rm/client/scheduler-client.js';
import { sw4rmProtos } from '../src/sw4rm/proto.js';
import { startSw4rm, type Sw4rmServer } from '../src/sw4rm/server.js';
import { Swarm } from '../src/swarm.js';
import { removeProject, tempProject } from './helpers/project.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function grpcServer(setup: (s: grpc.Server) => void): Promise<{ address: string; server: grpc.Server }> {
  const server = new grpc.Server();
  setup(server);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { address: `127.0.0.1:${port}`, server };
}

async function rejection(p: Promise<unknown>): Promise<Sw4rmClientError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(Sw4rmClientError);
  return e as Sw4rmClientError;
}

describe('SW4RM client addresses and errors', () => {
  it('takes the address given, else SW4RM_*_ADDR, else localhost and the protocol port', () => {
    expect(serviceAddress('router', undefined, {})).toBe('localhost:50051');
    expect(serviceAddress('registry', undefined, {})).toBe('localhost:50052');
    expect(serviceAddress('scheduler', undefined, {})).toBe('localhost:50053');
    expect(serviceAddress('router', undefined, { SW4RM_ROUTER_ADDR: ' agents:7001 ' })).toBe('agents:7001');
    expect(serviceAddress('registry', 'here:1', { SW4RM_REGISTRY_ADDR: 'there:2' })).toBe('here:1');
    expect(new RouterClient({ env: { SW4RM_ROUTER_ADDR: 'r:9' } }).address).toBe('r:9');
  });

  it('nothing listening: SW4RM_UNAVAILABLE naming the call, the address and what to start', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const registry = new RegistryClient({ address, deadlineMs: 5_000 });
    const e = await rejection(registry.register({ agent_id: 'a', name: 'A' }));
    expect(e.code).toBe('SW4RM_UNAVAILABLE');
    expect(e.message).toContain(`registry.RegisterAgent at ${address}`);
    expect(e.message).toContain("swarm sw4rm serve");
    expect(e.context).toMatchObject({ service: 'registry', method: 'RegisterAgent', address, grpcStatus: grpc.status.UNAVAILABLE });
    registry.close();
  });

  it('a service that never answers: SW4RM_DEADLINE after the deadline; another service there: SW4RM_UNIMPLEMENTED', async () => {
    const silent = await grpcServer((s) => s.addService(sw4rmProtos().registry.RegistryService.service, { RegisterAgent: () => undefined, Heartbeat: () => undefined, DeregisterAgent: () => undefined }));
    const registry = new RegistryClient({ address: silent.address, deadlineMs: 300 });
    const e = await rejection(registry.heartbeat('a'));
    expect(e.code).toBe('SW4RM_DEADLINE');
    expect(e.message).toContain('no answer within 300 ms');
    // The registry's port is not a router.
    const router = new RouterClient({ address: silent.address });
    const u = await rejection(router.ackDelivery('a', 1, 'm'));
    expect(u.code).toBe('SW4RM_UNIMPLEMENTED');
    // A stream that can never work is not retried forever.
    const s = await rejection((async () => {
      for await (const item of router.streamIncoming('a')) void item;
    })());
    expect(s.code).toBe('SW4RM_UNIMPLEMENTED');
    for (const c of [registry, router]) c.close();
    silent.server.forceShutdown();
  });
  it('SchedulerClient sends what scheduler.proto says and maps a refusal to SW4RM_REJECTED', async () => {
    const seen: Record<string, unknown>[] = [];
    const answer = <T,>(v: T) => (call: grpc.ServerUnaryCall<Record<string, unknown>, T>, cb: grpc.sendUnaryData<T>): void => {
      seen.push(call.request);
      cb(null, v);
    };
    const fake = await grpcServer((s) =>
      s.addService(sw4rmProtos().scheduler.SchedulerService.service, {
        SubmitTask: (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
          seen.push(call.request);
          cb(null, call.request.task_id === 'bad' ? { accepted: false, reason: 'VALIDATION_ERROR: priority out of range' } : { accepted: true });
        },
        RequestPreemption: answer({ enqueued: true }),
        ShutdownAgent: answer({ ok: true }),
        PollActivityBuffer: answer({ entries: [{ task_id: 't1', repo_id: 'r', worktree_id: 'w', branch: 'b', description: 'd', timestamp: 'now' }] }),
        PurgeActivity: answer({ purged: 2 }),
      }),
    );
    const scheduler = new SchedulerClient({ address: fake.address });
    await scheduler.submitTask({ agent_id: 'w1', task_id: 't1', priority: 5, params: { file: 'a.ts' }, scope: 'gpu' });
    expect(seen[0]).toMatchObject({ agent_id: 'w1', task_id: 't1', priority: 5, content_type: 'application/json', scope: 'gpu' });
    expect(JSON.parse((seen[0]!.params as Buffer).toString())).toEqual({ file: 'a.ts' });
    const e = await rejection(scheduler.submitTask({ agent_id: 'w1', task_id: 'bad', priority: 99 }));
    expect(e.code).toBe('SW4RM_REJECTED');
    expect(e.message).toContain("refused task 'bad' for 'w1': VALIDATION_ERROR: priority out of range");
    expect(await scheduler.requestPreemption('w1', 't1', 'urgent')).toBe(true);
    expect(await scheduler.shutdownAgent('w1', 1500)).toBe(true);
    expect(seen.at(-1)).toMatchObject({ agent_id: 'w1', grace_period: { seconds: 1, nanos: 500_000_000 } });
    expect(await scheduler.pollActivityBuffer('w1')).toEqual([{ task_id: 't1', repo_id: 'r', worktree_id: 'w', branch: 'b', description: 'd', timestamp: 'now' }]);
    expect(await scheduler.purgeActivity('w1', ['t1', 't2'])).toBe(2);
    scheduler.close();
    fake.server.forceShutdown();
  });
});

describe('runAgent against startSw4rm', () => {
  let dir: string;
  let swarm: Swarm;
  let server: Sw4rmServer;
  let addr: { router: string; registry: string };

  beforeAll(async () => {
    dir = tempProject();
    swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') } });
    server = await startSw4rm(swarm, { host: '127.0.0.1', ports: { router: 0, registry: 0, scheduler: 0 } });
    addr = { router: `127.0.0.1:${server.ports.router}`, registry: `127.0.0.1:${server.ports.registry}` };
  });
  afterAll(async () => {
    await server?.close();
    await swarm?.close();
    if (dir) removeProject(dir);
  });

  /** A registered producer that collects what comes back to it: ACKs by the message they acknowledge, other messages. */
  async function producer(): Promise<{ id: string; router: RouterClient; acks: Map<string, Ack[]>; inbox: Envelope[]; until(check: () => boolean): Promise<void>; close(): Promise<void> }> {
    const id = `producer-${randomUUID().slice(0, 8)}`;
    const registry = new RegistryClient({ address: addr.registry });
    await registry.register({ agent_id: id, name: id });
    const router = new RouterClient({ address: addr.router });
    const acks = new Map<string, Ack[]>();
    const inbox: Envelope[] = [];
    const abort = new AbortController();
    let poke = (): void => undefined;
    const loop = (async () => {
      for await (const { msg, seq } of router.streamIncoming(id, { signal: abort.signal })) {
        await router.ackDelivery(id, seq, msg.message_id);
        if (msg.message_type === 'ACKNOWLEDGEMENT') {
          const a = parseAck(msg);
          acks.set(a.ack_for_message_id, [...(acks.get(a.ack_for_message_id) ?? []), a]);
        } else inbox.push(msg);
        poke();
      }
    })();
    return {
      id,
      router,
      acks,
      inbox,
      until: async (check) => {
        while (!check()) await new Promise<void>((r) => (poke = r));
      },
      close: async () => {
        abort.abort();
        await loop;
        await registry.deregister(id);
        router.close();
        registry.close();
      },
    };
  }

  const final = (acks: Ack[] | undefined): Ack | undefined => acks?.find((a) => a.ack_stage !== 'RECEIVED' && a.ack_stage !== 'READ');

  it('handles by type, ACKs FULFILLED / FAILED / REJECTED to the producer, replies, and deregisters on stop', async () => {
    const p = await producer();
    const events: AgentEvent[] = [];
    const agentId = `agent-${randomUUID().slice(0, 8)}`;
    const agent = await runAgent({
      agentId,
      name: 'Test agent',
      capabilities: ['test'],
      router: new RouterClient({ address: addr.router }),
      registry: new RegistryClient({ address: addr.registry }),
      heartbeatMs: 200,
      stopOnSignals: false,
      onMessage: (e) => events.push(e),
      onWarning: () => undefined,
      handlers: {
        DATA: async (env, ctx) => {
          await ctx.reply({ echoed: JSON.parse(env.payload.toString()) as unknown });
          return 'ok';
        },
        CONTROL: (env) => {
          const cmd = JSON.parse(env.payload.toString()) as { action: string };
          if (cmd.action === 'explode') throw new Error('the handler broke');
          throw new AgentReject('PERMISSION_DENIED', `action ${cmd.action} is not allowed`);
        },
      },
    });
    const send = async (type: 'DATA' | 'CONTROL' | 'TOOL_CALL', payload: object): Promise<string> => {
      const env = buildEnvelope({ producer_id: p.id, message_type: type, payload: JSON.stringify(payload) });
      await p.router.sendMessage(env, { to: agentId });
      return env.message_id;
    };
    const data = await send('DATA', { n: 1 });
    const broke = await send('CONTROL', { action: 'explode' });
    const denied = await send('CONTROL', { action: 'shutdown' });
    const unknown = await send('TOOL_CALL', {});
    await p.until(() => [data, broke, denied, unknown].every((id) => final(p.acks.get(id))) && p.inbox.length > 0);
    expect(final(p.acks.get(data))).toMatchObject({ ack_stage: 'FULFILLED' });
    expect(p.acks.get(data)!.map((a) => a.ack_stage)).toEqual(['RECEIVED', 'RECEIVED', 'READ', 'FULFILLED']);
    expect(events.find((e) => e.envelope.message_id === data)).toMatchObject({ kind: 'fulfilled', note: 'ok' });
    expect(final(p.acks.get(broke))).toMatchObject({ ack_stage: 'FAILED', error_code: 'INTERNAL_ERROR', note: 'the handler broke' });
    expect(final(p.acks.get(denied))).toMatchObject({ ack_stage: 'REJECTED', error_code: 'PERMISSION_DENIED' });
    expect(final(p.acks.get(unknown))).toMatchObject({ ack_stage: 'REJECTED', error_code: 'UNSUPPORTED_MESSAGE_TYPE' });
    expect(JSON.parse(p.inbox[0]!.payload.toString())).toEqual({ echoed: { n: 1 } });
    expect(p.inbox[0]!.producer_id).toBe(agentId);
    expect(agent.counts).toMatchObject({ fulfilled: 1, failed: 1, rejected: 2 });

    await agent.stop();
    await agent.done;
    // Deregistered: the router has no route to it any more.
    const e = await rejection(p.router.sendMessage(buildEnvelope({ producer_id: p.id, message_type: 'DATA', payload: '{}' }), { to: agentId }));
    expect(e.code).toBe('SW4RM_REJECTED');
    expect(String(e.context.reason)).toMatch(/^NO_ROUTE/);
    await p.close();
  });

  it('a restarted agent answers a redelivery of what it finished from its persisted buffer, without running the handler again', async () => {
    const data = mkdtempSync(join(tmpdir(), 'sw4rm-agent-'));
    try {
      const p = await producer();
      const agentId = `dedup-${randomUUID().slice(0, 8)}`;
      const file = join(data, 'agent.json');
      let handled = 0;
      // The first run finishes the message and dies before its AckDelivery reaches the router.
      class CrashingBeforeAck extends RouterClient {
        override ackDelivery(): Promise<boolean> {
          return Promise.reject(new Error('crashed before AckDelivery'));
        }
      }
      const first = await runAgent({
        agentId,
        name: agentId,
        router: new CrashingBeforeAck({ address: addr.router }),
        registry: new RegistryClient({ address: addr.registry }),
        persistence: new JSONFilePersistence(file),
        stopOnSignals: false,
        onWarning: () => undefined,
        handlers: { DATA: () => void handled++ },
      });
      const env = buildEnvelope({ producer_id: p.id, message_type: 'DATA', payload: '{"once":true}', idempotency_token: `tok-${randomUUID()}` });
      await p.router.sendMessage(env, { to: agentId });
      await p.until(() => final(p.acks.get(env.message_id)) !== undefined);
      await first.stop();
      expect(handled).toBe(1);

      const events: AgentEvent[] = [];
      const second = await runAgent({
        agentId,
        name: agentId,
        router: new RouterClient({ address: addr.router }),
        registry: new RegistryClient({ address: addr.registry }),
        persistence: new JSONFilePersistence(file),
        stopOnSignals: false,
        onMessage: (e) => events.push(e),
        handlers: { DATA: () => void handled++ },
      });
      // The router redelivers the unacknowledged message on the new stream.
      await p.until(() => (p.acks.get(env.message_id) ?? []).filter((a) => a.ack_stage === 'FULFILLED').length === 2);
      expect(handled).toBe(1);
      expect(events.map((e) => [e.kind, e.envelope.message_id])).toEqual([['duplicate', env.message_id]]);
      await second.stop();
      const kept = JSON.parse(readFileSync(file, 'utf8')) as { entries: { activity: { records: Array<{ message_id: string }> } } };
      expect(kept.entries.activity.records.map((r) => r.message_id)).toContain(env.message_id);
      await p.close();
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });

  it('keeps streaming across a restart of the services on the same ports', async () => {
    const p = await producer();
    const agentId = `resilient-${randomUUID().slice(0, 8)}`;
    const warnings: string[] = [];
    const got: string[] = [];
    const agent = await runAgent({
      agentId,
      name: agentId,
      router: new RouterClient({ address: addr.router }),
      registry: new RegistryClient({ address: addr.registry }),
      stopOnSignals: false,
      onWarning: (m) => warnings.push(m),
      handlers: { DATA: (env) => void got.push(env.message_id) },
    });
    const first = buildEnvelope({ producer_id: p.id, message_type: 'DATA', payload: '{}' });
    await p.router.sendMessage(first, { to: agentId });
    await p.until(() => final(p.acks.get(first.message_id)) !== undefined);
    await server.close();
    server = await startSw4rm(swarm, { host: '127.0.0.1', ports: { router: server.ports.router, registry: server.ports.registry, scheduler: 0 } });
    const second = buildEnvelope({ producer_id: p.id, message_type: 'DATA', payload: '{}' });
    // The producer's own stream reconnects too; its send may need the channel to come back first.
    for (let i = 0; ; i++) {
      try {
        await p.router.sendMessage(second, { to: agentId });
        break;
      } catch (e) {
        if (i > 50 || (e as Sw4rmClientError).code !== 'SW4RM_UNAVAILABLE') throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await p.until(() => final(p.acks.get(second.message_id)) !== undefined);
    expect(got).toEqual([first.message_id, second.message_id]);
    expect(warnings.some((w) => /stream ended.*reconnecting in \d+ ms/.test(w))).toBe(true);
    await agent.stop();
    await p.close();
  });
});
