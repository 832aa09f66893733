/**
 * The archive `swarm gc --archive` writes: one JSON line per run, with everything the store held of
 * it: the run row, its steps, its hash-chained events (so `verifyChain` can still check them), its
 * logs, its LLM sessions (row, checkpoint envelope, transcript, tool ledger), approvals and signals.
 *
 * @example
 *   for (const line of readFileSync('runs.jsonl', 'utf8').split('\n').filter(Boolean)) {
 *     const a = JSON.parse(line) as ArchivedRun;
 *     console.log(a.run.id, a.run.status, a.events.length);
 *   }
 */
import type { RunEvent } from '../core/events.js';
import type { Store } from '../store/store.js';
import type { AgentMessageRecord, AgentSessionRecord, ApprovalRecord, RunRecord, RunSignalRecord, StepLog, StepRecord, ToolCallRecord } from '../store/types.js';

/** The version of the line format: a reader checks it. */
export const ARCHIVE_FORMAT = 1;

/** One line of the archive. */
export interface ArchivedRun {
  format: typeof ARCHIVE_FORMAT;
  archived_at: string;
  run: RunRecord;
  steps: StepRecord[];
  events: Array<RunEvent & { data_json: string }>;
  logs: StepLog[];
  sessions: Array<{ session: AgentSessionRecord & { envelope: string | null }; messages: AgentMessageRecord[]; tool_calls: ToolCallRecord[] }>;
  approvals: ApprovalRecord[];
  signals: RunSignalRecord[];
}

const EVENTS_PER_READ = 10_000;
const SESSIONS_PER_RUN = 100_000;

/** A run as one archive line (with its newline); an empty string when the run is gone. */
export async function archiveLine(store: Store, runId: string): Promise<string> {
  const run = await store.getRun(runId);
  if (!run) return '';
  const events: ArchivedRun['events'] = [];
  for (let after = 0; ; ) {
    const page = await store.getEvents(runId, after, EVENTS_PER_READ);
    events.push(...page);
    if (page.length < EVENTS_PER_READ) break;
    after = page[page.length - 1]?.seq ?? after;
  }
  const sessions: ArchivedRun['sessions'] = [];
  for (const s of await store.listAgentSessions({ run_id: runId, limit: SESSIONS_PER_RUN })) {
    const full = await store.getAgentSession(s.id);
    sessions.push({ session: { ...s, envelope: full?.envelope ?? null }, messages: await store.getAgentMessages(s.id), tool_calls: await store.listToolCalls(s.id) });
  }
  const line: ArchivedRun = {
    format: ARCHIVE_FORMAT,
    archived_at: new Date().toISOString(),
    run,
    steps: await store.getSteps(runId),
    events,
    logs: await store.getLogs(runId),
    sessions,
    approvals: await store.listApprovals({ run_id: runId }),
    signals: await store.listRunSignals(runId),
  };
  return `${JSON.stringify(line)}\n`;
}
