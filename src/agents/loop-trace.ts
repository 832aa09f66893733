/**
 * The agent loop's spans, after the OpenTelemetry GenAI semantic conventions: `invoke_agent {agent}`
 * around a loop, `chat {model}` (CLIENT) around each model call, `execute_tool {tool}` around each
 * tool call. Content (messages, instructions, tool arguments and results) is recorded only when
 * `configureTracing({ captureMessageContent: true })` opted in, through its `redact`. Nothing at all happens while no
 * OpenTelemetry SDK is registered.
 */
import { capturesContent, inSpan, spanContent, SpanKind, SpanStatusCode, type Context } from '../observability/tracing.js';
import type { ChatModel, Message, ModelRequest, ModelResponse, ToolCall } from './types.js';
import type { RecordedToolCall, RunResult } from './loop.js';

/** `openai/gpt-4o-mini` → provider `openai`, model `gpt-4o-mini`; a bare id has no provider. */
function splitModelId(id: string): { provider: string; model: string } {
  const i = id.indexOf('/');
  return i > 0 ? { provider: id.slice(0, i), model: id.slice(i + 1) } : { provider: 'unknown', model: id };
}

/**
 * One agent loop as an `invoke_agent {agent}` span, a child of `parent` (a step attempt's span);
 * `conversationId` is the loop's session (a step's is `<run id>/<step id>`). `fn` gets the span's
 * context, the parent of the loop's model and tool call spans.
 *
 * @example
 *   const r = await traceAgentLoop('triage', 'run-1/answer', options.traceContext, (ctx) => runLoop(start, messages, { ...options, traceContext: ctx }));
 */
export function traceAgentLoop(agent: string, conversationId: string | undefined, parent: Context | undefined, fn: (ctx: Context | undefined) => Promise<RunResult>): Promise<RunResult> {
  return inSpan(
    `invoke_agent ${agent}`,
    {
      kind: SpanKind.INTERNAL,
      parent,
      attributes: () => ({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': agent, ...(conversationId ? { 'gen_ai.conversation.id': conversationId } : {}) }),
    },
    async (span, ctx) => {
      const r = await fn(ctx);
      span?.setAttributes({
        'swarm.agent.status': r.status,
        'swarm.agent.final': r.agent.name,
        'swarm.agent.turns': r.turns,
        'gen_ai.usage.input_tokens': r.usage.input_tokens,
        'gen_ai.usage.output_tokens': r.usage.output_tokens,
      });
      return r;
    },
  );
}

/**
 * One model call as a `chat {model}` CLIENT span, a child of `parent` (the loop's span).
 *
 * @example
 *   const response = await traceChat(model, request, 'triage', sessionId, loopCtx, () => model.generate(request));
 */
export function traceChat(model: ChatModel, request: ModelRequest, agent: string, conversationId: string, parent: Context | undefined, fn: (ctx: Context | undefined) => Promise<ModelResponse>): Promise<ModelResponse> {
  const { provider, model: name } = splitModelId(model.id);
  return inSpan(
    `chat ${name}`,
    {
      kind: SpanKind.CLIENT,
      parent,
      attributes: () => ({
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': provider,
        'gen_ai.request.model': name,
        'gen_ai.agent.name': agent,
        'gen_ai.conversation.id': conversationId,
        ...(request.temperature !== undefined ? { 'gen_ai.request.temperature': request.temperature } : {}),
        ...(request.maxOutputTokens !== undefined ? { 'gen_ai.request.max_tokens': request.maxOutputTokens } : {}),
        ...(capturesContent()
          ? {
              'gen_ai.system_instructions': spanContent(JSON.stringify([{ type: 'text', content: request.system }])),
              'gen_ai.input.messages': spanContent(JSON.stringify(request.messages.map(semconvMessage))),
            }
          : {}),
      }),
    },
    async (span, ctx) => {
      const r = await fn(ctx);
      if (span) {
        span.setAttributes({
          'gen_ai.response.model': name,
          'gen_ai.response.finish_reasons': [r.finishReason],
          'gen_ai.usage.input_tokens': r.usage.input_tokens,
          'gen_ai.usage.output_tokens': r.usage.output_tokens,
          ...(r.id ? { 'gen_ai.response.id': r.id } : {}),
        });
        if (capturesContent()) {
          const out: Message = { role: 'assistant', content: r.content, ...(r.toolCalls.length ? { tool_calls: r.toolCalls } : {}) };
          span.setAttribute('gen_ai.output.messages', spanContent(JSON.stringify([{ ...semconvMessage(out), finish_reason: r.finishReason }])));
        }
      }
      return r;
    },
  );
}

/**
 * One tool call as an `execute_tool {tool}` span, a child of `parent` (the loop's span); `fn` gets
 * its context (the tool's outgoing requests name it). A call that ends in an error result (the model
 * is told) is a failed span with `error.type` `tool_error`.
 *
 * @example
 *   const rec = await traceTool(call, 'triage', sessionId, loopCtx, (ctx) => executeTool(...));
 */
export function traceTool(call: ToolCall, agent: string, conversationId: string, parent: Context | undefined, fn: (ctx: Context | undefined) => Promise<RecordedToolCall>): Promise<RecordedToolCall> {
  return inSpan(
    `execute_tool ${call.name}`,
    {
      kind: SpanKind.INTERNAL,
      parent,
      attributes: () => ({
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': call.name,
        'gen_ai.tool.call.id': call.id,
        'gen_ai.tool.type': 'function',
        'gen_ai.agent.name': agent,
        'gen_ai.conversation.id': conversationId,
        ...(capturesContent() ? { 'gen_ai.tool.call.arguments': spanContent(call.arguments) } : {}),
      }),
    },
    async (span, ctx) => {
      const rec = await fn(ctx);
      if (span) {
        if (capturesContent()) span.setAttribute('gen_ai.tool.call.result', spanContent(rec.output));
        if (rec.is_error) {
          span.setAttribute('error.type', 'tool_error');
          // The output is content (it may quote arguments, data or a secret): on the span only when
          // opted in, redacted before it is cut (a cut could split a secret the redaction then misses).
          span.setStatus({ code: SpanStatusCode.ERROR, ...(capturesContent() ? { message: spanContent(rec.output).slice(0, 500) } : {}) });
        }
      }
      return rec;
    },
  );
}

/** A chat message in the GenAI conventions' JSON shape (role and parts). */
function semconvMessage(m: Message): Record<string, unknown> {
  switch (m.role) {
    case 'system':
    case 'user':
      return { role: m.role, parts: [{ type: 'text', content: m.content }] };
    case 'assistant':
      return {
        role: 'assistant',
        parts: [
          ...(m.content !== null && m.content !== '' ? [{ type: 'text', content: m.content }] : []),
          ...(m.tool_calls ?? []).map((c) => ({ type: 'tool_call', id: c.id, name: c.name, arguments: c.arguments })),
        ],
      };
    case 'tool':
      return { role: 'tool', parts: [{ type: 'tool_call_response', id: m.tool_call_id, response: m.content }] };
  }
}
