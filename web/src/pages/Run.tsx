import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useParams } from 'react-router';
import { api } from '../api';
import { Dag } from '../components/Dag';
import { ErrorBox } from '../components/Empty';
import { StatusBadge } from '../components/StatusBadge';
import { useRunEvents } from '../live';
import type { Run } from '../types';

interface WorkflowDoc {
  dag: { nodes: { id: string; agent: string | null }[]; edges: { from: string; to: string }[] };
}

/** One run: its DAG, colored by state, kept live by the run's event stream. */
export function RunPage() {
  const { id = '' } = useParams();
  const client = useQueryClient();
  const run = useQuery({ queryKey: ['run', id], queryFn: () => api<Run>(`/api/v1/runs/${encodeURIComponent(id)}`) });
  const wf = run.data;
  const workflow = useQuery({
    queryKey: ['workflow', wf?.workflow, wf?.version],
    queryFn: () => api<WorkflowDoc>(`/api/v1/workflows/${encodeURIComponent(wf?.workflow ?? '')}?version=${encodeURIComponent(wf?.version ?? '')}`),
    enabled: wf !== undefined,
  });
  // Each recorded event may change a state: read the run again (cheap; one request per event burst).
  useRunEvents(id, () => void client.invalidateQueries({ queryKey: ['run', id] }));
  if (run.error) return <ErrorBox error={run.error} />;
  if (!run.data) return <p className="muted">Loading…</p>;
  const states = new Map(run.data.steps.map((s) => [s.id, s]));
  const nodes = (workflow.data?.dag.nodes ?? []).map((n) => ({ id: n.id, label: n.id, sublabel: n.agent ?? '', status: states.get(n.id)?.status ?? 'pending' }));
  return (
    <>
      <div className="page-head">
        <h1 className="mono">{run.data.run_id.slice(0, 12)}</h1>
        <StatusBadge status={run.data.status} />
        <span className="muted">
          {run.data.workflow}@{run.data.version}
        </span>
      </div>
      {workflow.data ? <Dag nodes={nodes} edges={workflow.data.dag.edges} /> : null}
    </>
  );
}
