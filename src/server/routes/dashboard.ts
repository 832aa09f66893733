/**
 * The dashboard: the static pages built from web/ (`npm run build` puts them in dist/web), served at
 * / with the single-page app's paths answered by its index.html, and the session routes its login
 * page uses. The pages hold no data: everything they show comes from the API, which the session
 * cookie authenticates (HttpOnly, SameSite=Strict; writes must also carry this server's Origin, see
 * src/server/auth.ts).
 *
 * Any other path a browser asks for as a page (Accept: text/html; not under /api) gets the pages too,
 * with a 404: the app shows its "No such page" instead of the API's problem document. That page is
 * public like the others (`unroutedPaths` tells the auth middleware which paths no route serves), so
 * a browser not signed in gets it too, not a 401.
 *
 *   GET    /api/v1/session   whether a token is required and whether this browser has a valid one
 *   POST   /api/v1/session   {"token": "swarm_<id>_<secret>"}: checks the token, answers with the cookie
 *   DELETE /api/v1/session   removes the cookie
 *
 * @example
 *   curl -i -X POST http://127.0.0.1:8090/api/v1/session -H 'content-type: application/json' -d '{"token":"swarm_<id>_<secret>"}'
 *   # Set-Cookie: swarm_token=swarm_<id>_<secret>; Max-Age=…; Path=/; HttpOnly; SameSite=Strict
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Context, Hono } from 'hono';
import { TrieRouter } from 'hono/router/trie-router';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isStreamToken } from '../../auth/tokens.js';
import type { Swarm } from '../../swarm.js';
import { asksForPage, BEARER, DASHBOARD_PAGES, fromThisServer, TOKEN_COOKIE, type AuthMode } from '../auth.js';
import { problem, problemResponse } from '../problem.js';
import { problems } from '../schemas.js';

/** The package's root: the nearest directory above this module holding package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return dir;
    dir = up;
  }
  return dir;
}

/** Where the built pages are: dist/web of the package (the same for `node dist/…` and for tests run from src/). */
export function dashboardDir(): string {
  return join(packageRoot(), 'dist', 'web');
}

// Pages may load only this server's scripts and styles and talk only to this server. Inline style
// attributes are allowed: the DAG library positions its nodes with them.
const PAGE_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
};

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>Swarm</title><body style="font-family:system-ui;margin:40px">
<h1>The dashboard is not built</h1><p>Run <code>npm run build</code> in the Swarm checkout, then reload. The API works meanwhile: <a href="/api/v1/docs">/api/v1/docs</a>.</p></body>`;

const SessionSchema = z
  .object({
    auth_required: z.boolean().openapi({ description: 'Whether this server requires a token now' }),
    authenticated: z.boolean().openapi({ description: 'Whether the request carries a valid token (cookie or Authorization header)' }),
    token_id: z.string().nullable(),
    name: z.string().nullable(),
    scopes: z.array(z.string()),
  })
  .openapi('Session');

const getSession = createRoute({
  method: 'get',
  path: '/api/v1/session',
  tags: ['dashboard'],
  summary: "Whether a token is required, and who this browser's session is",
  responses: { 200: { description: 'the session', content: { 'application/json': { schema: SessionSchema } } } },
});

const createSession = createRoute({
  method: 'post',
  path: '/api/v1/session',
  tags: ['dashboard'],
  summary: 'Sign in: check an API token and set it as the HttpOnly session cookie (the dashboard login)',
  request: { body: { required: true, content: { 'application/json': { schema: z.object({ token: z.string().min(1).max(200) }).strict() } } } },
  responses: {
    200: { description: 'signed in; the answer sets the swarm_token cookie', content: { 'application/json': { schema: SessionSchema } } },
    ...problems(401, 403, 422),
  },
});

const deleteSession = createRoute({
  method: 'delete',
  path: '/api/v1/session',
  tags: ['dashboard'],
  summary: 'Sign out: remove the session cookie',
  responses: { 204: { description: 'signed out' } },
});

function bearer(c: Context): string | undefined {
  const m = BEARER.exec(c.req.header('authorization') ?? '');
  return m?.[1] ?? getCookie(c, TOKEN_COOKIE);
}

/**
 * Whether no route of `app` but its catch-alls (`*`: the front middleware, the not-found page below)
 * answers a GET of a path: the auth middleware's `unrouted` (src/server/auth.ts). Middleware under a
 * prefix (`/webhooks/*`, `/assets/*`) counts as a route. Read from `app.routes` when first asked,
 * and again once routes were added since.
 *
 * @example
 *   const unrouted = unroutedPaths(app);
 *   unrouted('/runs');          // false: a dashboard page
 *   unrouted('/no-such-page');  // true
 */
export function unroutedPaths(app: Pick<Hono, 'routes'>): (path: string) => boolean {
  let router: TrieRouter<true> | undefined;
  let seen = -1;
  return (path) => {
    if (!router || seen !== app.routes.length) {
      router = new TrieRouter<true>();
      for (const r of app.routes) if (r.path !== '*' && r.path !== '/*' && (r.method === 'GET' || r.method === 'ALL')) router.add('GET', r.path, true);
      seen = app.routes.length;
    }
    return router.match('GET', path)[0].length === 0;
  };
}

export function dashboardRoutes(app: OpenAPIHono, swarm: Swarm, mode: AuthMode): void {
  const required = async (): Promise<boolean> => mode === 'required' || (mode === 'auto' && (await swarm.tokensRequired()));

  app.openapi(getSession, async (c) => {
    const token = bearer(c);
    const result = token !== undefined && token !== '' && !isStreamToken(token) ? await swarm.authenticateToken(token) : undefined;
    const p = result?.ok ? result.principal : undefined;
    // c.json, not sendJson: the answer keeps the headers set on the context (sendJson does not).
    c.header('cache-control', 'no-store');
    return c.json({ auth_required: await required(), authenticated: p !== undefined, token_id: p?.token_id ?? null, name: p?.name ?? null, scopes: p ? [...p.scopes] : [] }, 200);
  });

  app.openapi(createSession, async (c) => {
    // A login form on another site must not sign this browser in (as someone else).
    const origin = c.req.header('origin');
    if (origin !== undefined && !fromThisServer(c)) {
      return problemResponse(c, problem(403, 'AUTH_COOKIE_CROSS_ORIGIN', `a sign-in must come from a page of this server (${new URL(c.req.url).origin}), not ${origin}`)) as never;
    }
    const { token } = c.req.valid('json');
    c.header('cache-control', 'no-store');
    if (isStreamToken(token)) return problemResponse(c, problem(401, 'TOKEN_INVALID', 'a stream token cannot sign in: use an API token (swarm tokens create)')) as never;
    const result = await swarm.authenticateToken(token);
    if (!result.ok) return problemResponse(c, problem(401, result.code, result.reason)) as never;
    const p = result.principal;
    const expires = (await swarm.listTokens()).find((t) => t.id === p.token_id)?.expires_at ?? null;
    setCookie(c, TOKEN_COOKIE, token, {
      httpOnly: true,
      sameSite: 'Strict',
      path: '/',
      // Secure when the page is https, here or at a proxy that ends TLS in front of this server.
      secure: new URL(c.req.url).protocol === 'https:' || origin?.startsWith('https:') === true || c.req.header('x-forwarded-proto') === 'https',
      // The cookie lasts as long as the token does (at most 30 days: sign in again then).
      maxAge: Math.max(1, Math.min(30 * 86_400, expires === null ? 30 * 86_400 : Math.floor((expires - Date.now()) / 1000))),
    });
    return c.json({ auth_required: await required(), authenticated: true, token_id: p.token_id, name: p.name, scopes: [...p.scopes] }, 200);
  });

  app.openapi(deleteSession, (c) => {
    deleteCookie(c, TOKEN_COOKIE, { path: '/' });
    return c.body(null, 204);
  });

  const dir = dashboardDir();
  const indexFile = join(dir, 'index.html');
  let index: string | undefined;
  const page = (c: Context, status: 200 | 404 = 200): Response => {
    if (index === undefined && existsSync(indexFile)) index = readFileSync(indexFile, 'utf8');
    for (const [k, v] of Object.entries(PAGE_HEADERS)) c.header(k, v);
    c.header('cache-control', 'no-cache');
    return index === undefined ? c.html(NOT_BUILT, 503) : c.html(index, status);
  };
  // Hashed file names: a file never changes under its name, so browsers may keep it for a year.
  app.use(
    '/assets/*',
    serveStatic({
      root: dir,
      onFound: (_path, c) => {
        c.header('cache-control', 'public, max-age=31536000, immutable');
        c.header('x-content-type-options', 'nosniff');
      },
    }),
  );
  app.get('/favicon.svg', serveStatic({ root: dir, path: 'favicon.svg' }));
  for (const path of DASHBOARD_PAGES) app.get(path.replace('/**', '/*'), (c) => page(c));
  // Registered last, so it answers only what no route did: a page a browser asked for by a mistyped
  // or outdated link gets the app's own not-found page, signed in or not (the auth middleware lets
  // it through: see unroutedPaths). API paths, and clients that do not ask for HTML, keep the
  // problem document (app.notFound).
  app.get('*', async (c, next) => (asksForPage(c) ? page(c, 404) : next()));
}
