/**
 * The router's delivery guarantee across crashes, with real processes and real gRPC: `swarm sw4rm
 * serve` on a SQLite file is SIGKILLed while messages are in flight and a consumer holds leases,
 * then started again on the same file; a consumer process is SIGKILLed between receive and ack.
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { protoDir } from '../src/sw4rm/proto.js';
import { cleanupSandboxes, makeSandbox, REPO_ROOT, type Sandbox } from './helpers/cli.js';
import { env, rawClients, type Item } from './helpers/sw4rm-raw.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(() => cleanupSandboxes());

interface Router {
  child: ChildProcess;
  port: number;
  registry: number;
  exited: Promise<unknown>;
}

/** `swarm sw4rm serve` on the sandbox's store, on free ports; resolves once it listens. */
async function serve(sb: Sandbox): Promise<Router> {
  const { child, done } = sb.start(['sw4rm', 'serve', '--router', '0', '--registry', '0', '--scheduler', '0'], { timeoutMs: 120_000 });
  let out = '';
  const ports = await new Promise<[number, number]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`swarm sw4rm serve did not start: ${out}`)), 30_000);
    child.stdout?.on('data', (d: Buffer | string) => {
      out += String(d);
      const m = /router [\d.]+:(\d+), registry [\d.]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve([Number(m[1]), Number(m[2])]);
      }
    });
    void done.then((r) => reject(new Error(`swarm sw4rm serve exited: ${r.stdout}${r.stderr}`)));
  });
  return { child, port: ports[0], registry: ports[1], exited: done };
}

/**
 * A consumer in its own process: a plain @grpc/grpc-js client of router.proto (plain JavaScript, so
 * it starts without a TypeScript loader) that prints one JSON line per item; "ack" acknowledges each,
 * "hold" never does (it is killed between receive and ack).
 */
const CONSUMER = `
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
const [addr, agent, mode] = process.argv.slice(1);
const dir = process.env.SW4RM_PROTO_DIR;
const def = protoLoader.loadSync([dir + '/router.proto'], { keepCase: true, longs: Number, enums: String, bytes: Buffer, defaults: true, includeDirs: [dir] });
const client = new (grpc.loadPackageDefinition(def).sw4rm.router.RouterService)(addr, grpc.credentials.createInsecure());
const call = client.StreamIncoming({ agent_id: agent });
call.on('data', (it) => {
  process.stdout.write(JSON.stringify({ seq: it.seq, message_id: it.msg.message_id }) + '\\n');
  if (mode !== 'ack') return;
  client.AckDelivery({ agent_id: agent, seq: it.seq, message_id: it.msg.message_id, outcome: 'DELIVERY_ACK_OUTCOME_DELIVERED' }, (err, res) => {
    if (err) process.stderr.write('ack: ' + err.message + '\\n');
    else process.stdout.write(JSON.stringify({ acked: it.seq, recorded: res.recorded }) + '\\n');
  });
});
call.on('error', (e) => { process.stderr.write('stream: ' + e.message + '\\n'); process.exit(2); });
`;

function consumer(port: number, agent: string, mode: 'ack' | 'hold') {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CONSUMER, `127.0.0.1:${port}`, agent, mode], {
    cwd: REPO_ROOT,
    env: { ...process.env, SW4RM_PROTO_DIR: protoDir() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    for (const p of parts) if (p) lines.push(JSON.parse(p) as Record<string, unknown>);
  });
  const exited = new Promise((r) => child.on('close', r));
  return { child, lines, exited };
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(25);
  }
}

describe('SW4RM router crash safety (processes)', () => {
  it('SIGKILL of the router with messages in flight and leases held: every accepted message is delivered and acknowledged, nothing acknowledged comes again', async () => {
    const sb = makeSandbox();
    let router = await serve(sb);
    let c = rawClients(`127.0.0.1:${router.port}`, `127.0.0.1:${router.registry}`);
    expect((await c.register('sink')).accepted).toBe(true);
    const N = 200;
    const all = Array.from({ length: N }, (_, i) => env('source', { payload: JSON.stringify({ i }) }));
    const accepted = new Set<string>();
    const ackedBefore = new Set<string>();
    const inbound = c.stream('sink');
    // Acknowledge every other item: the rest stay in flight under their leases when the router dies.
    let acked = 0;
    const onItem = (it: Item, i: number): void => {
      if (i % 2 === 0) void c.ack('sink', it.seq, it.msg.message_id).then((r) => r.recorded && ackedBefore.add(it.msg.message_id), () => undefined);
    };
    const sending = (async () => {
      for (const [i, e] of all.entries()) {
        const r = await c.send(e, 'sink').catch(() => undefined);
        if (r?.accepted) accepted.add(e.message_id);
        if (!r) break; // the router is gone
        const got = inbound.items.length;
        while (acked < got) onItem(inbound.items[acked] as Item, acked++);
        if (i === N / 2) {
          // Mid-stream: make sure some items are held (delivered, unacknowledged) before the kill.
          await until('items delivered', () => inbound.items.length > 20);
        }
      }
    })();
    await until('half accepted', () => accepted.size >= N / 2);
    router.child.kill('SIGKILL');
    await router.exited;
    await sending;
    c.close();
    expect(accepted.size).toBeGreaterThanOrEqual(N / 2);
    expect(accepted.size).toBeLessThan(N);

    router = await serve(sb);
    c = rawClients(`127.0.0.1:${router.port}`, `127.0.0.1:${router.registry}`);
    // What was never answered is sent again unchanged (what an SDK retry does): stored once either way.
    for (const e of all) if (!accepted.has(e.message_id)) expect((await c.send(e, 'sink')).accepted).toBe(true);
    const again = c.stream('sink');
    const seen = new Map<string, number>();
    let handled = 0;
    await until('every message delivered and acknowledged after the restart', async () => {
      while (handled < again.items.length) {
        const it = again.items[handled++] as Item;
        seen.set(it.msg.message_id, (seen.get(it.msg.message_id) ?? 0) + 1);
        await c.ack('sink', it.seq, it.msg.message_id);
      }
      const states = sb.query<{ state: string; n: number }>(`SELECT state, count(*) AS n FROM sw4rm_messages WHERE recipient = 'sink' GROUP BY state`);
      return states.length === 1 && states[0]?.state === 'acked' && states[0].n === N;
    });
    const everything = new Set([...ackedBefore, ...seen.keys(), ...inbound.items.map((i) => i.msg.message_id)]);
    for (const e of all) expect(everything.has(e.message_id), `message ${e.message_id} delivered`).toBe(true);
    for (const id of ackedBefore) expect(seen.has(id), `acknowledged ${id} redelivered`).toBe(false);
    // Only unacknowledged ones may come twice (the consumer dedups by message_id).
    const dupes = inbound.items.map((i) => i.msg.message_id).filter((id) => seen.has(id));
    for (const id of dupes) expect(ackedBefore.has(id)).toBe(false);
    expect(dupes.length, 'items held under a lease at the kill are delivered again').toBeGreaterThan(0);
    expect(sb.query<{ n: number }>(`SELECT count(*) AS n FROM sw4rm_messages`)[0]?.n).toBe(N);
    c.close();
    router.child.kill('SIGTERM');
    await router.exited;
  }, 180_000);

  it('SIGKILL of a consumer between receive and ack: the messages are delivered again to its next stream', async () => {
    const sb = makeSandbox();
    const router = await serve(sb);
    const c = rawClients(`127.0.0.1:${router.port}`, `127.0.0.1:${router.registry}`);
    expect((await c.register('worker')).accepted).toBe(true);
    const msgs = [env('boss'), env('boss'), env('boss')];
    for (const m of msgs) expect((await c.send(m, 'worker')).accepted).toBe(true);
    const first = consumer(router.port, 'worker', 'hold');
    await until('received, not acknowledged', () => first.lines.length === 3);
    first.child.kill('SIGKILL');
    await first.exited;
    expect(sb.query<{ state: string }>(`SELECT state FROM sw4rm_messages WHERE recipient = 'worker'`).map((r) => r.state)).toEqual(['in_flight', 'in_flight', 'in_flight']);
    const second = consumer(router.port, 'worker', 'ack');
    await until('acknowledged by the next consumer', () => second.lines.filter((l) => l.recorded === true).length === 3);
    expect(second.lines.filter((l) => 'message_id' in l).map((l) => l.message_id)).toEqual(msgs.map((m) => m.message_id));
    expect(second.lines.filter((l) => 'seq' in l).map((l) => l.seq)).toEqual(first.lines.map((l) => l.seq));
    expect(sb.query<{ state: string }>(`SELECT state FROM sw4rm_messages WHERE recipient = 'worker'`).map((r) => r.state)).toEqual(['acked', 'acked', 'acked']);
    second.child.kill('SIGKILL');
    await second.exited;
    c.close();
    router.child.kill('SIGTERM');
    await router.exited;
  }, 120_000);

  it('swarm sw4rm dlq list | replay | drop and swarm sw4rm agents work on the store the router uses', async () => {
    const sb = makeSandbox();
    const router = await serve(sb);
    const c = rawClients(`127.0.0.1:${router.port}`, `127.0.0.1:${router.registry}`);
    expect((await c.register('late', 'Late agent')).accepted).toBe(true);
    // TTLs long enough to arrive on a loaded machine, short enough to die while nobody streams.
    const m = env('boss', { ttl_ms: 1500, payload: JSON.stringify({ task: 'x' }) });
    expect((await c.send(m, 'late')).accepted).toBe(true);
    const keep = env('boss', { ttl_ms: 1500 });
    expect((await c.send(keep, 'late')).accepted).toBe(true);
    await until('dead letters', () => sb.query(`SELECT 1 FROM sw4rm_messages WHERE state = 'dead'`).length === 2);
    const list = await sb.json<Array<Record<string, unknown>>>(['sw4rm', 'dlq', 'list', '--json']);
    expect(list.map((d) => [d.message_id, d.dead_reason, d.recipient, d.payload])).toEqual([
      [m.message_id, 'TTL_EXPIRED', 'late', JSON.stringify({ task: 'x' })],
      [keep.message_id, 'TTL_EXPIRED', 'late', keep.payload.toString()],
    ]);
    const seq = list[0]!.seq as number;
    expect((await sb.run(['sw4rm', 'dlq', 'replay', String(seq)])).stdout).toContain('replayed 1 dead letter');
    const s = c.stream('late');
    const [it] = await s.waitFor(1);
    expect(it!.msg.message_id).toBe(m.message_id);
    expect((await c.ack('late', it!.seq, m.message_id)).recorded).toBe(true);
    // Independent commands at once: each CLI start costs seconds on a loaded machine.
    const [missing, noArg, agents] = await Promise.all([
      sb.run(['sw4rm', 'dlq', 'drop', '999999']),
      sb.run(['sw4rm', 'dlq', 'drop']),
      sb.json<Array<Record<string, unknown>>>(['sw4rm', 'agents', '--json']),
    ]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('no dead letter with seq 999999');
    expect(noArg.stderr).toContain('give the seq of a dead letter');
    expect(agents.map((a) => [a.agent_id, a.name, a.status, a.implicit])).toEqual([['late', 'Late agent', 'available', false]]);
    expect(await sb.json(['sw4rm', 'dlq', 'drop', '--all', '--json'])).toEqual({ dropped: 1 });
    expect(sb.query(`SELECT 1 FROM sw4rm_messages WHERE state = 'dead'`)).toEqual([]);
    s.cancel();
    c.close();
    router.child.kill('SIGTERM');
    await router.exited;
  }, 120_000);
});
