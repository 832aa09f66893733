/**
 * The ACK lifecycle of one agent, over its ActivityBuffer and a router: sends are recorded before
 * they go out and tracked until a terminal ACK comes back; received messages are acknowledged
 * (RECEIVED, READ, then FULFILLED / FAILED / REJECTED); `reconcileAcks()` finds what is overdue and
 * `resend()` sends it again under the same idempotency token.
 *
 * The router is anything with `sendMessage(envelope) → {accepted, reason}` (`RouterLike`): the SDK's
 * RouterClient, or a test double.
 *
 * @example
 *   const acks = new AckLifecycleManager({ router, buffer, agentId: 'agent-1' });
 *   const { accepted } = await acks.sendMessageWithAck(buildEnvelope({ producer_id: 'agent-1', message_type: 'DATA', payload: '{}' }));
 *   await acks.sendAck(incoming.message_id, 'FULFILLED', { note: 'done' });
 */
import { ackStageName, errorCodeName, type AckStage, type ErrorCode } from './constants.js';
import { buildAckEnvelope, parseAck, type Ack } from './acks.js';
import type { ActivityBuffer, ActivityRecord, AckOutcome } from './activity-buffer.js';
import { buildEnvelope, type Envelope } from './envelope.js';
import type { HybridLogicalClock } from './hlc.js';

/** What the ACK lifecycle needs of a router client. */
export interface RouterLike {
  sendMessage(envelope: Envelope): Promise<{ accepted: boolean; reason?: string }> | { accepted: boolean; reason?: string };
}

export interface AckLifecycleOptions {
  router: RouterLike;
  buffer: ActivityBuffer;
  /** This agent's id: the producer of its ACKs. */
  agentId: string;
  /** ACK received messages automatically (RECEIVED on receipt; default true). */
  autoAck?: boolean;
  /** The agent's hybrid logical clock, for the ACKs' hlc_timestamp. */
  clock?: HybridLogicalClock;
  /**
   * Write the buffer before each send (default false), so a send cut off by a crash before the
   * router answered is found by `reconcileAcks` after the restart. Costs one write per send.
   */
  flushBeforeSend?: boolean;
}

/** The answer to a tracked send. */
export interface SendResult {
  accepted: boolean;
  reason: string;
  record: ActivityRecord;
}

export interface SendAckOptions {
  errorCode?: ErrorCode | number;
  note?: string;
  /** Default: the acknowledged message's correlation_id when it is in the buffer. */
  correlationId?: string;
}

export class AckLifecycleManager {
  readonly agentId: string;
  readonly buffer: ActivityBuffer;
  readonly autoAck: boolean;
  private readonly router: RouterLike;
  private readonly clock: HybridLogicalClock | undefined;
  private readonly flushBeforeSend: boolean;

  constructor(options: AckLifecycleOptions) {
    this.router = options.router;
    this.buffer = options.buffer;
    this.agentId = options.agentId;
    this.autoAck = options.autoAck ?? true;
    this.clock = options.clock;
    this.flushBeforeSend = options.flushBeforeSend ?? false;
  }

  /**
   * Record the envelope, then send it. A refusal by the router (`accepted: false`) is final for this
   * message_id: its record is marked REJECTED with the router's reason (an SW4RM error code when the
   * reason starts with one). A send that throws (the router unreachable) leaves the record
   * unacknowledged, so `reconcileAcks` finds it, and rethrows.
   */
  async sendMessageWithAck(envelope: Envelope): Promise<SendResult> {
    const record = this.buffer.recordOutgoing(envelope);
    if (this.flushBeforeSend) await this.buffer.flush();
    const answer = await this.router.sendMessage(envelope);
    const reason = answer.reason ?? '';
    if (!answer.accepted) {
      const code = errorCodeName(/^[A-Z_]+/.exec(reason)?.[0]) ?? 'ERROR_CODE_UNSPECIFIED';
      this.buffer.ack({ ack_for_message_id: envelope.message_id, ack_stage: 'REJECTED', error_code: code, note: reason || 'refused by the router' });
    }
    return { accepted: answer.accepted, reason, record };
  }

  /**
   * Take in an ACK that arrived for one of this agent's messages (an ACKNOWLEDGEMENT envelope, or an
   * Ack already decoded). An ACK for a message the buffer does not know is reported (`unknown`).
   */
  handleAck(ack: Envelope | Ack): AckOutcome {
    const a = 'ack_for_message_id' in ack ? ack : parseAck(ack);
    return this.buffer.ack(a);
  }

  /** Record a received message and, with auto-ACK, acknowledge it as RECEIVED. */
  async received(envelope: Envelope): Promise<ActivityRecord> {
    const record = this.buffer.recordIncoming(envelope);
    if (this.autoAck) await this.sendAck(envelope.message_id, 'RECEIVED');
    return record;
  }

  /**
   * Send an ACK for `messageId` at `stage` through the router, and note the stage on the received
   * message's record. Throws a TypeError for an unknown stage or error code.
   */
  async sendAck(messageId: string, stage: AckStage | number, options: SendAckOptions = {}): Promise<{ accepted: boolean; reason: string }> {
    const stageName = ackStageName(stage);
    if (!stageName || stageName === 'ACK_STAGE_UNSPECIFIED') throw new TypeError(`sendAck: ${JSON.stringify(stage)} is not an ACK stage`);
    const rec = this.buffer.get(messageId);
    const correlationId = options.correlationId ?? rec?.envelope.correlation_id;
    const env = buildAckEnvelope({
      producer_id: this.agentId,
      ack_for_message_id: messageId,
      ack_stage: stageName,
      ...(options.errorCode !== undefined ? { error_code: options.errorCode } : {}),
      ...(options.note !== undefined ? { note: options.note } : {}),
      ...(correlationId ? { correlation_id: correlationId } : {}),
      ...(this.clock ? { clock: this.clock } : {}),
    });
    const answer = await this.router.sendMessage(env);
    if (rec && rec.direction === 'in') {
      this.buffer.ack({ ack_for_message_id: messageId, ack_stage: stageName, error_code: errorCodeName(options.errorCode ?? 0) ?? 'ERROR_CODE_UNSPECIFIED', note: options.note ?? '' });
    }
    return { accepted: answer.accepted, reason: answer.reason ?? '' };
  }

  /** This agent's sends with no terminal ACK after `olderThanMs` (default 30 s): candidates to resend. */
  reconcileAcks(options: { olderThanMs?: number; now?: number } = {}): ActivityRecord[] {
    return this.buffer.reconcile({ olderThanMs: options.olderThanMs ?? 30_000, ...(options.now !== undefined ? { now: options.now } : {}) });
  }

  /**
   * Send an overdue message again: a new message_id, `retry_count` + 1, the same idempotency token
   * (so the router and the receiver drop it if the first one did arrive). The old record is closed
   * as TIMED_OUT with ACK_TIMEOUT and a note naming the new message_id.
   */
  async resend(record: ActivityRecord): Promise<SendResult> {
    const old = record.envelope;
    const again = buildEnvelope({
      producer_id: old.producer_id,
      message_type: old.message_type,
      content_type: old.content_type,
      payload: old.payload,
      correlation_id: old.correlation_id,
      sequence_number: old.sequence_number,
      retry_count: old.retry_count + 1,
      ...(old.idempotency_token ? { idempotency_token: old.idempotency_token } : {}),
      ...(old.repo_id ? { repo_id: old.repo_id } : {}),
      ...(old.worktree_id ? { worktree_id: old.worktree_id } : {}),
      ...(old.ttl_ms ? { ttl_ms: old.ttl_ms } : {}),
      ...(this.clock ? { clock: this.clock } : {}),
    });
    this.buffer.ack({ ack_for_message_id: old.message_id, ack_stage: 'TIMED_OUT', error_code: 'ACK_TIMEOUT', note: `resent as ${again.message_id}` });
    return this.sendMessageWithAck(again);
  }
}
