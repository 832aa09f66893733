/**
 * The floor of the HTTP bench: the same `POST /api/v1/workflows/{name}/runs` and `POST
 * /webhooks/{path}` served by a bare `node:http` handler around the library (`swarm.createRun()`,
 * `swarm.deliverWebhook()`), with none of `swarm serve`'s stack (no router, no token check, no
 * request schema, no body limit, no problem documents; metrics on, as `swarm serve` has them). What
 * Node's own HTTP server costs on top of the library, the least a server of this API on Node does.
 * For information (bench/http.ts, measurements `node-http` and `node-webhook`); not a way to run Swarm.
 *
 *   SWARM_HOME=<home> SWARM_SECRET_BENCH_HOOK=<key> node dist/bench/http-bare.js
 *     (in a prepared bench project, bench/http-project.ts; prints "listening on <url>")
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UserError } from '../src/core/errors.js';
import { Swarm, type RunDetails } from '../src/swarm.js';
import { WEBHOOK_STATUS } from '../src/triggers/webhook-delivery.js';
import { runJson } from '../src/views/run.js';

const ROUTE = /^\/api\/v1\/workflows\/([^/?]+)\/runs$/;
const HOOK = /^\/webhooks\/([^?]+)$/;

/** A created run's answer: its document, as `swarm serve` answers. */
async function answer(res: ServerResponse, status: number, runId: string, details: RunDetails | undefined): Promise<void> {
  const text = JSON.stringify(runJson(details ?? (await swarm.getRun(runId))));
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), location: `/api/v1/runs/${runId}` }).end(text);
}

const swarm = await Swarm.open({ cwd: process.cwd(), env: process.env, overrides: { durability: 'full' } });
// Counted as `swarm serve` counts (its metrics are on unless swarm.yaml turns them off): the floor
// leaves out the HTTP stack, not what the store's commits pay for.
if (swarm.config.metrics.enabled) await swarm.enableMetrics();
const server = createServer((req, res) => {
  const run = req.method === 'POST' ? ROUTE.exec(req.url ?? '') : null;
  const hook = req.method === 'POST' && !run ? HOOK.exec(req.url ?? '') : null;
  if (!run && !hook) {
    res.writeHead(404).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    void (async () => {
      try {
        const body = Buffer.concat(chunks);
        if (run) {
          const { input } = JSON.parse(body.toString('utf8')) as { input?: unknown };
          const { runId, details } = await swarm.createRun(decodeURIComponent(run[1] as string), input ?? {}, { trigger_type: 'api' });
          await answer(res, 201, runId, details);
        } else {
          // The raw bytes and Node's own header record: what the signature check reads.
          const out = await swarm.deliverWebhook(decodeURIComponent(hook?.[1] as string), { headers: req.headers, body });
          await answer(res, out.created ? 202 : 200, out.runId, out.details);
        }
      } catch (e) {
        const status = e instanceof UserError ? (WEBHOOK_STATUS[e.code] ?? 400) : 500;
        res.writeHead(status, { 'content-type': 'text/plain' }).end((e as Error).message);
      }
    })();
  });
});
server.listen(0, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`));
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void swarm.close().then(() => process.exit(0));
});
