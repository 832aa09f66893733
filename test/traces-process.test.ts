/**
 * One trace per run across processes: `swarm run` (configured by OTEL_* only) is killed with
 * SIGKILL in the middle of a step, and `swarm runs resume` in another process finishes the run.
 * Every step span that arrives at the OTLP receiver, from either process, is in the run's trace and
 * a child of the run's span (whose context the first process stored with the run); each process
 * agent saw its own attempt's span in TRACEPARENT. `swarm serve` joins a caller's trace from its
 * `traceparent` header and flushes its spans when SIGTERM drains it.
 *
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOtlpReceiver, traceparentOf, type OtlpReceiver, type ReceivedSpan } from './helpers/otlp.js';
import { exited, removeProject, runCli, spawnCli, tempProject, until, writeAgent, writeWorkflow } from './helpers/project.js';

let otlp: OtlpReceiver;
let dir: string;

beforeAll(async () => {
  otlp = await startOtlpReceiver();
  dir = tempProject('name: test\nsandbox: none\n');
  // Each attempt appends `<step> <attempt> <TRACEPARENT>` to the log; s2's first attempt sleeps 50 s
  // (killed with its worker), every other attempt answers at once.
  writeAgent(
    dir,
    'effect',
    'name: effect\nversion: 1.0.0\nruntime: { type: node, entry: main.js, timeout_seconds: 60 }\ninputs:\n  - { name: log, type: string, required: true }\noutputs:\n  - { name: step, type: string }\n',
    {
      'main.js': `const fs = require('fs');
const [i, o] = process.argv.slice(2);
const { log } = JSON.parse(fs.readFileSync(i, 'utf8'));
const step = process.env.SWARM_STEP_ID, attempt = process.env.SWARM_ATTEMPT;
fs.appendFileSync(log, step + ' ' + attempt + ' ' + process.env.TRACEPARENT + '\\n');
setTimeout(() => fs.writeFileSync(o, JSON.stringify({ step })), step === 's2' && attempt === '1' ? 50000 : 10);
`,
      'package.json': '{"type":"commonjs"}',
    },
  );
  writeWorkflow(
    dir,
    'chain3',
    'name: chain3\nversion: 1.0.0\nsteps:\n  - { id: s1, agent: effect, inputs: { log: "${trigger.log}" } }\n  - { id: s2, agent: effect, depends_on: [s1], inputs: { log: "${trigger.log}" } }\n  - { id: s3, agent: effect, depends_on: [s2], inputs: { log: "${trigger.log}" } }\n',
  );
  writeWorkflow(dir, 'quick', 'name: quick\nversion: 1.0.0\nsteps:\n  - { id: s1, agent: effect, inputs: { log: "${trigger.log}" } }\non_success:\n  - { notify: { type: log, message: "quick done" } }\n');
  expect((await runCli(['agent', 'register', '--all'], dir)).code).toBe(0);
  expect((await runCli(['workflow', 'register', '--all'], dir)).code).toBe(0);
});

afterAll(async () => {
  await otlp.close();
  removeProject(dir);
});

/** Tracing configured by the standard environment only; spans sent 50 ms after they end. */
const otelEnv = (service: string): Record<string, string> => ({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_SERVICE_NAME: service });

function attempts(log: string): Array<{ step: string; attempt: number; traceparent: string }> {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [step = '', attempt, traceparent = ''] = line.split(' ');
      return { step, attempt: Number(attempt), traceparent };
    });
}

describe('a run traced across a SIGKILL and a resume in another process', () => {
  it('every step span of both processes is in the run trace, under the run span; TRACEPARENT names each attempt', async () => {
    const log = join(dir, 'attempts.log');
    const first = spawnCli(['run', 'chain3', JSON.stringify({ log })], dir, otelEnv('swarm-first'));
    await until(() => attempts(log).some((a) => a.step === 's2'), 30_000, "s2's first attempt to start");
    // What the first process had ended by then (the run's span, s1's) is exported within 50 ms.
    const run = await otlp.waitFor('the run span', (all) => all.find((s) => s.name === 'invoke_workflow chain3'));
    await otlp.waitFor("s1's span", (all) => all.find((s) => s.name === 'step s1'));
    first.kill('SIGKILL');
    await exited(first);
    const runId = String(run.attributes['swarm.run.id']);

    const resumed = await runCli(['runs', 'resume', runId], dir, otelEnv('swarm-second'));
    expect(resumed.code, resumed.stderr).toBe(0);
    // The resuming process flushed its spans before exiting.
    const steps = await otlp.waitFor('the step spans of both processes', (all) => {
      const found = all.filter((s) => s.name.startsWith('step '));
      return found.length >= 3 ? found : undefined;
    });

    expect(run.service).toBe('swarm-first');
    expect(run.parentSpanId).toBeUndefined();
    expect(run.attributes).toMatchObject({ 'swarm.run.id': runId, 'swarm.trigger.kind': 'manual', 'swarm.workflow.name': 'chain3' });
    const key = (s: ReceivedSpan): string => `${s.name}#${String(s.attributes['swarm.step.attempt'])}@${s.service}`;
    // s2's first attempt never ended (its process was killed): only ended spans are exported.
    expect(steps.map(key).sort()).toEqual(['step s1#1@swarm-first', 'step s2#2@swarm-second', 'step s3#1@swarm-second']);
    for (const s of steps) {
      expect(s.traceId, key(s)).toBe(run.traceId);
      expect(s.parentSpanId, key(s)).toBe(run.spanId);
      expect(s.attributes).toMatchObject({ 'swarm.run.id': runId, 'swarm.step.status': 'completed' });
      // The run's workflow and trigger are on the run span only; the process that ran the step is the resource's.
      expect(s.attributes['swarm.workflow.name']).toBeUndefined();
      expect(s.resource).toMatchObject({ 'host.name': hostname(), 'process.pid': expect.any(Number) });
    }
    // Two processes ran the steps: the resource names each.
    expect(new Set(steps.map((s) => s.resource['process.pid'])).size).toBe(2);
    expect(steps.find((s) => s.name === 'step s2')?.attributes['swarm.step.reclaimed']).toBe(true);

    // Each agent process got its own attempt's span; the killed attempt's was in the run's trace too.
    const seen = attempts(log);
    expect(seen.map((a) => `${a.step}#${a.attempt}`)).toEqual(['s1#1', 's2#1', 's2#2', 's3#1']);
    for (const a of seen) {
      const span = steps.find((s) => s.name === `step ${a.step}` && s.attributes['swarm.step.attempt'] === a.attempt);
      if (span) expect(a.traceparent, `${a.step}#${a.attempt}`).toBe(traceparentOf(span));
      else expect(a.traceparent).toMatch(new RegExp(`^00-${run.traceId}-[0-9a-f]{16}-01$`));
    }
  });
});

describe('swarm serve with OTEL_* set', () => {
  it("a run created with a traceparent header joins the caller's trace; its JSON log lines name the trace; SIGTERM drains and flushes the spans still buffered", async () => {
    // A batch delay far beyond the test: the spans can only arrive through the flush at shutdown.
    const serve = spawnCli(['serve', '--port', '0'], dir, { ...otelEnv('swarm-serve'), OTEL_BSP_SCHEDULE_DELAY: '600000', SWARM_LOG_FORMAT: 'json' });
    let out = '';
    serve.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    serve.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const url = await until(() => /listening on (http:\/\/[^\s"]+)/.exec(out)?.[1], 20_000, 'the start-up line');
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await fetch(`${url}/api/v1/workflows/quick/runs?wait=30s`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      body: JSON.stringify({ input: { log: join(dir, 'serve.log') } }),
    });
    const body = (await res.json()) as { run_id: string; status: string };
    expect([res.status, body.status]).toEqual([201, 'completed']);
    expect(otlp.spans.filter((s) => s.traceId === traceId)).toEqual([]);
    serve.kill('SIGTERM');
    expect(await exited(serve)).toBe(0);
    const mine = otlp.spans.filter((s) => s.traceId === traceId);
    const run = mine.find((s) => s.name === 'invoke_workflow quick');
    expect(run?.parentSpanId).toBe('00f067aa0ba902b7');
    expect(run?.attributes['swarm.run.id']).toBe(body.run_id);
    expect(mine.find((s) => s.name === 'step s1')?.parentSpanId).toBe(run?.spanId);
    // The handler's, the step's and the run's log lines, written after their commit (outside any span), carry the run's trace id.
    const lines = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.run_id === body.run_id);
    expect(lines.map((l) => [l.step_id ?? null, l.msg === 'quick done' ? 'notify' : null, l.trace_id])).toEqual([
      [null, 'notify', traceId],
      ['s1', null, traceId],
      [null, null, traceId],
    ]);
  });
});

describe('the OTLP encoding (OTEL_EXPORTER_OTLP_PROTOCOL)', () => {
  /** A span as both encodings must give it: ids and other per-run values only by their type. */
  const shape = (sp: ReceivedSpan): unknown => ({
    name: sp.name,
    kind: sp.kind,
    status: sp.status,
    service: sp.service,
    attributes: Object.fromEntries(Object.entries(sp.attributes).map(([k, v]) => [k, /\.id$/.test(k) ? typeof v : v])),
  });

  /** `swarm run quick` with tracing on: its exit code, stderr, and the content types and spans of its run's exports. */
  async function traced(env: Record<string, string>): Promise<{ code: number; stderr: string; types: string[]; spans: unknown[] }> {
    const before = { exports: otlp.exports.length, spans: otlp.spans.length };
    const r = await runCli(['run', 'quick', JSON.stringify({ log: join(dir, 'protocol.log') }), '--json'], dir, { ...otelEnv('swarm-protocol'), ...env });
    const spans = otlp.spans.slice(before.spans).map(shape);
    return { code: r.code ?? -1, stderr: r.stderr, types: [...new Set(otlp.exports.slice(before.exports))], spans: spans.sort((x, y) => ((x as { name: string }).name < (y as { name: string }).name ? -1 : 1)) };
  }

  it('binary protobuf by default, JSON when asked (any letter case; the traces-specific variable wins); the same spans either way', async () => {
    const protobuf = await traced({});
    expect([protobuf.code, protobuf.types]).toEqual([0, ['application/x-protobuf']]);
    expect(protobuf.spans.map((sp) => (sp as { name: string }).name)).toEqual(['invoke_workflow quick', 'step s1']);
    const json = await traced({ OTEL_EXPORTER_OTLP_PROTOCOL: 'HTTP/JSON' });
    expect([json.code, json.types]).toEqual([0, ['application/json']]);
    expect(json.spans).toEqual(protobuf.spans);
    const specific = await traced({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' });
    expect([specific.code, specific.types]).toEqual([0, ['application/x-protobuf']]);
    // An empty traces-specific variable is not set: the general one decides.
    const empty = await traced({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: ' ' });
    expect([empty.code, empty.types]).toEqual([0, ['application/json']]);
    expect(otlp.undecodable).toEqual([]);
  });

  it('gRPC (or any other value) is named in a warning and ignored: the spans go as http/protobuf', async () => {
    const grpc = await traced({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
    expect([grpc.code, grpc.types]).toEqual([0, ['application/x-protobuf']]);
    expect(grpc.stderr).toContain("warning: OTEL_EXPORTER_OTLP_PROTOCOL is 'grpc': Swarm sends OTLP over HTTP only (a collector listens for it on port 4318, for gRPC on 4317); sending http/protobuf");
    expect(grpc.spans).toHaveLength(2);
    const other = await traced({ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'Thrift' });
    expect([other.code, other.types]).toEqual([0, ['application/x-protobuf']]);
    expect(other.stderr).toContain("warning: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL is 'Thrift': Swarm sends http/protobuf or http/json; sending http/protobuf");
  });
});
