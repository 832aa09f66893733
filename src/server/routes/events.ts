/**
 * Custom events: `POST /api/v1/events` raises one (`swarm events emit` over HTTP). The event is
 * recorded and the runs of the event triggers it matches are created in one transaction; an id seen
 * before (in the body or as `Idempotency-Key`) starts nothing and answers with the first one's runs.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { UserError } from '../../core/errors.js';
import type { Swarm } from '../../swarm.js';
import { MAX_EVENT_ID_LENGTH } from '../../triggers/events.js';
import { eventTriggerJson } from '../../views/triggers.js';
import { problems } from '../schemas.js';
import { sendJson } from '../send.js';

const EmitBody = z
  .object({
    name: z.string().min(1).openapi({ example: 'order.paid', description: 'Dot-separated lower-case words; run.*, step.*, approval.* and swarm.* are Swarm’s own' }),
    data: z.unknown().optional().openapi({ example: { order: 42, total: 130 }, description: 'What triggered runs see as trigger.data (default {})' }),
    id: z.string().min(1).max(MAX_EVENT_ID_LENGTH).optional().openapi({ example: 'evt-42', description: 'One event per id: a repeat starts nothing (default: a new id)' }),
    source: z.string().min(1).max(MAX_EVENT_ID_LENGTH).optional().openapi({ description: 'Who raises it: triggers with a `source:` match only their own' }),
  })
  .strict()
  .openapi('EmitEvent');

const EmittedSchema = z
  .object({
    event_id: z.string(),
    name: z.string(),
    runs: z.array(z.string()).openapi({ description: 'The runs the event started (a repeat: the ones the first started)' }),
    skipped: z.array(z.object({ trigger: z.string(), error: z.string() })).openapi({ description: 'Triggers that matched but could not start their run' }),
  })
  .openapi('EmittedEvent');

const emit = createRoute({
  method: 'post',
  path: '/api/v1/events',
  tags: ['events'],
  summary: 'Raise a custom event: start the runs of the event triggers it matches',
  request: {
    headers: z.object({ 'idempotency-key': z.string().min(1).max(MAX_EVENT_ID_LENGTH).optional().openapi({ description: 'The event id, when the body has none' }) }),
    body: { required: true, content: { 'application/json': { schema: EmitBody } } },
  },
  responses: {
    200: { description: 'An id seen before: nothing started; the runs the first one started', content: { 'application/json': { schema: EmittedSchema } } },
    201: { description: 'The event was recorded and its runs created', content: { 'application/json': { schema: EmittedSchema } } },
    ...problems(400, 413, 422),
  },
});

const EventTriggerSchema = z
  .object({
    workflow: z.string(),
    version: z.string(),
    on: z.string().openapi({ example: 'run.failed' }),
    source: z.string().nullable().openapi({ description: 'Only events of this workflow; null: any' }),
    filter: z.string().nullable().openapi({ example: "trigger.run.step == 'charge'" }),
    enabled: z.boolean(),
  })
  .openapi('EventTrigger');

const listTriggers = createRoute({
  method: 'get',
  path: '/api/v1/events/triggers',
  tags: ['events'],
  summary: 'The event triggers of registered workflows: the event, its source, the filter',
  responses: { 200: { description: 'the event triggers', content: { 'application/json': { schema: z.object({ triggers: z.array(EventTriggerSchema) }) } } } },
});

export function eventRoutes(app: OpenAPIHono, swarm: Swarm): void {
  app.openapi(listTriggers, async (c) => sendJson(c, 200, { triggers: (await swarm.listEventTriggers()).map(eventTriggerJson) }));

  app.openapi(emit, async (c) => {
    const body = c.req.valid('json');
    const key = c.req.valid('header')['idempotency-key'];
    if (key !== undefined && body.id !== undefined && key !== body.id) {
      throw new UserError('EVENT_ID_INVALID', `the Idempotency-Key header ('${key}') and the body's id ('${body.id}') differ; give one of them`, { field: 'id' });
    }
    const id = body.id ?? key;
    const out = await swarm.emitEvent(body.name, body.data ?? {}, { ...(id !== undefined ? { id } : {}), ...(body.source !== undefined ? { source: body.source } : {}) });
    return sendJson(c, out.created ? 201 : 200, { event_id: out.id, name: out.name, runs: out.runs, skipped: out.skipped }, out.created ? {} : { 'idempotent-replayed': 'true' });
  });
}
