/** On a run's page: a link to the run's consensus tasks, shown when it has any. */
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api } from '../../api';
import type { TaskPage } from './types';

export function RunTasksLink({ runId }: { runId: string }) {
  const tasks = useQuery({ queryKey: ['tasks', 'of-run', runId], queryFn: () => api<TaskPage>(`/api/v1/tasks?run=${encodeURIComponent(runId)}&limit=100`), staleTime: 5000 });
  const n = tasks.data?.tasks.length ?? 0;
  if (n === 0) return null;
  return (
    <Link className="small" to={`/tasks?run=${encodeURIComponent(runId)}`} data-testid="run-tasks">
      {n === 100 ? '100+' : n} consensus task{n === 1 ? '' : 's'}
    </Link>
  );
}
