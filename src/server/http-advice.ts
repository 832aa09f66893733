/**
 * What an HTTP client is told about an error, where it differs from what the CLI prints. The
 * runtime's messages end with CLI advice (`run 'swarm runs list' to see runs`), right on a terminal
 * and wrong for a client of the API, which gets the API route to use instead (`hint`). A few errors
 * are about the server's own configuration (a webhook whose secret is not set): their sender gets a
 * generic problem, and the server's log the full message (which secret, and how to set it).
 *
 * @example
 *   httpAdvice(new NotFoundError('run', '0190', "run 'swarm runs list' to see runs"));
 *   // { detail: "run '0190' not found", hint: 'GET /api/v1/runs lists the runs' }
 */
import type { SwarmError } from '../core/errors.js';

export interface HttpAdvice {
  /** The problem's `detail`. */
  detail: string;
  /** The API route that helps, if any (the problem's `hint`). */
  hint?: string;
  /** For the server's log, not the client: the error's full message. */
  log?: string;
  /** Leave the error's context fields out of the problem (they name the server's configuration). */
  hideContext?: boolean;
}

/** A CLI command quoted in a message, as the runtime writes them: `'swarm runs list'`. */
const CLI_COMMAND = /'swarm [^']*'/;
/** The clause of a message that gives CLI advice: from its `:`, `;` or `,` to the end. */
const CLI_CLAUSE = /[:;,]\s[^:;,]*'swarm [^']*'[^:;]*$/;

/** Errors about the server's configuration, which the sender cannot fix: a generic problem. */
const NOT_CONFIGURED = new Set(['WEBHOOK_SECRET_MISSING', 'WEBHOOK_SECRET_INVALID']);

const text = (v: unknown): string => (typeof v === 'string' ? v : '');
const segment = (v: string): string => encodeURIComponent(v);

/** The API route that helps with an error whose message gives CLI advice, by code. */
const HINTS: Readonly<Record<string, (e: SwarmError) => string>> = {
  RUN_NOT_FOUND: () => 'GET /api/v1/runs lists the runs',
  WORKFLOW_NOT_FOUND: (e) => (e.message.includes('swarm schedules') ? 'GET /api/v1/schedules lists the schedules' : 'GET /api/v1/workflows lists the workflows'),
  WORKFLOW_DISABLED: (e) => `POST /api/v1/workflows/${segment(text(e.context.workflow))}/enable enables it`,
  TOKEN_NOT_FOUND: () => 'GET /api/v1/tokens lists the tokens',
  BREAKER_NOT_FOUND: () => 'GET /api/v1/breakers lists the breakers with state',
};

/** How to tell an HTTP client about `e`, or undefined when its message is right as it is. */
export function httpAdvice(e: SwarmError): HttpAdvice | undefined {
  if (NOT_CONFIGURED.has(e.code)) {
    return {
      detail: 'the webhook is not configured: the server cannot verify deliveries yet; try again later',
      log: `webhook delivery refused (${e.code}): ${e.message}`,
      hideContext: true,
    };
  }
  if (!CLI_COMMAND.test(e.message)) return undefined;
  const detail = e.message.replace(CLI_CLAUSE, '');
  const hint = HINTS[e.code]?.(e);
  return { detail, ...(hint ? { hint } : {}) };
}
