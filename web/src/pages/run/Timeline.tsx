/**
 * A waterfall of a run's steps: one row per step, a bar from its start to its end (to now while it
 * runs), on the run's time axis. A step's start is its first start (from its events: a step that
 * waited for an event, a signal, a person or a sleep is started again when it resumes, and its row's
 * own times are those of that last moment), so a wait shows as the time it took. A map step's
 * elements fold under its row. Rows are buttons: a click selects the step.
 */
import { memo, useEffect, useState } from 'react';
import { dateTime, duration } from '../../format';
import type { StepSpan } from './graph';
import type { TimedStep } from './types';

const MAX_ELEMENT_ROWS = 200;
/** The top-level rows drawn at first: a 1,000-step run's page stays quick; "Show all" draws the rest. */
const FIRST_ROWS = 100;

/** Where a step's bar begins and ends (null: not started), from its span when its events told one. */
export function barOf(s: TimedStep, span: StepSpan | undefined, now: number): { start: number | null; end: number | null } {
  // A step waiting its turn (again, in a retried run) has no bar, whatever it did before.
  if (s.status === 'pending' || s.status === 'ready') return { start: null, end: null };
  const start = span?.start ?? (s.started_at ? Date.parse(s.started_at) : null);
  if (start === null) return { start, end: null };
  // A running or waiting step's bar reaches now (a parked step may carry the time it parked).
  if (s.status === 'running' || s.status === 'waiting') return { start, end: Math.max(now, start) };
  // The row's end, or its finishing event's when the row was read before it (the later of the two).
  let end = start;
  if (s.completed_at) end = Math.max(end, Date.parse(s.completed_at));
  if (span?.end != null) end = Math.max(end, span.end);
  return { start, end };
}

export const Timeline = memo(function Timeline({
  steps,
  spans,
  from,
  to,
  selected,
  onSelect,
  live,
}: {
  steps: readonly TimedStep[];
  /** Each step's span from its events (stepSpans). */
  spans: ReadonlyMap<string, StepSpan>;
  /** The run's own start and end (epoch ms, null: not yet), which the axis covers too. */
  from: number | null;
  to: number | null;
  selected: string | undefined;
  onSelect: (id: string) => void;
  live: boolean;
}) {
  const now = useNow(live);
  const [unfolded, setUnfolded] = useState<ReadonlySet<string>>(new Set());
  const [all, setAll] = useState(false);
  // Loops, not Math.min(...times): a spread of thousands of arguments can throw a RangeError.
  let t0 = Infinity;
  let t1 = live ? now : (to ?? 0);
  for (const s of steps) {
    const { start, end } = barOf(s, spans.get(s.id), now);
    if (start !== null && start < t0) t0 = start;
    if (end !== null && end > t1) t1 = end;
  }
  if (t0 === Infinity) return <p className="muted small">No step has started yet.</p>;
  if (from !== null && from < t0) t0 = from;
  const total = Math.max(t1 - t0, 1);
  const top = steps.filter((s) => s.map_index === undefined);
  const elements = new Map<string, TimedStep[]>();
  for (const s of steps) {
    if (s.map_index === undefined) continue;
    const parent = s.id.slice(0, s.id.lastIndexOf('['));
    const list = elements.get(parent);
    if (list) list.push(s);
    else elements.set(parent, [s]);
  }
  const row = (s: TimedStep, child: boolean) => {
    const { start, end } = barOf(s, spans.get(s.id), now);
    const left = start === null ? 0 : ((start - t0) / total) * 100;
    const width = start === null || end === null ? 0 : Math.max(((end - start) / total) * 100, 0.4);
    const kids = elements.get(s.id);
    return (
      <div key={s.id} className={`tl-row${child ? ' tl-child' : ''}${selected === s.id ? ' selected' : ''}`} data-timeline-step={s.id}>
        <div className="tl-name">
          {kids && !child ? (
            <button
              type="button"
              className="tl-fold"
              aria-expanded={unfolded.has(s.id)}
              aria-label={`${unfolded.has(s.id) ? 'Fold' : 'Unfold'} the elements of ${s.id}`}
              onClick={() => setUnfolded((u) => (u.has(s.id) ? new Set([...u].filter((x) => x !== s.id)) : new Set([...u, s.id])))}
            >
              {unfolded.has(s.id) ? '▾' : '▸'}
            </button>
          ) : null}
          <button type="button" className="link-button mono" onClick={() => onSelect(s.id)}>
            {s.id}
          </button>
        </div>
        <div className="tl-track" title={start === null ? `${s.id}: ${s.status}, not started` : `${s.id}: ${s.status}, started ${dateTime(start)}${end !== null && !(s.status === 'running' || s.status === 'waiting') ? `, ended ${dateTime(end)}` : ''}`}>
          {start !== null ? <span className={`tl-bar s-${s.status}`} style={{ left: `${left}%`, width: `${width}%` }} /> : null}
        </div>
        <div className="tl-dur small muted" title={s.duration_ms !== null ? `ran for ${duration(s.duration_ms)}` : undefined}>
          {start === null ? s.status : duration(end !== null ? end - start : s.duration_ms)}
        </div>
      </div>
    );
  };
  return (
    <div className="timeline" role="list" aria-label="Timeline">
      <div className="tl-row tl-axis small muted">
        <div className="tl-name">step</div>
        <div className="tl-track">
          <span>0</span>
          <span>{duration(total / 2)}</span>
          <span>{duration(total)}</span>
        </div>
        <div className="tl-dur">duration</div>
      </div>
      {(all ? top : top.slice(0, FIRST_ROWS)).map((s) => (
        <div role="listitem" key={s.id}>
          {row(s, false)}
          {unfolded.has(s.id) ? (elements.get(s.id) ?? []).slice(0, MAX_ELEMENT_ROWS).map((e) => row(e, true)) : null}
          {unfolded.has(s.id) && (elements.get(s.id)?.length ?? 0) > MAX_ELEMENT_ROWS ? <p className="small muted tl-child">… and {(elements.get(s.id)?.length ?? 0) - MAX_ELEMENT_ROWS} more: select the step to list them all.</p> : null}
        </div>
      ))}
      {!all && top.length > FIRST_ROWS ? (
        <p className="small muted">
          {(top.length - FIRST_ROWS).toLocaleString()} more steps.{' '}
          <button type="button" className="link-button" onClick={() => setAll(true)}>
            Show all {top.length.toLocaleString()}
          </button>
        </p>
      ) : null}
    </div>
  );
});

/** The time, ticking every second while `live` (running bars grow). */
function useNow(live: boolean): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    if (!live) return undefined;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [live]);
  return now;
}
