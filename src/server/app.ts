/**
 * The HTTP API as a Hono app, built from a `Swarm`: the same public API the CLI uses, one module per
 * resource, one error handler. `swarm serve` serves it; tests call `app.request()` in process.
 *
 * @example
 *   const swarm = await Swarm.open();
 *   const app = createApp(swarm, { version: '0.1.0' });
 *   const res = await app.request('/api/v1/workflows/echo-chain/runs', { method: 'POST', body: '{"input": {}}', headers: { 'content-type': 'application/json' } });
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { RegExpRouter } from 'hono/router/reg-exp-router';
import { SmartRouter } from 'hono/router/smart-router';
import { TrieRouter } from 'hono/router/trie-router';
import { UserError } from '../core/errors.js';
import { SwarmOpenAPIHono } from './openapi-app.js';
import { MemoRouter } from './memo-router.js';
import type { Swarm } from '../swarm.js';
import type { LogSink } from '../observability/log-fields.js';
import { approvalRoutes } from './routes/approvals.js';
import { bulkRoutes } from './routes/bulk.js';
import { dashboardRoutes, unroutedPaths } from './routes/dashboard.js';
import { docsRoutes } from './routes/docs.js';
import { eventRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { registryRoutes } from './routes/registry.js';
import { runRoutes } from './routes/runs.js';
import { tokenRoutes } from './routes/tokens.js';
import { breakerRoutes } from './routes/breakers.js';
import { authMiddleware, type AuthMode } from './auth.js';
import { secretRoutes } from './routes/secrets.js';
import { signalRoutes } from './routes/signals.js';
import { streamRoutes } from './routes/stream.js';
import { transcriptRoutes } from './routes/transcript.js';
import { scheduleRoutes } from './routes/schedules.js';
import { webhookRoutes } from './routes/webhooks.js';
import { workerRoutes } from './routes/workers.js';
import { memoryRoutes } from './routes/memory.js';
import { taskRoutes } from './routes/tasks.js';
import { metricsRoutes, webhookMetrics } from './routes/metrics.js';
import { problem, problemResponse, toProblem, validationProblem } from './problem.js';
import { forkRoutes } from './routes/fork.js';

export interface CreateAppOptions {
  /** Reported by `/api/v1/info` (the package's version). */
  version?: string;
  /** The worker running in this process (`/api/v1/info`), or none. */
  worker?: { concurrency: number } | null;
  /** The largest request body, in bytes (default `server.max_body_bytes` of swarm.yaml, 1 MiB). */
  maxBodyBytes?: number;
  /** Where unexpected errors are logged (their details never go to the client). */
  log?: LogSink;
  /** Aborted when the server shuts down: requests waiting for a run (`?wait=`) answer at once, streams end. */
  shutdown?: AbortSignal;
  /**
   * `auto` (default): a token is required once one exists (neither revoked nor expired), the API is
   * open while none does; `required`: always; `off`: never checked. See src/server/auth.ts.
   */
  auth?: AuthMode;
  /**
   * While no token exists, answer requests addressed to any host name (default false: loopback names
   * only, so a DNS-rebinding web page cannot read the open API). `swarm serve --insecure` on a
   * non-loopback address sets it.
   */
  openToAnyHost?: boolean;
  /** How often a quiet event stream sends a heartbeat comment (default 15 s). */
  sseHeartbeatMs?: number;
  /** How often an open event stream checks that its token is still valid (default 5 s). */
  sseAuthCheckMs?: number;
}

/** What `/api/v1/info` says about the process serving the app. */
export interface ServerInfo {
  version: string;
  worker: { concurrency: number } | null;
}

export function createApp(swarm: Swarm, options: CreateAppOptions = {}): OpenAPIHono {
  const maxBodyBytes = options.maxBodyBytes ?? swarm.config.server.maxBodyBytes;
  // Each route's request is checked in one middleware (openapi-app.ts); the document is the library's.
  const app = new SwarmOpenAPIHono({
    // Hono's default router, with the matches of the paths seen last remembered (memo-router.ts).
    router: new MemoRouter(new SmartRouter({ routers: [new RegExpRouter(), new TrieRouter()] })),
    // A request that does not match its route's schema: 422 naming the fields (in the one handler below).
    defaultHook: (result, c) => {
      if (!result.success) return problemResponse(c, validationProblem(result.error, result.target));
      return undefined;
    },
  });

  // Before anything else: a request without the right token is answered before its body is read.
  // A browser asking for a page no route serves gets the dashboard's not-found page instead.
  const auth = authMiddleware(swarm, options.auth ?? 'auto', { openToAnyHost: options.openToAnyHost ?? false, unrouted: unroutedPaths(app) });

  // Refused by its Content-Length before anything is read, or as soon as a chunked body passes the limit.
  const limit = bodyLimit({
    maxSize: maxBodyBytes,
    onError: (c) => {
      const declared = Number(c.req.header('content-length'));
      if (Number.isFinite(declared) && declared > maxBodyBytes) throw new UserError('LIMIT_EXCEEDED', `the request body is ${declared.toLocaleString('en-US')} bytes; server.max_body_bytes is ${maxBodyBytes.toLocaleString('en-US')}: refused before it was read`, { limit: 'server.max_body_bytes', max: maxBodyBytes, size: declared });
      throw new UserError('LIMIT_EXCEEDED', `the request body is larger than server.max_body_bytes (${maxBodyBytes.toLocaleString('en-US')} bytes); reading stopped at the limit`, { limit: 'server.max_body_bytes', max: maxBodyBytes });
    },
  });
  // A body whose Content-Length is within the limit goes on without the middleware touching it
  // (reading `body` would build a Web Request early); chunked and oversized ones go through it.
  const checked: MiddlewareHandler = async (c, next) => {
    const declared = c.req.header('content-length');
    if (declared !== undefined && c.req.header('transfer-encoding') === undefined && /^\d+$/.test(declared) && Number(declared) <= maxBodyBytes) return next();
    return limit(c, next);
  };
  // The token, then an API request's body size: one middleware calling the two in turn, where two
  // registered ones would cost the router's dispatch between them (every request passes here).
  const front: MiddlewareHandler = (c, next) => {
    const path = c.req.path;
    const api = path === '/api' || path.startsWith('/api/');
    return auth(c, api ? () => checked(c, next) as Promise<void> : next);
  };
  app.use('*', front);
  // Webhook deliveries are counted by outcome, a body refused by the limit included (metrics.ts).
  for (const path of ['/webhooks/*', '/workflows/*']) app.use(path, webhookMetrics(swarm));
  // Their bodies are read whole, to check the signature.
  for (const path of ['/webhooks/*', '/workflows/*']) app.use(path, checked);

  healthRoutes(app, swarm, { version: options.version ?? 'unknown', worker: options.worker ?? null });
  registryRoutes(app, swarm);
  // Streams and bulk actions first: `/api/v1/runs/stream` and `/api/v1/runs/cancel` are not run ids.
  streamRoutes(app, swarm, {
    ...(options.shutdown ? { shutdown: options.shutdown } : {}),
    ...(options.sseHeartbeatMs ? { heartbeatMs: options.sseHeartbeatMs } : {}),
    ...(options.sseAuthCheckMs ? { authCheckMs: options.sseAuthCheckMs } : {}),
  });
  bulkRoutes(app, swarm);
  runRoutes(app, swarm, options.shutdown);
  tokenRoutes(app, swarm);
  breakerRoutes(app, swarm);
  transcriptRoutes(app, swarm);
  approvalRoutes(app, swarm);
  signalRoutes(app, swarm);
  secretRoutes(app, swarm);
  scheduleRoutes(app, swarm);
  webhookRoutes(app, swarm);
  eventRoutes(app, swarm);
  workerRoutes(app, swarm);
  memoryRoutes(app, swarm);
  taskRoutes(app, swarm);
  forkRoutes(app, swarm);
  metricsRoutes(app, swarm);
  docsRoutes(app, options.version ?? 'unknown');
  dashboardRoutes(app, swarm, options.auth ?? 'auto');

  app.notFound((c) => problemResponse(c, problem(404, 'ROUTE_NOT_FOUND', `no route ${c.req.method} ${new URL(c.req.url).pathname}; see /api/v1/docs`)));
  // The store's file and the project's directories are the server's business, not a client's.
  const paths = [swarm.store.location, swarm.config.home, swarm.config.agentsDir, swarm.config.workflowsDir].filter((p) => p.length > 1).sort((a, b) => b.length - a.length);
  const hide = (text: string): string => paths.reduce((t, p) => t.split(p).join(p === swarm.store.location ? `[${swarm.store.kind}]` : '[server path]'), text);
  app.onError((e, c) => problemResponse(c, toProblem(e, options.log, hide)));
  return app;
}
