/** The documents the run page reads besides those in ../../types.ts. */
import type { Step } from '../../types';

/** A node of a workflow's static DAG (`GET /api/v1/workflows/{name}`). */
export interface WorkflowNode {
  id: string;
  name: string | null;
  agent: string | null;
  workflow?: string;
  map?: string;
  sleep?: { for_ms?: number; until?: string | number };
  wait?: { event?: string; signal?: string; match?: string; timeout_ms?: number; on_timeout: string; buffer: boolean };
  depends_on: string[];
  condition?: string;
}

export interface WorkflowDoc {
  name: string;
  version: string;
  input_schema: unknown;
  dag: { nodes: WorkflowNode[]; edges: { from: string; to: string }[]; final_steps: string[] };
}

/** A step of `GET /api/v1/runs/{id}/steps`: with its timing and the inputs it ran with. */
export interface TimedStep extends Step {
  started_at: string | null;
  completed_at: string | null;
  inputs: unknown;
}

export interface VerifyReport {
  run_id: string;
  ok: boolean;
  events: number;
  problems: Array<{ seq: number | null; problem: string }>;
}

export type { Approval } from '../../types';

export interface StepLogEntry {
  step: string;
  attempt: number;
  stdout: string;
  stderr: string;
  truncated: boolean;
  at: string;
}

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

/** `GET /api/v1/runs/{id}/steps/{step}/transcript`. */
export interface Transcript {
  run_id: string;
  step: string;
  session: { id: string; agent: string; current_agent: string; status: string; turns: number; input_tokens: number; output_tokens: number; cost_usd: number };
  messages: Array<{
    seq: number;
    role: string;
    agent: string | null;
    content: string | null;
    tool_calls: Array<{ id: string; name: string; arguments: string }> | null;
    tool_call_id: string | null;
    name: string | null;
    usage: Usage | null;
    at: number;
  }>;
  tool_calls: Array<{ turn: number; call_id: string; name: string; arguments: unknown; output: string; is_error: boolean; handoff: string | null; at: number }>;
}
