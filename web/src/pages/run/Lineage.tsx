/**
 * A run's lineage: the tree of forks it belongs to (GET /api/v1/runs/{id}/lineage), drawn as nested
 * lists from the root, each run a link with the step (and turn) it was forked at and its status; the
 * run on the page is marked. Nothing is drawn for a run that is no fork and has none.
 */
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api } from '../../api';
import { StatusBadge } from '../../components/StatusBadge';
import { shortId } from '../../format';
import type { Run } from '../../types';

export interface LineageNode {
  run_id: string;
  parent_run_id: string | null;
  fork_step_id: string | null;
  fork_turn: number | null;
  workflow_name: string;
  workflow_version: string;
  status: string;
  created_at: string;
  depth: number;
}

export function Lineage({ run }: { run: Run }) {
  const lineage = useQuery({
    queryKey: ['lineage', run.run_id, run.status],
    queryFn: () => api<{ run_id: string; nodes: LineageNode[] }>(`/api/v1/runs/${encodeURIComponent(run.run_id)}/lineage`),
  });
  const nodes = lineage.data?.nodes ?? [];
  if (nodes.length <= 1) return null;
  const byParent = new Map<string, LineageNode[]>();
  for (const n of nodes) if (n.parent_run_id) byParent.set(n.parent_run_id, [...(byParent.get(n.parent_run_id) ?? []), n]);
  const root = nodes[0] as LineageNode;
  const parent = run.fork_step_id ? nodes.find((n) => n.run_id === run.parent_run_id) : undefined;
  const draw = (n: LineageNode) => {
    const current = n.run_id === run.run_id;
    const kids = byParent.get(n.run_id) ?? [];
    return (
      <li key={n.run_id} data-run={n.run_id} data-depth={n.depth}>
        <span className={`lineage-node${current ? ' lineage-current' : ''}`}>
          {current ? (
            <strong className="mono" aria-current="page" title={n.run_id}>
              {shortId(n.run_id)}
            </strong>
          ) : (
            <Link className="mono" to={`/runs/${n.run_id}`} title={n.run_id}>
              {shortId(n.run_id)}
            </Link>
          )}
          {n.fork_step_id ? (
            <span className="muted small">
              {' '}
              forked at <span className="mono">{n.fork_step_id}</span>
              {n.fork_turn ? ` turn ${n.fork_turn}` : ''}
            </span>
          ) : (
            <span className="muted small"> root</span>
          )}{' '}
          <StatusBadge status={n.status} />
        </span>
        {kids.length ? <ul>{kids.map(draw)}</ul> : null}
      </li>
    );
  };
  return (
    <nav className="lineage" aria-label="Lineage">
      <div className="small">
        {parent ? (
          <>
            forked from{' '}
            <Link className="mono" to={`/runs/${parent.run_id}?step=${encodeURIComponent(run.fork_step_id ?? '')}`}>
              {shortId(parent.run_id)}
            </Link>{' '}
            at <span className="mono">{run.fork_step_id}</span>
            {run.fork_turn ? ` turn ${run.fork_turn}` : ''}
            {' · '}
          </>
        ) : null}
        lineage: {nodes.length} runs, {(byParent.get(run.run_id) ?? []).length} fork(s) of this run
      </div>
      <ul className="lineage-tree">{draw(root)}</ul>
    </nav>
  );
}
