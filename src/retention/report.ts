/**
 * A gc report as lines for people (`swarm gc`, the retention policy's log).
 *
 * @example
 *   for (const line of describeGc(report, { archive: 'runs.jsonl' })) console.log(line);
 */
import type { DatabaseSize } from '../store/retention-types.js';
import type { GcReport } from './gc.js';
import { humanBytes } from '../core/limits.js';

export function describeSize(s: DatabaseSize): string {
  const parts = [humanBytes(s.bytes)];
  if (s.free_bytes !== null) parts.push(`${humanBytes(s.free_bytes)} free for reuse`);
  if (s.file_bytes !== null) parts.push(`file ${humanBytes(s.file_bytes)}`);
  return parts.length === 1 ? parts[0] as string : `${parts[0]} (${parts.slice(1).join(', ')})`;
}

const TABLE_NAMES: Record<string, string> = {
  step_executions: 'steps',
  events: 'events',
  step_logs: 'logs',
  agent_sessions: 'LLM sessions',
  agent_messages: 'transcript messages',
  agent_tool_calls: 'tool calls',
  approvals: 'approvals',
  step_waits: 'waits',
  run_signals: 'signals',
  run_concurrency: 'concurrency rows',
};

export function describeGc(r: GcReport, o: { archive?: string | undefined }): string[] {
  const statuses = Object.keys(r.cutoffs).join(', ');
  const lines: string[] = [];
  if (r.dry_run) {
    lines.push(`dry run: ${r.runs} finished run(s) (${r.trees} top-level, ${r.runs - r.trees} sub-workflow) would be deleted (${statuses}); nothing was deleted`);
  } else {
    lines.push(
      r.runs === 0
        ? `deleted no runs${r.skipped || r.interrupted ? '' : `: none finished (${statuses}) before the cut-off`}`
        : `deleted ${r.runs} finished run(s) (${r.trees} top-level, ${r.runs - r.trees} sub-workflow) (${statuses}) in ${r.batches} batch(es) of at most ${r.largest_batch} run(s)`,
    );
    const rows = Object.entries(TABLE_NAMES)
      .map(([t, name]) => [name, r.rows[t as keyof GcReport['rows']]] as const)
      .filter(([, n]) => n > 0)
      .map(([name, n]) => `${n} ${name}`);
    if (rows.length) lines.push(`with ${rows.join(', ')}`);
    if (o.archive) lines.push(`archived ${r.archived} run(s) to ${o.archive}`);
    lines.push(`checkpoints: ${r.checkpoints.compacted} of ${r.checkpoints.examined} finished session(s) compacted (${humanBytes(r.checkpoints.bytes_saved)} saved)`);
  }
  if (r.skipped) lines.push(`kept ${r.skipped} top-level run(s) past the cut-off: a sub-workflow run of theirs is not finished`);
  if (r.interrupted) lines.push('interrupted: the rest is left for the next gc');
  lines.push(`database size: ${describeSize(r.size_before)} before, ${describeSize(r.size_after)} after`);
  return lines;
}
