/**
 * What a person can do to a run from its page: cancel it, retry it, run it again with edited input
 * (checked by the server: a 422 names the field), decide what it waits for (approve, or reject with
 * a reason), and send a signal a step waits for.
 */
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useNavigate } from 'react-router';
import { api, ApiError } from '../../api';
import { ErrorBox } from '../../components/Empty';
import { Json } from '../../components/Json';
import type { Run } from '../../types';
import type { Approval } from './types';

const ACTIVE = new Set(['queued', 'running', 'waiting']);

/**
 * Cancel (with a confirmation), retry, and "Run again" (which opens the input editor). `onDone` tells
 * the page an action was taken: it reads the run again (and follows a retried run's new events).
 */
export function RunActions({ run, onRunAgain, onDone }: { run: Run; onRunAgain: () => void; onDone: (action: 'cancel' | 'retry') => void }) {
  const [confirming, setConfirming] = useState(false);
  const cancel = useMutation({ mutationFn: () => api(`/api/v1/runs/${run.run_id}/cancel`, { method: 'POST', json: { reason: 'cancelled from the dashboard' } }), onSuccess: () => onDone('cancel'), onSettled: () => setConfirming(false) });
  const retry = useMutation({ mutationFn: () => api(`/api/v1/runs/${run.run_id}/retry`, { method: 'POST' }), onSuccess: () => onDone('retry') });
  return (
    <div className="row run-actions">
      {ACTIVE.has(run.status) && !confirming ? (
        <button type="button" className="danger" onClick={() => setConfirming(true)}>
          Cancel run
        </button>
      ) : null}
      {confirming ? (
        <span className="row confirm" role="group" aria-label="Confirm cancel">
          <span>Cancel this run? Running steps are stopped.</span>
          <button type="button" className="danger" onClick={() => cancel.mutate()} disabled={cancel.isPending}>
            Yes, cancel
          </button>
          <button type="button" onClick={() => setConfirming(false)}>
            Keep it
          </button>
        </span>
      ) : null}
      {run.status === 'failed' || run.status === 'cancelled' ? (
        <button type="button" onClick={() => retry.mutate()} disabled={retry.isPending}>
          Retry
        </button>
      ) : null}
      <button type="button" onClick={onRunAgain}>
        Run again…
      </button>
      {cancel.error ? <ErrorBox error={cancel.error} /> : null}
      {retry.error ? <ErrorBox error={retry.error} /> : null}
    </div>
  );
}

/** A JSON editor prefilled with the run's trigger input; the server checks it and starts a new run. */
export function RunAgain({ run, onClose }: { run: Run; onClose: () => void }) {
  const navigate = useNavigate();
  const [text, setText] = useState(() => JSON.stringify(run.trigger ?? {}, null, 2));
  const [local, setLocal] = useState<string | undefined>();
  const start = useMutation({
    mutationFn: (input: unknown) => api<{ run_id: string }>(`/api/v1/workflows/${encodeURIComponent(run.workflow)}/runs`, { method: 'POST', json: { input, version: run.version } }),
    onSuccess: (r) => {
      onClose();
      void navigate(`/runs/${r.run_id}`);
    },
  });
  const problem = start.error instanceof ApiError ? start.error.problem : undefined;
  const field = typeof problem?.field === 'string' ? problem.field : undefined;
  return (
    <form
      className="panel run-again"
      aria-label="Run again"
      onSubmit={(e) => {
        e.preventDefault();
        let input: unknown;
        try {
          input = JSON.parse(text);
        } catch (err) {
          // The server's answer to the previous attempt is not about this text: only this error shows.
          start.reset();
          setLocal(`The input is not JSON: ${(err as Error).message}`);
          return;
        }
        setLocal(undefined);
        start.mutate(input);
      }}
    >
      <label>
        Input of the new run ({run.workflow}@{run.version}, JSON)
        <textarea value={text} onChange={(e) => setText(e.target.value)} rows={Math.min(16, Math.max(4, text.split('\n').length + 1))} spellCheck={false} aria-invalid={local !== undefined || field !== undefined} />
      </label>
      {local ? (
        <div className="error-box" role="alert">
          {local}
        </div>
      ) : null}
      {start.error ? (
        <div className="error-box" role="alert" data-field={field}>
          {field ? (
            <>
              <strong className="mono">{field}</strong>:{' '}
            </>
          ) : null}
          {start.error.message} {start.error instanceof ApiError ? <code>({start.error.code})</code> : null}
        </div>
      ) : null}
      <div className="row">
        <button type="submit" className="primary" disabled={start.isPending}>
          Start run
        </button>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </form>
  );
}

/** The approvals a waiting run waits for, each with Approve and Reject (with a reason). */
export function ApprovalBanner({ approvals, onDecided }: { approvals: readonly Approval[]; onDecided: () => void }) {
  return (
    <>
      {approvals.map((a) => (
        <Decision key={`${a.step_id}/${a.call_id}`} approval={a} onDecided={onDecided} />
      ))}
    </>
  );
}

function Decision({ approval: a, onDecided }: { approval: Approval; onDecided: () => void }) {
  const client = useQueryClient();
  const [rejecting, setRejecting] = useState(false);
  const [reason, setReason] = useState('');
  const decide = useMutation({
    mutationFn: (d: 'approve' | 'reject') => api(`/api/v1/approvals/${a.run_id}/${encodeURIComponent(a.step_id)}/${d}`, { method: 'POST', json: d === 'reject' && reason.trim() ? { reason: reason.trim() } : {} }),
    onSuccess: () => {
      void client.invalidateQueries({ queryKey: ['approvals', a.run_id] });
      onDecided();
    },
  });
  return (
    <div className="banner approval" role="region" aria-label={`Approval for ${a.step_id}`} data-approval={a.step_id}>
      <div className="grow">
        <strong>
          Step <span className="mono">{a.step_id}</span> waits for approval
        </strong>{' '}
        {a.call_id === 'step' ? null : (
          <span>
            of the tool call <span className="mono">{a.tool}</span>
          </span>
        )}
        <Json value={a.arguments} open={1} />
      </div>
      {rejecting ? (
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            decide.mutate('reject');
          }}
        >
          <label>
            Reason
            <input value={reason} onChange={(e) => setReason(e.target.value)} placeholder="why not (recorded)" autoFocus />
          </label>
          <button type="submit" className="danger" disabled={decide.isPending}>
            Reject
          </button>
          <button type="button" onClick={() => setRejecting(false)}>
            Back
          </button>
        </form>
      ) : (
        <div className="row">
          <button type="button" className="primary" onClick={() => decide.mutate('approve')} disabled={decide.isPending}>
            Approve
          </button>
          <button type="button" className="danger" onClick={() => setRejecting(true)}>
            Reject…
          </button>
        </div>
      )}
      {decide.error ? <ErrorBox error={decide.error} /> : null}
    </div>
  );
}

/**
 * What was typed into a signal form, by run and step: the form is shown while its step is read as
 * waiting, and a read that lands between two events (the step briefly read as running) takes it away
 * and brings it back; what was typed must come back with it.
 */
const signalDrafts = new Map<string, string>();

/** Send the signal a waiting step waits for, with JSON data. */
export function SignalForm({ runId, step, signal }: { runId: string; step: string; signal: string }) {
  const draftKey = `${runId}/${step}`;
  const [text, setTextState] = useState(() => signalDrafts.get(draftKey) ?? '{}');
  const setText = (value: string): void => {
    signalDrafts.set(draftKey, value);
    setTextState(value);
  };
  const [bad, setBad] = useState<string | undefined>();
  const send = useMutation({
    mutationFn: (data: unknown) => api(`/api/v1/runs/${runId}/signals/${encodeURIComponent(signal)}`, { method: 'POST', json: data }),
    onSuccess: () => signalDrafts.delete(draftKey),
  });
  return (
    <form
      className="banner signal"
      aria-label={`Signal ${signal}`}
      onSubmit={(e) => {
        e.preventDefault();
        try {
          const data: unknown = JSON.parse(text);
          setBad(undefined);
          send.mutate(data);
        } catch (err) {
          setBad(`not JSON: ${(err as Error).message}`);
        }
      }}
    >
      <strong className="grow">
        Step <span className="mono">{step}</span> waits for the signal <span className="mono">{signal}</span>
      </strong>
      <label>
        Data (JSON)
        <input className="mono" value={text} onChange={(e) => setText(e.target.value)} />
      </label>
      <button type="submit" className="primary" disabled={send.isPending}>
        Send signal
      </button>
      {send.isSuccess ? <span className="muted small">sent</span> : null}
      {bad ? (
        <span className="error-box" role="alert">
          {bad}
        </span>
      ) : null}
      {send.error ? <ErrorBox error={send.error} /> : null}
    </form>
  );
}
