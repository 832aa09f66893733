/**
 * Calling the HTTP API in process (`app.request()`) and checking its problem documents, shared by
 * the server test files.
 */
import { expect } from 'vitest';

export type Json = Record<string, unknown>;

export interface Answer {
  status: number;
  type: string;
  json: Json;
  text: string;
  headers: Headers;
}

/** Anything with Hono's `request()`: the app under test. */
export interface RequestTarget {
  request(path: string, init?: RequestInit): Response | Promise<Response>;
}

/** One request; a body (other than a string) is sent as JSON. A body that is not JSON comes back as `{text}`. */
export async function request(target: RequestTarget, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const init: RequestInit = { method, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await target.request(path, init);
  const text = await res.text();
  let json: Json = {};
  try {
    json = JSON.parse(text) as Json;
  } catch {
    json = { text };
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', json, text, headers: res.headers };
}

/** An RFC 9457 problem document with this status and code (its `type`, `title` and `detail` too). */
export function expectProblem(r: Pick<Answer, 'status' | 'type' | 'json'>, status: number, code: string): Json {
  expect(r.status, JSON.stringify(r.json)).toBe(status);
  expect(r.type).toBe('application/problem+json');
  expect(r.json).toMatchObject({ status, code, type: expect.stringMatching(/^urn:swarm:problem:/) as unknown, title: expect.any(String) as unknown, detail: expect.any(String) as unknown });
  return r.json;
}
