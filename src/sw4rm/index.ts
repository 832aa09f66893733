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
// ---- clients and agent runtime (src/sw4rm/client/) ----
// ---- scheduler, negotiation, hitl helpers (src/sw4rm/scheduler/) ----
export { CancellationManager, MIN_GRACE_PERIOD_MS, effectiveGracePeriodMs, type CancelOutcome, type CancelRequest, type CancellationFlag } from './scheduler/cancellation.js';
export { delegateToSwarm, effectiveMaxRedirects, DEFAULT_MAX_REDIRECTS, type DelegateOptions, type DelegationBudget, type DelegationPolicy, type DelegationRequest, type DelegationResponse } from './scheduler/delegation.js';
export { evaluateQuorum, scoreSummary, bordaSummary, DEFAULT_QUORUM, type AggregatedScore, type CriticVote, type QuorumOutcome, type QuorumPolicy, type QuorumRule } from './scheduler/voting.js';
export { compareTasks, reconcile, MIN_PRIORITY, MAX_PRIORITY, type CommClass, type ScheduledTask, type TaskStatus } from './scheduler/queue.js';
export { HITL_WORKFLOW } from './scheduler/hitl.js';
