/**
 * Secrets never at rest in the clear, through the real CLI: a secret planted with SWARM_SECRET_*
 * reaches the agents that reference it, which print it, return it and fail with it in their error;
 * then no byte of the database (file and WAL), of the Swarm home tree (work directories, key file,
 * everything) or of any command's output holds the value. Real processes, real SQLite files.
 * Build first: `npm run build`.
 */
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, test } from 'vitest';
import { Swarm } from '../src/swarm.js';
import { startFakeLlmServer } from '../src/testing/fake-llm-server.js';
import { filesContaining } from './helpers/files.js';
import { cleanupSandboxes, EXAMPLES, makeSandbox, show, type CliResult, type Sandbox } from './helpers/cli.js';
import { removeProject, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';

afterAll(() => cleanupSandboxes());

const SECRET = `plantedSecret${randomBytes(12).toString('hex')}`;
const MASTER_KEY = randomBytes(32).toString('hex');
const ENV = { SWARM_SECRET_PLANTED: SECRET, SWARM_MASTER_KEY: MASTER_KEY };

const AGENT_YAML = `name: leaky
version: 1.0.0
runtime: { type: node, entry: main.js }
inputs:
  - { name: token, type: string, required: true }
  - { name: fail, type: boolean, default: false }
outputs:
  - { name: digest, type: string }
  - { name: length, type: integer }
  - { name: echo, type: string }
  - { name: header, type: string }
  - { name: saw_master_key, type: boolean }
`;

// Prints the secret on stdout and stderr, returns it (alone and inside a longer string) and a digest
// of it (so the test knows the agent really got it), or fails with it in its error.
const AGENT_JS = `const fs = require('node:fs');
const crypto = require('node:crypto');
const [input, output] = process.argv.slice(2);
const { token, fail } = JSON.parse(fs.readFileSync(input, 'utf8'));
console.log('stdout: the token is ' + token);
console.error('stderr: the token is ' + token);
if (fail) {
  console.error('giving up because of ' + token);
  process.exit(1);
}
fs.writeFileSync(output, JSON.stringify({
  digest: crypto.createHash('sha256').update(token).digest('hex'),
  length: token.length,
  echo: token,
  header: 'Bearer ' + token,
  saw_master_key: process.env.SWARM_MASTER_KEY !== undefined,
}));
`;

const WORKFLOW_YAML = `name: secretive
version: 1.0.0
steps:
  - id: leak
    agent: leaky@1.0.0
    inputs: { token: "\${secrets.PLANTED}" }
  - id: echo
    agent: echo@1.0.0
    inputs: { message: "token=\${secrets.PLANTED}" }
  - id: boom
    agent: leaky@1.0.0
    depends_on: [leak, echo]
    inputs: { token: "\${secrets.PLANTED}", fail: true }
on_error:
  - notify: { type: log, message: "failed at \${error.step} (\${error.message}); token \${secrets.PLANTED}" }
`;

function setup(): Sandbox {
  const s = makeSandbox({ env: ENV });
  s.write('agents/leaky/agent.yaml', AGENT_YAML);
  s.write('agents/leaky/main.js', AGENT_JS);
  s.write('workflows/secretive/workflow.yaml', WORKFLOW_YAML);
  return s;
}

describe('secrets at rest', () => {
  test('a planted secret reaches the agent but is in no stored byte and no command output', async ({ expect }) => {
    const s = setup();
    const outputs: Array<{ cmd: string; r: CliResult }> = [];
    const cli = async (args: string[], code: number): Promise<CliResult> => {
      const r = await s.run(args, { timeoutMs: 60_000 });
      expect(r.code, `swarm ${args.join(' ')}\n${show(r)}`).toBe(code);
      outputs.push({ cmd: args.join(' '), r });
      return r;
    };
    await cli(['agent', 'register', join(EXAMPLES.agents, 'echo')], 0);
    await cli(['agent', 'register', s.path('agents/leaky')], 0);
    await cli(['workflow', 'register', s.path('workflows/secretive')], 0);

    const run = JSON.parse((await cli(['run', 'secretive', '{}', '--json'], 4)).stdout) as {
      run_id: string;
      status: string;
      steps: Array<{ id: string; status: string; outputs: Record<string, unknown> | null; error: string | null }>;
    };
    expect(run.status).toBe('failed');
    const step = (id: string): (typeof run.steps)[number] => run.steps.find((x) => x.id === id) as (typeof run.steps)[number];

    // The agents got the real value: its digest and length are what the secret's are.
    const leak = step('leak');
    expect(leak.status).toBe('completed');
    expect(leak.outputs?.digest).toBe(createHash('sha256').update(SECRET).digest('hex'));
    expect(leak.outputs?.length).toBe(SECRET.length);
    expect(leak.outputs?.echo).toBe('[secret:PLANTED]');
    expect(leak.outputs?.header).toBe('Bearer [secret:PLANTED]');
    // The master key given to the CLI is not in the environment its agents inherit.
    expect(leak.outputs?.saw_master_key).toBe(false);
    expect(step('echo').outputs).toEqual({ echoed: 'token=[secret:PLANTED]' });
    expect(step('boom').status).toBe('failed');
    expect(step('boom').error).toContain('giving up because of [secret:PLANTED]');

    const id = run.run_id;
    await cli(['runs', 'show', id], 0);
    await cli(['runs', 'show', id, '--json'], 0);
    const events = await cli(['runs', 'events', id, '--json'], 0);
    expect(events.stdout).toContain('token [secret:PLANTED]'); // the on_error handler's message
    await cli(['runs', 'events', id], 0);
    const logs = await cli(['runs', 'logs', id], 0);
    expect(logs.stdout).toContain('stdout: the token is [secret:PLANTED]');
    expect(logs.stdout).toContain('stderr: the token is [secret:PLANTED]');
    await cli(['runs', 'logs', id, 'boom'], 0);
    await cli(['runs', 'list', '--json'], 0);
    await cli(['runs', 'verify', id], 0);

    for (const { cmd, r } of outputs) {
      expect(r.stdout.includes(SECRET), `stdout of 'swarm ${cmd}' holds the secret`).toBe(false);
      expect(r.stderr.includes(SECRET), `stderr of 'swarm ${cmd}' holds the secret`).toBe(false);
    }

    // The stored steps keep the marker where the input held the value.
    const stored = s.query<{ step_id: string; inputs: string | null }>('SELECT step_id, inputs FROM step_executions WHERE run_id = ?', id);
    expect(stored.find((x) => x.step_id === 'leak')?.inputs).toBe(JSON.stringify({ token: '[secret:PLANTED]', fail: false }));

    // Raw bytes: the database file, its WAL, and everything else under the Swarm home (work
    // directories included: a failed attempt's input.json is removed once its agent has exited).
    const home = s.home as string;
    expect(statSync(s.db).size).toBeGreaterThan(0);
    const found = filesContaining(home, SECRET);
    expect(found.files).toBeGreaterThanOrEqual(2);
    expect(found.hits, `files under the Swarm home holding the secret`).toEqual([]);
  });

  test('run input a user typed is stored redacted; a value stored in the clear before (even cut by a view) is shown by no CLI view', async ({ expect }) => {
    const s = setup();
    expect((await s.run(['agent', 'register', join(EXAMPLES.agents, 'echo')])).code).toBe(0);
    expect((await s.run(['workflow', 'register', join(EXAMPLES.workflows, 'echo-chain')])).code).toBe(0);
    const r = await s.run(['run', 'echo-chain', JSON.stringify({ message: `input ${SECRET}` }), '--json']);
    expect(r.code, show(r)).toBe(0);
    const id = (JSON.parse(r.stdout) as { run_id: string }).run_id;
    // The trigger data is stored with the marker, like the step inputs and outputs.
    const trigger = s.query<{ trigger_data: string }>('SELECT trigger_data FROM workflow_runs WHERE id = ?', id)[0]?.trigger_data;
    expect(trigger).toBe(JSON.stringify({ message: 'input [secret:PLANTED]' }));
    expect(JSON.stringify(s.query('SELECT inputs, outputs FROM step_executions WHERE run_id = ?', id))).not.toContain(SECRET);

    // Data stored in the clear (from before redaction), long enough that `runs show` cuts it right
    // through the secret: the view redacts before it cuts, so not even the secret's start shows.
    const cutAt = 4000; // VIEW_VALUE_CHARS
    const pad = 'p'.repeat(cutAt - '{"message":"'.length - Math.floor(SECRET.length / 2));
    const db = new Database(s.db);
    try {
      db.prepare('UPDATE workflow_runs SET trigger_data = ? WHERE id = ?').run(JSON.stringify({ message: `${pad}${SECRET} and more ${'q'.repeat(5000)}` }), id);
    } finally {
      db.close();
    }
    const views = [r];
    for (const args of [['runs', 'show', id], ['runs', 'show', id, '--json'], ['runs', 'list', '--json'], ['runs', 'events', id, '--json']]) {
      const v = await s.run(args);
      expect(v.code, show(v)).toBe(0);
      views.push(v);
    }
    expect(views[1]?.stdout).toContain(`${pad}[secret:PLANTED]`);
    expect(views[2]?.stdout).toContain(`${pad}[secret:PLANTED] and more`);
    for (const v of views) expect(v.stdout + v.stderr).not.toContain(SECRET.slice(0, 16));
  });

  test('a secret printed right where the log capture is cut: neither half of it is stored', async ({ expect }) => {
    const s = makeSandbox({ env: ENV });
    s.write('swarm.yaml', 'name: cut\nlimits: { log_capture_bytes: 1024 }\n');
    s.write('agents/noisy/agent.yaml', 'name: noisy\nversion: 1.0.0\nruntime: { type: bash, entry: run.sh }\nenv: { TOKEN: "${secrets.PLANTED}" }\n');
    // The kept tail (1,024 bytes) starts in the middle of the secret, on stdout and on stderr.
    const fill = 1024 - Math.floor(SECRET.length / 2);
    s.write('agents/noisy/run.sh', `#!/usr/bin/env bash\nprintf '%s' "$TOKEN"; head -c ${fill} /dev/zero | tr '\\0' x\nprintf '%s' "$TOKEN" >&2; head -c ${fill} /dev/zero | tr '\\0' y >&2\necho '{}' > "$2"\n`, 0o755);
    s.write('workflows/noisy/workflow.yaml', 'name: noisy\nversion: 1.0.0\nsteps:\n  - { id: talk, agent: noisy@1.0.0 }\n');
    expect((await s.run(['agent', 'register', 'agents/noisy'])).code).toBe(0);
    expect((await s.run(['workflow', 'register', 'workflows/noisy'])).code).toBe(0);
    const r = await s.run(['run', 'noisy', '--json']);
    expect(r.code, show(r)).toBe(0);
    const [logs] = s.query<{ stdout: string; stderr: string; truncated: number }>('SELECT stdout, stderr, truncated FROM step_logs');
    expect(logs?.truncated).toBe(1);
    expect(logs?.stdout).toMatch(/x{100}$/);
    expect(logs?.stderr).toMatch(/y{100}$/);
    // The agent did print it (its marker is kept whole: it is shorter than the secret), and the
    // secret's last characters, which a cut through the value would have kept, are nowhere.
    const end = SECRET.slice(-12);
    for (const text of [logs?.stdout ?? '', logs?.stderr ?? '']) {
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(1024);
      expect(text.startsWith('[secret:PLANTED]')).toBe(true);
      expect(text).not.toContain(end);
    }
    expect(filesContaining(s.home as string, end).hits).toEqual([]);
  });

  test('an llm step: the vendor gets the secret; the transcript, tool ledger and outputs in the store hold only the marker', async ({ expect }) => {
    const dir = tempProject();
    const fake = await startFakeLlmServer();
    try {
      writeAgent(
        dir,
        'keeper',
        `name: keeper
version: 1.0.0
runtime: { type: llm, provider: openai, model: gpt-4o-mini }
instructions: Keep the token safe.
tools:
  - module: tools.mjs
`,
        { 'tools.mjs': `export const store_token = { name: 'store_token', description: 'Store a token', parameters: { type: 'object', properties: { token: { type: 'string' } }, required: ['token'] }, execute: ({ token }) => ({ stored: token }) };\n` },
      );
      writeWorkflow(dir, 'keep', 'name: keep\nversion: 1.0.0\nsteps:\n  - id: talk\n    agent: keeper\n    inputs: { message: "the token is ${secrets.PLANTED}" }\n');
      fake.push({ toolCalls: [{ id: 'call_1', name: 'store_token', arguments: { token: SECRET } }] }, { content: `Stored ${SECRET} for you.` });
      const swarm = await Swarm.open({
        cwd: dir,
        env: { SWARM_HOME: join(dir, '.swarm'), SWARM_SECRET_PLANTED: SECRET },
        providerEnv: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl },
      });
      let id: string;
      try {
        await swarm.registerAgent(join(dir, 'agents', 'keeper'));
        await swarm.registerWorkflow(join(dir, 'workflows', 'keep'));
        id = await swarm.startRun('keep', {});
        const { run, steps } = await swarm.runToCompletion(id);
        expect(run.status).toBe('completed');
        // The model really saw the value (in the user message), and the tool got it from the model.
        expect(JSON.stringify(fake.requests[0]?.body)).toContain(SECRET);
        expect((steps[0]?.outputs as { content: string }).content).toBe('Stored [secret:PLANTED] for you.');
        const session = await swarm.getSession(`${id}/talk`);
        expect(session.messages.map((m) => m.content ?? '').join('\n')).toContain('the token is [secret:PLANTED]');
        expect(session.toolCalls.map((t) => [t.arguments, t.output])).toEqual([['{"token":"[secret:PLANTED]"}', '{"stored":"[secret:PLANTED]"}']]);
        expect((await swarm.verify(id)).ok).toBe(true);
      } finally {
        await swarm.close();
      }
      const found = filesContaining(join(dir, '.swarm'), SECRET);
      expect(found.files).toBeGreaterThanOrEqual(2);
      expect(found.hits).toEqual([]);
    } finally {
      await fake.close();
      removeProject(dir);
    }
  });
});
