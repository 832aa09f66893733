/**
 * A waterfall of a run's steps: one row per step, a bar from its start to its end (to now while it
 * runs), on the run's time axis. A map step's elements fold under its row. Rows are buttons: a click
 * selects the step.
 */
import { memo, useEffect, useState } from 'react';
import { dateTime, duration } from '../../format';
import type { TimedStep } from './types';

const MAX_ELEMENT_ROWS = 200;
/** The top-level rows drawn at first: a 1,000-step run's page stays quick; "Show all" draws the rest. */
const FIRST_ROWS = 100;

export const Timeline = memo(function Timeline({ steps, selected, onSelect, live }: { steps: readonly TimedStep[]; selected: string | undefined; onSelect: (id: string) => void; live: boolean }) {
  const now = useNow(live);
  const [unfolded, setUnfolded] = useState<ReadonlySet<string>>(new Set());
  const [all, setAll] = useState(false);
  // Loops, not Math.min(...times): a spread of thousands of arguments can throw a RangeError.
  let t0 = Infinity;
  let t1 = live ? now : 0;
  for (const s of steps)
    for (const t of [s.started_at, s.completed_at]) {
      if (t === null) continue;
      const at = Date.parse(t);
      if (at < t0) t0 = at;
      if (at > t1) t1 = at;
    }
  if (t0 === Infinity) return <p className="muted small">No step has started yet.</p>;
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
    const start = s.started_at ? Date.parse(s.started_at) : null;
    // A running or waiting step's bar reaches now (a parked step may carry the time it parked).
    const end = start !== null && (s.status === 'running' || s.status === 'waiting') ? Math.max(now, start) : s.completed_at ? Date.parse(s.completed_at) : start;
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
        <div className="tl-track" title={start === null ? `${s.id}: ${s.status}, not started` : `${s.id}: ${s.status}, started ${dateTime(start)}${s.completed_at ? `, ended ${dateTime(s.completed_at)}` : ''}`}>
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
