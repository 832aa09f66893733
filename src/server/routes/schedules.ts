/**
 * Schedules: list, show, preview the next ticks, pause, resume, and fire one run now. The same
 * `Swarm` methods as `swarm schedules …`; a workflow that is not registered or has no schedule is a
 * 404 problem (WORKFLOW_NOT_FOUND, SCHEDULE_NOT_FOUND).
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Swarm } from '../../swarm.js';
import { MAX_PREVIEW_TICKS } from '../../triggers/schedule.js';
import { MAX_IDEMPOTENCY_KEY_CHARS } from './runs.js';
import { runJson } from '../../views/run.js';
import { NoBody, problems, RunSchema } from '../schemas.js';
import { sendJson } from '../send.js';
import { requestTrace } from '../trace-context.js';

const ScheduleSchema = z
  .object({
    workflow: z.string(),
    version: z.string(),
    cron: z.string().openapi({ example: '0 9 * * 1-5' }),
    timezone: z.string().openapi({ example: 'Europe/Paris' }),
    overlap: z.enum(['skip', 'buffer_one', 'allow_all', 'cancel_other']),
    catchup: z.object({ policy: z.enum(['none', 'latest', 'all']), window_seconds: z.number(), max_runs: z.number().int() }),
    enabled: z.boolean().openapi({ description: 'The workflow is enabled (a disabled workflow’s schedule does not fire)' }),
    paused: z.boolean(),
    next_run_at: z.string().nullable().openapi({ description: 'The next tick (ISO, UTC)' }),
    last_fired_at: z.string().nullable().openapi({ description: 'The tick last fired (ISO, UTC), or null' }),
    buffered_tick: z.string().nullable().openapi({ description: 'overlap buffer_one: the tick waiting for the active run to end (ISO, UTC), or null' }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi('Schedule');

const ScheduleParams = z.object({
  workflow: z.string().min(1).openapi({ param: { name: 'workflow', in: 'path' }, example: 'nightly-report', description: 'The name of a workflow with a schedule trigger' }),
});

const listSchedules = createRoute({
  method: 'get',
  path: '/api/v1/schedules',
  tags: ['schedules'],
  summary: 'Every schedule trigger, with its next run and last fired tick',
  responses: { 200: { description: 'schedules', content: { 'application/json': { schema: z.object({ schedules: z.array(ScheduleSchema) }) } } } },
});

const showSchedule = createRoute({
  method: 'get',
  path: '/api/v1/schedules/{workflow}',
  tags: ['schedules'],
  summary: "One workflow's schedule",
  request: { params: ScheduleParams },
  responses: { 200: { description: 'the schedule', content: { 'application/json': { schema: ScheduleSchema } } }, ...problems(404) },
});

const previewSchedule = createRoute({
  method: 'get',
  path: '/api/v1/schedules/{workflow}/preview',
  tags: ['schedules'],
  summary: 'The next ticks of a schedule (ISO, UTC)',
  request: {
    params: ScheduleParams,
    query: z.object({ count: z.coerce.number().int().min(1).max(MAX_PREVIEW_TICKS).default(5).openapi({ description: `How many ticks (1 to ${MAX_PREVIEW_TICKS})` }) }),
  },
  responses: {
    200: { description: 'the next ticks', content: { 'application/json': { schema: z.object({ schedule: ScheduleSchema, ticks: z.array(z.string()) }) } } },
    ...problems(404, 422),
  },
});

const setPaused = (paused: boolean): ReturnType<typeof createRoute> =>
  createRoute({
    method: 'post',
    path: `/api/v1/schedules/{workflow}/${paused ? 'pause' : 'resume'}`,
    tags: ['schedules'],
    summary: paused ? 'Pause a schedule: no tick fires until it is resumed' : 'Resume a paused schedule (missed ticks follow its catch-up policy)',
    // No body needed; one sent is `{}` (unknown fields 422, malformed JSON 400).
    request: { params: ScheduleParams, body: { required: false, content: { 'application/json': { schema: NoBody } } } },
    responses: { 200: { description: 'the schedule as it is now', content: { 'application/json': { schema: ScheduleSchema } } }, ...problems(400, 404, 415, 422) },
  });

const triggerSchedule = createRoute({
  method: 'post',
  path: '/api/v1/schedules/{workflow}/trigger',
  tags: ['schedules'],
  summary: 'Fire one run of the scheduled workflow now (trigger type schedule, paused or not)',
  request: {
    params: ScheduleParams,
    headers: z.object({ 'idempotency-key': z.string().min(1).max(MAX_IDEMPOTENCY_KEY_CHARS).optional().openapi({ description: 'One run per key: a repeat returns the first run' }) }),
    body: { required: false, content: { 'application/json': { schema: NoBody } } },
  },
  responses: {
    200: { description: 'A repeat of an Idempotency-Key: the run it created', content: { 'application/json': { schema: RunSchema } } },
    201: { description: 'The run was created', content: { 'application/json': { schema: RunSchema } } },
    ...problems(400, 403, 404, 415, 422),
  },
});

export function scheduleRoutes(app: OpenAPIHono, swarm: Swarm): void {
  app.openapi(listSchedules, async (c) => sendJson(c, 200, { schedules: await swarm.listSchedules() }));

  app.openapi(showSchedule, async (c) => sendJson(c, 200, await swarm.getSchedule(c.req.valid('param').workflow)));

  app.openapi(previewSchedule, async (c) => sendJson(c, 200, await swarm.previewSchedule(c.req.valid('param').workflow, c.req.valid('query').count)));

  for (const paused of [true, false]) {
    app.openapi(setPaused(paused), async (c) => {
      const workflow = c.req.param('workflow') ?? '';
      return sendJson(c, 200, paused ? await swarm.pauseSchedule(workflow) : await swarm.resumeSchedule(workflow));
    });
  }

  app.openapi(triggerSchedule, async (c) => {
    const { workflow } = c.req.valid('param');
    const key = c.req.valid('header')['idempotency-key'];
    const { runId, created } = await swarm.triggerSchedule(workflow, { ...(key ? { idempotencyKey: key } : {}), ...requestTrace(c) });
    return sendJson(c, created ? 201 : 200, runJson(await swarm.getRun(runId)), { location: `/api/v1/runs/${runId}`, ...(created ? {} : { 'idempotent-replayed': 'true' }) });
  });
}
