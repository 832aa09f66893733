/**
 * Redaction in process: what the model sees is configured apart from what is stored (both ways),
 * and the storage policy on PostgreSQL (every table searched for the planted values).
 */
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Swarm } from '../src/swarm.js';
import { ScriptedModel } from '../src/testing/scripted-model.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { ARGS_EMAIL, expectNoneOf, INPUT, POLICY_YAML, REPLY_TEXT, SECRET_VALUE, TOOL } from './helpers/planted.js';
import { removeProject, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) removeProject(d);
});
afterAll(async () => {
  await stopPgTestServer();
});

const TOOLS_JS = `export const lookup = {
  name: 'lookup',
  description: 'Look the customer up',
  parameters: { type: 'object', properties: { user: { type: 'string' } } },
  execute: () => (${JSON.stringify(TOOL)}),
};
`;

function project(swarmYaml: string, agentExtra = ''): string {
  const dir = tempProject(swarmYaml);
  dirs.push(dir);
  writeAgent(dir, 'clerk', `name: clerk\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: gpt-4o-mini }\ninstructions: "You help customers."\ntools:\n  - module: tools.mjs\n${agentExtra}`, { 'tools.mjs': TOOLS_JS });
  writeWorkflow(dir, 'ask', 'name: ask\nversion: 1.0.0\nsteps:\n  - id: chat\n    agent: clerk\n    inputs: { message: "${trigger.message}" }\n');
  return dir;
}

async function runAsk(swarm: Swarm, dir: string, input: Record<string, unknown>): Promise<{ runId: string; stored: string }> {
  await swarm.registerAgent(join(dir, 'agents', 'clerk'));
  await swarm.registerWorkflow(join(dir, 'workflows', 'ask'));
  const runId = await swarm.startRun('ask', input);
  const { run } = await swarm.runToCompletion(runId);
  expect(run.status).toBe('completed');
  const [session] = await swarm.store.listAgentSessions({ run_id: runId });
  const stored = JSON.stringify([await swarm.store.getAgentMessages(session!.id), await swarm.store.listToolCalls(session!.id), await swarm.store.getAgentSession(session!.id)]);
  return { runId, stored };
}

describe('the model view, apart from storage', () => {
  it('a class allowed in storage but redacted for the model never reaches the model, and the other way round', async () => {
    // Storage: e-mails allowed, phones redacted. The model: e-mails redacted (the agent's), phones allowed.
    const dir = project('name: mv\nguardrails:\n  redaction:\n    email: allow\n    phone: redact\n    model:\n      phone: allow\n', 'guardrails:\n  redaction:\n    model:\n      email: redact\n');
    const model = new ScriptedModel([{ toolCalls: [{ name: 'lookup', arguments: { user: ARGS_EMAIL } }] }, { content: 'done' }]);
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') }, models: () => model });
    try {
      const { stored } = await runAsk(swarm, dir, { message: `I am ${INPUT.email}, call ${INPUT.phone}` });
      const seen = JSON.stringify(model.requests);
      // E-mails: stored as they are, never shown to the model (the input's, the tool's, the model's own arguments).
      for (const v of [INPUT.email, TOOL.email, ARGS_EMAIL]) expect(seen).not.toContain(v);
      expect(seen).toContain('[EMAIL]');
      for (const v of [INPUT.email, TOOL.email, ARGS_EMAIL]) expect(stored).toContain(v);
      // Phones: the tool's reached the model as it is; stored redacted (the input's was stored before the model saw it).
      expect(seen).toContain(TOOL.phone);
      expect(stored).not.toContain(TOOL.phone);
      expect(stored).toContain('[PHONE]');
    } finally {
      await swarm.close();
    }
  });

  it('secret: redact in the model view shows the model the marker; by default the model sees the conversation as it is', async () => {
    const dir = project('name: mv2\nguardrails:\n  redaction:\n    model:\n      secret: redact\n');
    const model = new ScriptedModel([{ toolCalls: [{ name: 'lookup', arguments: {} }] }, { content: 'done' }]);
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_SECRET_PLANTED: SECRET_VALUE }, models: () => model });
    try {
      await runAsk(swarm, dir, { message: 'hello' });
      const seen = JSON.stringify(model.requests);
      expect(seen).not.toContain(SECRET_VALUE);
      expect(seen).toContain('[secret:PLANTED]');
      // Classes not named under model: are not hidden from it.
      expect(seen).toContain(TOOL.email);
    } finally {
      await swarm.close();
    }
  });
});

describe('the storage policy on PostgreSQL', () => {
  it('no table holds a planted value; the placeholders are stored instead', async () => {
    const server = await pgTestServer();
    const url = await server.createDatabase();
    const dir = project(`name: pg\n${POLICY_YAML}`);
    const model = new ScriptedModel([{ toolCalls: [{ name: 'lookup', arguments: { user: ARGS_EMAIL } }] }, { content: REPLY_TEXT }]);
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_DATABASE_URL: url, SWARM_SECRET_PLANTED: SECRET_VALUE }, models: () => model });
    try {
      expect(swarm.store.kind).toBe('postgres');
      const { runId } = await runAsk(swarm, dir, { ...INPUT, message: `Find ${INPUT.email}` });
      // The model saw the real tool result: the plant went through.
      expect(JSON.stringify(model.requests[1])).toContain(TOOL.email);
      const tables = await server.query(url, "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'");
      expect(tables.rows.length).toBeGreaterThan(5);
      let everything = '';
      for (const t of tables.rows as Array<{ table_schema: string; table_name: string }>) {
        const rows = await server.query(url, `SELECT t::text AS row FROM "${t.table_schema}"."${t.table_name}" t`);
        everything += (rows.rows as Array<{ row: string }>).map((r) => r.row).join('\n');
      }
      expect(everything).toContain(runId);
      expectNoneOf('the PostgreSQL database', everything);
      for (const p of ['[EMAIL]', '****1111', '[IBAN]', '[NATIONAL_ID]', '[API_KEY]', '[TOKEN]', '[secret:PLANTED]', '[DROPPED:employee_id]', '****0005']) expect(everything, p).toContain(p);
    } finally {
      await swarm.close();
      await server.dropDatabase(url);
    }
  });
});
