// The idempotency token against every conformance vector (profile sw4rm-idempotency-bytes-v1).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJsonBytes, idempotencyToken } from '../src/sw4rm/index.js';
import { UserError } from '../src/core/errors.js';

interface Vector {
  id: string;
  producer_id: string;
  operation: string;
  canonical_hex: string;
  token: string;
  rejected?: boolean;
}

const file = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures/sw4rm/idempotency_vectors.json'), 'utf8')) as { profile: string; vectors: Vector[] };

describe('idempotency tokens (sw4rm-idempotency-bytes-v1)', () => {
  it('reads the vectors of the profile', () => {
    expect(file.profile).toBe('sw4rm-idempotency-bytes-v1');
    expect(file.vectors.length).toBeGreaterThanOrEqual(10);
  });

  for (const v of file.vectors) {
    it(`vector ${v.id}${v.rejected ? ' (rejected)' : ''}`, () => {
      const input = { producer_id: v.producer_id, operation: v.operation, canonical_bytes: Buffer.from(v.canonical_hex, 'hex') };
      if (v.rejected) {
        expect(() => idempotencyToken(input)).toThrow(UserError);
        try {
          idempotencyToken(input);
        } catch (e) {
          expect((e as UserError).code).toBe('SW4RM_IDEMPOTENCY_INPUT');
          expect((e as UserError).message).toMatch(/line feed/);
        }
      } else {
        expect(idempotencyToken(input)).toBe(v.token);
      }
    });
  }

  it('canonical JSON sorts keys, so the caller gets one token for equal objects', () => {
    const a = idempotencyToken({ producer_id: 'agent', operation: 'work', canonical_bytes: canonicalJsonBytes({ b: 2, a: 1 }) });
    expect(a).toBe('agent:work:f65efee16e55e693');
    expect(idempotencyToken({ producer_id: 'agent', operation: 'work', canonical_bytes: '{"a":1,"b":2}' })).toBe(a);
  });
});
