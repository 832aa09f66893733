/**
 * Approvals (human in the loop): list the requests, approve or reject what a step of a waiting run
 * waits for, recording who decided and why. The same Swarm calls as `swarm approvals | approve | reject`.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Swarm } from '../../swarm.js';
import { approvalJson } from '../../views/approval.js';
import { runJson } from '../../views/run.js';
import { problems, RunSchema } from '../schemas.js';
import { sendJson } from '../send.js';
import { principalOf } from '../auth.js';

const ApprovalSchema = z
  .object({
    run_id: z.string(),
    step_id: z.string(),
    call_id: z.string().openapi({ description: 'The tool call waiting, or `step` for an approval step' }),
    tool: z.string(),
    arguments: z.unknown(),
    status: z.enum(['pending', 'approved', 'rejected']),
    reason: z.string().nullable(),
    requested_at: z.string(),
    decided_at: z.string().nullable(),
    decided_by: z.string().nullable(),
  })
  .openapi('Approval');

const DecisionParams = z.object({
  run: z.string().min(1).openapi({ param: { name: 'run', in: 'path' }, description: 'A run id (or its short form)' }),
  step: z.string().min(1).openapi({ param: { name: 'step', in: 'path' }, description: 'The step waiting for approval' }),
});

const DecisionBody = z
  .object({
    reason: z.string().min(1).max(1000).optional().openapi({ description: 'Why (recorded; a rejected step fails with it)' }),
    by: z.string().min(1).max(200).optional().openapi({ description: 'Who decided (recorded)', example: 'alice' }),
  })
  .strict()
  .openapi('Decision');

const listApprovals = createRoute({
  method: 'get',
  path: '/api/v1/approvals',
  tags: ['approvals'],
  summary: 'Approval requests (pending ones by default)',
  request: {
    query: z.object({
      status: z.enum(['pending', 'approved', 'rejected', 'all']).default('pending'),
      run: z.string().min(1).optional().openapi({ description: 'Only this run’s (a run id or its short form)' }),
    }),
  },
  responses: { 200: { description: 'the requests, oldest first', content: { 'application/json': { schema: z.object({ approvals: z.array(ApprovalSchema) }) } } }, ...problems(400, 404, 422) },
});

function decide(decision: 'approve' | 'reject'): ReturnType<typeof createRoute> {
  return createRoute({
    method: 'post',
    path: `/api/v1/approvals/{run}/{step}/${decision}`,
    tags: ['approvals'],
    summary: decision === 'approve' ? 'Approve what a step waits for: it runs on (in any worker)' : 'Reject what a step waits for: it fails with APPROVAL_REJECTED and the reason',
    request: { params: DecisionParams, body: { required: false, content: { 'application/json': { schema: DecisionBody } } } },
    responses: {
      200: { description: 'decided', content: { 'application/json': { schema: z.object({ run_id: z.string(), decision: z.enum(['approved', 'rejected']), resumed: z.array(z.string()), run: RunSchema }) } } },
      ...problems(400, 404, 409, 422),
    },
  });
}

export function approvalRoutes(app: OpenAPIHono, swarm: Swarm): void {
  app.openapi(listApprovals, async (c) => {
    const q = c.req.valid('query');
    const list = await swarm.listApprovals({ status: q.status, ...(q.run ? { runId: q.run } : {}) });
    return sendJson(c, 200, { approvals: list.map(approvalJson) });
  });

  for (const decision of ['approve', 'reject'] as const) {
    app.openapi(decide(decision), async (c) => {
      const { run, step } = c.req.param() as z.infer<typeof DecisionParams>;
      // The body is optional: a POST without one decides with no reason recorded (a default one for a rejection).
      const body = ((c.req.valid as (t: 'json') => unknown)('json') as z.infer<typeof DecisionBody> | undefined) ?? {};
      const runId = await swarm.resolveRunId(run);
      // Who decided: as the client says, else the name of the token that made the request.
      const by = body.by ?? principalOf(c)?.name;
      const resumed =
        decision === 'approve'
          ? await swarm.approve(runId, step, { ...(body.reason ? { reason: body.reason } : {}), ...(by ? { by } : {}) })
          : await swarm.reject(runId, step, body.reason ?? 'rejected over the API', by);
      return sendJson(c, 200, { run_id: runId, decision: decision === 'approve' ? 'approved' : 'rejected', resumed, run: runJson(await swarm.getRun(runId)) });
    });
  }
}
