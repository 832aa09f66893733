/**
 * Payload caps of consensus tasks (source 002's constants). An event's data is at most
 * MAX_EVENT_PAYLOAD_BYTES of JSON; a structured summary (a verifier's reason, a rejection message, a
 * stage stop's reason) is at most MAX_STRUCTURED_SUMMARY_BYTES of UTF-8. A candidate output above the
 * event cap stays in the candidates table and its event carries only `output_ref` (hash and size).
 * Pure.
 *
 * @example
 *   payloadBytes({ a: 1 })                        // 7
 *   fitsEventPayload({ output: 'x'.repeat(70000) }) // false
 *   truncateSummary('é'.repeat(3000)).length      // ≤ 4096 bytes of UTF-8, ending in '…'
 */
import { canonicalJson } from '../../core/canonical-json.js';

/** The largest event data, in bytes of JSON (64 KiB). */
export const MAX_EVENT_PAYLOAD_BYTES = 65536;
/** The largest structured summary (reason, message), in bytes of UTF-8 (4 KiB). */
export const MAX_STRUCTURED_SUMMARY_BYTES = 4096;

/** The size in bytes of a value's canonical JSON (what a candidate hash covers). */
export function payloadBytes(value: unknown): number {
  return Buffer.byteLength(canonicalJson(value), 'utf8');
}

/** Whether a value's JSON fits the event cap (`limit` defaults to MAX_EVENT_PAYLOAD_BYTES). */
export function fitsEventPayload(value: unknown, limit: number = MAX_EVENT_PAYLOAD_BYTES): boolean {
  return payloadBytes(value) <= limit;
}

/**
 * A summary cut to at most `limit` bytes of UTF-8 (default MAX_STRUCTURED_SUMMARY_BYTES), never in
 * the middle of a character; a cut text ends in `…` (counted in the limit).
 */
export function truncateSummary(text: string, limit: number = MAX_STRUCTURED_SUMMARY_BYTES): string {
  if (Buffer.byteLength(text, 'utf8') <= limit) return text;
  const ellipsis = '…';
  const budget = limit - Buffer.byteLength(ellipsis, 'utf8');
  if (budget <= 0) return '';
  let bytes = 0;
  let out = '';
  // Iterate by code point so a surrogate pair is never split.
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > budget) break;
    bytes += n;
    out += ch;
  }
  return out + ellipsis;
}
