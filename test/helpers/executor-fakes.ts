/**
 * Helpers of the executors tests: a real HTTP server whose answers a test scripts, the executor
 * contract document (docs/executor-api.yaml) compiled with ajv, and checks of requests and
 * responses against it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { parse } from 'yaml';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import { ROOT } from './project.js';

export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

export interface FakeExecutor {
  url: string;
  seen: SeenRequest[];
  close(): Promise<void>;
}

export type FakeHandler = (req: SeenRequest, res: ServerResponse, n: number) => void | Promise<void>;

/** A real HTTP server on 127.0.0.1 answering with `handler` (n: the request's 0-based number). */
export async function fakeExecutor(handler: FakeHandler): Promise<FakeExecutor> {
  const seen: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const r: SeenRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: text ? (JSON.parse(text) as unknown) : undefined };
      seen.push(r);
      void Promise.resolve(handler(r, res, seen.length - 1)).catch((e: Error) => {
        if (!res.headersSent) res.writeHead(500);
        res.end(e.message);
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type });
  res.end(JSON.stringify(body));
}

// ---- the contract document ----

type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: { $ref: string } }> }> }>>; components: { schemas: Record<string, unknown> } };

export const API_DOC = parse(readFileSync(join(ROOT, 'docs', 'executor-api.yaml'), 'utf8')) as Doc;
const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false });
ajv.addSchema({ $id: 'executor-api', components: API_DOC.components });
const compiled = new Map<string, ValidateFunction>();

function validator(ref: string): ValidateFunction {
  let v = compiled.get(ref);
  if (!v) {
    v = ajv.getSchema(`executor-api${ref}`) as ValidateFunction;
    if (!v) throw new Error(`no schema ${ref} in docs/executor-api.yaml`);
    compiled.set(ref, v);
  }
  return v;
}

/** Problems of `value` against a component schema of the document (by name). */
export function schemaProblems(name: string, value: unknown): string[] {
  const v = validator(`#/components/schemas/${name}`);
  return v(value) ? [] : (v.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

/**
 * Problems of a response against the document: the status must be declared for the operation, the
 * content type be the declared one, and the body match its schema.
 */
export function responseProblems(method: string, path: string, status: number, contentType: string, body: unknown): string[] {
  const op = API_DOC.paths[path]?.[method.toLowerCase()];
  if (!op) return [`${method} ${path} is not in the document`];
  const resp = op.responses[String(status)];
  if (!resp) return [`${method} ${path}: status ${status} is not declared (declared: ${Object.keys(op.responses).join(', ')})`];
  const type = contentType.split(';')[0]?.trim() ?? '';
  const media = resp.content?.[type];
  if (!media) return [`${method} ${path} ${status}: content type ${type} is not declared (${Object.keys(resp.content ?? {}).join(', ')})`];
  const v = validator(media.schema.$ref);
  return v(body) ? [] : (v.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

/** A fetch that checks every request body and every response against the document (problems pushed to `problems`). */
export function checkingFetch(problems: string[], seenTraceparents: string[] = []): typeof fetch {
  const requestSchema: Record<string, string> = { '/execute': 'ExecuteRequest', '/verify': 'VerifyRequest' };
  return async (input, init) => {
    const url = new URL(input);
    const method = init?.method ?? 'GET';
    const headers = new Headers(init?.headers);
    seenTraceparents.push(headers.get('traceparent') ?? '');
    const schema = requestSchema[url.pathname];
    if (schema) problems.push(...schemaProblems(schema, JSON.parse(init?.body as string)).map((p) => `request ${url.pathname}: ${p}`));
    const res = await fetch(input, init);
    const text = await res.clone().text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // left as text: the client reports it
    }
    problems.push(...responseProblems(method, url.pathname, res.status, res.headers.get('content-type') ?? '', body).map((p) => `response: ${p}`));
    return res;
  };
}
