/**
 * Webhook deliveries against a real `swarm serve` process killed with SIGKILL in the middle of a
 * burst: every delivery that got a 2xx has exactly one run, and redelivering every delivery (also
 * those that got no answer) starts no second run for any of them.
 *
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveWebhookScheme, signWebhook } from '../src/triggers/index.js';
import { cleanupSandboxes, examplesStore, makeSandbox, show, until, type CliResult, type Sandbox } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const DELIVERIES = 240;
const CLIENTS = 8;

interface Served {
  url: string;
  child: ChildProcess;
  done: Promise<CliResult>;
}

async function serve(s: Sandbox): Promise<Served> {
  const { child, done } = s.start(['serve', '--port', '0', '--no-worker'], { timeoutMs: 60_000 });
  let out = '';
  child.stdout?.on('data', (d: Buffer | string) => (out += String(d)));
  child.stderr?.on('data', (d: Buffer | string) => (out += String(d)));
  const url = await until('the start-up line', async () => /listening on (http:\/\/\S+)/.exec(out)?.[1], 20_000, 25);
  return { url, child, done };
}

interface Delivery {
  id: string;
  body: string;
  headers: Record<string, string>;
}

/** POST one delivery; the status and run id, or null when the connection failed (the server died). */
async function send(url: string, d: Delivery): Promise<{ status: number; runId: string } | null> {
  try {
    const res = await fetch(`${url}/webhooks/burst`, { method: 'POST', body: d.body, headers: { 'content-type': 'application/json', ...d.headers } });
    const json = (await res.json()) as { run_id?: string };
    return { status: res.status, runId: json.run_id ?? '' };
  } catch {
    return null;
  }
}

describe('webhook deliveries across a SIGKILL of swarm serve', () => {
  it('every 2xx has exactly one run; redelivering everything starts no second run', async () => {
    const s = makeSandbox({ env: { SWARM_SANDBOX: 'none', SWARM_SECRET_HOOK: SECRET } });
    s.copyStore(await examplesStore());
    s.write('workflows/burst/workflow.yaml', 'name: burst\nversion: 1.0.0\ntrigger: { type: webhook, path: burst, secret: "${secrets.HOOK}" }\nsteps:\n  - id: a\n    agent: echo\n    inputs:\n      message: ${trigger.n}\n');
    const reg = await s.run(['workflow', 'register', 'workflows/burst']);
    expect(reg.code, show(reg)).toBe(0);

    const scheme = resolveWebhookScheme('standard');
    const deliveries: Delivery[] = Array.from({ length: DELIVERIES }, (_, i) => {
      const body = JSON.stringify({ n: `delivery ${i}` });
      const id = `msg_${i}`;
      return { id, body, headers: signWebhook(scheme, SECRET, body, { id }) };
    });

    // Phase 1: several clients deliver at once; the server is killed once a third have been answered.
    const first = await serve(s);
    const answers = new Map<string, { status: number; runId: string } | null>();
    let next = 0;
    let killed = false;
    const client = async (): Promise<void> => {
      while (next < deliveries.length) {
        const d = deliveries[next++] as Delivery;
        const a = await send(first.url, d);
        answers.set(d.id, a);
        if (!killed && [...answers.values()].filter((x) => x && x.status < 300).length >= DELIVERIES / 3) {
          killed = true;
          first.child.kill('SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    const result = await first.done;
    expect(result.signal, show(result)).toBe('SIGKILL');

    const ok = [...answers].filter(([, a]) => a !== null && a.status < 300);
    const unanswered = [...answers].filter(([, a]) => a === null);
    expect(ok.length).toBeGreaterThanOrEqual(DELIVERIES / 3);
    expect(unanswered.length, 'the kill cut some deliveries off').toBeGreaterThan(0);
    expect([...answers.values()].every((a) => a === null || a.status === 202), 'every answer was a new run').toBe(true);
    const runsByKey = (): Map<string, string[]> => {
      const m = new Map<string, string[]>();
      for (const r of s.query<{ id: string; idempotency_key: string }>(`SELECT id, idempotency_key FROM workflow_runs WHERE workflow_name = 'burst'`)) {
        m.set(r.idempotency_key, [...(m.get(r.idempotency_key) ?? []), r.id]);
      }
      return m;
    };
    const afterKill = runsByKey();
    for (const [id, a] of ok) expect(afterKill.get(`webhook:burst:${id}`), id).toEqual([a?.runId]);

    // Phase 2: a new server on the same store; every delivery is sent again (as a sender retries).
    const second = await serve(s);
    try {
      const again = await Promise.all(deliveries.map(async (d) => [d.id, await send(second.url, d)] as const));
      for (const [id, a] of again) {
        expect(a, id).not.toBeNull();
        const before = afterKill.get(`webhook:burst:${id}`);
        if (before) {
          // It had a run (answered or not): that run, not a new one.
          expect(a, id).toEqual({ status: 200, runId: before[0] });
        } else expect(a?.status, id).toBe(202);
      }
      const final = runsByKey();
      expect(final.size).toBe(DELIVERIES);
      for (const d of deliveries) expect(final.get(`webhook:burst:${d.id}`), d.id).toHaveLength(1);
    } finally {
      second.child.kill('SIGTERM');
      await second.done;
    }
  });
});
