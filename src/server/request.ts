/**
 * What a route reads of its request, without the cost of the general way when there is no need.
 *
 * @example
 *   const out = await swarm.deliverWebhook(path, { headers: requestHeaders(c), body });
 */
import type { Context } from 'hono';

/** A path made only of characters a URL parser leaves as they are. */
const PLAIN_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;

/**
 * The request's path as `new URL(c.req.url).pathname` has it. Hono's own `c.req.path` is the same
 * text when it holds only characters a URL parser keeps as they are, and no dot segment; such a path
 * costs no parse, and any other is parsed.
 */
export function requestPath(c: Context): string {
  // Hono decodes a path with escapes in it: those are parsed, from the URL as it came.
  const path = c.req.path;
  return PLAIN_PATH.test(path) && !path.includes('/.') && !c.req.url.includes('%') ? path : new URL(c.req.url).pathname;
}

/**
 * The request's headers as a record, as `Object.fromEntries(c.req.raw.headers)` has them (lower-case
 * names, a repeated header's values joined with ", "). Served by `@hono/node-server`, they are read
 * from Node's raw headers, without building the Fetch `Headers` object first.
 */
export function requestHeaders(c: Context): Record<string, string> {
  const raw = (c.env as { incoming?: { rawHeaders?: unknown } } | undefined)?.incoming?.rawHeaders;
  if (!Array.isArray(raw)) return Object.fromEntries(c.req.raw.headers);
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = String(raw[i]).toLowerCase();
    const value = String(raw[i + 1]).trim();
    out[name] = name in out ? `${out[name]}, ${value}` : value;
  }
  return out;
}
