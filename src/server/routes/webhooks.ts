/**
 * Webhooks: `POST /webhooks/{path}` (and the seed's alias `POST /workflows/{path}/trigger`) receive
 * deliveries; `GET /webhooks` and `GET /api/v1/webhooks` list the paths. Deliveries are
 * authenticated by their signature (src/triggers/webhook-delivery.ts), not by API tokens. The path
 * may contain '/', which OpenAPI path templates cannot say: the routes are matched by pattern and
 * documented in the OpenAPI registry separately.
 */
import { z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Swarm } from '../../swarm.js';
import { webhookRunKey } from '../../triggers/webhook-delivery.js';
import { runJson } from '../../views/run.js';
import { webhookJson } from '../../views/triggers.js';
import { problems, RunSchema } from '../schemas.js';
import { sendJson } from '../send.js';
import { requestHeaders, requestPath } from '../request.js';
import { UserError } from '../../core/errors.js';

const WebhookSchema = z
  .object({
    path: z.string().openapi({ example: 'shop/orders' }),
    url: z.string().openapi({ example: '/webhooks/shop/orders' }),
    workflow: z.string(),
    version: z.string(),
    enabled: z.boolean(),
    auth: z.enum(['signature', 'none']),
    scheme: z.enum(['standard', 'github', 'stripe', 'hmac']).nullable(),
    delivery_id: z.string().nullable().openapi({ description: 'Where the delivery id (the dedup key) comes from; null: deliveries are not deduplicated' }),
  })
  .openapi('Webhook');

const WebhookList = z.object({ webhooks: z.array(WebhookSchema) });

const DeliveryParams = z.object({ path: z.string().openapi({ param: { name: 'path', in: 'path' }, example: 'shop/orders', description: "The webhook's path (may contain '/')" }) });

export function webhookRoutes(app: OpenAPIHono, swarm: Swarm): void {
  const list = async (c: Context): Promise<Response> => sendJson(c, 200, { webhooks: (await swarm.listWebhooks()).map(webhookJson) });
  app.get('/webhooks', list);
  app.get('/api/v1/webhooks', list);

  const deliver = (prefix: string, suffix: string) => async (c: Context): Promise<Response> => {
    const pathname = requestPath(c);
    let path: string;
    try {
      path = decodeURIComponent(pathname.slice(prefix.length, pathname.length - suffix.length));
    } catch {
      throw new UserError('WEBHOOK_NOT_FOUND', `no webhook at ${pathname}: its path is not valid percent-encoding`, { path: pathname });
    }
    // The raw bytes: the signature covers them exactly (the body limit applies while they are read).
    const body = new Uint8Array(await c.req.arrayBuffer());
    const out = await swarm.deliverWebhook(path, { headers: requestHeaders(c), body });
    const details = out.details ?? (await swarm.getRun(out.runId));
    return sendJson(c, out.created ? 202 : 200, runJson(details), {
      location: `/api/v1/runs/${out.runId}`,
      ...(out.created ? {} : { 'idempotent-replayed': 'true' }),
    });
  };
  app.post('/webhooks/:path{.+}', deliver('/webhooks/', ''));
  app.post('/workflows/:path{.+}/trigger', deliver('/workflows/', '/trigger'));

  for (const [path, alias] of [['/webhooks/{path}', false], ['/workflows/{path}/trigger', true]] as const) {
    app.openAPIRegistry.registerPath({
      method: 'post',
      path,
      tags: ['webhooks'],
      summary: alias ? 'Deliver a webhook (the seed’s route; the same as POST /webhooks/{path})' : 'Deliver a webhook: start its workflow’s run with the JSON body as trigger data',
      description: `Authenticated by the delivery's signature (scheme standard, github, stripe or hmac, as the workflow's trigger says), not by API tokens. The delivery id becomes the run's idempotency key \`${webhookRunKey('<path>', '<delivery id>')}\`: a redelivery answers 200 with the run the first one created and \`Idempotent-Replayed: true\`.`,
      request: { params: DeliveryParams, body: { required: false, content: { 'application/json': { schema: z.record(z.string(), z.unknown()).openapi({ description: "The trigger data, checked against the workflow's inputs" }) } } } },
      responses: {
        200: { description: 'A redelivery: the run the first delivery created', content: { 'application/json': { schema: RunSchema } } },
        202: { description: 'The run was created', content: { 'application/json': { schema: RunSchema } } },
        ...problems(400, 401, 404, 409, 413, 422, 503),
      },
    });
  }
  for (const path of ['/webhooks', '/api/v1/webhooks']) {
    app.openAPIRegistry.registerPath({
      method: 'get',
      path,
      tags: ['webhooks'],
      summary: 'The webhook paths, the workflows they start and how deliveries are verified (never secrets)',
      responses: { 200: { description: 'the webhooks', content: { 'application/json': { schema: WebhookList } } } },
    });
  }
}

