/**
 * `runtime.type: llm` agents as workflow steps: the agent loop inside the worker, journaled in the
 * store per turn (session `<run id>/<step id>`), so a crashed or restarted step resumes its
 * conversation and never repeats a finished tool call. Tool approvals pause the step (`waiting`).
 */
import { StepError, errorMessage, isSwarmError } from '../core/errors.js';
import type { AgentManifest } from '../core/manifest/agent.js';
import { resolveValue, type ResolveContext } from '../core/template.js';
import { agent as defineAgent, type Agent, type Tool } from '../agents/agent.js';
import { run, type LoopEvent, type LoopHooks } from '../agents/loop.js';
import { costOf, createModel, isModelCallError, type ModelSpec, type ProvidersConfig } from '../agents/providers/index.js';
import { storeJournal } from '../agents/store-journal.js';
import { loadTools, type ToolSet, type ToolSpec } from '../agents/tools/index.js';
import type { ChatModel, Message } from '../agents/types.js';
import type { Store } from '../store/store.js';
import type { ExecutionContext, ExecutionResult, Executor } from './executor.js';

export interface LlmExecutorOptions {
  store: Store;
  providers: ProvidersConfig;
  env: Readonly<Record<string, string | undefined>>;
  /** Values for `${config.*}` in instructions. */
  config: Readonly<Record<string, unknown>>;
  /** The newest registered version of an agent (for handoffs). */
  findAgent: (name: string) => Promise<{ id: string; path: string; manifest: AgentManifest } | undefined>;
  /** Supply a model instead of the provider's (tests, benchmarks, a custom gateway). */
  models?: (spec: ModelSpec, agentName: string) => ChatModel | undefined;
  /** Loop events of each step (streamed text, tool calls, handoffs), e.g. for an attached terminal. */
  onEvent?: (runId: string, stepId: string, e: LoopEvent) => void;
  hooks?: LoopHooks;
  log?: (m: string) => void;
}

export class LlmExecutor implements Executor {
  constructor(private readonly o: LlmExecutorOptions) {}

  async execute(ctx: ExecutionContext): Promise<ExecutionResult> {
    const toolSets: ToolSet[] = [];
    try {
      const agents = await buildAgents(this.o, { path: ctx.agent.path, manifest: ctx.agent.manifest }, { inputs: ctx.inputs, run: { id: ctx.runId, step: ctx.stepId, attempt: ctx.attempt } }, toolSets, ctx.signal);
      const start = agents.get(ctx.agent.manifest.name) as Agent;
      const messages = inputMessages(ctx.inputs);
      const journal = storeJournal(this.o.store, { sessionId: `${ctx.runId}/${ctx.stepId}`, agent: start.name, runId: ctx.runId, stepId: ctx.stepId, traceId: ctx.runId });
      const spec = ctx.agent.manifest.llm;
      const r = await run(start, messages, {
        contextVariables: (ctx.inputs.context_variables as Record<string, unknown> | undefined) ?? {},
        maxTurns: spec?.max_turns ?? 10,
        deadline: Date.now() + ctx.timeoutMs,
        signal: ctx.signal,
        journal,
        stream: this.o.onEvent !== undefined,
        ...(this.o.onEvent ? { onEvent: (e: LoopEvent) => this.o.onEvent?.(ctx.runId, ctx.stepId, e) } : {}),
        resolveAgent: (name) => agents.get(name),
        costOf: (model, usage) => costOf(model.id, usage, this.o.providers),
        ...(this.o.hooks ? { hooks: this.o.hooks } : {}),
      });
      if (r.status === 'waiting') {
        const calls = r.waitingFor ?? [];
        await this.o.store.requestApprovals(
          calls.map((c) => ({ run_id: ctx.runId, step_id: ctx.stepId, call_id: c.id, tool: c.name, arguments: c.arguments, requested_at: Date.now() })),
        );
        return { ok: 'waiting', reason: `waiting for approval of ${calls.map((c) => `${c.name} (${c.id})`).join(', ')}` };
      }
      if (r.status === 'max_turns') {
        return { ok: false, error: new StepError('MAX_TURNS_EXCEEDED', `agent '${r.agent.name}' did not answer within ${spec?.max_turns ?? 10} turns (max_turns)`, false) };
      }
      const outputs = {
        content: r.output !== undefined ? r.output : r.content,
        agent: r.agent.name,
        usage: r.usage,
        session_id: r.sessionId,
        turns: r.turns,
      };
      return { ok: true, outputs };
    } catch (e) {
      if (ctx.signal.aborted) {
        const reason: unknown = ctx.signal.reason;
        return { ok: false, error: reason instanceof StepError ? reason : new StepError('STEP_ABORTED', errorMessage(reason ?? 'aborted'), true) };
      }
      if (!(e instanceof StepError) && !isModelCallError(e)) await this.o.store.failAgentSession(`${ctx.runId}/${ctx.stepId}`, errorMessage(e)).catch(() => undefined);
      if (e instanceof StepError) return { ok: false, error: e };
      if (isModelCallError(e)) return { ok: false, error: new StepError(e.code, e.message, e.retryable, {}, { cause: e }) };
      if (isSwarmError(e)) return { ok: false, error: new StepError(e.code, e.message, false, e.context, { cause: e }) };
      return { ok: false, error: new StepError('LLM_AGENT_ERROR', errorMessage(e), false, {}, { cause: e }) };
    } finally {
      await Promise.all(toolSets.map((t) => t.close()));
    }
  }
}

/**
 * An llm agent package and every agent reachable through its handoffs, with their tools (loaded into
 * `toolSets`: close them when done) and models. Used by steps and by `swarm chat`.
 */
export async function buildAgents(
o: Pick<LlmExecutorOptions, 'findAgent' | 'models' | 'providers' | 'env' | 'config' | 'log'>,
root: { path: string; manifest: AgentManifest },
scope: { inputs: Record<string, unknown>; run?: Record<string, unknown> },
toolSets: ToolSet[],
signal?: AbortSignal,
): Promise<Map<string, Agent>> {
  const manifests = new Map<string, { path: string; manifest: AgentManifest }>();
  const queue: Array<{ path: string; manifest: AgentManifest }> = [root];
  while (queue.length) {
    const a = queue.shift() as { path: string; manifest: AgentManifest };
    if (manifests.has(a.manifest.name)) continue;
    if (a.manifest.runtime.type !== 'llm' || !a.manifest.llm) {
      throw new StepError('HANDOFF_NOT_LLM', `agent '${a.manifest.name}' is a ${a.manifest.runtime.type} agent; handoffs go to llm agents only`, false);
    }
    manifests.set(a.manifest.name, a);
    for (const h of a.manifest.llm.handoffs) {
      if (manifests.has(h)) continue;
      const found = await o.findAgent(h);
      if (!found) throw new StepError('HANDOFF_UNKNOWN', `agent '${a.manifest.name}' hands off to '${h}', which is not registered (swarm agent register …)`, false, { agent: a.manifest.name, handoff: h });
      queue.push(found);
    }
  }
  const built = new Map<string, Agent>();
  // Tools first (MCP servers start concurrently), then the agents, whose handoffs refer to each other by name.
  const tools = await Promise.all(
    [...manifests.values()].map(async ({ path, manifest }) => {
      const set = await loadTools((manifest.llm?.tools ?? []) as unknown as ToolSpec[], { packageDir: path, ...(signal ? { signal } : {}) });
      toolSets.push(set);
      return [manifest.name, set.tools] as const;
    }),
  );
  const toolsOf = new Map<string, Tool[]>(tools);
  for (const { manifest } of manifests.values()) {
    const spec = manifest.llm as NonNullable<AgentManifest['llm']>;
    const modelSpec: ModelSpec = { provider: spec.provider, model: spec.model, ...(spec.base_url ? { baseUrl: spec.base_url } : {}), ...(spec.api ? { api: spec.api } : {}) };
    const model = o.models?.(modelSpec, manifest.name) ?? createModel(modelSpec, o.providers, o.env, o.log ? { onRetry: (i) => o.log?.(`${manifest.name}: ${describeRetry(i)}`) } : {});
    const template = spec.instructions;
    const base: ResolveContext = { inputs: scope.inputs, config: { ...o.config }, ...(scope.run ? { run: scope.run } : {}) };
    built.set(
      manifest.name,
      defineAgent({
        name: manifest.name,
        model,
        ...(template !== undefined
          ? { instructions: (cv: Record<string, unknown>) => String(resolveValue(template, { ...base, context: cv }, `agent '${manifest.name}' instructions`)) }
          : {}),
        tools: toolsOf.get(manifest.name) ?? [],
        handoffs: spec.handoffs,
        ...(spec.output_schema ? { outputSchema: spec.output_schema } : {}),
        ...(spec.temperature !== undefined ? { temperature: spec.temperature } : {}),
        ...(spec.max_output_tokens !== undefined ? { maxOutputTokens: spec.max_output_tokens } : {}),
      }),
    );
  }
  return built;
}

function describeRetry(i: unknown): string {
  const r = i as { attempt?: number; delayMs?: number; status?: number; message?: string };
  return `model call failed${r.status ? ` (${r.status})` : ''}; retry ${r.attempt ?? '?'} in ${r.delayMs ?? '?'} ms${r.message ? `: ${r.message}` : ''}`;
}

/** The user turn: `messages` (a conversation so far) and/or `message` (the new user text). */
export function inputMessages(inputs: Record<string, unknown>): Message[] {
  const out: Message[] = [];
  const list = inputs.messages;
  if (list !== undefined) {
    if (!Array.isArray(list)) throw new StepError('INPUT_INVALID', 'input messages must be an array of chat messages', false);
    list.forEach((m: unknown, i) => {
      const r = m as { role?: unknown; content?: unknown };
      if (!r || typeof r !== 'object' || !['system', 'user', 'assistant', 'tool'].includes(r.role as string)) {
        throw new StepError('INPUT_INVALID', `input messages[${i}] needs a role of system, user, assistant or tool`, false);
      }
      if (r.role !== 'assistant' && typeof r.content !== 'string') throw new StepError('INPUT_INVALID', `input messages[${i}].content must be a string`, false);
      out.push(m as Message);
    });
  }
  if (inputs.message !== undefined) out.push({ role: 'user', content: typeof inputs.message === 'string' ? inputs.message : JSON.stringify(inputs.message) });
  if (out.length === 0) throw new StepError('INPUT_INVALID', "an llm step needs an input 'message' (the user turn) or 'messages'", false);
  return out;
}
