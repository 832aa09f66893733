/**
 * The metrics endpoint of a process without the HTTP API (`swarm worker --metrics-port N`): a bare
 * node:http server answering `GET /metrics` (and HEAD) with the Prometheus exposition; anything else
 * is a 404 problem document (ROUTE_NOT_FOUND, naming the request), as `swarm serve` answers it.
 * It has no authentication: it listens on loopback unless told otherwise (`--metrics-host`), and the
 * exposition holds counts and names, never inputs, outputs or secrets.
 *
 * @example
 *   const server = await startMetricsServer(metrics, { host: '127.0.0.1', port: 9464 });
 *   console.log(server.url); // http://127.0.0.1:9464/metrics
 *   await server.close();
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { UserError } from '../core/errors.js';
import { problem, PROBLEM_CONTENT_TYPE } from '../core/problem-doc.js';

export interface MetricsServerOptions {
  host: string;
  /** 0: any free port (the one taken is in `port` of the result). */
  port: number;
}

export interface MetricsServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** A problem document, as `swarm serve` answers (src/core/problem-doc.ts: no HTTP stack loaded for it). */
function sendProblem(res: ServerResponse, status: 404 | 500, code: string, detail: string): void {
  res.writeHead(status, { 'content-type': PROBLEM_CONTENT_TYPE }).end(JSON.stringify(problem(status, code, detail)));
}

/** Serve `metrics` on host:port; PORT_IN_USE / LISTEN_FAILED (exit 2) when it cannot listen. */
export async function startMetricsServer(metrics: { render(): Promise<string>; readonly contentType: string }, options: MetricsServerOptions): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      sendProblem(res, 404, 'ROUTE_NOT_FOUND', `no route ${req.method ?? 'GET'} ${path}; this port serves GET /metrics only`);
      return;
    }
    metrics.render().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (e: unknown) => {
        sendProblem(res, 500, 'INTERNAL_ERROR', `metrics could not be collected: ${e instanceof Error ? e.message : String(e)}`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'EADDRINUSE' ? 'the port is in use; choose another with --metrics-port' : e.code === 'EADDRNOTAVAIL' ? 'the address is not one of this machine’s' : e.code === 'EACCES' ? 'not permitted (ports below 1024 need privileges)' : e.message;
      reject(new UserError(e.code === 'EADDRINUSE' ? 'PORT_IN_USE' : 'LISTEN_FAILED', `cannot serve metrics on ${options.host}:${options.port}: ${why}`, { host: options.host, port: options.port }));
    });
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}/metrics`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
