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

/** `{NAME: 'NAME', …}` from a map of names to numbers: the value map and its type come from one list. */
function namesOf<K extends string>(numbers: Readonly<Record<K, number>>): { readonly [P in K]: P } {
  return Object.fromEntries(Object.keys(numbers).map((k) => [k, k])) as { [P in K]: P };
}

/** Message types (sw4rm.common.MessageType); the names map to their proto numbers. */
export const MESSAGE_TYPE_NUMBERS = {
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
} as const;
export const MessageType = namesOf(MESSAGE_TYPE_NUMBERS);
export type MessageType = keyof typeof MESSAGE_TYPE_NUMBERS;

/** ACK stages (sw4rm.common.AckStage): RECEIVED → READ → one of the four terminal stages; the names map to their proto numbers. */
export const ACK_STAGE_NUMBERS = {
  ACK_STAGE_UNSPECIFIED: 0,
  RECEIVED: 1,
  READ: 2,
  FULFILLED: 3,
  REJECTED: 4,
  FAILED: 5,
  TIMED_OUT: 6,
} as const;
export const AckStage = namesOf(ACK_STAGE_NUMBERS);
export type AckStage = keyof typeof ACK_STAGE_NUMBERS;

/** The stages after which nothing more happens to a message. */
export const TERMINAL_ACK_STAGES: ReadonlySet<AckStage> = new Set<AckStage>(['FULFILLED', 'REJECTED', 'FAILED', 'TIMED_OUT']);

/** Error codes (sw4rm.common.ErrorCode). INTERNAL_ERROR is 99 on the wire; the names map to their proto numbers. */
export const ERROR_CODE_NUMBERS = {
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
} as const;
export const ErrorCode = namesOf(ERROR_CODE_NUMBERS);
export type ErrorCode = keyof typeof ERROR_CODE_NUMBERS;

/** Envelope lifecycle states (sw4rm.common.EnvelopeState); the names map to their proto numbers. */
export const ENVELOPE_STATE_NUMBERS = {
  ENVELOPE_STATE_UNSPECIFIED: 0,
  ENVELOPE_STATE_CREATED: 1,
  ENVELOPE_STATE_PENDING: 2,
  ENVELOPE_STATE_RUNNING: 3,
  ENVELOPE_STATE_FULFILLED: 4,
  ENVELOPE_STATE_REJECTED: 5,
  ENVELOPE_STATE_FAILED: 6,
  ENVELOPE_STATE_TIMED_OUT: 7,
} as const;
export const EnvelopeState = namesOf(ENVELOPE_STATE_NUMBERS);
export type EnvelopeState = keyof typeof ENVELOPE_STATE_NUMBERS;

/** Communication classes (sw4rm.common.CommunicationClass): the scheduler's lanes; the names map to their proto numbers. */
export const COMMUNICATION_CLASS_NUMBERS = {
  COMM_CLASS_UNSPECIFIED: 0,
  PRIVILEGED: 1,
  STANDARD: 2,
  BULK: 3,
} as const;
export const CommunicationClass = namesOf(COMMUNICATION_CLASS_NUMBERS);
export type CommunicationClass = keyof typeof COMMUNICATION_CLASS_NUMBERS;

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
