/**
 * Authentication of the HTTP API: one middleware, and ONE table saying which scope each route
 * needs. A request shows its token as `Authorization: Bearer <token>`, as the `swarm_token` cookie
 * (for the dashboard), or, on GET routes ending in `/stream` only, as `?access_token=<stream token>`
 * (EventSource cannot set headers; a stream token is read-only and lives 5 minutes).
 *
 * Modes: `auto` (default) requires a token as soon as one exists that is neither revoked nor
 * expired, and leaves the API open while there is none (local development on a loopback address;
 * `swarm serve` refuses other addresses in that state); `required` always requires one; `off` never
 * checks (an embedding application that authenticates in front of the API).
 *
 * Answers: no token, or a bad, expired or revoked one: 401 with `WWW-Authenticate: Bearer`; a token
 * without the route's scope: 403 naming the scope needed. A browser asking for a page no route
 * serves (`asksForPage`, `AuthOptions.unrouted`) is let through to the dashboard's not-found page.
 *
 * @example
 *   app.use('*', authMiddleware(swarm, 'auto'));
 *   scopeFor('POST', '/api/v1/workflows/hello/runs'); // 'runs:write'
 */
import { BoundedMemo } from '../core/bounded-memo.js';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { grants, isStreamToken, type Principal, type Scope } from '../auth/tokens.js';
import type { Swarm } from '../swarm.js';
import { problem, problemResponse, type Problem } from './problem.js';
import { isLoopbackHost } from '../net/address.js';

export type AuthMode = 'auto' | 'required' | 'off';

/** The dashboard's own paths (src/server/routes/dashboard.ts answers each with its index.html). */
export const DASHBOARD_PAGES = ['/', '/login', '/runs', '/runs/**', '/registry', '/registry/**', '/triggers', '/triggers/**', '/operations', '/operations/**', '/tasks', '/tasks/**'] as const;

/** The cookie a browser session carries its token in (HttpOnly; set by the dashboard). */
export const TOKEN_COOKIE = 'swarm_token';

declare module 'hono' {
  interface ContextVariableMap {
    /** Who the request is (null: the API is open, or the route is public). */
    principal: Principal | null;
  }
}

/** What a route needs: a scope, or nothing (`public`: authenticated otherwise, or not at all). */
export type RouteAccess = Scope | 'public';

interface Rule {
  /** `read`: GET, HEAD, OPTIONS; `write`: every other method; `any`: both. */
  methods: 'read' | 'write' | 'any';
  /** `{x}` is one path segment, `**` one or more. */
  path: string;
  access: RouteAccess;
}

/**
 * Which scope each route needs: the first rule that matches wins. Anything not named here needs
 * `read` to read and `admin` to write, so a new route is never open by accident.
 */
export const ROUTE_SCOPES: readonly Rule[] = [
  // Probes, the API's description, and routes that webhook signatures authenticate.
  { methods: 'any', path: '/healthz', access: 'public' },
  { methods: 'any', path: '/readyz', access: 'public' },
  { methods: 'any', path: '/health', access: 'public' },
  { methods: 'any', path: '/webhooks/**', access: 'public' },
  { methods: 'any', path: '/workflows/**/trigger', access: 'public' },
  { methods: 'read', path: '/api/v1/openapi.json', access: 'public' },
  { methods: 'read', path: '/api/v1/docs', access: 'public' },
  { methods: 'read', path: '/api/v1/docs/**', access: 'public' },
  // The dashboard's pages hold no data (the API calls they make are checked as any other), and its
  // session routes are how a browser signs in and out.
  { methods: 'any', path: '/api/v1/session', access: 'public' },
  ...DASHBOARD_PAGES.map((path) => ({ methods: 'read' as const, path, access: 'public' as const })),
  { methods: 'read', path: '/assets/**', access: 'public' },
  { methods: 'read', path: '/favicon.svg', access: 'public' },
  // Tokens and secrets: even reading them is the administrator's business.
  { methods: 'any', path: '/api/v1/tokens', access: 'admin' },
  { methods: 'any', path: '/api/v1/tokens/**', access: 'admin' },
  { methods: 'any', path: '/api/v1/secrets', access: 'admin' },
  { methods: 'any', path: '/api/v1/secrets/**', access: 'admin' },
  { methods: 'write', path: '/api/v1/breakers/**', access: 'admin' },
  { methods: 'write', path: '/api/v1/workflows/{name}/enable', access: 'admin' },
  { methods: 'write', path: '/api/v1/workflows/{name}/disable', access: 'admin' },
  { methods: 'write', path: '/api/v1/schedules/**/pause', access: 'admin' },
  { methods: 'write', path: '/api/v1/schedules/**/resume', access: 'admin' },
  { methods: 'write', path: '/api/v1/schedules/**/trigger', access: 'runs:write' },
  // Anyone who may read may follow a stream.
  { methods: 'write', path: '/api/v1/stream-tokens', access: 'read' },
  { methods: 'write', path: '/api/v1/approvals', access: 'approvals:write' },
  { methods: 'write', path: '/api/v1/approvals/**', access: 'approvals:write' },
  { methods: 'write', path: '/api/v1/runs/{id}/approvals/**', access: 'approvals:write' },
  { methods: 'write', path: '/api/v1/runs/{id}/signals/{name}', access: 'runs:write' },
  { methods: 'write', path: '/api/v1/runs', access: 'runs:write' },
  { methods: 'write', path: '/api/v1/runs/**', access: 'runs:write' },
  { methods: 'write', path: '/api/v1/workflows/{name}/runs', access: 'runs:write' },
  // Searching memory changes nothing (a POST for its body): who may read may search.
  { methods: 'write', path: '/api/v1/memory/{namespace}/search', access: 'read' },
  { methods: 'write', path: '/api/v1/events', access: 'runs:write' },
  { methods: 'write', path: '/api/v1/events/**', access: 'runs:write' },
  // A task runs as a run; a vote is a step of one.
  { methods: 'write', path: '/api/v1/tasks', access: 'runs:write' },
  { methods: 'write', path: '/api/v1/tasks/{id}/votes', access: 'runs:write' },
  { methods: 'read', path: '/**', access: 'read' },
  { methods: 'write', path: '/**', access: 'admin' },
];

const COMPILED = ROUTE_SCOPES.map((r) => ({
  ...r,
  re: new RegExp(
    `^${r.path
      .split(/(\{[^}]+\}|\*\*)/)
      .map((part) => (part === '**' ? '.+' : part.startsWith('{') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
  ),
}));

const isRead = (method: string): boolean => method === 'GET' || method === 'HEAD' || method === 'OPTIONS';

// Every request asks: the answers for the paths seen last are remembered (a workflow's runs route,
// a webhook's path), so most requests test no rule. Long paths are not kept.
const SCOPE_MEMO_PATH_CHARS = 256;
const scopeMemo = { read: new BoundedMemo<string, RouteAccess>(4096), write: new BoundedMemo<string, RouteAccess>(4096) };

/** The scope (or `public`) a request needs, from ROUTE_SCOPES. */
export function scopeFor(method: string, path: string): RouteAccess {
  const read = isRead(method.toUpperCase());
  if (path.length > SCOPE_MEMO_PATH_CHARS) return scopeOf(read, path);
  return (read ? scopeMemo.read : scopeMemo.write).get(path, () => scopeOf(read, path));
}

function scopeOf(read: boolean, path: string): RouteAccess {
  for (const r of COMPILED) {
    if (r.methods !== 'any' && (r.methods === 'read') !== read) continue;
    if (r.re.test(path)) return r.access;
  }
  return read ? 'read' : 'admin';
}

/** Who made the request (null when the API is open or the route public). */
export function principalOf(c: Context): Principal | null {
  return c.get('principal') ?? null;
}

const REALM = 'Bearer realm="swarm"';

/** `Authorization: Bearer <token>`: the token. */
export const BEARER = /^Bearer[ ]+(\S+)\s*$/i;

/** The event streams: the only routes that take a token in the query (EventSource sets no headers). */
const STREAM_ROUTES: readonly RegExp[] = [/^\/api\/v1\/runs\/stream$/, /^\/api\/v1\/runs\/[^/]+\/stream$/];

function unauthorized(c: Context, code: string, detail: string, presented: boolean): Response {
  // A header value is Latin-1 and the description a quoted string: keep it to plain ASCII without quotes.
  const description = detail.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?');
  c.header('WWW-Authenticate', presented ? `${REALM}, error="invalid_token", error_description="${description}"` : REALM);
  c.header('Cache-Control', 'no-store');
  return problemResponse(c, problem(401, code, detail));
}

function forbidden(c: Context, p: Problem, scope?: Scope): Response {
  if (scope) c.header('WWW-Authenticate', `${REALM}, error="insufficient_scope", scope="${scope}"`);
  return problemResponse(c, p);
}

type Credential = { token: string; via: 'header' | 'query' | 'cookie' } | { refuse: Response } | undefined;

/** The token a request shows, and how; or the answer refusing how it was shown. */
function credential(c: Context, read: boolean, stream: boolean): Credential {
  const header = c.req.header('authorization');
  if (header !== undefined) {
    const m = BEARER.exec(header);
    if (!m?.[1]) return { refuse: unauthorized(c, 'TOKEN_INVALID', "the Authorization header must be 'Bearer <token>'", true) };
    return { token: m[1], via: 'header' };
  }
  const query = c.req.query('access_token');
  if (query !== undefined) {
    if (!stream) return { refuse: unauthorized(c, 'AUTH_QUERY_TOKEN_REFUSED', '?access_token= is accepted only on the event streams (GET /api/v1/runs/stream, GET /api/v1/runs/{id}/stream); send Authorization: Bearer <token>', true) };
    // A long-lived token in a URL ends up in logs and histories: the query takes stream tokens only.
    if (!isStreamToken(query)) return { refuse: unauthorized(c, 'AUTH_QUERY_TOKEN_REFUSED', '?access_token= takes a stream token only (POST /api/v1/stream-tokens mints one); send an API token as Authorization: Bearer <token>', true) };
    return { token: query, via: 'query' };
  }
  const cookie = getCookie(c, TOKEN_COOKIE);
  if (cookie !== undefined && cookie !== '') {
    // A browser sends cookies with requests other sites make it send: a write must come from this origin.
    if (!read && !fromThisServer(c)) {
      return { refuse: forbidden(c, problem(403, 'AUTH_COOKIE_CROSS_ORIGIN', `a write authenticated by the ${TOKEN_COOKIE} cookie must carry an Origin header of this server (${new URL(c.req.url).origin}); other clients send Authorization: Bearer <token>`)) };
    }
    return { token: cookie, via: 'cookie' };
  }
  return undefined;
}

/** How an API without tokens guards itself against web pages (see `openRefusal`). */
export interface OpenApiOptions {
  /** Answer requests addressed to any host name (a server on a non-loopback address with --insecure). */
  openToAnyHost?: boolean;
}

/** The middleware's options: the open API's guards, and which paths no route serves. */
export interface AuthOptions extends OpenApiOptions {
  /**
   * Whether no route serves a GET of `path` (only the catch-alls would answer it). A browser asking
   * for such a page gets the dashboard's not-found page, public like the dashboard's other pages:
   * they hold no data. Unset: such a request needs `read`, as any path not in ROUTE_SCOPES.
   */
  unrouted?: (path: string) => boolean;
}

/**
 * Whether a request is a browser asking for a page: a GET or HEAD outside `/api` whose Accept names
 * `text/html`. The dashboard answers such a request for a path no route serves with its not-found
 * page (src/server/routes/dashboard.ts); every other client keeps the API's problem documents.
 */
export function asksForPage(c: Context): boolean {
  const method = c.req.method.toUpperCase();
  if (method !== 'GET' && method !== 'HEAD') return false;
  const path = c.req.path;
  if (path === '/api' || path.startsWith('/api/')) return false;
  return (c.req.header('accept') ?? '').includes('text/html');
}

/**
 * An open API (no token exists) trusts whoever reaches it, which on loopback means this machine. A
 * web page in a browser on this machine reaches it too: a cross-site form or fetch can POST to it
 * (refused here by its Origin), and a DNS-rebinding page reads its answers under its own host name
 * (refused by the Host header, which must then be a loopback name).
 */
function openRefusal(c: Context, read: boolean, options: OpenApiOptions): Response | undefined {
  const host = c.req.header('host') ?? new URL(c.req.url).host;
  const hostname = host.replace(/:\d+$/, '');
  if (!options.openToAnyHost && !isLoopbackHost(hostname)) {
    return problemResponse(c, problem(403, 'HOST_REFUSED', `this API has no token yet, so it answers only requests addressed to a loopback name (localhost, 127.x.x.x, [::1]), not '${host}'; create a token (POST /api/v1/tokens, sent to a loopback name) to use it from elsewhere`, { hint: 'POST /api/v1/tokens' }));
  }
  const origin = c.req.header('origin');
  if (!read && origin !== undefined && origin !== 'null' && safeHost(origin) !== host.toLowerCase()) {
    return problemResponse(c, problem(403, 'ORIGIN_REFUSED', `a write from a web page of another origin (${origin}) is refused while this API has no token; create a token (POST /api/v1/tokens) and send it as Authorization: Bearer <token>`, { hint: 'POST /api/v1/tokens' }));
  }
  if (!read && origin === 'null') {
    return problemResponse(c, problem(403, 'ORIGIN_REFUSED', 'a write from an opaque origin (Origin: null) is refused while this API has no token'));
  }
  return undefined;
}

/**
 * Whether the request's Origin names this server: its host (name and port) is the one the request
 * was addressed to. The scheme is not compared: behind a proxy that ends TLS the page is https and
 * the request the server sees is http, for the same host.
 */
export function fromThisServer(c: Context): boolean {
  const origin = c.req.header('origin');
  if (origin === undefined || origin === 'null') return false;
  const host = (c.req.header('host') ?? new URL(c.req.url).host).toLowerCase();
  return safeHost(origin) === host;
}

function safeHost(origin: string): string | undefined {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * The API's one authentication middleware (see the module comment). It reads the store only when
 * its cache of verified tokens is older than 5 s, so the request path stays as fast as without it.
 */
export function authMiddleware(swarm: Swarm, mode: AuthMode = 'auto', options: AuthOptions = {}): MiddlewareHandler {
  return async (c, next) => {
    c.set('principal', null);
    const method = c.req.method.toUpperCase();
    const path = c.req.path;
    const needed = scopeFor(method, path);
    if (needed === 'public') return next();
    // A page no route serves: the dashboard's not-found page, with or without a token (as its other
    // pages are), not a 401 problem document. Only the catch-alls answer it, so nothing is read.
    if (options.unrouted && asksForPage(c) && options.unrouted(path)) return next();
    if (mode === 'off' || (mode === 'auto' && !(await swarm.tokensRequired()))) {
      return openRefusal(c, isRead(method), options) ?? next();
    }

    const read = isRead(method);
    const stream = method === 'GET' && STREAM_ROUTES.some((re) => re.test(path));
    const shown = credential(c, read, stream);
    if (shown === undefined) return unauthorized(c, 'AUTH_REQUIRED', `this API requires a token: send Authorization: Bearer <token>, a token with the '${needed}' scope (an admin token creates one: POST /api/v1/tokens)`, false);
    if ('refuse' in shown) return shown.refuse;
    if (isStreamToken(shown.token) && !stream) return unauthorized(c, 'TOKEN_INVALID', 'a stream token is accepted only on the event streams (GET /api/v1/runs/stream, GET /api/v1/runs/{id}/stream)', true);
    const result = await swarm.authenticateToken(shown.token);
    if (!result.ok) return unauthorized(c, result.code, result.reason, true);
    const { principal } = result;
    if (!grants(principal.scopes, needed)) {
      return forbidden(
        c,
        problem(403, 'TOKEN_SCOPE_INSUFFICIENT', `${method} ${path} needs the '${needed}' scope; token ${principal.token_id} has ${principal.scopes.join(', ')}`, { required_scope: needed, token_scopes: principal.scopes }),
        needed,
      );
    }
    c.set('principal', principal);
    return next();
  };
}
