/**
 * One request over the SW4RM router, from inside Swarm: listen on our own agent id, send one
 * message to `to`, and wait for its FULFILLED ACK or for a reply correlated to it. Shared by the
 * `sw4rm` workflow runtime (executor.ts) and the `sw4rm` tool of llm agents (tool.ts).
 *
 * Why it survives a crash: every id comes from what a retry keeps (ids.ts). The resend carries the
 * first send's idempotency token, so the router stores it once; the retry streams the same agent id,
 * so an ACK or reply that arrived while nobody listened is delivered to it.
 *
 * @example
 *   const out = await exchange({ router: '127.0.0.1:50051', to: 'translator', identity, messageType: 'DATA',
 *     payload: { text: 'hello' }, wait: 'reply', waitMs: 30_000, signal });
 *   if (out.kind === 'reply') console.log(out.payload);
 */
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../../core/errors.js';
import type { Sw4rmSendType, Sw4rmWaitMode } from '../../core/manifest/sw4rm-runtime.js';
import { readAckPayload, type Ack } from '../core/acks.js';
import { buildEnvelope } from '../core/envelope.js';
import { sw4rmProtos } from '../proto.js';
import type { ExchangeIdentity } from './ids.js';

/** The gRPC metadata key naming a message's recipient (the router's rule, docs/sw4rm.md#router). */
export const TARGET_METADATA = 'x-sw4rm-target';
/** Reopening our stream after the router ended it (a restart): at most this often. */
const RESTREAM_DELAY_MS = 250;
const SEND_DEADLINE_MS = 10_000;

export interface ExchangeRequest {
  /** `host:port` of the RouterService. */
  router: string;
  /** The recipient's agent id. */
  to: string;
  identity: ExchangeIdentity;
  messageType: Sw4rmSendType;
  /** Sent as application/json. */
  payload: unknown;
  wait: Sw4rmWaitMode;
  /** How long to wait for the ACK or reply once the message is accepted. */
  waitMs: number;
  signal: AbortSignal;
  /** The envelope's retry_count (attempts before this one). */
  retryCount?: number;
}

export type ExchangeOutcome =
  | { kind: 'fulfilled'; messageId: string; ack: Ack }
  | { kind: 'reply'; messageId: string; messageType: string; contentType: string; payload: unknown };

/**
 * Why an exchange did not succeed: `code` is one of SW4RM_REJECTED, SW4RM_FAILED, SW4RM_TIMED_OUT,
 * SW4RM_TOOL_ERROR, SW4RM_ACK_TIMEOUT, SW4RM_NO_ROUTE, SW4RM_NOT_ACCEPTED, SW4RM_UNAVAILABLE;
 * `retryable` says whether trying again later may succeed.
 */
export class ExchangeError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly context: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ExchangeError';
  }
}

/** Refusals of SendMessage that no retry can change. */
const PERMANENT_REFUSALS = new Set(['VALIDATION_ERROR', 'OVERSIZE_PAYLOAD', 'PERMISSION_DENIED', 'UNSUPPORTED_MESSAGE_TYPE', 'TTL_EXPIRED']);

/** The ACK an ACKNOWLEDGEMENT envelope's payload carries; undefined when it carries none. */
export function readAck(payload: Buffer): Ack | undefined {
  let obj: unknown;
  try {
    obj = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  const r = readAckPayload(obj);
  return 'ack' in r ? r.ack : undefined;
}

/** A payload as a step output or tool result: JSON parsed when it says JSON, else text. */
export function decodePayload(payload: Buffer, contentType: string): unknown {
  const text = payload.toString('utf8');
  if (/json/i.test(contentType)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

interface Envelope {
  message_id: string;
  producer_id: string;
  correlation_id: string;
  message_type: string;
  content_type: string;
  payload: Buffer;
}
interface StreamItem {
  msg: Envelope | null;
  seq: number;
}
type Callback<T> = (err: grpc.ServiceError | null, res?: T) => void;
interface RouterStub extends grpc.Client {
  SendMessage(req: { msg: Record<string, unknown> }, meta: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<{ accepted: boolean; reason: string }>): void;
  StreamIncoming(req: { agent_id: string }): grpc.ClientReadableStream<StreamItem>;
  AckDelivery(req: { agent_id: string; seq: number; message_id: string; outcome: string }, opts: grpc.CallOptions, cb: Callback<{ recorded: boolean }>): void;
}

/** The envelope of our request; its message id is the attempt's own (ids.ts), not a random one. */
function requestEnvelope(req: ExchangeRequest, messageId: string): Record<string, unknown> {
  const env = buildEnvelope({
    producer_id: req.identity.agentId,
    message_type: req.messageType,
    content_type: 'application/json',
    payload: JSON.stringify(req.payload ?? null),
    correlation_id: req.identity.correlationId,
    idempotency_token: req.identity.idempotencyToken,
    retry_count: req.retryCount ?? 0,
  });
  return { ...env, message_id: messageId };
}

function sendFailure(e: grpc.ServiceError, router: string): ExchangeError {
  const permanent = e.code === grpc.status.INVALID_ARGUMENT || e.code === grpc.status.PERMISSION_DENIED || e.code === grpc.status.RESOURCE_EXHAUSTED;
  const code = permanent ? 'SW4RM_NOT_ACCEPTED' : 'SW4RM_UNAVAILABLE';
  return new ExchangeError(code, `the SW4RM router at ${router} did not take the message: ${e.details || e.message}`, !permanent, { router, grpc_code: e.code });
}

function refusal(reason: string, req: ExchangeRequest): ExchangeError {
  const code = /^([A-Z_]+)\b/.exec(reason)?.[1] ?? '';
  const context = { router: req.router, to: req.to, error_code: code, reason };
  if (code === 'NO_ROUTE' || code === 'AGENT_UNAVAILABLE' || code === 'AGENT_SHUTDOWN') {
    return new ExchangeError('SW4RM_NO_ROUTE', `the router has no route to agent '${req.to}' (${reason}); is it registered and running?`, true, context);
  }
  return new ExchangeError('SW4RM_NOT_ACCEPTED', `the router refused the message to '${req.to}': ${reason || 'no reason given'}`, !PERMANENT_REFUSALS.has(code), context);
}

function ackFailure(ack: Ack, req: ExchangeRequest): ExchangeError {
  const code = ack.ack_stage === 'REJECTED' ? 'SW4RM_REJECTED' : ack.ack_stage === 'TIMED_OUT' ? 'SW4RM_TIMED_OUT' : 'SW4RM_FAILED';
  const what = ack.ack_stage === 'REJECTED' ? 'rejected' : ack.ack_stage === 'TIMED_OUT' ? 'timed out on' : 'failed';
  const detail = [ack.error_code && ack.error_code !== 'ERROR_CODE_UNSPECIFIED' ? ack.error_code : '', ack.note].filter(Boolean).join(': ');
  return new ExchangeError(code, `agent '${req.to}' ${what} the message${detail ? ` (${detail})` : ''}`, false, { to: req.to, ack_stage: ack.ack_stage, error_code: ack.error_code, note: ack.note, message_id: ack.ack_for_message_id });
}

/**
 * Send one message and wait for the outcome. Throws `ExchangeError`, or the signal's reason when
 * aborted. Every item read from our stream is acknowledged to the router (the stream is ours alone).
 */
export async function exchange(req: ExchangeRequest): Promise<ExchangeOutcome> {
  req.signal.throwIfAborted();
  const { router } = sw4rmProtos();
  const client = new router.RouterService(req.router, grpc.credentials.createInsecure()) as unknown as RouterStub;
  const ids = req.identity;
  const mine = new Set(ids.messageIds);
  const messageId = ids.messageIds[ids.messageIds.length - 1] as string;
  let stream: grpc.ClientReadableStream<StreamItem> | undefined;
  let restreamTimer: NodeJS.Timeout | undefined;
  let lastStreamError: string | undefined;
  let fulfilled: Ack | undefined;
  try {
    return await new Promise<ExchangeOutcome>((resolve, reject) => {
      let settled = false;
      let waitTimer: NodeJS.Timeout | undefined;
      const finish = (f: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(waitTimer);
        clearTimeout(restreamTimer);
        req.signal.removeEventListener('abort', onAbort);
        stream?.cancel();
        f();
      };
      const onAbort = (): void => finish(() => reject(req.signal.reason as Error));
      req.signal.addEventListener('abort', onAbort, { once: true });

      const ackDelivery = (item: StreamItem): Promise<void> =>
        new Promise((done) => {
          client.AckDelivery({ agent_id: ids.agentId, seq: item.seq, message_id: item.msg?.message_id ?? '', outcome: 'DELIVERY_ACK_OUTCOME_DELIVERED' }, { deadline: Date.now() + SEND_DEADLINE_MS }, () => done());
        });

      const outcomeOf = (env: Envelope): ExchangeOutcome | ExchangeError | undefined => {
        if (env.message_type === 'ACKNOWLEDGEMENT') {
          const ack = readAck(env.payload);
          if (!ack || !mine.has(ack.ack_for_message_id)) return undefined;
          if (ack.ack_stage === 'REJECTED' || ack.ack_stage === 'FAILED' || ack.ack_stage === 'TIMED_OUT') return ackFailure(ack, req);
          if (ack.ack_stage !== 'FULFILLED') return undefined;
          fulfilled = ack;
          return req.wait === 'fulfilled' ? { kind: 'fulfilled', messageId: ack.ack_for_message_id, ack } : undefined;
        }
        if (req.wait !== 'reply' || env.correlation_id !== ids.correlationId) return undefined;
        const payload = decodePayload(env.payload, env.content_type);
        if (env.message_type === 'TOOL_ERROR') {
          const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
          return new ExchangeError('SW4RM_TOOL_ERROR', `agent '${req.to}' answered with TOOL_ERROR: ${text}`, false, { to: req.to, reply: payload });
        }
        return { kind: 'reply', messageId: env.message_id, messageType: env.message_type, contentType: env.content_type, payload };
      };

      const onItem = async (item: StreamItem): Promise<void> => {
        const out = item.msg ? outcomeOf(item.msg) : undefined;
        // Acknowledged before the step commits: a crash in between loses this ACK (docs/sw4rm.md).
        await ackDelivery(item);
        if (out instanceof ExchangeError) finish(() => reject(out));
        else if (out) finish(() => resolve(out));
      };

      const open = (): void => {
        if (settled) return;
        const s = client.StreamIncoming({ agent_id: ids.agentId });
        stream = s;
        s.on('data', (item: StreamItem) => void onItem(item));
        const again = (e?: grpc.ServiceError): void => {
          if (settled || stream !== s) return;
          if (e) lastStreamError = e.details || e.message;
          restreamTimer = setTimeout(open, RESTREAM_DELAY_MS);
        };
        s.on('error', (e: grpc.ServiceError) => again(e));
        s.on('end', () => again());
      };
      open();

      const meta = new grpc.Metadata();
      meta.set(TARGET_METADATA, req.to);
      meta.set('x-correlation-id', ids.correlationId);
      client.SendMessage({ msg: requestEnvelope(req, messageId) }, meta, { deadline: Date.now() + SEND_DEADLINE_MS }, (err, res) => {
        if (settled) return;
        if (err) return finish(() => reject(sendFailure(err, req.router)));
        // A resend the router recognises as a duplicate is the first send: wait for its outcome.
        if (!res?.accepted && !/DUPLICATE/i.test(res?.reason ?? '')) return finish(() => reject(refusal(res?.reason ?? '', req)));
        waitTimer = setTimeout(() => {
          finish(() => {
            const seconds = req.waitMs / 1000;
            if (fulfilled) reject(new ExchangeError('SW4RM_ACK_TIMEOUT', `agent '${req.to}' fulfilled the message but sent no reply within ${seconds}s`, true, { to: req.to, message_id: messageId }));
            else {
              const cause = lastStreamError ? `; the router stream failed: ${lastStreamError}` : '';
              reject(new ExchangeError('SW4RM_ACK_TIMEOUT', `no ${req.wait === 'reply' ? 'reply' : 'FULFILLED ACK'} from agent '${req.to}' within ${seconds}s${cause}`, true, { to: req.to, message_id: messageId }));
            }
          });
        }, req.waitMs);
      });
    });
  } catch (e) {
    if (e instanceof ExchangeError || req.signal.aborted) throw e;
    throw new ExchangeError('SW4RM_UNAVAILABLE', `talking to the SW4RM router at ${req.router}: ${errorMessage(e)}`, true, { router: req.router });
  } finally {
    clearTimeout(restreamTimer);
    client.close();
  }
}
