import type { RetryPolicy } from './manifest/workflow.js';

/**
 * Delay before retry number `failures` (1 = first retry): exponential, capped, with "equal jitter"
 * (half fixed, half random) so that many failing steps do not retry in lock-step.
 * `random` is injected (a number in [0, 1)) to keep this pure.
 */
export function backoffDelayMs(policy: RetryPolicy, failures: number, random: number): number {
  const exp = Math.min(policy.max_backoff_ms, policy.backoff_ms * 2 ** Math.max(0, failures - 1));
  return Math.round(exp / 2 + (exp / 2) * random);
}

/** After `failures` failed attempts, may the step run again? */
export function hasRetriesLeft(policy: RetryPolicy, failures: number): boolean {
  return failures < policy.max_attempts;
}

/** A step interrupted this many times (lease lost, worker died) fails instead of looping forever. */
export const MAX_INTERRUPTIONS = 10;
