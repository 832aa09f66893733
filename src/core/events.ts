import { createHash, createHmac } from 'node:crypto';

/** Every event type a run's log can hold. */
export const EventType = {
  RUN_CREATED: 'RUN_CREATED',
  RUN_STARTED: 'RUN_STARTED',
  RUN_COMPLETED: 'RUN_COMPLETED',
  RUN_FAILED: 'RUN_FAILED',
  RUN_CANCELLED: 'RUN_CANCELLED',
  RUN_RETRIED: 'RUN_RETRIED',
  /** A run that waited for a slot of its concurrency key got one (another run of the key finished): its first steps are ready. */
  RUN_ADMITTED: 'RUN_ADMITTED',
  STEP_STARTED: 'STEP_STARTED',
  STEP_COMPLETED: 'STEP_COMPLETED',
  STEP_FAILED: 'STEP_FAILED',
  STEP_RETRY_SCHEDULED: 'STEP_RETRY_SCHEDULED',
  STEP_SKIPPED: 'STEP_SKIPPED',
  STEP_CANCELLED: 'STEP_CANCELLED',
  STEP_RELEASED: 'STEP_RELEASED',
  STEP_WAITING: 'STEP_WAITING',
  APPROVAL_DECIDED: 'APPROVAL_DECIDED',
  HANDLER_LOG: 'HANDLER_LOG',
  HANDLER_STARTED_RUN: 'HANDLER_STARTED_RUN',
  /** An event of this run (run.completed, run.failed, approval.requested) started a run through an event trigger. */
  EVENT_STARTED_RUN: 'EVENT_STARTED_RUN',
  /** An event trigger matched an event of this run but could not start its run (the error says why). */
  EVENT_TRIGGER_FAILED: 'EVENT_TRIGGER_FAILED',
  /** An event trigger matched an event of this run, but its workflow already ran in the chain of event-triggered runs that led here. */
  EVENT_TRIGGER_SKIPPED: 'EVENT_TRIGGER_SKIPPED',
  /** A sleep or wait step's wait ended (an event or signal arrived, or its time came): it is ready to finish. */
  WAIT_RESOLVED: 'WAIT_RESOLVED',
  /** A signal was sent to this run (kept until a wait step takes it). */
  SIGNAL_RECEIVED: 'SIGNAL_RECEIVED',
  /** A run's budget passed its warning threshold on a limit (data: limit, used, allowed, fraction). */
  BUDGET_WARNING: 'BUDGET_WARNING',
  /** A call was not made: it would have crossed a limit of the run's budget (data: limit, used, allowed). */
  BUDGET_EXCEEDED: 'BUDGET_EXCEEDED',
  /** A circuit breaker changed state (data: breaker, from, to, reason); recorded in the run whose call caused it. */
  CIRCUIT_CHANGED: 'CIRCUIT_CHANGED',
  /** A guardrail fired: injection policy, a refused sensitive call, redaction, escalation (data: guardrail, rule, action, …). */
  GUARDRAIL_TRIGGERED: 'GUARDRAIL_TRIGGERED',
  // ---- consensus tasks (src/consensus/; the names are source 002's). data.task_id names the task. ----
  TASK_CREATED: 'TASK_CREATED',
  /** A stage was taken up by a worker: data.stage is `propose`, `verify`, `vote` or `finalize`. */
  TASK_CLAIMED: 'TASK_CLAIMED',
  CANDIDATE_PROPOSED: 'CANDIDATE_PROPOSED',
  EVIDENCE_ADDED: 'EVIDENCE_ADDED',
  EVIDENCE_AVAILABLE: 'EVIDENCE_AVAILABLE',
  VERIFIER_RESULT_SUBMITTED: 'VERIFIER_RESULT_SUBMITTED',
  VOTE_COMMIT: 'VOTE_COMMIT',
  VOTE_REVEAL: 'VOTE_REVEAL',
  /** A proposal, verifier result, commit or reveal was refused (data.reason_code, data.reason). */
  TASK_INPUT_REJECTED: 'TASK_INPUT_REJECTED',
  /** A stage stopped early: its budget bucket, `explore.topk`, or `explore.stop.no_new_evidence_rounds`. */
  TASK_STAGE_STOPPED: 'TASK_STAGE_STOPPED',
  DECISION_COMMITTED: 'DECISION_COMMITTED',
  DECISION_FINALIZED: 'DECISION_FINALIZED',
  /** Too few reveals before the reveal deadline: a new vote round (data.round). */
  TASK_RETRY_SCHEDULED: 'TASK_RETRY_SCHEDULED',
  TASK_EXPIRED: 'TASK_EXPIRED',
  /** The task failed without a decision (data.reason_code, data.reason). */
  TASK_FAILED: 'TASK_FAILED',
  /** A knowledge hit was found before proposing (data.hit_type EXACT | SIMILAR, data.decision_task_id). */
  KNOWLEDGE_HIT: 'KNOWLEDGE_HIT',
  /** A prior decision was not reused: it is on the task's `reuse_blacklist`. */
  REUSE_REJECT_RECORDED: 'REUSE_REJECT_RECORDED',
  // ---- branching runs (docs/branching.md) ----
  /** The first event after RUN_CREATED of a fork: data {parent_run_id, parent_head_hash, at_step, turn, copied_steps, replaced_outputs, parent_bundle_sha256}. */
  RUN_FORKED: 'RUN_FORKED',
  /** A fork took a step's checkpoint from its parent instead of running it: data {from_run_id, output_sha256, parent_event_hash, replaced}. */
  STEP_COPIED: 'STEP_COPIED',
  /** The first event after RUN_CREATED of a run imported from a verified bundle: data {bundle_sha256, source_run_id, certificate_sha256, ratchet_step (its fork depth where it was made)}. */
  RUN_IMPORTED: 'RUN_IMPORTED',
  /**
   * A sandboxed agent's connection through the net_cap proxy: data {destination, port, allowed, reason?, bytes_out, bytes_in,
   * method, address?, duration_ms, attempt}; past 1,000 in one attempt, one {summary: true, connections, refused, bytes_out, bytes_in, attempt}.
   */
  NET_CONNECTION: 'NET_CONNECTION',
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

/** One entry of a run's append-only log. `hash` covers every other field and the previous hash. */
export interface RunEvent {
  run_id: string;
  seq: number;
  type: EventType;
  step_id: string | null;
  data: Record<string, unknown>;
  /** Milliseconds since the epoch. */
  at: number;
  prev_hash: string;
  hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);

type HashedFields = { run_id: string; seq: number; type: string; step_id: string | null; at: number; prev_hash: string };

function hashedText(e: HashedFields, dataJson: string): string {
  return `${e.prev_hash}\n${e.run_id}\n${e.seq}\n${e.type}\n${e.step_id ?? ''}\n${e.at}\n${dataJson}`;
}

/**
 * The hash of an event given its fields: HMAC-SHA256 under the event-chain key (derived from the
 * master key), so that only a holder of the key can make a chain that verifies. Data is hashed as
 * the exact JSON text that is stored.
 */
export function hashEvent(key: Buffer, e: HashedFields, dataJson: string): string {
  return createHmac('sha256', key).update(hashedText(e, dataJson)).digest('hex');
}

/**
 * The hash runs got before chains were keyed: plain SHA-256 of the same text. Anyone can compute it,
 * so it only tells accidental corruption apart; verify uses it to name a chain in the old form.
 */
export function legacyHashEvent(e: HashedFields, dataJson: string): string {
  return createHash('sha256').update(hashedText(e, dataJson)).digest('hex');
}

/** A digest of a step's outputs, recorded in STEP_COMPLETED so verify can check the checkpoint too. */
export function digestJson(json: string): string {
  return createHash('sha256').update(json).digest('hex');
}

export interface ChainProblem {
  seq: number;
  problem: string;
}

export interface VerifyChainOptions {
  /**
   * Accept events hashed the old unkeyed way at the start of the chain (runs begun before chains were
   * keyed), followed by keyed ones. Such a prefix proves nothing against anyone who can write the store.
   */
  allowLegacy?: boolean;
}

/** What verifyChain found, beyond problems: how many events at the start are in the old unkeyed form. */
export interface ChainReport {
  problems: ChainProblem[];
  legacyEvents: number;
}

/**
 * Check a run's events: sequence numbers 1..n without gaps, each `prev_hash` equal to the hash of the
 * event before, each `hash` recomputed from the stored fields under the chain key. An event whose
 * hash is the old unkeyed one is a problem of its own ("unkeyed"), unless `allowLegacy` and it is
 * part of the unkeyed prefix of the chain.
 */
export function checkChain(key: Buffer, events: ReadonlyArray<RunEvent & { data_json: string }>, options: VerifyChainOptions = {}): ChainReport {
  const problems: ChainProblem[] = [];
  let prev = GENESIS_HASH;
  let legacyEvents = 0;
  let keyedSeen = false;
  events.forEach((e, i) => {
    if (e.seq !== i + 1) problems.push({ seq: e.seq, problem: `expected sequence ${i + 1}, found ${e.seq}` });
    if (e.prev_hash !== prev) problems.push({ seq: e.seq, problem: 'prev_hash does not match the previous event' });
    if (hashEvent(key, e, e.data_json) === e.hash) keyedSeen = true;
    else if (legacyHashEvent(e, e.data_json) === e.hash) {
      if (options.allowLegacy && !keyedSeen) legacyEvents++;
      else problems.push({ seq: e.seq, problem: keyedSeen ? 'hash is the unkeyed (plain SHA-256) form after keyed events: the event was rewritten without the key' : 'hash is the unkeyed (plain SHA-256) form: a legacy chain, or one rewritten without the key' });
    } else problems.push({ seq: e.seq, problem: 'hash does not match the event contents' });
    prev = e.hash;
  });
  return { problems, legacyEvents };
}

/** The problems `checkChain` finds (empty when the chain verifies under the key). */
export function verifyChain(key: Buffer, events: ReadonlyArray<RunEvent & { data_json: string }>, options: VerifyChainOptions = {}): ChainProblem[] {
  return checkChain(key, events, options).problems;
}
