/**
 * SW4RM from Swarm's side: a workflow step that sends its inputs to an agent on the router and waits
 * for its FULFILLED ACK or its reply, and an llm agent whose tool is such an agent. Real router
 * (`startSw4rm` on port 0, the store of the Swarm under test), real gRPC; the recipient is a small
 * agent in the test speaking the wire contract with a raw gRPC client.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManifestError } from '../src/core/errors.js';
import { parseAgentManifest } from '../src/core/manifest/agent.js';
import { startSw4rm, type Sw4rmServer } from '../src/sw4rm/server.js';
import type { Swarm } from '../src/swarm.js';
import { ScriptedModel } from '../src/testing/scripted-model.js';
import { TOOL_SPEC_SCHEMA } from '../src/agents/tools/spec.js';
import { loadTools } from '../src/agents/tools/index.js';
import { openProject, removeProject, tempProject, until, writeAgent, writeWorkflow } from './helpers/project.js';
import { Peer, type Envelope, type Handler } from './helpers/sw4rm-peer.js';

const json = (env: Envelope): unknown => JSON.parse(env.payload.toString('utf8'));

let dir: string;
let swarm: Swarm;
let sw4rm: Sw4rmServer;
const peers: Peer[] = [];

async function peer(id: string, handle: Handler): Promise<Peer> {
  const p = new Peer(sw4rm.ports, id, handle);
  peers.push(p);
  await p.start();
  return p;
}

function sw4rmAgent(name: string, runtime: string): Promise<unknown> {
  return swarm.registerAgent(writeAgent(dir, name, `name: ${name}\nversion: 1.0.0\nruntime: { type: sw4rm, router: "127.0.0.1:${sw4rm.ports.router}", ${runtime} }\n`));
}

async function workflow(agent: string, extra = ''): Promise<void> {
  await swarm.registerWorkflow(writeWorkflow(dir, `wf-${agent}`, `name: wf-${agent}\nversion: 1.0.0\nsteps:\n  - id: send\n    agent: ${agent}\n    inputs: { text: "\${trigger.text}" }\n${extra}`));
}

beforeEach(async () => {
  dir = tempProject();
});

afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  await sw4rm?.close();
  await swarm?.close();
  removeProject(dir);
});

async function open(models?: (spec: unknown, agent: string) => ScriptedModel | undefined): Promise<void> {
  swarm = await openProject(dir, models ? { models } : {});
  sw4rm = await startSw4rm(swarm, { host: '127.0.0.1', ports: { router: 0, registry: 0, scheduler: 0 }, leaseMs: 2000 });
}

describe('a workflow step that talks to a SW4RM agent', () => {
  it('wait: fulfilled — the inputs go as one DATA message; the FULFILLED ACK completes the step', async () => {
    await open();
    const translator = await peer('translator', async (env, p) => {
      await p.ack(env, 'FULFILLED', undefined, 'translated');
    });
    await sw4rmAgent('translate', 'to: translator, wait: fulfilled, timeout: 10s');
    await workflow('translate');
    const id = await swarm.startRun('wf-translate', { text: 'hello' });
    const { run, steps } = await swarm.runToCompletion(id);
    expect(run.status).toBe('completed');
    expect(steps[0]?.outputs).toMatchObject({ stage: 'FULFILLED', note: 'translated' });
    expect(translator.received).toHaveLength(1);
    const sent = translator.received[0] as Envelope;
    expect(sent).toMatchObject({ message_type: 'DATA', content_type: 'application/json', idempotency_token: `swarm-step:${id}/send`, producer_id: `swarm-step-${id}-send` });
    expect(json(sent)).toEqual({ text: 'hello' });
    expect((steps[0]?.outputs as { message_id: string }).message_id).toBe(sent.message_id);
  });

  it('wait: reply — the reply correlated to the message is the step output', async () => {
    await open();
    await peer('translator', async (env, p) => {
      const { text } = json(env) as { text: string };
      await p.ack(env, 'RECEIVED');
      await p.reply(env, { translated: `bonjour (${text})`, lang: 'fr' });
      await p.ack(env, 'FULFILLED');
    });
    await sw4rmAgent('translate', 'to: translator, wait: reply, timeout: 10s');
    await workflow('translate');
    const id = await swarm.startRun('wf-translate', { text: 'hello' });
    const { run, steps } = await swarm.runToCompletion(id);
    expect(run.status).toBe('completed');
    expect(steps[0]?.outputs).toEqual({ translated: 'bonjour (hello)', lang: 'fr' });
  });

  it('a REJECTED ACK fails the step with SW4RM_REJECTED, its error code and note, and is not retried', async () => {
    await open();
    const strict = await peer('strict', async (env, p) => {
      await p.ack(env, 'REJECTED', 'VALIDATION_ERROR', 'text must be French');
    });
    await sw4rmAgent('check', 'to: strict, timeout: 10s');
    await workflow('check', '    retry: { max_attempts: 3, backoff_ms: 10 }\n');
    const id = await swarm.startRun('wf-check', { text: 'hello' });
    const { run, steps } = await swarm.runToCompletion(id);
    expect(run.status).toBe('failed');
    expect(steps[0]?.error).toContain('VALIDATION_ERROR: text must be French');
    const failed = (await swarm.events(id)).find((e) => e.type === 'STEP_FAILED');
    expect(failed?.data).toMatchObject({ code: 'SW4RM_REJECTED' });
    expect(strict.received).toHaveLength(1);
  });

  it('a FAILED ACK fails the step with SW4RM_FAILED', async () => {
    await open();
    await peer('flaky', async (env, p) => {
      await p.ack(env, 'FAILED', 'INTERNAL_ERROR', 'disk full');
    });
    await sw4rmAgent('work', 'to: flaky, timeout: 10s');
    await workflow('work');
    const id = await swarm.startRun('wf-work', { text: 'x' });
    const { run, steps } = await swarm.runToCompletion(id);
    expect(run.status).toBe('failed');
    expect(steps[0]?.error).toMatch(/failed the message \(INTERNAL_ERROR: disk full\)/);
    expect((await swarm.events(id)).find((e) => e.type === 'STEP_FAILED')?.data).toMatchObject({ code: 'SW4RM_FAILED' });
  });

  it('a step retried after SW4RM_ACK_TIMEOUT does not send twice: the router drops the resend and the retry gets the first message’s ACK', async () => {
    await open();
    let runId = '';
    const slow = await peer('slow', async (env, p) => {
      // Answer only once the first attempt has given up waiting.
      await until(async () => (await swarm.events(runId)).some((e) => e.type === 'STEP_RETRY_SCHEDULED'), 20_000, 'the retry');
      await p.ack(env, 'FULFILLED', undefined, 'late but done');
    });
    await sw4rmAgent('work', 'to: slow, timeout: 1s');
    await workflow('work', '    retry: { max_attempts: 3, backoff_ms: 50 }\n');
    runId = await swarm.startRun('wf-work', { text: 'once' });
    const { run, steps } = await swarm.runToCompletion(runId);
    expect(run.status).toBe('completed');
    expect(steps[0]?.attempt).toBe(2);
    expect(steps[0]?.outputs).toMatchObject({ stage: 'FULFILLED', note: 'late but done' });
    const retry = (await swarm.events(runId)).find((e) => e.type === 'STEP_RETRY_SCHEDULED');
    expect(retry?.data).toMatchObject({ code: 'SW4RM_ACK_TIMEOUT' });
    expect(slow.received).toHaveLength(1);
  });

  it('an unknown recipient fails with SW4RM_NO_ROUTE', async () => {
    await open();
    await sw4rmAgent('lost', 'to: nobody-here, timeout: 2s');
    await workflow('lost');
    const id = await swarm.startRun('wf-lost', { text: 'x' });
    const { run } = await swarm.runToCompletion(id);
    expect(run.status).toBe('failed');
    expect((await swarm.events(id)).find((e) => e.type === 'STEP_FAILED')?.data).toMatchObject({ code: 'SW4RM_NO_ROUTE' });
  });
});

describe('an llm agent whose tool is a SW4RM agent', () => {
  it('sends the arguments as a TOOL_CALL, returns the TOOL_RESULT to the model; the call id makes the idempotency token', async () => {
    const model = new ScriptedModel((req, i) => {
      if (i === 0) return { toolCalls: [{ id: 'call_tr', name: 'translate', arguments: { text: 'good night' } }] };
      const last = req.messages[req.messages.length - 1] as { role: string; content: string };
      return { content: `the translator said: ${last.content}` };
    });
    await open(() => model);
    const translator = await peer('translator', async (env, p) => {
      await p.reply(env, { french: 'bonne nuit' }, 'TOOL_RESULT');
    });
    await swarm.registerAgent(
      writeAgent(
        dir,
        'writer',
        `name: writer
version: 1.0.0
runtime: { type: llm, provider: openai, model: gpt-4o-mini }
tools:
  - sw4rm: { agent: translator, router: "127.0.0.1:${sw4rm.ports.router}", timeout_seconds: 10 }
    name: translate
    description: Translate English into French
    parameters: { type: object, properties: { text: { type: string } }, required: [text] }
`,
      ),
    );
    await swarm.registerWorkflow(writeWorkflow(dir, 'write', 'name: write\nversion: 1.0.0\nsteps:\n  - id: w\n    agent: writer\n    inputs: { message: "say good night in French" }\n'));
    const id = await swarm.startRun('write', {});
    const { run, steps } = await swarm.runToCompletion(id);
    expect(run.status).toBe('completed');
    expect((steps[0]?.outputs as { content: string }).content).toBe('the translator said: {"french":"bonne nuit"}');
    expect(translator.received).toHaveLength(1);
    const call = translator.received[0] as Envelope;
    expect(call.message_type).toBe('TOOL_CALL');
    expect(json(call)).toEqual({ text: 'good night' });
    expect(call.idempotency_token).toMatch(/^swarm-tool:.+\/call_tr$/);
  });

  it('a REJECTED ACK reaches the model as a tool error, and the step goes on', async () => {
    const model = new ScriptedModel((req, i) => {
      if (i === 0) return { toolCalls: [{ id: 'call_x', name: 'translator', arguments: { text: 'x' } }] };
      const last = req.messages[req.messages.length - 1] as { content: string };
      return { content: String(last.content) };
    });
    await open(() => model);
    await peer('translator', async (env, p) => {
      await p.ack(env, 'REJECTED', 'PERMISSION_DENIED', 'not for you');
    });
    await swarm.registerAgent(
      writeAgent(dir, 'writer', `name: writer\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: gpt-4o-mini }\ntools:\n  - sw4rm: { agent: translator, router: "127.0.0.1:${sw4rm.ports.router}", timeout_seconds: 10 }\n    description: Translate\n`),
    );
    await swarm.registerWorkflow(writeWorkflow(dir, 'write', 'name: write\nversion: 1.0.0\nsteps:\n  - id: w\n    agent: writer\n    inputs: { message: "hi" }\n'));
    const id = await swarm.startRun('write', {});
    const { run, steps } = await swarm.runToCompletion(id);
    expect(run.status).toBe('completed');
    expect((steps[0]?.outputs as { content: string }).content).toMatch(/SW4RM_REJECTED|rejected the message \(PERMISSION_DENIED: not for you\)/);
  });
});

describe('agent.yaml: runtime.type sw4rm and the sw4rm tool entry', () => {
  const parse = (yaml: string) => parseAgentManifest(yaml, 'agents/x/agent.yaml', { toolSpecSchema: TOOL_SPEC_SCHEMA });
  const problems = (yaml: string): string[] => {
    try {
      parse(yaml);
    } catch (e) {
      expect(e).toBeInstanceOf(ManifestError);
      return (e as ManifestError).message.split('\n');
    }
    throw new Error('the manifest was accepted');
  };

  it('parses with defaults', () => {
    const m = parse('name: x\nversion: 1.0.0\nruntime: { type: sw4rm, to: translator }\n');
    expect(m.sw4rm).toEqual({ to: 'translator', router: '127.0.0.1:50051', wait: 'fulfilled', wait_ms: 30_000, message_type: 'DATA' });
    expect(m.runtime.entry).toBe('');
  });

  it('names the file, the field and the line of each problem', () => {
    const lines = problems('name: x\nversion: 1.0.0\nruntime:\n  type: sw4rm\n  timeout: soon\n  entry: run.sh\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^agents\/x\/agent\.yaml:3: runtime\.to: is required for runtime\.type 'sw4rm'/),
        expect.stringMatching(/^agents\/x\/agent\.yaml:5: runtime\.timeout: "soon" is not a duration/),
        expect.stringMatching(/^agents\/x\/agent\.yaml:6: runtime\.entry: does not apply to runtime\.type 'sw4rm'/),
      ]),
    );
    expect(problems('name: x\nversion: 1.0.0\nruntime:\n  type: sw4rm\n  to: a\n  wait: maybe\n').join('\n')).toMatch(/agent\.yaml:6: runtime\.wait/);
    expect(problems('name: x\nversion: 1.0.0\nruntime:\n  type: sw4rm\n  to: a\n  timeout: 10m\n  timeout_seconds: 60\n').join('\n')).toMatch(/agent\.yaml:6: runtime\.timeout: waits 600s for the ACK, longer than the step may run/);
    expect(problems('name: x\nversion: 1.0.0\nruntime:\n  type: sw4rm\n  to: a\n  router: localhost:99999\n').join('\n')).toMatch(/agent\.yaml:6: runtime\.router: port 99999/);
    // The router's own id is no recipient; an id as long as the registry takes (200) is one.
    expect(problems('name: x\nversion: 1.0.0\nruntime:\n  type: sw4rm\n  to: sw4rm-router\n').join('\n')).toMatch(/agent\.yaml:5: runtime\.to: 'sw4rm-router' is the router's own producer id/);
    expect(parse(`name: x\nversion: 1.0.0\nruntime:\n  type: sw4rm\n  to: a${'b'.repeat(199)}\n`).sw4rm?.to).toHaveLength(200);
    expect(problems(`name: x\nversion: 1.0.0\nruntime:\n  type: sw4rm\n  to: a${'b'.repeat(200)}\n`).join('\n')).toMatch(/agent\.yaml:5: runtime\.to/);
    expect(problems('name: x\nversion: 1.0.0\nruntime:\n  type: node\n  entry: a.js\n  to: translator\n').join('\n')).toMatch(/agent\.yaml:6: runtime\.to: is only for runtime\.type 'sw4rm'/);
  });

  it('a sw4rm tool is named after the agent, its origin is sw4rm, and its results are untrusted unless the entry says so', async () => {
    const set = await loadTools([{ sw4rm: { agent: 'fr.translator' }, description: 'Translate' }, { sw4rm: { agent: 'b' }, name: 'other', description: 'B', trusted: true, sensitive: true }], { packageDir: dir });
    const [a, b] = set.tools;
    expect(a).toMatchObject({ name: 'fr_translator', origin: { kind: 'sw4rm', agent: 'fr.translator' } });
    expect(a?.trusted).toBeUndefined();
    expect(b).toMatchObject({ name: 'other', trusted: true, sensitive: true, origin: { kind: 'sw4rm', agent: 'b' } });
    await set.close();
  });

  it('checks a sw4rm tool entry with the tools schema', () => {
    const text = problems('name: x\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: m }\ntools:\n  - sw4rm: { agent: translator, wait: soon }\n    description: d\n').join('\n');
    expect(text).toMatch(/agent\.yaml:5: tools\[0\]\.sw4rm\.wait/);
    expect(problems('name: x\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: m }\ntools:\n  - sw4rm: { agent: translator }\n').join('\n')).toMatch(/tools\[0\].*description/);
  });

  it('two entries with the same tool name (the agent id by default) are refused at registration, with the line', () => {
    const base = 'name: x\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: m }\ntools:\n';
    const twice = problems(`${base}  - sw4rm: { agent: echo-1 }\n    description: a\n  - sw4rm: { agent: echo-1 }\n    description: b\n`).join('\n');
    expect(twice).toMatch(/agent\.yaml:7: tools\[1\]: its tool name 'echo-1' is also the name of tools\[0\]/);
    // A name of its own, or another built-in, is fine; a sw4rm tool named like a built-in is not.
    expect(parse(`${base}  - sw4rm: { agent: echo-1 }\n    description: a\n  - sw4rm: { agent: echo-1 }\n    name: echo_again\n    description: b\n`).llm?.tools).toHaveLength(2);
    expect(problems(`${base}  - builtin: http_fetch\n  - sw4rm: { agent: x }\n    name: http_fetch\n    description: b\n`).join('\n')).toMatch(/tools\[1\]: its tool name 'http_fetch' is also the name of tools\[0\]/);
  });
});

