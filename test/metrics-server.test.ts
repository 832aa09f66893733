/**
 * The metrics port of `swarm worker --metrics-port` in process (`startMetricsServer`): `GET /metrics`
 * is the exposition; anything else is a 404 problem document naming the request, as `swarm serve`
 * answers an unknown route; a registry that fails to render is a 500 problem document.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startMetricsServer, type MetricsServer } from '../src/observability/metrics-server.js';

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const metrics = (render: () => Promise<string>) => ({ render, contentType: 'text/plain; version=0.0.4; charset=utf-8' });

describe('the worker metrics port', () => {
  it('serves GET and HEAD /metrics; any other method or path is a 404 problem naming the method and path', async () => {
    server = await startMetricsServer(metrics(async () => 'swarm_up 1\n'), { host: '127.0.0.1', port: 0 });
    const ok = await fetch(server.url);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('swarm_up 1\n');
    expect((await fetch(server.url, { method: 'HEAD' })).status).toBe(200);
    const base = server.url.replace(/\/metrics$/, '');
    for (const [method, path] of [['GET', '/'], ['GET', '/other?x=1'], ['POST', '/metrics'], ['DELETE', '/metrics/x']] as const) {
      const r = await fetch(`${base}${path}`, { method });
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.headers.get('content-type')).toBe('application/problem+json');
      const shown = path.split('?')[0] as string;
      expect(await r.json()).toEqual({
        type: 'urn:swarm:problem:route-not-found',
        title: 'Not Found',
        status: 404,
        code: 'ROUTE_NOT_FOUND',
        detail: `no route ${method} ${shown}; this port serves GET /metrics only`,
      });
    }
  });

  it('a registry that cannot render is a 500 problem saying so', async () => {
    server = await startMetricsServer(
      metrics(async () => {
        throw new Error('store gauges timed out');
      }),
      { host: '127.0.0.1', port: 0 },
    );
    const r = await fetch(server.url);
    expect(r.status).toBe(500);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(await r.json()).toMatchObject({ status: 500, code: 'INTERNAL_ERROR', detail: 'metrics could not be collected: store gauges timed out' });
  });
});
