/**
 * Bulk cancel and bulk retry: by ids, or by the filters of `GET /api/v1/runs`, at most MAX_BULK runs
 * per request, each answered on its own (done, refused because of its state, not found). Each run is
 * its own transaction, through the same `Swarm.cancel` / `Swarm.retry` as one run's routes.
 *
 * @example
 *   POST /api/v1/runs/cancel {"filter": {"workflow": "nightly", "status": "queued"}}
 *   → {"results": [{"id": "…", "run_id": "…", "result": "done", "steps": ["fetch"]}], "done": 1, "refused": 0, "not_found": 0, "more": false}
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { isStoreFault, isSwarmError } from '../../core/errors.js';
import { httpAdvice } from '../http-advice.js';
import type { Swarm } from '../../swarm.js';
import { problems, RunStatusSchema } from '../schemas.js';
import { sendJson } from '../send.js';
import { runFilterOf, timeSchema } from './runs.js';

/** The most runs one bulk request acts on. */
export const MAX_BULK = 500;

const BulkFilter = z
  .object({
    status: z.union([RunStatusSchema, z.array(RunStatusSchema).min(1)]).optional().openapi({ description: 'A status, or a list of them (any of them)' }),
    workflow: z.string().min(1).optional(),
    trigger_type: z.string().min(1).optional(),
    parent: z.string().min(1).optional().openapi({ description: 'A run id: only the runs it started (its sub-workflow runs)' }),
    since: timeSchema().optional().openapi({ description: 'Created at or after (ISO date, date and time, or epoch ms)' }),
    until: timeSchema().optional().openapi({ description: 'Created before (ISO date, date and time, or epoch ms)' }),
    metadata: z.record(z.string(), z.string()).optional().openapi({ description: 'Runs whose metadata has every one of these keys with exactly this value' }),
  })
  .strict()
  .openapi('RunFilter', { description: 'The filters of GET /api/v1/runs' });

const BulkFields = {
  ids: z.array(z.string().min(1)).min(1).max(MAX_BULK).optional().openapi({ description: `Run ids (or short forms), at most ${MAX_BULK}` }),
  filter: BulkFilter.optional(),
  limit: z.number().int().min(1).max(MAX_BULK).optional().openapi({ description: `With a filter: act on at most this many of the newest matching runs (max ${MAX_BULK})` }),
};
/** Ids or a filter, not both and not neither. */
const idsOrFilter = (b: { ids?: unknown; filter?: unknown }): boolean => (b.ids === undefined) !== (b.filter === undefined);
const ONE_OF = { message: 'give either ids or filter (one of them)', path: ['ids'] };

/** A bulk request's body: `reason` is cancel's only (a retry with one is 422, naming it, as any unknown field). */
const BulkBody = {
  cancel: z
    .object({ ...BulkFields, reason: z.string().min(1).max(1000).optional().openapi({ description: 'Why (recorded)' }) })
    .strict()
    .refine(idsOrFilter, ONE_OF)
    .openapi('BulkCancelRequest'),
  retry: z
    .object(BulkFields)
    .strict()
    .refine(idsOrFilter, ONE_OF)
    .openapi('BulkRetryRequest'),
} as const;

const BulkResult = z.object({
  id: z.string().openapi({ description: 'The id as given (or the run id, with a filter)' }),
  run_id: z.string().optional(),
  result: z.enum(['done', 'refused', 'not_found']),
  steps: z.array(z.string()).optional().openapi({ description: 'done: the steps cancelled, or reset to run again' }),
  code: z.string().optional().openapi({ description: 'refused, not_found: the error code (RUN_NOT_CANCELLABLE, RUN_NOT_RETRYABLE, RUN_NOT_FOUND, RUN_ID_AMBIGUOUS…)' }),
  detail: z.string().optional(),
  hint: z.string().optional().openapi({ description: 'refused, not_found: the API route that helps, where there is one' }),
});

function bulkRoute(action: 'cancel' | 'retry'): ReturnType<typeof createRoute> {
  return createRoute({
    method: 'post',
    path: `/api/v1/runs/${action}`,
    tags: ['runs'],
    summary: action === 'cancel' ? 'Cancel many runs, by ids or by filter' : 'Retry many failed or cancelled runs, by ids or by filter',
    description: `At most ${MAX_BULK} runs per request; with a filter, \`more: true\` says more runs matched than were acted on (repeat the request). Each run is answered on its own.`,
    request: { body: { required: true, content: { 'application/json': { schema: BulkBody[action] } } } },
    responses: {
      200: {
        description: 'one result per run',
        content: { 'application/json': { schema: z.object({ results: z.array(BulkResult), done: z.number().int(), refused: z.number().int(), not_found: z.number().int(), more: z.boolean() }) } },
      },
      ...problems(400, 413, 415, 422, 503),
    },
  });
}

export function bulkRoutes(app: OpenAPIHono, swarm: Swarm): void {
  for (const action of ['cancel', 'retry'] as const) {
    app.openapi(bulkRoute(action), async (c) => {
      const body = (c.req.valid as (t: 'json') => unknown)('json') as z.infer<(typeof BulkBody)['cancel']>;
      let ids: string[];
      let more = false;
      if (body.filter) {
        const limit = body.limit ?? MAX_BULK;
        const runs = await swarm.listRuns({ ...runFilterOf({ ...body.filter, status: typeof body.filter.status === 'string' ? [body.filter.status] : body.filter.status }, 'filter'), limit: limit + 1 });
        more = runs.length > limit;
        ids = runs.slice(0, limit).map((r) => r.id);
      } else {
        ids = [...new Set(body.ids)];
      }
      const results: Array<z.infer<typeof BulkResult>> = [];
      for (const id of ids) {
        try {
          const runId = await swarm.resolveRunId(id);
          const steps = action === 'cancel' ? await swarm.cancel(runId, body.reason ?? 'cancelled over the API (bulk)') : await swarm.retry(runId);
          results.push({ id, run_id: runId, result: 'done', steps });
        } catch (e) {
          // A store that fails fails the request (503); what was done before stays done, and a
          // repeat of the request is safe (those runs answer `refused` then).
          if (!isSwarmError(e) || isStoreFault(e)) throw e;
          const notFound = e.code === 'RUN_NOT_FOUND';
          // Told as any API client is told: no CLI advice, the route that helps instead (http-advice.ts).
          const advice = httpAdvice(e);
          results.push({ id, result: notFound ? 'not_found' : 'refused', code: e.code, detail: advice?.detail ?? e.message, ...(advice?.hint ? { hint: advice.hint } : {}) });
        }
      }
      const count = (r: string): number => results.filter((x) => x.result === r).length;
      return sendJson(c, 200, { results, done: count('done'), refused: count('refused'), not_found: count('not_found'), more });
    });
  }
}
