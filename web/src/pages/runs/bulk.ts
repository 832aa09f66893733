/**
 * Bulk cancel and retry from the runs list, through `POST /api/v1/runs/cancel|retry`, in chunks so
 * the page can show progress: chosen ids 100 at a time, or "all matching" as the list's filter
 * narrowed to the states the action applies to (cancel: queued, running, waiting; retry: failed,
 * cancelled), so a run acted on leaves the filter and the next request takes the next ones. The
 * filter is also bounded by the moment of the choice (`until`): a run created afterwards is never
 * touched, however well it matches.
 *
 * @example
 *   await runBulk('cancel', { filter: apiFilter(f), at: Date.now() }, (p) => setProgress(p));
 */
import { api } from '../../api';
import type { RunStatus } from '../../types';
import type { ApiFilter } from './filters';

export type BulkAction = 'cancel' | 'retry';

export const ACTS_ON: Record<BulkAction, RunStatus[]> = {
  cancel: ['queued', 'running', 'waiting'],
  retry: ['failed', 'cancelled'],
};

const CHUNK = 100;

export interface BulkProgress {
  action: BulkAction;
  done: number;
  failed: number;
  /** Why runs were refused or not found: the error code and message, with a count. */
  reasons: Array<{ code: string; detail: string; count: number }>;
  /** Known when acting on ids; unknown (null) for "all matching" until the end. */
  total: number | null;
  finished: boolean;
  error?: unknown;
}

interface BulkAnswer {
  results: Array<{ id: string; result: 'done' | 'refused' | 'not_found'; code?: string; detail?: string }>;
  done: number;
  more: boolean;
}

export type BulkTarget = { ids: string[] } | { filter: ApiFilter; at: number };

/** The filter a bulk action sends: the list's, narrowed to the states it acts on and to runs created before `at`. */
export function bulkFilter(action: BulkAction, filter: ApiFilter, at: number): ApiFilter | null {
  const states = filter.status ? filter.status.filter((s) => ACTS_ON[action].includes(s)) : ACTS_ON[action];
  if (states.length === 0) return null;
  const until = filter.until === undefined ? at + 1 : Math.min(Number(filter.until), at + 1);
  return { ...filter, status: states, until: String(until) };
}

/** Run the action to the end, calling `onProgress` after every request. */
export async function runBulk(action: BulkAction, target: BulkTarget, onProgress: (p: BulkProgress) => void, reason = 'cancelled from the dashboard'): Promise<BulkProgress> {
  const p: BulkProgress = { action, done: 0, failed: 0, reasons: [], total: 'ids' in target ? target.ids.length : null, finished: false };
  // A run is counted once: a refused run that a later round meets again is not a second failure.
  const refused = new Set<string>();
  const add = (answer: BulkAnswer): void => {
    for (const r of answer.results) {
      if (r.result === 'done') {
        p.done++;
        continue;
      }
      if (refused.has(r.id)) continue;
      refused.add(r.id);
      p.failed++;
      const code = r.code ?? r.result;
      const detail = r.detail ?? '';
      const same = p.reasons.find((x) => x.code === code);
      if (same) same.count++;
      else p.reasons.push({ code, detail, count: 1 });
    }
  };
  const send = (body: Record<string, unknown>): Promise<BulkAnswer> => api<BulkAnswer>(`/api/v1/runs/${action}`, { method: 'POST', json: action === 'cancel' ? { ...body, reason } : body });
  try {
    if ('ids' in target) {
      for (let i = 0; i < target.ids.length; i += CHUNK) {
        add(await send({ ids: target.ids.slice(i, i + CHUNK) }));
        onProgress({ ...p });
      }
    } else {
      const filter = bulkFilter(action, target.filter, target.at);
      // Each request takes the newest matching runs; those done leave the filter. A round that does
      // nothing (every run refused, e.g. finished meanwhile) would repeat itself: stop there.
      for (let more = filter !== null; more; ) {
        const answer = await send({ filter, limit: CHUNK });
        add(answer);
        onProgress({ ...p });
        more = answer.more && answer.done > 0;
      }
    }
  } catch (e) {
    p.error = e;
  }
  p.finished = true;
  onProgress({ ...p });
  return p;
}
