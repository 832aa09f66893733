/**
 * `swarm sw4rm serve`: the SW4RM Router, Registry and Scheduler services over gRPC, each on its own
 * port (50051, 50052, 50053 by default, as the protocol's SDKs expect), all backed by Swarm's store.
 * Also started inside `swarm serve --sw4rm`.
 *
 * @example
 *   const sw4rm = await startSw4rm(swarm, { host: '127.0.0.1', ports: { router: 0, registry: 0, scheduler: 0 } });
 *   console.log(sw4rm.ports.router);
 *   await sw4rm.close();
 */
import * as grpc from '@grpc/grpc-js';
import { UserError } from '../core/errors.js';
import type { Swarm } from '../swarm.js';
import { addRegistryService } from './registry/service.js';
import { addRouterService } from './router/service.js';
import { addSchedulerServices } from './scheduler/service.js';
import { SW4RM_DEFAULTS, type Sw4rmServiceDeps, type Sw4rmServiceHandle, type Sw4rmServiceOptions } from './service-types.js';

export interface Sw4rmPorts {
  router: number;
  registry: number;
  scheduler: number;
}

export const SW4RM_DEFAULT_PORTS: Sw4rmPorts = { router: 50051, registry: 50052, scheduler: 50053 };

export interface StartSw4rmOptions extends Sw4rmServiceOptions {
  host?: string;
  /** How the caller's port flags are spelled, for the hint of a port in use: `--` (sw4rm serve: `--router`) or `--sw4rm-` (swarm serve: `--sw4rm-router`). Default `--`. */
  flagPrefix?: string;
  /** Port per service; 0 picks a free one. Defaults: SW4RM_DEFAULT_PORTS. */
  ports?: Partial<Sw4rmPorts>;
  now?: () => number;
}

export interface Sw4rmServer {
  /** The ports actually bound (useful with 0). */
  ports: Sw4rmPorts;
  host: string;
  /** Stop accepting, end open streams (consumers reconnect elsewhere), stop background loops. */
  close(): Promise<void>;
}

async function bind(server: grpc.Server, host: string, port: number, what: string, flagPrefix: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (err) {
        const inUse = /EADDRINUSE|address already in use/i.test(err.message);
        reject(new UserError(inUse ? 'PORT_IN_USE' : 'LISTEN_FAILED', `cannot listen for the SW4RM ${what} on ${host}:${port}: ${inUse ? `the port is in use; choose another with ${flagPrefix}${what}` : err.message}`, { host, port }));
      } else resolve(bound);
    });
  });
}

/**
 * gRPC's own log lines off, unless GRPC_VERBOSITY or GRPC_TRACE asks for them: a failure to listen
 * or to connect reaches the user as Swarm's one-line error, and gRPC would print its own line first
 * (`E No address added out of total 1 resolved`). For the commands that serve or call SW4RM.
 */
export function quietGrpcLogs(env: Readonly<Record<string, string | undefined>> = process.env): void {
  if (env.GRPC_VERBOSITY === undefined && env.GRPC_TRACE === undefined) grpc.setLogVerbosity(grpc.logVerbosity.NONE);
}

/** Start the three services on `swarm`'s store. */
export async function startSw4rm(swarm: Swarm, options: StartSw4rmOptions = {}): Promise<Sw4rmServer> {
  const host = options.host ?? '127.0.0.1';
  const wanted = { ...SW4RM_DEFAULT_PORTS, ...options.ports };
  // swarm.yaml's `sw4rm:` over the defaults, then the caller's options (the CLI's flags) over both.
  const opts = { ...SW4RM_DEFAULTS, ...swarm.config.sw4rm };
  for (const k of Object.keys(SW4RM_DEFAULTS) as (keyof Sw4rmServiceOptions)[]) if (options[k] !== undefined) opts[k] = options[k];
  const deps: Sw4rmServiceDeps = { swarm, options: opts, now: options.now ?? Date.now };
  const grpcOptions = { 'grpc.max_receive_message_length': opts.maxPayloadBytes + 64 * 1024 };
  const servers = { router: new grpc.Server(grpcOptions), registry: new grpc.Server(grpcOptions), scheduler: new grpc.Server(grpcOptions) };
  const handles: Sw4rmServiceHandle[] = [];
  const closeAll = async () => {
    for (const s of Object.values(servers)) s.forceShutdown();
    await Promise.all(handles.map((h) => h.close()));
  };
  try {
    handles.push(addRouterService(servers.router, deps));
    handles.push(addRegistryService(servers.registry, deps));
    handles.push(addSchedulerServices(servers.scheduler, deps));
    const ports: Sw4rmPorts = {
      router: await bind(servers.router, host, wanted.router, 'router', options.flagPrefix ?? '--'),
      registry: await bind(servers.registry, host, wanted.registry, 'registry', options.flagPrefix ?? '--'),
      scheduler: await bind(servers.scheduler, host, wanted.scheduler, 'scheduler', options.flagPrefix ?? '--'),
    };
    return { ports, host, close: closeAll };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
