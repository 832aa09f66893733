/**
 * `GET /metrics`: the Prometheus exposition of this process (text format 0.0.4), when the Swarm was
 * opened with metrics (`swarm serve` does, unless `metrics: {enabled: false}` in swarm.yaml). It is a
 * read like any other: the `read` scope once API tokens exist, open on loopback while none does.
 * Also the middleware counting webhook deliveries by outcome, which sits in front of the body limit
 * so that a refused body is counted too.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import { z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type { Swarm } from '../../swarm.js';
import type { WebhookOutcome } from '../../observability/engine-metrics.js';
import { problem, problemResponse } from '../problem.js';
import { problems } from '../schemas.js';
import { requestPath } from '../request.js';

export function metricsRoutes(app: OpenAPIHono, swarm: Swarm): void {
  app.get('/metrics', async (c) => {
    const metrics = swarm.metrics;
    if (!metrics) return problemResponse(c, problem(404, 'METRICS_DISABLED', 'metrics are off in this process (metrics: {enabled: false} in swarm.yaml); nothing to scrape'));
    return c.body(await metrics.render(), 200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
  });
  app.openAPIRegistry.registerPath({
    method: 'get',
    path: '/metrics',
    tags: ['health'],
    summary: 'Prometheus metrics of this process and the store-wide queue gauges (text exposition format)',
    description: 'Every metric is listed in docs/observability.md#metrics. Needs the `read` scope once API tokens exist.',
    responses: {
      200: { description: 'the exposition', content: { 'text/plain; version=0.0.4': { schema: z.string() } } },
      ...problems(401, 403, 404),
    },
  });
}

/** The outcome label of a webhook delivery, by the status it was answered with. */
function outcomeOf(status: number): WebhookOutcome {
  if (status === 202) return 'accepted';
  if (status === 200) return 'duplicate';
  if (status === 401) return 'bad_signature';
  if (status === 404) return 'not_found';
  if (status === 409) return 'disabled';
  if (status === 413) return 'too_large';
  if (status >= 500) return 'error';
  return 'invalid';
}

/**
 * Count webhook deliveries (`POST /webhooks/{path}`, `POST /workflows/{path}/trigger`) by outcome.
 * The path is a label only when a webhook is registered there (the delivery got past the lookup);
 * an unknown path, a body refused before the lookup, or a server error at a path where no webhook is
 * registered, counts under path "" (labels stay bounded).
 */
export function webhookMetrics(swarm: Swarm): MiddlewareHandler {
  return async (c, next) => {
    const metrics = swarm.metrics;
    const pathname = requestPath(c);
    const alias = pathname.startsWith('/workflows/');
    if (!metrics || c.req.method !== 'POST' || (alias && !pathname.endsWith('/trigger'))) return next();
    await next();
    const outcome = outcomeOf(c.res.status);
    let path = '';
    if (outcome !== 'not_found' && outcome !== 'too_large') {
      try {
        path = decodeURIComponent(alias ? pathname.slice('/workflows/'.length, -'/trigger'.length) : pathname.slice('/webhooks/'.length));
      } catch {
        path = '';
      }
      // A server error may come from the lookup itself (the store away): the path is then whatever
      // the caller sent, a label only if a webhook is registered there. Errors are rare: one read.
      if (outcome === 'error' && path !== '') {
        const known = await swarm.listWebhooks().catch(() => []);
        if (!known.some((t) => t.webhook_path === path)) path = '';
      }
    }
    metrics.webhookRequest(path, outcome);
  };
}
