/**
 * A SW4RM agent for tests, speaking the wire contract with raw gRPC clients: registered, streaming,
 * acknowledging every delivery, answering each message with `handle` (ACKs, replies).
 */
import * as grpc from '@grpc/grpc-js';
import { buildAckEnvelope } from '../../src/sw4rm/core/acks.js';
import type { AckStage, ErrorCode, MessageType } from '../../src/sw4rm/core/constants.js';
import { buildEnvelope } from '../../src/sw4rm/core/envelope.js';
import { sw4rmProtos } from '../../src/sw4rm/proto.js';

export interface Envelope {
  message_id: string;
  idempotency_token: string;
  producer_id: string;
  correlation_id: string;
  message_type: string;
  content_type: string;
  payload: Buffer;
}

export type Handler = (env: Envelope, peer: Peer) => void | Promise<void>;
type Cb<T> = (err: Error | null, res: T) => void;
interface RouterStub extends grpc.Client {
  SendMessage(req: unknown, meta: grpc.Metadata, cb: Cb<{ accepted: boolean; reason: string }>): void;
  StreamIncoming(req: { agent_id: string }): grpc.ClientReadableStream<{ msg: Envelope; seq: number }>;
  AckDelivery(req: unknown, cb: Cb<unknown>): void;
}
interface RegistryStub extends grpc.Client {
  RegisterAgent(req: unknown, cb: Cb<{ accepted: boolean; reason: string }>): void;
}

/** A SW4RM agent on the router: registered, streaming, acknowledging every delivery. */
export class Peer {
  readonly received: Envelope[] = [];
  private readonly router: RouterStub;
  private stream: grpc.ClientReadableStream<{ msg: Envelope; seq: number }> | undefined;

  constructor(
    private readonly ports: { router: number; registry: number },
    readonly id: string,
    private readonly handle: Handler,
  ) {
    const p = sw4rmProtos();
    this.router = new p.router.RouterService(`127.0.0.1:${ports.router}`, grpc.credentials.createInsecure()) as never;
  }

  async start(): Promise<void> {
    const p = sw4rmProtos();
    const registry = new p.registry.RegistryService(`127.0.0.1:${this.ports.registry}`, grpc.credentials.createInsecure()) as unknown as RegistryStub;
    await new Promise<void>((resolve, reject) => {
      registry.RegisterAgent({ agent: { agent_id: this.id, name: this.id, capabilities: ['test'], communication_class: 'STANDARD' } }, (err) => (err ? reject(err) : resolve()));
    });
    registry.close();
    const s = this.router.StreamIncoming({ agent_id: this.id });
    this.stream = s;
    s.on('error', () => undefined);
    s.on('data', (item: { msg: Envelope; seq: number }) => {
      void (async () => {
        await new Promise((resolve) => this.router.AckDelivery({ agent_id: this.id, seq: item.seq, message_id: item.msg.message_id, outcome: 'DELIVERY_ACK_OUTCOME_DELIVERED' }, () => resolve(undefined)));
        if (item.msg.message_type === 'ACKNOWLEDGEMENT') return;
        this.received.push(item.msg);
        await this.handle(item.msg, this);
      })();
    });
  }

  send(msg: object, target?: string): Promise<{ accepted: boolean; reason: string }> {
    const meta = new grpc.Metadata();
    if (target) meta.set('x-sw4rm-target', target);
    return new Promise((resolve, reject) => {
      this.router.SendMessage({ msg }, meta, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  /** ACK `env` at `stage`, enums as numbers as the published SDKs write them (to its producer: the router's rule for ACKs). */
  ack(env: Envelope, stage: AckStage, errorCode?: ErrorCode, note = ''): Promise<{ accepted: boolean; reason: string }> {
    return this.send(buildAckEnvelope({ producer_id: this.id, ack_for_message_id: env.message_id, ack_stage: stage, ...(errorCode ? { error_code: errorCode } : {}), note, correlation_id: env.correlation_id }));
  }

  /** Reply to `env`: correlated to it, addressed to its producer. */
  reply(env: Envelope, body: unknown, type: MessageType = 'DATA'): Promise<{ accepted: boolean; reason: string }> {
    return this.send(buildEnvelope({ producer_id: this.id, message_type: type, correlation_id: env.correlation_id, payload: JSON.stringify(body) }), env.producer_id);
  }

  close(): void {
    this.stream?.cancel();
    this.router.close();
  }
}

