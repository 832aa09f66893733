/** Liveness, readiness and what this server is: `/healthz`, `/readyz`, `/health` (the seed's), `/api/v1/info`. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { StoreError } from '../../core/errors.js';
import type { ServerInfo } from '../app.js';
import { problems } from '../schemas.js';
import { sendJson } from '../send.js';
import type { Swarm } from '../../swarm.js';

const Ok = z.object({ status: z.literal('ok') }).openapi('Ok');

const healthz = createRoute({
  method: 'get',
  path: '/healthz',
  tags: ['health'],
  summary: 'Liveness: the process answers',
  responses: { 200: { description: 'alive', content: { 'application/json': { schema: Ok } } } },
});

const health = createRoute({
  method: 'get',
  path: '/health',
  tags: ['health'],
  summary: 'Liveness (the trigger server route of the original design; same as /healthz)',
  responses: { 200: { description: 'alive', content: { 'application/json': { schema: Ok } } } },
});

const readyz = createRoute({
  method: 'get',
  path: '/readyz',
  tags: ['health'],
  summary: 'Readiness: the store answers and its schema is the one this build expects',
  responses: {
    200: { description: 'ready', content: { 'application/json': { schema: z.object({ status: z.literal('ready'), store: z.string(), schema_version: z.number().int() }) } } },
    ...problems(503),
  },
});

const InfoSchema = z
  .object({
    name: z.literal('swarm'),
    version: z.string(),
    store: z.object({ kind: z.enum(['sqlite', 'postgres']), schema_version: z.number().int(), durability: z.string() }),
    worker: z.object({ running: z.boolean(), concurrency: z.number().int().nullable() }),
    sandbox: z.string(),
  })
  .openapi('Info');

const info = createRoute({
  method: 'get',
  path: '/api/v1/info',
  tags: ['health'],
  summary: 'Version, store, worker and sandbox of this server',
  responses: { 200: { description: 'server information', content: { 'application/json': { schema: InfoSchema } } } },
});

export function healthRoutes(app: OpenAPIHono, swarm: Swarm, server: ServerInfo): void {
  app.openapi(healthz, (c) => c.json({ status: 'ok' as const }, 200));
  app.openapi(health, (c) => c.json({ status: 'ok' as const }, 200));

  app.openapi(readyz, async (c) => {
    const found = await swarm.store.schemaVersion().catch((e: unknown) => {
      throw new StoreError('STORE_UNREACHABLE', `the store ${swarm.store.kind} cannot be reached: ${e instanceof Error ? e.message : String(e)}`);
    });
    const expected = swarm.store.supportedSchemaVersion;
    if (found !== expected) {
      throw new StoreError('STORE_NOT_MIGRATED', `the store is at schema version ${found}, this server expects ${expected}`, { found, expected });
    }
    return c.json({ status: 'ready' as const, store: swarm.store.kind, schema_version: found }, 200);
  });

  app.openapi(info, async (c) => {
    let sandbox: string;
    try {
      sandbox = swarm.isolation().sandbox;
    } catch (e) {
      sandbox = `unavailable (${e instanceof Error ? e.message : String(e)})`;
    }
    return sendJson(c, 200, {
      name: 'swarm',
      version: server.version,
      store: { kind: swarm.store.kind, schema_version: await swarm.store.schemaVersion(), durability: swarm.config.durability },
      worker: { running: server.worker !== null, concurrency: server.worker?.concurrency ?? null },
      sandbox,
    });
  });
}
