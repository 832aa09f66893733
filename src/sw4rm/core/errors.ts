/**
 * What is wrong with a protocol message, in the protocol's own terms: an SW4RM error code
 * (VALIDATION_ERROR, OVERSIZE_PAYLOAD, TTL_EXPIRED …) and the field it concerns. Services answer with
 * the code; the SDK throws `Sw4rmProtocolError`, a UserError whose string code is `SW4RM_<code>`.
 *
 * @example
 *   const problems = validateEnvelope(env, { maxPayloadBytes: 1 << 20 });
 *   if (problems.length > 0) throw new Sw4rmProtocolError(problems);
 */
import { UserError } from '../../core/errors.js';
import type { ErrorCode } from './constants.js';

/** One thing wrong with a message. */
export interface Sw4rmProblem {
  /** The protocol's error code for it. */
  code: ErrorCode;
  /** The envelope field (or ACK payload field) it concerns. */
  field: string;
  /** What is wrong and how to fix it, in a sentence. */
  message: string;
}

/** `field: message` lines, the form problems are shown in. */
export function formatProblems(problems: readonly Sw4rmProblem[]): string {
  return problems.map((p) => `${p.field}: ${p.message} (${p.code})`).join('; ');
}

/** A message broke the protocol. `code` is `SW4RM_<protocol code>` of the first problem. */
export class Sw4rmProtocolError extends UserError {
  readonly problems: readonly Sw4rmProblem[];
  /** The protocol error code of the first problem (what an ACK or a service answer carries). */
  readonly protocolCode: ErrorCode;

  constructor(problems: readonly Sw4rmProblem[], where = 'envelope') {
    const first = problems[0] ?? { code: 'VALIDATION_ERROR' as const, field: where, message: 'invalid' };
    super(`SW4RM_${first.code}`, `invalid SW4RM ${where}: ${formatProblems(problems.length > 0 ? problems : [first])}`, {
      field: first.field,
      protocolCode: first.code,
    });
    this.problems = problems.length > 0 ? problems : [first];
    this.protocolCode = first.code;
  }
}
