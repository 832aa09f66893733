/**
 * Every error the HTTP API answers with is an RFC 9457 problem document (`application/problem+json`)
 * made here, in one place: `type`, `title`, `status`, `detail`, and the error's stable `code`, plus
 * the fields that say where (`field`, `errors`, `run_id`, `workflow`, `limit`…) and, where the CLI
 * would name a command, a `hint` with the API route (src/server/http-advice.ts).
 *
 * @example
 *   { "type": "urn:swarm:problem:workflow-not-found", "title": "Not Found", "status": 404,
 *     "code": "WORKFLOW_NOT_FOUND", "detail": "workflow 'nope' not found: did you mean 'hello'?" }
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ZodError } from 'zod';
import type { LogSink } from '../observability/log-fields.js';
import { isStoreFault, isSwarmError, NotFoundError, PolicyError, ResumeError, StoreError, type SwarmError, UserError, VerificationError } from '../core/errors.js';
import { LimitExceededError } from '../core/limits.js';
import { WEBHOOK_STATUS } from '../triggers/webhook-delivery.js';
import { httpAdvice } from './http-advice.js';
import { problem, PROBLEM_CONTENT_TYPE, problemType, TITLES, type Problem } from '../core/problem-doc.js';

export { problem, PROBLEM_CONTENT_TYPE, problemType, type Problem };

/** User errors whose request was well-formed but whose content is refused: 422, not 400. */
const UNPROCESSABLE = new Set(['CONCURRENCY_KEY_UNRESOLVED', 'CONCURRENCY_KEY_INVALID', 'INPUT_INVALID', 'MANIFEST_INVALID', 'IDEMPOTENCY_KEY_REUSED', 'IDEMPOTENCY_KEY_RESERVED', 'VALIDATION_FAILED', 'TOKEN_SCOPE_INVALID', 'TOKEN_EXPIRY_INVALID', 'TOKEN_NAME_INVALID', 'EVENT_ID_REUSED', 'EVENT_NAME_INVALID', 'EVENT_NAME_RESERVED', 'EVENT_ID_INVALID', 'SIGNAL_NAME_INVALID', 'OUTPUT_INVALID']);
/** User errors about the state a run is in (or a task id holds): 409. */
const CONFLICT = new Set(['RUN_NOT_CANCELLABLE', 'RUN_NOT_WAITING', 'NOTHING_TO_DECIDE', 'AGENT_IN_USE', 'AGENT_VERSION_EXISTS', 'WORKFLOW_VERSION_EXISTS', 'WEBHOOK_PATH_TAKEN', 'RUN_FINISHED', 'RUN_NOT_FINISHED', 'RUN_CHANGED', 'TASK_ID_REUSED']);

/** The HTTP status an error of the runtime stands for. */
export function statusOf(e: SwarmError): ContentfulStatusCode {
  if (e instanceof LimitExceededError || e.code === 'LIMIT_EXCEEDED') return 413;
  const webhook = WEBHOOK_STATUS[e.code];
  if (webhook !== undefined && e instanceof UserError) return webhook as ContentfulStatusCode;
  if (e instanceof NotFoundError || e.code.endsWith('_NOT_FOUND')) return 404;
  if (e instanceof PolicyError) return 403;
  if (e instanceof ResumeError) return 409;
  if (isStoreFault(e)) return 503;
  if (e instanceof UserError) return UNPROCESSABLE.has(e.code) ? 422 : CONFLICT.has(e.code) ? 409 : 400;
  if (e instanceof StoreError) return e.exitCode === 2 ? 500 : 503;
  if (e instanceof VerificationError) return 500;
  return 500;
}



/** Context fields worth showing a client, renamed to the API's snake_case. */
function contextFields(e: SwarmError): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e.context)) {
    if (v === undefined || k === 'file') continue; // server paths stay on the server
    const key = k === 'runId' ? 'run_id' : k === 'stepId' ? 'step_id' : k === 'taskId' ? 'task_id' : k;
    out[key] = v;
  }
  return out;
}

/** A request that does not match a route's schema: 422 naming each field (400 for a body that is not JSON at all). */
export function validationProblem(error: ZodError, target: string): Problem {
  const prefix = target === 'json' ? '' : `${target}.`;
  // An unknown key is named as the field at fault (zod reports it at its parent's path).
  const errors = error.issues.flatMap((i) => {
    const at = i.path.map(String);
    const keys = i.code === 'unrecognized_keys' ? (i as { keys?: string[] }).keys ?? [] : [];
    const fields = keys.length ? keys.map((k) => [...at, k]) : [at];
    return fields.map((f) => ({ field: `${prefix}${f.join('.')}`.replace(/\.$/, ''), problem: keys.length ? `is not a known field (${i.message})` : i.message }));
  });
  const first = errors[0];
  const detail = errors.map((x) => `${x.field || '(body)'}: ${x.problem}`).join('; ');
  return problem(422, 'VALIDATION_FAILED', detail, { ...(first?.field ? { field: first.field } : {}), errors });
}

/**
 * Turn anything thrown into a problem document (unknown errors say no more than that they happened).
 * `hide` replaces what a client should not see in a message: the server's paths.
 */
export function toProblem(e: unknown, log?: LogSink, hide: (text: string) => string = (t) => t): Problem {
  if (isSwarmError(e)) {
    const status = statusOf(e);
    // CLI advice becomes an API route; the server's own configuration stays in its log.
    const advice = httpAdvice(e);
    if (!advice) return problem(status, e.code, hide(e.message), contextFields(e));
    if (advice.log) log?.(advice.log);
    return problem(status, e.code, hide(advice.detail), { ...(advice.hideContext ? {} : contextFields(e)), ...(advice.hint ? { hint: advice.hint } : {}) });
  }
  if (e instanceof HTTPException) {
    if (e.status === 400 && /json/i.test(e.message)) return problem(400, 'JSON_INVALID', `the request body is not valid JSON: ${e.message}`);
    return problem(e.status, e.status === 413 ? 'LIMIT_EXCEEDED' : 'HTTP_ERROR', e.message || TITLES[e.status] || 'error');
  }
  log?.(`unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, { err: e });
  return problem(500, 'INTERNAL_ERROR', 'an unexpected error happened on the server; its log has the details');
}

export function problemResponse(c: Context, p: Problem): Response {
  return c.body(JSON.stringify(p), p.status as ContentfulStatusCode, { 'content-type': PROBLEM_CONTENT_TYPE });
}
