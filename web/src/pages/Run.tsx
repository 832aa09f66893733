/**
 * One run: its DAG (laid out automatically, each step colored by state), a timeline of its steps,
 * the selected step's panel (inputs, outputs, error, attempts, logs, an LLM step's conversation),
 * the hash-chained event log with the result of verify, and the actions (cancel, retry, run again,
 * approve or reject, send a signal). Kept live by the run's event stream: events are gathered and
 * the run and its steps read again at most a few times a second, so a big run stays cheap.
 */
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Link, useParams, useSearchParams } from 'react-router';
import { api } from '../api';
import { Dag, type DagNode } from '../components/Dag';
import { Empty, ErrorBox } from '../components/Empty';
import { StatusBadge } from '../components/StatusBadge';
import { dateTime, duration, shortId } from '../format';
import { useRunEvents } from '../live';
import type { Run, RunEvent, RunPage as RunList } from '../types';
import { ApprovalBanner, RunActions, RunAgain, SignalForm } from './run/Actions';
import { EventLog } from './run/EventLog';
import { Lineage } from './run/Lineage';
import { applyStepEvents, dagNodes, keepUnchanged, stepSpans, waitingReasons } from './run/graph';
import { MissingStep, StepPanel } from './run/StepPanel';
import { Timeline } from './run/Timeline';
import type { Approval, TimedStep, WorkflowDoc } from './run/types';
import { RunTasksLink } from './task/RunTasksLink';
import './run/run.css';

/** How long events gather before the page reads the run again (a burst of events, one read). */
const BATCH_MS = 250;
const FINISHED = new Set(['completed', 'failed', 'cancelled']);
const FINISHED_EVENTS = new Set(['RUN_COMPLETED', 'RUN_FAILED', 'RUN_CANCELLED']);
/** Step events whose step, once read, has its end (completed_at, outputs or error). */
const STEP_ENDS = new Set(['STEP_COMPLETED', 'STEP_FAILED']);
/**
 * When a step is read without the end its events told: read again, 200 ms later, then twice as late
 * each time (at most 2 s apart), for up to 20 s. A busy server may answer a read begun before the
 * end was committed after the event that told it; the page must not stay on such a read.
 */
const SETTLE_FIRST_MS = 200;
const SETTLE_MAX_MS = 2_000;
const SETTLE_FOR_MS = 20_000;

export function RunPage() {
  const { id = '' } = useParams();
  // Another run (a child's link, "Run again") starts afresh: its own events, its own selection.
  return <RunView key={id} id={id} />;
}

function RunView({ id }: { id: string }) {
  const client = useQueryClient();
  const [params, setParams] = useSearchParams();
  const selected = params.get('step') ?? undefined;
  const tab = params.get('tab') === 'events' ? 'events' : 'timeline';
  const [runAgain, setRunAgain] = useState(false);
  const set = useCallback(
    (changes: Record<string, string | undefined>) =>
      setParams(
        (p) => {
          const next = new URLSearchParams(p);
          for (const [k, v] of Object.entries(changes)) if (v === undefined) next.delete(k);
          else next.set(k, v);
          return next;
        },
        { replace: true },
      ),
    [setParams],
  );

  const run = useQuery({ queryKey: ['run', id], queryFn: () => api<Run>(`/api/v1/runs/${encodeURIComponent(id)}`) });
  const runId = run.data?.run_id;
  const steps = useQuery({ queryKey: ['steps', id], queryFn: () => api<{ steps: TimedStep[] }>(`/api/v1/runs/${encodeURIComponent(id)}/steps`) });
  const wf = run.data;
  const workflow = useQuery({
    queryKey: ['workflow', wf?.workflow, wf?.version],
    queryFn: () => api<WorkflowDoc>(`/api/v1/workflows/${encodeURIComponent(wf?.workflow ?? '')}?version=${encodeURIComponent(wf?.version ?? '')}`),
    enabled: wf !== undefined,
    staleTime: Infinity,
  });
  const hasChildren = workflow.data?.dag.nodes.some((n) => n.workflow) ?? false;
  const children = useQuery({ queryKey: ['children', id], queryFn: () => api<RunList>(`/api/v1/runs?parent=${encodeURIComponent(runId ?? id)}&limit=500`), enabled: hasChildren && runId !== undefined });
  const waiting = run.data?.status === 'waiting';
  const approvals = useQuery({ queryKey: ['approvals', runId], queryFn: () => api<{ approvals: Approval[] }>(`/api/v1/approvals?run=${encodeURIComponent(runId ?? '')}`), enabled: waiting && runId !== undefined });

  // The event log, gathered from the run's stream (every event from the first), flushed in batches.
  const [events, setEvents] = useState<RunEvent[]>([]);
  const gathered = useRef<RunEvent[]>([]);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  // One read at a time: a read that takes longer than a burst of events is not cancelled by the next
  // burst (a busy big run would never show a change); the next read starts when it ends.
  const reading = useRef(false);
  const again = useRef(false);
  const gone = useRef(false);
  // Whether a step the events say ended (its last event a completion or failure) is read without its
  // end (no completed_at, so no outputs or error): that read began before the end was committed.
  const unsettled = useCallback((): boolean => {
    const stepsNow = client.getQueryData<{ steps: TimedStep[] }>(['steps', id])?.steps;
    if (!stepsNow) return false;
    const ended = new Set<string>();
    for (const e of gathered.current) {
      if (!e.step) continue;
      if (STEP_ENDS.has(e.type)) ended.add(e.step);
      else ended.delete(e.step);
    }
    return stepsNow.some((s) => ended.has(s.id) && s.completed_at == null);
  }, [client, id]);
  const reread = useCallback(async () => {
    if (reading.current) {
      again.current = true;
      return;
    }
    reading.current = true;
    try {
      let wait = SETTLE_FIRST_MS;
      const giveUp = Date.now() + SETTLE_FOR_MS;
      do {
        again.current = false;
        // cancelRefetch: a read begun before these events (the first load, an action's invalidation)
        // would answer with the state before them; this loop's own reads are never cancelled (again).
        await Promise.all([['run', id], ['steps', id], ['children', id], ['approvals']].map((key) => client.refetchQueries({ queryKey: key }, { cancelRefetch: true })));
        // A step still read without the end its events told: read again, backing off, for a while.
        if (!again.current && !gone.current && unsettled() && Date.now() < giveUp) {
          await new Promise((ok) => setTimeout(ok, wait));
          wait = Math.min(wait * 2, SETTLE_MAX_MS);
          again.current = true;
        }
      } while (again.current);
    } finally {
      reading.current = false;
    }
  }, [client, id, unsettled]);
  const applied = useRef(0);
  const flush = useCallback(() => {
    timer.current = undefined;
    const fresh = gathered.current.slice(applied.current);
    applied.current = gathered.current.length;
    // The states the events tell are drawn at once; the read that follows (slower for a big run,
    // whose steps are many) brings the rest (times, outputs, attempts).
    client.setQueryData<{ steps: TimedStep[] }>(['steps', id], (old) => (old ? { steps: applyStepEvents(old.steps, fresh) } : old));
    setEvents([...gathered.current]);
    // A finished run's replayed history ends where the run we read ends: reading its 1,000 steps
    // again would change nothing. Anything after it (a retry) arrives as newer events, and is read.
    // The run and its steps are two reads: a run read as finished may come with steps read a moment
    // before their last ones finished (no outputs yet). Those are read again.
    // "The run we read" is one read after these events (its last change no older than the last of
    // them): a retry that failed again at once ends with the same kind of event, and must be read.
    const cached = client.getQueryData<Run>(['run', id]);
    const last = fresh[fresh.length - 1];
    const readAfter = cached?.updated_at_ms !== undefined && last !== undefined && cached.updated_at_ms >= Date.parse(last.at);
    if (cached && FINISHED.has(cached.status) && last && FINISHED_EVENTS.has(last.type) && readAfter && !unsettled()) return;
    void reread();
  }, [client, id, reread, unsettled]);
  // A burst's timer must not fire after the page is gone, nor its reads go on.
  useEffect(() => {
    gone.current = false;
    return () => {
      if (timer.current) clearTimeout(timer.current);
      timer.current = undefined;
      gone.current = true;
    };
  }, []);
  // The stream ends after a finished run's last event. A run that goes on afterwards (retried here
  // or elsewhere) is followed again: at once after this page's Retry, or when a read of the run made
  // after the end finds it unfinished.
  const [follow, setFollow] = useState(0);
  const endedAt = useRef<number | undefined>(undefined);
  useRunEvents(
    runId,
    (e) => {
      const last = gathered.current[gathered.current.length - 1];
      if (last && e.seq <= last.seq) return; // a reconnect resumes after the last one; never twice
      gathered.current.push(e);
      timer.current ??= setTimeout(flush, BATCH_MS);
    },
    () => {
      endedAt.current = Date.now();
      if (timer.current) clearTimeout(timer.current);
      flush();
    },
    follow,
  );
  const followAgain = useCallback(() => {
    endedAt.current = undefined;
    setFollow((n) => n + 1);
  }, []);
  const unfinished = run.data !== undefined && !FINISHED.has(run.data.status);
  useEffect(() => {
    if (endedAt.current !== undefined && unfinished && run.dataUpdatedAt > endedAt.current) followAgain();
  }, [unfinished, run.dataUpdatedAt, followAgain]);
  const onAction = useCallback(
    (action: 'cancel' | 'retry') => {
      if (action === 'retry') followAgain();
      void reread();
    },
    [followAgain, reread],
  );

  const stepList = steps.data?.steps;
  const select = useCallback((step: string) => set({ step }), [set]);
  // The waiting reasons change far less often than the events: keep the same map while they stay.
  const reasonsRef = useRef(new Map<string, string>());
  const reasons = useMemo(() => {
    const next = waitingReasons(events);
    if (JSON.stringify([...next]) !== JSON.stringify([...reasonsRef.current])) reasonsRef.current = next;
    return reasonsRef.current;
  }, [events]);
  const pendingApprovals = useMemo(() => (waiting ? (approvals.data?.approvals ?? []) : []), [waiting, approvals.data]);
  const spans = useMemo(() => stepSpans(events), [events]);
  const previousNodes = useRef<DagNode[]>([]);
  const nodes = useMemo(() => {
    const next = keepUnchanged(dagNodes(workflow.data?.dag.nodes ?? [], stepList ?? run.data?.steps ?? [], reasons, children.data?.runs ?? [], new Set(pendingApprovals.map((a) => a.step_id))), previousNodes.current);
    previousNodes.current = next;
    return next;
  }, [workflow.data, stepList, run.data, reasons, children.data, pendingApprovals]);

  if (run.error) return <ErrorBox error={run.error} />;
  if (!run.data) return <p className="muted">Loading the run…</p>;
  const r = run.data;
  const live = r.status === 'queued' || r.status === 'running' || r.status === 'waiting';
  const allSteps = stepList ?? [];
  // A map element (`resize[3]`) is selected as itself; its node in the DAG is its map step's.
  const selectedNodeId = selected?.replace(/\[\d+\]$/, '');
  const selectedNode = workflow.data?.dag.nodes.find((n) => n.id === selectedNodeId);
  const selectedStep = allSteps.find((s) => s.id === selected);
  const signals = (workflow.data?.dag.nodes ?? []).filter((n) => n.wait?.signal && allSteps.find((s) => s.id === n.id)?.status === 'waiting');

  return (
    <div className="run-page">
      <div className="page-head">
        <h1 className="mono" title={r.run_id}>
          {shortId(r.run_id)}
        </h1>
        <StatusBadge status={r.status} />
        <Link to={`/registry/workflows/${encodeURIComponent(r.workflow)}`}>
          {r.workflow}@{r.version}
        </Link>
        <span className="muted small" title={dateTime(r.created_at)}>
          created {new Date(r.created_at).toLocaleString()}
        </span>
        {r.duration_ms !== null ? <span className="muted small">took {duration(r.duration_ms)}</span> : null}
        {r.parent_run_id && !r.fork_step_id ? (
          <span className="small">
            child of{' '}
            <Link className="mono" to={`/runs/${r.parent_run_id}${r.parent_step_id ? `?step=${encodeURIComponent(r.parent_step_id)}` : ''}`}>
              {shortId(r.parent_run_id)}
            </Link>
          </span>
        ) : null}
        <RunTasksLink runId={r.run_id} />
        <span className="grow" />
        <RunActions run={r} onRunAgain={() => setRunAgain(true)} onDone={onAction} />
      </div>
      <Lineage run={r} />
      {r.error ? (
        <div className="error-box run-error" role="alert">
          {r.error.step ? (
            <>
              Step{' '}
              <button type="button" className="link-button mono" onClick={() => select(r.error?.step ?? '')}>
                {r.error.step}
              </button>{' '}
              failed:{' '}
            </>
          ) : null}
          {r.error.message}
        </div>
      ) : null}
      {runAgain ? <RunAgain run={r} onClose={() => setRunAgain(false)} /> : null}
      <ApprovalBanner approvals={pendingApprovals} onDecided={() => void client.invalidateQueries({ queryKey: ['run', id] })} />
      {signals.map((n) => (
        <SignalForm key={n.id} runId={r.run_id} step={n.id} signal={n.wait?.signal ?? ''} />
      ))}
      <div className={`run-body${selected ? ' with-panel' : ''}`}>
        <div className="run-main">
          {workflow.error ? <ErrorBox error={workflow.error} /> : null}
          {workflow.data ? <Dag nodes={nodes} edges={workflow.data.dag.edges} selected={selectedNodeId} onSelect={(n) => select(n)} height={selected ? 340 : 380} /> : <div className="dag muted" style={{ height: 380 }} />}
          <div className="tabs" role="tablist" aria-label="Run details">
            <button type="button" role="tab" aria-selected={tab === 'timeline'} onClick={() => set({ tab: undefined })}>
              Timeline
            </button>
            <button type="button" role="tab" aria-selected={tab === 'events'} onClick={() => set({ tab: 'events' })}>
              Event log{events.length ? ` (${events.length.toLocaleString()})` : ''}
            </button>
          </div>
          <div role="tabpanel" className="tab-body">
            {tab === 'timeline' ? (
              steps.error ? (
                <ErrorBox error={steps.error} />
              ) : allSteps.length ? (
                <Timeline steps={allSteps} spans={spans} from={r.started_at_ms ?? null} to={r.completed_at_ms ?? null} selected={selected} onSelect={select} live={live} />
              ) : (
                <Empty title="No steps yet">The run is queued: its steps appear as a worker starts it.</Empty>
              )
            ) : (
              <EventLog runId={r.run_id} events={events} onSelect={select} />
            )}
          </div>
        </div>
        {selected && stepList && workflow.data && !selectedStep && !(selected === selectedNodeId && selectedNode) ? (
          <MissingStep id={selected} onClose={() => set({ step: undefined })} />
        ) : selected ? (
          <StepPanel
            runId={r.run_id}
            step={selectedStep}
            node={selected === selectedNodeId ? selectedNode : undefined}
            steps={allSteps}
            children={children.data?.runs ?? []}
            reason={reasons.get(selected)}
            span={spans.get(selected)}
            onSelect={select}
            onClose={() => set({ step: undefined })}
          />
        ) : null}
      </div>
    </div>
  );
}
