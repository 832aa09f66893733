import { useInfiniteQuery, useQueryClient, type InfiniteData } from '@tanstack/react-query';
import { useEffect, useMemo, useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api } from '../api';
import { Empty, ErrorBox } from '../components/Empty';
import { StatusBadge } from '../components/StatusBadge';
import { ago, dateTime, duration, shortId } from '../format';
import { useRunChanges } from '../live';
import type { RunPage, RunSummary } from '../types';
import { BulkBar, type Selection } from './runs/BulkBar';
import { FilterBar } from './runs/FilterBar';
import { apiQuery, badFilters, filtersOf, isFiltered, matches, searchOf, type BadFilter, type RunFilters } from './runs/filters';
import './runs/runs.css';

const PAGE = 50;
const NONE: Selection = { ids: new Set(), all: null };

/**
 * The first page of the list the app was opened on, asked for while the app is still starting (when
 * this module is evaluated) rather than after React's first render: the request and the render overlap.
 * Taken once, by the first query with the same API query; any other query asks for itself.
 */
let early: { query: string; page: Promise<RunPage> } | undefined = (() => {
  if (typeof window === 'undefined' || (window.location.pathname !== '/' && window.location.pathname !== '/runs')) return undefined;
  const query = apiQuery(filtersOf(new URLSearchParams(window.location.search)), { limit: PAGE });
  const page = api<RunPage>(`/api/v1/runs?${query}`);
  page.catch(() => undefined); // a failure is the query's to show, when it takes the promise
  return { query, page };
})();

function firstPage(query: string): Promise<RunPage> {
  const taken = early;
  early = undefined;
  return taken && taken.query === query ? taken.page : api<RunPage>(`/api/v1/runs?${query}`);
}

/**
 * Runs, newest first: filtered by the URL's query, one server page at a time ("Load more" follows
 * the cursor), kept live by the runs stream (a changed run is updated in place, a new one that
 * matches the filters is added on top, one that stops matching leaves), with bulk cancel and retry.
 */
export function Runs() {
  const client = useQueryClient();
  const [params, setParams] = useSearchParams();
  const search = params.toString();
  const filters = useMemo(() => filtersOf(new URLSearchParams(search)), [search]);
  const bad = useMemo(() => badFilters(new URLSearchParams(search)), [search]);
  const key = useMemo(() => ['runs', 'list', searchOf(filters).toString()], [filters]);
  const runs = useInfiniteQuery({
    queryKey: key,
    queryFn: ({ pageParam }) => (pageParam === null ? firstPage(apiQuery(filters, { limit: PAGE })) : api<RunPage>(`/api/v1/runs?${apiQuery(filters, { limit: PAGE, cursor: pageParam })}`)),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const [selection, setSelection] = useState<Selection>(NONE);
  // A new filter is a new list: what was chosen in the old one is not carried over.
  useEffect(() => setSelection(NONE), [search]);

  const live = useRunChanges(
    (run: RunSummary) => {
      client.setQueryData<InfiniteData<RunPage, string | null>>(key, (data) => (data ? applyChange(data, run, filters) : data));
    },
    {
      // Connected (again): read the list again unless it was read just now (the stream reads back
      // its first second, so a fresh list misses nothing).
      onOpen: () => {
        if (Date.now() - runs.dataUpdatedAt > 800) void client.invalidateQueries({ queryKey: key });
      },
    },
  );

  const setFilters = (f: RunFilters): void => setParams(searchOf(f));
  const rows = runs.data?.pages.flatMap((p) => p.runs) ?? [];
  const allOnPage = rows.length > 0 && rows.every((r) => selection.ids.has(r.run_id));

  return (
    <>
      <div className="page-head" data-live={live}>
        <h1>Runs</h1>
        <span className={`live-dot live-${live}`} title={live === 'open' ? 'Live: changes appear as they happen' : live === 'closed' ? 'Not live: reload the page' : 'Connecting…'}>
          {live === 'open' ? 'Live' : live === 'closed' ? 'Not live' : 'Connecting…'}
        </span>
        <span className="grow" />
        {runs.isFetching && !runs.isLoading ? (
          <span className="muted small" role="status">
            Refreshing…
          </span>
        ) : null}
      </div>
      <FilterBar filters={filters} onChange={setFilters} />
      {bad.length ? <BadFilters bad={bad} onRemove={() => setParams(searchOf(filters), { replace: true })} /> : null}
      <BulkBar
        selection={selection}
        filters={filters}
        rows={rows}
        onSelect={setSelection}
        onFinished={() => void client.invalidateQueries({ queryKey: ['runs', 'list'] })}
      />
      {runs.isLoading ? (
        <div className="panel muted runs-loading" role="status">
          Loading runs…
        </div>
      ) : null}
      {runs.error ? (
        <div className="row">
          <ErrorBox error={runs.error} />
          <button type="button" onClick={() => void runs.refetch()}>
            Try again
          </button>
        </div>
      ) : null}
      {runs.data && rows.length === 0 ? (
        isFiltered(filters) ? (
          <Empty title="No runs match these filters">
            <p>
              <button type="button" onClick={() => setParams(new URLSearchParams())}>
                Clear filters
              </button>
            </p>
          </Empty>
        ) : (
          <Empty title="No runs yet">
            Start one with <code>swarm run &lt;workflow&gt;</code>, from the Registry page, or with <code>POST /api/v1/workflows/&#123;name&#125;/runs</code>.
          </Empty>
        )
      ) : null}
      {rows.length > 0 ? (
        <>
          <table data-testid="runs-table" className="runs-table">
            <thead>
              <tr>
                <th className="runs-check">
                  <input
                    type="checkbox"
                    aria-label="Select all runs on this page"
                    checked={allOnPage || selection.all !== null}
                    disabled={selection.all !== null}
                    onChange={() => setSelection(allOnPage ? NONE : { ids: new Set(rows.map((r) => r.run_id)), all: null })}
                  />
                </th>
                <th>Run</th>
                <th>Workflow</th>
                <th>Status</th>
                <th>Progress</th>
                <th>Trigger</th>
                <th>Created</th>
                <th>Duration</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <RunRow
                  key={r.run_id}
                  run={r}
                  selected={selection.all !== null || selection.ids.has(r.run_id)}
                  locked={selection.all !== null}
                  onToggle={() => {
                    const ids = new Set(selection.ids);
                    if (ids.has(r.run_id)) ids.delete(r.run_id);
                    else ids.add(r.run_id);
                    setSelection({ ids, all: null });
                  }}
                />
              ))}
            </tbody>
          </table>
          <div className="runs-more">
            {runs.hasNextPage ? (
              <button type="button" onClick={() => void runs.fetchNextPage()} disabled={runs.isFetchingNextPage}>
                {runs.isFetchingNextPage ? 'Loading…' : `Load ${PAGE} more`}
              </button>
            ) : (
              <span className="muted small">
                {rows.length.toLocaleString()} {rows.length === 1 ? 'run' : 'runs'}, all shown
              </span>
            )}
          </div>
        </>
      ) : null}
    </>
  );
}

/** The URL's filters that mean nothing, named: the list below is shown without them. */
function BadFilters({ bad, onRemove }: { bad: readonly BadFilter[]; onRemove: () => void }) {
  return (
    <div className="error-box runs-bad-filters" role="alert" data-testid="bad-filters">
      {bad.length === 1 ? 'A filter of this link is not understood, and is ignored: ' : 'Filters of this link are not understood, and are ignored: '}
      {bad.map((b, i) => (
        <span key={`${b.param}=${b.value}`}>
          {i > 0 ? '; ' : null}
          <code>
            {b.param}={b.value}
          </code>{' '}
          is {b.problem}
        </span>
      ))}
      .{' '}
      <button type="button" className="link-button" onClick={onRemove}>
        Remove {bad.length === 1 ? 'it' : 'them'}
      </button>
    </div>
  );
}

function RunRow({ run: r, selected, locked, onToggle }: { run: RunSummary; selected: boolean; locked: boolean; onToggle: () => void }) {
  const done = r.steps_total - r.steps_remaining;
  const elapsed = r.started_at === null ? null : (r.completed_at ?? Date.now()) - r.started_at;
  return (
    <tr data-run={r.run_id} data-status={r.status} className={selected ? 'selected' : undefined}>
      <td className="runs-check">
        <input type="checkbox" aria-label={`Select run ${shortId(r.run_id)}`} checked={selected} disabled={locked} onChange={onToggle} />
      </td>
      <td>
        <Link to={`/runs/${r.run_id}`} className="mono" title={r.run_id}>
          {shortId(r.run_id)}
        </Link>
        {r.parent_run_id ? (
          <div className="small muted">
            sub-run of{' '}
            <Link to={`/runs/${r.parent_run_id}`} className="mono" title={r.parent_run_id} aria-label={`Parent run ${shortId(r.parent_run_id)}`}>
              {shortId(r.parent_run_id)}
            </Link>
          </div>
        ) : null}
      </td>
      <td>
        {r.workflow_name} <span className="muted small">{r.workflow_version}</span>
      </td>
      <td>
        <StatusBadge status={r.status} />
        {r.error ? (
          <div className="small runs-error" title={r.error}>
            {r.error_step ? `${r.error_step}: ` : ''}
            {r.error}
          </div>
        ) : null}
      </td>
      <td className="runs-progress" title={`${done} of ${r.steps_total} steps finished`}>
        <span className="runs-bar" aria-hidden="true">
          <span className={`s-${r.status}`} style={{ width: `${r.steps_total ? (100 * done) / r.steps_total : 0}%` }} />
        </span>
        <span className="small">
          {done.toLocaleString()}/{r.steps_total.toLocaleString()}
        </span>
      </td>
      <td>{r.trigger_type}</td>
      <td title={dateTime(r.created_at)}>{ago(r.created_at)}</td>
      <td title={r.completed_at === null && elapsed !== null ? 'still going' : undefined}>{duration(elapsed)}</td>
    </tr>
  );
}

/** The list after one live change: updated in place, added on top when new and matching, removed when it no longer matches. */
function applyChange(data: InfiniteData<RunPage, string | null>, run: RunSummary, filters: RunFilters): InfiniteData<RunPage, string | null> {
  const fits = matches(filters, run);
  let found = false;
  const pages = data.pages.map((p) => {
    if (!p.runs.some((r) => r.run_id === run.run_id)) return p;
    found = true;
    return { ...p, runs: fits ? p.runs.map((r) => (r.run_id === run.run_id ? run : r)) : p.runs.filter((r) => r.run_id !== run.run_id) };
  });
  if (found || !fits || pages.length === 0) return { ...data, pages };
  // A run older than the first page's last one belongs to a later page (the cursor will bring it).
  const [first, ...rest] = pages as [RunPage, ...RunPage[]];
  const last = first.runs[first.runs.length - 1];
  if (last && first.next_cursor !== null && run.created_at < last.created_at) return data;
  const runs = [run, ...first.runs].sort((a, b) => b.created_at - a.created_at || (a.run_id < b.run_id ? 1 : -1));
  return { ...data, pages: [{ ...first, runs }, ...rest] };
}
