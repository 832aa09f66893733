/**
 * LLM agents as workflow steps, end to end: agent.yaml packages, the real provider clients against a
 * fake vendor server over HTTP, the store journal, approvals across a restart, and a worker killed
 * with SIGKILL in the middle of a loop.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Swarm } from '../src/swarm.js';
import { startFakeLlmServer, type FakeLlmServer } from '../src/testing/fake-llm-server.js';
import { ScriptedModel } from '../src/testing/scripted-model.js';
import { cliEnv, exited, registerPackages, removeProject, runCli, spawnCli, tempProject, until, writeAgent, writeWorkflow } from './helpers/project.js';

let dir: string;
let fake: FakeLlmServer;
beforeEach(async () => {
  dir = tempProject();
  fake = await startFakeLlmServer();
});
afterEach(async () => {
  await fake.close();
  removeProject(dir);
});

const TOOLS_JS = `
import { appendFileSync } from 'node:fs';
export const charge = {
  name: 'charge',
  description: 'Charge the customer',
  parameters: { type: 'object', properties: { usd: { type: 'number' } }, required: ['usd'] },
  execute: ({ usd }, ctx) => {
    appendFileSync(process.env.EFFECTS_FILE, ctx.idempotencyKey + ' ' + usd + '\\n');
    return { charged: usd };
  },
};
export const pay = { ...charge, name: 'pay', description: 'Pay out' };
`;

function shop(extra = ''): void {
  writeAgent(
    dir,
    'shop',
    `name: shop
version: 1.0.0
runtime: { type: llm, provider: openai, model: gpt-4o-mini }
instructions: "You run a shop for \${inputs.customer}."
tools:
  - module: tools.mjs
${extra}`,
    { 'tools.mjs': TOOLS_JS },
  );
  writeWorkflow(dir, 'buy', 'name: buy\nversion: 1.0.0\nsteps:\n  - id: sell\n    agent: shop\n    inputs: { message: "${trigger.message}", customer: "${trigger.customer}" }\n');
}

/** The body of the n-th request the fake vendor received (OpenAI chat completions). */
const body = (n: number): { model: string; messages: unknown[]; tools: Array<{ function: { name: string } }> } => fake.requests[n]?.body as { model: string; messages: unknown[]; tools: Array<{ function: { name: string } }> };

const env = (): Record<string, string> => ({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl, EFFECTS_FILE: join(dir, 'effects.log') });

async function open(extra: Partial<Parameters<typeof Swarm.open>[0]> = {}): Promise<Swarm> {
  process.env.EFFECTS_FILE = join(dir, 'effects.log');
  return Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') }, providerEnv: env(), ...extra });
}

describe('llm agents in workflows', () => {
  it('a step runs the loop through the real OpenAI client: tool call, result, answer; outputs, usage and the session are stored', async () => {
    shop();
    fake.push({ toolCalls: [{ id: 'call_1', name: 'charge', arguments: { usd: 5 } }], usage: { input_tokens: 100, output_tokens: 10 } }, { content: 'Charged $5. Thanks!', usage: { input_tokens: 130, output_tokens: 8 } });
    const swarm = await open();
    try {
      await swarm.registerAgent(join(dir, 'agents', 'shop'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'buy'));
      const id = await swarm.startRun('buy', { message: 'Buy the $5 hat', customer: 'Ada' });
      const { run, steps } = await swarm.runToCompletion(id);
      expect(run.status).toBe('completed');
      expect(steps[0]?.outputs).toMatchObject({ content: 'Charged $5. Thanks!', agent: 'shop', turns: 2, usage: { input_tokens: 230, output_tokens: 18 } });
      expect((steps[0]?.outputs as { usage: { cost_usd: number } }).usage.cost_usd).toBeGreaterThan(0);
      // What the vendor saw: the instructions resolved, the tool, then the tool result.
      expect(fake.requests).toHaveLength(2);
      expect(body(0).messages[0]).toEqual({ role: 'system', content: 'You run a shop for Ada.' });
      expect(body(0).model).toBe('gpt-4o-mini'); // the vendor's own id, without the provider
      expect(body(0).tools.map((t) => t.function.name)).toEqual(['charge', 'pay']);
      expect(body(1).messages.at(-1)).toMatchObject({ role: 'tool', tool_call_id: 'call_1', content: '{"charged":5}' });
      expect(readFileSync(join(dir, 'effects.log'), 'utf8')).toBe(`${id}/sell/call_1 5\n`);
      // The session: transcript and tool ledger, by run.
      const [session] = await swarm.listSessions({ run_id: id });
      expect(session).toMatchObject({ id: `${id}/sell`, status: 'completed', turns: 2, agent: 'shop', input_tokens: 230 });
      const shown = await swarm.getSession(`${id.slice(0, 8)}/sell`);
      expect(shown.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
      expect(shown.toolCalls.map((t) => [t.call_id, t.output])).toEqual([['call_1', '{"charged":5}']]);
      // Usage per call (on each model response), per step (the session) and per run.
      expect(shown.messages.map((m) => m.usage && [m.usage.input_tokens, m.usage.output_tokens])).toEqual([null, [100, 10], null, [130, 8]]);
      expect(await swarm.runUsage(id)).toMatchObject({ input_tokens: 230, output_tokens: 18, sessions: 1 });
      expect((await swarm.verify(id)).ok).toBe(true);
    } finally {
      await swarm.close();
    }
  });

  it('triage hands off to a specialist registered as another agent; the step reports who answered', async () => {
    writeAgent(dir, 'triage', 'name: triage\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: m }\ninstructions: Route the user.\nhandoffs: [billing]\n');
    writeAgent(dir, 'billing', 'name: billing\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: m }\ninstructions: You handle bills.\n');
    writeWorkflow(dir, 'help', 'name: help\nversion: 1.0.0\nsteps:\n  - { id: ask, agent: triage, inputs: { message: "${trigger.q}" } }\n');
    const models = new Map([
      ['triage', new ScriptedModel([{ toolCalls: [{ id: 'h1', name: 'transfer_to_billing', arguments: {} }] }])],
      ['billing', new ScriptedModel([{ content: 'Your bill is $12.' }])],
    ]);
    const swarm = await open({ models: (_spec, name) => models.get(name) });
    try {
      await swarm.registerAgents(join(dir, 'agents'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'help'));
      const id = await swarm.startRun('help', { q: 'What do I owe?' });
      const { run, steps } = await swarm.runToCompletion(id);
      expect(run.status).toBe('completed');
      expect(steps[0]?.outputs).toMatchObject({ content: 'Your bill is $12.', agent: 'billing' });
      expect(models.get('billing')?.requests[0]?.system).toBe('You handle bills.');
      expect(models.get('billing')?.requests[0]?.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    } finally {
      await swarm.close();
    }
  });

  it('a tool that needs approval: the run waits, survives a restart, and continues after approve; the tool runs once', async () => {
    shop('    needs_approval: true\n');
    fake.push({ toolCalls: [{ id: 'call_p', name: 'pay', arguments: { usd: 40 } }] });
    let swarm = await open();
    const id = await (async () => {
      await swarm.registerAgent(join(dir, 'agents', 'shop'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'buy'));
      return swarm.startRun('buy', { message: 'Refund me $40', customer: 'Bo' });
    })();
    try {
      const first = await swarm.runToCompletion(id);
      expect(first.run.status).toBe('waiting');
      expect(first.steps[0]).toMatchObject({ status: 'waiting', error: expect.stringContaining('pay (call_p)') });
      expect(existsSync(join(dir, 'effects.log'))).toBe(false);
      expect((await swarm.listApprovals({ runId: id })).map((a) => [a.step_id, a.call_id, a.tool, JSON.parse(a.arguments) as unknown])).toEqual([['sell', 'call_p', 'pay', { usd: 40 }]]);
    } finally {
      await swarm.close();
    }
    // A new process: the request is still there.
    fake.push({ content: 'Paid $40.' });
    swarm = await open();
    try {
      expect(await swarm.approve(id, undefined, { by: 'ops', reason: 'checked' })).toEqual(['sell']);
      const { run, steps } = await swarm.runToCompletion(id);
      expect(run.status).toBe('completed');
      expect(steps[0]?.outputs).toMatchObject({ content: 'Paid $40.' });
      expect(readFileSync(join(dir, 'effects.log'), 'utf8').trim().split('\n')).toEqual([`${id}/sell/call_p 40`]);
      expect(fake.requests).toHaveLength(2); // the first response was not asked for again
      await expect(swarm.approve(id)).rejects.toMatchObject({ code: 'RUN_NOT_WAITING' });
    } finally {
      await swarm.close();
    }
  });

  it('reject: the step fails with the reason and the tool never runs', async () => {
    shop('    needs_approval: true\n');
    fake.push({ toolCalls: [{ id: 'call_p', name: 'pay', arguments: { usd: 900 } }] });
    const swarm = await open();
    try {
      await swarm.registerAgent(join(dir, 'agents', 'shop'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'buy'));
      const id = await swarm.startRun('buy', { message: 'Pay me $900', customer: 'Cy' });
      expect((await swarm.runToCompletion(id)).run.status).toBe('waiting');
      await swarm.reject(id, 'sell', 'too much');
      const { run, steps } = await swarm.runToCompletion(id);
      expect(run.status).toBe('failed');
      expect(steps[0]?.error).toMatch(/APPROVAL_REJECTED.*too much|too much/);
      expect(existsSync(join(dir, 'effects.log'))).toBe(false);
    } finally {
      await swarm.close();
    }
  });

  it('the approval built-in step pauses a workflow until approved', async () => {
    writeAgent(dir, 'gate', 'name: gate\nversion: 1.0.0\nruntime: { type: builtin, entry: approval }\n');
    writeAgent(dir, 'say', 'name: say\nversion: 1.0.0\nruntime: { type: builtin, entry: echo }\n');
    writeWorkflow(dir, 'deploy', 'name: deploy\nversion: 1.0.0\nsteps:\n  - { id: ok, agent: gate, inputs: { message: "Deploy v2?" } }\n  - { id: go, agent: say, depends_on: [ok], inputs: { message: "approved by ${steps.ok.outputs.decided_by}" } }\n');
    const swarm = await open();
    try {
      await swarm.registerAgents(join(dir, 'agents'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'deploy'));
      const id = await swarm.startRun('deploy', {});
      expect((await swarm.runToCompletion(id)).run.status).toBe('waiting');
      expect((await swarm.listApprovals()).map((a) => [a.step_id, JSON.parse(a.arguments) as unknown])).toEqual([['ok', { message: 'Deploy v2?' }]]);
      await swarm.approve(id, 'ok', { by: 'ada' });
      const { run, steps } = await swarm.runToCompletion(id);
      expect(run.status).toBe('completed');
      expect(steps.find((s) => s.step_id === 'go')?.outputs).toEqual({ echoed: 'approved by ada' });
    } finally {
      await swarm.close();
    }
  });

  it('bad input: unknown provider or tool at register time (file and line); a missing API key fails the step before any call', async () => {
    writeAgent(dir, 'a1', 'name: a1\nversion: 1.0.0\nruntime: { type: llm, provider: openia, model: x }\n');
    writeAgent(dir, 'a2', 'name: a2\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: x }\ntools:\n  - builtin: teleport\n');
    writeAgent(dir, 'a3', 'name: a3\nversion: 1.0.0\nruntime: { type: llm, provider: anthropic, model: claude-x }\n');
    // A memory embedded by a provider nobody configured.
    writeAgent(dir, 'a4', 'name: a4\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: x }\nmemory:\n  namespace: n\n  embedding: { provider: nope, model: e }\n');
    writeWorkflow(dir, 'w3', 'name: w3\nversion: 1.0.0\nsteps:\n  - { id: s, agent: a3, inputs: { message: hi } }\n');
    const swarm = await open({ providerEnv: {} });
    try {
      await expect(swarm.registerAgent(join(dir, 'agents', 'a1'))).rejects.toThrow(/agent\.yaml:3: runtime\.provider: unknown provider 'openia' \(did you mean 'openai'\?\)/);
      await expect(swarm.registerAgent(join(dir, 'agents', 'a4'))).rejects.toThrow(/agent\.yaml:6: memory\.embedding\.provider: unknown provider 'nope'/);
      await expect(swarm.registerAgent(join(dir, 'agents', 'a2'))).rejects.toThrow(/agent\.yaml:5.*tools/);
      expect(await swarm.listAgents()).toEqual([]);
      await swarm.registerAgent(join(dir, 'agents', 'a3'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'w3'));
      const id = await swarm.startRun('w3', {});
      const { run, steps } = await swarm.runToCompletion(id);
      expect(run.status).toBe('failed');
      expect(steps[0]?.error).toMatch(/ANTHROPIC_API_KEY/);
      expect(fake.requests).toHaveLength(0);
    } finally {
      await swarm.close();
    }
  });

  it('an HTTP tool gets its token from ${secrets.*} in the worker; agent.yaml holds only the reference', async () => {
    const seen: Array<{ auth: string | undefined; body: string }> = [];
    const api = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ auth: req.headers.authorization, body });
        res.writeHead(201, { 'content-type': 'application/json' }).end('{"ticket":"T-1"}');
      });
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    const port = (api.address() as AddressInfo).port;
    // The ticket API is on loopback: HTTP tools reach it only when the deployment allows it.
    writeFileSync(join(dir, 'swarm.yaml'), 'name: test\nnetwork: { allow: ["127.0.0.1"] }\n');
    writeAgent(
      dir,
      'desk',
      `name: desk\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: m }\ntools:\n  - name: open_ticket\n    description: Open a ticket\n    http: { url: "http://127.0.0.1:${port}/tickets", headers: { Authorization: "Bearer \${secrets.TICKETS_TOKEN}" } }\n    parameters: { type: object, properties: { title: { type: string } }, required: [title] }\n`,
    );
    writeWorkflow(dir, 'file', 'name: file\nversion: 1.0.0\nsteps:\n  - { id: s, agent: desk, inputs: { message: "printer broken" } }\n');
    const model = new ScriptedModel([{ toolCalls: [{ id: 'c', name: 'open_ticket', arguments: { title: 'Printer' } }] }, { content: 'Opened T-1.' }]);
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_SECRET_TICKETS_TOKEN: 't0k' }, models: () => model });
    try {
      await swarm.registerAgent(join(dir, 'agents', 'desk'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'file'));
      const id = await swarm.startRun('file', {});
      const { run, steps } = await swarm.runToCompletion(id);
      expect(run.status).toBe('completed');
      expect(steps[0]?.outputs).toMatchObject({ content: 'Opened T-1.' });
      expect(seen).toEqual([{ auth: 'Bearer t0k', body: '{"title":"Printer"}' }]);
      expect(JSON.stringify((await swarm.getAgent('desk')).manifest)).not.toContain('t0k');
    } finally {
      await swarm.close();
      api.close();
    }
  });

  it('a retry of an llm step that failed (max_turns) starts a fresh conversation with a fresh turn budget', async () => {
    writeAgent(dir, 'loopy', 'name: loopy\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: m }\nmax_turns: 2\ntools:\n  - builtin: current_time\n');
    writeWorkflow(dir, 'spin', 'name: spin\nversion: 1.0.0\nsteps:\n  - { id: s, agent: loopy, inputs: { message: "what time is it?" } }\n');
    const again = (i: number) => ({ toolCalls: [{ id: `t${i}`, name: 'current_time', arguments: {} }] });
    const model = new ScriptedModel([again(1), again(2), again(3), { content: 'It is noon.' }]);
    const swarm = await open({ models: () => model });
    try {
      await swarm.registerAgent(join(dir, 'agents', 'loopy'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'spin'));
      const id = await swarm.startRun('spin', {});
      const first = await swarm.runToCompletion(id);
      expect(first.run.status).toBe('failed');
      expect(first.steps[0]?.error).toMatch(/did not answer within 2 turns/);
      expect((await swarm.listSessions({ run_id: id })).map((x) => x.status)).toEqual(['failed']);
      await swarm.retry(id);
      const second = await swarm.runToCompletion(id);
      expect(second.run.status).toBe('completed');
      expect(second.steps[0]?.outputs).toMatchObject({ content: 'It is noon.', turns: 2, session_id: `${id}/s/2` });
      expect(model.requests).toHaveLength(4);
      expect((await swarm.listSessions({ run_id: id })).map((x) => [x.id, x.status])).toEqual(
        expect.arrayContaining([[`${id}/s`, 'failed'], [`${id}/s/2`, 'completed']]),
      );
    } finally {
      await swarm.close();
    }
  });

  it('chat: a turn that hit max_turns does not block the next message; usage and turns add up over the session; a step session is not a chat', async () => {
    writeAgent(dir, 'bot', 'name: bot\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: m }\nmax_turns: 1\ntools:\n  - builtin: current_time\n');
    const model = new ScriptedModel([
      { toolCalls: [{ id: 'x1', name: 'current_time', arguments: {} }], usage: { input_tokens: 10, output_tokens: 1 } },
      { content: 'Noon.', usage: { input_tokens: 20, output_tokens: 2 } },
      { content: 'Bye.', usage: { input_tokens: 30, output_tokens: 3 } },
    ]);
    const swarm = await open({ models: (_spec, name) => (name === 'bot' ? model : undefined) });
    try {
      await swarm.registerAgent(join(dir, 'agents', 'bot'));
      const { chat, close } = await swarm.openChat('bot');
      try {
        expect((await chat.send('time?')).status).toBe('max_turns');
        const r2 = await chat.send('and now?');
        expect([r2.status, r2.content]).toEqual(['completed', 'Noon.']);
        expect((await chat.send('bye')).content).toBe('Bye.');
      } finally {
        await close();
      }
      const { session, messages } = await swarm.getSession(chat.id);
      expect(session).toMatchObject({ turns: 3, input_tokens: 60, output_tokens: 6, status: 'completed' });
      expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'user', 'assistant', 'user', 'assistant']);
      expect(new Set(messages.map((m) => m.seq)).size).toBe(messages.length);
      // The model saw the whole conversation each time.
      expect(model.requests[2]?.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'user', 'assistant', 'user']);

      // A workflow step's session cannot be continued as a chat (its approvals are decided with approve/reject).
      shop('    needs_approval: true\n');
      fake.push({ toolCalls: [{ id: 'call_p', name: 'pay', arguments: { usd: 1 } }] });
      await swarm.registerAgent(join(dir, 'agents', 'shop'));
      await swarm.registerWorkflow(join(dir, 'workflows', 'buy'));
      const id = await swarm.startRun('buy', { message: 'pay', customer: 'E' });
      expect((await swarm.runToCompletion(id)).run.status).toBe('waiting');
      await expect(swarm.openChat('shop', { sessionId: `${id}/sell` })).rejects.toMatchObject({ code: 'SESSION_NOT_A_CHAT' });
      // The short form `sessions show` takes (the end of the run id, then the step) is the same session.
      await expect(swarm.openChat('shop', { sessionId: `${id.slice(-12)}/sell` })).rejects.toMatchObject({ code: 'SESSION_NOT_A_CHAT', message: expect.stringContaining(`session ${id}/sell belongs to step 'sell'`) as unknown });
    } finally {
      await swarm.close();
    }
  });

  it('a worker killed with SIGKILL mid-loop: the next one resumes the session, re-uses the recorded response and never runs the finished tool again', async () => {
    shop();
    let calls = 0;
    await fake.close();
    fake = await startFakeLlmServer({
      script: () => {
        calls++;
        if (calls === 1) return { toolCalls: [{ id: 'call_c', name: 'charge', arguments: { usd: 7 } }] };
        if (calls === 2) return { content: 'never sent', delayMs: 60_000 }; // the worker dies while waiting
        return { content: 'Charged $7.' };
      },
    });
    const e = env();
    expect((await registerPackages(dir, cliEnv(dir, e))).length).toBeGreaterThanOrEqual(2);
    const id = (await runCli(['run', 'buy', JSON.stringify({ message: 'Buy', customer: 'Di' }), '--detach'], dir, e)).stdout.trim();
    let worker = spawnCli(['worker'], dir, e);
    try {
      // Liveness bounds (a busy machine starts a worker and a CLI call in seconds), not timings.
      await until(() => calls === 2, 45_000, 'the second model call');
      expect(readFileSync(join(dir, 'effects.log'), 'utf8')).toBe(`${id}/sell/call_c 7\n`);
      worker.kill('SIGKILL');
      await exited(worker);
      worker = spawnCli(['worker'], dir, e);
      await until(async () => JSON.parse((await runCli(['runs', 'show', id, '--json'], dir, e)).stdout || '{}')?.status === 'completed', 60_000, 'the run to complete');
    } finally {
      worker.kill('SIGTERM');
      await exited(worker);
    }
    expect(readFileSync(join(dir, 'effects.log'), 'utf8')).toBe(`${id}/sell/call_c 7\n`);
    expect(calls).toBe(3);
    expect(fake.requests.filter((r) => r.path === '/v1/chat/completions')).toHaveLength(3);
    expect(body(2).messages.at(-1)).toMatchObject({ role: 'tool', tool_call_id: 'call_c', content: '{"charged":7}' });
    const show = JSON.parse((await runCli(['runs', 'show', id, '--json'], dir, e)).stdout) as { steps: Array<{ outputs: { content: string } }> };
    expect(show.steps[0]?.outputs.content).toBe('Charged $7.');
    expect((await runCli(['runs', 'verify', id], dir, e)).code).toBe(0);
  }, 180_000);
});
