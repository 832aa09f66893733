import type { Command } from 'commander';
import { parsePort, type CliContext } from '../context.js';
import { SW4RM_DEFAULT_PORTS, startSw4rm } from '../../sw4rm/server.js';

interface Sw4rmServeOptions {
  host: string;
  router: string;
  registry: string;
  scheduler: string;
}

/**
 * `swarm sw4rm serve | dlq …`: the SW4RM message protocol's services on this deployment's store
 * (docs/sw4rm.md).
 *
 * @example
 *   swarm sw4rm serve --router 50051 --registry 50052 --scheduler 50053
 */
export function registerSw4rmCommands(program: Command, ctx: CliContext): void {
  const sw4rm = program.command('sw4rm').description('the SW4RM message protocol: serve the Router, Registry and Scheduler over gRPC; the dead-letter queue');

  sw4rm
    .command('serve')
    .description('serve the SW4RM Router, Registry and Scheduler services (gRPC) on this store; SIGTERM/SIGINT stop them')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--router <port>', 'Router service port', String(SW4RM_DEFAULT_PORTS.router))
    .option('--registry <port>', 'Registry service port', String(SW4RM_DEFAULT_PORTS.registry))
    .option('--scheduler <port>', 'Scheduler service port', String(SW4RM_DEFAULT_PORTS.scheduler))
    .action(async (o: Sw4rmServeOptions) => {
      const ports = { router: parsePort(o.router, '--router'), registry: parsePort(o.registry, '--registry'), scheduler: parsePort(o.scheduler, '--scheduler') };
      const swarm = await ctx.swarm();
      const server = await startSw4rm(swarm, { host: o.host, ports });
      const p = server.ports;
      ctx.logger.info(`swarm sw4rm serve: router ${o.host}:${p.router}, registry ${o.host}:${p.registry}, scheduler ${o.host}:${p.scheduler} (${swarm.store.kind} store)`, { ...p, host: o.host, store: swarm.store.kind }, { stdout: true });
      await new Promise<void>((resolve) => {
        const stop = (sig: string): void => {
          process.off('SIGTERM', onTerm);
          process.off('SIGINT', onInt);
          ctx.logger.info(`${sig}: stopping the SW4RM services`, { signal: sig });
          void server.close().then(resolve);
        };
        const onTerm = (): void => stop('SIGTERM');
        const onInt = (): void => stop('SIGINT');
        process.once('SIGTERM', onTerm);
        process.once('SIGINT', onInt);
      });
    });

  // ---- swarm sw4rm dlq list | replay | drop (src/sw4rm/router/) ----
}
