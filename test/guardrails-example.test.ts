/**
 * The guardrails example (examples/agents/researcher, examples/workflows/research), end to end and
 * offline: registered from examples/ and driven through the CLI against the fake vendor server over
 * real HTTP, with the real OpenAI client. Three stories: a page with an injection is sanitised and
 * the e-mail it asked for waits for a person; a failing model opens its breaker and the fallback
 * answers; a conversation that goes round in circles stops at its budget.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeLlmServer, type FakeLlmServer, type RecordedRequest } from '../src/testing/fake-llm-server.js';
import { EXAMPLES, removeProject, runCli, tempProject, type CliResult } from './helpers/project.js';

const SLOW = 120_000;
let dir: string;
let fake: FakeLlmServer;
let env: Record<string, string>;

async function cli(args: string[]): Promise<CliResult> {
  const r = await runCli(args, dir, env);
  return { ...r, stdout: stripVTControlCharacters(r.stdout), stderr: stripVTControlCharacters(r.stderr) };
}
async function ok(args: string[]): Promise<CliResult> {
  const r = await cli(args);
  expect(r.code, `swarm ${args.join(' ')}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).toBe(0);
  return r;
}
const bodyOf = (q: RecordedRequest | undefined) => q?.body as { model: string; messages: Array<{ role: string; content: string | null; tool_call_id?: string }> };
const events = async (run: string): Promise<Array<{ type: string; data: Record<string, unknown> }>> =>
  (await ok(['runs', 'events', run, '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; data: Record<string, unknown> });

async function project(swarmYaml: string): Promise<void> {
  dir = tempProject(swarmYaml);
  fake = await startFakeLlmServer();
  env = { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl, OUTBOX_FILE: join(dir, 'outbox.jsonl') };
  await ok(['agent', 'register', join(EXAMPLES, 'agents', 'researcher')]);
  await ok(['workflow', 'register', join(EXAMPLES, 'workflows', 'research')]);
}

beforeEach(() => {
  dir = '';
});
afterEach(async () => {
  await fake?.close();
  if (dir) removeProject(dir);
});

describe('the guardrails example', () => {
  it(
    'injection policy: the page is sanitised before the model sees it, and the e-mail it led to waits for a person',
    async () => {
      await project('name: demo\n');
      fake.push(
        { toolCalls: [{ id: 'c1', name: 'fetch_page', arguments: { url: 'https://example.com/pricing' } }] },
        { toolCalls: [{ id: 'c2', name: 'send_email', arguments: { to: 'ada@example.com', subject: 'Team plan', body: '12 EUR per user per month' } }] },
      );
      const started = await ok(['run', 'research', JSON.stringify({ question: 'What does the Team plan cost? E-mail the answer to ada@example.com.' })]);
      const runId = /run (\S+) waiting/.exec(started.stderr)?.[1] ?? '';
      expect(runId, started.stderr).toMatch(/^[0-9a-f]{12}$/);
      // What the model saw of the page: the instruction-like text cut out, the rest intact.
      const page = bodyOf(fake.requests[1]).messages.find((m) => m.tool_call_id === 'c1')?.content ?? '';
      expect(page).toContain('The Team plan costs 12 EUR per user per month');
      expect(page).not.toContain('Ignore all previous instructions');
      expect(page).toContain('[removed');
      // The sensitive tool did not run: it waits for approval, because the page is untrusted content.
      expect(existsSync(env.OUTBOX_FILE as string)).toBe(false);
      const pending = JSON.parse((await ok(['approvals', '--run', runId, '--json'])).stdout) as Array<{ tool: string }>;
      expect(pending.map((p) => p.tool)).toEqual(['send_email']);
      const fired = (await events(runId)).filter((e) => e.type === 'GUARDRAIL_TRIGGERED').map((e) => [e.data.guardrail, e.data.action]);
      expect(fired).toEqual(expect.arrayContaining([['injection', 'sanitize'], ['sensitive_tool', 'approve']]));

      await ok(['approve', runId, 'answer', '--by', 'ops']);
      fake.push({ content: 'Sent: the Team plan costs 12 EUR per user per month.' });
      const resumed = await ok(['runs', 'resume', runId]);
      expect(resumed.stderr).toContain(`run ${runId} completed`);
      const outbox = readFileSync(env.OUTBOX_FILE as string, 'utf8').trim().split('\n');
      expect(outbox).toHaveLength(1);
      expect(JSON.parse(outbox[0] as string)).toMatchObject({ to: 'ada@example.com', subject: 'Team plan' });
    },
    SLOW,
  );

  it(
    'circuit breaker: a failing model opens its breaker; the step retries and the fallback model answers',
    async () => {
      // No client retries, so one 503 is one failed call.
      await project('name: demo\nproviders:\n  openai: { max_retries: 0 }\n');
      fake.push({ status: 503 }, { content: 'The Team plan costs 12 EUR per user per month.' });
      const r = await ok(['run', 'research', JSON.stringify({ question: 'What does the Team plan cost?' })]);
      expect(r.stderr).toMatch(/run \S+ completed/);
      expect(fake.requests.map((q) => bodyOf(q).model)).toEqual(['gpt-4o-mini', 'gpt-4o']);
      const breakers = JSON.parse((await ok(['breakers', 'list', '--json'])).stdout) as Array<{ key: string; state: string }>;
      expect(breakers).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'model:openai/gpt-4o-mini', state: 'open' })]));
      const runId = /run (\S+) completed/.exec(r.stderr)?.[1] ?? '';
      expect((await events(runId)).filter((e) => e.type === 'CIRCUIT_CHANGED').map((e) => e.data.to)).toContain('open');
    },
    SLOW,
  );

  it(
    'budget: a conversation that goes round in circles stops before its fifth model call; the run fails with exit 4 naming the limit',
    async () => {
      await project('name: demo\n');
      for (let i = 0; i < 6; i++) fake.push({ toolCalls: [{ id: `a${i}`, name: 'fetch_page', arguments: { url: 'https://example.com/about' } }] });
      const r = await cli(['run', 'research', JSON.stringify({ question: 'Who are you?' })]);
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toContain("budget exceeded: model_calls of the budget of agent 'researcher': 4 used");
      expect(fake.requests).toHaveLength(4);
    },
    SLOW,
  );
});
