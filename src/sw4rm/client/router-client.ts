/**
 * A client of the SW4RM RouterService (router.proto): send envelopes, receive this agent's messages
 * as an async iterable that reconnects with backoff, and acknowledge each delivery.
 *
 * @example
 *   const router = new RouterClient();                 // SW4RM_ROUTER_ADDR or localhost:50051
 *   await router.sendMessage(buildEnvelope({ producer_id: 'me', message_type: 'DATA', payload }), { to: 'echo-1' });
 *   for await (const { msg, seq } of router.streamIncoming('echo-1')) {
 *     handle(msg);
 *     await router.ackDelivery('echo-1', seq, msg.message_id);
 *   }
 */
import * as grpc from '@grpc/grpc-js';
import type { Envelope } from '../core/envelope.js';
import { sw4rmProtos } from '../proto.js';
import { ServiceClientBase, type Sw4rmClientOptions } from './base.js';
import { mapGrpcError, Sw4rmClientError } from './errors.js';

/** One delivery of StreamIncoming: the envelope and the router's delivery number to acknowledge. */
export interface StreamItem {
  msg: Envelope;
  seq: number;
}

export interface SendOptions {
  /**
   * The recipient's agent id, sent as gRPC metadata `x-sw4rm-target` (the envelope has no such
   * field). Without it the router sends an ACK to the producer of the acknowledged message and
   * anything else to every other registered agent (docs/sw4rm.md, Router).
   */
  to?: string;
}

/** router.proto DeliveryAckOutcome, shortened: DELIVERED releases the message, PERMANENT_FAILURE dead-letters it. */
export type DeliveryOutcome = 'DELIVERED' | 'PERMANENT_FAILURE';

export interface StreamOptions {
  /** Ends the iteration (and the open stream) when aborted. */
  signal?: AbortSignal;
  /** Reopen the stream when it ends or drops (default true); off, the iteration ends with it. */
  reconnect?: boolean;
  /** First wait before reopening (default 100 ms); doubles per failed attempt up to maxBackoffMs. */
  initialBackoffMs?: number;
  /** Longest wait between attempts (default 5,000 ms). */
  maxBackoffMs?: number;
  /** Called before each reconnection wait (logging). */
  onDisconnect?: (info: { attempt: number; delayMs: number; error?: Sw4rmClientError }) => void;
}

/** Header that names the recipient of SendMessage (the envelope itself has no such field). */
export const SW4RM_TARGET_METADATA = 'x-sw4rm-target';

/** Items buffered before the stream is paused (back-pressure on a slow consumer). */
const HIGH_WATER = 256;

// A stream that fails like this again will fail every time: stop instead of retrying forever.
const FATAL = new Set(['SW4RM_INVALID', 'SW4RM_UNIMPLEMENTED', 'SW4RM_PERMISSION_DENIED', 'SW4RM_NOT_FOUND']);

export class RouterClient extends ServiceClientBase {
  constructor(options: Sw4rmClientOptions = {}) {
    super('router', sw4rmProtos().router.RouterService, options);
  }

  /**
   * Send one envelope; resolves once the router has stored it. A refusal (NO_ROUTE,
   * OVERSIZE_PAYLOAD, TTL_EXPIRED, VALIDATION_ERROR …) fails with SW4RM_REJECTED; its `reason`
   * (in the error's context) starts with the protocol's code.
   */
  async sendMessage(envelope: Envelope, options: SendOptions = {}): Promise<void> {
    const meta = new grpc.Metadata();
    if (options.to) meta.set(SW4RM_TARGET_METADATA, options.to);
    if (envelope.correlation_id) meta.set('x-correlation-id', envelope.correlation_id);
    const res = await this.unary<{ accepted: boolean; reason: string }>('SendMessage', { msg: envelope }, meta);
    if (!res.accepted) {
      throw new Sw4rmClientError('SW4RM_REJECTED', `the router at ${this.address} refused message ${envelope.message_id}${options.to ? ` to '${options.to}'` : ''}: ${res.reason || 'no reason given'}`, {
        ...this.info('SendMessage'),
        reason: res.reason,
      });
    }
  }

  /** Acknowledge delivery `seq` of `messageId` to `agentId`; false when the router no longer holds it. */
  async ackDelivery(agentId: string, seq: number, messageId: string, outcome: DeliveryOutcome = 'DELIVERED'): Promise<boolean> {
    const res = await this.unary<{ recorded: boolean }>('AckDelivery', { agent_id: agentId, seq, message_id: messageId, outcome: `DELIVERY_ACK_OUTCOME_${outcome}` });
    return res.recorded;
  }

  /**
   * `agentId`'s incoming messages, for `for await`. The stream is reopened with exponential backoff
   * when it drops or the router restarts (messages delivered and not acknowledged come again: the
   * consumer deduplicates by message_id / idempotency_token). Ends when `signal` aborts or the loop
   * breaks; fails at once on errors a retry cannot fix (an unknown agent, an unimplemented method).
   */
  async *streamIncoming(agentId: string, options: StreamOptions = {}): AsyncGenerator<StreamItem, void, undefined> {
    const initial = options.initialBackoffMs ?? 100;
    const max = options.maxBackoffMs ?? 5_000;
    let backoff = initial;
    let attempt = 0;
    const signal = options.signal;
    while (!signal?.aborted) {
      const call = (this.client as unknown as { StreamIncoming(req: unknown): grpc.ClientReadableStream<StreamItem> }).StreamIncoming({ agent_id: agentId });
      const queue: StreamItem[] = [];
      let finished = false;
      let failure: unknown;
      let wake: (() => void) | undefined;
      const poke = (): void => {
        const w = wake;
        wake = undefined;
        w?.();
      };
      call.on('data', (item: StreamItem) => {
        queue.push(item);
        if (queue.length >= HIGH_WATER) call.pause();
        poke();
      });
      call.on('error', (e) => {
        failure = e;
        finished = true;
        poke();
      });
      call.on('end', () => {
        finished = true;
        poke();
      });
      const onAbort = (): void => {
        call.cancel();
        poke();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        for (;;) {
          const item = queue.shift();
          if (item) {
            if (queue.length === HIGH_WATER / 2) call.resume();
            backoff = initial;
            attempt = 0;
            yield item;
            continue;
          }
          if (finished || signal?.aborted) break;
          await new Promise<void>((resolve) => (wake = resolve));
        }
      } finally {
        signal?.removeEventListener('abort', onAbort);
        call.cancel();
      }
      if (signal?.aborted) return;
      const error = failure === undefined ? undefined : mapGrpcError(failure, this.info('StreamIncoming'));
      if (error && FATAL.has(error.code)) throw error;
      if (options.reconnect === false) {
        if (error) throw error;
        return;
      }
      attempt += 1;
      // Jitter keeps a fleet of agents from reconnecting in lockstep after a router restart.
      const delayMs = Math.round(backoff * (0.5 + Math.random() / 2));
      options.onDisconnect?.({ attempt, delayMs, error });
      await sleep(delayMs, signal);
      backoff = Math.min(max, backoff * 2);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
