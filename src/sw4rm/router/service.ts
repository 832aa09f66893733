/**
 * The SW4RM RouterService (router.proto): SendMessage, StreamIncoming, AckDelivery, with messages
 * stored before SendMessage answers, leases, redelivery, TTL, dedup and dead letters
 * (docs/sw4rm.md, "Router").
 *
 * @example
 *   const handle = addRouterService(server, { swarm, options: SW4RM_DEFAULTS, now: Date.now });
 *   await handle.close();
 */
import * as grpc from '@grpc/grpc-js';
import type { Sw4rmAckItem, Sw4rmMessageRow, Sw4rmSendItem, Sw4rmSendOutcome } from '../../store/sw4rm-router-types.js';
import { buildAckEnvelope, readAckPayload } from '../core/acks.js';
import type { Envelope } from '../core/envelope.js';
import { sw4rmProtos } from '../proto.js';
import { agentIdProblem } from '../registry/service.js';
import type { Sw4rmServiceDeps, Sw4rmServiceHandle } from '../service-types.js';
import { Batcher } from './batcher.js';
import { AgentStream } from './streams.js';
import { checkEnvelope, expiresAt } from './validate.js';
import { envelopeBytes } from './wire.js';

/** The gRPC metadata key naming a message's recipient (docs/sw4rm.md, "Who receives a message"). */
export const TARGET_METADATA = 'x-sw4rm-target';
/** The producer_id of the ACK envelopes the router itself sends. */
export const ROUTER_PRODUCER_ID = 'sw4rm-router';

type Decoded = { req: { msg: Envelope | null }; raw: Buffer } | { malformed: string };
type SendAnswer = { accepted: boolean; reason: string };

interface Reservation {
  recipient: string;
  stream: AgentStream;
}

/** How often leases, TTLs and (for other processes' sends) the queues are looked at. */
function tickMs(leaseMs: number): number {
  return Math.max(20, Math.min(500, Math.floor(leaseMs / 4)));
}

export function addRouterService(server: grpc.Server, deps: Sw4rmServiceDeps): Sw4rmServiceHandle {
  const { options: o } = deps;
  const store = deps.swarm.store;
  const protos = sw4rmProtos();
  const base = protos.router.RouterService.service;
  const sendDef = base.SendMessage as grpc.MethodDefinition<unknown, unknown>;
  const streamDef = base.StreamIncoming as grpc.MethodDefinition<unknown, unknown>;
  const streams = new Map<string, AgentStream>();
  // A store call that fails in the background (claim, sweep) is retried by the next tick: warn (at
  // most every 10 s) rather than throw into the event loop.
  let warnedAt = 0;
  const onError = (e: unknown): void => {
    if (deps.now() - warnedAt < 10_000) return;
    warnedAt = deps.now();
    process.emitWarning(`SW4RM router: a store call failed, retrying: ${(e as Error).message}`);
  };

  const encode = (env: Envelope): Buffer => envelopeBytes(sendDef.requestSerialize({ msg: env }));

  const claim = (agentId: string, limit: number): Promise<Sw4rmMessageRow[]> => {
    const now = deps.now();
    return store.sw4rmClaim(agentId, limit, now, now + o.leaseMs);
  };

  const sends = new Batcher<Omit<Sw4rmSendItem, 'direct'>, Sw4rmSendOutcome>(async (items) => {
    const reserved: Reservation[] = [];
    const direct = (recipient: string): boolean => {
      const s = streams.get(recipient);
      if (!s?.reserveDirect()) return false;
      reserved.push({ recipient, stream: s });
      return true;
    };
    const now = deps.now();
    try {
      const out = await store.sw4rmSend(
        items.map((it) => ({ ...it, direct })),
        now + o.leaseMs,
      );
      const kicked = new Set<string>();
      for (const r of out) {
        if (r.status !== 'stored') continue;
        for (const d of r.deliveries) {
          if (d.state === 'in_flight') reserved.find((x) => x.recipient === d.recipient)?.stream.write(d);
          else kicked.add(d.recipient);
        }
      }
      for (const k of kicked) streams.get(k)?.kick();
      return out;
    } finally {
      for (const r of reserved) r.stream.endDirect();
    }
  });

  const acks = new Batcher<Sw4rmAckItem, boolean>((items) => store.sw4rmAck(items, deps.now()));

  async function sendMessage(decoded: Decoded, target: string | null): Promise<SendAnswer> {
    if ('malformed' in decoded) return { accepted: false, reason: `VALIDATION_ERROR: the request is not a SendMessageRequest (${decoded.malformed})` };
    const env = decoded.req.msg;
    const now = deps.now();
    const bad = checkEnvelope(env, o, now);
    if (bad || !env) return { accepted: false, reason: `${bad?.code ?? 'VALIDATION_ERROR'}: ${bad?.message ?? 'no envelope'}` };
    const isAck = env.message_type === 'ACKNOWLEDGEMENT';
    let ackFor: string | null = null;
    if (isAck && target === null) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(env.payload.toString('utf8'));
      } catch {
        return { accepted: false, reason: `VALIDATION_ERROR: payload of ACK ${env.message_id} is not JSON, so the router cannot tell whose message it acknowledges (name the recipient in metadata ${TARGET_METADATA})` };
      }
      const r = readAckPayload(parsed);
      if ('problems' in r) return { accepted: false, reason: `VALIDATION_ERROR: payload of ACK ${env.message_id}: ${r.problems.map((p) => `${p.field} ${p.message}`).join('; ')}` };
      ackFor = r.ack.ack_for_message_id;
    }
    const receipt = isAck
      ? null
      : (() => {
          const ack = buildAckEnvelope({ producer_id: ROUTER_PRODUCER_ID, ack_for_message_id: env.message_id, ack_stage: 'RECEIVED', correlation_id: env.correlation_id, note: 'stored by the router', timestamp: now });
          return { message_id: ack.message_id, envelope: encode(ack) };
        })();
    const out = await sends.push({
      message_id: env.message_id,
      producer_id: env.producer_id,
      message_type: env.message_type,
      idempotency_token: env.idempotency_token || null,
      target,
      ack_for: ackFor,
      envelope: envelopeBytes(decoded.raw),
      created_at: now,
      expires_at: expiresAt(env, now),
      dedup_until: now + o.dedupWindowMs,
      receipt,
    });
    if (out.status === 'no_route') return { accepted: false, reason: `NO_ROUTE: ${out.reason}` };
    if (out.status === 'duplicate') return { accepted: true, reason: `duplicate: already accepted as message ${out.message_id}; nothing stored again` };
    return { accepted: true, reason: '' };
  }

  const def: grpc.ServiceDefinition = {
    ...base,
    SendMessage: {
      ...sendDef,
      requestDeserialize: (buf: Buffer): Decoded => {
        try {
          return { req: sendDef.requestDeserialize(buf) as { msg: Envelope | null }, raw: buf };
        } catch (e) {
          return { malformed: (e as Error).message };
        }
      },
    },
    StreamIncoming: {
      ...streamDef,
      // Items are written as bytes made from the stored envelope (wire.ts); objects still work.
      responseSerialize: (v: unknown): Buffer => (Buffer.isBuffer(v) ? v : streamDef.responseSerialize(v)),
    },
  };

  const handlers: grpc.UntypedServiceImplementation = {
    SendMessage(call: grpc.ServerUnaryCall<Decoded, SendAnswer>, cb: grpc.sendUnaryData<SendAnswer>) {
      const t = call.metadata.get(TARGET_METADATA)[0];
      const target = typeof t === 'string' && t.trim() !== '' ? t.trim() : null;
      if (target?.includes('\u0000')) {
        cb(null, { accepted: false, reason: `VALIDATION_ERROR: metadata ${TARGET_METADATA} must not contain a NUL character` });
        return;
      }
      sendMessage(call.request, target).then(
        (a) => cb(null, a),
        (e: unknown) => cb({ code: grpc.status.UNAVAILABLE, details: `INTERNAL_ERROR: the router could not store the message: ${(e as Error).message}` }),
      );
    },
    StreamIncoming(call: grpc.ServerWritableStream<{ agent_id: string }, unknown>) {
      const agentId = call.request.agent_id;
      const problem = agentIdProblem(agentId, 'StreamRequest.agent_id');
      if (problem) {
        call.destroy(Object.assign(new Error(problem), { code: grpc.status.INVALID_ARGUMENT }));
        return;
      }
      // One stream per agent: a new one replaces the old (a consumer that reconnects).
      streams.get(agentId)?.end();
      const s = new AgentStream(agentId, call, claim, onError);
      streams.set(agentId, s);
      s.hold();
      const gone = (): void => {
        s.closed = true;
        if (streams.get(agentId) === s) streams.delete(agentId);
      };
      call.on('cancelled', gone);
      call.on('close', gone);
      call.on('error', gone);
      const now = deps.now();
      store
        .sw4rmEnsureAgent(agentId, now)
        .then(() => store.sw4rmTouchAgents([agentId], now))
        .then(() => store.sw4rmRequeue(agentId, o.maxAttempts, now))
        .then(
          () => s.release(),
          (e: unknown) => {
            onError(e);
            s.release();
          },
        );
    },
    AckDelivery(call: grpc.ServerUnaryCall<{ agent_id: string; seq: number; message_id: string; outcome: string }, { recorded: boolean }>, cb: grpc.sendUnaryData<{ recorded: boolean }>) {
      const r = call.request;
      if (!r.agent_id || !(r.seq > 0)) {
        cb({ code: grpc.status.INVALID_ARGUMENT, details: `VALIDATION_ERROR: DeliveryAckRequest needs agent_id and a seq from a StreamItem (got agent_id '${r.agent_id}', seq ${r.seq})` });
        return;
      }
      const outcome = r.outcome === 'DELIVERY_ACK_OUTCOME_PERMANENT_FAILURE' || (r.outcome as unknown) === 1 ? 'permanent_failure' : 'delivered';
      acks.push({ recipient: r.agent_id, seq: r.seq, message_id: r.message_id ?? '', outcome }).then(
        (recorded) => cb(null, { recorded }),
        (e: unknown) => cb({ code: grpc.status.UNAVAILABLE, details: `INTERNAL_ERROR: the router could not record the ack: ${(e as Error).message}` }),
      );
    },
  };
  server.addService(def, handlers);

  let sweeping = false;
  let touchedAt = 0;
  const timer = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    const now = deps.now();
    const touch = streams.size > 0 && now - touchedAt >= o.heartbeatTimeoutMs / 4 ? [...streams.keys()] : [];
    if (touch.length > 0) touchedAt = now;
    (touch.length > 0 ? store.sw4rmTouchAgents(touch, now) : Promise.resolve())
      .then(() => store.sw4rmSweep(now, o.maxAttempts, now - o.dedupWindowMs))
      .then((r) => {
        for (const id of r.requeued) streams.get(id)?.kick();
      }, onError)
      .finally(() => {
        sweeping = false;
        // Sends from other processes on the same store are found by this poll.
        for (const s of streams.values()) s.kick();
      });
  }, tickMs(Math.min(o.leaseMs, o.heartbeatTimeoutMs)));
  timer.unref();

  return {
    close: async () => {
      clearInterval(timer);
      for (const s of streams.values()) s.end();
      streams.clear();
    },
  };
}
