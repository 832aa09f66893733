import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/**
 * A JSON response from a document built by the views (src/views/), shared with the CLI's `--json`.
 * The route's schema documents the shape in the OpenAPI document and the tests check it; the view
 * functions return plain records, so the response is typed `never` to fit any route's handler.
 */
export function sendJson(c: Context, status: ContentfulStatusCode, body: unknown, headers: Record<string, string> = {}): never {
  return c.body(JSON.stringify(body), status, { 'content-type': 'application/json; charset=utf-8', ...headers }) as never;
}
