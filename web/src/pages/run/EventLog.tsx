/**
 * The run's hash-chained event log, newest last, with the result of `verify` (the chain under the
 * server's key and every completed step's checkpoint). Verified when shown and on demand.
 */
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api } from '../../api';
import { ErrorBox } from '../../components/Empty';
import { Json } from '../../components/Json';
import { timeOfDay } from './graph';
import { dateTime } from '../../format';
import type { RunEvent } from '../../types';
import type { VerifyReport } from './types';

const SHOWN = 200;

export function EventLog({ runId, events, onSelect }: { runId: string; events: readonly RunEvent[]; onSelect: (step: string) => void }) {
  const [all, setAll] = useState(false);
  const verify = useQuery({
    queryKey: ['verify', runId],
    queryFn: () => api<VerifyReport>(`/api/v1/runs/${encodeURIComponent(runId)}/verify`),
    staleTime: Infinity,
  });
  const shown = all ? events : events.slice(-SHOWN);
  return (
    <section aria-label="Event log">
      <div className="row verify-row">
        {verify.data ? (
          <span className={`verify ${verify.data.ok ? 'ok' : 'bad'}`} data-verify={verify.data.ok ? 'ok' : 'failed'} role="status">
            {verify.data.ok
              ? `✓ Chain verified: ${verify.data.events.toLocaleString()} events, every link and checkpoint matches`
              : `✗ Verification failed: ${verify.data.problems.length} problem${verify.data.problems.length === 1 ? '' : 's'}`}
          </span>
        ) : verify.isFetching ? (
          <span className="muted">Verifying…</span>
        ) : null}
        <button type="button" onClick={() => void verify.refetch()} disabled={verify.isFetching}>
          Verify again
        </button>
      </div>
      {verify.error ? <ErrorBox error={verify.error} /> : null}
      {verify.data && !verify.data.ok ? (
        <ul className="verify-problems">
          {verify.data.problems.map((p, i) => (
            <li key={i}>
              {p.seq !== null ? <strong>seq {p.seq}: </strong> : null}
              {p.problem}
            </li>
          ))}
        </ul>
      ) : null}
      {events.length > shown.length ? (
        <p className="small muted">
          The last {shown.length.toLocaleString()} of {events.length.toLocaleString()} events.{' '}
          <button type="button" className="link-button" onClick={() => setAll(true)}>
            Show all
          </button>
        </p>
      ) : null}
      <table className="events">
        <thead>
          <tr>
            <th>Seq</th>
            <th>Time</th>
            <th>Type</th>
            <th>Step</th>
            <th>Data</th>
            <th>Hash</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((e) => {
            const bad = verify.data?.problems.some((p) => p.seq === e.seq);
            return (
              <tr key={e.seq} data-seq={e.seq} className={bad ? 'bad' : undefined}>
                <td>{e.seq}</td>
                <td title={dateTime(e.at)}>{timeOfDay(e.at)}</td>
                <td className="mono">{e.type}</td>
                <td>
                  {e.step ? (
                    <button type="button" className="link-button mono" onClick={() => onSelect(e.step ?? '')}>
                      {e.step}
                    </button>
                  ) : null}
                </td>
                <td>{e.data && typeof e.data === 'object' && Object.keys(e.data).length ? <Json value={e.data} open={0} /> : null}</td>
                <td className="mono small" title={e.hash}>
                  {e.hash.slice(0, 10)}…
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
