import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/**
 * A JSON response from a document built by the views (src/views/), shared with the CLI's `--json`.
 * The route's schema documents the shape in the OpenAPI document and the tests check it; the view
 * functions return plain records, so the response is typed `never` to fit any route's handler.
 *
 * The headers stay a plain object: `@hono/node-server` writes those straight to the socket, while
 * `c.body()` builds (and validates) a `Headers` object for any response with two headers or more,
 * a good part of a small request's cost. So headers set on the context (`c.header()`, `setCookie`)
 * are NOT in its answer: no middleware of the app sets any on the way to a handler (refusals answer
 * themselves), and a handler that sets some answers with `c.json()` (the session routes do).
 *
 * @example
 *   return sendJson(c, 201, runJson(details), { location: `/api/v1/runs/${id}` });
 */
export function sendJson(_c: Context, status: ContentfulStatusCode, body: unknown, headers: Record<string, string> = {}): never {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers } }) as never;
}
