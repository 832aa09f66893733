/**
 * Handler-based processing of received messages with automatic ACKs: RECEIVED on receipt, READ
 * before the handler runs, then FULFILLED when it returns, FAILED (INTERNAL_ERROR, the error's
 * message as note) when it throws, REJECTED when the envelope is invalid (VALIDATION_ERROR and what
 * is wrong) or nothing handles its type (UNSUPPORTED_MESSAGE_TYPE). A handler rejects a message on
 * purpose by throwing `Sw4rmProtocolError` (its code goes in the ACK).
 *
 * Redelivery is expected (at-least-once): a message_id already finished, or an idempotency token
 * already FULFILLED, is acknowledged again with the stage it reached and not handled twice.
 *
 * @example
 *   const processor = new MessageProcessor(acks);
 *   processor.registerHandler('DATA', async (env) => store(JSON.parse(env.payload.toString())));
 *   processor.setDefaultHandler(() => 'ignored');
 *   for await (const env of router.streamIncoming('agent-1')) await processor.processMessage(env);
 */
import { messageTypeName, TERMINAL_ACK_STAGES, type AckStage, type ErrorCode, type MessageType } from './constants.js';
import type { AckLifecycleManager } from './ack-lifecycle.js';
import type { AckOutcome } from './activity-buffer.js';
import { validateEnvelope, type Envelope, type ValidateEnvelopeOptions } from './envelope.js';
import { formatProblems, Sw4rmProtocolError, type Sw4rmProblem } from './errors.js';

export type MessageHandler = (envelope: Envelope) => unknown;

/** What `processMessage` did with one message. */
export type ProcessOutcome =
  | { status: 'fulfilled'; result: unknown }
  | { status: 'failed'; error: Error }
  | { status: 'rejected'; code: ErrorCode; reason: string; problems?: Sw4rmProblem[] }
  /** Seen before (a redelivery or a retry): acknowledged again with the stage it reached. */
  | { status: 'duplicate'; stage: AckStage }
  /** An ACK for one of this agent's own messages, applied to its buffer. */
  | { status: 'ack'; outcome: AckOutcome };

export interface MessageProcessorOptions {
  /** How incoming envelopes are checked (default: 1 MiB payloads, HLC within 60 s); false: not at all. */
  validate?: ValidateEnvelopeOptions | false;
  /** Told when sending an ACK fails (the router will redeliver; the outcome stands). */
  onAckError?: (error: Error, envelope: Envelope) => void;
}

const NOTE_MAX_CHARS = 1000;

export class MessageProcessor {
  private readonly handlers = new Map<MessageType, MessageHandler>();
  private defaultHandler: MessageHandler | undefined;
  private readonly acks: AckLifecycleManager;
  private readonly validation: ValidateEnvelopeOptions | false;
  private readonly onAckError: ((error: Error, envelope: Envelope) => void) | undefined;

  constructor(acks: AckLifecycleManager, options: MessageProcessorOptions = {}) {
    this.acks = acks;
    this.validation = options.validate ?? { maxPayloadBytes: 1024 * 1024 };
    this.onAckError = options.onAckError;
  }

  /** Handle messages of one type (a name or proto number); replaces an earlier handler. */
  registerHandler(type: MessageType | number, handler: MessageHandler): void {
    const name = messageTypeName(type);
    if (!name || name === 'MESSAGE_TYPE_UNSPECIFIED') throw new TypeError(`registerHandler: ${JSON.stringify(type)} is not an SW4RM message type`);
    this.handlers.set(name, handler);
  }

  /** Handle every type without a handler of its own. */
  setDefaultHandler(handler: MessageHandler | undefined): void {
    this.defaultHandler = handler;
  }

  /** Process one received message through its handler, with the ACKs (see the module comment). */
  async processMessage(envelope: Envelope): Promise<ProcessOutcome> {
    if (this.validation !== false) {
      const problems = validateEnvelope(envelope, this.validation);
      if (problems.length > 0) {
        const code = problems[0]?.code ?? 'VALIDATION_ERROR';
        const reason = formatProblems(problems);
        const id = (envelope as Partial<Envelope> | null)?.message_id;
        if (typeof id === 'string' && id !== '') await this.ack(envelope, 'REJECTED', code, reason);
        return { status: 'rejected', code, reason, problems };
      }
    }
    const type = messageTypeName(envelope.message_type);
    if (type === 'ACKNOWLEDGEMENT') {
      // ACKs are not acknowledged: an ACK of an ACK would never end.
      try {
        return { status: 'ack', outcome: this.acks.handleAck(envelope) };
      } catch (e) {
        const err = e instanceof Sw4rmProtocolError ? e : new Sw4rmProtocolError([{ code: 'VALIDATION_ERROR', field: 'payload', message: (e as Error).message }], 'ACK');
        return { status: 'rejected', code: err.protocolCode, reason: err.message, problems: [...err.problems] };
      }
    }

    const seen = this.acks.buffer.get(envelope.message_id) ?? this.acks.buffer.findByIdempotencyToken(envelope.idempotency_token);
    if (seen && seen.direction === 'in' && TERMINAL_ACK_STAGES.has(seen.ack_stage)) {
      await this.ack(envelope, seen.ack_stage, seen.error_code, seen.ack_note);
      return { status: 'duplicate', stage: seen.ack_stage };
    }

    try {
      await this.acks.received(envelope);
    } catch (e) {
      this.onAckError?.(e as Error, envelope);
    }
    const handler = (type ? this.handlers.get(type) : undefined) ?? this.defaultHandler;
    if (!handler) {
      const reason = `no handler for ${String(envelope.message_type)} messages`;
      await this.ack(envelope, 'REJECTED', 'UNSUPPORTED_MESSAGE_TYPE', reason);
      return { status: 'rejected', code: 'UNSUPPORTED_MESSAGE_TYPE', reason };
    }
    await this.ack(envelope, 'READ');
    try {
      const result: unknown = await handler(envelope);
      await this.ack(envelope, 'FULFILLED');
      return { status: 'fulfilled', result };
    } catch (e) {
      if (e instanceof Sw4rmProtocolError) {
        await this.ack(envelope, 'REJECTED', e.protocolCode, e.message);
        return { status: 'rejected', code: e.protocolCode, reason: e.message, problems: [...e.problems] };
      }
      const error = e instanceof Error ? e : new Error(String(e));
      await this.ack(envelope, 'FAILED', 'INTERNAL_ERROR', error.message);
      return { status: 'failed', error };
    }
  }

  private async ack(envelope: Envelope, stage: AckStage, code?: ErrorCode, note?: string): Promise<void> {
    if (!this.acks.autoAck) return;
    try {
      await this.acks.sendAck(envelope.message_id, stage, {
        ...(code !== undefined ? { errorCode: code } : {}),
        ...(note ? { note: note.slice(0, NOTE_MAX_CHARS) } : {}),
        ...(typeof envelope.correlation_id === 'string' && envelope.correlation_id ? { correlationId: envelope.correlation_id } : {}),
      });
    } catch (e) {
      this.onAckError?.(e instanceof Error ? e : new Error(String(e)), envelope);
    }
  }
}
