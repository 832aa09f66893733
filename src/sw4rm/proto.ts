/**
 * The SW4RM wire contract: the project's `.proto` files (in `proto/sw4rm/` of the package), loaded
 * at run time with @grpc/proto-loader. Their packages, services, messages, field names and numbers
 * are the published protocol's, so SW4RM SDK clients (Python, Rust, JS) talk to Swarm unchanged.
 *
 * Messages are plain objects with the protos' snake_case field names (`keepCase`), enums as their
 * names (`'DATA'`, `'FULFILLED'`), 64-bit integers as numbers, and bytes as Buffers.
 *
 * @example
 *   const { router } = sw4rmProtos();
 *   server.addService(router.RouterService.service, handlers);
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The options every Swarm side (services, SDK clients, tests) loads the protos with. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

/** The proto files of the contract, by the name of the service package they define. */
export const PROTO_FILES = [
  'common.proto',
  'router.proto',
  'registry.proto',
  'scheduler.proto',
  'policy.proto',
  'scheduler_policy.proto',
  'negotiation.proto',
  'negotiation_room.proto',
  'hitl.proto',
  'worktree.proto',
  'handoff.proto',
] as const;

/** The directory holding the `.proto` files, found from this module (src/ or dist/src/). */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'proto', 'sw4rm');
    if (existsSync(join(candidate, 'common.proto'))) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new Error('the SW4RM .proto files (proto/sw4rm/) are missing from this installation of Swarm');
    dir = up;
  }
}

/** A service's constructor in a loaded package: `.service` for servers, `new (...)` for clients. */
export type ServiceCtor = grpc.ServiceClientConstructor;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Pkg = Record<string, any>;

/** The loaded packages, keyed like the protos' `package` names under `sw4rm`. */
export interface Sw4rmProtos {
  common: Pkg;
  router: Pkg & { RouterService: ServiceCtor };
  registry: Pkg & { RegistryService: ServiceCtor };
  /** scheduler.proto and scheduler_policy.proto share the package `sw4rm.scheduler`. */
  scheduler: Pkg & { SchedulerService: ServiceCtor; SchedulerPolicyService: ServiceCtor };
  policy: Pkg;
  negotiation: Pkg & { NegotiationService: ServiceCtor };
  negotiation_room: Pkg & { NegotiationRoomService: ServiceCtor };
  hitl: Pkg & { HitlService: ServiceCtor };
  worktree: Pkg & { WorktreeService: ServiceCtor };
  handoff: Pkg & { HandoffService: ServiceCtor };
  [pkg: string]: Pkg;
}

let cached: Sw4rmProtos | undefined;

/** Load (once per process) the contract's packages. */
export function sw4rmProtos(): Sw4rmProtos {
  if (cached) return cached;
  const dir = protoDir();
  const def = protoLoader.loadSync(
    PROTO_FILES.map((f) => join(dir, f)),
    { ...PROTO_LOADER_OPTIONS, includeDirs: [dir] },
  );
  const root = grpc.loadPackageDefinition(def) as unknown as { sw4rm: Sw4rmProtos };
  cached = root.sw4rm;
  return cached;
}
