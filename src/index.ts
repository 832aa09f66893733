/**
 * Swarm: a durable runtime for multi-agent work. The public library API.
 *
 * @example
 *   import { Swarm } from 'swarm-runtime';
 *   const swarm = await Swarm.open();
 *   const runId = await swarm.startRun('echo-chain', { message: 'Hello Swarm!' });
 *   const { run } = await swarm.runToCompletion(runId);
 */
export { Swarm, newRunId, runExitCode } from './swarm.js';
export type { ContentDecision, ContentPolicy, GuardrailHooks, InjectionClassifier } from './guardrails/index.js';
export type { CreatedRun, EmitEventOptions, EmittedEvent, OpenSwarmOptions, RegisterResult, RotateKeyReport, RunDetails, SignalSent, SecretInfo, SecretScopeOptions, StartRunOptions, VerifyOptions, VerifyReport } from './swarm.js';
// The HTTP API of `swarm serve`, as a Hono app to serve or call in process.
export { Scheduler, SCHEDULER_LEASE } from './triggers/scheduler.js';
export type { SchedulerOptions, SchedulerClock, PassReport } from './triggers/scheduler.js';
export { RetentionPolicy, RETENTION_LEASE } from './retention/policy.js';
export type { RetentionPolicyOptions } from './retention/policy.js';
export type { GcOptions, GcReport, FinishedStatus } from './retention/gc.js';
export type { ArchivedRun } from './retention/archive.js';
export type { ScheduleInfo } from './triggers/schedules.js';
export { createApp } from './server/app.js';
export type { CreateAppOptions } from './server/app.js';
export { authMiddleware, principalOf, scopeFor, ROUTE_SCOPES } from './server/auth.js';
export type { AuthMode } from './server/auth.js';
export { parseExpiry, parseScopes, SCOPES, SCOPE_ALIASES } from './auth/tokens.js';
export type { AuthResult, CreatedToken, CreateTokenOptions, Principal, Scope, StreamToken, TokenInfo } from './auth/tokens.js';
// Webhook deliveries and events, the way `swarm serve` receives them (also callable from any server).
export { WEBHOOK_STATUS, webhookRunKey } from './triggers/webhook-delivery.js';
export type { DeliveredWebhook, WebhookDelivery } from './triggers/webhook-delivery.js';
export { eventRunKey, MAX_EVENT_DEPTH } from './triggers/events.js';
export type { TriggerEvent } from './triggers/events.js';
export { resolveConfig, findProjectDir, DEFAULTS, CONFIG_FILE } from './config/config.js';
export type { SwarmConfig, ResolveConfigOptions } from './config/config.js';
export * from './core/errors.js';
export { EventType, verifyChain, checkChain, GENESIS_HASH } from './core/events.js';
export { configuredKeySource, deriveKey, fileKeySource, KeyPurpose, parseMasterKey } from './secrets/master-key.js';
export type { MasterKeySource } from './secrets/master-key.js';
export { Redactor } from './secrets/redactor.js';
export type { RunEvent } from './core/events.js';
export { parseAgentManifest } from './core/manifest/agent.js';
export type { AgentManifest, AgentRuntime, RuntimeType } from './core/manifest/agent.js';
export { parseWorkflowManifest } from './core/manifest/workflow.js';
export type { WorkflowManifest, StepSpec, RetryPolicy, Handler } from './core/manifest/workflow.js';
export { RUN_STATUSES, STEP_STATUSES } from './core/states.js';
export type { RunStatus, StepStatus } from './core/states.js';
export { evaluateCondition, parseCondition } from './core/condition.js';
export { resolveValue } from './core/template.js';
export { Worker } from './engine/worker.js';
export type { WorkerOptions } from './engine/worker.js';
export { BUILTIN_AGENTS } from './executors/builtins.js';
export type { BuiltinAgent } from './executors/builtins.js';
export type { Executor, ExecutionContext, ExecutionResult } from './executors/executor.js';
// OpenTelemetry traces (docs/observability.md#traces): start the OTLP exporter, or register your own SDK.
export { otlpProtocolFromEnv, startTracing, startTracingFromEnv, tracingConfigured } from './observability/otel-sdk.js';
export type { OtlpProtocol, StartTracingOptions, TracingHandle } from './observability/otel-sdk.js';
export { configureTracing, currentTraceIds, tracingEnabled, TRACER_NAME } from './observability/tracing.js';
export type { TracingOptions } from './observability/tracing.js';
export { openSqliteStore, SqliteStore } from './store/sqlite/sqlite-store.js';
export type { Store, Durability } from './store/store.js';
export type * from './store/types.js';

// LLM agents: define them in TypeScript and run the loop (durably, with a store journal, or in memory).
export { agent, tool, ToolResult, isAgent, isToolResult, handoffToolName } from './agents/agent.js';
export type { Agent, Tool, ToolContext, ContextVariables } from './agents/agent.js';
export { run, memoryJournal, upgradeEnvelope, CHECKPOINT_VERSION, LoopError } from './agents/loop.js';
export type { RunOptions, RunResult, LoopEvent, LoopHooks, LoopJournal, CheckpointEnvelope, RecordedToolCall, ApprovalDecision } from './agents/loop.js';
export { storeJournal } from './agents/store-journal.js';
// Guardrails: the loop's port (a LoopGuard passed as `run(agent, messages, { guard })`), for guards of your own.
export { composeGuards, markUntrusted, untrustedSources } from './guardrails/guard.js';
export type { LoopGuard, GuardTurn, GuardState, ModelCallGate, ToolCallGate, ToolVerdict, UntrustedSource } from './guardrails/guard.js';
export type { ToolOrigin } from './agents/agent.js';
export { ChatSession } from './agents/chat.js';
export type * from './agents/types.js';
export { createModel, parseModelRef, costOf, ModelCallError, isModelCallError } from './agents/providers/index.js';
export type { ModelSpec, ProvidersConfig } from './agents/providers/index.js';
export { loadTools, validateToolArguments, BUILTIN_TOOLS } from './agents/tools/index.js';
export type { ToolSet, ToolSpec } from './agents/tools/index.js';
