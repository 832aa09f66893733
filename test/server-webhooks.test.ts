/**
 * Webhook deliveries and custom events over the HTTP API, in process (`app.request()`): the three
 * signed schemes plus hmac and `auth: none`, dedup by delivery id, every refusal status as a problem
 * document, and nothing written by a refused delivery.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/server/app.js';
import type { Swarm } from '../src/swarm.js';
import { resolveWebhookScheme, signWebhook, type WebhookScheme } from '../src/triggers/index.js';
import { builtinAgent, openProject, removeProject, tempProject, writeWorkflow } from './helpers/project.js';
import { expectProblem } from './helpers/http.js';

type Json = Record<string, unknown>;

const STANDARD_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const GITHUB_SECRET = 'gh-secret-for-tests';
const STRIPE_SECRET = 'whsec_stripe_test_secret';
const HMAC_SECRET = 'hmac-secret-for-tests';
const OLD_SECRET = 'whsec_b2xkIHNlY3JldCBvbGQgc2VjcmV0';

let dir: string;
let swarm: Swarm;
let app: ReturnType<typeof createApp>;
/** What the server logged (not what a sender sees). */
const serverLog: string[] = [];

const SCHEMES: Record<string, WebhookScheme> = {
  standard: resolveWebhookScheme('standard'),
  github: resolveWebhookScheme('github'),
  stripe: resolveWebhookScheme('stripe'),
  hmac: resolveWebhookScheme({ type: 'hmac', header: 'X-Signature', id_header: 'X-Delivery', prefix: 'sha256=' }),
};

async function deliver(path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; json: Json; headers: Headers; type: string }> {
  const res = await app.request(path, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  const text = await res.text();
  let json: Json;
  try {
    json = JSON.parse(text) as Json;
  } catch {
    json = { text };
  }
  return { status: res.status, json, headers: res.headers, type: res.headers.get('content-type') ?? '' };
}

/** A delivery signed as `scheme`'s sender does it. */
function signed(scheme: keyof typeof SCHEMES, secret: string, body: string, options: { id?: string; timestamp?: Date } = {}): Record<string, string> {
  return signWebhook(SCHEMES[scheme] as WebhookScheme, secret, body, options);
}


async function runCount(): Promise<number> {
  return (await swarm.listRuns({ limit: 10_000 })).length;
}

beforeAll(async () => {
  dir = tempProject('name: hooks-test\nsandbox: none\n');
  swarm = await openProject(dir, { env: { SWARM_HOME: `${dir}/.swarm`, SWARM_SECRET_GH_HOOK: GITHUB_SECRET } });
  swarm.defineBuiltin('pass', async (inputs) => ({ got: inputs }));
  await swarm.registerAgent(builtinAgent(dir, 'pass', 'pass'));
  const steps = 'steps:\n  - id: a\n    agent: pass\n';
  const wf = (name: string, trigger: string, extra = ''): string => `name: ${name}\nversion: 1.0.0\ntrigger: ${trigger}\n${extra}${steps}`;
  await swarm.registerWorkflow(
    writeWorkflow(dir, 'orders', wf('orders', '{ type: webhook, path: shop/orders, secret: "${secrets.ORDERS_HOOK}", scheme: standard }', 'inputs:\n  - name: order\n    type: integer\n    required: true\n')),
  );
  await swarm.registerWorkflow(writeWorkflow(dir, 'gh', wf('gh', '{ type: webhook, path: gh, secret: "${secrets.GH_HOOK}", scheme: github }')));
  await swarm.registerWorkflow(writeWorkflow(dir, 'pay', wf('pay', '{ type: webhook, path: pay, secret: "${secrets.STRIPE_HOOK}", scheme: stripe }')));
  await swarm.registerWorkflow(
    writeWorkflow(dir, 'custom', wf('custom', '{ type: webhook, path: custom, secret: "${secrets.HMAC_HOOK}", scheme: { type: hmac, header: X-Signature, id_header: X-Delivery, prefix: "sha256=" } }')),
  );
  await swarm.registerWorkflow(writeWorkflow(dir, 'rotating', wf('rotating', '{ type: webhook, path: rotating, secret: ["${secrets.NEW_HOOK}", "${secrets.OLD_HOOK}"] }')));
  await swarm.registerWorkflow(writeWorkflow(dir, 'open', wf('open', '{ type: webhook, path: open, auth: none }')));
  await swarm.registerWorkflow(writeWorkflow(dir, 'off', wf('off', '{ type: webhook, path: off, auth: none }')));
  await swarm.registerWorkflow(writeWorkflow(dir, 'unset', wf('unset', '{ type: webhook, path: unset, secret: "${secrets.NEVER_SET}" }')));
  await swarm.registerWorkflow(writeWorkflow(dir, 'paid', wf('paid', '{ type: event, on: order.paid, filter: "trigger.data.total > 100" }')));
  // Stored (encrypted) secrets, the workflow's own and a global one; GH_HOOK comes from the environment.
  await swarm.setSecret('ORDERS_HOOK', STANDARD_SECRET, { workflow: 'orders' });
  await swarm.setSecret('STRIPE_HOOK', STRIPE_SECRET);
  await swarm.setSecret('HMAC_HOOK', HMAC_SECRET);
  await swarm.setSecret('NEW_HOOK', STANDARD_SECRET, { workflow: 'rotating' });
  await swarm.setSecret('OLD_HOOK', OLD_SECRET);
  app = createApp(swarm, { version: '9.9.9', maxBodyBytes: 4096, log: (line) => serverLog.push(line) });
});

afterAll(async () => {
  await swarm.close();
  removeProject(dir);
});

describe('webhook deliveries', () => {
  it('standard: a signed delivery starts a run (202, the run document); its redelivery returns it (200, Idempotent-Replayed); the alias route is the same', async () => {
    const body = JSON.stringify({ order: 42 });
    const headers = signed('standard', STANDARD_SECRET, body, { id: 'msg_one' });
    const first = await deliver('/webhooks/shop/orders', body, headers);
    expect(first.status, JSON.stringify(first.json)).toBe(202);
    expect(first.json).toMatchObject({ workflow: 'orders', status: 'queued', trigger: { order: 42 }, idempotency_key: 'webhook:shop/orders:msg_one' });
    const runId = first.json.run_id as string;
    expect(first.headers.get('location')).toBe(`/api/v1/runs/${runId}`);
    const run = (await swarm.getRun(runId)).run;
    expect(run).toMatchObject({ trigger_type: 'webhook', idempotency_key: 'webhook:shop/orders:msg_one', metadata: { webhook: 'shop/orders', delivery_id: 'msg_one' } });

    const again = await deliver('/webhooks/shop/orders', body, headers);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.json.run_id).toBe(runId);
    const alias = await deliver('/workflows/shop/orders/trigger', body, headers);
    expect(alias.status).toBe(200);
    expect(alias.json.run_id).toBe(runId);
    // A new delivery id on the alias: a new run.
    const other = await deliver('/workflows/shop/orders/trigger', body, signed('standard', STANDARD_SECRET, body, { id: 'msg_two' }));
    expect(other.status).toBe(202);
    expect(other.json.run_id).not.toBe(runId);
  });

  it('github, stripe and hmac: each verified its own way; the delivery id is X-GitHub-Delivery, the event id, the configured header', async () => {
    const gh = JSON.stringify({ action: 'opened' });
    const a = await deliver('/webhooks/gh', gh, signed('github', GITHUB_SECRET, gh, { id: 'gh-1' }));
    expect(a.status, JSON.stringify(a.json)).toBe(202);
    expect((await swarm.getRun(a.json.run_id as string)).run.idempotency_key).toBe('webhook:gh:gh-1');
    expect((await deliver('/webhooks/gh', gh, signed('github', GITHUB_SECRET, gh, { id: 'gh-1' }))).json.run_id).toBe(a.json.run_id);

    const evt = JSON.stringify({ id: 'evt_123', type: 'payment_intent.succeeded' });
    const b = await deliver('/webhooks/pay', evt, signed('stripe', STRIPE_SECRET, evt));
    expect(b.status, JSON.stringify(b.json)).toBe(202);
    expect((await swarm.getRun(b.json.run_id as string)).run.idempotency_key).toBe('webhook:pay:evt_123');
    // Stripe signs again with a new timestamp when it retries: still the same event, the same run.
    const retried = await deliver('/webhooks/pay', evt, signed('stripe', STRIPE_SECRET, evt, { timestamp: new Date(Date.now() + 5000) }));
    expect(retried.status).toBe(200);
    expect(retried.json.run_id).toBe(b.json.run_id);

    const h = JSON.stringify({ build: 7 });
    const c = await deliver('/webhooks/custom', h, signed('hmac', HMAC_SECRET, h, { id: 'd-77' }));
    expect(c.status, JSON.stringify(c.json)).toBe(202);
    expect((await swarm.getRun(c.json.run_id as string)).run.idempotency_key).toBe('webhook:custom:d-77');
  });

  it('rotation: a trigger with two secrets accepts deliveries signed with either; a delivery with two signatures passes when one matches', async () => {
    const body = JSON.stringify({ n: 1 });
    expect((await deliver('/webhooks/rotating', body, signed('standard', OLD_SECRET, body))).status).toBe(202);
    expect((await deliver('/webhooks/rotating', body, signed('standard', STANDARD_SECRET, body))).status).toBe(202);
    // Two signatures in one header, as senders send during a rotation: one made with a retired secret.
    const order = JSON.stringify({ order: 1 });
    const headers = signWebhook(SCHEMES.standard as WebhookScheme, ['whsec_cmV0aXJlZCBzZWNyZXQgbm8gbG9uZ2Vy', STANDARD_SECRET], order);
    expect((await deliver('/webhooks/shop/orders', order, headers)).status).toBe(202);
  });

  it('auth: none: no signature needed; an Idempotency-Key header dedups', async () => {
    const one = await deliver('/webhooks/open', '{"x":1}', { 'idempotency-key': 'k-1' });
    expect(one.status).toBe(202);
    const two = await deliver('/webhooks/open', '{"x":1}', { 'idempotency-key': 'k-1' });
    expect(two.status).toBe(200);
    expect(two.json.run_id).toBe(one.json.run_id);
    // No id: every delivery is a new run. An empty body is {}.
    const three = await deliver('/webhooks/open', '');
    expect(three.status).toBe(202);
    expect(three.json).toMatchObject({ trigger: {} });
  });

  it('refusals: 404 unknown path, 401 bad / stale / missing signature, 400 malformed JSON, 422 naming the field, 413 oversized, 409 disabled, 503 secret not set; nothing is written', async () => {
    const before = await runCount();
    const body = JSON.stringify({ order: 5 });
    expectProblem(await deliver('/webhooks/nope', body, signed('standard', STANDARD_SECRET, body)), 404, 'WEBHOOK_NOT_FOUND');
    expectProblem(await deliver('/workflows/nope/trigger', body), 404, 'WEBHOOK_NOT_FOUND');

    const wrong = expectProblem(await deliver('/webhooks/shop/orders', body, signed('standard', 'whsec_d3Jvbmcgc2VjcmV0IGZvciB0ZXN0cw==', body)), 401, 'WEBHOOK_SIGNATURE_MISMATCH');
    expect(JSON.stringify(wrong)).not.toContain(STANDARD_SECRET);
    const stale = signed('standard', STANDARD_SECRET, body, { timestamp: new Date(Date.now() - 301_000) });
    expect(String(expectProblem(await deliver('/webhooks/shop/orders', body, stale), 401, 'WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE').detail)).toContain('tolerance is 300 s');
    expectProblem(await deliver('/webhooks/shop/orders', body), 401, 'WEBHOOK_HEADER_MISSING');
    // The body changed after signing.
    expectProblem(await deliver('/webhooks/shop/orders', JSON.stringify({ order: 6 }), signed('standard', STANDARD_SECRET, body)), 401, 'WEBHOOK_SIGNATURE_MISMATCH');
    expectProblem(await deliver('/webhooks/gh', body, { 'x-hub-signature-256': 'sha256=zz' }), 401, 'WEBHOOK_HEADER_MALFORMED');

    const bad = '{"order": ';
    expectProblem(await deliver('/webhooks/shop/orders', bad, signed('standard', STANDARD_SECRET, bad)), 400, 'JSON_INVALID');
    const typed = JSON.stringify({ order: 'forty-two' });
    const p = expectProblem(await deliver('/webhooks/shop/orders', typed, signed('standard', STANDARD_SECRET, typed)), 422, 'INPUT_INVALID');
    expect(p.field).toBe('order');
    const missing = JSON.stringify({});
    expect(expectProblem(await deliver('/webhooks/shop/orders', missing, signed('standard', STANDARD_SECRET, missing)), 422, 'INPUT_INVALID').field).toBe('order');

    const big = JSON.stringify({ order: 1, pad: 'x'.repeat(5000) });
    expectProblem(await deliver('/webhooks/shop/orders', big, signed('standard', STANDARD_SECRET, big)), 413, 'LIMIT_EXCEEDED');

    // The sender learns the webhook is not configured, not which secret; the server's log says which and how to set it.
    const unset = await deliver('/webhooks/unset', body, signed('standard', STANDARD_SECRET, body));
    expect(expectProblem(unset, 503, 'WEBHOOK_SECRET_MISSING')).toEqual({
      type: 'urn:swarm:problem:webhook-secret-missing',
      title: 'Service Unavailable',
      status: 503,
      code: 'WEBHOOK_SECRET_MISSING',
      detail: 'the webhook is not configured: the server cannot verify deliveries yet; try again later',
    });
    expect(JSON.stringify(unset.json) + JSON.stringify([...unset.headers])).not.toMatch(/NEVER_SET|secrets|unset/i);
    expect(serverLog.join('\n')).toMatch(/WEBHOOK_SECRET_MISSING.*its secret NEVER_SET is not set; set it with 'swarm secrets set NEVER_SET --workflow unset' \(or PUT \/api\/v1\/secrets\/NEVER_SET, or SWARM_SECRET_NEVER_SET in the server's environment\)/);
    expect(await runCount()).toBe(before);
  });

  it('a disabled workflow: new deliveries 409; a redelivery of one that started a run still gets it (200)', async () => {
    const first = await deliver('/webhooks/off', '{}', { 'idempotency-key': 'before' });
    expect(first.status).toBe(202);
    await swarm.setWorkflowEnabled('off', false);
    try {
      const before = await runCount();
      const refused = expectProblem(await deliver('/webhooks/off', '{}', { 'idempotency-key': 'after' }), 409, 'WEBHOOK_DISABLED');
      expect(refused).toMatchObject({ detail: 'workflow off is disabled: the webhook at /webhooks/off (workflow off) starts no runs until it is enabled', hint: 'POST /api/v1/workflows/off/enable enables it' });
      const again = await deliver('/webhooks/off', '{}', { 'idempotency-key': 'before' });
      expect(again.status).toBe(200);
      expect(again.json.run_id).toBe(first.json.run_id);
      expect(await runCount()).toBe(before);
    } finally {
      await swarm.setWorkflowEnabled('off', true);
    }
  });

  it('GET /webhooks and /api/v1/webhooks list paths, workflows, schemes and auth, never secrets', async () => {
    const res = await app.request('/webhooks');
    expect(res.status).toBe(200);
    const text = await res.text();
    const { webhooks } = JSON.parse(text) as { webhooks: Json[] };
    expect(webhooks.map((w) => w.path)).toEqual(['custom', 'gh', 'off', 'open', 'pay', 'rotating', 'shop/orders', 'unset']);
    expect(webhooks.find((w) => w.path === 'shop/orders')).toEqual({
      path: 'shop/orders',
      url: '/webhooks/shop/orders',
      workflow: 'orders',
      version: '1.0.0',
      enabled: true,
      auth: 'signature',
      scheme: 'standard',
      delivery_id: 'webhook-id header',
    });
    expect(webhooks.find((w) => w.path === 'open')).toMatchObject({ auth: 'none', scheme: null, delivery_id: 'Idempotency-Key header' });
    for (const s of [STANDARD_SECRET, GITHUB_SECRET, STRIPE_SECRET, HMAC_SECRET, OLD_SECRET, 'ORDERS_HOOK', 'secrets.']) expect(text).not.toContain(s);
    expect(await (await app.request('/api/v1/webhooks')).text()).toBe(text);
    // Documented in the OpenAPI document.
    const doc = (await (await app.request('/api/v1/openapi.json')).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/webhooks/{path}', '/workflows/{path}/trigger', '/webhooks', '/api/v1/webhooks', '/api/v1/events', '/api/v1/events/triggers']));
  });
});

describe('POST /api/v1/events', () => {
  it('raises a custom event: 201 with the runs it started; the same id again starts none (200); Idempotency-Key works as the id', async () => {
    const post = (body: unknown, headers: Record<string, string> = {}): ReturnType<typeof deliver> => deliver('/api/v1/events', JSON.stringify(body), headers);
    const first = await post({ name: 'order.paid', data: { total: 150 }, id: 'evt-1' });
    expect(first.status, JSON.stringify(first.json)).toBe(201);
    expect(first.json).toMatchObject({ event_id: 'evt-1', name: 'order.paid', skipped: [] });
    expect(first.json.runs).toHaveLength(1);
    const again = await post({ name: 'order.paid', data: { total: 150 }, id: 'evt-1' });
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.json.runs).toEqual(first.json.runs);
    expect(await swarm.listRuns({ workflow: 'paid' })).toHaveLength(1);

    const keyed = await post({ name: 'order.paid', data: { total: 10 } }, { 'idempotency-key': 'evt-k' });
    expect(keyed.status).toBe(201);
    expect(keyed.json).toMatchObject({ event_id: 'evt-k', runs: [] });
    const generated = await post({ name: 'order.paid' });
    expect(generated.status).toBe(201);
    expect(generated.json.event_id).toMatch(/^[0-9a-f-]{36}$/);

    const triggers = (await (await app.request('/api/v1/events/triggers')).json()) as { triggers: Json[] };
    expect(triggers).toEqual({ triggers: [{ workflow: 'paid', version: '1.0.0', on: 'order.paid', source: null, filter: 'trigger.data.total > 100', enabled: true }] });

    expectProblem(await post({ name: 'run.completed', data: {} }), 422, 'EVENT_NAME_RESERVED');
    expectProblem(await post({ name: 'order.refunded', id: 'evt-1' }), 422, 'EVENT_ID_REUSED');
    expect(expectProblem(await post({ data: {} }), 422, 'VALIDATION_FAILED').field).toBe('name');
    expectProblem(await deliver('/api/v1/events', '{"name": '), 400, 'JSON_INVALID');
    expectProblem(await post({ name: 'order.paid', id: 'a' }, { 'idempotency-key': 'b' }), 422, 'EVENT_ID_INVALID');
    expect(await swarm.listRuns({ workflow: 'paid' })).toHaveLength(1);
  });
});
