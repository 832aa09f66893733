/**
 * Run lineage (migration 28): what a fork writes inside its creating transaction (`LedgerTx.fork()`)
 * and what the lineage query returns. A fork is a run whose `parent_run_id` names the run it was
 * forked from and whose `fork_step_id` is set; sub-workflow and handler-started runs also have a
 * `parent_run_id`, but never a `fork_step_id`.
 *
 * @example
 *   await tx.fork().setLineage(newRunId, 'summarize', null);
 *   const nodes = await store.runLineage(runId); // ancestors, the run, its forks (and theirs)
 */
import type { AgentMessageRecord, AgentSessionRecord, ToolCallRecord } from './types.js';

/** The copy of an LLM step's journal up to a turn, from the parent's session to the fork's. */
export interface JournalCopy {
  from_session: string;
  to_session: string;
  run_id: string;
  step_id: string;
  /** The agent the session started with, and the one whose turn it is at the fork point. */
  agent: string;
  current_agent: string;
  /** Model calls made before the fork point (turn n - 1). */
  turns: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  /** The checkpoint envelope at the fork point (JSON), and its format version. */
  envelope: string;
  envelope_version: number;
  /** Transcript rows with seq below this are copied. */
  messages_before: number;
  /** Tool ledger rows of turns below this (the fork turn) are copied. */
  turns_before: number;
}

/**
 * An LLM session written whole, as another store recorded it (an imported run's transcript): the
 * session's row with its checkpoint envelope, its transcript and its tool ledger.
 */
export interface JournalWrite {
  session: Omit<AgentSessionRecord, 'trace_id'>;
  /** The checkpoint envelope (JSON) and its format version. */
  envelope: string;
  envelope_version: number;
  messages: readonly AgentMessageRecord[];
  tool_calls: readonly ToolCallRecord[];
}

/** The fork's writes inside the transaction that creates it. */
export interface ForkTx {
  /** Record the fork point on the new run's row (its `parent_run_id` was written with the row). */
  setLineage(runId: string, forkStepId: string, forkTurn: number | null): Promise<void>;
  /** Create the fork's session for an LLM step: the envelope at the fork point, the transcript and tool ledger before it. */
  copyJournal(copy: JournalCopy): Promise<void>;
  /** Write an LLM session whole (an import: the bundle's transcript becomes this store's session). */
  writeJournal(journal: JournalWrite): Promise<void>;
}

/** One run of a lineage tree. */
export interface LineageNode {
  run_id: string;
  /** The run it was forked from (null: the tree's root, or a run that is no fork). */
  parent_run_id: string | null;
  fork_step_id: string | null;
  fork_turn: number | null;
  workflow_name: string;
  workflow_version: string;
  status: string;
  created_at: number;
  /** Forks between it and the tree's root (0: the root). */
  depth: number;
}

/** A lineage query's row as a node (both stores return the same columns). */
export function toLineageNode(r: Record<string, unknown>): LineageNode {
  return {
    run_id: r.run_id as string,
    parent_run_id: (r.parent_run_id as string | null) ?? null,
    fork_step_id: (r.fork_step_id as string | null) ?? null,
    fork_turn: r.fork_turn === null || r.fork_turn === undefined ? null : Number(r.fork_turn),
    workflow_name: r.workflow_name as string,
    workflow_version: r.workflow_version as string,
    status: r.status as string,
    created_at: Number(r.created_at),
    depth: Number(r.depth),
  };
}
