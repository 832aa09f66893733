/**
 * Cancelling a delegation (SW4-004): the cancelled correlation and its DIRECT children get a flag
 * with a grace period (never under MIN_GRACE_PERIOD_MS); once the grace has passed, whatever still
 * runs under a flagged correlation is preempted with FORCED_PREEMPTION. Deeper descendants are the
 * business of the gateway that delegated to them (it forwards the cancel), not of this helper.
 *
 * Pure: no clock of its own (every check takes `now`), no I/O. The scheduler service keeps the same
 * flags and children in the store (`CancellationFlag` rows) and answers with these functions.
 *
 * @example
 *   const m = new CancellationManager();
 *   m.registerChild('parent', 'child');
 *   m.cancel({ correlation_id: 'parent', reason: 'abort', grace_period_ms: 0 }, 1000);
 *   m.forcedPreemptionCode('child', 6000); // 'FORCED_PREEMPTION'
 */
import { UserError } from '../../core/errors.js';

/** The shortest grace a cancelled delegation gets, whatever the request asks. */
export const MIN_GRACE_PERIOD_MS = 5000;

export interface CancelRequest {
  correlation_id: string;
  reason?: string;
  grace_period_ms?: number;
}

/** The flag a cancellation leaves on a correlation (and on each of its direct children). */
export interface CancellationFlag {
  correlation_id: string;
  reason: string;
  grace_period_ms: number;
  cancelled_at: number;
}

export interface CancelOutcome {
  acknowledged: true;
  correlation_id: string;
  effective_grace_period_ms: number;
  /** The correlation and its direct children, in that order. */
  cancelled: string[];
  message: string;
}

/** A correlation id with its blanks trimmed; SW4RM_CORRELATION_REQUIRED when nothing is left. */
export function normalizeCorrelationId(id: unknown, field = 'correlation_id'): string {
  const s = typeof id === 'string' ? id.trim() : '';
  if (!s) throw new UserError('SW4RM_CORRELATION_REQUIRED', `${field} is required and must be a non-empty string`, { field });
  return s;
}

/** The grace actually granted: the request's (whole ms, if positive and finite), at least the minimum. */
export function effectiveGracePeriodMs(requested: number | undefined): number {
  const ms = requested !== undefined && Number.isFinite(requested) && requested > 0 ? Math.floor(requested) : 0;
  return Math.max(ms, MIN_GRACE_PERIOD_MS);
}

/** The flags one cancel writes: the correlation's, then one per direct child (same reason, grace, time). */
export function cancellationFlags(req: CancelRequest, children: readonly string[], now: number): { outcome: CancelOutcome; flags: CancellationFlag[] } {
  const correlation = normalizeCorrelationId(req.correlation_id);
  const grace = effectiveGracePeriodMs(req.grace_period_ms);
  const reason = (req.reason ?? '').trim();
  const ids = [correlation, ...children.filter((c) => c !== correlation)];
  const unique = [...new Set(ids)];
  return {
    outcome: { acknowledged: true, correlation_id: correlation, effective_grace_period_ms: grace, cancelled: unique, message: `cancellation recorded for ${unique.length} correlation(s); forced preemption after ${grace} ms` },
    flags: unique.map((id) => ({ correlation_id: id, reason, grace_period_ms: grace, cancelled_at: now })),
  };
}

/** Whether a flag's grace has run out at `now` (exactly at the end counts as expired). */
export function graceExpired(flag: CancellationFlag | undefined, now: number): boolean {
  return flag !== undefined && now - flag.cancelled_at >= flag.grace_period_ms;
}

/** In memory: the registered children and the flags, with the checks of SW4-004. */
export class CancellationManager {
  private readonly children = new Map<string, Set<string>>();
  private readonly flags = new Map<string, CancellationFlag>();

  registerChild(parent: string, child: string): void {
    const p = normalizeCorrelationId(parent, 'parent');
    const c = normalizeCorrelationId(child, 'child');
    const set = this.children.get(p) ?? new Set<string>();
    set.add(c);
    this.children.set(p, set);
  }

  childrenOf(parent: string): string[] {
    return [...(this.children.get(parent.trim()) ?? [])];
  }

  cancel(req: CancelRequest, now: number): CancelOutcome {
    const correlation = normalizeCorrelationId(req.correlation_id);
    const { outcome, flags } = cancellationFlags(req, this.childrenOf(correlation), now);
    for (const f of flags) this.flags.set(f.correlation_id, f);
    return outcome;
  }

  isCancelled(id: string): boolean {
    return this.flags.has(id.trim());
  }

  flag(id: string): CancellationFlag | undefined {
    return this.flags.get(id.trim());
  }

  isGraceExpired(id: string, now: number): boolean {
    return graceExpired(this.flag(id), now);
  }

  forcedPreemptionCode(id: string, now: number): 'FORCED_PREEMPTION' | 'ERROR_CODE_UNSPECIFIED' {
    return this.isGraceExpired(id, now) ? 'FORCED_PREEMPTION' : 'ERROR_CODE_UNSPECIFIED';
  }

  /** Of the correlations still active, those to preempt now (their grace is over), in input order. */
  collectForced(active: Iterable<string>, now: number): string[] {
    const out: string[] = [];
    for (const id of active) if (this.isGraceExpired(id, now) && !out.includes(id)) out.push(id);
    return out;
  }
}
