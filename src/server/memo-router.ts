/**
 * Hono's router with the matches of the paths seen last remembered. The API's routes rule out
 * Hono's RegExp router (`/api/v1/runs/stream` beside `/api/v1/runs/{id}/stream`), so its trie router
 * walks the path segment by segment on every request; most requests repeat a path (a workflow's
 * runs route, a webhook's path) and now look it up instead. A match is a read-only value (Hono reads
 * the handlers and parameters, never changes them), so one can serve every request with that path.
 *
 * @example
 *   const app = new Hono({ router: new MemoRouter(new SmartRouter({ routers: [new RegExpRouter(), new TrieRouter()] })) });
 */
import type { Result, Router } from 'hono/router';
import { BoundedMemo } from '../core/bounded-memo.js';

/** Matches remembered at most; emptied when full. */
const ENTRIES = 2048;
/** Longer paths are matched every time (an id-bearing path is seldom repeated; a long one costs memory). */
const PATH_CHARS = 200;

export class MemoRouter<T> implements Router<T> {
  private readonly memo = new BoundedMemo<string, Result<T>>(ENTRIES);

  constructor(private readonly inner: Router<T>) {}

  get name(): string {
    return this.inner.name;
  }

  add(method: string, path: string, handler: T): void {
    this.memo.clear();
    this.inner.add(method, path, handler);
  }

  match(method: string, path: string): Result<T> {
    if (path.length > PATH_CHARS) return this.inner.match(method, path);
    return this.memo.get(`${method} ${path}`, () => this.inner.match(method, path));
  }
}
