/**
 * What the three SW4RM clients share: where a service is (an explicit address, else the SW4RM SDKs'
 * environment variables, else localhost and the protocol's default port), a per-call deadline, and
 * one way to make a unary call that fails with a `Sw4rmClientError`.
 *
 * @example
 *   serviceAddress('router')                               // SW4RM_ROUTER_ADDR or 'localhost:50051'
 *   serviceAddress('registry', undefined, { SW4RM_REGISTRY_ADDR: 'agents.internal:7000' })
 */
import * as grpc from '@grpc/grpc-js';
import type { ServiceCtor } from '../proto.js';
import { mapGrpcError, type Sw4rmCallInfo } from './errors.js';

export type Sw4rmServiceName = 'router' | 'registry' | 'scheduler';

/** The ports the published SDKs assume when no address is given. */
export const SW4RM_DEFAULT_ADDRESSES: Readonly<Record<Sw4rmServiceName, string>> = {
  router: 'localhost:50051',
  registry: 'localhost:50052',
  scheduler: 'localhost:50053',
};

/** The environment variable the published SDKs read for each service's address. */
export const SW4RM_ADDRESS_ENV: Readonly<Record<Sw4rmServiceName, string>> = {
  router: 'SW4RM_ROUTER_ADDR',
  registry: 'SW4RM_REGISTRY_ADDR',
  scheduler: 'SW4RM_SCHEDULER_ADDR',
};

/** The address of `service`: `explicit`, else its SW4RM_*_ADDR variable in `env`, else the default. */
export function serviceAddress(service: Sw4rmServiceName, explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  const v = explicit ?? env[SW4RM_ADDRESS_ENV[service]];
  return v && v.trim() ? v.trim() : SW4RM_DEFAULT_ADDRESSES[service];
}

/** Options every client takes. */
export interface Sw4rmClientOptions {
  /** `host:port`; default: the SW4RM_*_ADDR variable, else localhost with the protocol's port. */
  address?: string;
  /** Deadline of each unary call in ms (default 10,000). Streams have none. */
  deadlineMs?: number;
  /** Where the SW4RM_*_ADDR variables are read (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Channel credentials (default: insecure, as `swarm sw4rm serve` listens without TLS). */
  credentials?: grpc.ChannelCredentials;
}

export const DEFAULT_DEADLINE_MS = 10_000;

type Callback<R> = (err: grpc.ServiceError | null, res?: R) => void;
type UnaryMethod = (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<unknown>) => grpc.ClientUnaryCall;

/** The part of every client that owns the channel and makes calls. */
export class ServiceClientBase {
  readonly address: string;
  readonly deadlineMs: number;
  protected readonly client: grpc.Client;
  private readonly serviceName: Sw4rmServiceName;

  protected constructor(service: Sw4rmServiceName, ctor: ServiceCtor, options: Sw4rmClientOptions) {
    this.serviceName = service;
    this.address = serviceAddress(service, options.address, options.env);
    this.deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    if (!(this.deadlineMs > 0)) throw new RangeError(`deadlineMs must be a positive number of milliseconds, not ${String(options.deadlineMs)}`);
    this.client = new ctor(this.address, options.credentials ?? grpc.credentials.createInsecure());
  }

  protected info(method: string): Sw4rmCallInfo {
    return { service: this.serviceName, method, address: this.address };
  }

  /** One unary call with the client's deadline; gRPC failures become Sw4rmClientErrors. */
  protected unary<Res>(method: string, request: unknown, metadata = new grpc.Metadata()): Promise<Res> {
    const fn = (this.client as unknown as Record<string, UnaryMethod | undefined>)[method];
    if (typeof fn !== 'function') return Promise.reject(mapGrpcError(new Error(`the loaded protos have no method ${method}`), this.info(method)));
    return new Promise((resolve, reject) => {
      fn.call(this.client, request, metadata, { deadline: Date.now() + this.deadlineMs }, (err, res) => {
        if (err) reject(mapGrpcError(err, this.info(method), this.deadlineMs));
        else resolve(res as Res);
      });
    });
  }

  /** Wait until the channel is connected (or fail with SW4RM_UNAVAILABLE after `timeoutMs`). */
  waitForReady(timeoutMs = this.deadlineMs): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.waitForReady(Date.now() + timeoutMs, (err) => {
        if (err) reject(mapGrpcError(Object.assign(new Error(err.message), { code: grpc.status.UNAVAILABLE, details: `not ready within ${timeoutMs} ms: ${err.message}` }), this.info('connect')));
        else resolve();
      });
    });
  }

  /** Close the channel; calls in flight fail with SW4RM_CANCELLED or SW4RM_UNAVAILABLE. */
  close(): void {
    this.client.close();
  }
}
