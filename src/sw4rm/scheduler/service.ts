/**
 * The SW4RM services on the scheduler port: the scheduler (classes, priorities, preemption,
 * cancellation, delegation), negotiation rooms and HITL.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Sw4rmServiceDeps, Sw4rmServiceHandle } from '../service-types.js';

export function addSchedulerServices(server: grpc.Server, deps: Sw4rmServiceDeps): Sw4rmServiceHandle {
  void server;
  void deps;
  return { close: async () => {} };
}
