/**
 * Runs: create (with `Idempotency-Key` and `?wait=`), list with filters and a cursor, show, steps,
 * events, logs, verify, cancel, retry. Each goes through the public Swarm API, as the CLI's commands do.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { UserError } from '../../core/errors.js';
import { RUN_STATUSES, TERMINAL_RUN } from '../../core/states.js';
import type { RunStatus } from '../../core/states.js';
import type { RunFilter } from '../../store/types.js';
import type { RunDetails, Swarm } from '../../swarm.js';
import { eventJson, logJson, runJson, runListJson, stepJson } from '../../views/run.js';
import { NoBody, problems, RunParams, RunSchema, RunSummarySchema, StepSchema, WorkflowParams } from '../schemas.js';
import { sendJson } from '../send.js';
import { requestTrace } from '../trace-context.js';
import { OFF_CALENDAR_MESSAGE, parseTime, TIME, TIME_MESSAGE } from '../../core/time.js';

/** The longest `?wait=` a request may hold its connection for. */
export const MAX_WAIT_MS = 300_000;
/** The most runs one page of `GET /api/v1/runs` holds. */
export const MAX_PAGE = 500;
/** The longest Idempotency-Key accepted, in characters. */
export const MAX_IDEMPOTENCY_KEY_CHARS = 255;

/** A number, with a unit (`ms`, `s`, `m`, `h`, `d`) or without one (seconds). */
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;
const DURATION_UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `500ms`, `30s`, `2m`, `1h`, `1d`, or a number of seconds → milliseconds (the caller caps it). */
export function parseWait(value: string): number {
  const m = DURATION.exec(value.trim()) as RegExpExecArray;
  return Math.round(Number(m[1]) * DURATION_UNIT_MS[(m[2] ?? 's') as keyof typeof DURATION_UNIT_MS]);
}

/** A `since` / `until` in a route's schema: a malformed or impossible time is 422 VALIDATION_FAILED naming it. */
export function timeSchema() {
  return z
    .string()
    .regex(TIME, TIME_MESSAGE)
    .refine((v) => !TIME.test(v) || !Number.isNaN(parseTime(v)), { message: OFF_CALENDAR_MESSAGE });
}

/** One status or several, comma-separated (`waiting,queued`): what `?status=` takes. */
export const STATUS_LIST = new RegExp(`^(${RUN_STATUSES.join('|')})(,(${RUN_STATUSES.join('|')}))*$`);

/** The filters of a run list (query or bulk body) as the store's RunFilter; `where` names their place in messages. */
export function runFilterOf(q: { status?: string | readonly RunStatus[]; workflow?: string; trigger_type?: string; since?: string; until?: string; metadata?: Record<string, string>; parent?: string }, where: string): RunFilter {
  const since = q.since === undefined ? undefined : parseTime(q.since);
  const until = q.until === undefined ? undefined : parseTime(q.until);
  // The routes' schemas refuse these first (timeSchema); here for any other caller, with the same answer.
  for (const [field, value, t] of [['since', q.since, since], ['until', q.until, until]] as const) {
    if (value !== undefined && Number.isNaN(t)) throw new UserError('VALIDATION_FAILED', `${where}.${field}: ${TIME.test(value) ? OFF_CALENDAR_MESSAGE : TIME_MESSAGE}`, { field: `${where}.${field}` });
  }
  // One status stays `status` (the store's indexed equality); several are `statuses` (IN).
  const statuses = [...new Set(typeof q.status === 'string' ? (q.status.split(',') as RunStatus[]) : (q.status ?? []))];
  return {
    ...(statuses.length === 1 ? { status: statuses[0] } : statuses.length > 1 ? { statuses } : {}),
    ...(q.workflow ? { workflow: q.workflow } : {}),
    ...(q.trigger_type ? { trigger_type: q.trigger_type } : {}),
    ...(q.parent ? { parent: q.parent } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(until !== undefined ? { until } : {}),
    ...(q.metadata && Object.keys(q.metadata).length ? { metadata: q.metadata } : {}),
  };
}

/** `?metadata.source=crm&metadata.region=eu` → { source: 'crm', region: 'eu' } (a key given twice is refused). */
function metadataQuery(url: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URL(url).searchParams) {
    if (!k.startsWith('metadata.')) continue;
    const key = k.slice('metadata.'.length);
    if (key === '') throw new UserError('ARGUMENT_INVALID', "a metadata filter needs a key: '?metadata.<key>=<value>'", { field: 'query.metadata' });
    if (key in out) throw new UserError('ARGUMENT_INVALID', `metadata.${key} is given twice; a run has one value per key`, { field: `query.${k}` });
    out[key] = v;
  }
  return out;
}

/** The opaque cursor of the next page: the last run's creation time and id. */
function encodeCursor(created_at: number, id: string): string {
  return Buffer.from(JSON.stringify([created_at, id])).toString('base64url');
}

function decodeCursor(cursor: string): { created_at: number; id: string } {
  try {
    const [t, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof t === 'number' && typeof id === 'string') return { created_at: t, id };
  } catch {
    // refused below
  }
  throw new UserError('ARGUMENT_INVALID', `cursor '${cursor}' is not one this server gave out; start again without it`, { field: 'query.cursor' });
}

const CreateRunBody = z
  .object({
    input: z.record(z.string(), z.unknown()).default({}).openapi({ description: "The run's trigger data, checked against the workflow's `inputs`", example: { message: 'Hello Swarm!' } }),
    version: z.string().min(1).optional().openapi({ description: 'A workflow version or semver range (default: the newest)', example: '1.0.0' }),
    metadata: z.record(z.string(), z.string().max(1024)).optional().openapi({ description: 'Labels kept with the run (string values)', example: { source: 'crm' } }),
    shared_inputs: z
      .unknown()
      .optional()
      .openapi({ description: "Run-level context merged into each http-runtime step's inputs (an object's keys, else `shared_inputs: value`; at most 64 KiB of JSON; docs/executors.md)", example: { ticket: 'T-1' } }),
  })
  .strict()
  .openapi('CreateRun');

const createRun = createRoute({
  method: 'post',
  path: '/api/v1/workflows/{name}/runs',
  tags: ['runs'],
  summary: 'Start a run of a workflow',
  description:
    'With an `Idempotency-Key` header, a repeat of the request returns the run the key created first (200, `Idempotent-Replayed: true`). With `?wait=30s`, the answer waits for the run to finish (at most 300 s): the finished run, or 202 with the run as it is when the wait ends.',
  request: {
    params: WorkflowParams,
    query: z.object({
      wait: z
        .string()
        .regex(DURATION, 'must be a duration like 500ms, 30s, 2m or 1h (ms, s, m, h or d; a number alone is seconds)')
        .optional()
        .openapi({ example: '30s', description: `Wait for the run to finish, up to this long (ms, s, m, h or d; a number alone is seconds); a longer wait than ${MAX_WAIT_MS / 1000}s is cut to ${MAX_WAIT_MS / 1000}s` }),
    }),
    headers: z.object({
      'idempotency-key': z.string().min(1).max(MAX_IDEMPOTENCY_KEY_CHARS).optional().openapi({ description: 'One run per key: a repeat returns the first run' }),
    }),
    body: { required: false, description: 'Without a body (no JSON content type), the input is {}', content: { 'application/json': { schema: CreateRunBody } } },
  },
  responses: {
    200: { description: 'A repeat of an Idempotency-Key: the run it created (finished, when waited for)', content: { 'application/json': { schema: RunSchema } } },
    201: { description: 'The run was created (and, with ?wait, finished in time)', content: { 'application/json': { schema: RunSchema } } },
    202: { description: 'With ?wait: the run did not finish in time; it goes on', content: { 'application/json': { schema: RunSchema } } },
    ...problems(400, 401, 403, 404, 413, 415, 422),
  },
});

const listRuns = createRoute({
  method: 'get',
  path: '/api/v1/runs',
  tags: ['runs'],
  summary: 'Runs, newest first, with filters and cursor pagination',
  description: 'Besides the parameters below, `?metadata.<key>=<value>` keeps runs whose metadata has that key with exactly that value; give several keys to require them all (`?metadata.source=crm&metadata.region=eu`).',
  request: {
    query: z.object({
      status: z
        .string()
        .regex(STATUS_LIST, `must be one or more of ${RUN_STATUSES.join(', ')}, comma-separated`)
        .optional()
        .openapi({ description: 'A run status, or several comma-separated (any of them)', example: 'waiting,queued' }),
      workflow: z.string().min(1).optional().openapi({ description: 'A workflow name' }),
      trigger_type: z.string().min(1).optional().openapi({ description: 'How runs were started: manual, api, schedule, webhook, event…' }),
      parent: z.string().min(1).optional().openapi({ description: 'A run id: only the runs it started (its sub-workflow runs, and runs its handlers started)' }),
      since: timeSchema().optional().openapi({ description: 'Created at or after (ISO date, date and time, or epoch ms); 422 for anything else or a date not on the calendar' }),
      until: timeSchema().optional().openapi({ description: 'Created before (ISO date, date and time, or epoch ms); 422 for anything else or a date not on the calendar' }),
      limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(50),
      cursor: z.string().min(1).optional().openapi({ description: 'The `next_cursor` of the previous page' }),
    }),
  },
  responses: {
    200: { description: 'a page of runs', content: { 'application/json': { schema: z.object({ runs: z.array(RunSummarySchema), next_cursor: z.string().nullable() }) } } },
    ...problems(400, 422),
  },
});

const showRun = createRoute({
  method: 'get',
  path: '/api/v1/runs/{id}',
  tags: ['runs'],
  summary: 'A run and its steps (the document of `swarm runs show --json`)',
  request: { params: RunParams },
  responses: { 200: { description: 'the run', content: { 'application/json': { schema: RunSchema } } }, ...problems(400, 404) },
});

const runSteps = createRoute({
  method: 'get',
  path: '/api/v1/runs/{id}/steps',
  tags: ['runs'],
  summary: "A run's steps, with their timing",
  request: { params: RunParams },
  responses: {
    200: {
      description: 'the steps',
      content: {
        'application/json': {
          schema: z.object({
            run_id: z.string(),
            steps: z.array(
              StepSchema.extend({
                started_at: z.string().nullable(),
                completed_at: z.string().nullable(),
                inputs: z.unknown().openapi({ description: 'The inputs the step ran with, resolved and redacted, as recorded when it finished (null before)' }),
              }),
            ),
          }),
        },
      },
    },
    ...problems(400, 404),
  },
});

const runEvents = createRoute({
  method: 'get',
  path: '/api/v1/runs/{id}/events',
  tags: ['runs'],
  summary: "A run's event log after a sequence number",
  request: { params: RunParams, query: z.object({ after: z.coerce.number().int().min(0).default(0).openapi({ description: 'Only events with a larger seq' }) }) },
  responses: {
    200: {
      description: 'the events',
      content: {
        'application/json': {
          schema: z.object({
            run_id: z.string(),
            events: z.array(z.object({ seq: z.number().int(), at: z.string(), type: z.string(), step: z.string().nullable(), data: z.unknown(), hash: z.string() })),
            last_seq: z.number().int(),
          }),
        },
      },
    },
    ...problems(400, 404, 422),
  },
});

const runLogs = createRoute({
  method: 'get',
  path: '/api/v1/runs/{id}/logs',
  tags: ['runs'],
  summary: 'Captured stdout and stderr of the process steps of a run',
  request: { params: RunParams, query: z.object({ step: z.string().min(1).optional() }) },
  responses: {
    200: {
      description: 'the logs',
      content: {
        'application/json': {
          schema: z.object({ run_id: z.string(), logs: z.array(z.object({ step: z.string(), attempt: z.number().int(), stdout: z.string(), stderr: z.string(), truncated: z.boolean(), at: z.string() })) }),
        },
      },
    },
    ...problems(400, 404),
  },
});

const verifyRun = createRoute({
  method: 'get',
  path: '/api/v1/runs/{id}/verify',
  tags: ['runs'],
  summary: "Check a run's hash-chained event log (the report of `swarm verify`)",
  description: 'Always 200 with the report: `ok` is false, with the problems found, when the chain or a checkpoint does not verify.',
  request: { params: RunParams },
  responses: {
    200: {
      description: 'the report',
      content: {
        'application/json': {
          schema: z.object({
            run_id: z.string(),
            ok: z.boolean(),
            events: z.number().int(),
            problems: z.array(z.object({ seq: z.number().int().nullable(), problem: z.string() })),
            legacy_events: z.number().int().optional(),
          }),
        },
      },
    },
    ...problems(400, 404),
  },
});

const cancelRun = createRoute({
  method: 'post',
  path: '/api/v1/runs/{id}/cancel',
  tags: ['runs'],
  summary: 'Cancel a run: running agents are stopped, pending steps cancelled',
  request: {
    params: RunParams,
    body: { required: false, content: { 'application/json': { schema: z.object({ reason: z.string().min(1).max(1000).optional() }).strict() } } },
  },
  responses: {
    200: { description: 'cancelled', content: { 'application/json': { schema: z.object({ run_id: z.string(), cancelled: z.array(z.string()), run: RunSchema }) } } },
    ...problems(400, 404, 409, 415, 422),
  },
});

const retryRun = createRoute({
  method: 'post',
  path: '/api/v1/runs/{id}/retry',
  tags: ['runs'],
  summary: 'Run the failed or cancelled steps of a finished run again (completed steps are kept)',
  request: {
    params: RunParams,
    // Nothing to say: a body, if any, is `{}` (unknown fields 422, as for cancel; malformed JSON 400).
    body: { required: false, content: { 'application/json': { schema: NoBody } } },
  },
  responses: {
    202: { description: 'queued again', content: { 'application/json': { schema: z.object({ run_id: z.string(), reset: z.array(z.string()), run: RunSchema }) } } },
    ...problems(400, 404, 409, 415, 422),
  },
});

/** Wait until the run is finished or `ms` pass (or the client goes away); the run as it is then. */
async function waitFor(swarm: Swarm, runId: string, ms: number, stopWhen: ReadonlyArray<AbortSignal | undefined>): Promise<RunDetails> {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), ms);
  const onStop = (): void => stop.abort();
  const signals = stopWhen.filter((s): s is AbortSignal => s !== undefined);
  for (const s of signals) {
    if (s.aborted) stop.abort();
    s.addEventListener('abort', onStop, { once: true });
  }
  try {
    return await swarm.wait(runId, { signal: stop.signal });
  } catch (e) {
    if (!stop.signal.aborted) throw e;
    return swarm.getRun(runId);
  } finally {
    clearTimeout(timer);
    for (const s of signals) s.removeEventListener('abort', onStop);
  }
}

export function runRoutes(app: OpenAPIHono, swarm: Swarm, shutdown?: AbortSignal): void {
  app.openapi(createRun, async (c) => {
    const { name } = c.req.valid('param');
    const { wait } = c.req.valid('query');
    const key = c.req.valid('header')['idempotency-key'];
    // A POST with no JSON body (`curl -X POST …`) starts a run with input {}.
    const body = (c.req.valid('json') as z.infer<typeof CreateRunBody> | undefined) ?? { input: {} };
    const ref = body.version ? `${name.split('@')[0] ?? name}@${body.version}` : name;
    const { runId, created, details: asCreated } = await swarm.createRun(ref, body.input ?? {}, {
      trigger_type: 'api',
      ...(key ? { idempotencyKey: key } : {}),
      ...requestTrace(c),
      ...(body.metadata ? { metadata: body.metadata } : {}),
      ...(body.shared_inputs !== undefined ? { sharedInputs: body.shared_inputs } : {}),
    });
    const details = wait ? await waitFor(swarm, runId, Math.min(parseWait(wait), MAX_WAIT_MS), [c.req.raw.signal, shutdown]) : (asCreated ?? (await swarm.getRun(runId)));
    const status = wait && !TERMINAL_RUN.has(details.run.status) ? 202 : created ? 201 : 200;
    return sendJson(c, status, runJson(details), { location: `/api/v1/runs/${runId}`, ...(created ? {} : { 'idempotent-replayed': 'true' }) });
  });

  app.openapi(listRuns, async (c) => {
    const q = c.req.valid('query');
    const page = await swarm.listRuns({
      ...runFilterOf({ ...q, metadata: metadataQuery(c.req.url) }, 'query'),
      ...(q.cursor ? { after: decodeCursor(q.cursor) } : {}),
      limit: q.limit + 1,
    });
    const runs = page.slice(0, q.limit);
    const last = runs[runs.length - 1];
    return sendJson(c, 200, { runs: runs.map(runListJson), next_cursor: page.length > q.limit && last ? encodeCursor(last.created_at, last.id) : null });
  });

  app.openapi(showRun, async (c) => {
    const details = await swarm.getRun(c.req.valid('param').id);
    const usage = await swarm.runUsage(details.run.id);
    return sendJson(c, 200, { ...runJson(details), ...(usage.sessions ? { usage } : {}) });
  });

  app.openapi(runSteps, async (c) => {
    const { run, steps } = await swarm.getRun(c.req.valid('param').id);
    const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
    return sendJson(c, 200, { run_id: run.id, steps: steps.map((s) => ({ ...stepJson(s), started_at: iso(s.started_at), completed_at: iso(s.completed_at), inputs: s.inputs ?? null })) });
  });

  app.openapi(runEvents, async (c) => {
    const runId = await swarm.resolveRunId(c.req.valid('param').id);
    const { after } = c.req.valid('query');
    const events = await swarm.events(runId, after);
    return sendJson(c, 200, { run_id: runId, events: events.map(eventJson), last_seq: events[events.length - 1]?.seq ?? after });
  });

  app.openapi(runLogs, async (c) => {
    const runId = await swarm.resolveRunId(c.req.valid('param').id);
    const { step } = c.req.valid('query');
    return sendJson(c, 200, { run_id: runId, logs: (await swarm.logs(runId, step)).map(logJson) });
  });

  app.openapi(verifyRun, async (c) => {
    const runId = await swarm.resolveRunId(c.req.valid('param').id);
    return sendJson(c, 200, { run_id: runId, ...(await swarm.verify(runId)) });
  });

  app.openapi(cancelRun, async (c) => {
    const runId = await swarm.resolveRunId(c.req.valid('param').id);
    // The body is optional: a POST without a JSON body cancels with the default reason.
    const reason = (c.req.valid('json') as { reason?: string } | undefined)?.reason;
    const cancelled = await swarm.cancel(runId, reason ?? 'cancelled over the API');
    return sendJson(c, 200, { run_id: runId, cancelled, run: runJson(await swarm.getRun(runId)) });
  });

  app.openapi(retryRun, async (c) => {
    const runId = await swarm.resolveRunId(c.req.valid('param').id);
    const reset = await swarm.retry(runId);
    return sendJson(c, 202, { run_id: runId, reset, run: runJson(await swarm.getRun(runId)) });
  });
}
