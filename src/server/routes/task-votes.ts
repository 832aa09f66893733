/**
 * The writing half of the task routes: submit a contract (a standalone task, run by a system run of
 * the built-in `swarm-consensus` workflow), and an external voter's signed commit or reveal. A
 * contract that does not match its schema is refused with 400 naming the path at fault; a vote the
 * kernel refuses answers with its reason code and name in the problem document.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { TaskContract, VoteCommit, VoteReveal } from '../../consensus/core/types.js';
import type { Swarm } from '../../swarm.js';
import { reasonJson } from '../../views/task.js';
import { problem, problemResponse, validationProblem } from '../problem.js';
import { problems } from '../schemas.js';
import { sendJson } from '../send.js';

export const TaskParams = z.object({
  id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, example: '01a2b3c4-…%2Fpick', description: "A task id (a step's is `<run id>/<step id>`: send the `/` as `%2F`)" }),
});

const Money = z.number().min(0);
const Obj = z.record(z.string(), z.unknown());

/** The contract's schema (src/consensus/core/types.ts TaskContract), strict: an unknown field is named. */
export const TaskContractSchema = z
  .object({
    task_id: z.string().min(1).max(200).optional(),
    task_type: z.string().min(1).max(200),
    inputs: Obj,
    output_schema: Obj.optional(),
    proposers: z
      .array(z.object({ executor: z.string().min(1).optional(), agent: z.string().min(1).optional(), samples: z.number().int().min(1).max(100).optional(), id: z.string().min(1).optional() }).strict())
      .min(1),
    verification: z
      .object({
        policy: z.string().min(1),
        params: Obj.optional(),
        verifiers: z.array(z.object({ executor: z.string().min(1).optional(), local: z.boolean().optional(), id: z.string().min(1).optional() }).strict()).optional(),
      })
      .strict(),
    voting: z
      .object({
        voters: z
          .array(
            z
              .object({
                id: z.string().min(1),
                strategy: z.enum(['best_verified', 'agent']).optional(),
                agent: z.string().min(1).optional(),
                external: z.boolean().optional(),
                public_key: z.string().min(1).optional(),
              })
              .strict(),
          )
          .min(1),
        quorum: z.number().int().min(1).optional(),
        reveal_deadline_ms: z.number().int().min(1).optional(),
        max_rounds: z.number().int().min(1).optional(),
      })
      .strict(),
    budget: z.object({ explore: Money.optional(), verify: Money.optional(), finalize: Money.optional() }).strict().optional(),
    explore: z
      .object({ topk: z.number().int().min(1).optional(), stop: z.object({ no_new_evidence_rounds: z.number().int().min(1).optional() }).strict().optional(), max_rounds: z.number().int().min(1).optional() })
      .strict()
      .optional(),
    expiry_ms: z.number().int().min(1).optional(),
    knowledge: z
      .object({ lookup: z.enum(['off', 'exact', 'similar']).optional(), min_similarity: z.number().min(0).max(1).optional(), reuse_blacklist: z.array(z.string()).optional() })
      .strict()
      .optional(),
  })
  .strict()
  .openapi('TaskContract');

const CommitBody = z
  .object({
    kind: z.literal('commit'),
    round: z.number().int().min(1),
    voter_id: z.string().min(1),
    commitment: z.string().min(1).openapi({ description: 'commitmentHash(candidate_hash, vote, salt), hex' }),
    signature: z.string().min(1).openapi({ description: "Base64 Ed25519 signature by the voter's key over the commit record" }),
  })
  .strict();

const RevealBody = z
  .object({
    kind: z.literal('reveal'),
    round: z.number().int().min(1),
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
  request: { body: { required: true, content: { 'application/json': { schema: TaskContractSchema } } } },
  responses: {
    201: { description: 'the task was created, with its run', content: { 'application/json': { schema: z.object({ task_id: z.string(), run_id: z.string() }).catchall(z.unknown()) } } },
    ...problems(400, 403, 404, 409, 413),
  },
});

const submitVote = createRoute({
  method: 'post',
  path: '/api/v1/tasks/{id}/votes',
  tags: ['tasks'],
  summary: "An external voter's signed commit or reveal",
  description: 'A refused vote answers with the reason: `reason_code` and `reason_name` (REVEAL_MISMATCH, REVEAL_LATE, REVEAL_UNKNOWN_CANDIDATE, NOT_MEMBER, SIGNATURE_INVALID…) in the problem document.',
  request: { params: TaskParams, body: { required: true, content: { 'application/json': { schema: VoteBody } } } },
  responses: {
    202: { description: 'recorded', content: { 'application/json': { schema: z.object({ task_id: z.string(), kind: z.enum(['commit', 'reveal']), recorded: z.boolean() }).catchall(z.unknown()) } } },
    ...problems(400, 404, 409, 422),
  },
});

/** What the engine's facade offers for submitting tasks and votes. */
interface TaskWrites {
  submitTask(contract: TaskContract): Promise<{ task_id: string; run_id: string } & Record<string, unknown>>;
  submitVote(taskId: string, vote: ({ kind: 'commit' } & Omit<VoteCommit, 'task_id'>) | ({ kind: 'reveal' } & Omit<VoteReveal, 'task_id'>)): Promise<Record<string, unknown>>;
}

function writes(swarm: Swarm): Partial<TaskWrites> {
  return swarm as unknown as Partial<TaskWrites>;
}

/** A body that does not match: 400, naming the path at fault (not the 422 of other routes: a contract is input, and a bad one is a bad request). */
function badRequest(result: { success: true } | { success: false; error: Parameters<typeof validationProblem>[0]; target: string }, c: Context): never | undefined {
  if (result.success) return undefined;
  const p = validationProblem(result.error, result.target);
  return problemResponse(c, { ...p, status: 400, title: 'Bad Request', code: 'CONTRACT_INVALID', type: 'urn:swarm:problem:contract-invalid' }) as never;
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
      const contract: TaskContract = c.req.valid('json');
      const f = writes(swarm);
      if (!f.submitTask) return problemResponse(c, problem(503, 'TASKS_UNAVAILABLE', 'this server cannot run consensus tasks')) as never;
      const created = await f.submitTask.call(swarm, contract);
      return sendJson(c, 201, created, { location: `/api/v1/tasks/${encodeURIComponent(created.task_id)}` });
    },
    badRequest,
  );

  app.openapi(
    submitVote,
    async (c) => {
      const { id } = c.req.valid('param');
      const vote = c.req.valid('json');
      const f = writes(swarm);
      if (!f.submitVote) return problemResponse(c, problem(503, 'TASKS_UNAVAILABLE', 'this server cannot take votes')) as never;
      try {
        const out = await f.submitVote.call(swarm, id, vote);
        return sendJson(c, 202, { task_id: id, kind: vote.kind, recorded: true, ...out });
      } catch (e) {
        throw withReason(e);
      }
    },
  );
}
