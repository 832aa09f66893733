/**
 * The dashboard's one way to the server: the public HTTP API (`/api/v1`), authenticated by the
 * HttpOnly `swarm_token` cookie the login page sets (the page itself never sees the token). Errors
 * are the API's RFC 9457 problem documents, thrown as `ApiError` with their stable code.
 *
 * @example
 *   const page = await api<RunPage>('/api/v1/runs?limit=50');
 *   await api('/api/v1/runs/abc/cancel', { method: 'POST', json: { reason: 'from the dashboard' } });
 */

export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  code?: string;
  [key: string]: unknown;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail ?? problem.title ?? `HTTP ${problem.status}`);
    this.status = problem.status;
    this.code = problem.code ?? `HTTP_${problem.status}`;
    this.problem = problem;
  }
}

export interface ApiInit extends Omit<RequestInit, 'body'> {
  /** A JSON body (sets the content type). */
  json?: unknown;
}

/** Called with every 401: the app sends the user to the login page. */
let onUnauthorized: (() => void) | undefined;
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

export async function api<T = unknown>(path: string, init: ApiInit = {}): Promise<T> {
  const { json, headers, ...rest } = init;
  const res = await fetch(path, {
    credentials: 'same-origin',
    ...rest,
    headers: { accept: 'application/json', ...(json !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
  });
  const text = await res.text();
  let body: unknown = undefined;
  if (text !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  if (!res.ok) {
    const problem: Problem = typeof body === 'object' && body !== null ? { ...(body as Problem), status: res.status } : { status: res.status, detail: typeof body === 'string' && body !== '' ? body : res.statusText };
    if (res.status === 401) onUnauthorized?.();
    throw new ApiError(problem);
  }
  return body as T;
}

/** A query string from the defined, non-empty values. */
export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s === '' ? '' : `?${s}`;
}
