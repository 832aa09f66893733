/** Agents and workflows: list, show (a workflow with its DAG and schemas), enable and disable. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { AgentRecord } from '../../store/types.js';
import type { Swarm } from '../../swarm.js';
import { agentJson, workflowJson, workflowListJson } from '../../views/run.js';
import { AgentParams, AgentSchema, problems, WorkflowParams, WorkflowSchema, WorkflowSummarySchema } from '../schemas.js';
import { sendJson } from '../send.js';

const LlmSchema = z
  .object({
    provider: z.string().openapi({ example: 'openai' }),
    model: z.string().openapi({ example: 'gpt-4o-mini' }),
    temperature: z.number().nullable(),
    max_turns: z.number().int(),
    instructions: z.string().nullable().openapi({ description: 'The system instructions as written (references unresolved)' }),
    tools: z.array(z.record(z.string(), z.unknown())).openapi({ description: 'The tool entries as agent.yaml declares them', example: [{ module: 'tools.ts', export: 'refund', needs_approval: true }] }),
    handoffs: z.array(z.string()).openapi({ description: 'Agents it may hand the conversation to', example: ['billing', 'refunds'] }),
  })
  .openapi('LlmAgent', { description: 'An LLM agent’s loop (runtime llm); null for other runtimes' });

/** An LLM agent's model, tools and handoffs (secrets are references in agent.yaml, never values). */
function llmJson(rec: AgentRecord): z.infer<typeof LlmSchema> | null {
  const l = rec.manifest.llm;
  if (!l) return null;
  return { provider: l.provider, model: l.model, temperature: l.temperature ?? null, max_turns: l.max_turns, instructions: l.instructions ?? null, tools: l.tools, handoffs: l.handoffs };
}

const listAgents = createRoute({
  method: 'get',
  path: '/api/v1/agents',
  tags: ['registry'],
  summary: 'Registered agents (every version)',
  responses: { 200: { description: 'agents', content: { 'application/json': { schema: z.object({ agents: z.array(AgentSchema) }) } } } },
});

const showAgent = createRoute({
  method: 'get',
  path: '/api/v1/agents/{name}',
  tags: ['registry'],
  summary: 'One agent (the newest version, or name@version)',
  request: { params: AgentParams },
  responses: { 200: { description: 'the agent', content: { 'application/json': { schema: AgentSchema.extend({ versions: z.array(z.string()), llm: LlmSchema.nullable() }) } } }, ...problems(404) },
});

const listWorkflows = createRoute({
  method: 'get',
  path: '/api/v1/workflows',
  tags: ['registry'],
  summary: 'Registered workflows (every version)',
  responses: { 200: { description: 'workflows', content: { 'application/json': { schema: z.object({ workflows: z.array(WorkflowSummarySchema) }) } } } },
});

const showWorkflow = createRoute({
  method: 'get',
  path: '/api/v1/workflows/{name}',
  tags: ['registry'],
  summary: 'One workflow with its DAG, input JSON Schema and output JSON Schema',
  request: { params: WorkflowParams },
  responses: { 200: { description: 'the workflow', content: { 'application/json': { schema: WorkflowSchema } } }, ...problems(404) },
});

const setEnabled = (enabled: boolean): ReturnType<typeof createRoute> =>
  createRoute({
    method: 'post',
    path: `/api/v1/workflows/{name}/${enabled ? 'enable' : 'disable'}`,
    tags: ['registry'],
    summary: enabled ? 'Enable a workflow (every version): runs can start again' : 'Disable a workflow (every version): new runs are refused with 403',
    request: { params: WorkflowParams },
    responses: { 200: { description: 'the workflow as it is now', content: { 'application/json': { schema: WorkflowSchema } } }, ...problems(404) },
  });

export function registryRoutes(app: OpenAPIHono, swarm: Swarm): void {
  app.openapi(listAgents, async (c) => sendJson(c, 200, { agents: (await swarm.listAgents()).map(agentJson) }));

  app.openapi(showAgent, async (c) => {
    const rec = await swarm.getAgent(c.req.valid('param').name);
    const versions = (await swarm.listAgents(rec.name)).map((a) => a.version);
    return sendJson(c, 200, { ...agentJson(rec), versions, llm: llmJson(rec) });
  });

  app.openapi(listWorkflows, async (c) => sendJson(c, 200, { workflows: (await swarm.listWorkflows()).map(workflowListJson) }));

  const show = async (ref: string): Promise<Record<string, unknown>> => {
    const wf = await swarm.getWorkflow(ref);
    // The agent each step runs now (the newest version its reference matches), for the output schema.
    const agents = new Map<string, AgentRecord | undefined>();
    for (const s of wf.manifest.steps) agents.set(s.id, s.kind || s.workflow !== undefined ? undefined : await swarm.getAgent(s.agent).catch(() => undefined));
    const versions = (await swarm.listWorkflows(wf.name)).map((w) => w.version);
    return { ...workflowJson(wf, (id) => agents.get(id)), versions };
  };

  app.openapi(showWorkflow, async (c) => sendJson(c, 200, await show(c.req.valid('param').name)));

  for (const enabled of [true, false]) {
    app.openapi(setEnabled(enabled), async (c) => {
      const ref = c.req.param('name') ?? '';
      await swarm.setWorkflowEnabled(ref, enabled);
      return sendJson(c, 200, await show(ref));
    });
  }
}
