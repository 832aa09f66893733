/**
 * Errors of the SW4RM clients: every failed call becomes one `Sw4rmClientError` with a stable code,
 * the service, method and address it was for, and a message that says what to do about it.
 *
 * @example
 *   try { await registry.register({ agent_id: 'a', name: 'A' }); }
 *   catch (e) { if (e instanceof Sw4rmClientError && e.code === 'SW4RM_UNAVAILABLE') retryLater(); }
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { ExitCode, SwarmError } from '../../core/errors.js';

/** The codes a client call fails with (docs/sw4rm.md, "SDK, agent runtime and examples"). */
export const SW4RM_CLIENT_ERROR_CODES = [
  'SW4RM_UNAVAILABLE', // nothing listens at the address, or the connection dropped
  'SW4RM_DEADLINE', // no answer within the call's deadline
  'SW4RM_INVALID', // the service refused the request as malformed (INVALID_ARGUMENT)
  'SW4RM_NOT_FOUND', // the agent, message or task is unknown to the service
  'SW4RM_REJECTED', // the service answered accepted: false (the reason names the protocol code)
  'SW4RM_PERMISSION_DENIED',
  'SW4RM_UNIMPLEMENTED', // the service at the address does not offer this method
  'SW4RM_CANCELLED',
  'SW4RM_INTERNAL', // anything else the service reported
] as const;
export type Sw4rmClientErrorCode = (typeof SW4RM_CLIENT_ERROR_CODES)[number];

export interface Sw4rmCallInfo {
  service: string;
  method: string;
  address: string;
}

/** A SW4RM call failed: `code` is stable, `grpcStatus` the transport's status when there was one. */
export class Sw4rmClientError extends SwarmError {
  readonly code: Sw4rmClientErrorCode;
  readonly exitCode: ExitCode = ExitCode.EXECUTION_FAILED;
  readonly grpcStatus: number | undefined;
  constructor(code: Sw4rmClientErrorCode, message: string, info: Sw4rmCallInfo & { grpcStatus?: number; reason?: string }, options?: { cause?: unknown }) {
    super(message, { ...info }, options);
    this.code = code;
    this.grpcStatus = info.grpcStatus;
  }
}

function isServiceError(e: unknown): e is ServiceError {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'number' && 'details' in e;
}

/** Turn whatever a gRPC call threw into a Sw4rmClientError naming the call and what to check. */
export function mapGrpcError(e: unknown, info: Sw4rmCallInfo, deadlineMs?: number): Sw4rmClientError {
  if (e instanceof Sw4rmClientError) return e;
  const where = `${info.service}.${info.method} at ${info.address}`;
  if (!isServiceError(e)) return new Sw4rmClientError('SW4RM_INTERNAL', `${where} failed: ${e instanceof Error ? e.message : String(e)}`, info, { cause: e });
  const details = e.details || e.message;
  const ctx = { ...info, grpcStatus: e.code };
  switch (e.code) {
    case status.UNAVAILABLE:
      return new Sw4rmClientError('SW4RM_UNAVAILABLE', `${where}: the service is unreachable (${details}); is 'swarm sw4rm serve' running there? (address from the client's options or SW4RM_${info.service.toUpperCase()}_ADDR)`, ctx, { cause: e });
    case status.DEADLINE_EXCEEDED:
      return new Sw4rmClientError('SW4RM_DEADLINE', `${where}: no answer within ${deadlineMs !== undefined ? `${deadlineMs} ms` : 'the deadline'}; raise deadlineMs or check the service's load`, ctx, { cause: e });
    case status.INVALID_ARGUMENT:
    case status.FAILED_PRECONDITION:
    case status.OUT_OF_RANGE:
      return new Sw4rmClientError('SW4RM_INVALID', `${where} refused the request: ${details}`, ctx, { cause: e });
    case status.NOT_FOUND:
      return new Sw4rmClientError('SW4RM_NOT_FOUND', `${where}: ${details}`, ctx, { cause: e });
    case status.PERMISSION_DENIED:
    case status.UNAUTHENTICATED:
      return new Sw4rmClientError('SW4RM_PERMISSION_DENIED', `${where}: permission denied: ${details}`, ctx, { cause: e });
    case status.UNIMPLEMENTED:
      return new Sw4rmClientError('SW4RM_UNIMPLEMENTED', `${where}: the service there does not implement ${info.method} (another protocol version, or not a SW4RM ${info.service}?)`, ctx, { cause: e });
    case status.CANCELLED:
      return new Sw4rmClientError('SW4RM_CANCELLED', `${where} was cancelled`, ctx, { cause: e });
    default:
      return new Sw4rmClientError('SW4RM_INTERNAL', `${where} failed (${status[e.code] ?? e.code}): ${details}`, ctx, { cause: e });
  }
}
