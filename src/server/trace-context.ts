/**
 * W3C trace context in: a request carrying `traceparent` (and `tracestate`) names the caller's span,
 * and the runs it creates (`POST …/runs`, `POST …/schedules/{workflow}/trigger`, a webhook delivery)
 * join the caller's trace. Passed to them explicitly (`StartRunOptions.trace`), not through an active
 * context. Nothing is read while tracing is off.
 */
import type { Context } from 'hono';
import { carrierFromHeaders, tracingEnabled } from '../observability/tracing.js';
import type { StartRunOptions } from '../swarm.js';

/**
 * `{ trace }` for `createRun` when tracing is on and the request has a `traceparent`; else `{}`. A
 * malformed header is ignored where the run is created (W3C Trace Context), never an error.
 *
 * @example
 *   await swarm.createRun(ref, input, { trigger_type: 'api', ...requestTrace(c) });
 */
export function requestTrace(c: Context): Pick<StartRunOptions, 'trace'> {
  const trace = tracingEnabled() ? carrierFromHeaders((name) => c.req.header(name)) : undefined;
  return trace ? { trace } : {};
}
