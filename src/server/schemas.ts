/**
 * Schemas shared by the routes: they validate requests and document responses in the OpenAPI
 * document (`GET /api/v1/openapi.json`).
 */
import { z } from '@hono/zod-openapi';
import { RUN_STATUSES } from '../core/states.js';

export const ProblemSchema = z
  .object({
    type: z.string().openapi({ example: 'urn:swarm:problem:run-not-found' }),
    title: z.string().openapi({ example: 'Not Found' }),
    status: z.number().int().openapi({ example: 404 }),
    detail: z.string(),
    code: z.string().openapi({ example: 'RUN_NOT_FOUND', description: 'The stable error code (see docs/server.md)' }),
    field: z.string().optional().openapi({ description: 'The first field at fault, as a dotted path' }),
    errors: z.array(z.object({ field: z.string(), problem: z.string() })).optional(),
  })
  .catchall(z.unknown())
  .openapi('Problem', { description: 'RFC 9457 problem details' });

/** The problem responses a route can give, by status. */
export function problems(...statuses: number[]): Record<number, { description: string; content: { 'application/problem+json': { schema: typeof ProblemSchema } } }> {
  const out: Record<number, { description: string; content: { 'application/problem+json': { schema: typeof ProblemSchema } } }> = {};
  const what: Record<number, string> = {
    400: 'Bad request: malformed JSON, a bad argument, an ambiguous short run id',
    401: 'No token, or a bad, expired or revoked one (with WWW-Authenticate: Bearer); a webhook delivery with a bad, stale or missing signature',
    403: 'Refused: the token lacks the scope the route needs, or a policy (a disabled workflow)',
    404: 'No such workflow, agent, run or step',
    409: 'The run is not in a state that allows this',
    413: 'The body is larger than the limit',
    415: 'A body whose Content-Type is not application/json',
    422: 'The request is well-formed but its content is refused (names the field)',
    503: 'The store cannot be reached or is not ready',
  };
  for (const s of statuses) out[s] = { description: what[s] ?? 'Error', content: { 'application/problem+json': { schema: ProblemSchema } } };
  return out;
}

/**
 * The body of a route that needs none: it may be left out (or sent empty), and one sent is `{}`,
 * so an unknown field is 422 and malformed JSON 400, as for the routes that take one.
 */
export const NoBody = z.object({}).strict().openapi('NoBody', { description: 'No fields: leave the body out, or send {}' });

export const RunStatusSchema = z.enum(RUN_STATUSES);

export const StepSchema = z
  .object({
    id: z.string(),
    agent: z.string().openapi({ example: 'echo@1.0.0' }),
    status: z.string(),
    attempts: z.number().int(),
    outputs: z.unknown(),
    error: z.string().nullable(),
    duration_ms: z.number().nullable(),
    map_index: z.number().int().optional().openapi({ description: "An element of a map step (`resize[3]`): its position in the list" }),
  })
  .openapi('Step');

const LimitUsageSchema = z
  .object({
    used: z.number().openapi({ description: 'Used so far (wall_clock: seconds since the run was created)' }),
    reserved: z.number().openapi({ description: 'Held by model calls in flight (their worst case, until they settle)' }),
    allowed: z.number(),
  })
  .openapi('BudgetLimitUsage', { example: { used: 830, reserved: 0, allowed: 1000 } });

/** A run's times as epoch milliseconds: the same fields in a run document and in a list's runs. */
const RunTimesMs = {
  created_at_ms: z.number().int().openapi({ description: 'When the run was created, epoch milliseconds (the same in the run list)' }),
  started_at_ms: z.number().int().nullable().openapi({ description: 'When its first step started, epoch milliseconds' }),
  completed_at_ms: z.number().int().nullable().openapi({ description: 'When it finished, epoch milliseconds' }),
  updated_at_ms: z.number().int().openapi({ description: 'When its row last changed, epoch milliseconds' }),
};

export const RunSchema = z
  .object({
    run_id: z.string().openapi({ example: '0193b2c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d' }),
    workflow: z.string(),
    version: z.string(),
    status: RunStatusSchema,
    trigger: z.unknown(),
    created_at: z.string().openapi({ format: 'date-time' }),
    ...RunTimesMs,
    duration_ms: z.number().nullable(),
    steps: z.array(StepSchema),
    error: z.object({ message: z.string(), step: z.string().nullable() }).nullable(),
    metadata: z.record(z.string(), z.string()).optional(),
    idempotency_key: z.string().optional(),
    concurrency: z
      .object({
        key: z.string().openapi({ example: 'customer-7' }),
        limit: z.number().int(),
        state: z.enum(['active', 'queued', 'released']),
        active: z.number().int(),
        waiting_reason: z.string().nullable().openapi({ example: 'waiting for a concurrency slot: key customer-7, 1 active (limit 1)' }),
      })
      .optional()
      .openapi({ description: "The run's place under its workflow's concurrency key (only for workflows with `concurrency: {key, limit}`)" }),
    parent_run_id: z.string().optional().openapi({ description: 'A sub-workflow run: the run whose step started it' }),
    parent_step_id: z.string().optional().openapi({ description: 'A sub-workflow run: the step of parent_run_id it is the run of' }),
    fork_step_id: z.string().optional().openapi({ description: 'A fork: the step of parent_run_id it ran again from (POST /api/v1/runs/{id}/fork)' }),
    fork_turn: z.number().int().optional().openapi({ description: 'A fork of an LLM step at a turn: the turn its conversation resumed at' }),
    budget: z
      .object({
        root_run_id: z.string().openapi({ description: 'The run whose budget this run draws on (itself, or the root of its sub-workflow tree)' }),
        limits: z.record(z.string(), LimitUsageSchema).openapi({ description: 'The run budget: per limit (tokens_in, tokens_out, cost_usd, model_calls, tool_calls, wall_clock, handoff_depth) its use' }),
        scopes: z.array(z.object({ scope: z.string().openapi({ example: 'step:summarize' }), limits: z.record(z.string(), LimitUsageSchema) })).openapi({ description: "This run's narrower budgets (steps, agents, its own workflow's when it is a sub-workflow)" }),
      })
      .optional()
      .openapi({ description: 'Usage against the run budget and the narrower budgets (only once a budget has been drawn on)' }),
  })
  .openapi('Run', { description: 'The same document as `swarm runs show --json`' });

export const RunSummarySchema = z
  .object({
    run_id: z.string(),
    workflow_name: z.string(),
    workflow_version: z.string(),
    status: RunStatusSchema,
    created_at: z.number().openapi({ description: 'Epoch milliseconds (the run document gives it as ISO 8601; `created_at_ms` is the same number in both)' }),
    ...RunTimesMs,
  })
  .catchall(z.unknown())
  .openapi('RunSummary', { description: 'A run in a list: the same fields as `swarm runs list --json`' });

export const JsonSchemaSchema = z.record(z.string(), z.unknown()).openapi('JsonSchema');

export const AgentSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    version: z.string(),
    description: z.string().nullable(),
    runtime: z.string(),
    capabilities: z.array(z.string()),
    tags: z.array(z.string()),
    inputs: JsonSchemaSchema,
    outputs: JsonSchemaSchema,
    digest: z.string(),
    created_at: z.string(),
  })
  .openapi('Agent');

export const WorkflowSummarySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    version: z.string(),
    description: z.string().nullable(),
    enabled: z.boolean(),
    trigger: z.string(),
    steps: z.number().int(),
    tags: z.array(z.string()),
    created_at: z.string(),
  })
  .openapi('WorkflowSummary');

export const WorkflowSchema = WorkflowSummarySchema.extend({
  trigger: z.record(z.string(), z.unknown()),
  concurrency: z.number().int().nullable(),
  input_schema: JsonSchemaSchema,
  output_schema: JsonSchemaSchema,
  dag: z.object({
    nodes: z.array(
      z.object({
        id: z.string(),
        name: z.string().nullable(),
        agent: z.string().nullable().openapi({ description: '`name@range`, `kind:sleep` / `kind:wait`, or null for a sub-workflow step' }),
        workflow: z.string().optional().openapi({ description: 'A sub-workflow step: `name@range`' }),
        map: z.string().optional().openapi({ description: 'A map step: the reference to its list' }),
        sleep: z.object({ for_ms: z.number().optional(), until: z.union([z.string(), z.number()]).optional() }).optional(),
        wait: z.object({ event: z.string().optional(), signal: z.string().optional(), match: z.string().optional(), timeout_ms: z.number().optional(), on_timeout: z.string(), buffer: z.boolean() }).optional(),
        depends_on: z.array(z.string()),
        condition: z.string().optional(),
      }),
    ),
    edges: z.array(z.object({ from: z.string(), to: z.string() })),
    final_steps: z.array(z.string()),
  }),
  versions: z.array(z.string()),
}).openapi('Workflow');

/** `{name}` in a workflow path: a name, or `name@version`. */
export const WorkflowParams = z.object({
  name: z.string().min(1).openapi({ param: { name: 'name', in: 'path' }, example: 'echo-chain', description: 'A workflow name, or name@version' }),
});

export const RunParams = z.object({
  id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, example: '1e2f3a4b5c6d', description: 'A run id, its short form (last 12 characters), or any unique prefix or suffix of at least 4' }),
});

export const AgentParams = z.object({
  name: z.string().min(1).openapi({ param: { name: 'name', in: 'path' }, example: 'echo', description: 'An agent name, or name@version' }),
});
