/**
 * The bundled LLM examples, end to end and offline: the support-desk workflow (structured
 * extraction, triage with handoffs, a module tool, a tool that needs approval, the approval step)
 * and the assistant in `swarm chat` (built-in tools and the notes MCP server), all registered from
 * examples/ with `register --all` and driven through the CLI against the fake vendor server over
 * real HTTP, with the real OpenAI client.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeLlmServer, type FakeLlmServer, type RecordedRequest } from '../src/testing/fake-llm-server.js';
import { EXAMPLES, removeProject, runCli as runCliRaw, tempProject, type CliResult } from './helpers/project.js';

const LLM_AGENTS = ['approval', 'assistant', 'billing', 'extract-invoice', 'refunds', 'triage'];
const SLOW = 240_000;

let dir: string;
let fake: FakeLlmServer;
let env: Record<string, string>;

/** The CLI with colours taken out of its output. */
async function cli(args: string[], input?: string): Promise<CliResult> {
  const r = await runCliRaw(args, dir, env, input);
  return { ...r, stdout: stripVTControlCharacters(r.stdout), stderr: stripVTControlCharacters(r.stderr) };
}

/** Run the CLI and expect exit 0 (the output is in the failure message otherwise). */
async function ok(args: string[], input?: string): Promise<CliResult> {
  const r = await cli(args, input);
  expect(r.code, `swarm ${args.join(' ')}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).toBe(0);
  return r;
}

interface ChatBody {
  messages: Array<{ role: string; content: string | null; tool_call_id?: string; tool_calls?: Array<{ function: { name: string } }> }>;
  tools?: Array<{ function: { name: string } }>;
  response_format?: { type: string; json_schema?: { strict?: boolean; schema: { required: string[] } } };
}
const bodyOf = (q: RecordedRequest | undefined): ChatBody => q?.body as ChatBody;
const systemOf = (q: RecordedRequest | undefined): string => bodyOf(q).messages[0]?.content ?? '';
const toolNames = (q: RecordedRequest | undefined): string[] => (bodyOf(q).tools ?? []).map((t) => t.function.name);
/** The tool results a request carries, by call id. */
const toolResults = (q: RecordedRequest | undefined): Record<string, string> =>
  Object.fromEntries(bodyOf(q).messages.filter((m) => m.role === 'tool').map((m) => [m.tool_call_id ?? '', m.content ?? '']));

/**
 * The examples registered once, through the CLI, into a seed project: every test starts from a copy
 * of its store (with its master key), so each still has a store of its own.
 */
let seed: string;
beforeAll(async () => {
  seed = tempProject();
  dir = seed;
  env = { OPENAI_API_KEY: 'sk-test' };
  // Registered where they are, the way a checkout uses them: `register --all` over the examples.
  const agents = await ok(['agent', 'register', '--all', join(EXAMPLES, 'agents')]);
  for (const name of LLM_AGENTS) expect(agents.stdout + agents.stderr).toContain(`${name}@1.0.0 created`);
  const workflows = await ok(['workflow', 'register', '--all', join(EXAMPLES, 'workflows')]);
  expect(workflows.stdout + workflows.stderr).toContain('support-desk@1.0.0 created');
}, SLOW);
afterAll(() => removeProject(seed));

beforeEach(async () => {
  dir = tempProject();
  cpSync(join(seed, '.swarm'), join(dir, '.swarm'), { recursive: true });
  fake = await startFakeLlmServer();
  env = { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl, NOTES_FILE: join(dir, 'notes.json') };
});
afterEach(async () => {
  await fake.close();
  removeProject(dir);
});

describe('the support-desk example workflow', () => {
  it(
    'a refund: extraction, triage → billing → refunds, the refund waits for approval, then the reply waits for review; approved twice, it completes',
    async () => {
      const extracted = { invoice_id: 'INV-1001', amount: 30, currency: 'EUR', intent: 'refund', summary: 'Wants the 30 EUR for unused storage back.' };
      fake.push(
        { content: JSON.stringify(extracted) },
        { toolCalls: [{ id: 'call_t', name: 'transfer_to_billing', arguments: {} }] },
        { toolCalls: [{ id: 'call_l', name: 'lookup_invoice', arguments: { invoice_id: 'INV-1001' } }] },
        { content: 'The storage line is 30 EUR; passing you to refunds.', toolCalls: [{ id: 'call_h', name: 'transfer_to_refunds', arguments: {} }] },
        { toolCalls: [{ id: 'call_r', name: 'refund', arguments: { invoice_id: 'INV-1001', amount: 30, reason: 'storage never used' } }] },
      );
      const input = { message: 'Please refund the 30 EUR extra storage on INV-1001, I never used it.', customer: 'Ada Lovelace' };
      const run = await ok(['run', 'support-desk', JSON.stringify(input)]);
      // A waiting run exits 0 and says what to do.
      const runId = /run (\S+) waiting/.exec(run.stderr)?.[1] ?? '';
      // The short id (the end of the run id) is shown, and every command takes it.
      expect(runId).toMatch(/^[0-9a-f]{12}$/);
      expect(run.stderr).toContain('[answer] ⇢ triage hands off to billing');
      expect(run.stderr).toContain('[answer] → lookup_invoice({"invoice_id":"INV-1001"})');
      expect(run.stderr).toContain('[answer] ⇢ billing hands off to refunds');
      expect(run.stderr).toContain(`step 'answer' waits for approval of refund {"invoice_id":"INV-1001","amount":30,"reason":"storage never used"}`);
      expect(run.stderr).toContain(`swarm approve ${runId}`);
      expect(run.stderr).toContain(`swarm reject ${runId} --reason`);

      // What the vendor saw so far. Extraction asks for strict structured output with the example's schema.
      expect(fake.requests).toHaveLength(5);
      const rf = bodyOf(fake.requests[0]).response_format;
      expect(rf?.type).toBe('json_schema');
      expect(rf?.json_schema?.strict).toBe(true);
      expect(rf?.json_schema?.schema.required).toEqual(['invoice_id', 'amount', 'currency', 'intent', 'summary']);
      expect(systemOf(fake.requests[0])).toContain('an amount without a currency is in EUR.'); // ${inputs.default_currency}, defaulted
      // Triage: the context variables the step passes, resolved into its instructions; handoff tools only.
      expect(systemOf(fake.requests[1])).toContain('talking to Ada Lovelace.');
      expect(systemOf(fake.requests[1])).toContain(`(null when nothing): ${JSON.stringify(extracted)}`);
      expect(toolNames(fake.requests[1])).toEqual(['transfer_to_billing', 'transfer_to_refunds']);
      // Billing: its module tool (TypeScript, through tool()) and its own handoff.
      expect(systemOf(fake.requests[2])).toMatch(/^You are the billing specialist of the support desk, talking to Ada Lovelace\./);
      expect(toolNames(fake.requests[2])).toEqual(['lookup_invoice', 'transfer_to_refunds']);
      expect(JSON.parse(toolResults(fake.requests[3]).call_l ?? '')).toMatchObject({ invoice_id: 'INV-1001', amount: 120, currency: 'EUR', status: 'paid' });
      expect(toolNames(fake.requests[4])).toEqual(['refund']);
      expect(systemOf(fake.requests[4])).toMatch(/^You handle refund requests for Ada Lovelace\./);

      const pending = JSON.parse((await ok(['approvals', '--run', runId, '--json'])).stdout) as Array<{ step_id: string; tool: string; arguments: unknown }>;
      expect(pending).toEqual([expect.objectContaining({ step_id: 'answer', tool: 'refund', arguments: { invoice_id: 'INV-1001', amount: 30, reason: 'storage never used' } })]);
      await ok(['approve', runId, 'answer', '--by', 'ops']);
      fake.push({ content: 'Your refund of 30 EUR is on its way (5 to 10 business days).' });
      const resumed = await ok(['runs', 'resume', runId]);
      expect(resumed.stderr).toMatch(/← refund: \{"refund_id":"RF-/);
      expect(resumed.stderr).toContain(`run ${runId} waiting`);
      expect(resumed.stderr).toContain(`step 'review' waits for approval of approval {"message":"Send refunds's reply to Ada Lovelace?"`);

      // The refund ran once, after the approval, with an id derived from the call's idempotency key.
      const fullId = (JSON.parse((await ok(['runs', 'show', runId, '--json'])).stdout) as { run_id: string }).run_id;
      expect(fullId.endsWith(runId)).toBe(true);
      const refundId = `RF-${createHash('sha256').update(`${fullId}/answer/call_r`).digest('hex').slice(0, 8).toUpperCase()}`;
      expect(fake.requests).toHaveLength(6);
      expect(JSON.parse(toolResults(fake.requests[5]).call_r ?? '')).toEqual({ refund_id: refundId, invoice_id: 'INV-1001', amount: 30, status: 'refunded' });
      const session = JSON.parse((await ok(['sessions', 'show', `${runId}/answer`, '--json'])).stdout) as { session: { agent: string; current_agent: string; status: string }; tool_calls: Array<{ name: string }> };
      expect(session.session).toMatchObject({ agent: 'triage', current_agent: 'refunds', status: 'completed' });
      expect(session.tool_calls.map((t) => t.name)).toEqual(['transfer_to_billing', 'lookup_invoice', 'transfer_to_refunds', 'refund']);

      const review = JSON.parse((await ok(['approvals', '--run', runId, '--json'])).stdout) as Array<{ step_id: string; arguments: unknown }>;
      expect(review).toEqual([expect.objectContaining({ step_id: 'review', arguments: { message: "Send refunds's reply to Ada Lovelace?", data: 'Your refund of 30 EUR is on its way (5 to 10 business days).' } })]);
      await ok(['approve', runId, 'review', '--by', 'lead']);
      const done = JSON.parse((await ok(['runs', 'resume', runId, '--json'])).stdout) as { status: string; steps: Array<{ id: string; status: string; outputs: Record<string, unknown> }> };
      expect(done.status).toBe('completed');
      const step = (id: string): Record<string, unknown> | undefined => done.steps.find((s) => s.id === id)?.outputs;
      expect(step('extract')).toMatchObject({ content: extracted, agent: 'extract-invoice', turns: 1 });
      expect(step('answer')).toMatchObject({ agent: 'refunds', turns: 5 });
      expect(step('send')).toEqual({
        echoed: { to: 'Ada Lovelace', answered_by: 'refunds', reviewed_by: 'lead', reply: 'Your refund of 30 EUR is on its way (5 to 10 business days).' },
      });
      expect(fake.requests).toHaveLength(6);
      expect((await ok(['runs', 'verify', runId])).stdout).toMatch(/^ok: /);
    },
    SLOW,
  );

  it(
    'a billing question: an answer off the schema is sent back, a lookup of an unknown invoice is an error the model sees; rejected at review, the run fails',
    async () => {
      fake.push(
        { content: 'The customer asks about INV-1002.' }, // not JSON: sent back once
        { content: '```json\n{"invoice_id": "INV-1002", "amount": null, "currency": null, "intent": "billing", "summary": "Asks whether INV-1002 is paid."}\n```' },
        { toolCalls: [{ id: 'call_t', name: 'transfer_to_billing', arguments: {} }] },
        { toolCalls: [{ id: 'call_x', name: 'lookup_invoice', arguments: { invoice_id: 'INV-2002' } }] },
        { toolCalls: [{ id: 'call_l', name: 'lookup_invoice', arguments: { invoice_id: 'INV-1002' } }] },
        { content: 'INV-1002 (90 EUR) is still open.' },
      );
      const run = await ok(['run', 'support-desk', '{"message": "Did you get my payment for INV-1002?"}']);
      const runId = /run (\S+) waiting/.exec(run.stderr)?.[1] ?? '';
      expect(run.stderr).toContain(`step 'review' waits for approval of approval {"message":"Send billing's reply to a customer?","data":"INV-1002 (90 EUR) is still open."}`);
      expect(run.stderr).toContain('✗ lookup_invoice: Error: tool \'lookup_invoice\' failed: there is no invoice INV-2002');

      // The schema retry: the model was told what was wrong and answered again.
      const retry = bodyOf(fake.requests[1]).messages;
      expect(retry.at(-1)?.role).toBe('user');
      expect(retry.at(-1)?.content).toMatch(/^Your answer is not valid: the answer is not JSON/);
      // The workflow's default customer; the extracted object (fences stripped) in triage's instructions.
      expect(systemOf(fake.requests[2])).toContain('talking to a customer.');
      expect(systemOf(fake.requests[2])).toContain('"invoice_id":"INV-1002","amount":null');
      expect(toolResults(fake.requests[4]).call_x).toBe("Error: tool 'lookup_invoice' failed: there is no invoice INV-2002");
      expect(JSON.parse(toolResults(fake.requests[5]).call_l ?? '')).toMatchObject({ invoice_id: 'INV-1002', status: 'open', amount: 90 });

      const rejected = await ok(['reject', runId, 'review', '--reason', 'say when it is due, too']);
      expect(rejected.stderr).toContain('will fail with APPROVAL_REJECTED');
      const resumed = await cli(['runs', 'resume', runId, '--json']);
      expect(resumed.code).toBe(4);
      const out = JSON.parse(resumed.stdout) as { status: string; error: { step: string; message: string }; steps: Array<{ id: string; status: string }> };
      expect(out.status).toBe('failed');
      expect(out.error.step).toBe('review');
      expect(out.error.message).toContain('say when it is due, too');
      expect(out.steps.find((s) => s.id === 'send')?.status).toBe('cancelled');
      expect(fake.requests).toHaveLength(6);
    },
    SLOW,
  );
});

describe('the assistant example in swarm chat', () => {
  it(
    'calculator and current_time, then a note saved by the MCP server; a later chat continues the session and reads the note back',
    async () => {
      fake.push(
        { toolCalls: [{ id: 'c1', name: 'calculator', arguments: { expression: '3 * 19.99' } }, { id: 'c2', name: 'current_time', arguments: { time_zone: 'Europe/Paris' } }] },
        { toolCalls: [{ id: 'c3', name: 'notes_add_note', arguments: { text: 'Three books cost 59.97', tags: ['shopping'] } }] },
        { content: 'Three books cost 59.97. I noted it.' },
      );
      const r = await ok(['chat', 'assistant', '-m', 'What do 3 books at 19.99 cost? Note it down.']);
      expect(r.stdout).toBe('assistant: Three books cost 59.97. I noted it.\n');
      expect(r.stderr).toContain('→ calculator({"expression":"3 * 19.99"})');
      expect(r.stderr).toContain('← calculator: 59.97');
      expect(r.stderr).toContain('→ notes_add_note({"text":"Three books cost 59.97","tags":["shopping"]})');
      expect(toolNames(fake.requests[0])).toEqual(['calculator', 'current_time', 'notes_add_note', 'notes_list_notes', 'notes_delete_note']);
      expect(fake.requests.every((q) => q.stream)).toBe(true);
      const results = toolResults(fake.requests[1]);
      expect(results.c1).toBe('59.97');
      expect(JSON.parse(results.c2 ?? '')).toMatchObject({ time_zone: 'Europe/Paris', iso: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/) });
      // The MCP server wrote the note where NOTES_FILE says.
      expect(existsSync(join(dir, 'notes.json'))).toBe(true);
      const notes = JSON.parse(readFileSync(join(dir, 'notes.json'), 'utf8')) as { notes: Array<{ id: string; text: string; tags: string[] }> };
      expect(notes.notes).toEqual([expect.objectContaining({ id: 'n1', text: 'Three books cost 59.97', tags: ['shopping'] })]);
      const sessionId = /session (chat-\S+)/.exec(r.stderr)?.[1] ?? '';
      expect(sessionId).not.toBe('');

      // Another process, the same conversation: a fresh server process reads the note from the file.
      fake.push({ toolCalls: [{ id: 'c4', name: 'notes_list_notes', arguments: { tag: 'shopping' } }] }, { content: 'You noted: three books cost 59.97.' });
      const again = await ok(['chat', 'assistant', '--session', sessionId, '-m', 'What did I note about shopping?']);
      expect(again.stdout).toBe('assistant: You noted: three books cost 59.97.\n');
      // The server's structured result is what the model gets.
      expect(JSON.parse(toolResults(fake.requests[4]).c4 ?? '')).toEqual({ notes: [expect.objectContaining({ id: 'n1', text: 'Three books cost 59.97', tags: ['shopping'] })] });
      expect(bodyOf(fake.requests[3]).messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'tool', 'assistant', 'tool', 'assistant', 'user']);
      // The session adds up both messages: 5 model calls.
      const list = JSON.parse((await ok(['sessions', 'list', '--json'])).stdout) as Array<{ id: string; agent: string; status: string; turns: number }>;
      expect(list).toEqual([expect.objectContaining({ id: sessionId, agent: 'assistant', status: 'completed', turns: 5 })]);
      const shown = JSON.parse((await ok(['sessions', 'show', sessionId, '--json'])).stdout) as { tool_calls: Array<{ name: string }> };
      expect(shown.tool_calls.map((t) => t.name)).toEqual(['calculator', 'current_time', 'notes_add_note', 'notes_list_notes']);
    },
    SLOW,
  );

  it(
    'triage in an interactive chat with --context: hands off to refunds, the refund is asked in the terminal and runs once approved',
    async () => {
      fake.push(
        { toolCalls: [{ id: 'h1', name: 'transfer_to_refunds', arguments: {} }] },
        { toolCalls: [{ id: 'r1', name: 'refund', arguments: { invoice_id: 'INV-1001', amount: 30, reason: 'double charge' } }] },
        { content: 'Refunded 30 EUR.' },
      );
      const context = JSON.stringify({ customer: 'Ada Lovelace', invoice: { invoice_id: 'INV-1001' } });
      const r = await ok(['chat', 'triage', '--context', context], 'I was charged twice for INV-1001, 30 EUR\ny\n\n');
      expect(r.stderr).toContain('⇢ triage hands off to refunds');
      expect(r.stderr).toContain('approve refund({"invoice_id":"INV-1001","amount":30,"reason":"double charge"})? [y/N]');
      expect(r.stdout).toContain('refunds: Refunded 30 EUR.\n');
      expect(systemOf(fake.requests[1])).toBe(
        'You handle refund requests for Ada Lovelace.\nWhat we know about the invoice (null when nothing): {"invoice_id":"INV-1001"}\n' +
          'Refund only an invoice you know, and never more than its amount. Ask for the invoice id if you\n' +
          'do not have it. Once the refund is done, tell the customer its id and when to expect the money\n(5 to 10 business days).\n',
      );
      const result = JSON.parse(toolResults(fake.requests[2]).r1 ?? '') as { refund_id: string; status: string };
      expect(result).toMatchObject({ refund_id: expect.stringMatching(/^RF-[0-9A-F]{8}$/), status: 'refunded' });
      expect(fake.requests).toHaveLength(3);
    },
    SLOW,
  );
});
