import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api } from '../api';
import { Empty, ErrorBox } from '../components/Empty';
import { StatusBadge } from '../components/StatusBadge';
import { ago, dateTime, duration, shortId } from '../format';
import { useRunChanges } from '../live';
import type { RunPage, RunSummary } from '../types';

const PAGE = 50;

/** Runs, newest first, kept live by the runs stream. */
export function Runs() {
  const client = useQueryClient();
  const key = ['runs', PAGE];
  const runs = useQuery({ queryKey: key, queryFn: () => api<RunPage>(`/api/v1/runs?limit=${PAGE}`) });
  useRunChanges((run: RunSummary) => {
    client.setQueryData<RunPage>(key, (page) => {
      if (!page) return page;
      const at = page.runs.findIndex((r) => r.run_id === run.run_id);
      if (at >= 0) return { ...page, runs: page.runs.map((r, i) => (i === at ? run : r)) };
      return { ...page, runs: [run, ...page.runs].sort((a, b) => b.created_at - a.created_at).slice(0, PAGE) };
    });
  });
  return (
    <>
      <div className="page-head">
        <h1>Runs</h1>
      </div>
      {runs.error ? <ErrorBox error={runs.error} /> : null}
      {runs.data && runs.data.runs.length === 0 ? (
        <Empty title="No runs yet">
          Start one with <code>swarm run &lt;workflow&gt;</code>, from the Registry page, or with <code>POST /api/v1/workflows/&#123;name&#125;/runs</code>.
        </Empty>
      ) : null}
      {runs.data && runs.data.runs.length > 0 ? (
        <table data-testid="runs-table">
          <thead>
            <tr>
              <th>Run</th>
              <th>Workflow</th>
              <th>Status</th>
              <th>Trigger</th>
              <th>Created</th>
              <th>Duration</th>
            </tr>
          </thead>
          <tbody>
            {runs.data.runs.map((r) => (
              <tr key={r.run_id} data-run={r.run_id}>
                <td>
                  <Link to={`/runs/${r.run_id}`} className="mono">
                    {shortId(r.run_id)}
                  </Link>
                </td>
                <td>
                  {r.workflow_name} <span className="muted small">{r.workflow_version}</span>
                </td>
                <td>
                  <StatusBadge status={r.status} />
                </td>
                <td>{r.trigger_type}</td>
                <td title={dateTime(r.created_at)}>{ago(r.created_at)}</td>
                <td>{duration(r.completed_at && r.started_at ? r.completed_at - r.started_at : null)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </>
  );
}
