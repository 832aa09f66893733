/**
 * The API's app: `@hono/zod-openapi`'s `OpenAPIHono`, with each route's request checked in one
 * middleware instead of one per part.
 *
 * `app.openapi(route, handler)` documents the route and checks its query, path parameters, headers
 * and JSON body against the route's zod schemas before the handler runs. The library does that with
 * one asynchronous middleware per part (up to five promise hops and an async parse each, all
 * headers copied into an object for one of them), about 40 µs of a request's CPU on a 2-core machine, as much as
 * Hono's own routing and response together. Here the same checks run in one middleware, in the same
 * order, with the same hook (the 422 problem document) and the same refusals (400 for malformed JSON,
 * 415 for a body of another media type), synchronously unless a schema needs an async parse. One
 * deliberate difference: an optional JSON body sent empty is taken as no body (the library: 400). A route
 * with something this does not handle (cookies, form bodies, its own middleware or hook) is left to
 * the library as it is.
 */
import { OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { z } from 'zod';

type Target = 'query' | 'param' | 'header' | 'json';

/** What a schema check gives the hook, as `@hono/zod-validator` gives it. */
interface CheckResult {
  success: boolean;
  data: unknown;
  error?: z.ZodError;
  target: Target;
}

type Hook = (result: CheckResult, c: Context) => unknown;

interface Schema {
  safeParse(value: unknown): { success: boolean; data?: unknown; error?: z.ZodError };
  safeParseAsync(value: unknown): Promise<{ success: boolean; data?: unknown; error?: z.ZodError }>;
}

/** As `@hono/zod-openapi` tells a JSON media type (a declared one, or a request's Content-Type). */
const JSON_TYPE = /^application\/([a-z-.]+\+)?json/i;
/** A request's Content-Type matching a declared JSON media type (parameters allowed). */
const JSON_REQUEST = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;
/** The media types whose body Hono's validator reads as JSON (others give `{}`). */
const JSON_MEDIA = /^application\/([\w.-]+\+)?json$/i;

function isZod(x: unknown): x is Schema {
  return typeof x === 'object' && x !== null && typeof (x as Schema).safeParse === 'function' && typeof (x as Schema).safeParseAsync === 'function';
}

/** Parse synchronously; a schema with async refinements or transforms is parsed asynchronously. */
function parse(schema: Schema, value: unknown): ReturnType<Schema['safeParse']> | Promise<ReturnType<Schema['safeParse']>> {
  try {
    return schema.safeParse(value);
  } catch (e) {
    if (e instanceof z.core.$ZodAsyncError) return schema.safeParseAsync(value);
    throw e;
  }
}

/** The request parts the one middleware checks, or undefined when the route needs the library's own. */
interface Parts {
  query?: Schema;
  param?: Schema;
  header?: Schema;
  /** Header names as the request has them (lower case) → as the schema names them. */
  headerKeys?: Array<[string, string]>;
  json?: { schema: Schema; required: boolean };
}

function partsOf(route: RouteConfig): Parts | undefined {
  const request = route.request;
  if (!request) return {};
  if (request.cookies) return undefined;
  const parts: Parts = {};
  if (request.query) {
    if (!isZod(request.query)) return undefined;
    parts.query = request.query;
  }
  if (request.params) {
    if (!isZod(request.params)) return undefined;
    parts.param = request.params;
  }
  if (request.headers) {
    const headers = request.headers as unknown;
    // Only an object of named headers that drops the others (z.object's default): then reading just
    // those headers gives what reading them all would.
    const shape = (headers as { shape?: Record<string, unknown> }).shape;
    const catchall = (headers as { _zod?: { def?: { catchall?: unknown } } })._zod?.def?.catchall;
    if (!isZod(headers) || !shape || catchall !== undefined) return undefined;
    parts.header = headers;
    parts.headerKeys = Object.keys(shape).map((k) => [k.toLowerCase(), k]);
  }
  const content = request.body?.content as Record<string, { schema?: unknown } | undefined> | undefined;
  if (content) {
    const mediaTypes = Object.keys(content);
    const zodTypes = mediaTypes.filter((m) => isZod(content[m]?.schema));
    // One JSON schema and nothing else the library would check (form bodies) or gate on.
    if (zodTypes.length !== 1 || mediaTypes.length !== 1 || !JSON_TYPE.test(zodTypes[0] as string)) return undefined;
    parts.json = { schema: content[zodTypes[0] as string]?.schema as Schema, required: request.body?.required === true };
  }
  return parts;
}

/** Whether a request without a Content-Type has a body (bytes), as the library decides for its 415. */
async function hasRequestBody(c: Context): Promise<boolean> {
  const raw = c.req.raw;
  if (raw.body === null) return false;
  if (raw.bodyUsed) return (await c.req.arrayBuffer()).byteLength > 0;
  const body = raw.clone().body;
  if (body === null) return false;
  const reader = (body as ReadableStream<Uint8Array>).getReader();
  try {
    for (;;) {
      const chunk = (await reader.read()) as { done: boolean; value?: Uint8Array };
      if (chunk.done) return false;
      if (chunk.value && chunk.value.byteLength > 0) return true;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

function queryOf(c: Context): Record<string, string | string[]> {
  // No query string: nothing to parse.
  if (!c.req.url.includes('?')) return {};
  const all: Record<string, string[]> = c.req.queries();
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(all)) out[k] = v.length === 1 ? (v[0] as string) : v;
  return out;
}

type Parsed = ReturnType<Schema['safeParse']>;

/** The one middleware checking a route's request parts (see the module comment). */
function checker(parts: Parts, hook: Hook | undefined): MiddlewareHandler {
  const { query, param, header, headerKeys, json } = parts;
  // The hook's answer (as @hono/zod-validator takes it), or the validator's own 400 when the hook
  // has none and the check failed; undefined: go on.
  const answerOf = (c: Context, result: Parsed, answer: unknown): Response | undefined => {
    if (answer instanceof Response) return answer;
    if (answer && typeof answer === 'object' && 'response' in answer && answer.response instanceof Response) return answer.response;
    return result.success ? undefined : c.json(result, 400);
  };
  const settle = (c: Context, result: Parsed, value: unknown, target: Target): Response | undefined | Promise<Response | undefined> => {
    const answer = hook ? hook({ data: value, ...result, target }, c) : undefined;
    if (answer instanceof Promise) return answer.then((a) => settle2(c, result, a, target));
    return settle2(c, result, answer, target);
  };
  const settle2 = (c: Context, result: Parsed, answer: unknown, target: Target): Response | undefined => {
    const refused = answerOf(c, result, answer);
    if (!refused) c.req.addValidatedData(target, result.data as object);
    return refused;
  };
  // Synchronous unless the schema or the hook is not.
  const check = (c: Context, schema: Schema, value: unknown, target: Target): Response | undefined | Promise<Response | undefined> => {
    const parsed = parse(schema, value);
    return parsed instanceof Promise ? parsed.then((r) => settle(c, r, value, target)) : settle(c, parsed, value, target);
  };
  return async (c, next) => {
    let answer: Response | undefined | Promise<Response | undefined>;
    if (query && (answer = check(c, query, queryOf(c), 'query')) && (answer = await answer)) return answer;
    if (param && (answer = check(c, param, c.req.param(), 'param')) && (answer = await answer)) return answer;
    if (header && headerKeys) {
      const value: Record<string, string> = {};
      for (const [lower, key] of headerKeys) {
        const v = c.req.header(lower);
        if (v !== undefined) value[key] = v;
      }
      if ((answer = check(c, header, value, 'header')) && (answer = await answer)) return answer;
    }
    if (json) {
      const contentType = c.req.header('content-type');
      // The library's media-type gate: a body must be of the declared (JSON) type.
      if (contentType) {
        if (!JSON_REQUEST.test(contentType)) throw new HTTPException(415, { message: 'Unsupported Media Type' });
      } else if (await hasRequestBody(c)) throw new HTTPException(415, { message: 'Unsupported Media Type' });
      if (json.required || (contentType && JSON_TYPE.test(contentType))) {
        let value: unknown = {};
        const mediaType = contentType ? (contentType.split(';')[0] as string).trim().toLowerCase() : '';
        let empty = false;
        if (JSON_MEDIA.test(mediaType)) {
          try {
            if (json.required) value = await c.req.json();
            else {
              // An optional body sent empty with a JSON type (`curl -X POST -H 'content-type: application/json'`)
              // is no body, as without the type. The library answers 400 there: the one difference.
              const text = await c.req.text();
              empty = text.trim() === '';
              if (!empty) value = JSON.parse(text) as unknown;
            }
          } catch {
            throw new HTTPException(400, { message: 'Malformed JSON in request body' });
          }
        }
        if (empty) c.req.addValidatedData('json', {});
        else if ((answer = check(c, json.schema, value, 'json')) && (answer = await answer)) return answer;
      } else c.req.addValidatedData('json', {});
    }
    await next();
  };
}

/**
 * `OpenAPIHono` whose `openapi(route, handler)` checks a request in one middleware (see the module
 * comment); the OpenAPI document is the library's, unchanged.
 *
 * @example
 *   const app = new SwarmOpenAPIHono({ defaultHook: (result, c) => (result.success ? undefined : problemResponse(c, …)) });
 *   app.openapi(createRun, async (c) => { const { name } = c.req.valid('param'); … });
 */
export class SwarmOpenAPIHono extends OpenAPIHono {
  constructor(options: ConstructorParameters<typeof OpenAPIHono>[0] = {}) {
    super(options);
    const library = this.openapi;
    const fast = (config: RouteConfig, handler: unknown, hook?: unknown): unknown => {
      const { middleware, hide, ...route } = config;
      const parts = middleware || hook ? undefined : partsOf(route);
      if (!parts) return (library as (r: RouteConfig, h: unknown, k?: unknown) => unknown)(config, handler, hook);
      if (!hide) this.openAPIRegistry.registerPath(route);
      const path = route.path.replaceAll(/\/{(.+?)}/g, '/:$1');
      const check = parts.query || parts.param || parts.header || parts.json ? [checker(parts, this.defaultHook as Hook | undefined)] : [];
      this.on([route.method], [path], ...(check), handler as MiddlewareHandler);
      return this;
    };
    this.openapi = fast as typeof library;
  }
}
