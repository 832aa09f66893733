/**
 * `GET /api/v1/tasks` pages in the store: 1,200 task rows (inserted directly through the store, in
 * one transaction: no run executes) are walked page by page with the cursor, newest first with
 * ties on created_at broken by task id, each exactly once; the task_type and status filters page
 * the same way; a page past the last is empty. SQLite and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../src/server/app.js';
import type { ConsensusTaskRow } from '../src/store/consensus-types.js';
import { BACKENDS, consensusProject, useCleanups } from './helpers/consensus-project.js';

const cleanups = useCleanups();
const N = 1200;
const T0 = 1_700_000_000_000;

function row(i: number): ConsensusTaskRow {
  // Two tasks per millisecond (a tie the cursor must break by task id), types a/b/c, every tenth failed.
  const at = T0 + Math.floor(i / 2);
  return {
    task_id: `run-${String(i % 7).padStart(2, '0')}/task-${String(i).padStart(5, '0')}`,
    run_id: `run-${i % 7}`,
    step_id: `task-${i}`,
    task_type: ['a', 'b', 'c'][i % 3] as string,
    contract: { task_type: 'x', inputs: {}, proposers: [{ agent: 'p' }], verification: { policy: 'vp.schema_only.v1' }, voting: { voters: [{ id: 'v1' }] } },
    members: [],
    status: i % 10 === 0 ? 'failed' : 'finalized',
    stage: 'finalize',
    round: 1,
    explore_round: 1,
    round_started_at: null,
    reason_code: null,
    reason: null,
    created_at: at,
    expires_at: at + 60_000,
    updated_at: at,
  };
}

const order = (a: ConsensusTaskRow, b: ConsensusTaskRow): number => b.created_at - a.created_at || (a.task_id < b.task_id ? -1 : a.task_id > b.task_id ? 1 : 0);

for (const backend of BACKENDS) {
  describe(`tasks API paging in the store (${backend})`, () => {
    it('walks 1,200 tasks page by page, filtered or not, each once and in order', async () => {
      const { swarm } = await consensusProject(backend, cleanups, { worker: false });
      const rows = Array.from({ length: N }, (_, i) => row(i));
      await swarm.store.transaction(async (tx) => {
        const c = tx.consensus();
        for (const r of rows) await c.insertTask(r);
      });
      const app = createApp(swarm, { version: 'test' });

      const walk = async (query: string, limit: number): Promise<{ ids: string[]; pages: number }> => {
        const ids: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const res = await app.request(`/api/v1/tasks?limit=${limit}${query}${cursor ? `&cursor=${cursor}` : ''}`);
          expect(res.status).toBe(200);
          const body = (await res.json()) as { tasks: Array<{ task_id: string }>; next_cursor: string | null };
          expect(body.tasks.length).toBeLessThanOrEqual(limit);
          ids.push(...body.tasks.map((t) => t.task_id));
          cursor = body.next_cursor;
          pages++;
        } while (cursor);
        return { ids, pages };
      };

      const all = await walk('', 500);
      expect(all.pages).toBe(3);
      expect(all.ids).toEqual([...rows].sort(order).map((r) => r.task_id));

      const typeB = await walk('&task_type=b', 150);
      expect(typeB.ids).toEqual(rows.filter((r) => r.task_type === 'b').sort(order).map((r) => r.task_id));
      expect(typeB.pages).toBe(3); // 400 tasks of type b: 150 + 150 + 100

      const failedC = await walk('&task_type=c&status=failed', 7);
      expect(failedC.ids).toEqual(rows.filter((r) => r.task_type === 'c' && r.status === 'failed').sort(order).map((r) => r.task_id));
      expect(failedC.ids).toHaveLength(40);

      // A page that ends exactly at the last task says there is no next one.
      const exact = await walk('&task_type=a', 400);
      expect(exact.pages).toBe(1);
      expect(exact.ids).toHaveLength(400);

      // The store's own query: the cursor is the last task of the previous page.
      const sorted = [...rows].sort(order);
      const last = sorted[999] as ConsensusTaskRow;
      const tail = await swarm.listTasks({ after: { created_at: last.created_at, task_id: last.task_id }, limit: 1000 });
      expect(tail.map((t) => t.task_id)).toEqual(sorted.slice(1000).map((r) => r.task_id));
    }, 60_000);
  });
}
