/**
 * The agents' vector memory (docs/memory.md): list a namespace's memories, search it by text (the
 * query is embedded with the model that embedded the namespace, or `model`), forget one memory or
 * the whole namespace. Read scope to list and search; deleting needs admin.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Swarm } from '../../swarm.js';
import { memoryJson } from '../../memory/json.js';
import { problems } from '../schemas.js';
import { sendJson } from '../send.js';

const MemorySchema = z
  .object({
    id: z.string(),
    namespace: z.string(),
    text: z.string(),
    source: z.enum(['conversation_summary', 'tool_result', 'explicit']),
    metadata: z.record(z.string(), z.unknown()),
    run_id: z.string().nullable(),
    step_id: z.string().nullable(),
    session_id: z.string().nullable(),
    created_at: z.string(),
    dimensions: z.number().int(),
    score: z.number().optional().openapi({ description: 'Search only: cosine similarity to the query (1: the same direction)' }),
  })
  .openapi('Memory');

const NamespaceParams = z.object({
  namespace: z.string().min(1).max(200).openapi({ param: { name: 'namespace', in: 'path' }, example: 'support-42', description: "A memory namespace (an agent's memory.namespace, resolved)" }),
});

const listRoute = createRoute({
  method: 'get',
  path: '/api/v1/memory/{namespace}',
  tags: ['memory'],
  summary: "A namespace's memories, newest first",
  request: {
    params: NamespaceParams,
    query: z.object({
      limit: z.coerce.number().int().min(1).max(1000).optional().openapi({ description: 'At most this many (default 100)' }),
      before: z.string().regex(/^\d+$/).optional().openapi({ description: 'Only memories with a smaller id (the last id of the previous page)' }),
    }),
  },
  responses: { 200: { description: 'the memories', content: { 'application/json': { schema: z.object({ memories: z.array(MemorySchema) }) } } }, ...problems(400) },
});

const searchRoute = createRoute({
  method: 'post',
  path: '/api/v1/memory/{namespace}/search',
  tags: ['memory'],
  summary: 'The memories nearest to a text (cosine), best first',
  request: {
    params: NamespaceParams,
    body: {
      content: {
        'application/json': {
          schema: z.object({
            text: z.string().min(1).max(100_000),
            k: z.number().int().min(1).max(100).optional().openapi({ description: 'How many (default 5)' }),
            model: z.string().optional().openapi({ description: 'provider/model embedding the query; default: the model of the namespace’s newest memory' }),
          }),
        },
      },
    },
  },
  responses: { 200: { description: 'the hits', content: { 'application/json': { schema: z.object({ memories: z.array(MemorySchema) }) } } }, ...problems(400, 503) },
});

const deleteRoute = createRoute({
  method: 'delete',
  path: '/api/v1/memory/{namespace}',
  tags: ['memory'],
  summary: 'Forget one memory (?id=) or the whole namespace',
  request: { params: NamespaceParams, query: z.object({ id: z.string().regex(/^\d+$/).optional() }) },
  responses: { 200: { description: 'how many were deleted', content: { 'application/json': { schema: z.object({ deleted: z.number().int() }) } } }, ...problems(400) },
});

export function memoryRoutes(app: OpenAPIHono, swarm: Swarm): void {
  app.openapi(listRoute, async (c) => {
    const { namespace } = c.req.valid('param');
    const q = c.req.valid('query');
    const list = await swarm.memory.list(namespace, { limit: q.limit ?? 100, ...(q.before ? { before: q.before } : {}) });
    return sendJson(c, 200, { memories: list.map(memoryJson) });
  });
  app.openapi(searchRoute, async (c) => {
    const { namespace } = c.req.valid('param');
    const b = c.req.valid('json');
    const hits = await swarm.memory.search(namespace, b.text, { k: b.k ?? 5, ...(b.model ? { model: b.model } : {}) });
    return sendJson(c, 200, { memories: hits.map(memoryJson) });
  });
  app.openapi(deleteRoute, async (c) => {
    const { namespace } = c.req.valid('param');
    const { id } = c.req.valid('query');
    return sendJson(c, 200, { deleted: await swarm.memory.delete(namespace, id) });
  });
}
