/**
 * Secrets through the encrypted vault, as `swarm secrets list | set | delete` do: names, scopes and
 * dates go out, values only come in (a PUT's body) and are never in an answer or an error.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { UserError } from '../../core/errors.js';
import type { Swarm } from '../../swarm.js';
import { problems } from '../schemas.js';
import { sendJson } from '../send.js';
import { secretJson } from '../../views/secret.js';

const SecretInfoSchema = z
  .object({
    name: z.string(),
    scope: z.enum(['global', 'workflow']),
    workflow: z.string().nullable(),
    key_id: z.string().openapi({ description: 'The master key generation that wraps it' }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi('SecretInfo', { description: 'A stored secret, without its value' });

const NameParams = z.object({ name: z.string().min(1).openapi({ param: { name: 'name', in: 'path' }, example: 'API_KEY' }) });
const ScopeQuery = z.object({ workflow: z.string().min(1).optional().openapi({ description: "The workflow the secret belongs to (none: a global secret)" }) });

const listSecrets = createRoute({
  method: 'get',
  path: '/api/v1/secrets',
  tags: ['secrets'],
  summary: 'Stored secrets: names, scopes and dates, never values',
  request: { query: ScopeQuery },
  responses: { 200: { description: 'the secrets', content: { 'application/json': { schema: z.object({ secrets: z.array(SecretInfoSchema) }) } } }, ...problems(400, 422) },
});

const putSecret = createRoute({
  method: 'put',
  path: '/api/v1/secrets/{name}',
  tags: ['secrets'],
  summary: 'Store a secret (encrypted), global or for one workflow',
  request: {
    params: NameParams,
    body: {
      required: true,
      content: {
        'application/json': {
          schema: z
            .object({ value: z.string().openapi({ description: 'The value (never shown again)' }), workflow: z.string().min(1).optional().openapi({ description: 'Only runs of this workflow see it' }) })
            .strict()
            .openapi('PutSecret'),
        },
      },
    },
  },
  responses: {
    200: { description: 'replaced', content: { 'application/json': { schema: SecretInfoSchema } } },
    201: { description: 'created', content: { 'application/json': { schema: SecretInfoSchema } } },
    ...problems(400, 413, 422),
  },
});

const deleteSecret = createRoute({
  method: 'delete',
  path: '/api/v1/secrets/{name}',
  tags: ['secrets'],
  summary: 'Delete a stored secret',
  request: { params: NameParams, query: ScopeQuery },
  responses: { 204: { description: 'deleted' }, ...problems(400, 404) },
});

const scopeOf = (workflow: string | undefined): { workflow?: string } => (workflow === undefined ? {} : { workflow });
const scopeText = (workflow: string | undefined): string => (workflow === undefined ? 'global' : `workflow ${workflow}`);

export function secretRoutes(app: OpenAPIHono, swarm: Swarm): void {
  const info = async (name: string, workflow: string | undefined): Promise<Record<string, unknown>> => {
    const s = (await swarm.listSecrets(scopeOf(workflow))).find((x) => x.name === name && x.workflow === (workflow ?? null));
    if (!s) throw new UserError('SECRET_NOT_FOUND', `no stored secret ${name} (${scopeText(workflow)})`, { secret: name });
    return secretJson(s);
  };

  app.openapi(listSecrets, async (c) => {
    const { workflow } = c.req.valid('query');
    const list = await swarm.listSecrets(scopeOf(workflow));
    return sendJson(c, 200, { secrets: list.map(secretJson) });
  });

  app.openapi(putSecret, async (c) => {
    const { name } = c.req.valid('param');
    const { value, workflow } = c.req.valid('json');
    const result = await swarm.setSecret(name, value, scopeOf(workflow));
    return sendJson(c, result === 'created' ? 201 : 200, await info(name, workflow), { location: `/api/v1/secrets/${encodeURIComponent(name)}${workflow ? `?workflow=${encodeURIComponent(workflow)}` : ''}` });
  });

  app.openapi(deleteSecret, async (c) => {
    const { name } = c.req.valid('param');
    const { workflow } = c.req.valid('query');
    if (!(await swarm.deleteSecret(name, scopeOf(workflow)))) throw new UserError('SECRET_NOT_FOUND', `no stored secret ${name} (${scopeText(workflow)}); see GET /api/v1/secrets`, { secret: name });
    return c.body(null, 204);
  });
}
