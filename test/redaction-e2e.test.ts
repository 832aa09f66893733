/**
 * Data classification and redaction end to end, in real processes: one value of every class is
 * planted in a run's input, an LLM tool's result, the model's reply (from the fake vendor server,
 * through the real OpenAI client) and a process agent's output; the run goes through `swarm serve`
 * (real HTTP, JSON logs, spans exported to a real OTLP receiver with content capture on). Then every
 * output is searched for the raw values: the API's documents, `runs show --json`, the step logs,
 * the transcript, the SQLite database file and its WAL, the JSON logs, the spans, and a retention
 * archive. The placeholders and masks are where the values were.
 *
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeLlmServer, type FakeLlmServer } from '../src/testing/fake-llm-server.js';
import { startOtlpReceiver, type OtlpReceiver } from './helpers/otlp.js';
import { ARGS_EMAIL, expectNoneInBytes, expectNoneOf, PLACEHOLDERS, POLICY_YAML, REPLY_TEXT, SECRET_VALUE, INPUT, writePiiProject } from './helpers/planted.js';
import { exited, removeProject, runCli, spawnCli, tempProject, until } from './helpers/project.js';

let dir: string;
let fake: FakeLlmServer;
let otlp: OtlpReceiver;

beforeAll(async () => {
  fake = await startFakeLlmServer();
  otlp = await startOtlpReceiver();
  dir = tempProject(`name: pii\nsandbox: none\n${POLICY_YAML}`);
  writePiiProject(dir);
});
afterAll(async () => {
  await fake.close();
  await otlp.close();
  removeProject(dir);
});

const env = (): Record<string, string> => ({
  OPENAI_API_KEY: 'sk-test',
  OPENAI_BASE_URL: fake.openaiBaseUrl,
  SWARM_SECRET_PLANTED: SECRET_VALUE,
  OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
  OTEL_BSP_SCHEDULE_DELAY: '50',
  OTEL_SERVICE_NAME: 'swarm-pii',
  OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'true',
  SWARM_LOG_FORMAT: 'json',
});

describe('planted values of every class', () => {
  it('appear in no output: API, CLI, logs, transcript, database file and WAL, JSON logs, spans, archive', async () => {
    expect((await runCli(['agent', 'register', '--all'], dir, env())).code).toBe(0);
    expect((await runCli(['workflow', 'register', '--all'], dir, env())).code).toBe(0);
    fake.push({ toolCalls: [{ id: 'call_1', name: 'lookup', arguments: { user: ARGS_EMAIL } }] }, { content: REPLY_TEXT });

    const serve = spawnCli(['serve', '--port', '0'], dir, env());
    let logs = '';
    serve.stdout?.on('data', (d: Buffer) => (logs += d.toString()));
    serve.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
    const outputs: Record<string, string> = {};
    let runId = '';
    try {
      const url = await until(() => /listening on (http:\/\/[^\s"]+)/.exec(logs)?.[1], 20_000, 'the start-up line');
      const started = await fetch(`${url}/api/v1/workflows/pii/runs?wait=30s`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: INPUT }) });
      outputs['POST /runs'] = await started.text();
      const body = JSON.parse(outputs['POST /runs']) as { run_id: string; status: string };
      expect([started.status, body.status], outputs['POST /runs']).toEqual([201, 'completed']);
      runId = body.run_id;
      for (const path of [`runs/${runId}`, `runs/${runId}/steps`, `runs/${runId}/events`, `runs/${runId}/logs`, `runs/${runId}/steps/chat/transcript`]) {
        const res = await fetch(`${url}/api/v1/${path}`);
        outputs[`GET ${path}`] = await res.text();
        expect(res.status, outputs[`GET ${path}`]).toBe(200);
      }
      // The model saw the real tool result (what it sees is configured apart): the plant reached it.
      expect(JSON.stringify(fake.requests[1]?.body)).toContain('tool.result@example.org');
      // Read the database and its WAL while the server still holds them open.
      const db = join(dir, '.swarm', 'swarm.db');
      expectNoneInBytes('the database file', readFileSync(db));
      if (existsSync(`${db}-wal`)) expectNoneInBytes('the WAL', readFileSync(`${db}-wal`));
    } finally {
      serve.kill('SIGTERM');
      await exited(serve);
    }
    outputs['serve JSON logs'] = logs;
    expect(logs).toContain('"level"');

    const show = await runCli(['runs', 'show', runId, '--json'], dir, env());
    expect(show.code, show.stderr).toBe(0);
    outputs['runs show --json'] = show.stdout;
    outputs['runs show'] = (await runCli(['runs', 'show', runId], dir, env())).stdout;
    outputs['runs logs'] = (await runCli(['runs', 'logs', runId], dir, env())).stdout;
    const transcript = JSON.parse(outputs[`GET runs/${runId}/steps/chat/transcript`]!) as { session: { id: string } };
    const session = await runCli(['sessions', 'show', transcript.session.id, '--json'], dir, env());
    expect(session.code, session.stderr).toBe(0);
    outputs['sessions show --json'] = session.stdout;

    // Spans with content: the model's messages are on them (through the redaction).
    const spans = await otlp.waitFor('a span with the model reply', (all) => (JSON.stringify(all).includes('Found them') ? all : undefined));
    outputs.spans = JSON.stringify(spans);

    const db = join(dir, '.swarm', 'swarm.db');
    expectNoneInBytes('the database file (closed)', readFileSync(db));
    if (existsSync(`${db}-wal`)) expectNoneInBytes('the WAL (closed)', readFileSync(`${db}-wal`));

    // A retention archive of the run (made old first).
    const sql = new Database(db);
    try {
      sql.prepare('UPDATE workflow_runs SET created_at = created_at - ?, completed_at = completed_at - ? WHERE id = ?').run(40 * 86_400_000, 40 * 86_400_000, runId);
    } finally {
      sql.close();
    }
    mkdirSync(join(dir, 'archive'), { recursive: true });
    const gc = await runCli(['gc', '--older-than', '30d', '--archive', 'archive/runs.jsonl'], dir, env());
    expect(gc.code, gc.stderr).toBe(0);
    outputs.archive = readFileSync(join(dir, 'archive', 'runs.jsonl'), 'utf8');
    expect(outputs.archive).toContain(runId);

    for (const [where, text] of Object.entries(outputs)) expectNoneOf(where, text);
    // Where the values were, their placeholders and masks are.
    const all = [outputs['runs show --json'], outputs['sessions show --json'], outputs['runs logs']].join('\n');
    for (const p of PLACEHOLDERS) expect(all, p).toContain(p);
    expect(outputs.archive).toContain('[DROPPED:employee_id]');
    expect(outputs.spans).toContain('[TOKEN]');
    expect(outputs[`GET runs/${runId}`]).toContain('****1111');
  }, 90_000);
});
