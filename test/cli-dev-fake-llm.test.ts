/**
 * `swarm dev fake-llm`: the shipped fake model server as a command, for trying llm agents offline.
 * A real process on a real port: started, asked over HTTP, used by `swarm run` of an llm agent in
 * another process, then stopped with SIGTERM. Build first: `npm run build`.
 */
import { afterAll, describe, test } from 'vitest';
import { cleanupSandboxes, makeSandbox, show, until } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

describe('swarm dev fake-llm', () => {
  test('prints its base URL, answers OpenAI requests, drives an llm agent, and exits 0 on SIGTERM', async ({ expect }) => {
    const s = makeSandbox();
    const script = s.write('replies.json', JSON.stringify([{ content: 'Scripted first.' }]));
    let stdout = '';
    const server = s.start(['dev', 'fake-llm', '--port', '0', '--script', script], { timeoutMs: 60_000 });
    server.child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    try {
      const base = await until('the base URL', async () => /^base URL: (http:\/\/127\.0\.0\.1:\d+\/v1)\b/m.exec(stdout)?.[1], 20_000);
      expect(stdout).toContain(`export OPENAI_BASE_URL=${base} OPENAI_API_KEY=sk-fake`);
      expect(stdout).toContain(`providers: { fake: { type: openai-compatible, base_url: ${base} } }`);

      // A real request: the scripted reply first, then echoes.
      const ask = async (text: string): Promise<string> => {
        const res = await fetch(`${base}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer sk-fake' },
          body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] }),
        });
        expect(res.status).toBe(200);
        return ((await res.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content;
      };
      expect(await ask('first')).toBe('Scripted first.');
      expect(await ask('hello there')).toBe('(fake model) you said: hello there');

      // An llm agent run by `swarm run` in another process, pointed at it through the environment.
      s.write('agents/helper/agent.yaml', 'name: helper\nversion: 1.0.0\nruntime: {type: llm, provider: openai, model: gpt-4o-mini}\ninstructions: Be brief.\n');
      s.write('workflows/ask/workflow.yaml', 'name: ask\nversion: 1.0.0\nsteps:\n  - {id: answer, agent: helper, inputs: {message: "${trigger.q}"}}\n');
      const env = { OPENAI_BASE_URL: base, OPENAI_API_KEY: 'sk-fake' };
      expect((await s.run(['agent', 'register', 'agents/helper'], { env })).code).toBe(0);
      expect((await s.run(['workflow', 'register', 'workflows/ask'], { env })).code).toBe(0);
      const run = await s.run(['run', 'ask', '{"q": "is it offline?"}', '--json'], { env, timeoutMs: 30_000 });
      expect(run.code, show(run)).toBe(0);
      const doc = JSON.parse(run.stdout) as { steps: Array<{ outputs: { content: string } }>; usage?: { sessions: number; input_tokens: number } };
      expect(doc.steps[0]!.outputs.content).toBe('(fake model) you said: is it offline?');
      // The llm step's totals, as `runs show --json` gives them.
      expect(doc.usage?.sessions).toBe(1);
      expect(doc.usage?.input_tokens).toBeGreaterThan(0);

      server.child.kill('SIGTERM');
      const r = await server.done;
      expect(r.signal, show(r)).toBeNull();
      expect(r.code, show(r)).toBe(0);
      expect(r.stderr).toContain('POST /v1/chat/completions (model gpt-4o-mini)');
      expect(r.stderr).toContain('SIGTERM: stopping the fake LLM server after 3 request(s)');
      // The port is closed.
      await expect(fetch(`${base}/chat/completions`, { method: 'POST', body: '{}' })).rejects.toThrow();
    } finally {
      server.child.kill('SIGKILL');
    }
  });

  test('a bad --port or a port in use: exit 2 with one line', async ({ expect }) => {
    const s = makeSandbox();
    const bad = await s.run(['dev', 'fake-llm', '--port', 'eighty']);
    expect(bad.code, show(bad)).toBe(2);
    expect(bad.stderr.trim()).toBe("swarm: --port must be a port number from 0 to 65535 (0: any free port), not 'eighty'");
    const first = s.start(['dev', 'fake-llm'], { timeoutMs: 30_000 });
    let out = '';
    first.child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const port = await until('the port', async () => /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1], 20_000);
      const busy = await s.run(['dev', 'fake-llm', '--port', port]);
      expect(busy.code, show(busy)).toBe(2);
      expect(busy.stderr.trim()).toBe(`swarm: cannot listen on 127.0.0.1:${port}: the port is in use`);
    } finally {
      first.child.kill('SIGTERM');
      await first.done;
    }
  });
});
