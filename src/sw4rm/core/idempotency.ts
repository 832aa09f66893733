/**
 * Idempotency tokens, profile `sw4rm-idempotency-bytes-v1` (the conformance vectors in
 * test/fixtures/sw4rm/idempotency_vectors.json):
 *
 *     token = producer_id ":" operation ":" hex(sha256(producer_id LF operation LF canonical_bytes))[0..16]
 *
 * The caller owns the canonical bytes (their ordering included): the same logical operation must
 * produce the same bytes on every retry. LF in `producer_id` or `operation` is refused, because it
 * would make two different inputs hash alike.
 *
 * @example
 *   idempotencyToken({ producer_id: 'agent', operation: 'work', canonical_bytes: Buffer.from('{"a":1,"b":2}') });
 *   // 'agent:work:f65efee16e55e693'
 */
import { canonicalJson } from '../../core/canonical-json.js';
import { createHash } from 'node:crypto';
import { UserError } from '../../core/errors.js';

export interface IdempotencyInput {
  producer_id: string;
  /** What is being done, e.g. 'router:send', 'tool:call'. */
  operation: string;
  /** A deterministic serialisation of the operation's parameters. */
  canonical_bytes: Uint8Array | string;
}

/** Hex digits of the hash kept in a token. */
export const IDEMPOTENCY_HASH_HEX_CHARS = 16;

/**
 * The token for one logical operation. Throws UserError SW4RM_IDEMPOTENCY_INPUT when `producer_id`
 * or `operation` contains a line feed.
 */
export function idempotencyToken(input: IdempotencyInput): string {
  for (const field of ['producer_id', 'operation'] as const) {
    if (input[field].includes('\n')) {
      throw new UserError('SW4RM_IDEMPOTENCY_INPUT', `idempotency token: ${field} ${JSON.stringify(input[field])} contains a line feed, the field separator of sw4rm-idempotency-bytes-v1`, { field });
    }
  }
  const h = createHash('sha256');
  h.update(input.producer_id, 'utf8');
  h.update('\n');
  h.update(input.operation, 'utf8');
  h.update('\n');
  h.update(typeof input.canonical_bytes === 'string' ? Buffer.from(input.canonical_bytes, 'utf8') : input.canonical_bytes);
  return `${input.producer_id}:${input.operation}:${h.digest('hex').slice(0, IDEMPOTENCY_HASH_HEX_CHARS)}`;
}

/**
 * Canonical JSON bytes for a plain value: object keys sorted, no whitespace. A convenience for
 * callers whose parameters are JSON; any other deterministic encoding works as well.
 *
 * @example
 *   idempotencyToken({ producer_id: 'a', operation: 'send', canonical_bytes: canonicalJsonBytes({ b: 2, a: 1 }) });
 */
export function canonicalJsonBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}
