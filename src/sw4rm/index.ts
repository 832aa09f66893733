/**
 * `swarm-runtime/sw4rm`: the SW4RM protocol for message-driven agents on Swarm (docs/sw4rm.md).
 *
 * - the wire contract: `sw4rmProtos()` (the project's .proto files, loaded);
 * - the protocol core (no I/O): envelopes, ACKs, constants, the HLC, ActivityBuffer,
 *   AckLifecycleManager, MessageProcessor, WorktreeState and their persistence;
 * - clients for the Router, Registry and Scheduler services, and a small agent runtime loop;
 * - `startSw4rm(swarm)`: the services themselves (what `swarm sw4rm serve` runs).
 *
 * @example
 *   import { RouterClient, buildEnvelope } from 'swarm-runtime/sw4rm';
 */
export { PROTO_LOADER_OPTIONS, protoDir, sw4rmProtos, type Sw4rmProtos } from './proto.js';
export { startSw4rm, SW4RM_DEFAULT_PORTS, type StartSw4rmOptions, type Sw4rmPorts, type Sw4rmServer } from './server.js';
export { SW4RM_DEFAULTS, type Sw4rmServiceOptions } from './service-types.js';
// ---- protocol core (src/sw4rm/core/) ----
export {
  AckStage,
  ACK_STAGE_NUMBERS,
  AgentState,
  CommunicationClass,
  COMMUNICATION_CLASS_NUMBERS,
  EnvelopeState,
  ENVELOPE_STATE_NUMBERS,
  ErrorCode,
  ERROR_CODE_NUMBERS,
  MessageType,
  MESSAGE_TYPE_NUMBERS,
  TERMINAL_ACK_STAGES,
  ackStageName,
  communicationClassName,
  envelopeStateName,
  errorCodeName,
  messageTypeName,
} from './core/constants.js';
export { formatProblems, Sw4rmProtocolError, type Sw4rmProblem } from './core/errors.js';
export {
  buildEnvelope,
  decodeJsonPayload,
  fromProtoTimestamp,
  toProtoTimestamp,
  validateEnvelope,
  type BuildEnvelopeInput,
  type Envelope,
  type ProtoTimestamp,
  type ValidateEnvelopeOptions,
} from './core/envelope.js';
export { buildAckEnvelope, isAckEnvelope, parseAck, readAckPayload, type Ack, type BuildAckInput } from './core/acks.js';
export { compareHlc, formatHlc, hlcPhysicalMs, HybridLogicalClock, parseHlc, type HlcTimestamp, type HybridLogicalClockOptions } from './core/hlc.js';
export { canonicalJsonBytes, IDEMPOTENCY_HASH_HEX_CHARS, idempotencyToken, type IdempotencyInput } from './core/idempotency.js';
export {
  JSONFilePersistence,
  MemoryPersistence,
  PersistedState,
  StorePersistence,
  type PersistedStateOptions,
  type PersistenceErrorHandler,
  type Sw4rmPersistence,
  type Sw4rmStateStore,
} from './core/persistence.js';
export { ActivityBuffer, isAcknowledged, type AckOutcome, type ActivityBufferOptions, type ActivityRecord } from './core/activity-buffer.js';
export { AckLifecycleManager, type AckLifecycleOptions, type RouterLike, type SendAckOptions, type SendResult } from './core/ack-lifecycle.js';
export { MessageProcessor, type MessageHandler, type MessageProcessorOptions, type ProcessOutcome } from './core/message-processor.js';
export { WorktreeState, type BindResult, type WorktreeBinding, type WorktreePolicy, type WorktreeStateOptions, type WorktreeStatus } from './core/worktree-state.js';
export type { Sw4rmStateRow } from '../store/sw4rm-state-types.js';
// ---- clients and agent runtime (src/sw4rm/client/) ----
export { DEFAULT_DEADLINE_MS, serviceAddress, SW4RM_ADDRESS_ENV, SW4RM_DEFAULT_ADDRESSES, type Sw4rmClientOptions, type Sw4rmServiceName } from './client/base.js';
export { mapGrpcError, Sw4rmClientError, SW4RM_CLIENT_ERROR_CODES, type Sw4rmClientErrorCode } from './client/errors.js';
export { RouterClient, SW4RM_TARGET_METADATA, type DeliveryOutcome, type SendOptions, type StreamItem, type StreamOptions } from './client/router-client.js';
export { SchedulerClient, type ActivityEntry, type SubmitTaskInput } from './client/scheduler-client.js';
export { RegistryClient, type AgentDescriptorInput, type AgentStateName, type CommunicationClassName } from './client/registry-client.js';
export { AgentReject, runAgent, type AgentContext, type AgentEvent, type AgentHandler, type AgentHandlers, type RunAgentOptions, type RunningAgent } from './client/agent.js';
// ---- scheduler, negotiation, hitl helpers (src/sw4rm/scheduler/) ----
export { CancellationManager, MIN_GRACE_PERIOD_MS, effectiveGracePeriodMs, type CancelOutcome, type CancelRequest, type CancellationFlag } from './scheduler/cancellation.js';
export { delegateToSwarm, effectiveMaxRedirects, DEFAULT_MAX_REDIRECTS, type DelegateOptions, type DelegationBudget, type DelegationPolicy, type DelegationRequest, type DelegationResponse } from './scheduler/delegation.js';
export { evaluateQuorum, scoreSummary, bordaSummary, DEFAULT_QUORUM, type AggregatedScore, type CriticVote, type QuorumOutcome, type QuorumPolicy, type QuorumRule } from './scheduler/voting.js';
export { compareTasks, reconcile, MIN_PRIORITY, MAX_PRIORITY, type CommClass, type ScheduledTask, type TaskStatus } from './scheduler/queue.js';
export { HITL_WORKFLOW } from './scheduler/hitl.js';
