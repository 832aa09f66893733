/**
 * Vector memory in the agent loop, as a `LoopGuard` (the memory slot of createStepGuard):
 *
 * - before an agent's first model call in the session: recall for the latest user message, keep the
 *   note in the guard state (so a resumed session shows the model the same note) and put it before
 *   the conversation in every request of that agent; the note is untrusted content (`markUntrusted`);
 * - a tool's result (per `remember.tool_results`): written before the loop records it, with the
 *   dedup key `<session>/<turn>/<call id>`, so a call re-run after a crash writes once;
 * - the final answer (per `remember.conversation_summary`): written with the key `<session>/summary/<agent>`.
 *
 * @example
 *   const guard = memoryGuard(memory, ctx); // undefined when no agent of the step has memory:
 */
import { StepError } from '../core/errors.js';
import type { AgentManifest } from '../core/manifest/agent.js';
import type { MemorySpec } from '../core/manifest/memory.js';
import { validateAgainst } from '../core/io-schema.js';
import { markUntrusted, type GuardTurn, type LoopGuard } from '../guardrails/guard.js';
import type { StepGuardContext } from '../guardrails/index.js';
import type { InjectionScreen } from '../guardrails/injection.js';
import type { Agent } from '../agents/agent.js';
import type { Message } from '../agents/types.js';
import { resolveNamespace, type AgentMemory } from './agent-memory.js';

/** What the guard keeps per agent in the session's guard state. */
interface RecallState {
  namespace: string;
  /** The model call it was recalled for. */
  turn: number;
  note: string | null;
  /** What the user asked (the recall's query): the summary's question, whatever the runtime adds later as user turns (schema retries, warnings). */
  query?: string;
}

export function memoryGuard(memory: AgentMemory, ctx: StepGuardContext, screen?: InjectionScreen): LoopGuard | undefined {
  const specs = new Map<string, { spec: MemorySpec; manifest: AgentManifest; namespace: string }>();
  for (const [name, m] of ctx.agents) {
    const spec = m.llm?.memory;
    if (spec) specs.set(name, { spec, manifest: m, namespace: resolveNamespace(spec.namespace, ctx.inputs) });
  }
  if (specs.size === 0) return undefined;
  const origin = { run_id: ctx.runId, step_id: ctx.stepId, session_id: ctx.sessionId };
  const recalled = (t: GuardTurn): Record<string, RecallState> => (t.state.memory ??= {}) as Record<string, RecallState>;

  return {
    async beforeModelCall(t) {
      const mine = specs.get(t.agent.name);
      if (!mine) return;
      const seen = recalled(t);
      let r = seen[t.agent.name];
      if (!r) {
        checkToolResults(mine.spec, t.agent);
        const query = lastUserText(t.messages);
        const recalledNote = (await memory.recall(mine.spec, mine.namespace, query, await memory.embedderOf(mine.spec, mine.manifest))).note;
        const source = { kind: 'memory', name: mine.namespace, turn: t.turn + 1 };
        // Through the injection policy first (warn, sanitize, or reject: then no note at all).
        const note = recalledNote && screen ? await screen(recalledNote, { agent: t.agent.name, state: t.state, turn: t.turn + 1, source }) : recalledNote;
        r = { namespace: mine.namespace, turn: t.turn + 1, note: note ?? null, query: query.slice(0, 600) };
        seen[t.agent.name] = r;
        if (note) markUntrusted(t.state, source);
      }
      if (!r.note) return;
      return { request: { ...t.request, messages: [{ role: 'user', content: r.note }, ...t.request.messages] } };
    },

    async onToolResult(t) {
      const mine = specs.get(t.agent.name);
      const want = mine?.spec.remember.tool_results;
      // Replayed results were written when they were first recorded (before the record).
      if (!mine || !want || t.replayed || !t.tool || t.result.is_error || t.result.handoff || t.tool.origin?.kind === 'memory') return;
      if (Array.isArray(want) && !want.includes(t.tool.name)) return;
      await memory.write(await memory.embedderOf(mine.spec, mine.manifest), [
        {
          namespace: mine.namespace,
          text: `${t.tool.name}(${t.result.arguments}) returned: ${t.result.output}`,
          metadata: { agent: t.agent.name, tool: t.tool.name },
          source: 'tool_result',
          ...origin,
          dedup_key: `${t.sessionId}/${t.result.turn}/${t.result.call_id}`,
        },
      ]);
    },

    async onAnswer(t) {
      const mine = specs.get(t.agent.name);
      if (!mine?.spec.remember.conversation_summary || (t.message.role === 'assistant' && t.message.tool_calls?.length)) return;
      const answer = t.message.content ?? '';
      // An answer that will be sent back (it does not match the output schema) is not the conversation's end.
      if (t.agent.outputSchema && !matches(answer, t.agent.outputSchema)) return;
      await memory.write(await memory.embedderOf(mine.spec, mine.manifest), [
        {
          namespace: mine.namespace,
          text: summary(recalled(t)[t.agent.name]?.query ?? lastUserText(t.messages), answer),
          metadata: { agent: t.agent.name, turn: t.turn },
          source: 'conversation_summary',
          ...origin,
          dedup_key: `${t.sessionId}/summary/${t.agent.name}`,
        },
      ]);
    },
  };
}

/**
 * `remember.tool_results` names only tools the agent has: registration refused the names its
 * agent.yaml could not give; one a module or an MCP server was to give, and did not, fails the step
 * here, before its first model call (else nothing would ever be remembered, and nobody told).
 */
function checkToolResults(spec: MemorySpec, agent: Agent): void {
  const want = spec.remember.tool_results;
  if (!Array.isArray(want)) return;
  const have = (agent.tools ?? []).filter((t) => t.origin?.kind !== 'memory').map((t) => t.name);
  const missing = want.filter((n) => !have.includes(n));
  if (missing.length === 0) return;
  throw new StepError(
    'MEMORY_TOOL_UNKNOWN',
    `agent '${agent.name}': memory.remember.tool_results names ${missing.map((n) => `'${n}'`).join(', ')}, which ${missing.length === 1 ? 'is not one of its tools' : 'are not among its tools'} (its tools: ${have.join(', ') || 'none'}); name tools it has in its agent.yaml`,
    false,
    { agent: agent.name, tools: missing },
  );
}

/** The deterministic summary of a conversation: what the user asked last, and the answer. */
export function summary(question: string, answer: string): string {
  const q = question.replace(/\s+/g, ' ').trim();
  const a = answer.replace(/\s+/g, ' ').trim();
  return `${q ? `Asked: ${q.length > 500 ? `${q.slice(0, 500)}…` : q}\n` : ''}Answered: ${a}`;
}

function lastUserText(messages: readonly Message[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as Message;
    if (m.role === 'user' && typeof m.content === 'string' && !m.content.startsWith('<memory ')) return m.content;
  }
  return '';
}

function matches(text: string, schema: Record<string, unknown>): boolean {
  try {
    const value: unknown = JSON.parse(text.replace(/^\s*```(?:json)?\s*|\s*```\s*$/g, ''));
    return validateAgainst(schema, value).length === 0;
  } catch {
    return false;
  }
}
