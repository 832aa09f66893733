/**
 * Every metric Swarm exports, by name: the one list that the Prometheus registry
 * (`src/observability/metrics.ts`), the Grafana dashboards and alert rules in `deploy/`, and
 * `docs/observability.md` agree on. A test checks that every metric a dashboard panel or an alert
 * rule queries is in this list and in a real scrape.
 *
 * Names follow Prometheus conventions: the `swarm_` prefix, base units (seconds, bytes), `_total`
 * on counters. The GenAI ones keep the OpenTelemetry semantic-convention names as Prometheus spells
 * them. Label values are bounded: workflow, agent, tool, provider and model names come from the
 * registry and the configuration; run and step ids never appear.
 *
 * @example
 *   import { METRICS } from './metric-names.js';
 *   METRICS.find((m) => m.name === 'swarm_runs_finished_total')?.labels; // ['workflow', 'trigger', 'status']
 */
export interface MetricDefinition {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  help: string;
  labels: readonly string[];
}

export const METRICS: readonly MetricDefinition[] = [
  // ---- runs ----
  { name: 'swarm_runs_started_total', type: 'counter', help: 'Runs created, by workflow and trigger kind (api, manual, schedule, webhook, event, workflow: a sub-workflow step).', labels: ['workflow', 'trigger'] },
  { name: 'swarm_runs_finished_total', type: 'counter', help: 'Runs that reached a final state, by workflow, trigger kind and status (completed, failed, cancelled).', labels: ['workflow', 'trigger', 'status'] },
  { name: 'swarm_run_duration_seconds', type: 'histogram', help: 'Time from a run’s creation to its final state.', labels: ['workflow', 'status'] },
  // ---- steps ----
  { name: 'swarm_step_queue_wait_seconds', type: 'histogram', help: 'Time a step waited between becoming ready and being claimed by a worker.', labels: ['workflow'] },
  { name: 'swarm_steps_finished_total', type: 'counter', help: 'Step attempts that finished, by workflow, agent and status (completed, failed, retrying, cancelled).', labels: ['workflow', 'agent', 'status'] },
  { name: 'swarm_step_duration_seconds', type: 'histogram', help: 'Duration of one step attempt, from its start to its result.', labels: ['workflow', 'agent', 'status'] },
  { name: 'swarm_step_retries_total', type: 'counter', help: 'Step attempts that failed and were scheduled to run again.', labels: ['workflow', 'agent'] },
  { name: 'swarm_steps_in_flight', type: 'gauge', help: 'Step attempts running in this process now.', labels: [] },
  { name: 'swarm_leases_lost_total', type: 'counter', help: 'Step leases this process lost (another worker took the step over, or the lease expired).', labels: [] },
  // ---- queue (read from the store by an indexed query at scrape time) ----
  { name: 'swarm_queue_ready_steps', type: 'gauge', help: 'Steps ready to run and not claimed, in the whole store.', labels: [] },
  { name: 'swarm_queue_oldest_ready_age_seconds', type: 'gauge', help: 'Age of the oldest ready, unclaimed step (0 when none).', labels: [] },
  { name: 'swarm_workers_live', type: 'gauge', help: 'Workers whose heartbeat is current, in the whole store.', labels: [] },
  { name: 'swarm_worker_heartbeats_total', type: 'counter', help: 'Heartbeats this process’s workers wrote.', labels: [] },
  // ---- approvals ----
  { name: 'swarm_approvals_pending', type: 'gauge', help: 'Approvals waiting for a decision, in the whole store.', labels: [] },
  { name: 'swarm_approval_wait_seconds', type: 'histogram', help: 'Time from an approval’s request to its decision.', labels: ['workflow', 'decision'] },
  // ---- triggers ----
  { name: 'swarm_schedule_fires_total', type: 'counter', help: 'Schedule ticks, by workflow and outcome (started, skipped, missed).', labels: ['workflow', 'outcome'] },
  { name: 'swarm_webhook_requests_total', type: 'counter', help: 'Webhook deliveries, by registered path ("" when the path is unknown) and outcome (accepted, duplicate, bad_signature, invalid, not_found, too_large, disabled, error).', labels: ['path', 'outcome'] },
  // ---- LLM agents ----
  { name: 'swarm_tool_calls_total', type: 'counter', help: 'Tool calls of LLM agents, by tool and outcome (ok, error).', labels: ['tool', 'outcome'] },
  { name: 'swarm_tool_call_duration_seconds', type: 'histogram', help: 'Duration of one tool call.', labels: ['tool'] },
  { name: 'swarm_model_calls_total', type: 'counter', help: 'Model calls, by provider, model and outcome (ok, error).', labels: ['provider', 'model', 'outcome'] },
  { name: 'gen_ai_client_token_usage', type: 'histogram', help: 'Tokens per model call (OpenTelemetry gen_ai.client.token.usage), by provider, model and token type (input, output).', labels: ['gen_ai_provider_name', 'gen_ai_request_model', 'gen_ai_token_type'] },
  { name: 'gen_ai_client_operation_duration_seconds', type: 'histogram', help: 'Duration of one model call (OpenTelemetry gen_ai.client.operation.duration).', labels: ['gen_ai_provider_name', 'gen_ai_request_model'] },
  { name: 'swarm_llm_cost_usd_total', type: 'counter', help: 'Cost of model calls in US dollars, from the configured prices.', labels: ['provider', 'model'] },
  // ---- guardrails ----
  { name: 'swarm_budget_events_total', type: 'counter', help: 'Budget warnings and refusals, by limit (tokens_in, tokens_out, cost_usd, model_calls, tool_calls, wall_clock, handoff_depth) and kind (warning, exceeded).', labels: ['limit', 'kind'] },
  { name: 'swarm_circuit_transitions_total', type: 'counter', help: 'Circuit breaker state changes, by breaker kind (model, tool, mcp, http_host), breaker name and new state (closed, open, half_open).', labels: ['kind', 'breaker', 'to'] },
  { name: 'swarm_circuit_state', type: 'gauge', help: 'A circuit breaker’s state as this process last saw it: 0 closed, 1 half-open, 2 open.', labels: ['kind', 'breaker'] },
  { name: 'swarm_circuit_rejected_calls_total', type: 'counter', help: 'Calls refused at once because their circuit was open (CIRCUIT_OPEN) or sent to a fallback.', labels: ['kind', 'breaker'] },
  { name: 'swarm_guardrail_events_total', type: 'counter', help: 'Guardrails that fired, by guardrail (injection, content_policy, sensitive_tool, escalation) and action (warn, sanitize, reject, refuse, approve, stop).', labels: ['guardrail', 'action'] },
  { name: 'swarm_redactions_total', type: 'counter', help: 'Values of a data class found and acted on, by class (email, phone, card, iban, national_id, api_key, secret) and action (redact, mask, drop).', labels: ['class', 'action'] },
  // ---- memory ----
  { name: 'swarm_memory_operations_total', type: 'counter', help: 'Vector memory operations, by operation (write, search, delete) and outcome (ok, error).', labels: ['op', 'outcome'] },
  { name: 'swarm_memory_operation_duration_seconds', type: 'histogram', help: 'Duration of one vector memory operation (embedding included).', labels: ['op'] },
  // ---- store ----
  { name: 'swarm_store_commit_duration_seconds', type: 'histogram', help: 'Duration of one store commit (a group commit counts once), by store kind.', labels: ['store'] },
  { name: 'swarm_store_commit_batch_size', type: 'histogram', help: 'Transactions that shared one commit (group commit), by store kind.', labels: ['store'] },
];
