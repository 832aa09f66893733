/**
 * A tool call that waits for a human's approval is stored as the storage policy says: with an e-mail
 * address redacted, the values the model gave are not kept. After the approval the call must not be
 * made with the placeholder (an e-mail to `[EMAIL]`): the step stops with TOOL_ARGUMENTS_REDACTED and
 * the tool never runs. With the class allowed for storage, the approved call gets the real address.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Swarm } from '../src/swarm.js';
import { ScriptedModel } from '../src/testing/scripted-model.js';
import { removeProject, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';

const TOOLS_JS = `import { appendFileSync } from 'node:fs';
export const send_email = {
  name: 'send_email',
  description: 'Send an e-mail',
  parameters: { type: 'object', properties: { to: { type: 'string' }, body: { type: 'string' } }, required: ['to', 'body'] },
  execute: ({ to, body }) => { appendFileSync(process.env.OUTBOX_FILE, JSON.stringify({ to, body }) + '\\n'); return 'sent'; },
};
`;

let dir: string | undefined;
afterEach(() => {
  if (dir) removeProject(dir);
  dir = undefined;
});

async function approvedSend(emailPolicy: 'redact' | 'allow'): Promise<{ swarm: Swarm; runId: string; outbox: string }> {
  dir = tempProject(`name: mail\nguardrails:\n  redaction:\n    email: ${emailPolicy}\n`);
  const outbox = join(dir, 'outbox.jsonl');
  process.env.OUTBOX_FILE = outbox;
  writeAgent(dir, 'clerk', 'name: clerk\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: gpt-4o-mini }\ninstructions: You send e-mails.\ntools:\n  - module: tools.mjs\n    needs_approval: true\n', { 'tools.mjs': TOOLS_JS });
  writeWorkflow(dir, 'mail', 'name: mail\nversion: 1.0.0\nsteps:\n  - { id: send, agent: clerk, inputs: { message: "${trigger.q}" } }\n');
  const script = [{ toolCalls: [{ id: 'call_1', name: 'send_email', arguments: { to: 'ada@example.com', body: 'Your order shipped.' } }] }, { content: 'Sent.' }];
  // One model for the step's attempts: after the approval it is asked for its next answer.
  const model = new ScriptedModel(script, { id: 'openai/gpt-4o-mini' });
  const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') }, providerEnv: { OPENAI_API_KEY: 'sk-test' }, models: () => model });
  await swarm.registerAgent(join(dir, 'agents', 'clerk'));
  await swarm.registerWorkflow(join(dir, 'workflows', 'mail'));
  const runId = await swarm.startRun('mail', { q: 'Tell Ada her order shipped.' });
  expect((await swarm.runToCompletion(runId)).run.status).toBe('waiting');
  expect(existsSync(outbox)).toBe(false);
  expect(await swarm.approve(runId, undefined, { by: 'ops' })).toEqual(['send']);
  return { swarm, runId, outbox };
}

describe('an approved tool call whose arguments were stored redacted', () => {
  it('is not made with the placeholders: the step stops with TOOL_ARGUMENTS_REDACTED and the tool never runs', async () => {
    const { swarm, runId, outbox } = await approvedSend('redact');
    try {
      // What the approver was shown is the stored, redacted call.
      const { run, steps } = await swarm.runToCompletion(runId);
      expect(run.status).toBe('failed');
      expect(steps[0]?.error).toMatch(/TOOL_ARGUMENTS_REDACTED|tool call 'send_email' \(call_1\) was not made: its arguments were stored redacted \(\{"to":"\[EMAIL\]"/);
      expect(existsSync(outbox)).toBe(false);
    } finally {
      await swarm.close();
    }
  });

  it('with the class allowed for storage, runs with the real arguments after the approval', async () => {
    const { swarm, runId, outbox } = await approvedSend('allow');
    try {
      const { run } = await swarm.runToCompletion(runId);
      expect(run.status).toBe('completed');
      expect(readFileSync(outbox, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown)).toEqual([{ to: 'ada@example.com', body: 'Your order shipped.' }]);
    } finally {
      await swarm.close();
    }
  });
});
