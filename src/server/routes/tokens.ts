/**
 * API tokens over the API (admin scope): list, create (the token is in the answer once), revoke.
 * And `POST /api/v1/stream-tokens` (read scope): a 5-minute read-only token for `?access_token=` on
 * stream routes. Each goes through the public Swarm API, as `swarm tokens` does.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { parseExpiry, parseScopes, SCOPES, TOKEN_NAME_MAX, tokenJson } from '../../auth/tokens.js';
import type { Swarm } from '../../swarm.js';
import { principalOf } from '../auth.js';
import { problems } from '../schemas.js';
import { sendJson } from '../send.js';

const TokenSchema = z
  .object({
    id: z.string().openapi({ example: '3f9c0a1b2c3d' }),
    name: z.string().openapi({ example: 'ci' }),
    scopes: z.array(z.enum(SCOPES)),
    status: z.enum(['active', 'expired', 'revoked']),
    created_at: z.string(),
    expires_at: z.string().nullable(),
    last_used_at: z.string().nullable().openapi({ description: 'Recorded at most once a minute' }),
    revoked_at: z.string().nullable(),
  })
  .openapi('Token');

const TokenParams = z.object({ id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, example: '3f9c0a1b2c3d' }) });

const CreateTokenBody = z
  .object({
    name: z.string().max(TOKEN_NAME_MAX).optional().openapi({ example: 'ci' }),
    scopes: z.union([z.array(z.string()).min(1), z.string().min(1)]).openapi({ description: `Scopes (${SCOPES.join(', ')}; aliases run, approve), as an array or a comma-separated list`, example: ['read', 'runs:write'] }),
    expires: z.string().optional().openapi({ description: "A duration (90m, 12h, 30d, 8w), a date, or 'never' (the default)", example: '30d' }),
  })
  .strict()
  .openapi('CreateToken');

const listTokens = createRoute({
  method: 'get',
  path: '/api/v1/tokens',
  tags: ['tokens'],
  summary: 'API tokens (revoked and expired ones too); never a secret',
  responses: { 200: { description: 'tokens', content: { 'application/json': { schema: z.object({ tokens: z.array(TokenSchema) }) } } }, ...problems(401, 403) },
});

const createToken = createRoute({
  method: 'post',
  path: '/api/v1/tokens',
  tags: ['tokens'],
  summary: 'Create an API token: the answer holds the token, this once (only its hash is stored)',
  request: { body: { required: true, content: { 'application/json': { schema: CreateTokenBody } } } },
  responses: {
    201: { description: 'created', content: { 'application/json': { schema: TokenSchema.extend({ token: z.string().openapi({ example: 'swarm_3f9c0a1b2c3d_…' }) }) } } },
    ...problems(400, 401, 403, 422),
  },
});

const revokeToken = createRoute({
  method: 'delete',
  path: '/api/v1/tokens/{id}',
  tags: ['tokens'],
  summary: 'Revoke a token (it is kept, marked revoked); other server processes stop accepting it within 5 s',
  request: { params: TokenParams },
  responses: { 200: { description: 'the token, revoked', content: { 'application/json': { schema: TokenSchema } } }, ...problems(401, 403, 404) },
});

const mintStreamToken = createRoute({
  method: 'post',
  path: '/api/v1/stream-tokens',
  tags: ['tokens'],
  summary: 'A read-only token of 5 minutes for ?access_token= on GET …/stream routes (EventSource cannot send headers)',
  responses: {
    201: { description: 'minted', content: { 'application/json': { schema: z.object({ token: z.string(), expires_at: z.string(), scopes: z.array(z.literal('read')) }) } } },
    ...problems(401, 403),
  },
});

/** Answers holding a token must not be kept by a cache on the way. */
const NO_STORE = { 'cache-control': 'no-store' };

export function tokenRoutes(app: OpenAPIHono, swarm: Swarm): void {
  // How every route is authenticated (src/server/auth.ts), for the OpenAPI document's readers.
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer', description: 'An API token (swarm tokens create): Authorization: Bearer swarm_<id>_<secret>' });
  app.openapi(listTokens, async (c) => sendJson(c, 200, { tokens: (await swarm.listTokens()).map(tokenJson) }));

  app.openapi(createToken, async (c) => {
    const body = c.req.valid('json');
    const created = await swarm.createToken({
      ...(body.name !== undefined ? { name: body.name } : {}),
      scopes: parseScopes(body.scopes),
      expiresAt: parseExpiry(body.expires, Date.now(), 'expires'),
    });
    return sendJson(c, 201, { token: created.token, ...tokenJson(created.info) }, { ...NO_STORE, location: `/api/v1/tokens/${created.info.id}` });
  });

  app.openapi(revokeToken, async (c) => sendJson(c, 200, tokenJson((await swarm.revokeToken(c.req.valid('param').id)).info)));

  app.openapi(mintStreamToken, (c) => {
    const minted = swarm.mintStreamToken(principalOf(c));
    return sendJson(c, 201, { token: minted.token, expires_at: new Date(minted.expires_at).toISOString(), scopes: minted.scopes }, NO_STORE);
  });
}
