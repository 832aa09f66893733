/**
 * Circuit breakers over the API: `GET /api/v1/breakers` (read scope) lists the breakers with state,
 * `POST /api/v1/breakers/{key}/reset` (admin scope) closes one. The key goes URL-encoded
 * (`model%3Aopenai%2Fgpt-4o-mini`). As `swarm breakers` does.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { listBreakerViews, resetBreaker } from '../../guardrails/breaker-admin.js';
import type { Swarm } from '../../swarm.js';
import { problems } from '../schemas.js';
import { sendJson } from '../send.js';

const BreakerSchema = z
  .object({
    key: z.string().openapi({ example: 'model:openai/gpt-4o-mini' }),
    kind: z.enum(['model', 'tool', 'mcp', 'http_host']).or(z.string()),
    name: z.string().openapi({ example: 'openai/gpt-4o-mini' }),
    state: z.enum(['closed', 'open', 'half_open']),
    failures: z.number().int().openapi({ description: 'Closed: failures in the current window. Open or half-open: the failures that opened it (its window’s, plus each failed probe’s since)' }),
    opened_at: z.string().nullable(),
    probe_at: z.string().nullable().openapi({ description: 'When an open breaker lets a probe through: when it opened plus the cool-down it opened with (an agent’s own, if it set one)' }),
    probes: z.number().int().openapi({ description: 'Probes let through and not yet settled (half-open)' }),
    updated_at: z.string(),
  })
  .openapi('Breaker');

const BreakerParams = z.object({ key: z.string().min(1).openapi({ param: { name: 'key', in: 'path' }, example: 'model%3Aopenai%2Fgpt-4o-mini', description: 'The breaker key, URL-encoded' }) });

const listBreakers = createRoute({
  method: 'get',
  path: '/api/v1/breakers',
  tags: ['breakers'],
  summary: 'Circuit breakers with state (one not listed is closed)',
  responses: { 200: { description: 'breakers', content: { 'application/json': { schema: z.object({ breakers: z.array(BreakerSchema) }) } } }, ...problems(401, 403) },
});

const resetBreakerRoute = createRoute({
  method: 'post',
  path: '/api/v1/breakers/{key}/reset',
  tags: ['breakers'],
  summary: 'Close a circuit breaker now (workers see it within 250 ms)',
  request: { params: BreakerParams },
  responses: { 200: { description: 'the breaker as it was before the reset', content: { 'application/json': { schema: BreakerSchema } } }, ...problems(400, 401, 403, 404) },
});

export function breakerRoutes(app: OpenAPIHono, swarm: Swarm): void {
  app.openapi(listBreakers, async (c) => sendJson(c, 200, { breakers: await listBreakerViews(swarm.store, swarm.config.guardrails.breakers) }));
  app.openapi(resetBreakerRoute, async (c) => sendJson(c, 200, await resetBreaker(swarm.store, c.req.valid('param').key, swarm.config.guardrails.breakers)));
}
