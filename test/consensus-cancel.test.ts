/**
 * A consensus task whose run is cancelled while a proposer answers: the task step's own fence finds
 * the run cancelled before it records the answer. The step stops as cancelled (a line in the worker's
 * log, not a failure or a lost lease), and nothing of the answer is written. SQLite and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { selfCancellingTask, useCleanups } from './helpers/consensus-project.js';
import { until } from './helpers/project.js';

const cleanups = useCleanups();

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`a consensus task's run cancelled while it runs (${backend})`, () => {
    it('the proposer answers after the cancel: its answer is not recorded, and the step stops as cancelled', async () => {
      // The proposer cancels its own run, then answers: the driver's next write finds the run cancelled.
      const { swarm, taskId, runId: run_id } = await selfCancellingTask(backend, cleanups);
      const lines: Array<{ line: string; fields: unknown }> = [];
      const worker = swarm.worker({ runIds: [run_id], pollMs: 50, log: (line, fields) => lines.push({ line, fields }) });
      cleanups.push(() => worker.stop(2000));
      await until(async () => (lines.some((l) => l.line.includes('cancelled: its run was cancelled')) ? true : undefined), 15_000, 'the step stopped as cancelled');
      expect((await swarm.getRun(run_id)).run.status).toBe('cancelled');
      const stopped = lines.filter((l) => l.line.includes('cancelled: its run was cancelled'));
      expect(stopped.map((l) => l.fields)).toEqual([expect.objectContaining({ run_id, attempt: 1, status: 'cancelled' })]);
      // Not a refused result (a lost lease), nor a failure.
      expect(lines.filter((l) => l.line.includes('result refused'))).toEqual([]);
      const events = await swarm.events(run_id);
      expect(events.map((e) => e.type)).not.toContain('CANDIDATE_PROPOSED');
      expect(events.map((e) => e.type)).not.toContain('STEP_FAILED');
      expect((await swarm.getTask(taskId))?.candidates ?? []).toHaveLength(0);
    });
  });
}
