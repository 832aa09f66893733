import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkChain, EventType, GENESIS_HASH, hashEvent, legacyHashEvent, verifyChain, type RunEvent } from '../src/core/events.js';
import { backoffDelayMs, hasRetriesLeft } from '../src/core/retry.js';
import { canTransitionRun, canTransitionStep } from '../src/core/states.js';

type StoredEvent = RunEvent & { data_json: string };

const KEY = Buffer.alloc(32, 7);
const OTHER_KEY = Buffer.alloc(32, 8);

/** Build a valid chain the way the ledger does (or the way it did before chains were keyed). */
function chain(n: number, runId = 'run-1', hash: (e: Parameters<typeof legacyHashEvent>[0], json: string) => string = (e, json) => hashEvent(KEY, e, json)): StoredEvent[] {
  const out: StoredEvent[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const data = { i: seq, note: `event ${seq}` };
    const data_json = JSON.stringify(data);
    const base = { run_id: runId, seq, type: seq === 1 ? EventType.RUN_CREATED : EventType.STEP_STARTED, step_id: seq === 1 ? null : `s${seq}`, at: 1_700_000_000_000 + seq };
    const h = hash({ ...base, prev_hash: prev }, data_json);
    out.push({ ...base, data, data_json, prev_hash: prev, hash: h });
    prev = h;
  }
  return out;
}

/** Extend a chain with events hashed by `hash`. */
function extend(events: StoredEvent[], n: number, hash: (e: Parameters<typeof legacyHashEvent>[0], json: string) => string): StoredEvent[] {
  const out = [...events];
  let prev = out[out.length - 1]?.hash ?? GENESIS_HASH;
  for (let k = 0; k < n; k++) {
    const seq = out.length + 1;
    const data_json = JSON.stringify({ i: seq });
    const base = { run_id: 'run-1', seq, type: EventType.STEP_COMPLETED, step_id: `s${seq}`, at: 1_700_000_000_000 + seq };
    const h = hash({ ...base, prev_hash: prev }, data_json);
    out.push({ ...base, data: { i: seq }, data_json, prev_hash: prev, hash: h });
    prev = h;
  }
  return out;
}

describe('hashEvent', () => {
  it('is HMAC-SHA256 under the chain key of the documented field layout', () => {
    const e = { run_id: 'r', seq: 1, type: 'RUN_CREATED', step_id: null, at: 5, prev_hash: GENESIS_HASH };
    const expected = createHmac('sha256', KEY).update(`${GENESIS_HASH}\nr\n1\nRUN_CREATED\n\n5\n{"a":1}`).digest('hex');
    expect(hashEvent(KEY, e, '{"a":1}')).toBe(expected);
    expect(legacyHashEvent(e, '{"a":1}')).toBe(createHash('sha256').update(`${GENESIS_HASH}\nr\n1\nRUN_CREATED\n\n5\n{"a":1}`).digest('hex'));
    expect(hashEvent(OTHER_KEY, e, '{"a":1}')).not.toBe(expected);
  });

  it('changes when any field changes', () => {
    const e = { run_id: 'r', seq: 1, type: 'RUN_CREATED', step_id: null, at: 5, prev_hash: GENESIS_HASH };
    const h = hashEvent(KEY, e, '{}');
    expect(hashEvent(KEY, { ...e, run_id: 'q' }, '{}')).not.toBe(h);
    expect(hashEvent(KEY, { ...e, seq: 2 }, '{}')).not.toBe(h);
    expect(hashEvent(KEY, { ...e, type: 'RUN_STARTED' }, '{}')).not.toBe(h);
    expect(hashEvent(KEY, { ...e, step_id: 'a' }, '{}')).not.toBe(h);
    expect(hashEvent(KEY, { ...e, at: 6 }, '{}')).not.toBe(h);
    expect(hashEvent(KEY, { ...e, prev_hash: 'f'.repeat(64) }, '{}')).not.toBe(h);
    expect(hashEvent(KEY, e, '{ }')).not.toBe(h);
  });
});

describe('verifyChain', () => {
  it('accepts an intact chain (and an empty one)', () => {
    expect(verifyChain(KEY, chain(5))).toEqual([]);
    expect(verifyChain(KEY, [])).toEqual([]);
  });

  it('refuses a chain made with another key', () => {
    expect(verifyChain(OTHER_KEY, chain(2))).toEqual([
      { seq: 1, problem: 'hash does not match the event contents' },
      { seq: 2, problem: 'hash does not match the event contents' },
    ]);
  });

  it('detects a changed payload at the changed event only', () => {
    const events = chain(4);
    events[2] = { ...events[2]!, data_json: JSON.stringify({ i: 3, note: 'tampered' }) };
    expect(verifyChain(KEY, events)).toEqual([{ seq: 3, problem: 'hash does not match the event contents' }]);
  });

  it('detects a changed type or timestamp', () => {
    const events = chain(3);
    events[1] = { ...events[1]!, type: EventType.STEP_COMPLETED };
    expect(verifyChain(KEY, events)).toEqual([{ seq: 2, problem: 'hash does not match the event contents' }]);
    const events2 = chain(3);
    events2[0] = { ...events2[0]!, at: events2[0]!.at + 1 };
    expect(verifyChain(KEY, events2)).toEqual([{ seq: 1, problem: 'hash does not match the event contents' }]);
  });

  it('detects a recomputed hash: the next event no longer links to it', () => {
    const events = chain(3);
    const e = { ...events[1]!, data_json: '{"forged":true}' };
    e.hash = hashEvent(KEY, e, e.data_json);
    events[1] = e;
    expect(verifyChain(KEY, events)).toEqual([{ seq: 3, problem: 'prev_hash does not match the previous event' }]);
  });

  it('refuses a whole chain recomputed the unkeyed way (a forgery without the key), naming the form', () => {
    const forged = chain(3, 'run-1', legacyHashEvent);
    const problems = verifyChain(KEY, forged);
    expect(problems).toHaveLength(3);
    expect(problems.every((p) => p.problem.includes('unkeyed (plain SHA-256)'))).toBe(true);
  });

  it('allowLegacy accepts an unkeyed prefix followed by keyed events, and counts it', () => {
    const mixed = extend(chain(3, 'run-1', legacyHashEvent), 2, (e, json) => hashEvent(KEY, e, json));
    expect(verifyChain(KEY, mixed).length).toBe(3);
    expect(checkChain(KEY, mixed, { allowLegacy: true })).toEqual({ problems: [], legacyEvents: 3 });
  });

  it('allowLegacy still refuses unkeyed events after keyed ones (a keyed run rewritten at its end)', () => {
    const downgraded = extend(chain(3), 2, legacyHashEvent);
    const { problems } = checkChain(KEY, downgraded, { allowLegacy: true });
    expect(problems.map((p) => p.seq)).toEqual([4, 5]);
    expect(problems[0]?.problem).toMatch(/unkeyed .* after keyed events/);
  });

  it('detects a gap in seq (a deleted event)', () => {
    const events = chain(4);
    events.splice(1, 1);
    const problems = verifyChain(KEY, events);
    expect(problems).toContainEqual({ seq: 3, problem: 'expected sequence 2, found 3' });
    expect(problems).toContainEqual({ seq: 3, problem: 'prev_hash does not match the previous event' });
    expect(problems.every((p) => p.seq >= 3)).toBe(true);
  });

  it('detects a broken prev_hash', () => {
    const events = chain(3);
    events[1] = { ...events[1]!, prev_hash: 'a'.repeat(64) };
    const problems = verifyChain(KEY, events);
    expect(problems).toContainEqual({ seq: 2, problem: 'prev_hash does not match the previous event' });
    expect(problems).toContainEqual({ seq: 2, problem: 'hash does not match the event contents' });
    expect(problems.some((p) => p.seq !== 2)).toBe(false);
  });

  it('a first event must link to the genesis hash', () => {
    const events = chain(2).slice(1);
    const problems = verifyChain(KEY, events);
    expect(problems).toContainEqual({ seq: 2, problem: 'expected sequence 1, found 2' });
    expect(problems).toContainEqual({ seq: 2, problem: 'prev_hash does not match the previous event' });
  });
});

describe('backoffDelayMs', () => {
  const policy = { max_attempts: 10, backoff_ms: 1000, max_backoff_ms: 10_000 };

  it('doubles per failure with equal jitter in [d/2, d]', () => {
    const d = [1000, 2000, 4000, 8000];
    d.forEach((delay, i) => {
      expect(backoffDelayMs(policy, i + 1, 0)).toBe(delay / 2);
      expect(backoffDelayMs(policy, i + 1, 0.5)).toBe(delay * 0.75);
      expect(backoffDelayMs(policy, i + 1, 0.999999)).toBe(delay);
    });
  });

  it('stays within bounds for many random draws', () => {
    for (let failures = 1; failures <= 8; failures++) {
      const d = Math.min(10_000, 1000 * 2 ** (failures - 1));
      for (const r of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999]) {
        const v = backoffDelayMs(policy, failures, r);
        expect(v).toBeGreaterThanOrEqual(d / 2);
        expect(v).toBeLessThanOrEqual(d);
      }
    }
  });

  it('is capped by max_backoff_ms', () => {
    expect(backoffDelayMs(policy, 5, 0)).toBe(5000);
    expect(backoffDelayMs(policy, 5, 0.999999)).toBe(10_000);
    expect(backoffDelayMs(policy, 50, 0.999999)).toBe(10_000);
    expect(backoffDelayMs({ ...policy, max_backoff_ms: 1500 }, 2, 0.999999)).toBe(1500);
  });

  it('failures below 1 are treated as the first retry; zero backoff is zero', () => {
    expect(backoffDelayMs(policy, 0, 0)).toBe(500);
    expect(backoffDelayMs({ ...policy, backoff_ms: 0 }, 3, 0.7)).toBe(0);
  });

  it('hasRetriesLeft counts attempts', () => {
    expect(hasRetriesLeft({ ...policy, max_attempts: 3 }, 1)).toBe(true);
    expect(hasRetriesLeft({ ...policy, max_attempts: 3 }, 2)).toBe(true);
    expect(hasRetriesLeft({ ...policy, max_attempts: 3 }, 3)).toBe(false);
    expect(hasRetriesLeft({ ...policy, max_attempts: 1 }, 1)).toBe(false);
  });
});

describe('state machines', () => {
  it('runs', () => {
    expect(canTransitionRun('queued', 'running')).toBe(true);
    expect(canTransitionRun('failed', 'queued')).toBe(true);
    expect(canTransitionRun('completed', 'queued')).toBe(false);
    expect(canTransitionRun('running', 'queued')).toBe(false);
  });

  it('steps', () => {
    expect(canTransitionStep('ready', 'running')).toBe(true);
    expect(canTransitionStep('running', 'running')).toBe(true);
    expect(canTransitionStep('completed', 'ready')).toBe(false);
    expect(canTransitionStep('pending', 'running')).toBe(false);
  });
});
