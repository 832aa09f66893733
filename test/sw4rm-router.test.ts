/**
 * The SW4RM Router and Registry in this process, over real gRPC on 127.0.0.1, on a real SQLite file
 * and a real PostgreSQL database: order, leases, redelivery, dedup, dead letters, TTL, every bad
 * input with nothing stored, heartbeats.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../src/store/store.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { Swarm } from '../src/swarm.js';
import { startSw4rm, type Sw4rmServer } from '../src/sw4rm/server.js';
import type { Sw4rmServiceOptions } from '../src/sw4rm/service-types.js';
import { buildAckEnvelope, parseAck } from '../src/sw4rm/core/acks.js';
import { sw4rmProtos } from '../src/sw4rm/proto.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { env, rawClients } from './helpers/sw4rm-raw.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(20);
  }
}

afterAll(async () => {
  await stopPgTestServer();
});

describe.each(['sqlite', 'postgres'] as const)('SW4RM router and registry on %s', (kind) => {
  let dir: string | undefined;
  let swarm: Swarm | undefined;
  let server: Sw4rmServer | undefined;
  let clients: ReturnType<typeof rawClients> | undefined;

  afterEach(async () => {
    clients?.close();
    await server?.close();
    await swarm?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    clients = server = swarm = dir = undefined;
  });

  async function start(options: Sw4rmServiceOptions = {}) {
    dir = mkdtempSync(join(tmpdir(), 'swarm-sw4rm-'));
    const store: Store = kind === 'sqlite' ? openSqliteStore({ path: join(dir, 'swarm.db'), durability: 'full' }) : await openPostgresStore({ url: await (await pgTestServer()).createDatabase(), durability: 'full' });
    swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') }, store });
    server = await startSw4rm(swarm, { host: '127.0.0.1', ports: { router: 0, registry: 0, scheduler: 0 }, ...options });
    clients = rawClients(`127.0.0.1:${server.ports.router}`, `127.0.0.1:${server.ports.registry}`);
    return { c: clients, store };
  }

  it('delivers in seq order to the named target, answers RECEIVED to a streaming producer, records each ack once', async () => {
    const { c, store } = await start();
    expect((await c.register('bob', 'Bob')).accepted).toBe(true);
    const alice = c.stream('alice'); // streams without registering: known implicitly
    await until('alice is known', async () => (await store.sw4rmAgents()).some((a) => a.agent_id === 'alice'));
    const sent = Array.from({ length: 5 }, (_, i) => env('alice', { payload: JSON.stringify({ i }) }));
    for (const e of sent) expect(await c.send(e, 'bob')).toEqual({ accepted: true, reason: '' });
    const bob = c.stream('bob');
    const got = await bob.waitFor(5);
    expect(got.map((g) => g.msg.message_id)).toEqual(sent.map((e) => e.message_id));
    expect(got.map((g) => g.seq)).toEqual([...got.map((g) => g.seq)].sort((a, b) => a - b));
    expect(JSON.parse(got[2]!.msg.payload.toString())).toEqual({ i: 2 });
    const receipts = await alice.waitFor(5);
    expect(receipts.map((r) => parseAck(r.msg))).toEqual(sent.map((e) => ({ ack_for_message_id: e.message_id, ack_stage: 'RECEIVED', error_code: 'ERROR_CODE_UNSPECIFIED', note: 'stored by the router' })));
    for (const g of got) expect(await c.ack('bob', g.seq, g.msg.message_id)).toEqual({ recorded: true });
    expect(await c.ack('bob', got[0]!.seq, got[0]!.msg.message_id)).toEqual({ recorded: false });
    expect(await c.ack('bob', 999_999)).toEqual({ recorded: false });
    expect(await c.ack('alice', got[1]!.seq)).toEqual({ recorded: false }); // not alice's
    expect((await store.sw4rmMessages({ recipient: 'bob' })).map((m) => m.state)).toEqual(['acked', 'acked', 'acked', 'acked', 'acked']);
    // Sends while bob streams arrive without waiting for a poll.
    const more = env('alice');
    await c.send(more, 'bob');
    expect((await bob.waitFor(6))[5]!.msg.message_id).toBe(more.message_id);
  });

  it('routes an ACK envelope to the producer of the acknowledged message; without a target, to every other agent', async () => {
    const { c } = await start();
    await c.register('a');
    await c.register('b');
    await c.register('d');
    const a = c.stream('a');
    const b = c.stream('b');
    const d = c.stream('d');
    const m = env('a');
    expect((await c.send(m)).accepted).toBe(true); // no target: b and d
    const [gb] = await b.waitFor(1);
    const [gd] = await d.waitFor(1);
    expect(gb!.msg.message_id).toBe(m.message_id);
    expect(gd!.msg.message_id).toBe(m.message_id);
    expect(gb!.seq).not.toBe(gd!.seq);
    const fulfilled = buildAckEnvelope({ producer_id: 'b', ack_for_message_id: m.message_id, ack_stage: 'FULFILLED', note: 'done' });
    expect(await c.send(fulfilled)).toEqual({ accepted: true, reason: '' });
    const acks = await a.waitFor(2); // RECEIVED from the router, FULFILLED from b
    expect(acks.map((x) => parseAck(x.msg).ack_stage).sort()).toEqual(['FULFILLED', 'RECEIVED']);
    expect(acks.find((x) => x.msg.producer_id === 'b')?.msg.message_id).toBe(fulfilled.message_id);
    // An ACK is not answered with a RECEIVED of its own.
    await sleep(100);
    expect(b.items).toHaveLength(1);
  });

  it('redelivers after the lease and at once on a new stream; dead after maxAttempts', async () => {
    const { c, store } = await start({ leaseMs: 150, maxAttempts: 3 });
    await c.register('bob');
    const m = env('alice');
    await c.send(m, 'bob');
    const s1 = c.stream('bob');
    const first = (await s1.waitFor(1))[0]!;
    const second = (await s1.waitFor(2, 5000))[1]!; // lease ended: sent again on the same stream
    expect(second.msg.message_id).toBe(m.message_id);
    expect(second.seq).toBe(first.seq);
    s1.cancel();
    await s1.ended;
    const s2 = c.stream('bob'); // third delivery, at once
    expect((await s2.waitFor(1, 1000))[0]!.seq).toBe(first.seq);
    await until('dead after 3 deliveries', async () => (await store.sw4rmMessages({ state: 'dead' })).length === 1);
    const [dead] = await store.sw4rmMessages({ state: 'dead' });
    expect(dead).toMatchObject({ seq: first.seq, attempts: 3, dead_reason: 'MAX_ATTEMPTS' });
    expect(await c.ack('bob', first.seq, m.message_id)).toEqual({ recorded: false });
    // Replay: queued again, delivered, acknowledged.
    expect((await store.sw4rmReplayDead(first.seq, Date.now())).map((r) => r.seq)).toEqual([first.seq]);
    const again = await s2.waitFor(2, 5000);
    expect(await c.ack('bob', again[1]!.seq, m.message_id)).toEqual({ recorded: true });
    await sleep(400);
    expect(s2.items).toHaveLength(2);
  });

  it('deduplicates by idempotency token within the window and by message id', async () => {
    const { c, store } = await start({ dedupWindowMs: 400 });
    await c.register('bob');
    const m1 = env('alice', { idempotency_token: 'alice:create:1' });
    expect(await c.send(m1, 'bob')).toEqual({ accepted: true, reason: '' });
    const retry = env('alice', { idempotency_token: 'alice:create:1' }); // new message id, same token
    const r = await c.send(retry, 'bob');
    expect(r.accepted).toBe(true);
    expect(r.reason).toContain(m1.message_id);
    expect((await c.send(m1, 'bob')).reason).toContain('duplicate'); // the same attempt again
    expect(await store.sw4rmMessages({ recipient: 'bob' })).toHaveLength(1);
    // Another producer's token is its own.
    expect((await c.send(env('carol', { idempotency_token: 'alice:create:1' }), 'bob')).reason).toBe('');
    await sleep(500);
    const late = env('alice', { idempotency_token: 'alice:create:1' });
    expect(await c.send(late, 'bob')).toEqual({ accepted: true, reason: '' });
    expect((await store.sw4rmMessages({ recipient: 'bob' })).map((x) => x.message_id)).toContain(late.message_id);
  });

  it('dead-letters a PERMANENT_FAILURE and a message past its TTL; drop removes dead letters', async () => {
    const { c, store } = await start({ leaseMs: 200 });
    await c.register('bob');
    const m = env('alice');
    await c.send(m, 'bob');
    const ttl = env('alice', { ttl_ms: 150 });
    const bobLater = env('alice');
    const s = c.stream('bob');
    const [it1] = await s.waitFor(1);
    expect(await c.ack('bob', it1!.seq, m.message_id, 'DELIVERY_ACK_OUTCOME_PERMANENT_FAILURE')).toEqual({ recorded: true });
    s.cancel();
    await s.ended;
    await c.send(ttl, 'bob');
    await c.send(bobLater, 'bob');
    await until('TTL expiry', async () => (await store.sw4rmMessages({ state: 'dead' })).length === 2);
    const dead = await store.sw4rmMessages({ state: 'dead' });
    expect(dead.map((d) => [d.message_id, d.dead_reason])).toEqual([
      [m.message_id, 'PERMANENT_FAILURE'],
      [ttl.message_id, 'TTL_EXPIRED'],
    ]);
    const s2 = c.stream('bob');
    const [later] = await s2.waitFor(1);
    expect(later!.msg.message_id).toBe(bobLater.message_id);
    expect(await c.ack('bob', later!.seq, bobLater.message_id)).toEqual({ recorded: true });
    await sleep(300);
    expect(s2.items).toHaveLength(1);
    expect(await store.sw4rmDropDead(dead[0]!.seq)).toBe(1);
    expect(await store.sw4rmDropDead('all')).toBe(1);
    expect(await store.sw4rmMessages({ state: 'dead' })).toEqual([]);
  });

  it('answers every bad input with its code and stores nothing', async () => {
    const { c, store } = await start({ maxPayloadBytes: 1024, hlcToleranceMs: 5000 });
    await c.register('bob');
    await c.register('gone');
    await c.deregister('gone');
    const now = Date.now();
    const cases: Array<[string, Promise<{ accepted: boolean; reason: string }>]> = [
      ['VALIDATION_ERROR', c.sendRaw(Buffer.from([0x0a, 0xff, 0xff, 0x01]))],
      ['VALIDATION_ERROR', c.send(null, 'bob')],
      ['VALIDATION_ERROR', c.send({ ...env('alice'), producer_id: '' }, 'bob')],
      ['VALIDATION_ERROR', c.send({ ...env('alice'), message_type: 'MESSAGE_TYPE_UNSPECIFIED' }, 'bob')],
      ['UNSUPPORTED_MESSAGE_TYPE', c.send({ ...env('alice'), message_type: 99 }, 'bob')],
      ['VALIDATION_ERROR', c.send({ ...env('alice'), content_length: 3 }, 'bob')],
      ['OVERSIZE_PAYLOAD', c.send(env('alice', { payload: Buffer.alloc(2000) }), 'bob')],
      ['TTL_EXPIRED', c.send(env('alice', { ttl_ms: 1000, timestamp: now - 10_000 }), 'bob')],
      ['VALIDATION_ERROR', c.send(env('alice', { hlc_timestamp: `HLC:${(now + 120_000) * 1000}:0:alice` }), 'bob')],
      ['VALIDATION_ERROR', c.send(env('alice', { hlc_timestamp: 'yesterday' }), 'bob')],
      ['NO_ROUTE', c.send(env('alice'), 'nobody')],
      ['NO_ROUTE', c.send(env('alice'), 'gone')],
      ['NO_ROUTE', c.send(buildAckEnvelope({ producer_id: 'bob', ack_for_message_id: 'no-such-message', ack_stage: 'FULFILLED' }))],
      ['VALIDATION_ERROR', c.send({ ...buildAckEnvelope({ producer_id: 'bob', ack_for_message_id: 'x', ack_stage: 'READ' }), payload: Buffer.from('not json'), content_length: 8 })],
    ];
    for (const [code, p] of cases) {
      const r = await p;
      expect(r.accepted, r.reason).toBe(false);
      expect(r.reason.startsWith(`${code}: `), r.reason).toBe(true);
    }
    expect(await store.sw4rmMessages({})).toEqual([]);
    // No agents but the producer: nowhere to go.
    await c.deregister('bob');
    expect((await c.send(env('alice'))).reason).toMatch(/^NO_ROUTE: /);
    expect(await store.sw4rmMessages({})).toEqual([]);
  });

  it('registry: validates, re-registers, heartbeats, marks silent agents unavailable, deregisters', async () => {
    const { c, store } = await start({ heartbeatTimeoutMs: 200 });
    expect((await c.register('', 'x')).reason).toMatch(/^VALIDATION_ERROR: agent\.agent_id is required/);
    expect((await c.register('bad id', 'x')).reason).toMatch(/^VALIDATION_ERROR: agent\.agent_id 'bad id'/);
    expect((await c.register('a1', '  ')).reason).toMatch(/^VALIDATION_ERROR: agent\.name of 'a1' is required/);
    expect(await store.sw4rmAgents()).toEqual([]);
    expect(await c.register('a1', 'First', { capabilities: ['x'], communication_class: 'PRIVILEGED' })).toEqual({ accepted: true, reason: '' });
    expect(await c.register('a1', 'Renamed', { capabilities: ['y'] })).toEqual({ accepted: true, reason: '' });
    const [a1] = await store.sw4rmAgents();
    expect(a1).toMatchObject({ agent_id: 'a1', name: 'Renamed', status: 'available', communication_class: 'STANDARD' });
    expect(JSON.parse(a1!.descriptor).capabilities).toEqual(['y']);
    expect(await c.heartbeat('nobody')).toEqual({ ok: false });
    expect(await c.heartbeat('a1', 'RUNNING', { cpu: '3%' })).toEqual({ ok: true });
    expect((await store.sw4rmAgents())[0]).toMatchObject({ agent_state: 'RUNNING', health: '{"cpu":"3%"}' });
    await until('a1 unavailable', async () => (await store.sw4rmAgents())[0]?.status === 'unavailable');
    // Still a target: queued for when it comes back (at-least-once).
    expect(await c.send(env('z'), 'a1')).toEqual({ accepted: true, reason: '' });
    expect(await c.heartbeat('a1')).toEqual({ ok: true });
    expect((await store.sw4rmAgents())[0]?.status).toBe('available');
    expect(await c.deregister('a1', 'done')).toEqual({ ok: true });
    expect(await c.deregister('a1')).toEqual({ ok: false });
    expect(await c.heartbeat('a1')).toEqual({ ok: false });
    expect((await store.sw4rmAgents())[0]).toMatchObject({ status: 'deregistered', deregister_reason: 'done' });
    expect(await c.register('a1', 'Back')).toEqual({ accepted: true, reason: '' });
    expect((await store.sw4rmAgents())[0]).toMatchObject({ status: 'available', deregistered_at: null });
    // An agent that only streams: its open stream keeps it available; gone, it is unavailable and out of fan-outs.
    const s = c.stream('streamer');
    await until('streamer known', async () => (await store.sw4rmAgents()).some((a) => a.agent_id === 'streamer'));
    await sleep(500);
    expect((await store.sw4rmAgents()).find((a) => a.agent_id === 'streamer')).toMatchObject({ status: 'available', implicit: true });
    s.cancel();
    await until('streamer unavailable', async () => (await store.sw4rmAgents()).find((a) => a.agent_id === 'streamer')?.status === 'unavailable');
    await until('a1 unavailable again', async () => (await store.sw4rmAgents())[0]?.status === 'unavailable');
    expect((await c.send(env('z'))).reason).toMatch(/^NO_ROUTE: no target named .* no other agent is available/);
  });

  it('forgets an agent known only by its stream once it has been gone past the window, with what waited for it; a registered one stays', async () => {
    const { c, store } = await start({ heartbeatTimeoutMs: 200, dedupWindowMs: 1_000 });
    expect(await c.register('keeper', 'Keeper')).toEqual({ accepted: true, reason: '' });
    const s = c.stream('listener');
    await until('listener known', async () => (await store.sw4rmAgents()).some((a) => a.agent_id === 'listener'));
    s.cancel();
    await until('listener unavailable', async () => (await store.sw4rmAgents()).find((a) => a.agent_id === 'listener')?.status === 'unavailable');
    // Still a target while it is remembered: queued for it (a step's ACK arriving after it stopped listening).
    expect(await c.send(env('late ack'), 'listener')).toEqual({ accepted: true, reason: '' });
    expect(await c.send(env('for keeper'), 'keeper')).toEqual({ accepted: true, reason: '' });
    expect((await store.sw4rmMessages({ recipient: 'listener' })).length).toBe(1);
    await until('listener forgotten', async () => !(await store.sw4rmAgents()).some((a) => a.agent_id === 'listener'));
    expect(await store.sw4rmMessages({ recipient: 'listener' })).toEqual([]);
    expect((await store.sw4rmAgents()).map((a) => [a.agent_id, a.status])).toEqual([['keeper', 'unavailable']]);
    expect((await store.sw4rmMessages({ recipient: 'keeper' })).length).toBe(1);
    expect((await c.send(env('again'), 'listener')).reason).toMatch(/^NO_ROUTE/);
  });

  it('a client built from the generic proto-loader definitions sees seq on every item', () => {
    expect(Object.keys(sw4rmProtos().router.RouterService.service)).toEqual(['SendMessage', 'StreamIncoming', 'AckDelivery']);
  });
});
