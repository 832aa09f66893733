/**
 * The guardrails of one `llm` step: built per step attempt from the deployment's `guardrails:`
 * (swarm.yaml), the agents' own `guardrails:` (agent.yaml), the workflow's and the step's budgets,
 * and composed into the one `LoopGuard` the agent loop consults (see guard.ts for the gates).
 *
 * Order matters: breakers first (a call that will not be made reserves nothing), memory's recall,
 * then budgets, the injection policy and escalation, memory's writes (after the policy transformed a
 * result), and redaction last (it sees the request the model will get).
 */
import type { AgentManifest } from '../core/manifest/agent.js';
import type { BudgetSpec, GuardrailsSpec } from '../core/manifest/guardrails/index.js';
import { budgetGuard } from './budget.js';
import type { EventType } from '../core/events.js';
import type { EngineMetrics } from '../observability/engine-metrics.js';
import type { Store } from '../store/store.js';
import { composeGuards, type LoopGuard } from './guard.js';
import { breakerGuard } from './breakers.js';
import type { ProvidersConfig } from '../agents/providers/config.js';
import type { ChatModel } from '../agents/types.js';
import { modelViewGuard, type SecretSource } from './redaction/guard.js';
import { injectionScreen, policyGuard, type GuardrailHooks } from './injection.js';
import { escalationGuard } from './escalation.js';
import { memoryGuard } from '../memory/memory-guard.js';
import type { AgentMemory } from '../memory/agent-memory.js';

export { composeGuards, markUntrusted, untrustedSources } from './guard.js';
export type { GuardState, GuardTurn, LoopGuard, ModelCallGate, ToolCallGate, ToolVerdict } from './guard.js';
export type { ContentDecision, ContentPolicy, GuardrailHooks, InjectionClassifier } from './injection.js';

/** An event a guardrail records in the run's log (and the metric that goes with it is the guard's to bump). */
export interface GuardEvent {
  type: EventType;
  data: Record<string, unknown>;
}

/** What every step's guardrails share (one per Swarm instance). */
export interface GuardDeps {
  store: Store;
  /** The deployment's `guardrails:` (swarm.yaml). */
  config: GuardrailsSpec;
  /** The metrics (read at each use: they may be enabled after the Swarm opened). */
  metrics: () => EngineMetrics;
  /** Append events to the run's log (its own transaction; secrets redacted). */
  recordEvents: (runId: string, stepId: string | null, events: readonly GuardEvent[]) => Promise<void>;
  /** The providers' configuration (prices: `priceOf(model.id, providers)` in src/agents/providers/prices.ts). */
  providers: ProvidersConfig;
  /** A model by reference (`provider/model`, as `parseModelRef` reads it), built as the agents' models are (a breaker's fallback). */
  modelFor: (ref: string, agentName: string) => Promise<ChatModel>;
  /** The clock (tests move it). */
  now: () => number;
  /** Secrets' values to markers (the model view's `secret:` class). */
  redactor?: SecretSource;
  /** Code hooks of `Swarm.open({ guardrails })`: an injection classifier, a content policy. */
  hooks?: GuardrailHooks;
  /** Vector memory (src/memory/): recall before the first model call, writes of results and answers. */
  memory?: AgentMemory;
}

/** The step whose loop is guarded. */
export interface StepGuardContext {
  runId: string;
  stepId: string;
  attempt: number;
  workflow: string;
  sessionId: string;
  /** The step's agent and every agent reachable through its handoffs, by name. */
  agents: ReadonlyMap<string, AgentManifest>;
  /** The step's inputs (resolved). */
  inputs: Readonly<Record<string, unknown>>;
  /** The run's workflow `budget:` and the step's own `budget:` (workflow.yaml), when set. */
  budget?: { workflow?: BudgetSpec; step?: BudgetSpec };
}

/** The guard of one step attempt; undefined when no guardrail applies (the loop then pays nothing). */
export async function createStepGuard(deps: GuardDeps, ctx: StepGuardContext): Promise<LoopGuard | undefined> {
  // Recalled memory is untrusted content: the injection policy screens it as it does tool results.
  const memory = deps.memory ? memoryGuard(deps.memory, ctx, injectionScreen(deps, ctx)) : undefined;
  const guards: Array<LoopGuard | undefined> = [
    breakerGuard(deps, ctx),
    // Vector memory: recalled notes are in the request before budgets reserve for it and redaction sees it.
    memory?.beforeModelCall ? { beforeModelCall: memory.beforeModelCall } : undefined,
    await budgetGuard(deps, ctx),
    policyGuard(deps, ctx),
    escalationGuard(deps, ctx),
    // ...but it writes results and answers after the policy: what it stores is what the model saw
    // (sanitised, withheld, rewritten), and an answer the content policy blocks is not remembered.
    memory ? { ...(memory.onToolResult ? { onToolResult: memory.onToolResult } : {}), ...(memory.onAnswer ? { onAnswer: memory.onAnswer } : {}) } : undefined,
    modelViewGuard(deps.config.redaction, ctx.agents, deps.redactor, deps.metrics),
  ];
  return composeGuards(guards);
}
