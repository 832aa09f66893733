/**
 * The SW4RM protocol's enumerations, by the names the published protocol gives them, with their
 * proto numbers both ways. The names are what the project's gRPC loader produces (enums as names);
 * the numbers are what other SDKs put in JSON ACK payloads, so both directions are needed.
 *
 * @example
 *   MessageType.DATA;                       // 'DATA'
 *   MESSAGE_TYPE_NUMBERS.DATA;              // 2
 *   ackStageName(3);                        // 'FULFILLED'
 */

/** Message types (sw4rm.common.MessageType). */
export const MessageType = {
  MESSAGE_TYPE_UNSPECIFIED: 'MESSAGE_TYPE_UNSPECIFIED',
  CONTROL: 'CONTROL',
  DATA: 'DATA',
  HEARTBEAT: 'HEARTBEAT',
  NOTIFICATION: 'NOTIFICATION',
  ACKNOWLEDGEMENT: 'ACKNOWLEDGEMENT',
  HITL_INVOCATION: 'HITL_INVOCATION',
  WORKTREE_CONTROL: 'WORKTREE_CONTROL',
  NEGOTIATION: 'NEGOTIATION',
  TOOL_CALL: 'TOOL_CALL',
  TOOL_RESULT: 'TOOL_RESULT',
  TOOL_ERROR: 'TOOL_ERROR',
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export const MESSAGE_TYPE_NUMBERS: Readonly<Record<MessageType, number>> = {
  MESSAGE_TYPE_UNSPECIFIED: 0,
  CONTROL: 1,
  DATA: 2,
  HEARTBEAT: 3,
  NOTIFICATION: 4,
  ACKNOWLEDGEMENT: 5,
  HITL_INVOCATION: 6,
  WORKTREE_CONTROL: 7,
  NEGOTIATION: 8,
  TOOL_CALL: 9,
  TOOL_RESULT: 10,
  TOOL_ERROR: 11,
};

/** ACK stages (sw4rm.common.AckStage): RECEIVED → READ → one of the four terminal stages. */
export const AckStage = {
  ACK_STAGE_UNSPECIFIED: 'ACK_STAGE_UNSPECIFIED',
  RECEIVED: 'RECEIVED',
  READ: 'READ',
  FULFILLED: 'FULFILLED',
  REJECTED: 'REJECTED',
  FAILED: 'FAILED',
  TIMED_OUT: 'TIMED_OUT',
} as const;
export type AckStage = (typeof AckStage)[keyof typeof AckStage];

export const ACK_STAGE_NUMBERS: Readonly<Record<AckStage, number>> = {
  ACK_STAGE_UNSPECIFIED: 0,
  RECEIVED: 1,
  READ: 2,
  FULFILLED: 3,
  REJECTED: 4,
  FAILED: 5,
  TIMED_OUT: 6,
};

/** The stages after which nothing more happens to a message. */
export const TERMINAL_ACK_STAGES: ReadonlySet<AckStage> = new Set<AckStage>(['FULFILLED', 'REJECTED', 'FAILED', 'TIMED_OUT']);

/** Error codes (sw4rm.common.ErrorCode). INTERNAL_ERROR is 99 on the wire. */
export const ErrorCode = {
  ERROR_CODE_UNSPECIFIED: 'ERROR_CODE_UNSPECIFIED',
  BUFFER_FULL: 'BUFFER_FULL',
  NO_ROUTE: 'NO_ROUTE',
  ACK_TIMEOUT: 'ACK_TIMEOUT',
  AGENT_UNAVAILABLE: 'AGENT_UNAVAILABLE',
  AGENT_SHUTDOWN: 'AGENT_SHUTDOWN',
  VALIDATION_ERROR: 'VALIDATION_ERROR',
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  UNSUPPORTED_MESSAGE_TYPE: 'UNSUPPORTED_MESSAGE_TYPE',
  OVERSIZE_PAYLOAD: 'OVERSIZE_PAYLOAD',
  TOOL_TIMEOUT: 'TOOL_TIMEOUT',
  PARTIAL_DELIVERY: 'PARTIAL_DELIVERY',
  FORCED_PREEMPTION: 'FORCED_PREEMPTION',
  TTL_EXPIRED: 'TTL_EXPIRED',
  DUPLICATE_DETECTED: 'DUPLICATE_DETECTED',
  ALREADY_IN_PROGRESS: 'ALREADY_IN_PROGRESS',
  OVERLOADED: 'OVERLOADED',
  REDIRECT: 'REDIRECT',
  INTERNAL_ERROR: 'INTERNAL_ERROR',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const ERROR_CODE_NUMBERS: Readonly<Record<ErrorCode, number>> = {
  ERROR_CODE_UNSPECIFIED: 0,
  BUFFER_FULL: 1,
  NO_ROUTE: 2,
  ACK_TIMEOUT: 3,
  AGENT_UNAVAILABLE: 4,
  AGENT_SHUTDOWN: 5,
  VALIDATION_ERROR: 6,
  PERMISSION_DENIED: 7,
  UNSUPPORTED_MESSAGE_TYPE: 8,
  OVERSIZE_PAYLOAD: 9,
  TOOL_TIMEOUT: 10,
  PARTIAL_DELIVERY: 11,
  FORCED_PREEMPTION: 12,
  TTL_EXPIRED: 13,
  DUPLICATE_DETECTED: 14,
  ALREADY_IN_PROGRESS: 15,
  OVERLOADED: 16,
  REDIRECT: 20,
  INTERNAL_ERROR: 99,
};

/** Envelope lifecycle states (sw4rm.common.EnvelopeState). */
export const EnvelopeState = {
  ENVELOPE_STATE_UNSPECIFIED: 'ENVELOPE_STATE_UNSPECIFIED',
  ENVELOPE_STATE_CREATED: 'ENVELOPE_STATE_CREATED',
  ENVELOPE_STATE_PENDING: 'ENVELOPE_STATE_PENDING',
  ENVELOPE_STATE_RUNNING: 'ENVELOPE_STATE_RUNNING',
  ENVELOPE_STATE_FULFILLED: 'ENVELOPE_STATE_FULFILLED',
  ENVELOPE_STATE_REJECTED: 'ENVELOPE_STATE_REJECTED',
  ENVELOPE_STATE_FAILED: 'ENVELOPE_STATE_FAILED',
  ENVELOPE_STATE_TIMED_OUT: 'ENVELOPE_STATE_TIMED_OUT',
} as const;
export type EnvelopeState = (typeof EnvelopeState)[keyof typeof EnvelopeState];

export const ENVELOPE_STATE_NUMBERS: Readonly<Record<EnvelopeState, number>> = {
  ENVELOPE_STATE_UNSPECIFIED: 0,
  ENVELOPE_STATE_CREATED: 1,
  ENVELOPE_STATE_PENDING: 2,
  ENVELOPE_STATE_RUNNING: 3,
  ENVELOPE_STATE_FULFILLED: 4,
  ENVELOPE_STATE_REJECTED: 5,
  ENVELOPE_STATE_FAILED: 6,
  ENVELOPE_STATE_TIMED_OUT: 7,
};

/** Communication classes (sw4rm.common.CommunicationClass): the scheduler's lanes. */
export const CommunicationClass = {
  COMM_CLASS_UNSPECIFIED: 'COMM_CLASS_UNSPECIFIED',
  PRIVILEGED: 'PRIVILEGED',
  STANDARD: 'STANDARD',
  BULK: 'BULK',
} as const;
export type CommunicationClass = (typeof CommunicationClass)[keyof typeof CommunicationClass];

export const COMMUNICATION_CLASS_NUMBERS: Readonly<Record<CommunicationClass, number>> = {
  COMM_CLASS_UNSPECIFIED: 0,
  PRIVILEGED: 1,
  STANDARD: 2,
  BULK: 3,
};

/** Agent states a heartbeat reports (sw4rm.common.AgentState). */
export const AgentState = {
  AGENT_STATE_UNSPECIFIED: 'AGENT_STATE_UNSPECIFIED',
  INITIALIZING: 'INITIALIZING',
  RUNNABLE: 'RUNNABLE',
  SCHEDULED: 'SCHEDULED',
  RUNNING: 'RUNNING',
  WAITING: 'WAITING',
  WAITING_RESOURCES: 'WAITING_RESOURCES',
  SUSPENDED: 'SUSPENDED',
  RESUMED: 'RESUMED',
  COMPLETED: 'COMPLETED',
  FAILED_STATE: 'FAILED_STATE',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  RECOVERING: 'RECOVERING',
} as const;
export type AgentState = (typeof AgentState)[keyof typeof AgentState];

function invert<K extends string>(numbers: Readonly<Record<K, number>>): ReadonlyMap<number, K> {
  return new Map(Object.entries(numbers).map(([name, n]) => [n as number, name as K]));
}

const MESSAGE_TYPE_BY_NUMBER = invert(MESSAGE_TYPE_NUMBERS);
const ACK_STAGE_BY_NUMBER = invert(ACK_STAGE_NUMBERS);
const ERROR_CODE_BY_NUMBER = invert(ERROR_CODE_NUMBERS);
const ENVELOPE_STATE_BY_NUMBER = invert(ENVELOPE_STATE_NUMBERS);
const COMMUNICATION_CLASS_BY_NUMBER = invert(COMMUNICATION_CLASS_NUMBERS);

function nameOf<K extends string>(numbers: Readonly<Record<K, number>>, byNumber: ReadonlyMap<number, K>, v: unknown): K | undefined {
  if (typeof v === 'number') return byNumber.get(v);
  if (typeof v === 'string') {
    if (Object.hasOwn(numbers, v)) return v as K;
    // A numeric string (a JSON payload written by hand, a query parameter) names the same value.
    if (/^\d+$/.test(v)) return byNumber.get(Number(v));
  }
  return undefined;
}

/** A message type from its name or proto number; undefined when it is neither. */
export function messageTypeName(v: unknown): MessageType | undefined {
  return nameOf(MESSAGE_TYPE_NUMBERS, MESSAGE_TYPE_BY_NUMBER, v);
}

/** An ACK stage from its name or proto number; undefined when it is neither. */
export function ackStageName(v: unknown): AckStage | undefined {
  return nameOf(ACK_STAGE_NUMBERS, ACK_STAGE_BY_NUMBER, v);
}

/** An error code from its name or proto number; undefined when it is neither. */
export function errorCodeName(v: unknown): ErrorCode | undefined {
  return nameOf(ERROR_CODE_NUMBERS, ERROR_CODE_BY_NUMBER, v);
}

/** An envelope state from its name or proto number; undefined when it is neither. */
export function envelopeStateName(v: unknown): EnvelopeState | undefined {
  return nameOf(ENVELOPE_STATE_NUMBERS, ENVELOPE_STATE_BY_NUMBER, v);
}

/** A communication class from its name or proto number; undefined when it is neither. */
export function communicationClassName(v: unknown): CommunicationClass | undefined {
  return nameOf(COMMUNICATION_CLASS_NUMBERS, COMMUNICATION_CLASS_BY_NUMBER, v);
}
