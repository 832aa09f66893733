/**
 * A small agent runtime: `runAgent` registers the agent, sends heartbeats, streams its incoming
 * messages (reconnecting), skips what it already handled (message_id / idempotency token), runs the
 * handler for each message type, answers the producer with an ACK (FULFILLED, FAILED or REJECTED),
 * then acknowledges the delivery to the router (AckDelivery) — in that order, so a crash before the
 * AckDelivery means a redelivery that the dedup turns into a second AckDelivery only. `stop()` or
 * SIGTERM ends the stream and deregisters.
 *
 * @example
 *   const agent = await runAgent({
 *     agentId: 'echo-1', name: 'Echo', capabilities: ['echo'],
 *     handlers: { DATA: async (env, ctx) => { await ctx.reply(env.payload); return 'echoed'; } },
 *   });
 *   await agent.done;                    // until SIGTERM or agent.stop()
 */
import { buildAckEnvelope, isAckEnvelope, parseAck, type Ack } from '../core/acks.js';
import { messageTypeName, type ErrorCode, type MessageType } from '../core/constants.js';
import { buildEnvelope, validateEnvelope, type BuildEnvelopeInput, type Envelope } from '../core/envelope.js';
import { RegistryClient, type AgentDescriptorInput, type AgentStateName } from './registry-client.js';
import { RouterClient, type SendOptions, type StreamItem } from './router-client.js';
import { ProcessedSet } from './processed-set.js';

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
 * A handler: its return value (a string, or anything JSON) is the FULFILLED ACK's note. Throw
 * `new AgentReject(code, why)` to answer REJECTED; anything else thrown answers FAILED, INTERNAL_ERROR.
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
  /** handled: the handler ran; duplicate: already handled, only re-acknowledged; ack: an ACK arrived. */
  kind: 'fulfilled' | 'failed' | 'rejected' | 'duplicate' | 'ack';
  note?: string;
  ack?: Ack;
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
  /** Keep the processed-message set in this JSON file (dedup across restarts); default memory only. */
  persistence?: { file: string; max?: number };
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
  const seen = new ProcessedSet(options.persistence ?? {});
  const abort = new AbortController();
  const counts: RunningAgent['counts'] = { fulfilled: 0, failed: 0, rejected: 0, duplicate: 0, ack: 0 };
  const maxPayloadBytes = options.maxPayloadBytes ?? 1024 * 1024;
  let sequence = 0;

  const send = async (input: Omit<BuildEnvelopeInput, 'producer_id'>, sendOptions: SendOptions = {}): Promise<Envelope> => {
    const env = buildEnvelope({ ...input, producer_id: agentId, sequence_number: input.sequence_number ?? ++sequence });
    await router.sendMessage(env, sendOptions);
    return env;
  };

  await registry.register({
    agent_id: agentId,
    name: options.name,
    description: options.description ?? '',
    capabilities: options.capabilities ?? [],
    communication_class: options.communicationClass ?? 'STANDARD',
  });

  let state: AgentStateName = 'RUNNING';
  const beat = async (): Promise<void> => {
    try {
      // A registry that forgot the agent (restarted on another store, or expired it) gets it again.
      if (!(await registry.heartbeat(agentId, state))) await registry.register({ agent_id: agentId, name: options.name, capabilities: options.capabilities ?? [] });
    } catch (e) {
      warn(`heartbeat failed: ${(e as Error).message}`, e);
    }
  };
  const heartbeat = setInterval(() => void beat(), options.heartbeatMs ?? 10_000);
  heartbeat.unref();

  const ackTo = async (env: Envelope, stage: 'FULFILLED' | 'FAILED' | 'REJECTED', note: string, code?: ErrorCode): Promise<void> => {
    if (!env.producer_id || env.producer_id === agentId) return;
    try {
      await router.sendMessage(buildAckEnvelope({ producer_id: agentId, ack_for_message_id: env.message_id, ack_stage: stage, note, correlation_id: env.correlation_id, ...(code ? { error_code: code } : {}) }), { to: env.producer_id });
    } catch (e) {
      warn(`could not send the ${stage} ACK for ${env.message_id} to ${env.producer_id}: ${(e as Error).message}`, e);
    }
  };

  const handle = async (item: StreamItem): Promise<void> => {
    const env = item.msg;
    const done = async (kind: AgentEvent['kind'], outcome: 'DELIVERED' | 'PERMANENT_FAILURE', extra: Partial<AgentEvent> = {}): Promise<void> => {
      if (kind !== 'duplicate' && kind !== 'ack') seen.add(env.message_id, env.idempotency_token);
      counts[kind] += 1;
      options.onMessage?.({ envelope: env, seq: item.seq, kind, ...extra });
      try {
        await router.ackDelivery(agentId, item.seq, env.message_id, outcome);
      } catch (e) {
        // Not fatal: the router redelivers after the lease and the dedup answers it.
        warn(`AckDelivery of ${env.message_id} (seq ${item.seq}) failed: ${(e as Error).message}`, e);
      }
    };
    if (seen.has(env.message_id, env.idempotency_token)) return done('duplicate', 'DELIVERED');
    if (isAckEnvelope(env)) {
      let ack: Ack | undefined;
      try {
        ack = parseAck(env);
      } catch (e) {
        warn(`an invalid ACK ${env.message_id} from ${env.producer_id}: ${(e as Error).message}`);
      }
      return done('ack', 'DELIVERED', ack ? { ack } : {});
    }
    const problems = validateEnvelope(env, { maxPayloadBytes, hlc: false });
    if (problems.length > 0) {
      const note = problems.map((p) => `${p.field}: ${p.message}`).join('; ');
      await ackTo(env, 'REJECTED', note, problems[0]!.code);
      return done('rejected', 'PERMANENT_FAILURE', { note });
    }
    const type = messageTypeName(env.message_type);
    const handler = (type && options.handlers[type]) ?? options.handlers.default;
    if (!handler) {
      const note = `agent ${agentId} has no handler for ${String(type ?? env.message_type)} messages`;
      await ackTo(env, 'REJECTED', note, 'UNSUPPORTED_MESSAGE_TYPE');
      return done('rejected', 'PERMANENT_FAILURE', { note });
    }
    const ctx: AgentContext = {
      agentId,
      signal: abort.signal,
      send,
      reply: (value, o = {}) => {
        const p = payloadOf(value);
        return send({ message_type: o.message_type ?? 'DATA', content_type: o.content_type ?? p.content_type, payload: p.payload, correlation_id: env.correlation_id }, { to: env.producer_id });
      },
    };
    let result: unknown;
    try {
      result = await handler(env, ctx);
    } catch (e) {
      if (e instanceof AgentReject) {
        await ackTo(env, 'REJECTED', e.message, e.errorCode);
        return done('rejected', 'PERMANENT_FAILURE', { note: e.message });
      }
      const note = e instanceof Error ? e.message : String(e);
      await ackTo(env, 'FAILED', note, 'INTERNAL_ERROR');
      return done('failed', 'PERMANENT_FAILURE', { note });
    }
    const note = noteOf(result);
    await ackTo(env, 'FULFILLED', note);
    return done('fulfilled', 'DELIVERED', { note });
  };

  const loop = (async () => {
    const stream = router.streamIncoming(agentId, {
      signal: abort.signal,
      onDisconnect: ({ attempt, delayMs, error }) => warn(`stream ended${error ? ` (${error.message})` : ''}; reconnecting in ${delayMs} ms (attempt ${attempt})`, error),
    });
    for await (const item of stream) await handle(item);
  })();

  let stopping: Promise<void> | undefined;
  const onSignal = (): void => void stop('signal');
  const stop = (reason = 'stopped'): Promise<void> => {
    stopping ??= (async () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      state = 'SHUTTING_DOWN';
      clearInterval(heartbeat);
      abort.abort();
      await loop.catch(() => undefined);
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
  return { agentId, router, registry, counts, send, stop, done };
}
