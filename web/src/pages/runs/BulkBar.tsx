import { useState } from 'react';
import { ErrorBox } from '../../components/Empty';
import { dateTime } from '../../format';
import { ACTS_ON, bulkFilter, runBulk, type BulkAction, type BulkProgress, type BulkTarget } from './bulk';
import { apiFilter, type RunFilters } from './filters';

/** Chosen runs: ids from the table, or every run matching the filters as of `all.at`. */
export interface Selection {
  ids: Set<string>;
  all: { at: number } | null;
}

/**
 * "All matching" means the runs created up to the newest one the list shows: the store's clock
 * stamped those, so a browser clock ahead of the server's cannot stretch the selection to runs
 * created after the click.
 */
function newestShown(rows: readonly { created_at: number }[]): number {
  let newest = 0;
  for (const r of rows) if (r.created_at > newest) newest = r.created_at;
  return newest;
}

const VERB: Record<BulkAction, [string, string, string]> = {
  cancel: ['Cancel', 'Cancelling', 'cancelled'],
  retry: ['Retry', 'Retrying', 'queued again'],
};

/**
 * What to do with the chosen runs: "select all matching", Cancel and Retry behind a confirmation,
 * then the progress of the requests (done, failed, and why) until they finish.
 */
export function BulkBar({ selection, filters, rows, onSelect, onFinished }: { selection: Selection; filters: RunFilters; rows: readonly { run_id: string; created_at: number }[]; onSelect: (s: Selection) => void; onFinished: () => void }) {
  const loaded = rows.length;
  const [confirm, setConfirm] = useState<BulkAction | null>(null);
  const [progress, setProgress] = useState<BulkProgress | null>(null);
  const count = selection.ids.size;
  const chosen = selection.all !== null || count > 0;
  const what = selection.all !== null ? 'all runs matching these filters' : `${count.toLocaleString()} ${count === 1 ? 'run' : 'runs'}`;
  const running = progress !== null && !progress.finished;

  const start = (action: BulkAction): void => {
    setConfirm(null);
    // Only runs still on screen: a run that left the list (a live change) is not acted on unseen.
    const shown = new Set(rows.map((r) => r.run_id));
    const target: BulkTarget = selection.all !== null ? { filter: apiFilter(filters), at: selection.all.at } : { ids: [...selection.ids].filter((id) => shown.has(id)) };
    setProgress({ action, done: 0, failed: 0, reasons: [], total: 'ids' in target ? target.ids.length : null, finished: false });
    void runBulk(action, target, setProgress).then(() => {
      onSelect({ ids: new Set(), all: null });
      onFinished();
    });
  };

  if (!chosen && progress === null) return null;
  return (
    <section className="runs-bulk panel" aria-label="Bulk actions">
      {chosen && !running ? (
        <div className="row">
          <strong data-testid="selection">{selection.all !== null ? 'All runs matching these filters' : `${what} selected`}</strong>
          {selection.all === null && count >= loaded && loaded > 0 ? (
            <button type="button" className="link" onClick={() => onSelect({ ids: new Set(), all: { at: newestShown(rows) } })}>
              Select all runs matching these filters
            </button>
          ) : null}
          {selection.all !== null ? <span className="muted small">created up to {dateTime(selection.all.at)}</span> : null}
          <span className="grow" />
          {(['cancel', 'retry'] as const).map((a) => {
            const none = selection.all !== null && bulkFilter(a, apiFilter(filters), selection.all.at) === null;
            return (
              <button key={a} type="button" className={a === 'cancel' ? 'danger' : undefined} disabled={none} title={none ? `These filters keep no ${ACTS_ON[a].join(', ')} runs` : undefined} onClick={() => setConfirm(a)}>
                {VERB[a][0]}…
              </button>
            );
          })}
          <button type="button" onClick={() => onSelect({ ids: new Set(), all: null })}>
            Clear selection
          </button>
        </div>
      ) : null}
      {confirm ? (
        <div className="runs-confirm" role="alertdialog" aria-label={`${VERB[confirm][0]} runs`}>
          <p>
            {VERB[confirm][0]} {what}? Only the {ACTS_ON[confirm].join(', ')} ones are {VERB[confirm][2]}; the others are left as they are.
          </p>
          <div className="row">
            <button type="button" className={confirm === 'cancel' ? 'danger' : 'primary'} autoFocus onClick={() => start(confirm)}>
              {VERB[confirm][0]} {what}
            </button>
            <button type="button" onClick={() => setConfirm(null)}>
              Back
            </button>
          </div>
        </div>
      ) : null}
      {progress ? <Progress progress={progress} onClose={() => setProgress(null)} /> : null}
    </section>
  );
}

function Progress({ progress: p, onClose }: { progress: BulkProgress; onClose: () => void }) {
  const [, verbing, verbed] = VERB[p.action];
  const handled = p.done + p.failed;
  return (
    <div className="runs-progress-box" role="status" data-testid="bulk-progress" data-finished={p.finished} data-done={p.done} data-failed={p.failed}>
      <div className="row">
        <strong>{p.finished ? `${VERB[p.action][0]}: finished` : `${verbing}…`}</strong>
        <span>
          {p.done.toLocaleString()} {verbed}, {p.failed.toLocaleString()} failed
          {p.total !== null ? ` of ${p.total.toLocaleString()}` : ''}
        </span>
        {p.total !== null ? <progress max={p.total} value={handled} aria-label="Progress" /> : null}
        <span className="grow" />
        {p.finished ? (
          <button type="button" onClick={onClose}>
            Dismiss
          </button>
        ) : null}
      </div>
      {p.reasons.length ? (
        <ul className="runs-reasons">
          {p.reasons.map((r) => (
            <li key={r.code}>
              <code>{r.code}</code> × {r.count.toLocaleString()}: {r.detail}
            </li>
          ))}
        </ul>
      ) : null}
      {p.error ? <ErrorBox error={p.error} /> : null}
    </div>
  );
}
