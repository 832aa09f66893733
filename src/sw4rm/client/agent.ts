/**
 * A small agent runtime: `runAgent` registers the agent, sends heartbeats, streams its incoming
 * messages (reconnecting), and runs each through the protocol core's MessageProcessor — which skips
 * what the agent already finished (message_id / idempotency token, from its ActivityBuffer), runs the
 * handler for the message type and ACKs the producer (RECEIVED, READ, then FULFILLED, FAILED or
 * REJECTED). Only then is the delivery acknowledged to the router (AckDelivery), after the buffer is
 * written when it has a persistence — so a crash before the AckDelivery means a redelivery that the
 * buffer turns into a repeated ACK, not a second run of the handler. `stop()` or SIGTERM ends the
 * stream and deregisters.
 *
 * @example
 *   const agent = await runAgent({
 *     agentId: 'echo-1', name: 'Echo', capabilities: ['echo'],
 *     handlers: { DATA: async (env, ctx) => { await ctx.reply(env.payload); return 'echoed'; } },
 *   });
 *   await agent.done;                    // until SIGTERM or agent.stop()
 */
import { AckLifecycleManager, type RouterLike } from '../core/ack-lifecycle.js';
import { ActivityBuffer } from '../core/activity-buffer.js';
import { MESSAGE_TYPE_NUMBERS, type ErrorCode, type MessageType } from '../core/constants.js';
import { buildEnvelope, type BuildEnvelopeInput, type Envelope } from '../core/envelope.js';
import { Sw4rmProtocolError } from '../core/errors.js';
import { MessageProcessor, type ProcessOutcome } from '../core/message-processor.js';
import type { Sw4rmPersistence } from '../core/persistence.js';
import { RegistryClient, type AgentDescriptorInput, type AgentStateName } from './registry-client.js';
import { RouterClient, type SendOptions, type StreamItem } from './router-client.js';
import { Sw4rmClientError } from './errors.js';

/** What a handler gets besides the envelope. */
export interface AgentContext {
  agentId: string;
  /** Send a message of this agent (producer_id filled in). */
  send(input: Omit<BuildEnvelopeInput, 'producer_id'>, options?: SendOptions): Promise<Envelope>;
  /** Answer the producer of `envelope`: a DATA message in the same conversation (correlation_id). */
  reply(payload: Buffer | string | object, options?: { message_type?: MessageType; content_type?: string }): Promise<Envelope>;
  /** Aborted when the agent stops. */
  signal: AbortSignal;
}

/**
 * A handler: returning (or resolving) answers FULFILLED. Throw `new AgentReject(code, why)` to answer
 * REJECTED; anything else thrown answers FAILED, INTERNAL_ERROR with the error's message.
 */
export type AgentHandler = (envelope: Envelope, ctx: AgentContext) => unknown;

/** Handlers per message type, and `default` for the rest (none: REJECTED, UNSUPPORTED_MESSAGE_TYPE). */
export type AgentHandlers = Partial<Record<MessageType, AgentHandler>> & { default?: AgentHandler };

/** Thrown by a handler to reject a message (a REJECTED ACK with this code; it is not retried). */
export class AgentReject extends Error {
  constructor(
    readonly errorCode: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AgentReject';
  }
}

/** What happened to one delivery (for `onMessage`: logging, tests). */
export interface AgentEvent {
  envelope: Envelope;
  seq: number;
  /** The processor's outcome: fulfilled, failed, rejected, duplicate (finished before: ACKed again), ack. */
  kind: ProcessOutcome['status'];
  outcome: ProcessOutcome;
  /** The handler's result (fulfilled), the error or rejection reason (failed, rejected). */
  note?: string;
}

export interface RunAgentOptions {
  agentId: string;
  name: string;
  capabilities?: string[];
  description?: string;
  communicationClass?: AgentDescriptorInput['communication_class'];
  handlers: AgentHandlers;
  /** Default: a RouterClient at SW4RM_ROUTER_ADDR / localhost:50051. */
  router?: RouterClient;
  /** Default: a RegistryClient at SW4RM_REGISTRY_ADDR / localhost:50052. */
  registry?: RegistryClient;
  /** Heartbeat period (default 10,000 ms). */
  heartbeatMs?: number;
  /**
   * Where the agent's ActivityBuffer lives (e.g. `new JSONFilePersistence('agent.json')`, or
   * `new StorePersistence(swarm.store, agentId)`): what it finished survives a restart, so a
   * redelivery is not handled twice. Default: memory only.
   */
  persistence?: Sw4rmPersistence;
  /** Records the buffer keeps (default 10,000). */
  maxActivity?: number;
  /** Stop on SIGTERM / SIGINT (default true). */
  stopOnSignals?: boolean;
  /** Every delivery's outcome. */
  onMessage?: (event: AgentEvent) => void;
  /** Non-fatal trouble (a heartbeat or an ACK that failed, a reconnection). */
  onWarning?: (message: string, error?: unknown) => void;
  /** Largest payload the runtime accepts before rejecting with OVERSIZE_PAYLOAD (default 1 MiB). */
  maxPayloadBytes?: number;
}

export interface RunningAgent {
  readonly agentId: string;
  readonly router: RouterClient;
  readonly registry: RegistryClient;
  /** Deliveries seen so far, by kind. */
  readonly counts: Record<AgentEvent['kind'], number>;
  /** What the agent sent and received, and the ACK stage each reached. */
  readonly buffer: ActivityBuffer;
  readonly acks: AckLifecycleManager;
  readonly processor: MessageProcessor;
  /** Send as this agent. */
  send(input: Omit<BuildEnvelopeInput, 'producer_id'>, options?: SendOptions): Promise<Envelope>;
  /** End the stream, stop heartbeats, deregister, close the clients. Idempotent. */
  stop(reason?: string): Promise<void>;
  /** Settles when the agent has stopped (rejects if the stream failed for good). */
  readonly done: Promise<void>;
}

function payloadOf(v: Buffer | string | object): { payload: Buffer | string; content_type: string } {
  if (Buffer.isBuffer(v)) return { payload: v, content_type: 'application/octet-stream' };
  if (typeof v === 'string') return { payload: v, content_type: 'text/plain' };
  return { payload: JSON.stringify(v), content_type: 'application/json' };
}

function noteOf(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Register `agentId` and serve its messages until stopped. Resolves once registered; messages are then streamed until `stop()`. */
export async function runAgent(options: RunAgentOptions): Promise<RunningAgent> {
  const { agentId } = options;
  const router = options.router ?? new RouterClient();
  const registry = options.registry ?? new RegistryClient();
  const warn = options.onWarning ?? ((m: string) => console.warn(`[${agentId}] ${m}`));
  const abort = new AbortController();
  const counts: RunningAgent['counts'] = { fulfilled: 0, failed: 0, rejected: 0, duplicate: 0, ack: 0 };
  const maxPayloadBytes = options.maxPayloadBytes ?? 1024 * 1024;
  let sequence = 0;

  const buffer = await ActivityBuffer.open({
    maxItems: options.maxActivity ?? 10_000,
    ...(options.persistence ? { persistence: options.persistence } : {}),
    onError: (e: Error) => warn(`the activity buffer's persistence failed; it now runs in memory: ${e.message}`, e),
  });
  // The core speaks `sendMessage → {accepted, reason}`; the client throws SW4RM_REJECTED instead.
  const routerLike: RouterLike = {
    sendMessage: async (env) => {
      try {
        await router.sendMessage(env);
        return { accepted: true };
      } catch (e) {
        if (e instanceof Sw4rmClientError && e.code === 'SW4RM_REJECTED') return { accepted: false, reason: typeof e.context.reason === 'string' ? e.context.reason : '' };
        throw e;
      }
    },
  };
  const acks = new AckLifecycleManager({ router: routerLike, buffer, agentId });
  const processor = new MessageProcessor(acks, {
    validate: { maxPayloadBytes },
    onAckError: (e, env) => warn(`could not ACK ${env.message_id} to ${env.producer_id}: ${e.message}`, e),
  });

  const send = async (input: Omit<BuildEnvelopeInput, 'producer_id'>, sendOptions: SendOptions = {}): Promise<Envelope> => {
    const env = buildEnvelope({ ...input, producer_id: agentId, sequence_number: input.sequence_number ?? ++sequence });
    // Recorded first, so the ACKs that come back for it apply (and a crash in between is reconciled).
    buffer.recordOutgoing(env);
    await router.sendMessage(env, sendOptions);
    return env;
  };
  const contextFor = (env: Envelope): AgentContext => ({
    agentId,
    signal: abort.signal,
    send,
    reply: (value, o = {}) => {
      const p = payloadOf(value);
      return send({ message_type: o.message_type ?? 'DATA', content_type: o.content_type ?? p.content_type, payload: p.payload, correlation_id: env.correlation_id }, { to: env.producer_id });
    },
  });
  const results = new Map<string, unknown>();
  const wrap =
    (handler: AgentHandler) =>
    async (env: Envelope): Promise<unknown> => {
      try {
        const result = await handler(env, contextFor(env));
        results.set(env.message_id, result);
        return result;
      } catch (e) {
        // The processor answers REJECTED with the code of a protocol error.
        if (e instanceof AgentReject) throw new Sw4rmProtocolError([{ code: e.errorCode, field: 'message', message: e.message }], 'message');
        throw e;
      }
    };
  for (const type of Object.keys(MESSAGE_TYPE_NUMBERS) as MessageType[]) {
    const h = options.handlers[type];
    if (h) processor.registerHandler(type, wrap(h));
  }
  if (options.handlers.default) processor.setDefaultHandler(wrap(options.handlers.default));

  await registry.register({
    agent_id: agentId,
    name: options.name,
    description: options.description ?? '',
    capabilities: options.capabilities ?? [],
    communication_class: options.communicationClass ?? 'STANDARD',
  });

  let state: AgentStateName = 'RUNNING';
  let stopping: Promise<void> | undefined;
  const beat = async (): Promise<void> => {
    try {
      // A registry that forgot the agent (restarted on another store, or expired it) gets it again.
      // …unless it is stopping: a heartbeat in flight when stop() deregistered must not bring it back.
      if (!(await registry.heartbeat(agentId, state)) && !stopping) await registry.register({ agent_id: agentId, name: options.name, capabilities: options.capabilities ?? [] });
    } catch (e) {
      warn(`heartbeat failed: ${(e as Error).message}`, e);
    }
  };
  const heartbeat = setInterval(() => void beat(), options.heartbeatMs ?? 10_000);
  heartbeat.unref();

  const handle = async (item: StreamItem): Promise<void> => {
    const env = item.msg;
    const outcome = await processor.processMessage(env);
    counts[outcome.status] += 1;
    const note =
      outcome.status === 'fulfilled' ? noteOf(results.get(env.message_id)) : outcome.status === 'failed' ? outcome.error.message : outcome.status === 'rejected' ? outcome.reason : undefined;
    results.delete(env.message_id);
    options.onMessage?.({ envelope: env, seq: item.seq, kind: outcome.status, outcome, ...(note !== undefined ? { note } : {}) });
    // What the agent finished is written before the router forgets the delivery.
    await buffer.flush();
    // A failed or rejected message is not retried by redelivery: the router dead-letters it (replayable).
    const delivered = outcome.status === 'fulfilled' || outcome.status === 'duplicate' || outcome.status === 'ack';
    try {
      await router.ackDelivery(agentId, item.seq, env.message_id, delivered ? 'DELIVERED' : 'PERMANENT_FAILURE');
    } catch (e) {
      // Not fatal: the router redelivers after the lease and the buffer answers it as a duplicate.
      warn(`AckDelivery of ${env.message_id} (seq ${item.seq}) failed: ${(e as Error).message}`, e);
    }
  };

  const loop = (async () => {
    const stream = router.streamIncoming(agentId, {
      signal: abort.signal,
      onDisconnect: ({ attempt, delayMs, error }) => warn(`stream ended${error ? ` (${error.message})` : ''}; reconnecting in ${delayMs} ms (attempt ${attempt})`, error),
    });
    for await (const item of stream) await handle(item);
  })();

  const onSignal = (): void => void stop('signal');
  const stop = (reason = 'stopped'): Promise<void> => {
    stopping ??= (async () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      state = 'SHUTTING_DOWN';
      clearInterval(heartbeat);
      abort.abort();
      await loop.catch(() => undefined);
      await buffer.flush().catch(() => undefined);
      try {
        await registry.deregister(agentId, reason);
      } catch (e) {
        warn(`deregister failed: ${(e as Error).message}`, e);
      }
      if (!options.router) router.close();
      if (!options.registry) registry.close();
    })();
    return stopping;
  };
  if (options.stopOnSignals !== false) {
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  // A stream that fails for good (an unimplemented method, a refused agent) stops the agent.
  const done = loop.then(
    () => stop(),
    async (e: unknown) => {
      await stop('stream failed');
      throw e;
    },
  );
  // Failures reach whoever awaits `done`; nobody awaiting must not crash the process.
  done.catch((e: unknown) => warn(`stopped: ${(e as Error).message}`, e));
  void beat();
  return { agentId, router, registry, counts, buffer, acks, processor, send, stop, done };
}
