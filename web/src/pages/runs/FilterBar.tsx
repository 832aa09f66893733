import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api } from '../../api';
import { RUN_STATUSES } from '../../types';
import { isFiltered, TRIGGER_KINDS, type RunFilters } from './filters';

/**
 * The filters of the runs list. Every change goes to the URL at once (a new history entry), which
 * is the one source the list reads: the back button undoes a filter, a reload or a shared link keeps it.
 */
export function FilterBar({ filters, onChange }: { filters: RunFilters; onChange: (f: RunFilters) => void }) {
  const workflows = useQuery({ queryKey: ['workflow-names'], queryFn: () => api<{ workflows: Array<{ name: string }> }>('/api/v1/workflows') });
  const names = [...new Set((workflows.data?.workflows ?? []).map((w) => w.name))].sort();
  if (filters.workflow && !names.includes(filters.workflow)) names.unshift(filters.workflow);
  const [meta, setMeta] = useState('');
  const [metaError, setMetaError] = useState('');
  const set = (patch: Partial<RunFilters>): void => onChange({ ...filters, ...patch });

  const addMeta = (e: FormEvent): void => {
    e.preventDefault();
    const at = meta.indexOf('=');
    if (at <= 0) {
      setMetaError('Write key=value, e.g. region=eu');
      return;
    }
    const key = meta.slice(0, at).trim();
    const value = meta.slice(at + 1).trim();
    setMetaError('');
    setMeta('');
    set({ metadata: [...filters.metadata.filter(([k]) => k !== key), [key, value]] });
  };

  return (
    <section className="runs-filters panel" aria-label="Filters">
      <fieldset className="runs-statuses">
        <legend>Status</legend>
        {RUN_STATUSES.map((s) => {
          const on = filters.statuses.includes(s);
          return (
            <label key={s} className={`chip s-${s}${on ? ' on' : ''}`}>
              <input type="checkbox" checked={on} onChange={() => set({ statuses: on ? filters.statuses.filter((x) => x !== s) : [...filters.statuses, s] })} />
              {s}
            </label>
          );
        })}
        {isFiltered(filters) ? (
          <button type="button" className="runs-clear" onClick={() => onChange({ statuses: [], workflow: '', trigger_type: '', since: '', until: '', parent: '', metadata: [] })}>
            Clear filters
          </button>
        ) : null}
      </fieldset>
      <div className="runs-fields">
        <label>
          Workflow
          <select value={filters.workflow} onChange={(e) => set({ workflow: e.target.value })}>
            <option value="">All workflows</option>
            {names.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <label>
          Trigger
          <select value={filters.trigger_type} onChange={(e) => set({ trigger_type: e.target.value })}>
            <option value="">Any trigger</option>
            {[...new Set([...TRIGGER_KINDS, ...(filters.trigger_type ? [filters.trigger_type] : [])])].map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label>
          Created from
          <input type="datetime-local" step={1} value={filters.since} onChange={(e) => set({ since: e.target.value })} />
        </label>
        <label>
          Created before
          <input type="datetime-local" step={1} value={filters.until} onChange={(e) => set({ until: e.target.value })} />
        </label>
        <form className="runs-meta" onSubmit={addMeta}>
          <label>
            Metadata
            <input value={meta} placeholder="key=value" aria-invalid={metaError !== ''} aria-describedby="runs-meta-error" onChange={(e) => setMeta(e.target.value)} />
          </label>
          <button type="submit">Add</button>
        </form>
      </div>
      {metaError ? (
        <div id="runs-meta-error" className="runs-meta-error" role="alert">
          {metaError}
        </div>
      ) : null}
      {filters.metadata.length || filters.parent ? (
        <ul className="runs-tags" aria-label="Active metadata filters">
          {filters.parent ? (
            <li>
              <span className="mono">parent = {filters.parent.slice(0, 12)}</span>
              <button type="button" aria-label="Remove the parent filter" onClick={() => set({ parent: '' })}>
                ×
              </button>
            </li>
          ) : null}
          {filters.metadata.map(([k, v]) => (
            <li key={k}>
              <span className="mono">
                {k} = {v}
              </span>
              <button type="button" aria-label={`Remove the metadata filter ${k}`} onClick={() => set({ metadata: filters.metadata.filter(([x]) => x !== k) })}>
                ×
              </button>
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
