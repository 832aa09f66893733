/**
 * The runs list's filters, kept in the page's URL (shareable; the back button steps through them) in
 * the API's own spelling: `?status=waiting,failed&workflow=nightly&trigger_type=api&since=…&until=…
 * &metadata.region=eu`. Times in the URL are the local `datetime-local` values the inputs show; the
 * API gets epoch milliseconds.
 *
 * @example
 *   const f = filtersOf(new URLSearchParams('status=failed&metadata.team=ops'));
 *   api<RunPage>(`/api/v1/runs?${apiQuery(f, { limit: 50 })}`);
 */
import { RUN_STATUSES, type RunStatus, type RunSummary } from '../../types';

export interface RunFilters {
  statuses: RunStatus[];
  workflow: string;
  trigger_type: string;
  /** `datetime-local` values (local time), '' for none. */
  since: string;
  until: string;
  parent: string;
  metadata: Array<[string, string]>;
}

export const TRIGGER_KINDS = ['manual', 'api', 'schedule', 'webhook', 'event', 'workflow'] as const;

/** A time filter of the URL, '' when it is not a time (badFilters names it). */
function timeOf(value: string | null): string {
  return value !== null && epochOf(value) !== undefined ? value : '';
}

/** The filters a URL's query holds (unknown statuses and times that are not times are dropped, not guessed: badFilters names them). */
export function filtersOf(params: URLSearchParams): RunFilters {
  const statuses = (params.get('status') ?? '')
    .split(',')
    .filter((s): s is RunStatus => (RUN_STATUSES as readonly string[]).includes(s));
  const metadata: Array<[string, string]> = [];
  for (const [k, v] of params) if (k.startsWith('metadata.') && k.length > 'metadata.'.length) metadata.push([k.slice('metadata.'.length), v]);
  return {
    statuses: RUN_STATUSES.filter((s) => statuses.includes(s)),
    workflow: params.get('workflow') ?? '',
    trigger_type: params.get('trigger_type') ?? '',
    since: timeOf(params.get('since')),
    until: timeOf(params.get('until')),
    parent: params.get('parent') ?? '',
    metadata,
  };
}

/** A filter of the page's URL that means nothing: left out of the list, and said so. */
export interface BadFilter {
  param: string;
  value: string;
  problem: string;
}

/**
 * The filters of a URL's query that filtersOf leaves out because they mean nothing (a mistyped link,
 * an old bookmark): the API would refuse them (422), and the page must not pretend they applied.
 *
 * @example
 *   badFilters(new URLSearchParams('status=waiting,bogus&since=yesterday'))
 *   // [{ param: 'status', value: 'bogus', … }, { param: 'since', value: 'yesterday', … }]
 */
export function badFilters(params: URLSearchParams): BadFilter[] {
  const out: BadFilter[] = [];
  for (const value of (params.get('status') ?? '').split(',')) {
    if (value !== '' && !(RUN_STATUSES as readonly string[]).includes(value)) out.push({ param: 'status', value, problem: `not a run state (${RUN_STATUSES.join(', ')})` });
  }
  for (const param of ['since', 'until'] as const) {
    const value = params.get(param) ?? '';
    if (value !== '' && epochOf(value) === undefined) out.push({ param, value, problem: 'not a date and time (such as 2025-01-31T09:00)' });
  }
  return out;
}

/** The page URL's query for these filters (empty ones left out). */
export function searchOf(f: RunFilters): URLSearchParams {
  const p = new URLSearchParams();
  if (f.statuses.length) p.set('status', f.statuses.join(','));
  for (const k of ['workflow', 'trigger_type', 'since', 'until', 'parent'] as const) if (f[k] !== '') p.set(k, f[k]);
  for (const [k, v] of f.metadata) p.append(`metadata.${k}`, v);
  return p;
}

export function isFiltered(f: RunFilters): boolean {
  return searchOf(f).toString() !== '';
}

/** A `datetime-local` value as epoch ms (local time), undefined when empty or not a time. */
export function epochOf(local: string): number | undefined {
  if (local === '') return undefined;
  const t = new Date(local).getTime();
  return Number.isNaN(t) ? undefined : t;
}

/** The API's filter document (`GET /api/v1/runs` query, or a bulk request's `filter`). */
export interface ApiFilter {
  status?: RunStatus[];
  workflow?: string;
  trigger_type?: string;
  parent?: string;
  since?: string;
  until?: string;
  metadata?: Record<string, string>;
}

export function apiFilter(f: RunFilters): ApiFilter {
  const since = epochOf(f.since);
  const until = epochOf(f.until);
  return {
    ...(f.statuses.length ? { status: f.statuses } : {}),
    ...(f.workflow ? { workflow: f.workflow } : {}),
    ...(f.trigger_type ? { trigger_type: f.trigger_type } : {}),
    // In a bulk filter too: "all matching" on a run's sub-workflow list means those runs only.
    ...(f.parent ? { parent: f.parent } : {}),
    ...(since !== undefined ? { since: String(since) } : {}),
    ...(until !== undefined ? { until: String(until) } : {}),
    ...(f.metadata.length ? { metadata: Object.fromEntries(f.metadata) } : {}),
  };
}

/** `GET /api/v1/runs`'s query string for these filters and a page. */
export function apiQuery(f: RunFilters, page: { limit: number; cursor?: string | null }): string {
  const p = new URLSearchParams();
  const a = apiFilter(f);
  if (a.status) p.set('status', a.status.join(','));
  for (const k of ['workflow', 'trigger_type', 'parent', 'since', 'until'] as const) if (a[k]) p.set(k, a[k]);
  for (const [k, v] of Object.entries(a.metadata ?? {})) p.append(`metadata.${k}`, v);
  p.set('limit', String(page.limit));
  if (page.cursor) p.set('cursor', page.cursor);
  return p.toString();
}

/** Whether a run (from the live stream) belongs in the list these filters show: the server's rules, client-side. */
export function matches(f: RunFilters, run: RunSummary): boolean {
  if (f.statuses.length && !f.statuses.includes(run.status)) return false;
  if (f.workflow && run.workflow_name !== f.workflow) return false;
  if (f.trigger_type && run.trigger_type !== f.trigger_type) return false;
  if (f.parent && run.parent_run_id !== f.parent) return false;
  const since = epochOf(f.since);
  const until = epochOf(f.until);
  if (since !== undefined && run.created_at < since) return false;
  if (until !== undefined && run.created_at >= until) return false;
  for (const [k, v] of f.metadata) if (run.metadata?.[k] !== v) return false;
  return true;
}
