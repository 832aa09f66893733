/**
 * The live streams over real HTTP (@hono/node-server on a free port): a run's events as SSE, resumed
 * with Last-Event-ID with neither a gap nor a repeat, heartbeats, the end of the run, shutdown and a
 * client that goes away; the list-level stream of run changes with its cursor.
 */
import { serve, type ServerType } from '@hono/node-server';
import { get, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../src/engine/worker.js';
import { createApp } from '../src/server/app.js';
import type { Swarm } from '../src/swarm.js';
import { builtinAgent, EXAMPLES, openProject, removeProject, tempProject, until, writeWorkflow } from './helpers/project.js';

interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/**
 * A client for a text/event-stream: parses events (and counts comments) as they arrive. `next()`
 * waits for the next event; `close()` goes away; `ended` settles when the server ends the stream.
 */
class SseClient {
  readonly events: SseEvent[] = [];
  comments = 0;
  status = 0;
  private readonly abort = new AbortController();
  private waiters: Array<() => void> = [];
  private taken = 0;
  ended!: Promise<void>;

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const c = new SseClient();
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: c.abort.signal });
    c.status = res.status;
    if (!res.ok || !res.body) {
      c.events.push({ event: 'http-error', data: await res.text() });
      c.ended = Promise.resolve();
      return c;
    }
    c.ended = c.read(res.body);
    return c;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          this.parse(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
        }
      }
    } catch {
      // aborted by close()
    } finally {
      this.wake();
    }
  }

  private parse(block: string): void {
    const e: SseEvent = { data: '' };
    const data: string[] = [];
    let isEvent = false;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) this.comments++;
      else if (line.startsWith('data: ')) {
        data.push(line.slice(6));
        isEvent = true;
      }
      else if (line.startsWith('id: ')) e.id = line.slice(4);
      else if (line.startsWith('event: ')) e.event = line.slice(7);
    }
    if (!isEvent) return;
    e.data = data.join('\n');
    this.events.push(e);
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The next event not taken yet (waits for it; undefined when the stream ended first). */
  async next(): Promise<SseEvent | undefined> {
    let done = false;
    void this.ended.then(() => (done = true));
    while (this.taken >= this.events.length) {
      if (done) return undefined;
      await new Promise<void>((r) => this.waiters.push(r));
      await Promise.resolve();
    }
    return this.events[this.taken++];
  }

  close(): void {
    this.abort.abort();
  }
}

let dir: string;
let swarm: Swarm;
let worker: Worker;
let server: ServerType;
let base: string;
const shutdown = new AbortController();
const gates = new Map<string, () => void>();

beforeAll(async () => {
  dir = tempProject('name: sse-test\nsandbox: none\n');
  swarm = await openProject(dir);
  // Waits until the test opens the gate named by its input.
  swarm.defineBuiltin('gate', async (inputs) => {
    await new Promise<void>((r) => gates.set(String((inputs as { name: string }).name), r));
    return { passed: true };
  });
  await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
  await swarm.registerAgent(builtinAgent(dir, 'gate', 'gate'));
  await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'echo-chain'));
  await swarm.registerWorkflow(
    writeWorkflow(dir, 'gated', 'name: gated\nversion: 1.0.0\ninputs:\n  - { name: name, type: string, required: true }\nsteps:\n  - { id: wait, agent: gate, inputs: { name: "${trigger.name}" } }\n  - { id: one, agent: echo, depends_on: [wait], inputs: { message: a } }\n  - { id: two, agent: echo, depends_on: [one], inputs: { message: b } }\n'),
  );
  worker = swarm.worker({ concurrency: 8 });
  const app = createApp(swarm, { shutdown: shutdown.signal, sseHeartbeatMs: 100 });
  server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const open of gates.values()) open();
  shutdown.abort();
  await new Promise<void>((r) => server.close(() => r()));
  await worker.stop(1000);
  await swarm.close();
  removeProject(dir);
});

const seqs = (events: SseEvent[]): number[] => events.filter((e) => e.event === undefined).map((e) => Number(e.id));

describe('GET /api/v1/runs/{id}/stream', () => {
  it('sends the events with their seq as id; a reconnect with Last-Event-ID gets the rest, no gap, no repeat; ends after the run ends', async () => {
    const id = await swarm.startRun('gated', { name: 'resume' });
    const first = await SseClient.open(`${base}/api/v1/runs/${id.slice(-12)}/stream`);
    expect(first.status).toBe(200);
    // Until the gate step started: the run waits there.
    const seen: SseEvent[] = [];
    for (;;) {
      const e = (await first.next()) as SseEvent;
      seen.push(e);
      const doc = JSON.parse(e.data) as { seq: number; type: string; step: string | null };
      expect(doc.seq).toBe(Number(e.id));
      if (doc.type === 'STEP_STARTED' && doc.step === 'wait') break;
    }
    first.close();
    await first.ended;

    // The rest of the run happens while no one listens.
    gates.get('resume')?.();
    expect((await swarm.wait(id)).run.status).toBe('completed');

    const last = seen[seen.length - 1]?.id as string;
    const second = await SseClient.open(`${base}/api/v1/runs/${id}/stream`, { 'last-event-id': last });
    await second.ended;
    const all = [...seqs(seen), ...seqs(second.events)];
    const stored = (await swarm.events(id)).map((e) => e.seq);
    expect(all).toEqual(stored);
    expect(new Set(all).size).toBe(all.length);
    expect(JSON.parse(second.events.at(-2)?.data ?? '{}')).toMatchObject({ type: 'RUN_COMPLETED' });
    expect(second.events.at(-1)).toMatchObject({ event: 'end' });
    expect(JSON.parse(second.events.at(-1)?.data ?? '{}')).toEqual({ run_id: id, status: 'completed', last_seq: stored.at(-1) });

    // ?after= does the same; after the last event there is only the end.
    const tail = await SseClient.open(`${base}/api/v1/runs/${id}/stream?after=${stored.at(-1) ?? 0}`);
    await tail.ended;
    expect(tail.events.map((e) => e.event)).toEqual(['end']);
  });

  it('follows a live run, with heartbeats while it waits; a client that goes away does not hold the server', async () => {
    const id = await swarm.startRun('gated', { name: 'live' });
    const c = await SseClient.open(`${base}/api/v1/runs/${id}/stream`);
    await until(() => gates.has('live'));
    await until(() => c.comments >= 2, 10_000, 'two heartbeats');
    gates.get('live')?.();
    await c.ended;
    expect(c.events.at(-1)).toMatchObject({ event: 'end' });
    expect(seqs(c.events)).toEqual((await swarm.events(id)).map((e) => e.seq));

    // Goes away mid-run (its own connection, not a pooled one): the server's side closes too.
    const id2 = await swarm.startRun('gated', { name: 'leaver' });
    const before = await connections();
    const req = get(`${base}/api/v1/runs/${id2}/stream`, { agent: false });
    const res = await new Promise<IncomingMessage>((resolve) => req.once('response', resolve));
    expect(res.statusCode).toBe(200);
    await new Promise((resolve) => res.once('data', resolve));
    expect(await connections()).toBe(before + 1);
    req.destroy();
    await until(async () => (await connections()) <= before, 10_000, 'the server to drop the connection');
    gates.get('leaver')?.();
  });

  it('unknown run: 404 problem before any stream; a bad Last-Event-ID: 422', async () => {
    const res = await fetch(`${base}/api/v1/runs/0000-nope/stream`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    const id = (await swarm.listRuns({ limit: 1 }))[0]?.id as string;
    const bad = await fetch(`${base}/api/v1/runs/${id}/stream`, { headers: { 'last-event-id': 'abc' } });
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { field: string }).field).toBe('header.last-event-id');
  });
});

describe('GET /api/v1/runs/stream', () => {
  it('sends run changes filtered by workflow; a reconnect with Last-Event-ID gets what changed meanwhile and nothing it had', async () => {
    const c = await SseClient.open(`${base}/api/v1/runs/stream?workflow=gated`);
    expect(c.status).toBe(200);
    const a = await swarm.startRun('gated', { name: 'list-a' });
    const other = await swarm.startRun('echo-chain', { message: 'not this workflow' });
    const got: Array<{ run_id: string; workflow_name: string; status: string; updated_at: number; id: string }> = [];
    while (!got.some((r) => r.run_id === a && r.status === 'running')) {
      const e = (await c.next()) as SseEvent;
      expect(e.event).toBe('run');
      got.push({ ...(JSON.parse(e.data) as { run_id: string; workflow_name: string; status: string; updated_at: number }), id: e.id as string });
    }
    // Only runs of the workflow asked for (a run of an earlier test may still be finishing).
    expect(got.filter((r) => r.workflow_name !== 'gated' || r.run_id === other)).toEqual([]);
    c.close();
    await c.ended;

    // Meanwhile: a finishes, b starts.
    gates.get('list-a')?.();
    await swarm.wait(a);
    const b = await swarm.startRun('gated', { name: 'list-b' });
    await until(() => gates.has('list-b'));

    const again = await SseClient.open(`${base}/api/v1/runs/stream?workflow=gated`, { 'last-event-id': got.at(-1)?.id as string });
    const more: Array<{ run_id: string; status: string; updated_at: number }> = [];
    while (!(more.some((r) => r.run_id === a && r.status === 'completed') && more.some((r) => r.run_id === b && r.status === 'running'))) {
      more.push(JSON.parse(((await again.next()) as SseEvent).data) as { run_id: string; status: string; updated_at: number });
    }
    again.close();
    const key = (r: { run_id: string; updated_at: number }): string => `${r.run_id}@${r.updated_at}`;
    const had = new Set(got.map(key));
    expect(more.filter((r) => had.has(key(r)))).toEqual([]);
    expect(new Set(more.map(key)).size).toBe(more.length);
    gates.get('list-b')?.();

    const bad = await fetch(`${base}/api/v1/runs/stream`, { headers: { 'last-event-id': 'not-a-cursor' } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe('ARGUMENT_INVALID');
  });
});

describe('shutdown', () => {
  it('ends every open stream at once', async () => {
    const id = await swarm.startRun('gated', { name: 'shutdown' });
    const run = await SseClient.open(`${base}/api/v1/runs/${id}/stream`);
    const list = await SseClient.open(`${base}/api/v1/runs/stream`);
    await run.next();
    shutdown.abort();
    await Promise.all([run.ended, list.ended]);
    expect(run.events.some((e) => e.event === 'end')).toBe(false);
  });
});

function connections(): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
}
