/**
 * An RFC 9457 problem document's shape (`application/problem+json`): what every error of the HTTP API
 * (src/server/problem.ts, which picks the status) and of a worker's metrics port
 * (src/observability/metrics-server.ts) is answered with. Nothing here loads the HTTP stack.
 *
 * @example
 *   problem(404, 'RUN_NOT_FOUND', "run 'x' not found"); // { type: 'urn:swarm:problem:run-not-found', title: 'Not Found', … }
 */

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  [extra: string]: unknown;
}

/** The reason phrase of each status the API answers with. */
export const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** `urn:swarm:problem:run-not-found` for RUN_NOT_FOUND: stable, and documented in docs/server.md. */
export function problemType(code: string): string {
  return `urn:swarm:problem:${code.toLowerCase().replace(/_/g, '-')}`;
}

/** A problem document of `status` for an error's `code`, with the fields that say where (`extra`). */
export function problem(status: number, code: string, detail: string, extra: Record<string, unknown> = {}): Problem {
  return { type: problemType(code), title: TITLES[status] ?? 'Error', status, detail, code, ...extra };
}
