/**
 * Consensus tasks: list with filters and a cursor, one task with everything it holds (candidates,
 * verifier results, votes, the decision with its proof, cost by bucket), submit a contract, and an
 * external voter's commit or reveal. A task id is `<run id>/<step id>` for a step's task: send its
 * `/` as `%2F` in a path.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { UserError } from '../../core/errors.js';
import { TASK_STATUSES } from '../../consensus/core/types.js';
import type { ConsensusTaskRow } from '../../store/consensus-types.js';
import type { Swarm } from '../../swarm.js';
import { taskJson, taskSummaryJson } from '../../views/task.js';
import { problems } from '../schemas.js';
import { sendJson } from '../send.js';
import { taskVoteRoutes, TaskParams } from './task-votes.js';

/** The most tasks one page holds. */
export const MAX_TASK_PAGE = 500;

const TaskStatusSchema = z.enum(TASK_STATUSES);

const ReasonSchema = z.object({ code: z.number().int(), name: z.string().openapi({ example: 'REVEAL_MISMATCH' }) });
const EventRefSchema = z.object({ seq: z.number().int(), hash: z.string() }).openapi('EventRef', { description: "An event of the task's run: its seq and hash in the run's chain" });

export const TaskSummarySchema = z
  .object({
    task_id: z.string().openapi({ example: '01a2…/pick' }),
    run_id: z.string(),
    step_id: z.string(),
    task_type: z.string(),
    status: TaskStatusSchema,
    stage: z.string(),
    round: z.number().int(),
    reason: ReasonSchema.extend({ message: z.string().nullable() }).nullable().openapi({ description: 'Why the task failed or expired' }),
    created_at: z.string(),
    updated_at: z.string(),
    expires_at: z.string(),
  })
  .openapi('TaskSummary');

const TaskSchema = TaskSummarySchema.extend({
  explore_round: z.number().int(),
  round_started_at: z.string().nullable(),
  contract: z.record(z.string(), z.unknown()),
  members: z.array(z.object({ role: z.enum(['proposer', 'verifier', 'voter']), id: z.string(), public_key: z.string() })),
  candidates: z.array(
    z.object({
      candidate_hash: z.string(),
      proposer_id: z.string(),
      round: z.number().int(),
      output: z.unknown(),
      output_bytes: z.number().int(),
      evidence: z.array(z.unknown()),
      cost_usd: z.number(),
      signature: z.string(),
      event: EventRefSchema.openapi({ description: 'Its CANDIDATE_PROPOSED event' }),
      created_at: z.string(),
    }),
  ),
  verifier_results: z.array(
    z.object({
      candidate_hash: z.string(),
      verifier_id: z.string(),
      policy_id: z.string(),
      status: z.enum(['passed', 'failed', 'inconclusive']),
      reason_codes: z.array(ReasonSchema),
      reason: z.string().nullable(),
      score: z.number(),
      evidence: z.array(z.unknown()),
      cost_usd: z.number(),
      signature: z.string(),
      created_at: z.string(),
    }),
  ),
  votes: z.array(
    z
      .object({
        round: z.number().int(),
        voter_id: z.string(),
        commitment: z.string(),
        committed_at: z.string(),
        revealed: z.boolean(),
        candidate_hash: z.string().nullable().optional(),
        vote: z.enum(['approve', 'reject']).nullable().optional(),
        salt: z.string().nullable().optional(),
        revealed_at: z.string().nullable().optional(),
        event: EventRefSchema.nullable().optional(),
      })
      .openapi({ description: 'A commitment; what it committed to (candidate, vote, salt) only once revealed' }),
  ),
  tally: z.array(z.object({ round: z.number().int(), commits: z.number().int(), reveals: z.number().int(), approvals: z.record(z.string(), z.number().int()) })).openapi({ description: 'Per round: commitments, reveals, and approve reveals per candidate hash' }),
  decision: z
    .object({
      round: z.number().int(),
      candidate_hash: z.string(),
      output: z.unknown(),
      tally: z.record(z.string(), z.number()),
      quorum: z.number().int(),
      proof: z.object({ candidate_event: EventRefSchema, reveal_events: z.array(EventRefSchema) }),
      committed_at: z.string(),
      finalized_at: z.string().nullable(),
      finalized: z.boolean(),
    })
    .nullable(),
  cost: z.object({
    task_id: z.string(),
    explore_usd: z.number(),
    verify_usd: z.number(),
    finalize_usd: z.number(),
    total_usd: z.number(),
    budget: z.record(z.string(), z.number()),
    exhausted: z.array(z.string()),
  }),
}).openapi('Task');

const listTasks = createRoute({
  method: 'get',
  path: '/api/v1/tasks',
  tags: ['tasks'],
  summary: 'Consensus tasks, newest first, with filters and cursor pagination',
  request: {
    query: z.object({
      status: TaskStatusSchema.optional().openapi({ description: 'A task status' }),
      run: z.string().min(1).optional().openapi({ description: "A run id (or its short form): only that run's tasks" }),
      task_type: z.string().min(1).optional(),
      limit: z.coerce.number().int().min(1).max(MAX_TASK_PAGE).default(50),
      cursor: z.string().min(1).optional().openapi({ description: 'The `next_cursor` of the previous page' }),
    }),
  },
  responses: {
    200: { description: 'a page of tasks', content: { 'application/json': { schema: z.object({ tasks: z.array(TaskSummarySchema), next_cursor: z.string().nullable() }) } } },
    ...problems(400, 404, 422),
  },
});

const showTask = createRoute({
  method: 'get',
  path: '/api/v1/tasks/{id}',
  tags: ['tasks'],
  summary: 'A task: its candidates, verifier results, votes, decision with proof, and cost',
  request: { params: TaskParams },
  responses: { 200: { description: 'the task', content: { 'application/json': { schema: TaskSchema } } }, ...problems(400, 404) },
});

function encodeCursor(t: ConsensusTaskRow): string {
  return Buffer.from(JSON.stringify([t.created_at, t.task_id])).toString('base64url');
}

function decodeCursor(cursor: string): { created_at: number; task_id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof at === 'number' && typeof id === 'string') return { created_at: at, task_id: id };
  } catch {
    // refused below
  }
  throw new UserError('ARGUMENT_INVALID', `cursor '${cursor}' is not one this server gave out; start again without it`, { field: 'query.cursor' });
}

/** Everything of a task, as `GET /api/v1/tasks/{id}` answers it; TASK_NOT_FOUND (404) naming it. */
export async function taskDocument(swarm: Swarm, id: string): Promise<Record<string, unknown>> {
  const view = await swarm.getTask(id);
  if (!view) {
    // Submitted, but its run has not created it yet (where it is), or its run failed before it did (why).
    const e = await swarm.taskNotFound(id);
    if (e.context.run_id !== undefined) throw e;
    throw new UserError('TASK_NOT_FOUND', `${e.message}; GET /api/v1/tasks lists tasks (a step's task id is <run id>/<step id>, its '/' sent as %2F)`, e.context);
  }
  return taskJson(view);
}

export function taskRoutes(app: OpenAPIHono, swarm: Swarm): void {
  app.openapi(listTasks, async (c) => {
    const q = c.req.valid('query');
    const runId = q.run ? await swarm.resolveRunId(q.run) : undefined;
    const after = q.cursor ? decodeCursor(q.cursor) : undefined;
    // Newest first (created_at descending, then task id), filtered and paged by the store; one more row than the page says whether another follows.
    const rows = await swarm.listTasks({ ...(runId ? { run_id: runId } : {}), ...(q.status ? { status: q.status } : {}), ...(q.task_type ? { task_type: q.task_type } : {}), ...(after ? { after } : {}), limit: q.limit + 1 });
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return sendJson(c, 200, { tasks: page.map(taskSummaryJson), next_cursor: rows.length > q.limit && last ? encodeCursor(last) : null });
  });

  app.openapi(showTask, async (c) => sendJson(c, 200, await taskDocument(swarm, c.req.valid('param').id)));

  taskVoteRoutes(app, swarm);
}
