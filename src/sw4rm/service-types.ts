/**
 * What every SW4RM service of `swarm sw4rm serve` is given, and what it gives back.
 *
 * @example
 *   export function addRouterService(server: grpc.Server, deps: Sw4rmServiceDeps): Sw4rmServiceHandle {
 *     server.addService(sw4rmProtos().router.RouterService.service, handlers(deps));
 *     return { close: async () => {} };
 *   }
 */
import type { Swarm } from '../swarm.js';

/** Tunables of the services (options of `startSw4rm`, docs/sw4rm.md); every one has a default. */
export interface Sw4rmServiceOptions {
  /** How long a delivered, unacknowledged message stays in flight before redelivery (default 30 s). */
  leaseMs?: number;
  /** Deliveries before a message goes to the dead-letter queue (default 5). */
  maxAttempts?: number;
  /** How long the router remembers an idempotency token (default 10 minutes). */
  dedupWindowMs?: number;
  /** The largest payload the router accepts (default 1 MiB): OVERSIZE_PAYLOAD past it. */
  maxPayloadBytes?: number;
  /** How far an envelope's HLC may be ahead of the router's clock (default 60 s). */
  hlcToleranceMs?: number;
  /** Heartbeats missed for this long mark an agent unavailable (default 30 s). */
  heartbeatTimeoutMs?: number;
}

export interface Sw4rmServiceDeps {
  /** The open Swarm: its store holds every message, agent and binding; its approvals carry HITL. */
  swarm: Swarm;
  options: Required<Sw4rmServiceOptions>;
  /** Wall clock in ms (tests move it). */
  now(): number;
}

/** A started service: background loops (lease sweeps, heartbeat checks) stop on close. */
export interface Sw4rmServiceHandle {
  close(): Promise<void>;
}

export const SW4RM_DEFAULTS: Required<Sw4rmServiceOptions> = {
  leaseMs: 30_000,
  maxAttempts: 5,
  dedupWindowMs: 600_000,
  maxPayloadBytes: 1024 * 1024,
  hlcToleranceMs: 60_000,
  heartbeatTimeoutMs: 30_000,
};
