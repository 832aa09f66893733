/**
 * Workers: the processes executing steps (`swarm worker`, `swarm serve`'s own, one-off `swarm run`s)
 * that have not stopped, with their heartbeats, as `swarm db status` counts them. Read scope.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Swarm, WorkerStatus } from '../../swarm.js';
import { sendJson } from '../send.js';

const WorkerSchema = z
  .object({
    id: z.string(),
    hostname: z.string(),
    pid: z.number().int(),
    concurrency: z.number().int().openapi({ description: 'How many steps it runs at once' }),
    only_run: z.string().nullable().openapi({ description: 'A one-off worker (`swarm run`): the run it is limited to; null: a general worker' }),
    started_at: z.string(),
    heartbeat_at: z.string(),
    heartbeat_age_ms: z.number().int().openapi({ description: "How long ago its last heartbeat was, on the store's clock" }),
    live: z.boolean().openapi({ description: 'Heartbeated within a lease period and, on the server’s machine, its process is there' }),
  })
  .openapi('Worker');

const listWorkers = createRoute({
  method: 'get',
  path: '/api/v1/workers',
  tags: ['workers'],
  summary: 'Workers that have not stopped, oldest first, with their last heartbeat and whether they are live',
  responses: { 200: { description: 'the workers', content: { 'application/json': { schema: z.object({ workers: z.array(WorkerSchema) }) } } } },
});

/** A worker as the API shows it. */
export function workerJson(w: WorkerStatus): z.infer<typeof WorkerSchema> {
  return {
    id: w.id,
    hostname: w.hostname,
    pid: w.pid,
    concurrency: w.concurrency,
    only_run: w.scope,
    started_at: new Date(w.started_at).toISOString(),
    heartbeat_at: new Date(w.heartbeat_at).toISOString(),
    heartbeat_age_ms: Math.round(w.heartbeat_age_ms),
    live: w.live,
  };
}

export function workerRoutes(app: OpenAPIHono, swarm: Swarm): void {
  app.openapi(listWorkers, async (c) => sendJson(c, 200, { workers: (await swarm.listWorkers()).map(workerJson) }));
}
