/**
 * The agent loop with a scripted model (no network): Swarm semantics, the exactly-once tool ledger,
 * approvals, structured output, limits and checkpoint envelopes.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agent, tool, ToolResult } from '../src/agents/agent.js';
import { memoryJournal, run, upgradeEnvelope, CHECKPOINT_VERSION, type CheckpointEnvelope } from '../src/agents/loop.js';
import type { ChatModel, ModelRequest, ModelResponse, ToolCall } from '../src/agents/types.js';
import { ResumeError } from '../src/core/errors.js';

type Reply = { content?: string; toolCalls?: Array<{ id?: string; name: string; arguments: string | object }> };

/** A model that plays back replies and records the requests it saw. */
function scripted(...replies: Reply[]): ChatModel & { requests: ModelRequest[] } {
  const requests: ModelRequest[] = [];
  let i = 0;
  return {
    id: 'scripted/test',
    requests,
    generate(req, options): Promise<ModelResponse> {
      requests.push(JSON.parse(JSON.stringify(req)) as ModelRequest);
      const r = replies[i++];
      if (!r) throw new Error(`the script ran out at call ${i}`);
      if (r.content && options?.onDelta) for (const part of r.content.match(/.{1,3}/gs) ?? []) options.onDelta({ type: 'text', text: part });
      const toolCalls: ToolCall[] = (r.toolCalls ?? []).map((c, k) => ({ id: c.id ?? `call_${i}_${k}`, name: c.name, arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments) }));
      return Promise.resolve({ content: r.content ?? null, toolCalls, usage: { input_tokens: 10, output_tokens: 5 }, finishReason: toolCalls.length ? 'tool_calls' : 'stop' });
    },
  };
}

const user = (content: string) => [{ role: 'user' as const, content }];

describe('the agent loop', () => {
  it('a plain reply: the new messages, the agent that answered, usage and turns', async () => {
    const model = scripted({ content: 'Hello!' });
    const a = agent({ name: 'greeter', model, instructions: 'Be brief.' });
    const r = await run(a, user('hi'), { costOf: (_m, u) => u.input_tokens * 0.001 });
    expect(r.status).toBe('completed');
    expect(r.messages).toEqual([{ role: 'assistant', content: 'Hello!', sender: 'greeter', usage: { input_tokens: 10, output_tokens: 5, cost_usd: 0.01 } }]);
    expect(r.agent.name).toBe('greeter');
    expect(r.content).toBe('Hello!');
    expect(r.usage).toEqual({ input_tokens: 10, output_tokens: 5, cost_usd: 0.01 });
    expect(r.turns).toBe(1);
    expect(model.requests[0]?.system).toBe('Be brief.');
    expect(model.requests[0]?.messages).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('a tool call and its result; the model sees the result and answers', async () => {
    const model = scripted({ toolCalls: [{ id: 'c1', name: 'add', arguments: { a: 2, b: 3 } }] }, { content: 'It is 5.' });
    const add = tool({ name: 'add', description: 'Add', parameters: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] }, execute: ({ a, b }) => (a as number) + (b as number) });
    const r = await run(agent({ name: 'math', model, tools: [add] }), user('2+3?'));
    expect(r.messages.map((m) => m.role)).toEqual(['assistant', 'tool', 'assistant']);
    expect(r.messages[1]).toEqual({ role: 'tool', tool_call_id: 'c1', name: 'add', content: '5' });
    expect(r.content).toBe('It is 5.');
    expect(model.requests[0]?.tools).toEqual([{ name: 'add', description: 'Add', parameters: add.parameters }]);
    expect(model.requests[1]?.messages.at(-1)).toEqual({ role: 'tool', tool_call_id: 'c1', name: 'add', content: '5' });
  });

  it('executeTools: false returns the requested tool calls unexecuted', async () => {
    let ran = 0;
    const t = tool({ name: 'boom', description: '', parameters: { type: 'object' }, execute: () => ran++ });
    const r = await run(agent({ name: 'a', model: scripted({ toolCalls: [{ id: 'x', name: 'boom', arguments: {} }] }), tools: [t] }), user('go'), { executeTools: false });
    expect(r.status).toBe('tools_pending');
    expect(ran).toBe(0);
    expect(r.messages).toEqual([{ role: 'assistant', content: null, sender: 'a', usage: { input_tokens: 10, output_tokens: 5, cost_usd: 0 }, tool_calls: [{ id: 'x', name: 'boom', arguments: '{}' }] }]);
  });

  it('handoffs: transfer_to_<agent> tools and tools returning an agent; the tool message names the new agent', async () => {
    const model = scripted({ toolCalls: [{ id: 'h', name: 'transfer_to_billing', arguments: {} }] }, { toolCalls: [{ id: 't', name: 'escalate', arguments: {} }] }, { content: 'A manager here.' });
    const manager = agent({ name: 'manager', model, instructions: 'You are the manager.' });
    const billing = agent({ name: 'billing', model, instructions: 'Billing.', tools: [tool({ name: 'escalate', description: '', parameters: { type: 'object' }, execute: () => manager })] });
    const triage = agent({ name: 'triage', model, handoffs: [billing] });
    const events: string[] = [];
    const r = await run(triage, user('my bill'), { onEvent: (e) => e.type === 'handoff' && events.push(`${e.from}->${e.to}`) });
    expect(r.agent.name).toBe('manager');
    expect(events).toEqual(['triage->billing', 'billing->manager']);
    expect(r.messages[1]).toEqual({ role: 'tool', tool_call_id: 'h', name: 'transfer_to_billing', content: '{"assistant":"billing"}' });
    expect(model.requests[0]?.tools.map((t) => t.name)).toEqual(['transfer_to_billing']);
    expect(model.requests[1]?.system).toBe('Billing.');
    expect(model.requests[2]?.system).toBe('You are the manager.');
    expect(r.messages.at(-1)).toMatchObject({ sender: 'manager', content: 'A manager here.' });
  });

  it('context variables: instructions from them, a hidden context_variables parameter, and tools that update them', async () => {
    const model = scripted({ toolCalls: [{ id: 'a', name: 'whoami', arguments: {} }, { id: 'b', name: 'rename', arguments: { to: 'Bo' } }] }, { content: 'ok' });
    const seen: unknown[] = [];
    const whoami = tool({
      name: 'whoami',
      description: '',
      parameters: { type: 'object', properties: { context_variables: { type: 'object' } }, required: ['context_variables'] },
      execute: (args) => {
        seen.push(args.context_variables);
        return 'done';
      },
    });
    const rename = tool({ name: 'rename', description: '', parameters: { type: 'object', properties: { to: { type: 'string' } } }, execute: (args) => new ToolResult('renamed', { contextVariables: { user: args.to } }) });
    const a = agent({ name: 'a', model, instructions: (cv) => `Help ${String(cv.user)}.`, tools: [whoami, rename] });
    const r = await run(a, user('hi'), { contextVariables: { user: 'Al', plan: 'pro' } });
    expect(seen).toEqual([{ user: 'Al', plan: 'pro' }]);
    expect(model.requests[0]?.tools[0]?.parameters).toEqual({ type: 'object', properties: {}, required: [] });
    expect(model.requests[0]?.system).toBe('Help Al.');
    expect(model.requests[1]?.system).toBe('Help Bo.');
    expect(r.contextVariables).toEqual({ user: 'Bo', plan: 'pro' });
  });

  it('an unknown tool, malformed arguments and a throwing tool become error messages to the model, not crashes', async () => {
    const model = scripted(
      { toolCalls: [{ id: 'u', name: 'nope', arguments: {} }, { id: 'm', name: 'square', arguments: '{"x": ' }, { id: 't', name: 'square', arguments: { x: 'two' } }, { id: 'e', name: 'fail', arguments: {} }] },
      { content: 'sorry' },
    );
    const square = tool({ name: 'square', description: '', parameters: { type: 'object', properties: { x: { type: 'number' } }, required: ['x'] }, execute: ({ x }) => (x as number) ** 2 });
    const fail = tool({ name: 'fail', description: '', parameters: { type: 'object' }, execute: () => { throw new Error('disk full'); } });
    const r = await run(agent({ name: 'a', model, tools: [square, fail] }), user('go'));
    const tools = r.messages.filter((m) => m.role === 'tool').map((m) => m.content);
    expect(tools[0]).toBe("Error: unknown tool 'nope'. Available tools: square, fail.");
    expect(tools[1]).toMatch(/^Error: invalid arguments for tool 'square': the arguments are not valid JSON/);
    expect(tools[2]).toBe(`Error: invalid arguments for tool 'square': 'x' must be number (got "two")`);
    expect(tools[3]).toBe("Error: tool 'fail' failed: disk full");
    expect(r.content).toBe('sorry');
  });

  it('a model that keeps making malformed tool calls is told each time, then the loop stops with a clear error', async () => {
    const square = tool({ name: 'square', description: '', parameters: { type: 'object', properties: { x: { type: 'number' } }, required: ['x'] }, execute: ({ x }) => (x as number) ** 2 });
    const bad = (i: number) => ({ toolCalls: [{ id: `b${i}`, name: 'square', arguments: '{"x": "no"}' }] });
    const model = scripted(bad(1), { toolCalls: [{ id: 'ok', name: 'square', arguments: { x: 3 } }] }, bad(2), bad(3), bad(4), { content: 'never' });
    await expect(run(agent({ name: 'a', model, tools: [square] }), user('go'), { maxOutputRetries: 2 })).rejects.toMatchObject({ code: 'TOOL_CALLS_INVALID', message: expect.stringContaining("3 turns in a row") });
    // The good call in between reset the count: 5 model calls, not 3.
    expect(model.requests).toHaveLength(5);
  });

  it('parallel tool calls run concurrently and their results keep call order', async () => {
    const model = scripted({ toolCalls: [{ id: '1', name: 'wait', arguments: { ms: 120, v: 'slow' } }, { id: '2', name: 'wait', arguments: { ms: 10, v: 'fast' } }, { id: '3', name: 'wait', arguments: { ms: 60, v: 'mid' } }] }, { content: 'done' });
    const finished: string[] = [];
    const wait = tool({
      name: 'wait',
      description: '',
      parameters: { type: 'object', properties: { ms: { type: 'number' }, v: { type: 'string' } } },
      execute: async ({ ms, v }) => {
        await new Promise((res) => setTimeout(res, ms as number));
        finished.push(v as string);
        return v;
      },
    });
    const t0 = Date.now();
    const r = await run(agent({ name: 'a', model, tools: [wait] }), user('go'));
    expect(Date.now() - t0).toBeLessThan(170 + 100);
    expect(finished).toEqual(['fast', 'mid', 'slow']);
    expect(r.messages.filter((m) => m.role === 'tool').map((m) => [m.tool_call_id, m.content])).toEqual([['1', 'slow'], ['2', 'fast'], ['3', 'mid']]);
  });

  it('streaming: text deltas reach onEvent and reassemble to the answer', async () => {
    const deltas: string[] = [];
    const r = await run(agent({ name: 'a', model: scripted({ content: 'Streaming works fine.' }) }), user('hi'), { stream: true, onEvent: (e) => e.type === 'delta' && deltas.push(e.text) });
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.join('')).toBe('Streaming works fine.');
    expect(r.content).toBe('Streaming works fine.');
  });

  it('a crash after a tool finished: the resumed loop re-uses the recorded response and result and never runs the tool again', async () => {
    const journal = memoryJournal('s1');
    let charges = 0;
    const charge = tool({ name: 'charge', description: '', parameters: { type: 'object' }, execute: () => `charged #${++charges}` });
    const refund = tool({ name: 'refund', description: '', parameters: { type: 'object' }, execute: () => 'refunded' });
    const model1 = scripted({ toolCalls: [{ id: 'c1', name: 'charge', arguments: {} }, { id: 'c2', name: 'refund', arguments: {} }] });
    // The process "dies" as the second tool starts: the first one's result is already recorded.
    const crash = { beforeToolCall: ({ call }: { call: ToolCall }) => { if (call.id === 'c2') throw new Error('SIGKILL'); } };
    await expect(run(agent({ name: 'shop', model: model1, tools: [charge, refund] }), user('buy'), { journal, hooks: crash })).rejects.toThrow('SIGKILL');
    expect(charges).toBe(1);
    expect(journal.envelope?.payload.pending_tool_calls.map((c) => c.id)).toEqual(['c1', 'c2']);

    const model2 = scripted({ content: 'Bought.' });
    const r = await run(agent({ name: 'shop', model: model2, tools: [charge, refund] }), user('buy'), { journal });
    expect(charges).toBe(1);
    expect(r.content).toBe('Bought.');
    expect(model2.requests).toHaveLength(1); // the first response was re-used, not asked again
    expect(r.messages.filter((m) => m.role === 'tool').map((m) => m.content)).toEqual(['charged #1', 'refunded']);
    expect(journal.transcript.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'tool', 'assistant']);
    // A finished session returns its answer without calling anything.
    const again = await run(agent({ name: 'shop', model: scripted(), tools: [charge, refund] }), user('buy'), { journal });
    expect(again.content).toBe('Bought.');
  });

  it('a tool that needs approval pauses the loop (waiting); approved, it runs once; rejected, the loop stops with the reason', async () => {
    for (const decision of ['approved', 'rejected'] as const) {
      const journal = memoryJournal(`s-${decision}`);
      let paid = 0;
      const pay = tool({ name: 'pay', description: '', parameters: { type: 'object' }, needsApproval: true, execute: () => `paid ${++paid}` });
      const model = scripted({ toolCalls: [{ id: 'p', name: 'pay', arguments: {} }] }, { content: 'Paid.' });
      const a = agent({ name: 'cashier', model, tools: [pay] });
      const first = await run(a, user('pay'), { journal });
      expect(first.status).toBe('waiting');
      expect(first.waitingFor?.map((c) => c.id)).toEqual(['p']);
      expect(journal.envelope?.payload.status).toBe('waiting');
      expect(paid).toBe(0);
      // Still waiting when resumed without a decision.
      expect((await run(a, user('pay'), { journal })).status).toBe('waiting');
      if (decision === 'approved') {
        journal.approvals.set('p', { decision: 'approved' });
        const r = await run(a, user('pay'), { journal });
        expect([r.status, r.content, paid]).toEqual(['completed', 'Paid.', 1]);
      } else {
        journal.approvals.set('p', { decision: 'rejected', reason: 'too expensive' });
        await expect(run(a, user('pay'), { journal })).rejects.toMatchObject({ code: 'APPROVAL_REJECTED', message: expect.stringContaining('too expensive') });
        expect(paid).toBe(0);
      }
    }
  });

  it('structured output: an answer that does not match is fed back a bounded number of times, then a clear failure', async () => {
    const schema = { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' } }, required: ['name', 'age'], additionalProperties: false };
    const good = scripted({ content: 'not json' }, { content: '{"name": "Ada"}' }, { content: '```json\n{"name": "Ada", "age": 36}\n```' });
    const r = await run(agent({ name: 'x', model: good, outputSchema: schema }), user('extract'));
    expect(r.output).toEqual({ name: 'Ada', age: 36 });
    expect(good.requests[1]?.messages.at(-1)).toMatchObject({ role: 'user', content: expect.stringContaining('not JSON') });
    expect(good.requests[2]?.messages.at(-1)).toMatchObject({ role: 'user', content: expect.stringContaining('age is required') });
    expect(good.requests[0]?.outputSchema).toEqual(schema);
    const bad = scripted({ content: '1' }, { content: '2' }, { content: '3' });
    await expect(run(agent({ name: 'x', model: bad, outputSchema: schema }), user('extract'), { maxOutputRetries: 2 })).rejects.toMatchObject({ code: 'OUTPUT_SCHEMA_MISMATCH' });
    expect(bad.requests).toHaveLength(3);
  });

  it('limits: max turns ends the loop; a passed deadline stops it before the next call', async () => {
    const loopy = tool({ name: 'again', description: '', parameters: { type: 'object' }, execute: () => 'again' });
    const model = scripted(...Array.from({ length: 5 }, (_, i) => ({ toolCalls: [{ id: `c${i}`, name: 'again', arguments: {} }] })));
    const r = await run(agent({ name: 'a', model, tools: [loopy] }), user('go'), { maxTurns: 3 });
    expect([r.status, r.turns, model.requests.length]).toEqual(['max_turns', 3, 3]);
    await expect(run(agent({ name: 'a', model: scripted({ content: 'x' }) }), user('go'), { deadline: Date.now() - 1 })).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
  });

  it('resume validates the envelope: a newer version, a broken envelope, a vanished agent are structured errors', async () => {
    const a = agent({ name: 'a', model: scripted() });
    const journal = memoryJournal('v');
    journal.envelope = { version: CHECKPOINT_VERSION + 1, session_id: 'v', created_at: 0, payload: {} } as unknown as CheckpointEnvelope;
    await expect(run(a, [], { journal })).rejects.toMatchObject({ code: 'CHECKPOINT_VERSION_UNSUPPORTED' });
    expect(() => upgradeEnvelope({ nope: 1 })).toThrow(ResumeError);
    journal.envelope = fixture('v1-mid-tools.json');
    await expect(run(a, [], { journal })).rejects.toMatchObject({ code: 'CHECKPOINT_AGENT_MISSING', message: expect.stringContaining("'support'") });
  });

  it('saved envelopes of every version still resume (fixtures)', async () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const env = fixture(f);
      expect(upgradeEnvelope(env).version).toBeLessThanOrEqual(CHECKPOINT_VERSION);
      const journal = memoryJournal(env.session_id);
      journal.envelope = env;
      const lookup = tool({ name: 'lookup_order', description: '', parameters: { type: 'object', properties: { id: { type: 'string' } } }, execute: ({ id }) => ({ id, status: 'shipped' }) });
      const support = agent({ name: 'support', model: scripted({ content: 'Your order has shipped.' }), tools: [lookup] });
      const r = await run(support, [], { journal });
      expect(r.status).toBe('completed');
      expect(r.content).toBe('Your order has shipped.');
      expect(r.contextVariables).toMatchObject({ customer: 'c-42' });
    }
  });
});

const FIXTURES = join(import.meta.dirname, 'fixtures', 'checkpoints');
function fixture(name: string): CheckpointEnvelope {
  return JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as CheckpointEnvelope;
}
