/**
 * The scheduler port's gRPC plumbing: async handlers with Swarm's errors mapped to gRPC statuses
 * (the message starts with the stable code; trailers carry `swarm-error-code` and the protocol's
 * `sw4rm-error-code`), metadata, durations and waits.
 *
 * @example
 *   server.addService(svc, { SubmitTask: unary(async (req) => ({ accepted: true })) });
 */
import * as grpc from '@grpc/grpc-js';
import { SwarmError } from '../../core/errors.js';

const STATUS_BY_SUFFIX: Array<[RegExp, grpc.status, string]> = [
  [/_INVALID$|_REQUIRED$|^SW4RM_EMPTY_VOTES$|^INPUT_INVALID$|^LIMIT_EXCEEDED$/, grpc.status.INVALID_ARGUMENT, 'VALIDATION_ERROR'],
  [/_UNKNOWN$|NOT_FOUND$/, grpc.status.NOT_FOUND, 'VALIDATION_ERROR'],
  [/_EXISTS$/, grpc.status.ALREADY_EXISTS, 'VALIDATION_ERROR'],
  [/_CLOSED$|_DECIDED$|_NOT_PENDING$/, grpc.status.FAILED_PRECONDITION, 'VALIDATION_ERROR'],
  [/^SW4RM_NOT_A_/, grpc.status.PERMISSION_DENIED, 'PERMISSION_DENIED'],
  [/_ABANDONED$/, grpc.status.CANCELLED, 'ACK_TIMEOUT'],
];

/** A thrown error as a gRPC status error. */
export function toServiceError(e: unknown): Partial<grpc.ServiceError> {
  const metadata = new grpc.Metadata();
  if (e instanceof SwarmError) {
    const code = e.code;
    const hit = STATUS_BY_SUFFIX.find(([re]) => re.test(code));
    metadata.set('swarm-error-code', code);
    metadata.set('sw4rm-error-code', hit?.[2] ?? 'INTERNAL_ERROR');
    return { code: hit?.[1] ?? grpc.status.INTERNAL, details: `${code}: ${e.message}`, metadata };
  }
  metadata.set('sw4rm-error-code', 'INTERNAL_ERROR');
  return { code: grpc.status.INTERNAL, details: `INTERNAL_ERROR: ${e instanceof Error ? e.message : String(e)}`, metadata };
}

/** A unary handler from an async function of the request (and the call, for metadata and cancellation). */
export function unary<Q, R = unknown>(fn: (req: Q, call: grpc.ServerUnaryCall<Q, R>) => Promise<R>): grpc.handleUnaryCall<Q, R> {
  return (call, callback) => {
    fn(call.request, call).then(
      (res) => callback(null, res),
      (e: unknown) => callback(toServiceError(e) as grpc.ServiceError),
    );
  };
}

/** A request metadata value (first), trimmed; '' when absent. */
export function meta(call: { metadata: grpc.Metadata }, key: string): string {
  const v = call.metadata.get(key)[0];
  return typeof v === 'string' ? v.trim() : v ? v.toString('utf8').trim() : '';
}

/** A google.protobuf.Duration as ms. */
export function durationMs(d: { seconds?: number | string; nanos?: number } | null | undefined): number {
  if (!d) return 0;
  return Number(d.seconds ?? 0) * 1000 + Math.floor(Number(d.nanos ?? 0) / 1e6);
}

export function timestamp(ms: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

/** An AbortSignal that fires when the client cancels the call (or its deadline passes). */
export function callSignal(call: grpc.ServerUnaryCall<unknown, unknown>): AbortSignal {
  const ac = new AbortController();
  call.on('cancelled', () => ac.abort());
  return ac.signal;
}
