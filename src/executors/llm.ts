/**
 * `runtime.type: llm` agents as workflow steps: the agent loop inside the worker, journaled in the
 * store per turn (session `<run id>/<step id>`), so a crashed or restarted step resumes its
 * conversation and never repeats a finished tool call. Tool approvals pause the step (`waiting`).
 */
import { StepError, errorMessage, isSwarmError } from '../core/errors.js';
import { isTransient } from '../store/store.js';
import type { AgentManifest } from '../core/manifest/agent.js';
import { resolveValue, type ResolveContext } from '../core/template.js';
import { agent as defineAgent, type Agent, type Tool } from '../agents/agent.js';
import type { LoopEvent, LoopHooks } from '../agents/loop.js';
import type { ProvidersConfig } from '../agents/providers/config.js';
import { isModelCallError } from '../agents/providers/errors.js';
import type { ModelSpec } from '../agents/providers/index.js';
import { costOf } from '../agents/providers/prices.js';
import { runSessions, storeJournal } from '../agents/store-journal.js';
import type { ToolSet } from '../agents/tools/index.js';
import type { ToolSpec } from '../agents/tools/spec.js';
import type { ChatModel, Message } from '../agents/types.js';
import type { Store } from '../store/store.js';
import type { EngineMetrics } from '../observability/engine-metrics.js';
import type { NetworkGuard } from '../net/guard.js';
import type { ExecutionContext, ExecutionResult, Executor } from './executor.js';
import type { LoopGuard } from '../guardrails/guard.js';
import type { StepGuardContext } from '../guardrails/index.js';
import type { AgentMemory } from '../memory/agent-memory.js';
import { lazyModule } from '../core/lazy-module.js';

/** The agent loop: loaded at the first llm step, not with every Swarm. */
const agentLoop = lazyModule(() => import('../agents/loop.js'));

export interface LlmExecutorOptions {
  store: Store;
  providers: ProvidersConfig;
  env: Readonly<Record<string, string | undefined>>;
  /** Values for `${config.*}` in instructions and tool entries. */
  config: Readonly<Record<string, unknown>>;
  /** `${secrets.NAME}` in tool entries (HTTP headers and URLs, MCP env and headers). */
  secrets?: (name: string, workflow?: string) => string | undefined;
  /** The newest registered version of an agent (for handoffs). */
  findAgent: (name: string, version?: string) => Promise<{ id: string; path: string; manifest: AgentManifest } | undefined>;
  /** Supply a model instead of the provider's (tests, benchmarks, a custom gateway). */
  models?: (spec: ModelSpec, agentName: string) => ChatModel | undefined;
  /** Loop events of each step (streamed text, tool calls, handoffs), e.g. for an attached terminal. */
  onEvent?: (runId: string, stepId: string, e: LoopEvent) => void;
  hooks?: LoopHooks;
  /** The guardrails of a step (src/guardrails/index.ts createStepGuard); none: no guardrails. */
  guards?: (ctx: StepGuardContext) => Promise<LoopGuard | undefined>;
  /** Model calls, tokens, cost and tool calls (default: none). */
  metrics?: EngineMetrics;
  log?: (m: string) => void;
  /** The network policy of HTTP tools (default: public addresses only). Provider base URLs are not guarded: they are the operator's. */
  network?: NetworkGuard;
  /** The largest message of a conversation, in bytes (`limits.llm_message_bytes`); default the loop's. */
  maxMessageBytes?: number;
  /** Vector memory: the built-in `remember` tool of agents whose `memory.remember.explicit` is on. */
  memory?: AgentMemory;
}

export class LlmExecutor implements Executor {
  constructor(private readonly o: LlmExecutorOptions) {}

  async execute(ctx: ExecutionContext): Promise<ExecutionResult> {
    const toolSets: ToolSet[] = [];
    let sessionId: string | undefined;
    try {
      // The step's session: the newest one, unless it failed (a retry starts a fresh conversation:
      // its turn budget, corrections and rejected approvals do not carry over). A step that runs several
      // conversations (ctx.session) keeps each apart: its sessions are that id and its retries' (`<id>/<attempt>`).
      const base = ctx.session ?? `${ctx.runId}/${ctx.stepId}`;
      const sessions = await runSessions(this.o.store, ctx.runId, { stepId: ctx.stepId, ...(ctx.session !== undefined ? { conversation: base } : {}) });
      const newest = sessions[0];
      sessionId = newest && newest.status !== 'failed' ? newest.id : sessions.length === 0 ? base : `${base}/${ctx.attempt}`;
      const resumed = newest && newest.id === sessionId ? await this.o.store.getAgentSession(sessionId) : undefined;
      const pinned = resumed?.envelope ? (JSON.parse(resumed.envelope) as { payload?: { agent_versions?: Record<string, string> } }).payload?.agent_versions : undefined;

      const secrets = this.o.secrets;
      const { agents, versions, manifests } = await buildAgents(
        secrets ? { ...this.o, secrets: (name) => secrets(name, ctx.workflow) } : this.o,
        { path: ctx.agent.path, manifest: ctx.agent.manifest },
        { inputs: ctx.inputs, run: { id: ctx.runId, step: ctx.stepId, attempt: ctx.attempt } },
        toolSets,
        ctx.signal,
        pinned,
      );
      const start = agents.get(ctx.agent.manifest.name) as Agent;
      const messages = inputMessages(ctx.inputs);
      const journal = storeJournal(this.o.store, { sessionId, agent: start.name, runId: ctx.runId, stepId: ctx.stepId, traceId: ctx.runId, attempt: ctx.attempt });
      const spec = ctx.agent.manifest.llm;
      const guard = await this.o.guards?.({ runId: ctx.runId, stepId: ctx.stepId, attempt: ctx.attempt, workflow: ctx.workflow ?? '', sessionId, agents: manifests, inputs: ctx.inputs, ...(ctx.budget ? { budget: ctx.budget } : {}) });
      const r = await (await agentLoop()).run(start, messages, {
        ...(guard ? { guard } : {}),
        contextVariables: (ctx.inputs.context_variables as Record<string, unknown> | undefined) ?? {},
        maxTurns: spec?.max_turns ?? 10,
        // A little before the step's own timeout, so the loop stops cleanly first.
        deadline: Date.now() + Math.max(0, ctx.timeoutMs - 250),
        signal: ctx.signal,
        journal,
        agentVersions: versions,
        stream: this.o.onEvent !== undefined,
        ...(this.o.onEvent ? { onEvent: (e: LoopEvent) => this.o.onEvent?.(ctx.runId, ctx.stepId, e) } : {}),
        resolveAgent: (name) => agents.get(name),
        costOf: (model, usage) => costOf(model.id, usage, this.o.providers),
        ...(this.o.hooks ? { hooks: this.o.hooks } : {}),
        ...(this.o.metrics ? { metrics: this.o.metrics } : {}),
        ...(this.o.maxMessageBytes !== undefined ? { maxMessageBytes: this.o.maxMessageBytes } : {}),
        ...(ctx.trace ? { traceContext: ctx.trace } : {}),
      });
      if (r.status === 'waiting') {
        const calls = r.waitingFor ?? [];
        await this.o.store.requestApprovals(
          calls.map((c) => ({ run_id: ctx.runId, step_id: ctx.stepId, call_id: c.id, tool: c.name, arguments: c.arguments, requested_at: Date.now() })),
        );
        const why = (c: { id: string }): string => (r.approvalReasons?.[c.id] ? `: ${r.approvalReasons[c.id]}` : '');
        return { ok: 'waiting', reason: `waiting for approval of ${calls.map((c) => `${c.name} (${c.id})${why(c)}`).join(', ')}` };
      }
      if (r.status === 'max_turns') {
        const message = `agent '${r.agent.name}' did not answer within ${spec?.max_turns ?? 10} turns (max_turns)`;
        await this.o.store.failAgentSession(sessionId, message).catch(() => undefined);
        return { ok: false, error: new StepError('MAX_TURNS_EXCEEDED', message, false) };
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
      // The store was away: not the conversation's fault. The step runner gives the step back.
      const cause = (e as { cause?: unknown } | null)?.cause;
      if (isTransient(e)) throw e;
      if (isTransient(cause)) throw cause;
      if (isModelCallError(e)) return { ok: false, error: new StepError(e.code, e.message, e.retryable, {}, { cause: e }) };
      const error =
        e instanceof StepError
          ? e
          : isSwarmError(e)
            ? new StepError(e.code, e.message, e.code === 'DEADLINE_EXCEEDED', e.context, { cause: e })
            : new StepError('LLM_AGENT_ERROR', errorMessage(e), false, {}, { cause: e });
      // The conversation ended in an error: a retry of the step starts a new one. Except an open
      // circuit breaker (CIRCUIT_OPEN, retryable): nothing went wrong in the conversation, so the
      // retry resumes it where it stopped and finished tool calls are not made again.
      if (sessionId && error.code !== 'SESSION_TAKEN_OVER' && error.code !== 'CIRCUIT_OPEN') await this.o.store.failAgentSession(sessionId, error.message).catch(() => undefined);
      return { ok: false, error };
    } finally {
      await Promise.all(toolSets.map((t) => t.close()));
    }
  }
}

/**
 * An llm agent package and every agent reachable through its handoffs, with their tools (loaded into
 * `toolSets`: close them when done) and models. Used by steps and by `swarm chat`. Handoff agents
 * are the newest registered versions, or the `pinned` ones (a resumed session keeps its versions).
 */
export async function buildAgents(
  o: Pick<LlmExecutorOptions, 'findAgent' | 'models' | 'providers' | 'env' | 'config' | 'log' | 'secrets' | 'network' | 'memory'>,
  root: { path: string; manifest: AgentManifest },
  scope: { inputs: Record<string, unknown>; run?: Record<string, unknown> },
  toolSets: ToolSet[],
  signal?: AbortSignal,
  pinned?: Readonly<Record<string, string>>,
): Promise<{ agents: Map<string, Agent>; versions: Record<string, string>; manifests: Map<string, AgentManifest> }> {
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
      const version = pinned?.[h];
      const found = await o.findAgent(h, version);
      if (!found) {
        const what = version ? `version ${version} of '${h}' (the one this conversation started with), which is no longer registered` : `'${h}', which is not registered (swarm agent register …)`;
        throw new StepError('HANDOFF_UNKNOWN', `agent '${a.manifest.name}' hands off to ${what}`, false, { agent: a.manifest.name, handoff: h });
      }
      queue.push(found);
    }
  }
  // Tools first (MCP servers start concurrently), then the agents, whose handoffs refer to each other
  // by name. Every tool set that loaded is handed to the caller to close, even when another failed.
  // The provider SDKs and the MCP client load on first use: commands that run no llm agent never pay for them.
  const [{ loadTools }, { createModel }] = await Promise.all([import('../agents/tools/index.js'), import('../agents/providers/index.js')]);
  const loaded = await Promise.allSettled(
    [...manifests.values()].map(async ({ path, manifest }) => {
      // `${secrets.*}` and `${config.*}` in tool entries (tokens in headers, MCP env) resolve here, in the worker.
      const specs = resolveValue(manifest.llm?.tools ?? [], { config: { ...o.config }, ...(o.secrets ? { secrets: o.secrets } : {}) }, `agent '${manifest.name}' tools`);
      const set = await loadTools(specs as ToolSpec[], { packageDir: path, ...(signal ? { signal } : {}), ...(o.network ? { network: o.network } : {}) });
      return [manifest.name, set] as const;
    }),
  );
  for (const r of loaded) if (r.status === 'fulfilled') toolSets.push(r.value[1]);
  const failed = loaded.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const toolsOf = new Map<string, Tool[]>(loaded.map((r) => (r as PromiseFulfilledResult<readonly [string, ToolSet]>).value).map(([name, set]) => [name, set.tools]));
  const built = new Map<string, Agent>();
  const versions: Record<string, string> = {};
  for (const { manifest } of manifests.values()) {
    versions[manifest.name] = manifest.version;
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
        tools: withMemoryTool(toolsOf.get(manifest.name) ?? [], o.memory?.rememberTool(manifest, scope)),
        handoffs: spec.handoffs,
        ...(spec.output_schema ? { outputSchema: spec.output_schema } : {}),
        ...(spec.temperature !== undefined ? { temperature: spec.temperature } : {}),
        ...(spec.max_output_tokens !== undefined ? { maxOutputTokens: spec.max_output_tokens } : {}),
      }),
    );
  }
  return { agents: built, versions, manifests: new Map([...manifests].map(([name, m]) => [name, m.manifest])) };
}

function withMemoryTool(tools: Tool[], remember: Tool | undefined): Tool[] {
  // A tool of the agent's own named `remember` wins over the built-in one.
  return remember && !tools.some((t) => t.name === remember.name) ? [...tools, remember] : tools;
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
