/**
 * Consensus tasks, newest first (`GET /api/v1/tasks`), filtered by the URL's query in the API's own
 * spelling (`?status=finalized&run=<id>&task_type=summary`), one server page at a time.
 */
import { useInfiniteQuery } from '@tanstack/react-query';
import { Link, useSearchParams } from 'react-router';
import { api, qs } from '../api';
import { Empty, ErrorBox } from '../components/Empty';
import { StatusBadge } from '../components/StatusBadge';
import { ago, dateTime, shortId } from '../format';
import { TASK_STATUSES, type TaskPage } from './task/types';
import './task/task.css';

const PAGE = 50;

/** The link to a task's page (a step's task id holds a `/`). */
export function taskPath(taskId: string): string {
  return `/tasks/${encodeURIComponent(taskId)}`;
}

export function Tasks() {
  const [params, setParams] = useSearchParams();
  const status = params.get('status') ?? '';
  const run = params.get('run') ?? '';
  const taskType = params.get('task_type') ?? '';
  const tasks = useInfiniteQuery({
    queryKey: ['tasks', status, run, taskType],
    queryFn: ({ pageParam }) => api<TaskPage>(`/api/v1/tasks${qs({ status, run, task_type: taskType, limit: PAGE, cursor: pageParam })}`),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const set = (key: string, value: string): void =>
    setParams((p) => {
      const next = new URLSearchParams(p);
      if (value === '') next.delete(key);
      else next.set(key, value);
      return next;
    });
  const rows = tasks.data?.pages.flatMap((p) => p.tasks) ?? [];
  return (
    <div>
      <div className="page-head">
        <h1>Tasks</h1>
        <span className="muted small">consensus tasks: proposals, verification, commit-reveal votes, decisions</span>
      </div>
      <div className="row" style={{ marginBottom: 12 }}>
        <label>
          State{' '}
          <select value={status} onChange={(e) => set('status', e.target.value)} aria-label="State">
            <option value="">any</option>
            {TASK_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Type <input value={taskType} onChange={(e) => set('task_type', e.target.value)} placeholder="task type" aria-label="Task type" />
        </label>
        {run ? (
          <span className="small">
            of run{' '}
            <Link className="mono" to={`/runs/${run}`}>
              {shortId(run)}
            </Link>{' '}
            <button type="button" className="link-button" onClick={() => set('run', '')}>
              (all runs)
            </button>
          </span>
        ) : null}
      </div>
      {tasks.error ? <ErrorBox error={tasks.error} /> : null}
      {tasks.isPending ? <p className="muted">Loading tasks…</p> : null}
      {!tasks.isPending && rows.length === 0 ? (
        <Empty title={status || run || taskType ? 'No tasks match these filters' : 'No consensus tasks yet'}>
          {status || run || taskType ? null : <span>A workflow step with kind: consensus, or swarm task submit, makes one.</span>}
        </Empty>
      ) : null}
      {rows.length ? (
        <table data-testid="tasks-table">
          <thead>
            <tr>
              <th>Task</th>
              <th>Type</th>
              <th>State</th>
              <th>Stage</th>
              <th>Round</th>
              <th>Run</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((t) => (
              <tr key={t.task_id} data-task={t.task_id} data-status={t.status}>
                <td>
                  <Link className="mono" to={taskPath(t.task_id)} title={t.task_id}>
                    {t.step_id === '' ? shortId(t.task_id) : `${shortId(t.run_id)}/${t.step_id}`}
                  </Link>
                </td>
                <td>{t.task_type}</td>
                <td>
                  <StatusBadge status={t.status} />
                  {t.reason ? <span className="small muted"> {t.reason.name}</span> : null}
                </td>
                <td>{t.stage}</td>
                <td>{t.round}</td>
                <td>
                  <Link className="mono" to={`/runs/${t.run_id}`} title={t.run_id}>
                    {shortId(t.run_id)}
                  </Link>
                </td>
                <td title={dateTime(t.created_at)}>{ago(Date.parse(t.created_at))}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {tasks.hasNextPage ? (
        <button type="button" style={{ marginTop: 10 }} onClick={() => void tasks.fetchNextPage()} disabled={tasks.isFetchingNextPage}>
          Load {PAGE} more
        </button>
      ) : null}
    </div>
  );
}
