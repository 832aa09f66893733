/**
 * The selected step: its state, what it runs, attempts, timing, the inputs it ran with (as the
 * engine recorded them), outputs, error, captured logs; a map step's elements; a sub-workflow step's
 * child run; an LLM step's conversation.
 */
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api } from '../../api';
import { Json } from '../../components/Json';
import { StatusBadge } from '../../components/StatusBadge';
import { dateTime, duration, shortId } from '../../format';
import type { RunSummary } from '../../types';
import { elementsOf, kindLabel, untilOf, type StepSpan } from './graph';
import { Transcript } from './Transcript';
import type { StepLogEntry, TimedStep, WorkflowNode } from './types';

const MAX_ELEMENTS = 1000;

/** `triage@1.0.0` → name and version; nothing for a step that runs no agent (`kind:wait`). */
function agentOf(ref: string | undefined): { name: string; version: string } | undefined {
  if (!ref || ref.startsWith('kind:')) return undefined;
  const at = ref.lastIndexOf('@');
  return at > 0 ? { name: ref.slice(0, at), version: ref.slice(at + 1) } : { name: ref, version: '' };
}

/**
 * Whether a step's agent is an LLM agent (its runtime, from the registry): only those have a
 * conversation to show, and asking another step for one is a 404 in the browser's console.
 */
function useIsLlm(step: TimedStep | undefined, node: WorkflowNode | undefined): boolean {
  const agent = node?.map || node?.workflow || node?.sleep || node?.wait ? undefined : agentOf(step?.agent);
  const doc = useQuery({
    queryKey: ['agent', agent?.name, agent?.version],
    queryFn: () => api<{ runtime: string }>(`/api/v1/agents/${encodeURIComponent(agent?.name ?? '')}${agent?.version ? `?version=${encodeURIComponent(agent.version)}` : ''}`),
    enabled: agent !== undefined && step?.status !== 'pending',
    // A registered version never changes.
    staleTime: Infinity,
  });
  return doc.data?.runtime === 'llm';
}

/**
 * How long a step took: its span (a wait included) and, when it waited, how long it ran (its row's
 * duration, that of its last attempt).
 */
function spent(step: TimedStep | undefined, span: StepSpan | undefined): string {
  if (!step || !span || span.end === null || step.status === 'pending' || step.status === 'ready') return duration(step?.duration_ms);
  const total = span.end - span.start;
  const ran = step.duration_ms;
  return ran !== null && total - ran >= 1000 ? `${duration(total)} (ran ${duration(ran)})` : duration(total);
}

/** What the Outputs section says when there are none: why. */
function noOutputs(status: string): string {
  if (status === 'failed') return 'None: the step failed.';
  if (status === 'cancelled') return 'None: the step was cancelled.';
  if (status === 'skipped') return 'None: the step was skipped.';
  if (status === 'completed') return 'None.';
  return 'None yet.';
}

/** A step panel's title row: the step id, its status when it has one, and Close. */
function PanelHead({ id, status, onClose }: { id: string; status?: string; onClose: () => void }) {
  return (
    <div className="row">
      <h2 className="mono sp-title">{id}</h2>
      {status !== undefined ? <StatusBadge status={status} /> : null}
      <span className="grow" />
      <button type="button" onClick={onClose} aria-label="Close the step panel">
        Close
      </button>
    </div>
  );
}

/** The panel of a `?step=` the run does not have (a mistyped or outdated link). */
export function MissingStep({ id, onClose }: { id: string; onClose: () => void }) {
  return (
    <aside className="panel step-panel" aria-label={`Step ${id}`} data-panel-step={id} data-missing="true">
      <PanelHead id={id} onClose={onClose} />
      <p role="alert">
        No step <span className="mono">{id}</span> in this run.
      </p>
    </aside>
  );
}

export function StepPanel({
  runId,
  step,
  node,
  steps,
  children,
  reason,
  span,
  onSelect,
  onClose,
}: {
  runId: string;
  step: TimedStep | undefined;
  node: WorkflowNode | undefined;
  steps: readonly TimedStep[];
  children: readonly RunSummary[];
  reason: string | undefined;
  /** Its span from its events: from its first start, a wait included. */
  span: StepSpan | undefined;
  onSelect: (id: string) => void;
  onClose: () => void;
}) {
  const id = step?.id ?? node?.id ?? '';
  const status = step?.status ?? 'pending';
  const live = status === 'running' || status === 'waiting';
  const logs = useQuery({
    queryKey: ['logs', runId, id, status],
    queryFn: () => api<{ logs: StepLogEntry[] }>(`/api/v1/runs/${encodeURIComponent(runId)}/logs?step=${encodeURIComponent(id)}`),
    enabled: step !== undefined && status !== 'pending',
  });
  const elements = node?.map ? elementsOf(steps, node.id) : [];
  const child = node?.workflow ? children.find((c) => c.parent_step_id === node.id) : undefined;
  const until = untilOf(reason);
  const llm = useIsLlm(step, node);
  return (
    <aside className="panel step-panel" aria-label={`Step ${id}`} data-panel-step={id}>
      <PanelHead id={id} status={status} onClose={onClose} />
      <dl className="facts">
        <dt>Runs</dt>
        <dd className="mono">{node ? kindLabel(node) : (step?.agent ?? '–')}</dd>
        <dt>Attempts</dt>
        <dd>{step?.attempts ?? 0}</dd>
        <dt>Duration</dt>
        <dd>{spent(step, span)}</dd>
        <dt>Started</dt>
        <dd>{span && step?.status !== 'pending' && step?.status !== 'ready' ? dateTime(span.start) : step?.started_at ? dateTime(step.started_at) : '–'}</dd>
        <dt>Ended</dt>
        <dd>{step?.completed_at ? dateTime(step.completed_at) : '–'}</dd>
        {node?.condition ? (
          <>
            <dt>Condition</dt>
            <dd className="mono">{node.condition}</dd>
          </>
        ) : null}
        {reason && status === 'waiting' ? (
          <>
            <dt>Waiting</dt>
            <dd>
              {reason}
              {until ? <span className="muted"> ({dateTime(until)})</span> : null}
            </dd>
          </>
        ) : null}
        {node?.wait ? (
          <>
            <dt>Waits for</dt>
            <dd>
              {node.wait.event ? `event ${node.wait.event}` : `signal ${node.wait.signal ?? ''}`}
              {node.wait.match ? <span className="mono"> where {node.wait.match}</span> : null}
              {node.wait.timeout_ms !== undefined ? `, at most ${duration(node.wait.timeout_ms)} (then ${node.wait.on_timeout})` : ''}
            </dd>
          </>
        ) : null}
        {node?.workflow ? (
          <>
            <dt>Child run</dt>
            <dd>
              {child ? (
                <Link to={`/runs/${child.run_id}`} className="mono">
                  {shortId(child.run_id)}
                </Link>
              ) : (
                <span className="muted">not started</span>
              )}
              {child ? (
                <>
                  {' '}
                  <StatusBadge status={child.status} />
                </>
              ) : null}
            </dd>
          </>
        ) : null}
      </dl>
      {step?.error ? (
        <div className="error-box" role="alert">
          {step.error}
        </div>
      ) : null}
      {/* An LLM step's conversation first: it is what people open such a step for. */}
      {step && status !== 'pending' && llm ? <Transcript runId={runId} step={id} live={live} /> : null}
      {elements.length ? (
        <>
          <h3>Elements ({elements.length.toLocaleString()})</h3>
          <div className="sp-elements">
            <table>
              <thead>
                <tr>
                  <th>#</th>
                  <th>Step</th>
                  <th>Status</th>
                  <th>Attempts</th>
                  <th>Duration</th>
                </tr>
              </thead>
              <tbody>
                {elements.slice(0, MAX_ELEMENTS).map((e) => (
                  <tr key={e.id} data-element={e.id}>
                    <td>{e.map_index}</td>
                    <td>
                      <button type="button" className="link-button mono" onClick={() => onSelect(e.id)}>
                        {e.id}
                      </button>
                    </td>
                    <td>
                      <StatusBadge status={e.status} />
                    </td>
                    <td>{e.attempts}</td>
                    <td>{duration(e.duration_ms)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
      <h3>Inputs</h3>
      {step?.inputs !== null && step?.inputs !== undefined ? <Json value={step.inputs} label="Inputs" /> : <p className="muted small">Recorded when the step finishes.</p>}
      <h3>Outputs</h3>
      {step?.outputs !== null && step?.outputs !== undefined ? <Json value={step.outputs} label="Outputs" /> : <p className="muted small">{noOutputs(status)}</p>}
      {logs.data && logs.data.logs.length ? (
        <>
          <h3>Logs</h3>
          {logs.data.logs.map((l) => (
            <div key={`${l.attempt}-${l.at}`} className="sp-log">
              <div className="small muted">
                attempt {l.attempt} · {dateTime(l.at)}
                {l.truncated ? ' · truncated' : ''}
              </div>
              {l.stdout ? <pre className="log">{l.stdout}</pre> : null}
              {l.stderr ? <pre className="log log-err">{l.stderr}</pre> : null}
            </div>
          ))}
        </>
      ) : null}
    </aside>
  );
}
