import type { BudgetSpec } from '../core/manifest/guardrails/budget.js';
import type { StepError } from '../core/errors.js';
import type { AgentManifest } from '../core/manifest/agent.js';
import type { Context } from '../observability/tracing.js';

/** What an executor is given to run one attempt of one step. */
export interface ExecutionContext {
  runId: string;
  stepId: string;
  attempt: number;
  /** Stable across retries and crash re-executions of the same step: `<run id>/<step id>`. */
  idempotencyKey: string;
  /** The run's workflow (stored secrets are scoped by it). */
  workflow?: string;
  agent: { id: string; path: string; manifest: AgentManifest };
  inputs: Record<string, unknown>;
  /** Aborted on timeout, cancellation or lost lease: stop and clean up. */
  signal: AbortSignal;
  timeoutMs: number;
  /** A directory private to this attempt (process agents get their input/output files here). */
  workDir: string;
  /** Called with the process group id once a child process is running, and with null when it is gone. */
  onProcess?: (pid: number | null) => void;
  /** The agent's declared `env:` (agent.yaml), its references already resolved. */
  env?: Readonly<Record<string, string>>;
  /** An llm step's budgets: the run's workflow `budget:` and the step's own (src/guardrails/budget.ts). */
  budget?: { workflow?: BudgetSpec; step?: BudgetSpec };
  /**
   * An llm agent's session id, when the step runs several conversations (a consensus step's proposer
   * samples and judges: `<run id>/<step id>/propose/<member id>/<round>`). Default `<run id>/<step id>`.
   */
  session?: string;
  /**
   * The step attempt's span context, with tracing on: what the executor starts (an agent loop's
   * spans, a process agent's TRACEPARENT, an HTTP executor's traceparent) is its child.
   */
  trace?: Context;
}

/** How a process agent's attempt was isolated; recorded in the step's final event. */
export interface StepIsolation {
  /** The sandbox driver that ran the agent. */
  sandbox: 'none' | 'bubblewrap';
  /** What enforced `memory_mb`: a memory cgroup, an address-space rlimit, node's heap limit, or nothing. */
  memory: 'cgroup-v1' | 'cgroup-v2' | 'rlimit' | 'node-heap' | 'none';
  /** Said plainly when the operating system does not enforce memory_mb (no memory cgroup). */
  warning?: string;
  /** The agent's network: the host's (unsandboxed), none (sandboxed), or only through the policy proxy (net capabilities). */
  network?: 'host' | 'none' | 'proxy';
  /** With the proxy: the attempt's net_cap envelope, summarised for logs (never the token). */
  net_cap?: string;
}

export interface StepLogs {
  stdout: string;
  stderr: string;
  truncated: boolean;
}

export type ExecutionResult =
  | { ok: true; outputs: unknown; logs?: StepLogs; isolation?: StepIsolation }
  | { ok: false; error: StepError; logs?: StepLogs; isolation?: StepIsolation }
  /** Paused for a human (approvals are recorded): the step waits until `swarm approve` / `reject`. */
  | { ok: 'waiting'; reason: string };

/** A built-in agent returns this to pause its step until a human decides (`swarm approve` / `reject`). */
export class Waiting {
  constructor(readonly reason: string) {}
}

/** Runs agents of one runtime kind. */
export interface Executor {
  execute(ctx: ExecutionContext): Promise<ExecutionResult>;
}
