/** The API documents the Registry, Triggers and Operations pages read (see /api/v1/openapi.json). */
import type { WorkflowNode } from '../pages/run/types';

export type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  items?: JsonSchema;
  [key: string]: unknown;
};

export interface Agent {
  id: string;
  name: string;
  version: string;
  description: string | null;
  runtime: string;
  capabilities: string[];
  tags: string[];
  inputs: JsonSchema;
  outputs: JsonSchema;
  digest: string;
  created_at: string;
}

export interface AgentDetail extends Agent {
  versions: string[];
  llm: { provider: string; model: string; temperature: number | null; max_turns: number; instructions: string | null; tools: Record<string, unknown>[]; handoffs: string[] } | null;
}

export interface WorkflowSummary {
  id: string;
  name: string;
  version: string;
  description: string | null;
  enabled: boolean;
  trigger: string;
  steps: number;
  tags: string[];
  created_at: string;
}

export interface WorkflowDetail extends Omit<WorkflowSummary, 'trigger'> {
  trigger: { type: string; [key: string]: unknown };
  versions: string[];
  input_schema: JsonSchema;
  output_schema: JsonSchema;
  dag: { nodes: WorkflowNode[]; edges: { from: string; to: string }[]; final_steps: string[] };
}

export interface Schedule {
  workflow: string;
  version: string;
  cron: string;
  timezone: string;
  overlap: string;
  catchup: { policy: string; window_seconds: number; max_runs: number };
  enabled: boolean;
  paused: boolean;
  next_run_at: string | null;
  last_fired_at: string | null;
  buffered_tick: string | null;
}

export interface Webhook {
  path: string;
  url: string;
  workflow: string;
  version: string;
  enabled: boolean;
  auth: 'signature' | 'none';
  scheme: string | null;
  delivery_id: string | null;
}

export interface EventTrigger {
  workflow: string;
  version: string;
  on: string;
  source: string | null;
  filter: string | null;
  enabled: boolean;
}

export interface WorkerInfo {
  id: string;
  hostname: string;
  pid: number;
  concurrency: number;
  only_run: string | null;
  started_at: string;
  heartbeat_at: string;
  heartbeat_age_ms: number;
  live: boolean;
}

export type { Approval } from '../types';

export interface SecretInfo {
  name: string;
  scope: 'global' | 'workflow';
  workflow: string | null;
  created_at: string;
  updated_at: string;
}

export interface Token {
  id: string;
  name: string;
  scopes: string[];
  status: 'active' | 'expired' | 'revoked';
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
}
