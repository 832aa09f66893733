/**
 * Delegating to another swarm through its gateway (SW4-005): send the handoff; an accepted answer
 * ends it; OVERLOADED is retried with backoff (the gateway's retry_after_ms, with jitter, or an
 * exponential backoff) while the budget allows; REDIRECT is followed to the named peer when the
 * policy allows spillover, up to max_redirects hops (0 means the default, 2), refusing a redirect
 * without a target (VALIDATION_ERROR, checked before the bound) and a loop back to a gateway already
 * tried (VALIDATION_ERROR). A budget whose deadline or wall time is spent ends it with ACK_TIMEOUT.
 *
 * Pure apart from the `send` and `sleep` it is given; `now` and `random` are injectable.
 *
 * @example
 *   const res = await delegateToSwarm({ send: (req) => client.requestHandoff(req), from_agent: 'me',
 *     to_agent: 'gw-a', reason: 'overflow', budget: { deadline_epoch_ms: Date.now() + 10_000 } });
 */
import { randomUUID } from 'node:crypto';
import { UserError } from '../../core/errors.js';

export const DEFAULT_MAX_REDIRECTS = 2;
export const DEFAULT_MAX_RETRIES_ON_OVERLOADED = 3;
export const DEFAULT_INITIAL_BACKOFF_MS = 200;
export const DEFAULT_BACKOFF_MULTIPLIER = 2;
export const DEFAULT_MAX_BACKOFF_MS = 5000;
/** A gateway's retry_after_ms gets up to this share added as jitter. */
export const RETRY_AFTER_JITTER_RATIO = 0.2;

export interface DelegationBudget {
  deadline_epoch_ms: number;
  wall_time_remaining_ms?: number;
  token_budget_remaining?: number;
  current_depth?: number;
  max_delegation_depth?: number;
}

export interface DelegationPolicy {
  max_retries_on_overloaded?: number;
  initial_backoff_ms?: number;
  backoff_multiplier?: number;
  max_backoff_ms?: number;
  allow_spillover_routing?: boolean;
  max_redirects?: number;
}

/** The handoff as sent (handoff.proto's HandoffRequest, snake_case). */
export interface DelegationRequest {
  request_id: string;
  from_agent: string;
  to_agent: string;
  reason: string;
  priority: number;
  budget: DelegationBudget;
  delegation_policy: Required<DelegationPolicy>;
}

/** The gateway's answer (handoff.proto's HandoffResponse). rejection_code is an ErrorCode name. */
export interface DelegationResponse {
  request_id: string;
  accepted: boolean;
  accepting_agent?: string;
  rejection_reason?: string;
  rejection_code?: string;
  retry_after_ms?: number;
  redirect_to_agent_id?: string;
}

export interface DelegateOptions {
  send(request: DelegationRequest): Promise<DelegationResponse> | DelegationResponse;
  from_agent: string;
  to_agent: string;
  reason: string;
  budget: DelegationBudget;
  policy?: DelegationPolicy;
  request_id?: string;
  priority?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Uniform in [low, high). */
  random?: (low: number, high: number) => number;
}

function withDefaults(p: DelegationPolicy = {}): Required<DelegationPolicy> {
  const positive = (v: number | undefined, d: number) => (v !== undefined && v > 0 ? v : d);
  return {
    max_retries_on_overloaded: p.max_retries_on_overloaded ?? DEFAULT_MAX_RETRIES_ON_OVERLOADED,
    initial_backoff_ms: positive(p.initial_backoff_ms, DEFAULT_INITIAL_BACKOFF_MS),
    backoff_multiplier: positive(p.backoff_multiplier, DEFAULT_BACKOFF_MULTIPLIER),
    max_backoff_ms: positive(p.max_backoff_ms, DEFAULT_MAX_BACKOFF_MS),
    allow_spillover_routing: p.allow_spillover_routing ?? false,
    max_redirects: p.max_redirects ?? DEFAULT_MAX_REDIRECTS,
  };
}

/** The redirect bound in force: the policy's, or the default when it says 0. */
export function effectiveMaxRedirects(policy: DelegationPolicy): number {
  const n = policy.max_redirects ?? DEFAULT_MAX_REDIRECTS;
  return n > 0 ? n : DEFAULT_MAX_REDIRECTS;
}

const spent = (b: DelegationBudget, now: number) => (b.wall_time_remaining_ms !== undefined && b.wall_time_remaining_ms <= 0) || now > b.deadline_epoch_ms;

const rejected = (request_id: string, rejection_code: string, rejection_reason: string): DelegationResponse => ({ request_id, accepted: false, rejection_code, rejection_reason });

/** Delegate with retries and redirects; the answer that ended it (accepted, or why not). */
export async function delegateToSwarm(o: DelegateOptions): Promise<DelegationResponse> {
  if (!(o.budget.deadline_epoch_ms > 0)) throw new UserError('SW4RM_DELEGATION_INVALID', 'budget.deadline_epoch_ms is required for a delegation to another swarm', { field: 'budget.deadline_epoch_ms' });
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = o.random ?? ((low: number, high: number) => (high <= low ? low : low + Math.random() * (high - low)));
  const policy = withDefaults(o.policy);
  const req: DelegationRequest = { request_id: o.request_id ?? randomUUID(), from_agent: o.from_agent, to_agent: o.to_agent, reason: o.reason, priority: o.priority ?? 0, budget: { ...o.budget }, delegation_policy: policy };
  const bound = effectiveMaxRedirects(policy);
  const visited = new Set([req.to_agent]);
  const deduct = (ms: number) => {
    if (req.budget.wall_time_remaining_ms !== undefined) req.budget.wall_time_remaining_ms = Math.max(req.budget.wall_time_remaining_ms - ms, 0);
  };
  const exhausted = () => rejected(req.request_id, 'ACK_TIMEOUT', 'the delegation budget (deadline or wall time) ran out before a gateway accepted');
  let retries = 0;
  let hops = 0;
  for (;;) {
    const start = now();
    if (spent(req.budget, start)) return exhausted();
    const res = await o.send({ ...req, budget: { ...req.budget } });
    const end = now();
    deduct(Math.max(end - start, 0));
    if (res.accepted) return res;
    if (spent(req.budget, end)) return exhausted();
    if (res.rejection_code === 'REDIRECT') {
      if (!policy.allow_spillover_routing) return res;
      const target = res.redirect_to_agent_id?.trim() ?? '';
      // The target is checked before the bound: a malformed redirect is an error even at the last hop.
      if (!target) return rejected(req.request_id, 'VALIDATION_ERROR', 'a REDIRECT answer needs a non-empty redirect_to_agent_id');
      if (visited.has(target)) return rejected(req.request_id, 'VALIDATION_ERROR', `redirect loop detected: gateway '${target}' was already tried`);
      if (hops >= bound) return res;
      visited.add(target);
      req.to_agent = target;
      hops++;
      continue;
    }
    if (res.rejection_code !== 'OVERLOADED' || retries >= policy.max_retries_on_overloaded) return res;
    const wait = res.retry_after_ms && res.retry_after_ms > 0
      ? Math.floor(res.retry_after_ms + random(0, res.retry_after_ms * RETRY_AFTER_JITTER_RATIO))
      : Math.floor(random(0, Math.min(policy.initial_backoff_ms * policy.backoff_multiplier ** retries, policy.max_backoff_ms)));
    retries++;
    const wall = req.budget.wall_time_remaining_ms;
    if (wait <= 0 || (wall !== undefined && wait > wall) || wait > req.budget.deadline_epoch_ms - end) return res;
    const before = now();
    await sleep(wait);
    deduct(Math.max(now() - before, 0));
  }
}
