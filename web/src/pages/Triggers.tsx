/**
 * Triggers: schedules (timezone always shown, the next five ticks, pause, resume, run now),
 * webhooks (their full URL on this server, scheme, recent deliveries) and event triggers (with
 * their recent runs). Deliveries are the runs a webhook started (`trigger_type` webhook): the store
 * keeps no other record of them.
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'react-router';
import { api, qs } from '../api';
import { Empty, ErrorBox } from '../components/Empty';
import { StatusBadge } from '../components/StatusBadge';
import { ago, dateTime, shortId } from '../format';
import { Loaded } from '../ops/parts';
import type { EventTrigger, Schedule, Webhook } from '../ops/types';
import type { RunPage } from '../types';
import '../ops/ops.css';

export function Triggers() {
  return (
    <>
      <div className="page-head">
        <h1>Triggers</h1>
      </div>
      <Schedules />
      <Webhooks />
      <EventTriggers />
    </>
  );
}

/** A tick in the schedule's own timezone (named), the user's local time on hover. */
function Tick({ iso, timezone }: { iso: string; timezone: string }) {
  const d = new Date(iso);
  let text: string;
  try {
    text = d.toLocaleString(undefined, { timeZone: timezone, weekday: 'short', year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  } catch {
    text = dateTime(iso);
  }
  return (
    <time dateTime={iso} title={`${dateTime(iso)} your time`}>
      {text} <span className="muted small">{timezone}</span>
    </time>
  );
}

function Schedules() {
  const list = useQuery({ queryKey: ['schedules'], queryFn: () => api<{ schedules: Schedule[] }>('/api/v1/schedules') });
  return (
    <section aria-labelledby="h-schedules">
      <h2 id="h-schedules">Schedules</h2>
      <Loaded
        q={list}
        isEmpty={(d) => d.schedules.length === 0}
        empty={
          <Empty title="No schedules">
            Add <code>trigger: &#123;type: schedule, cron: "0 9 * * 1-5", timezone: Europe/Paris&#125;</code> to a workflow and register it.
          </Empty>
        }
      >
        {(d) => (
          <div className="cards">
            {d.schedules.map((s) => (
              <ScheduleCard key={s.workflow} schedule={s} />
            ))}
          </div>
        )}
      </Loaded>
    </section>
  );
}

function ScheduleCard({ schedule: s }: { schedule: Schedule }) {
  const client = useQueryClient();
  const preview = useQuery({ queryKey: ['schedule-preview', s.workflow, s.paused, s.next_run_at], queryFn: () => api<{ ticks: string[] }>(`/api/v1/schedules/${encodeURIComponent(s.workflow)}/preview?count=5`) });
  const [started, setStarted] = useState<string | null>(null);
  const refresh = () => void client.invalidateQueries({ queryKey: ['schedules'] });
  const pause = useMutation({ mutationFn: (paused: boolean) => api<Schedule>(`/api/v1/schedules/${encodeURIComponent(s.workflow)}/${paused ? 'pause' : 'resume'}`, { method: 'POST' }), onSuccess: refresh });
  const fire = useMutation({ mutationFn: () => api<{ run_id: string }>(`/api/v1/schedules/${encodeURIComponent(s.workflow)}/trigger`, { method: 'POST' }), onSuccess: (r) => setStarted(r.run_id) });
  const state = !s.enabled ? 'disabled' : s.paused ? 'paused' : 'active';
  return (
    <article className="card panel" data-schedule={s.workflow} data-state={state} aria-label={`Schedule of ${s.workflow}`}>
      <div className="row">
        <h3>
          <Link to={`/registry/workflows/${encodeURIComponent(s.workflow)}`}>{s.workflow}</Link>
        </h3>
        <span className="mono muted small">{s.version}</span>
        <span className={`badge ${state === 'active' ? 's-completed' : state === 'paused' ? 's-waiting' : 's-cancelled'}`} data-testid="schedule-state">
          {state}
        </span>
      </div>
      <dl className="facts" style={{ marginTop: 8, marginBottom: 4 }}>
        <dt>Cron</dt>
        <dd className="mono">{s.cron}</dd>
        <dt>Timezone</dt>
        <dd className="tz" data-testid="timezone">
          {s.timezone}
        </dd>
        <dt>Overlap</dt>
        <dd>
          {s.overlap} · catch-up {s.catchup.policy}
        </dd>
        <dt>Last fired</dt>
        <dd>{s.last_fired_at ? <Tick iso={s.last_fired_at} timezone={s.timezone} /> : <span className="muted">never</span>}</dd>
      </dl>
      <div className="small muted">Next five{state !== 'active' ? ` (when ${state === 'paused' ? 'resumed' : 'enabled'})` : ''}:</div>
      {preview.error ? <ErrorBox error={preview.error} /> : null}
      <ol className="ticks" aria-label={`Next fire times of ${s.workflow}`}>
        {(preview.data?.ticks ?? []).map((t) => (
          <li key={t} data-tick={t}>
            <Tick iso={t} timezone={s.timezone} />
          </li>
        ))}
      </ol>
      <div className="row actions">
        {s.paused ? (
          <button type="button" onClick={() => pause.mutate(false)} disabled={pause.isPending}>
            Resume
          </button>
        ) : (
          <button type="button" onClick={() => pause.mutate(true)} disabled={pause.isPending}>
            Pause
          </button>
        )}
        <button type="button" className="primary" onClick={() => fire.mutate()} disabled={fire.isPending}>
          Run now
        </button>
        {started ? (
          <span className="small" role="status">
            Started <Link to={`/runs/${started}`} className="mono">{shortId(started)}</Link>
          </span>
        ) : null}
      </div>
      {pause.error ? <ErrorBox error={pause.error} /> : null}
      {fire.error ? <ErrorBox error={fire.error} /> : null}
    </article>
  );
}

/** The newest runs of a workflow started one way (a webhook's deliveries, an event trigger's runs). */
function RecentRuns({ workflow, trigger }: { workflow: string; trigger: string }) {
  const runs = useQuery({ queryKey: ['recent-runs', workflow, trigger], queryFn: () => api<RunPage>(`/api/v1/runs${qs({ workflow, trigger_type: trigger, limit: 5 })}`), refetchInterval: 10_000 });
  if (runs.error) return <ErrorBox error={runs.error} />;
  if (!runs.data) return <span className="muted small">Loading…</span>;
  if (runs.data.runs.length === 0) return <span className="muted small">none yet</span>;
  return (
    <ul className="recent">
      {runs.data.runs.map((r) => (
        <li key={r.run_id} className="row">
          <Link to={`/runs/${r.run_id}`} className="mono">
            {shortId(r.run_id)}
          </Link>
          <StatusBadge status={r.status} />
          <span className="muted small" title={dateTime(r.created_at)}>
            {ago(r.created_at)}
          </span>
        </li>
      ))}
    </ul>
  );
}

function Webhooks() {
  const list = useQuery({ queryKey: ['webhooks'], queryFn: () => api<{ webhooks: Webhook[] }>('/api/v1/webhooks') });
  return (
    <section aria-labelledby="h-webhooks">
      <h2 id="h-webhooks">Webhooks</h2>
      <Loaded
        q={list}
        isEmpty={(d) => d.webhooks.length === 0}
        empty={
          <Empty title="No webhooks">
            Add <code>trigger: &#123;type: webhook, path: shop/orders, secret: "$&#123;secrets.ORDERS_HOOK&#125;"&#125;</code> to a workflow and register it.
          </Empty>
        }
      >
        {(d) => (
          <table aria-label="Webhooks">
            <thead>
              <tr>
                <th>URL</th>
                <th>Workflow</th>
                <th>Verified by</th>
                <th>Dedup by</th>
                <th>Recent deliveries</th>
              </tr>
            </thead>
            <tbody>
              {d.webhooks.map((w) => (
                <tr key={w.path} data-webhook={w.path}>
                  <td>
                    <code data-testid="webhook-url">{`${window.location.origin}${w.url}`}</code>
                    <div className="muted small">POST</div>
                  </td>
                  <td>
                    <Link to={`/registry/workflows/${encodeURIComponent(w.workflow)}`}>{w.workflow}</Link> <span className="mono muted small">{w.version}</span>
                    {w.enabled ? null : <span className="badge s-cancelled">disabled</span>}
                  </td>
                  <td>{w.auth === 'none' ? <span className="badge s-waiting">unsigned</span> : `${w.scheme ?? 'standard'} signature`}</td>
                  <td className="mono small">{w.delivery_id ?? <span className="muted">not deduplicated</span>}</td>
                  <td>
                    <RecentRuns workflow={w.workflow} trigger="webhook" />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}

function EventTriggers() {
  const list = useQuery({ queryKey: ['event-triggers'], queryFn: () => api<{ triggers: EventTrigger[] }>('/api/v1/events/triggers') });
  return (
    <section aria-labelledby="h-events">
      <h2 id="h-events">Event triggers</h2>
      <Loaded
        q={list}
        isEmpty={(d) => d.triggers.length === 0}
        empty={
          <Empty title="No event triggers">
            Add <code>trigger: &#123;type: event, on: order.paid&#125;</code> to a workflow and register it; raise events with <code>swarm events emit</code> or <code>POST /api/v1/events</code>.
          </Empty>
        }
      >
        {(d) => (
          <table aria-label="Event triggers">
            <thead>
              <tr>
                <th>Event</th>
                <th>Workflow</th>
                <th>Source</th>
                <th>Filter</th>
                <th>Recent runs</th>
              </tr>
            </thead>
            <tbody>
              {d.triggers.map((t) => (
                <tr key={`${t.workflow}:${t.on}`} data-event-trigger={t.workflow}>
                  <td className="mono">{t.on}</td>
                  <td>
                    <Link to={`/registry/workflows/${encodeURIComponent(t.workflow)}`}>{t.workflow}</Link> <span className="mono muted small">{t.version}</span>
                    {t.enabled ? null : <span className="badge s-cancelled">disabled</span>}
                  </td>
                  <td>{t.source ?? <span className="muted">any</span>}</td>
                  <td className="mono small">{t.filter ?? <span className="muted">none</span>}</td>
                  <td>
                    <RecentRuns workflow={t.workflow} trigger="event" />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}

