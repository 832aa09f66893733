import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import pc from 'picocolors';
import { UserError } from '../../core/errors.js';
import { startFakeLlmServer, type FakeLlmServer, type FakeReply, type RecordedRequest } from '../../testing/fake-llm-server.js';
import type { CliContext } from '../context.js';

/** The text of the last user turn of a vendor request, in any of the three protocols. */
function lastUserText(req: RecordedRequest): string {
  const body = (req.body ?? {}) as { messages?: Array<{ role?: string; content?: unknown }>; input?: unknown };
  const turns = Array.isArray(body.messages) ? body.messages : Array.isArray(body.input) ? (body.input as Array<{ role?: string; content?: unknown }>) : [];
  const user = [...turns].reverse().find((m) => m.role === 'user');
  const content = user?.content ?? (typeof body.input === 'string' ? body.input : '');
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p: { text?: unknown }) => (typeof p.text === 'string' ? p.text : '')).join('');
  return '';
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 65_535) throw new UserError('ARGUMENT_INVALID', `--port must be a port number from 0 to 65535 (0: any free port), not '${value}'`);
  return n;
}

function readScript(file: string): FakeReply[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError('INPUT_FILE_UNREADABLE', `cannot read script file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
  }
  let replies: unknown;
  try {
    replies = JSON.parse(text);
  } catch (e) {
    throw new UserError('JSON_INVALID', `${file} is not valid JSON: ${(e as Error).message}`, { file });
  }
  if (!Array.isArray(replies) || !replies.every((r) => r !== null && typeof r === 'object' && !Array.isArray(r))) {
    throw new UserError('JSON_INVALID', `${file} must be a JSON array of replies, like [{"content": "Hello"}, {"toolCalls": [{"name": "f", "arguments": {}}]}]`, { file });
  }
  return replies as FakeReply[];
}

/** `swarm dev fake-llm`: tools for developing agents. */
export function registerDevCommands(program: Command, ctx: CliContext): void {
  const dev = program.command('dev').description('tools for developing agents');

  dev
    .command('fake-llm')
    .description('start the fake LLM server (OpenAI chat and responses, Anthropic messages) for trying llm agents offline; Ctrl-C stops it')
    .option('-p, --port <n>', 'port to listen on (0: any free port)', '0')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--script <file.json>', 'a JSON array of replies to give in order ({"content": …} or {"toolCalls": [{"name", "arguments"}]}); then it echoes')
    .action(async (o: { port: string; host: string; script?: string }) => {
      const port = parsePort(o.port);
      const script = o.script ? readScript(o.script) : [];
      let server: FakeLlmServer;
      try {
        server = await startFakeLlmServer({
          port,
          host: o.host,
          // After the scripted replies: answer every request by echoing its last user turn.
          script: (req) => ({ content: `(fake model) you said: ${lastUserText(req)}` }),
        });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
        throw new UserError('LISTEN_FAILED', `cannot listen on ${o.host}:${port}: ${code === 'EADDRINUSE' ? 'the port is in use' : code}`, { host: o.host, port });
      }
      server.push(...script);
      const base = server.openaiBaseUrl;
      ctx.out(`fake LLM server listening on ${server.url}`);
      ctx.out(`base URL: ${base}   (OpenAI chat completions and responses, Anthropic messages)`);
      ctx.out('');
      ctx.out('point a provider at it, in the shell that runs swarm:');
      ctx.out(`  export OPENAI_BASE_URL=${base} OPENAI_API_KEY=sk-fake        # provider: openai`);
      ctx.out(`  export ANTHROPIC_BASE_URL=${base} ANTHROPIC_API_KEY=sk-fake  # provider: anthropic`);
      ctx.out('or in swarm.yaml, for agents with provider: fake:');
      ctx.out(`  providers: { fake: { type: openai-compatible, base_url: ${base} } }`);
      ctx.out(`${script.length ? `${script.length} scripted replies first, then it` : 'It'} echoes each request's last user message. Ctrl-C stops it.`);
      let served = 0;
      const timer = setInterval(() => {
        for (const r of server.requests.slice(served)) {
          const model = (r.body as { model?: unknown } | undefined)?.model;
          ctx.err(pc.dim(`${r.method} ${r.path}${typeof model === 'string' ? ` (model ${model})` : ''}${r.stream ? ' streamed' : ''}`));
        }
        served = server.requests.length;
      }, 200);
      await new Promise<void>((resolve) => {
        const stop = (sig: string): void => {
          ctx.err(`${sig}: stopping the fake LLM server after ${server.requests.length} request(s)`);
          resolve();
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      clearInterval(timer);
      await server.close();
    });
}
