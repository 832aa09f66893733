import type { StepError } from '../core/errors.js';
import type { AgentManifest } from '../core/manifest/agent.js';

/** What an executor is given to run one attempt of one step. */
export interface ExecutionContext {
  runId: string;
  stepId: string;
  attempt: number;
  /** Stable across retries and crash re-executions of the same step: `<run id>/<step id>`. */
  idempotencyKey: string;
  agent: { id: string; path: string; manifest: AgentManifest };
  inputs: Record<string, unknown>;
  /** Aborted on timeout, cancellation or lost lease: stop and clean up. */
  signal: AbortSignal;
  timeoutMs: number;
  /** A directory private to this attempt (process agents get their input/output files here). */
  workDir: string;
  /** Called with the process group id once a child process is running, and with null when it is gone. */
  onProcess?: (pid: number | null) => void;
}

export interface StepLogs {
  stdout: string;
  stderr: string;
  truncated: boolean;
}

export type ExecutionResult =
  | { ok: true; outputs: unknown; logs?: StepLogs }
  | { ok: false; error: StepError; logs?: StepLogs }
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
