/**
 * A run budget through the CLI: `swarm run` of the budget-digest example against the fake vendor
 * server (the real OpenAI client, over HTTP) stops before the call that would cross the budget,
 * exits 4 and names the limit; `swarm runs show` reports the usage.
 */
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeLlmServer, type FakeLlmServer } from '../src/testing/fake-llm-server.js';
import { EXAMPLES, removeProject, runCli, tempProject } from './helpers/project.js';

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

describe('budgets from the CLI', () => {
  it('swarm run of the budget-digest example exits 4 with BUDGET_EXCEEDED naming the limit; the second call is never sent; runs show reports the usage', async () => {
    const env = { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl };
    expect((await runCli(['agent', 'register', join(EXAMPLES, 'agents', 'summarizer')], dir, env)).code).toBe(0);
    expect((await runCli(['workflow', 'register', join(EXAMPLES, 'workflows', 'budget-digest')], dir, env)).code).toBe(0);
    fake.push({ content: 'A long draft.', usage: { input_tokens: 40, output_tokens: 150 } }, { content: 'never sent', usage: { input_tokens: 1, output_tokens: 1 } });
    const r = await runCli(['run', 'budget-digest', '{"text": "Swarm runs workflows of agents."}'], dir, env);
    const err = stripVTControlCharacters(r.stderr);
    expect(r.code, err).toBe(4);
    expect(err).toContain("error in step 'polish': budget exceeded: tokens_out of the run budget: 150 used, this call needs up to 200, 300 allowed");
    expect(err).toContain('budget warning: the run budget has used 150 of 300 tokens_out');
    expect(fake.requests).toHaveLength(1);

    const id = (await runCli(['runs', 'list', '--json'], dir, env)).stdout;
    const runId = (JSON.parse(id) as Array<{ run_id?: string; id?: string }>)[0];
    const shown = await runCli(['runs', 'show', String(runId?.run_id ?? runId?.id)], dir, env);
    expect(shown.code).toBe(0);
    expect(stripVTControlCharacters(shown.stdout)).toMatch(/budget \(run \S+\): tokens_out 150\/300 \(50%\), cost_usd \$[\d.]+\/\$0\.05 \(\d+%\), model_calls 1\/4 \(25%\), wall_clock [\d.]+s\/300s/);
  }, 60_000);
});
