import type { ServerType } from '@hono/node-server';
import type { Command } from 'commander';
import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import pc from 'picocolors';
import { UserError } from '../../core/errors.js';
import { shortRunId } from '../../swarm.js';
import { parsePositiveInt, parseSeconds, type CliContext } from '../context.js';
import { colorStatus } from '../render.js';
import { version } from '../version.js';

interface ServeOptions {
  host: string;
  insecure?: boolean;
  port: string;
  concurrency?: string;
  worker: boolean;
  grace: string;
  scheduleLease: string;
}

/** Loopback only: 127.0.0.0/8, ::1 (also as ::ffff:127.x) and localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new UserError('ARGUMENT_INVALID', `--port must be a port number from 0 to 65535, not '${value}'`);
  return n;
}

/** Listen, or fail with one line (a port in use, an address that is not this machine's): exit 2. */
async function listen(fetch: (req: Request) => Response | Promise<Response>, hostname: string, port: number): Promise<ServerType> {
  const { serve } = await import('@hono/node-server');
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname, port }, () => resolve(server));
    server.once('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'EADDRINUSE' ? 'the port is in use (another swarm serve?); choose another with --port' : e.code === 'EADDRNOTAVAIL' ? 'the address is not one of this machine’s' : e.code === 'EACCES' ? 'not permitted (ports below 1024 need privileges)' : e.message;
      reject(new UserError(e.code === 'EADDRINUSE' ? 'PORT_IN_USE' : 'LISTEN_FAILED', `cannot listen on ${hostname}:${port}: ${why}`, { host: hostname, port }));
    });
  });
}

/**
 * `swarm serve`: the HTTP API and, unless --no-worker, a worker in the same process. SIGTERM or
 * SIGINT drains: the server stops accepting connections, requests in flight finish (those waiting
 * for a run answer at once with the run as it is), the worker stops gracefully (in-flight steps get
 * --grace seconds, then are released for another worker), the scheduler releases the schedule lease,
 * and the process exits 0.
 */
export function registerServeCommand(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('serve the HTTP API (and run a worker, unless --no-worker); SIGTERM/SIGINT drain and stop it')
    .option('--host <address>', 'address to listen on (loopback only, until API tokens exist: see --insecure)', '127.0.0.1')
    .option('--insecure', 'listen on a non-loopback address although the API has no authentication yet')
    .option('-p, --port <port>', 'port to listen on (0: any free port)', '8090')
    .option('-c, --concurrency <n>', "steps the worker runs at once (default: swarm.yaml's worker concurrency)")
    .option('--no-worker', 'serve the API only; workers elsewhere execute the runs')
    .option('--grace <seconds>', 'on shutdown, how long in-flight steps may take to finish before they are released', '10')
    .option('--schedule-lease <seconds>', 'how long the schedule lease lasts unrenewed: how soon another serve fires schedules after this one dies (renewed every third of it)', '15')
    .action(async (o: ServeOptions) => {
      const port = parsePort(o.port);
      // The API has no authentication yet: anyone who can reach it can start and cancel runs.
      if (!isLoopbackHost(o.host) && !o.insecure) {
        throw new UserError('SERVE_INSECURE', `--host ${o.host} is not a loopback address, and the API has no authentication yet (API tokens come next): anyone who can reach it could start and cancel runs; listen on 127.0.0.1 behind a proxy that authenticates, or pass --insecure to listen on ${o.host} anyway`, { host: o.host });
      }
      const grace = parseSeconds(o.grace, '--grace') * 1000;
      const leaseMs = parseSeconds(o.scheduleLease, '--schedule-lease') * 1000;
      if (leaseMs < 300) throw new UserError('ARGUMENT_INVALID', `--schedule-lease must be at least 0.3 seconds, not '${o.scheduleLease}'`);
      ctx.engineLog = true;
      delete ctx.llmEvents; // nobody follows the LLM steps of a server's worker on a terminal
      const swarm = await ctx.swarm({ retryUnreachable: true });
      const concurrency = o.concurrency ? parsePositiveInt(o.concurrency, '--concurrency') : swarm.config.workerConcurrency;
      const shutdown = new AbortController();
      // Loaded here, not with the CLI: the other commands do not pay for the HTTP stack at start-up.
      const { createApp } = await import('../../server/app.js');
      const app = createApp(swarm, {
        version: version(),
        worker: o.worker ? { concurrency } : null,
        shutdown: shutdown.signal,
        log: (line) => ctx.err(pc.red(line)),
      });
      const server = (await listen(app.fetch, o.host, port)) as Server;
      const address = server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      const host = o.host.includes(':') ? `[${o.host}]` : o.host;

      const worker = o.worker ? swarm.worker({ concurrency, onFinished: (runId, status) => ctx.err(`run ${shortRunId(runId)} ${colorStatus(status)}`) }) : undefined;
      const workerDone = worker?.start();
      // Every serve runs a scheduler; the one holding the store's schedule lease fires (docs/schedules.md).
      const serveId = `serve-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
      const scheduler = swarm.scheduler({ holder: serveId, leaseTtlMs: leaseMs, renewEveryMs: Math.floor(leaseMs / 3), log: (line) => ctx.err(line) });
      const schedulerDone = scheduler.start();
      ctx.out(`swarm serve: listening on http://${host}:${actualPort} (API reference /api/v1/docs; ${worker ? `worker ${worker.id}, concurrency ${concurrency}` : 'no worker'}; ${swarm.store.kind} store; scheduler ${serveId})`);
      if (worker) for (const w of swarm.isolation().warnings) ctx.err(pc.yellow(`warning: ${w}`));

      await new Promise<void>((resolve) => {
        const stop = (sig: string): void => {
          process.off('SIGTERM', onTerm);
          process.off('SIGINT', onInt);
          ctx.err(`${sig}: draining: no new connections; requests in flight finish${worker ? `; in-flight steps have ${o.grace}s, then they are released` : ''}`);
          shutdown.abort();
          const closed = new Promise<void>((done) => server.close(() => done()));
          // Keep-alive connections with no request in flight close now; busy ones once their answer is sent.
          server.closeIdleConnections();
          // The scheduler stops first and releases its lease: another serve fires the next tick.
          void Promise.all([scheduler.stop().then(() => schedulerDone), closed, worker?.stop(grace), workerDone?.catch(() => undefined)]).then(() => resolve());
        };
        const onTerm = (): void => stop('SIGTERM');
        const onInt = (): void => stop('SIGINT');
        process.once('SIGTERM', onTerm);
        process.once('SIGINT', onInt);
      });
      ctx.err(`swarm serve stopped${worker ? ` (worker ${worker.id} ran ${worker.completedCount} step(s))` : ''}`);
    });
}
