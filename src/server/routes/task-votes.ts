/**
 * The writing half of the task routes: submit a contract (a standalone task, run by a system run of
 * the built-in `swarm-consensus` workflow), and an external voter's signed commit or reveal. A
 * contract that does not match its schema is refused with 400 naming the path at fault; a vote the
 * kernel refuses answers with its reason code and name in the problem document.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Swarm } from '../../swarm.js';
import { reasonJson } from '../../views/task.js';
import { problemResponse, validationProblem } from '../problem.js';
import { problems } from '../schemas.js';
import { sendJson } from '../send.js';
import { requestTrace } from '../trace-context.js';

export const TaskParams = z.object({
  id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, example: '01a2b3c4-…%2Fpick', description: "A task id (a step's is `<run id>/<step id>`: send the `/` as `%2F`)" }),
});

/**
 * The contract as the body: an object, checked by the kernel's contract parser (src/consensus/core/
 * contract.ts), which knows every field, default and duration form (`reveal_deadline: 30s`). Its
 * problems come back as a 400 naming the path of the first and listing all.
 */
export const TaskContractSchema = z
  .record(z.string(), z.unknown())
  .openapi('TaskContract', {
    description: 'A task contract (docs/consensus.md): task_type, inputs, output_schema, proposers, verification, voting, budget, explore, expiry, knowledge',
    example: {
      task_type: 'summary',
      inputs: { text: 'Swarm is a durable runtime.' },
      output_schema: { type: 'object', required: ['summary'], properties: { summary: { type: 'string' } } },
      proposers: [{ executor: 'rt-a' }, { agent: 'summarize', samples: 2 }],
      verification: { policy: 'vp.schema_only.v1' },
      voting: { voters: [{ id: 'v1' }, { id: 'v2' }, { id: 'v3' }], quorum: 2, reveal_deadline: '30s' },
    },
  });

const CommitBody = z
  .object({
    kind: z.literal('commit'),
    round: z.number().int().min(1).optional().openapi({ description: "Default: the task's current round" }),
    voter_id: z.string().min(1),
    commitment: z.string().min(1).openapi({ description: 'commitmentHash(candidate_hash, vote, salt), hex' }),
    signature: z.string().min(1).openapi({ description: "Base64 Ed25519 signature by the voter's key over the commit's signed fields" }),
  })
  .strict();

const RevealBody = z
  .object({
    kind: z.literal('reveal'),
    round: z.number().int().min(1).optional(),
    voter_id: z.string().min(1),
    candidate_hash: z.string().min(1),
    vote: z.enum(['approve', 'reject']),
    salt: z.string().min(1),
    signature: z.string().min(1),
  })
  .strict();

const VoteBody = z.discriminatedUnion('kind', [CommitBody, RevealBody]).openapi('TaskVote');

const submitTask = createRoute({
  method: 'post',
  path: '/api/v1/tasks',
  tags: ['tasks'],
  summary: 'Submit a consensus task (a standalone task: a system run of the built-in swarm-consensus workflow)',
  description:
    'The contract is checked, and so are the agents and executors it names (registered; 400 TASK_CONTRACT_INVALID naming the field). The same `task_id` again with the same contract answers 200 with the first run; with a different contract, 409 TASK_ID_REUSED.',
  request: { body: { required: true, content: { 'application/json': { schema: TaskContractSchema } } } },
  responses: {
    200: { description: 'the task id was submitted before: its run', content: { 'application/json': { schema: z.object({ task_id: z.string(), run_id: z.string(), created: z.boolean() }) } } },
    201: { description: 'the task was submitted: its run starts it', content: { 'application/json': { schema: z.object({ task_id: z.string(), run_id: z.string(), created: z.boolean() }) } } },
    ...problems(400, 403, 404, 409, 413),
  },
});

const submitVote = createRoute({
  method: 'post',
  path: '/api/v1/tasks/{id}/votes',
  tags: ['tasks'],
  summary: "An external voter's signed commit or reveal",
  description: 'A refused vote is recorded (TASK_INPUT_REJECTED in the run\'s log) and answers 403 with the reason: `code` and `reason_name` (REVEAL_MISMATCH, REVEAL_LATE, REVEAL_UNKNOWN_CANDIDATE, NOT_MEMBER, SIGNATURE_INVALID…) and `reason_code` (its number) in the problem document.',
  request: { params: TaskParams, body: { required: true, content: { 'application/json': { schema: VoteBody } } } },
  responses: {
    202: { description: 'recorded, with its event', content: { 'application/json': { schema: z.object({ task_id: z.string(), round: z.number().int(), event_seq: z.number().int(), kind: z.enum(['commit', 'reveal']), recorded: z.boolean() }) } } },
    ...problems(400, 403, 404, 422),
  },
});

/** A body that is not an object: 400, as a contract the parser refuses (a contract is input, and a bad one is a bad request). */
function badRequest(result: { success: true } | { success: false; error: Parameters<typeof validationProblem>[0]; target: string }, c: Context): never | undefined {
  if (result.success) return undefined;
  const p = validationProblem(result.error, result.target);
  return problemResponse(c, { ...p, status: 400, title: 'Bad Request', code: 'TASK_CONTRACT_INVALID', type: 'urn:swarm:problem:task-contract-invalid' }) as never;
}

/** A refusal carrying a reason code: its name beside it, always. */
function withReason(e: unknown): unknown {
  const ctx = (e as { context?: Record<string, unknown> } | null)?.context;
  const code = ctx?.reason_code;
  if (typeof code === 'number' && ctx && ctx.reason_name === undefined) ctx.reason_name = reasonJson(code).name;
  return e;
}

export function taskVoteRoutes(app: OpenAPIHono, swarm: Swarm): void {
  app.openapi(
    submitTask,
    async (c) => {
      // A task id submitted before with another contract is 409 TASK_ID_REUSED (src/server/problem.ts).
      const submitted = await swarm.submitTask(c.req.valid('json'), requestTrace(c));
      // The same task id again: the first run, as an Idempotency-Key repeat answers.
      return sendJson(c, submitted.created ? 201 : 200, submitted, { location: `/api/v1/tasks/${encodeURIComponent(submitted.task_id)}`, ...(submitted.created ? {} : { 'idempotent-replayed': 'true' }) });
    },
    badRequest,
  );

  app.openapi(
    submitVote,
    async (c) => {
      const { id } = c.req.valid('param');
      const vote = c.req.valid('json');
      try {
        const out = await swarm.submitVote({ ...vote, task_id: id });
        return sendJson(c, 202, { ...out, kind: vote.kind, recorded: true });
      } catch (e) {
        throw withReason(e);
      }
    },
  );
}
