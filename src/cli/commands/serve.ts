import type { ServerType } from '@hono/node-server';
import type { Command } from 'commander';
import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { UserError } from '../../core/errors.js';
import { isLoopbackHost } from '../../net/address.js';
import { parsePositiveInt, parseSeconds, type CliContext } from '../context.js';
import { LOG_FORMAT_HELP, runFinishedLogger, setUpLogging, stepFinishedLogger } from '../logging.js';
import { version } from '../version.js';
import type { AuthMode } from '../../server/auth.js';
import type { Sw4rmServer } from '../../sw4rm/server.js';

interface ServeOptions {
  host: string;
  insecure?: boolean;
  port: string;
  concurrency?: string;
  worker: boolean;
  grace: string;
  scheduleLease: string;
  logFormat?: string;
  sw4rm?: boolean;
  sw4rmHost: string;
  sw4rmRouter: string;
  sw4rmRegistry: string;
  sw4rmScheduler: string;
}

export { isLoopbackHost } from '../../net/address.js';

function parsePort(value: string, flag = '--port'): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new UserError('ARGUMENT_INVALID', `${flag} must be a port number from 0 to 65535, not '${value}'`);
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

/** The shortest and longest `--schedule-lease`, in seconds (renewed every third of it: 100 ms at least). */
const SCHEDULE_LEASE_SECONDS = { min: 0.3, max: 86_400 } as const;

/** `--schedule-lease` → milliseconds; one message, naming the real range, for any value outside it. */
function parseScheduleLease(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < SCHEDULE_LEASE_SECONDS.min || n > SCHEDULE_LEASE_SECONDS.max) {
    throw new UserError('ARGUMENT_INVALID', `--schedule-lease must be a number of seconds from ${SCHEDULE_LEASE_SECONDS.min} to ${SCHEDULE_LEASE_SECONDS.max}, not '${value}'`);
  }
  return n * 1000;
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
    .option('--host <address>', "address to listen on; a non-loopback one needs an API token first ('swarm tokens create') or --insecure", '127.0.0.1')
    .option('--insecure', 'listen on a non-loopback address although no API token exists (the API is open whenever none exists: until one is created, and after the last is revoked)')
    .option('-p, --port <port>', 'port to listen on (0: any free port)', '8090')
    .option('-c, --concurrency <n>', "steps the worker runs at once (default: swarm.yaml's worker concurrency)")
    .option('--no-worker', 'serve the API only; workers elsewhere execute the runs')
    .option('--grace <seconds>', 'on shutdown, how long in-flight steps may take to finish before they are released', '10')
    .option('--schedule-lease <seconds>', 'how long the schedule lease lasts unrenewed, 0.3 to 86400: how soon another serve fires schedules after this one dies (renewed every third of it)', '15')
    .option('--log-format <format>', LOG_FORMAT_HELP)
    .option('--sw4rm', 'also serve the SW4RM Router, Registry and Scheduler over gRPC on this store (docs/sw4rm.md)')
    .option('--sw4rm-host <address>', 'address the SW4RM services listen on (they have no authentication: loopback unless you choose otherwise)', '127.0.0.1')
    .option('--sw4rm-router <port>', 'SW4RM Router port, with --sw4rm (0: any free port)', '50051')
    .option('--sw4rm-registry <port>', 'SW4RM Registry port, with --sw4rm', '50052')
    .option('--sw4rm-scheduler <port>', 'SW4RM Scheduler port, with --sw4rm', '50053')
    .action(async (o: ServeOptions, cmd: Command) => {
      const port = parsePort(o.port);
      // An IPv6 address as a URL writes it (`[::1]`) is the address itself.
      o.host = o.host.replace(/^\[(.*)\]$/, '$1');
      // The SW4RM ports mean something only with --sw4rm: given alone, they would be ignored.
      if (!o.sw4rm) {
        const given = (['sw4rmHost', 'sw4rmRouter', 'sw4rmRegistry', 'sw4rmScheduler'] as const).find((k) => cmd.getOptionValueSource(k) === 'cli');
        if (given) throw new UserError('ARGUMENT_INVALID', `--${given.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --sw4rm (it configures the SW4RM services that --sw4rm starts)`, { field: given });
      }
      const grace = parseSeconds(o.grace, '--grace') * 1000;
      const leaseMs = parseScheduleLease(o.scheduleLease);
      ctx.engineLog = true;
      delete ctx.llmEvents; // nobody follows the LLM steps of a server's worker on a terminal
      setUpLogging(ctx, o.logFormat);
      const log = ctx.logger;
      const swarm = await ctx.swarm({ retryUnreachable: true });
      // GET /metrics (unless swarm.yaml says metrics: {enabled: false}); before the worker and scheduler take them.
      if (swarm.config.metrics.enabled) await swarm.enableMetrics();
      // With no token the API is open: fine on this machine's loopback, not on an address others reach.
      const loopback = isLoopbackHost(o.host);
      const haveTokens = await swarm.tokensRequired();
      if (!loopback && !haveTokens && !o.insecure) {
        throw new UserError(
          'SERVE_INSECURE',
          `--host ${o.host} is not a loopback address, and no API token exists: anyone who can reach it could start and cancel runs; create one first ('swarm tokens create --scope admin'; the API then requires a token), or pass --insecure to listen on ${o.host} with the API open until a token exists`,
          { host: o.host },
        );
      }
      // A retention archive that cannot be written would refuse every pass (nothing deleted, a log line
      // each interval): refused here instead, before anything listens.
      const { runs: retentionAges, archive } = swarm.config.retention;
      const archiveProblem = Object.keys(retentionAges).length && archive ? await (await import('../../retention/gc.js')).archiveFault(archive) : undefined;
      if (archiveProblem) {
        throw new UserError('RETENTION_ARCHIVE_UNUSABLE', `retention.archive in ${swarm.config.configFile ?? 'swarm.yaml'}: ${archiveProblem}; every retention pass would delete nothing`, { archive });
      }
      // Off loopback (without --insecure) a token is required even if every one is later revoked.
      const auth: AuthMode = loopback || o.insecure ? 'auto' : 'required';
      const sw4rmPorts = o.sw4rm ? { router: parsePort(o.sw4rmRouter, '--sw4rm-router'), registry: parsePort(o.sw4rmRegistry, '--sw4rm-registry'), scheduler: parsePort(o.sw4rmScheduler, '--sw4rm-scheduler') } : undefined;
      const concurrency = o.concurrency ? parsePositiveInt(o.concurrency, '--concurrency') : swarm.config.workerConcurrency;
      const shutdown = new AbortController();
      // Loaded here, not with the CLI: the other commands do not pay for the HTTP stack at start-up.
      const { createApp } = await import('../../server/app.js');
      const app = createApp(swarm, {
        version: version(),
        worker: o.worker ? { concurrency } : null,
        shutdown: shutdown.signal,
        log: (line, fields) => log.error(line, fields),
        auth,
        // While no token exists, an API on loopback answers only requests addressed to loopback.
        openToAnyHost: !loopback,
      });
      const server = (await listen(app.fetch, o.host, port)) as Server;
      const address = server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      const host = o.host.includes(':') ? `[${o.host}]` : o.host;
      // Loaded only with --sw4rm: gRPC stays out of a plain serve's start-up.
      let sw4rmHost = o.host;
      let sw4rm: Sw4rmServer | undefined;
      if (sw4rmPorts) {
        const { quietGrpcLogs, startSw4rm } = await import('../../sw4rm/server.js');
        sw4rmHost = o.sw4rmHost;
        try {
          quietGrpcLogs(ctx.env);
          sw4rm = await startSw4rm(swarm, { host: sw4rmHost, ports: sw4rmPorts, flagPrefix: '--sw4rm-' });
        } catch (e) {
          await new Promise<void>((done) => server.close(() => done()));
          throw e;
        }
      }

      const worker = o.worker ? swarm.worker({ concurrency, onFinished: runFinishedLogger(ctx), onStepFinished: stepFinishedLogger(ctx) }) : undefined;
      const workerDone = worker?.start();
      // Every serve runs a scheduler; the one holding the store's schedule lease fires (docs/schedules.md).
      const serveId = `serve-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
      const scheduler = swarm.scheduler({ holder: serveId, leaseTtlMs: leaseMs, renewEveryMs: Math.floor(leaseMs / 3), log: (line, fields) => log.info(line, fields) });
      const schedulerDone = scheduler.start();
      // The retention policy of swarm.yaml, if it sets run ages: one serve at a time applies it (its lease).
      const retention = swarm.retentionPolicy({ holder: serveId, log: (line) => log.info(line) });
      const retentionDone = retention?.start();
      if (retention) {
        const r = swarm.config.retention;
        log.info(`retention: finished runs are deleted after ${Object.entries(r.runs).map(([s, ms]) => `${ms / 1000}s (${s})`).join(', ')}, checked every ${r.intervalMs / 1000}s${r.archive ? `, archived to ${r.archive}` : ''}`);
      }
      const authText = haveTokens || auth === 'required' ? 'API tokens required' : 'API open: no tokens yet';
      log.info(
        `swarm serve: listening on http://${host}:${actualPort} (dashboard /, API reference /api/v1/docs; ${worker ? `worker ${worker.id}, concurrency ${concurrency}` : 'no worker'}; ${swarm.store.kind} store; ${authText}; scheduler ${serveId})`,
        { url: `http://${host}:${actualPort}`, worker_id: worker?.id, concurrency: worker ? concurrency : undefined, store: swarm.store.kind, version: version() },
        { stdout: true },
      );
      if (sw4rm) {
        const p = sw4rm.ports;
        log.info(`swarm serve: SW4RM router ${sw4rmHost}:${p.router}, registry ${sw4rmHost}:${p.registry}, scheduler ${sw4rmHost}:${p.scheduler}`, { sw4rm: { ...p, host: sw4rmHost } }, { stdout: true });
      }
      if (!loopback && !haveTokens) log.warn(`--insecure: the API on ${o.host} is open to anyone who can reach it until an API token exists ('swarm tokens create')`);
      if (worker) for (const w of swarm.isolation().warnings) log.warn(w);

      await new Promise<void>((resolve) => {
        const stop = (sig: string): void => {
          process.off('SIGTERM', onTerm);
          process.off('SIGINT', onInt);
          log.info(`${sig}: draining: no new connections; requests in flight finish${worker ? `; in-flight steps have ${o.grace}s, then they are released` : ''}`, { signal: sig });
          shutdown.abort();
          const closed = new Promise<void>((done) => server.close(() => done()));
          // Keep-alive connections with no request in flight close now; busy ones once their answer is
          // sent, looked at every 100 ms: a client that goes on sending on a kept-alive connection (a
          // dashboard's event stream reconnecting after the drain ended it) would hold the server open.
          server.closeIdleConnections();
          const idle = setInterval(() => server.closeIdleConnections(), 100);
          // Whatever is still open when in-flight steps have had their grace, and 5 s more, is cut.
          const cut = setTimeout(() => server.closeAllConnections(), grace + 5000);
          void closed.then(() => {
            clearInterval(idle);
            clearTimeout(cut);
          });
          // The scheduler stops first and releases its lease: another serve fires the next tick.
          void Promise.all([sw4rm?.close(), scheduler.stop().then(() => schedulerDone), retention?.stop().then(() => retentionDone), closed, worker?.stop(grace), workerDone?.catch(() => undefined)]).then(() => resolve());
        };
        const onTerm = (): void => stop('SIGTERM');
        const onInt = (): void => stop('SIGINT');
        process.once('SIGTERM', onTerm);
        process.once('SIGINT', onInt);
      });
      log.info(`swarm serve stopped${worker ? ` (worker ${worker.id} ran ${worker.completedCount} step(s))` : ''}`, { worker_id: worker?.id, steps: worker?.completedCount });
    });
}
