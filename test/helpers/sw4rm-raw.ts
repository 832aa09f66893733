/**
 * Raw @grpc/grpc-js clients of the SW4RM Router and Registry for tests (no SDK): promise wrappers
 * and an inbound stream that collects its items.
 */
import * as grpc from '@grpc/grpc-js';
import { buildEnvelope, type BuildEnvelopeInput, type Envelope } from '../../src/sw4rm/core/envelope.js';
import { sw4rmProtos } from '../../src/sw4rm/proto.js';

export interface Item {
  msg: Envelope;
  seq: number;
}

export interface Inbound {
  items: Item[];
  /** Resolves once `n` items have arrived in all (liveness bound `ms`). */
  waitFor(n: number, ms?: number): Promise<Item[]>;
  ended: Promise<void>;
  cancel(): void;
}

export function rawClients(routerAddr: string, registryAddr?: string) {
  const p = sw4rmProtos();
  const router = new p.router.RouterService(routerAddr, grpc.credentials.createInsecure()) as unknown as Record<string, (...a: unknown[]) => unknown> & grpc.Client;
  const registry = registryAddr ? (new p.registry.RegistryService(registryAddr, grpc.credentials.createInsecure()) as unknown as Record<string, (...a: unknown[]) => unknown> & grpc.Client) : undefined;
  const unary = <T>(c: Record<string, (...a: unknown[]) => unknown>, m: string, req: unknown, meta = new grpc.Metadata()): Promise<T> =>
    new Promise((resolve, reject) => {
      c[m]?.(req, meta, (err: Error | null, res: T) => (err ? reject(err) : resolve(res)));
    });
  return {
    send(msg: unknown, target?: string): Promise<{ accepted: boolean; reason: string }> {
      const meta = new grpc.Metadata();
      if (target) meta.set('x-sw4rm-target', target);
      return unary(router, 'SendMessage', { msg }, meta);
    },
    /** A SendMessageRequest as raw bytes (malformed input). */
    sendRaw(bytes: Buffer): Promise<{ accepted: boolean; reason: string }> {
      return new Promise((resolve, reject) => {
        router.makeUnaryRequest('/sw4rm.router.RouterService/SendMessage', (b: Buffer) => b, (b: Buffer) => (p.router.RouterService.service.SendMessage as grpc.MethodDefinition<unknown, unknown>).responseDeserialize(b) as { accepted: boolean; reason: string }, bytes, (err: Error | null, res?: { accepted: boolean; reason: string }) => (err ? reject(err) : resolve(res as { accepted: boolean; reason: string })));
      });
    },
    ack(agent_id: string, seq: number, message_id = '', outcome: 'DELIVERY_ACK_OUTCOME_DELIVERED' | 'DELIVERY_ACK_OUTCOME_PERMANENT_FAILURE' = 'DELIVERY_ACK_OUTCOME_DELIVERED'): Promise<{ recorded: boolean }> {
      return unary(router, 'AckDelivery', { agent_id, seq, message_id, outcome });
    },
    stream(agent_id: string): Inbound {
      const call = (router as unknown as { StreamIncoming(r: unknown): grpc.ClientReadableStream<Item> }).StreamIncoming({ agent_id });
      const items: Item[] = [];
      const waiters: Array<() => void> = [];
      call.on('data', (it: Item) => {
        items.push(it);
        for (const w of waiters.splice(0)) w();
      });
      const ended = new Promise<void>((resolve) => {
        call.on('end', resolve);
        call.on('error', () => resolve());
      });
      return {
        items,
        ended,
        cancel: () => call.cancel(),
        waitFor(n: number, ms = 10_000): Promise<Item[]> {
          return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`${agent_id}: ${items.length} of ${n} items within ${ms} ms`)), ms);
            const check = (): void => {
              if (items.length >= n) {
                clearTimeout(timer);
                resolve(items);
              } else waiters.push(check);
            };
            check();
          });
        },
      };
    },
    register(agent_id: string, name = agent_id, extra: Record<string, unknown> = {}): Promise<{ accepted: boolean; reason: string }> {
      if (!registry) throw new Error('no registry address');
      return unary(registry, 'RegisterAgent', { agent: { agent_id, name, ...extra } });
    },
    heartbeat(agent_id: string, state = 'RUNNING', health: Record<string, string> = {}): Promise<{ ok: boolean }> {
      if (!registry) throw new Error('no registry address');
      return unary(registry, 'Heartbeat', { agent_id, state, health });
    },
    deregister(agent_id: string, reason = ''): Promise<{ ok: boolean }> {
      if (!registry) throw new Error('no registry address');
      return unary(registry, 'DeregisterAgent', { agent_id, reason });
    },
    close(): void {
      router.close();
      registry?.close();
    },
  };
}

export function env(producer_id: string, extra: Partial<BuildEnvelopeInput> = {}): Envelope {
  return buildEnvelope({ producer_id, message_type: 'DATA', content_type: 'application/json', payload: JSON.stringify({ n: Math.random() }), ...extra });
}
