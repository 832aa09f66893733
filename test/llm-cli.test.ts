/**
 * LLM agents from the command line, against the fake vendor server over real HTTP: `swarm chat`
 * (streamed, one-shot and interactive, continued sessions), `swarm run` of an llm step with an
 * approval, `swarm approvals | approve | reject`, `swarm sessions list | show`.
 */
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeLlmServer, type FakeLlmServer } from '../src/testing/fake-llm-server.js';
import { cliEnv, registerPackages, removeProject, runCli as runCliRaw, tempProject, writeAgent, writeWorkflow, type CliResult } from './helpers/project.js';

/** The CLI with colours taken out of its output. */
async function runCli(args: string[], cwd: string, e: Record<string, string> = {}, input?: string): Promise<CliResult> {
  const r = await runCliRaw(args, cwd, e, input);
  return { ...r, stdout: stripVTControlCharacters(r.stdout), stderr: stripVTControlCharacters(r.stderr) };
}

let dir: string;
let fake: FakeLlmServer;
let env: Record<string, string>;

const TOOLS = `export const lookup = {
  name: 'lookup_order',
  description: 'Find an order',
  parameters: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
  execute: ({ id }) => ({ id, status: 'shipped' }),
};
export const refund = {
  name: 'refund',
  description: 'Refund an order',
  parameters: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
  execute: ({ id }) => ({ refunded: id }),
};
`;

beforeEach(async () => {
  dir = tempProject();
  fake = await startFakeLlmServer();
  env = { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl };
  writeAgent(
    dir,
    'support',
    'name: support\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: gpt-4o-mini }\ninstructions: You help with orders.\ntools:\n  - module: tools.mjs\n    export: lookup\n  - module: tools.mjs\n    export: refund\n    needs_approval: true\n',
    { 'tools.mjs': TOOLS },
  );
  writeWorkflow(dir, 'ask', 'name: ask\nversion: 1.0.0\nsteps:\n  - { id: answer, agent: support, inputs: { message: "${trigger.q}" } }\n');
  // The fixtures, registered through the library (what the CLI's `register --all` does; the tests
  // below are about chat, runs and approvals).
  expect(await registerPackages(dir, cliEnv(dir, env))).toEqual(['support', 'ask']);
});
afterEach(async () => {
  await fake.close();
  removeProject(dir);
});

describe('llm agents from the CLI', () => {
  it('swarm chat -m streams the answer and shows tool calls; the session is listed and shown', async () => {
    fake.push({ toolCalls: [{ id: 'call_l', name: 'lookup_order', arguments: { id: '17' } }] }, { content: 'Order 17 has shipped.\nAnything else?' });
    const r = await runCli(['chat', 'support', '-m', 'Where is order 17?'], dir, env);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('support: Order 17 has shipped.\nAnything else?\n');
    expect(r.stderr).toContain('→ lookup_order({"id":"17"})');
    expect(r.stderr).toContain('← lookup_order: {"id":"17","status":"shipped"}');
    expect(fake.requests.every((q) => (q.body as { stream?: boolean }).stream === true)).toBe(true);
    const sessionId = /session (chat-\S+)/.exec(r.stderr)?.[1] ?? '';
    expect(sessionId).not.toBe('');

    const list = JSON.parse((await runCli(['sessions', 'list', '--json'], dir, env)).stdout) as Array<{ id: string; status: string; turns: number }>;
    expect(list).toMatchObject([{ id: sessionId, status: 'completed', turns: 2 }]);
    const shown = JSON.parse((await runCli(['sessions', 'show', sessionId, '--json'], dir, env)).stdout) as { messages: Array<{ role: string; content: string | null }>; tool_calls: Array<{ name: string }> };
    expect(shown.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
    expect(shown.tool_calls.map((t) => t.name)).toEqual(['lookup_order']);
    const text = await runCli(['sessions', 'show', sessionId], dir, env);
    expect(text.stdout).toContain('user: Where is order 17?');
    expect(text.stdout).toContain('support: Order 17 has shipped.');

    // Continue the same conversation later: the model sees what was said before.
    fake.push({ content: 'You are welcome.' });
    const more = await runCli(['chat', 'support', '--session', sessionId, '-m', 'Thanks!'], dir, env);
    expect(more.stdout).toBe('support: You are welcome.\n');
    const last = fake.requests.at(-1)?.body as { messages: Array<{ role: string; content: unknown }> };
    expect(last.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'assistant', 'user']);
    expect((await runCli(['chat', 'support', '--session', 'chat-nope', '-m', 'x'], dir, env)).stderr).toMatch(/session 'chat-nope' not found/);
    // An empty message is refused before anything is sent.
    const sent = fake.requests.length;
    const empty = await runCli(['chat', 'support', '-m', '  '], dir, env);
    expect(empty.code).toBe(2);
    expect(empty.stderr.trim()).toBe('swarm: --message is empty: give the text to send (or leave -m out to chat interactively)');
    expect(fake.requests.length).toBe(sent);
  });

  it('interactive swarm chat: lines on stdin are turns; a tool needing approval is asked and answered', async () => {
    fake.push({ content: 'Hello! How can I help?' }, { toolCalls: [{ id: 'call_r', name: 'refund', arguments: { id: '9' } }] }, { content: 'Refunded order 9.' });
    const r = await runCli(['chat', 'support'], dir, env, 'hi\nrefund order 9\ny\n\n');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('support: Hello! How can I help?\n');
    expect(r.stdout).toContain('support: Refunded order 9.\n');
    expect(r.stderr).toContain('approve refund({"id":"9"})? [y/N]');
    expect(r.stderr).toMatch(/continue with: swarm chat support --session chat-/);
    const toolMsg = (fake.requests[2]?.body as { messages: Array<{ role: string; content: string }> }).messages.at(-1);
    expect(toolMsg).toMatchObject({ role: 'tool', content: '{"refunded":"9"}' });
  });

  it('swarm run of an llm step that needs approval: waits (exit 0, with the commands to use); approve; resume completes it', async () => {
    fake.push({ content: 'Let me check.\n', toolCalls: [{ id: 'call_r', name: 'refund', arguments: { id: '5' } }] });
    const run = await runCli(['run', 'ask', '{"q": "Refund order 5"}'], dir, env);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('[answer] Let me check.');
    expect(run.stderr).toContain('[answer] → refund({"id":"5"})');
    expect(run.stderr).toMatch(/run \S+ waiting/);
    expect(run.stderr).toContain("step 'answer' waits for approval of refund");
    const runId = /run (\S+) waiting/.exec(run.stderr)?.[1] ?? '';
    expect(run.stderr).toContain(`swarm approve ${runId}`);

    const pending = JSON.parse((await runCli(['approvals', '--json'], dir, env)).stdout) as Array<{ run_id: string; tool: string; arguments: unknown; status: string }>;
    expect(pending).toMatchObject([{ tool: 'refund', arguments: { id: '5' }, status: 'pending' }]);
    expect(pending[0]?.run_id.endsWith(runId), `${pending[0]?.run_id} ends with the short id ${runId}`).toBe(true);
    expect((await runCli(['reject', runId], dir, env)).code).toBe(2); // --reason is required
    const ok = await runCli(['approve', runId.slice(-8), '--by', 'ops'], dir, env);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain('approved: step answer');
    expect(ok.stderr).toContain("no worker is running: start one with 'swarm worker'");
    fake.push({ content: 'Refunded order 5.' });
    const resumed = await runCli(['runs', 'resume', runId, '--json'], dir, env);
    expect(resumed.code).toBe(0);
    const out = JSON.parse(resumed.stdout) as { status: string; steps: Array<{ outputs: { content: string; agent: string } }> };
    expect(out.status).toBe('completed');
    expect(out.steps[0]?.outputs).toMatchObject({ content: 'Refunded order 5.', agent: 'support' });
    const all = JSON.parse((await runCli(['approvals', '--all', '--json'], dir, env)).stdout) as Array<{ status: string; decided_by: string }>;
    expect(all).toMatchObject([{ status: 'approved', decided_by: 'ops' }]);
    expect((await runCli(['approve', runId], dir, env)).stderr).toMatch(/run \S+ is completed; there is nothing to approve/);
  });

  it('swarm reject: the waiting step fails with the reason; the run fails (exit 4 when followed)', async () => {
    fake.push({ toolCalls: [{ id: 'call_r', name: 'refund', arguments: { id: '6' } }] });
    const run = await runCli(['run', 'ask', '{"q": "Refund order 6"}', '--detach'], dir, env);
    const runId = run.stdout.trim();
    expect((await runCli(['runs', 'resume', runId], dir, env)).code).toBe(0);
    const rej = await runCli(['reject', runId, 'answer', '--reason', 'order 6 is not refundable'], dir, env);
    expect(rej.code).toBe(0);
    const resumed = await runCli(['runs', 'resume', runId], dir, env);
    expect(resumed.code).toBe(4);
    expect(resumed.stderr).toContain('order 6 is not refundable');
    expect(fake.requests).toHaveLength(1);
  });

  it('bad input: chat with a non-llm agent or an unknown one; a bad --context', async () => {
    writeAgent(dir, 'say', 'name: say\nversion: 1.0.0\nruntime: { type: builtin, entry: echo }\n');
    expect((await runCli(['agent', 'register', join(dir, 'agents', 'say')], dir, env)).code).toBe(0);
    const notLlm = await runCli(['chat', 'say', '-m', 'hi'], dir, env);
    expect([notLlm.code, notLlm.stderr.trim()]).toEqual([2, "swarm: agent 'say@1.0.0' is a builtin agent; chat needs an llm agent"]);
    const unknown = await runCli(['chat', 'suport', '-m', 'hi'], dir, env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/agent 'suport' not found.*support/);
    expect((await runCli(['chat', 'support', '--context', '[1]', '-m', 'x'], dir, env)).stderr).toContain('--context must be a JSON object');
    expect(fake.requests).toHaveLength(0);
  });
});
