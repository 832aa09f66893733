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

async function bind(server: grpc.Server, host: string, port: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (err) {
        const inUse = /EADDRINUSE|address already in use/i.test(err.message);
        reject(new UserError(inUse ? 'PORT_IN_USE' : 'LISTEN_FAILED', `cannot listen for the SW4RM ${what} on ${host}:${port}: ${inUse ? `the port is in use; choose another with --${what}` : err.message}`, { host, port }));
      } else resolve(bound);
    });
  });
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
      router: await bind(servers.router, host, wanted.router, 'router'),
      registry: await bind(servers.registry, host, wanted.registry, 'registry'),
      scheduler: await bind(servers.scheduler, host, wanted.scheduler, 'scheduler'),
    };
    return { ports, host, close: closeAll };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
