/**
 * Forks and lineage: `POST /api/v1/runs/{id}/fork` (the options of `swarm runs fork`) and
 * `GET /api/v1/runs/{id}/lineage` (the fork tree the run belongs to). Refusals are problem+json with
 * the CLI's codes: RUN_NOT_FINISHED and RUN_CHANGED 409, UNKNOWN_STEP and REPLACE_OUTPUT_NOT_COPIED
 * 400, INPUT_INVALID and OUTPUT_INVALID 422, RUN_NOT_FOUND 404, and VERIFICATION_FAILED 500 (the
 * parent's stored rows do not match its event chain: the store was tampered with, nothing is forked;
 * the status every VerificationError has in the API, src/server/problem.ts). Messages name the body's
 * fields (`replace_outputs.a`, `turn`), not the CLI's flags.
 *
 * @example
 *   curl -X POST localhost:8080/api/v1/runs/3f2a9c1d4e5b/fork -d '{"at":"summarize","replace_outputs":{"fetch":{"text":"hi"}}}'
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { ForkArgumentNames } from '../../branching/fork.js';
import type { Swarm } from '../../swarm.js';
import { runJson } from '../../views/run.js';
import { problems, RunParams, RunSchema } from '../schemas.js';
import { sendJson } from '../send.js';

/** How a refusal names the request's fields (the CLI's messages name its flags: `--replace-output a`). */
const BODY_NAMES: ForkArgumentNames = { input: 'input', replaceOutput: (step) => `replace_outputs.${step}`, turn: 'turn' };

const ForkBody = z
  .object({
    at: z.string().min(1).openapi({ description: 'The step to run again, with everything downstream of it', example: 'summarize' }),
    input: z.record(z.string(), z.unknown()).optional().openapi({ description: "New trigger data (default: the parent run's), checked against the workflow's `inputs`" }),
    replace_outputs: z
      .record(z.string(), z.unknown())
      .optional()
      .openapi({ description: "Outputs to use instead of the parent's for copied steps, by step id (each checked against its agent's `outputs`)", example: { fetch: { text: 'hi' } } }),
    turn: z.number().int().min(1).optional().openapi({ description: "An LLM step only: resume its conversation at this turn (1-based), reusing the earlier turns' responses and tool results" }),
  })
  .strict()
  .openapi('ForkRun');

const ForkResultSchema = z
  .object({
    run_id: z.string(),
    parent_run_id: z.string(),
    at: z.string(),
    turn: z.number().int().nullable(),
    copied: z.array(z.string()).openapi({ description: 'Steps copied from the parent as completed' }),
    rerun: z.array(z.string()).openapi({ description: 'The fork step and its descendants: they run again' }),
    fresh: z.array(z.string()).openapi({ description: 'Steps not completed in the parent and not downstream of the fork step: they run as in a fresh run' }),
    replaced: z.array(z.string()),
    run: RunSchema,
  })
  .openapi('ForkResult');

export const LineageNodeSchema = z
  .object({
    run_id: z.string(),
    parent_run_id: z.string().nullable().openapi({ description: 'The run it was forked from (null: the root)' }),
    fork_step_id: z.string().nullable(),
    fork_turn: z.number().int().nullable(),
    workflow_name: z.string(),
    workflow_version: z.string(),
    status: z.string(),
    created_at: z.string(),
    depth: z.number().int().openapi({ description: 'Forks between it and the root (0: the root)' }),
  })
  .openapi('LineageNode');

const forkRoute = createRoute({
  method: 'post',
  path: '/api/v1/runs/{id}/fork',
  tags: ['runs'],
  summary: "Fork a finished run at a step: a new run of its plan that copies what the step does not depend on and runs the step and what follows again",
  request: { params: RunParams, body: { content: { 'application/json': { schema: ForkBody } }, required: true } },
  responses: {
    201: { description: 'the fork, queued', content: { 'application/json': { schema: ForkResultSchema } } },
    ...problems(400, 404, 409, 422),
    500: { ...problems(500)[500], description: "VERIFICATION_FAILED: the parent's stored data does not match its event chain (the store was altered); nothing was forked" },
  },
});

const lineageRoute = createRoute({
  method: 'get',
  path: '/api/v1/runs/{id}/lineage',
  tags: ['runs'],
  summary: 'The fork tree a run belongs to: its root, then every fork below it, by depth',
  request: { params: RunParams },
  responses: {
    200: { description: 'the tree', content: { 'application/json': { schema: z.object({ run_id: z.string(), nodes: z.array(LineageNodeSchema) }) } } },
    ...problems(400, 404),
  },
});

export function forkRoutes(app: OpenAPIHono, swarm: Swarm): void {
  app.openapi(forkRoute, async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    const f = await swarm.fork(id, {
      at: body.at,
      ...(body.input !== undefined ? { input: body.input } : {}),
      ...(body.replace_outputs !== undefined ? { replaceOutputs: body.replace_outputs } : {}),
      ...(body.turn !== undefined ? { turn: body.turn } : {}),
      names: BODY_NAMES,
    });
    return sendJson(c, 201, { ...f, run: runJson(await swarm.getRun(f.run_id)) }, { location: `/api/v1/runs/${f.run_id}` });
  });

  app.openapi(lineageRoute, async (c) => {
    const runId = await swarm.resolveRunId(c.req.valid('param').id);
    const nodes = await swarm.lineage(runId);
    return sendJson(c, 200, { run_id: runId, nodes: nodes.map((n) => ({ ...n, created_at: new Date(n.created_at).toISOString() })) });
  });
}
