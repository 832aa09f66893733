/**
 * The published contract, end to end: a client built only from test/fixtures/sw4rm-wire/*.proto (an
 * independent transcription of the published SW4RM protos) and loaded with proto-loader's own
 * defaults — camelCase keys, enums as numbers, 64-bit integers as Longs, unlike the project's loader —
 * registers, sends, streams and acknowledges against a real `startSw4rm` over gRPC. Nothing here comes
 * from src/sw4rm: a drift of proto/sw4rm/ from the published contract (a renumbered field, a renamed
 * package or method) fails this test.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Swarm } from '../src/swarm.js';
import { startSw4rm, type Sw4rmServer } from '../src/sw4rm/server.js';
import { REPO_ROOT } from './helpers/cli.js';
import { removeProject, tempProject } from './helpers/project.js';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'sw4rm-wire');

// The published enum numbers, written out here rather than read from any project module.
const DATA = 2;
const ACKNOWLEDGEMENT = 5;
const RUNNING = 4;
const STANDARD = 2;
const DELIVERED = 0;

/* eslint-disable @typescript-eslint/no-explicit-any */
type Unary = (req: object, meta: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: any) => void) => void;
interface Item {
  msg: { messageId: string; producerId: string; correlationId: string; messageType: number; contentType: string; payload: Buffer; idempotencyToken: string };
  seq: { toString(): string };
}

function loadPublished(): { router: grpc.ServiceClientConstructor; registry: grpc.ServiceClientConstructor } {
  // Only includeDirs: every other option is proto-loader's default.
  const def = protoLoader.loadSync(['common.proto', 'registry.proto', 'router.proto'], { includeDirs: [FIXTURES] });
  const root = grpc.loadPackageDefinition(def) as any;
  return { router: root.sw4rm.router.RouterService, registry: root.sw4rm.registry.RegistryService };
}

function call<R>(client: grpc.Client, method: string, req: object): Promise<R> {
  return new Promise((resolve, reject) => {
    ((client as any)[method] as Unary).call(client, req, new grpc.Metadata(), (e, r) => (e ? reject(e) : resolve(r as R)));
  });
}

/** Items of one open stream, taken one at a time. */
function reader(client: grpc.Client, agentId: string): { next(): Promise<Item>; close(): void } {
  const open = (client as any).StreamIncoming as (req: object) => grpc.ClientReadableStream<Item>;
  const stream = open.call(client, { agentId });
  const items: Item[] = [];
  const waiting: ((i: Item) => void)[] = [];
  stream.on('data', (i: Item) => (waiting.length ? waiting.shift()!(i) : items.push(i)));
  stream.on('error', () => undefined); // cancelled by close()
  return {
    next: () => (items.length ? Promise.resolve(items.shift()!) : new Promise((r) => waiting.push(r))),
    close: () => stream.cancel(),
  };
}

describe('a client of the published SW4RM protos against swarm', () => {
  let dir: string;
  let swarm: Swarm;
  let server: Sw4rmServer;
  let router: grpc.Client;
  let registry: grpc.Client;

  beforeAll(async () => {
    dir = tempProject();
    swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') } });
    server = await startSw4rm(swarm, { host: '127.0.0.1', ports: { router: 0, registry: 0, scheduler: 0 } });
    const ctors = loadPublished();
    router = new ctors.router(`127.0.0.1:${server.ports.router}`, grpc.credentials.createInsecure());
    registry = new ctors.registry(`127.0.0.1:${server.ports.registry}`, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    router?.close();
    registry?.close();
    await server?.close();
    await swarm?.close();
    if (dir) removeProject(dir);
  });

  it('registers, heartbeats, sends, streams, acknowledges delivery, gets redelivery and deregisters', async () => {
    const consumer = `wire-consumer-${randomUUID().slice(0, 8)}`;
    const producer = `wire-producer-${randomUUID().slice(0, 8)}`;
    for (const id of [consumer, producer]) {
      const reg = await call<{ accepted: boolean; reason: string }>(registry, 'RegisterAgent', { agent: { agentId: id, name: id, capabilities: ['wire'], communicationClass: STANDARD } });
      expect(reg).toMatchObject({ accepted: true });
    }
    expect(await call(registry, 'Heartbeat', { agentId: consumer, state: RUNNING, health: { load: 'low' } })).toMatchObject({ ok: true });

    const inbox = reader(router, consumer);
    const producerInbox = reader(router, producer);
    const messageId = randomUUID();
    const payload = Buffer.from(JSON.stringify({ hello: 'published contract' }));
    // As an unchanged published client sends it: no target metadata, so the router picks the other registered agent.
    const envelope = { messageId, idempotencyToken: `tok-${messageId}`, producerId: producer, correlationId: `corr-${messageId}`, sequenceNumber: 1, messageType: DATA, contentType: 'application/json', contentLength: payload.length, payload };
    expect(await call(router, 'SendMessage', { msg: envelope })).toMatchObject({ accepted: true });

    const item = await inbox.next();
    expect(item.msg).toMatchObject({ messageId, producerId: producer, correlationId: `corr-${messageId}`, messageType: DATA, contentType: 'application/json', idempotencyToken: `tok-${messageId}` });
    expect(Buffer.from(item.msg.payload).toString()).toBe(payload.toString());
    const seq = item.seq.toString();
    expect(Number(seq)).toBeGreaterThan(0);
    expect(await call(router, 'AckDelivery', { agentId: consumer, seq, messageId, outcome: DELIVERED })).toMatchObject({ recorded: true });
    // The same delivery again: the router no longer holds it.
    const again = await call<{ recorded?: boolean }>(router, 'AckDelivery', { agentId: consumer, seq, messageId, outcome: DELIVERED });
    expect(again.recorded ?? false).toBe(false);

    // The router's RECEIVED ACK reaches the producer on its own stream, as a JSON ACKNOWLEDGEMENT.
    const ack = await producerInbox.next();
    expect(ack.msg.messageType).toBe(ACKNOWLEDGEMENT);
    const body = JSON.parse(Buffer.from(ack.msg.payload).toString()) as { ack_for_message_id: string; ack_stage: unknown };
    expect(body.ack_for_message_id).toBe(messageId);
    expect(['RECEIVED', 1]).toContain(body.ack_stage);
    await call(router, 'AckDelivery', { agentId: producer, seq: ack.seq.toString(), messageId: ack.msg.messageId, outcome: DELIVERED });

    // Delivered, not acknowledged, stream closed: the consumer's next stream gets it again.
    const second = randomUUID();
    expect(await call(router, 'SendMessage', { msg: { ...envelope, messageId: second, idempotencyToken: `tok-${second}`, sequenceNumber: 2 } })).toMatchObject({ accepted: true });
    expect((await inbox.next()).msg.messageId).toBe(second);
    inbox.close();
    const reopened = reader(router, consumer);
    const redelivered = await reopened.next();
    expect(redelivered.msg.messageId).toBe(second);
    expect(await call(router, 'AckDelivery', { agentId: consumer, seq: redelivered.seq.toString(), messageId: second, outcome: DELIVERED })).toMatchObject({ recorded: true });
    reopened.close();
    producerInbox.close();

    expect(await call(registry, 'DeregisterAgent', { agentId: consumer, reason: 'done' })).toMatchObject({ ok: true });
    expect(await call(registry, 'DeregisterAgent', { agentId: producer, reason: 'done' })).toMatchObject({ ok: true });
  });
});
