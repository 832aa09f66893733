/**
 * Signals: `POST /api/v1/runs/{id}/signals/{name}` sends one to a run (`swarm runs signal` over
 * HTTP), `GET /api/v1/runs/{id}/signals` lists them. A `kind: wait` step with `signal: <name>` takes
 * the oldest kept signal of its name; the JSON body is the signal's data (the step's outputs).
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Swarm } from '../../swarm.js';
import { problems, RunParams } from '../schemas.js';
import { sendJson } from '../send.js';

const SignalParams = RunParams.extend({
  name: z.string().min(1).max(100).openapi({ param: { name: 'name', in: 'path' }, example: 'approved', description: "Letters, digits, '.', '_' and '-'" }),
});

const SignalBody = z.record(z.string(), z.unknown()).openapi('SignalData', { example: { approved_by: 'alice' }, description: 'The signal data: a JSON object (default {}); the wait step outputs it' });

const SentSchema = z
  .object({
    run_id: z.string(),
    name: z.string(),
    seq: z.number().int().openapi({ description: 'The signal number (signals of a run are taken in this order)' }),
    delivered_to: z.string().nullable().openapi({ description: 'The wait step that took it now, or null: kept until a wait step takes it' }),
  })
  .openapi('SignalSent');

const SignalSchema = z
  .object({
    seq: z.number().int(),
    name: z.string(),
    data: z.unknown(),
    sent_at: z.string(),
    consumed_by: z.string().nullable().openapi({ description: 'The wait step that took it (null: kept)' }),
    consumed_at: z.string().nullable(),
  })
  .openapi('Signal');

const send = createRoute({
  method: 'post',
  path: '/api/v1/runs/{id}/signals/{name}',
  tags: ['runs'],
  summary: 'Send a signal to a run: a wait step with this signal name takes it (kept until one does)',
  request: { params: SignalParams, body: { required: false, content: { 'application/json': { schema: SignalBody } } } },
  responses: {
    202: { description: 'recorded (and delivered, when a step was waiting for it)', content: { 'application/json': { schema: SentSchema } } },
    ...problems(400, 404, 409, 413, 422),
  },
});

const list = createRoute({
  method: 'get',
  path: '/api/v1/runs/{id}/signals',
  tags: ['runs'],
  summary: 'The signals sent to a run, oldest first',
  request: { params: RunParams },
  responses: {
    200: { description: 'the signals', content: { 'application/json': { schema: z.object({ run_id: z.string(), signals: z.array(SignalSchema) }) } } },
    ...problems(400, 404),
  },
});

export function signalRoutes(app: OpenAPIHono, swarm: Swarm): void {
  app.openapi(send, async (c) => {
    const { id, name } = c.req.valid('param');
    const data = (c.req.valid('json') as Record<string, unknown> | undefined) ?? {};
    const out = await swarm.signalRun(id, name, data);
    return sendJson(c, 202, out);
  });

  app.openapi(list, async (c) => {
    const { run_id: runId, signals: sent } = await swarm.runSignals(c.req.valid('param').id);
    const signals = sent.map((s) => ({
      seq: s.seq,
      name: s.name,
      data: JSON.parse(s.data_json) as unknown,
      sent_at: new Date(s.created_at).toISOString(),
      consumed_by: s.consumed_by,
      consumed_at: s.consumed_at === null ? null : new Date(s.consumed_at).toISOString(),
    }));
    return sendJson(c, 200, { run_id: runId, signals });
  });
}
