/**
 * The LLM transcript of a step: the agent session of an `llm` step (its messages, tool calls and
 * usage), the same document as `swarm sessions show <run>/<step> --json`.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { NotFoundError } from '../../core/errors.js';
import type { Swarm } from '../../swarm.js';
import { problems, RunParams } from '../schemas.js';
import { sendJson } from '../send.js';

const transcriptRoute = createRoute({
  method: 'get',
  path: '/api/v1/runs/{id}/steps/{step}/transcript',
  tags: ['runs'],
  summary: "An llm step's agent session: messages, tool calls, tokens and cost",
  request: { params: RunParams.extend({ step: z.string().min(1).openapi({ param: { name: 'step', in: 'path' }, description: 'A step id of the run' }) }) },
  responses: {
    200: {
      description: 'the transcript',
      content: {
        'application/json': {
          schema: z.object({
            run_id: z.string(),
            step: z.string(),
            session: z.record(z.string(), z.unknown()).openapi({ description: 'id, agent, current_agent, status, turns, input_tokens, output_tokens, cost_usd, created_at, updated_at' }),
            messages: z.array(z.record(z.string(), z.unknown())),
            tool_calls: z.array(z.record(z.string(), z.unknown())),
          }),
        },
      },
    },
    ...problems(400, 404),
  },
});

function parsed(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function transcriptRoutes(app: OpenAPIHono, swarm: Swarm): void {
  app.openapi(transcriptRoute, async (c) => {
    const { id, step } = c.req.valid('param');
    const { run, steps } = await swarm.getRun(id);
    if (!steps.some((s) => s.step_id === step)) throw new NotFoundError('step', step, `run ${run.id} has steps ${steps.map((s) => s.step_id).join(', ')}`);
    let found;
    try {
      found = await swarm.getSession(`${run.id}/${step}`);
    } catch (e) {
      // The step exists but never talked to a model: say so, not "recent sessions: …".
      if ((e as { code?: string }).code === 'SESSION_NOT_FOUND') throw new NotFoundError('session', `${run.id}/${step}`, `step '${step}' has no agent session (only llm steps have a transcript, once they start)`);
      throw e;
    }
    const { envelope: _envelope, ...session } = found.session;
    return sendJson(c, 200, {
      run_id: run.id,
      step,
      session,
      messages: found.messages.map((m) => ({ ...m, tool_calls: parsed(m.tool_calls) })),
      tool_calls: found.toolCalls.map((t) => ({ ...t, arguments: parsed(t.arguments), context_variables: parsed(t.context_variables) })),
    });
  });
}
