/**
 * Live streams as Server-Sent Events: one run's events (`id:` is the event's sequence number, so
 * `Last-Event-ID` resumes with neither a gap nor a repeat), and the list of runs' changes (`id:` is
 * a cursor). Both follow the store with `waitForChange` (a commit here or in another process wakes
 * them), send a comment as a heartbeat, and end when the server shuts down or the client goes away.
 *
 * @example
 *   curl -N http://127.0.0.1:8090/api/v1/runs/1e2f3a4b5c6d/stream
 *   id: 1
 *   data: {"seq":1,"at":"…","type":"RUN_CREATED","step":null,"data":{…},"hash":"…"}
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import { UserError } from '../../core/errors.js';
import type { RunRecord } from '../../store/types.js';
import type { Swarm } from '../../swarm.js';
import { eventJson, runListJson } from '../../views/run.js';
import { principalOf } from '../auth.js';
import { problems, RunParams, RunStatusSchema } from '../schemas.js';

/** How often an idle stream sends a comment, so proxies and clients know it is alive. */
export const SSE_HEARTBEAT_MS = 15_000;
/** How often an open stream checks that its token is still neither revoked nor expired. */
export const AUTH_RECHECK_MS = 5_000;
/**
 * The list stream reads again the changes of this window before its cursor: a transaction that
 * committed after a later one (PostgreSQL writers run side by side; two SQLite commits may share a
 * millisecond) is still sent, once, while the client is connected.
 */
export const RUN_CHANGES_LOOKBACK_MS = 1000;
/** The longest a stream waits for a change notification before it looks at the store anyway. */
const RECHECK_MS = 1000;
/** Changes read at a time by the list stream. */
const CHANGES_PAGE = 500;

export interface StreamOptions {
  /** Aborted when the server shuts down: every stream ends at once. */
  shutdown?: AbortSignal;
  /** The heartbeat interval (default SSE_HEARTBEAT_MS). */
  heartbeatMs?: number;
  /** How often the stream's token is checked again (default AUTH_RECHECK_MS). */
  authCheckMs?: number;
}

const SSE_RESPONSE = { description: 'a stream of Server-Sent Events (text/event-stream)', content: { 'text/event-stream': { schema: z.string() } } };

const runStream = createRoute({
  method: 'get',
  path: '/api/v1/runs/{id}/stream',
  tags: ['runs'],
  summary: "A run's events, live, as Server-Sent Events",
  description:
    "Each event's `id:` is its sequence number and its `data:` the event (as in `/events`). Resume with `Last-Event-ID` (or `?after=`): the stream goes on after that event, with nothing missed or repeated. The stream ends with an `end` event after the run's last event (the run finished).",
  request: {
    params: RunParams,
    query: z.object({ after: z.coerce.number().int().min(0).optional().openapi({ description: 'Start after this sequence number (Last-Event-ID wins)' }) }),
    headers: z.object({ 'last-event-id': z.string().regex(/^\d+$/, 'must be an event sequence number').optional() }),
  },
  responses: { 200: SSE_RESPONSE, ...problems(400, 404, 422) },
});

const listStream = createRoute({
  method: 'get',
  path: '/api/v1/runs/stream',
  tags: ['runs'],
  summary: 'Changes of runs (created, status, step progress), live, as Server-Sent Events',
  description:
    "Each `run` event's `data:` is the run as `GET /api/v1/runs` lists it; its `id:` is a cursor (the position of the change: the run's `updated_at` and id). Resume with `Last-Event-ID` (or `?after=`); without one the stream starts with the changes made after it opened.",
  request: {
    query: z.object({
      workflow: z.string().min(1).optional(),
      status: RunStatusSchema.optional(),
      trigger_type: z.string().min(1).optional().openapi({ description: 'How runs were started: manual, api, schedule, webhook, event…' }),
      after: z.string().min(1).optional().openapi({ description: 'A cursor this stream sent as an `id:` (Last-Event-ID wins)' }),
    }),
    headers: z.object({ 'last-event-id': z.string().min(1).optional() }),
  },
  responses: { 200: SSE_RESPONSE, ...problems(400, 422) },
});

/** A change's position: the list stream's `id:`. */
interface ChangeCursor {
  updated_at: number;
  id: string;
}

export function encodeChangeCursor(c: ChangeCursor): string {
  return Buffer.from(JSON.stringify([c.updated_at, c.id])).toString('base64url');
}

function decodeChangeCursor(cursor: string, field: string): ChangeCursor {
  try {
    const [t, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof t === 'number' && Number.isFinite(t) && typeof id === 'string') return { updated_at: t, id };
  } catch {
    // refused below
  }
  throw new UserError('ARGUMENT_INVALID', `${field} '${cursor}' is not a cursor this stream sent; reconnect without it`, { field });
}

function after(a: ChangeCursor, b: ChangeCursor): boolean {
  return a.updated_at > b.updated_at || (a.updated_at === b.updated_at && a.id > b.id);
}

/**
 * Open an SSE response whose body `follow` writes; it gets a signal that aborts when the client goes
 * away or the server shuts down. A heartbeat comment goes out every `heartbeatMs` meanwhile.
 */
function sse(c: Context, swarm: Swarm, options: StreamOptions, follow: (stream: SSEStreamingApi, signal: AbortSignal) => Promise<void>): Response {
  return streamSSE(c, async (stream) => {
    const stop = new AbortController();
    const end = (): void => stop.abort();
    const signals = [c.req.raw.signal, options.shutdown].filter((s): s is AbortSignal => s !== undefined);
    for (const s of signals) {
      if (s.aborted) stop.abort();
      s.addEventListener('abort', end, { once: true });
    }
    stream.onAbort(end);
    // A write to a stream whose client left fails: that too ends it.
    const heartbeat = setInterval(() => void stream.write(': heartbeat\n\n').catch(end), options.heartbeatMs ?? SSE_HEARTBEAT_MS);
    // The token it was opened with is checked again: revoked or expired, the stream ends.
    const principal = principalOf(c);
    const recheck = principal
      ? setInterval(() => {
          void swarm.principalStillValid(principal).then(
            async (ok) => {
              if (ok || stop.signal.aborted) return;
              await stream.writeSSE({ event: 'end', data: JSON.stringify({ reason: 'token_no_longer_valid' }) }).catch(() => undefined);
              end();
            },
            end,
          );
        }, options.authCheckMs ?? AUTH_RECHECK_MS)
      : undefined;
    try {
      // Tells EventSource how long to wait before it reconnects (with Last-Event-ID).
      await stream.write('retry: 2000\n\n');
      await follow(stream, stop.signal);
    } finally {
      clearInterval(heartbeat);
      clearInterval(recheck);
      for (const s of signals) s.removeEventListener('abort', end);
    }
  });
}

export function streamRoutes(app: OpenAPIHono, swarm: Swarm, options: StreamOptions = {}): void {
  // Registered before /api/v1/runs/{id}: `stream` is not a run id.
  app.openapi(listStream, async (c) => {
    const q = c.req.valid('query');
    const header = c.req.valid('header')['last-event-id'];
    const resume = header !== undefined ? decodeChangeCursor(header, 'Last-Event-ID') : q.after !== undefined ? decodeChangeCursor(q.after, 'query.after') : undefined;
    const filter = { ...(q.workflow ? { workflow: q.workflow } : {}), ...(q.status ? { status: q.status } : {}), ...(q.trigger_type ? { trigger_type: q.trigger_type } : {}) };
    // Without a cursor: from now on (on the store's clock), nothing older.
    const start = resume ?? { updated_at: await swarm.store.now(), id: '\uffff' };
    return sse(c, swarm, options, async (stream, signal) => {
      let mark = start;
      // Changes sent in the lookback window (run id → updated_at), so a re-read sends none twice.
      const sent = new Map<string, number>();
      while (!signal.aborted) {
        let from: ChangeCursor = { updated_at: mark.updated_at - RUN_CHANGES_LOOKBACK_MS, id: '' };
        for (;;) {
          const page: RunRecord[] = await swarm.listRunChanges({ ...filter, after: from, limit: CHANGES_PAGE });
          for (const run of page) {
            const at = { updated_at: run.updated_at, id: run.id };
            from = at;
            // At or before the client's resume point: it had it. Already sent in this connection: skip.
            if (!after(at, start) || (sent.get(run.id) ?? -1) >= run.updated_at) continue;
            sent.set(run.id, run.updated_at);
            if (after(at, mark)) mark = at;
            await stream.writeSSE({ event: 'run', id: encodeChangeCursor(mark), data: JSON.stringify(runListJson(run)) });
          }
          if (page.length < CHANGES_PAGE || signal.aborted) break;
        }
        for (const [id, t] of sent) if (t < mark.updated_at - RUN_CHANGES_LOOKBACK_MS) sent.delete(id);
        await swarm.waitForChange(RECHECK_MS, signal);
      }
    });
  });

  app.openapi(runStream, async (c) => {
    // Unknown or ambiguous run: a problem document, before the stream starts.
    const runId = await swarm.resolveRunId(c.req.valid('param').id);
    const header = c.req.valid('header')['last-event-id'];
    const afterSeq = header !== undefined ? Number(header) : (c.req.valid('query').after ?? 0);
    return sse(c, swarm, options, async (stream, signal) => {
      for await (const e of swarm.watch(runId, { afterSeq, signal, pollMs: RECHECK_MS })) {
        if (signal.aborted) return;
        await stream.writeSSE({ id: String(e.seq), data: JSON.stringify(eventJson(e)) });
      }
      if (signal.aborted) return;
      const run = (await swarm.getRun(runId)).run;
      await stream.writeSSE({ event: 'end', data: JSON.stringify({ run_id: runId, status: run.status, last_seq: run.event_seq }) });
    });
  });
}
