/** The API's documents as the dashboard reads them (see /api/v1/openapi.json for the full schemas). */

export const RUN_STATUSES = ['queued', 'running', 'waiting', 'completed', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export type StepStatus = 'pending' | 'ready' | 'running' | 'waiting' | 'completed' | 'failed' | 'skipped' | 'cancelled';

/** A run in a list (`GET /api/v1/runs`, the `run` events of `/api/v1/runs/stream`). */
export interface RunSummary {
  run_id: string;
  id: string;
  workflow_name: string;
  workflow_version: string;
  status: RunStatus;
  trigger_type: string;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  completed_at: number | null;
  steps_total: number;
  steps_remaining: number;
  error: string | null;
  error_step: string | null;
  metadata: Record<string, string> | null;
  parent_run_id: string | null;
  parent_step_id?: string | null;
}

export interface RunPage {
  runs: RunSummary[];
  next_cursor: string | null;
}

export interface Step {
  id: string;
  agent: string;
  status: StepStatus;
  attempts: number;
  outputs: unknown;
  error: string | null;
  duration_ms: number | null;
  map_index?: number;
  started_at?: string | null;
  completed_at?: string | null;
  [key: string]: unknown;
}

/** One run (`GET /api/v1/runs/{id}`). */
export interface Run {
  run_id: string;
  workflow: string;
  version: string;
  status: RunStatus;
  trigger: unknown;
  created_at: string;
  /** Epoch ms: when a worker started it, when it finished, and its last change (null: not yet). */
  started_at_ms?: number | null;
  completed_at_ms?: number | null;
  updated_at_ms?: number;
  duration_ms: number | null;
  steps: Step[];
  error: { message: string; step: string | null } | null;
  metadata?: Record<string, string>;
  parent_run_id?: string;
  parent_step_id?: string;
  /** A fork: the step of parent_run_id it ran again from (and the LLM turn). */
  fork_step_id?: string;
  fork_turn?: number;
  [key: string]: unknown;
}

export interface RunEvent {
  seq: number;
  at: string;
  type: string;
  step: string | null;
  data: unknown;
  hash: string;
}

/** A tool call or step waiting for a person's decision (`GET /api/v1/approvals`). */
export interface Approval {
  run_id: string;
  step_id: string;
  call_id: string;
  tool: string;
  arguments: unknown;
  status: 'pending' | 'approved' | 'rejected';
  reason: string | null;
  requested_at: string;
}
