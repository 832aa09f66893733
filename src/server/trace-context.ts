/**
 * W3C trace context in: a request carrying `traceparent` (and `tracestate`) is handled inside the
 * context it names, so a run it creates (`POST …/runs`, a webhook delivery) joins the caller's trace.
 * Nothing happens while tracing is off.
 */
import type { MiddlewareHandler } from 'hono';
import { tracingEnabled, withRemoteParent } from '../observability/tracing.js';

/**
 * The middleware. A malformed header is ignored (W3C Trace Context), never an error.
 *
 * @example
 *   app.use('*', traceContext);
 */
export const traceContext: MiddlewareHandler = (c, next) =>
  // Off: not even the headers are read (every API request passes here).
  tracingEnabled() ? withRemoteParent({ traceparent: c.req.header('traceparent'), tracestate: c.req.header('tracestate') }, () => next()) : next();
