/**
 * A conversation outside a workflow (`swarm chat`, or an application's own chat): each user message
 * runs the agent loop on the conversation so far, journaled in the store under one session id, so a
 * chat can be continued later (`--session`) and an interrupted turn resumes without repeating a
 * finished tool call.
 */
import { ResumeError } from '../core/errors.js';
import type { Store } from '../store/store.js';
import type { Agent, ContextVariables } from './agent.js';
import { LoopError, run, upgradeEnvelope, type ApprovalDecision, type LoopEvent, type LoopHooks, type LoopJournal, type RunOptions, type RunResult } from './loop.js';
import { storeJournal } from './store-journal.js';
import type { ToolCall } from './types.js';
import type { LoopGuard } from '../guardrails/guard.js';

export interface ChatOptions {
  store: Store;
  sessionId: string;
  /** The agent a new session starts with (a continued session goes on with the agent that answered last). */
  start: Agent;
  /** Every agent the conversation may reach (handoffs), by name. */
  agents: ReadonlyMap<string, Agent>;
  contextVariables?: ContextVariables;
  maxTurns?: number;
  hooks?: LoopHooks;
  costOf?: NonNullable<Parameters<typeof run>[2]>['costOf'];
  /** The largest message, in bytes (`limits.llm_message_bytes`); default the loop's. */
  maxMessageBytes?: number;
  /** The guardrails (budgets, breakers, injection policy, escalation, memory, redaction), made afresh for each turn's loop. */
  guard?: () => Promise<LoopGuard | undefined>;
}

export interface SendOptions {
  onEvent?: (e: LoopEvent) => void;
  stream?: boolean;
  signal?: AbortSignal;
  /** Decide tool calls that need approval (default: reject them all). */
  approve?: (calls: ToolCall[]) => Promise<ReadonlyMap<string, ApprovalDecision>>;
}

export class ChatSession {
  private readonly decisions = new Map<string, ApprovalDecision>();

  constructor(private readonly o: ChatOptions) {}

  get id(): string {
    return this.o.sessionId;
  }

  /** Send a user message and run the loop to its answer (approvals are asked through `approve`). */
  async send(text: string, options: SendOptions = {}): Promise<RunResult> {
    const base = storeJournal(this.o.store, { sessionId: this.o.sessionId, agent: this.o.start.name });
    let saved = await base.load();
    if (saved && upgradeEnvelope(saved).payload.status !== 'completed') {
      // An interrupted turn (a crash, a pause, max_turns): finish it first; recorded responses and
      // tool results are re-used. If it cannot finish, its open tool calls are closed with an error.
      const env = upgradeEnvelope(saved);
      try {
        await this.loop(base, false, this.agentOf(env.payload.agent), [], {}, options);
      } catch (e) {
        if (!(e instanceof LoopError)) throw e;
      }
      saved = await base.load();
    }
    const user = { role: 'user' as const, content: text };
    if (!saved) return this.loop(base, true, this.o.start, [user], this.o.contextVariables ?? {}, options);
    const p = upgradeEnvelope(saved).payload;
    const history = [...p.messages];
    const answered = new Set(history.flatMap((m) => (m.role === 'tool' ? [m.tool_call_id] : [])));
    for (const c of p.pending_tool_calls) {
      if (!answered.has(c.id)) history.push({ role: 'tool', tool_call_id: c.id, name: c.name, content: 'Error: this call was not run (the turn was abandoned).' });
    }
    return this.loop(base, true, this.agentOf(p.agent), [...history, user], p.context_variables, options, {
      usage: p.usage,
      turn: p.turn,
      persistedMessages: p.messages.length,
    });
  }

  private agentOf(name: string): Agent {
    const a = this.o.agents.get(name);
    if (!a) throw new ResumeError('CHECKPOINT_AGENT_MISSING', `session ${this.o.sessionId} cannot continue: its agent '${name}' is not known here`, { session: this.o.sessionId });
    return a;
  }

  private async loop(
    base: LoopJournal,
    fresh: boolean,
    agent: Agent,
    input: RunResult['messages'],
    contextVariables: ContextVariables,
    options: SendOptions,
    continueFrom?: RunOptions['continueFrom'],
  ): Promise<RunResult> {
    let skipLoad = fresh;
    const journal: LoopJournal = {
      ...base,
      sessionId: base.sessionId,
      load: () => {
        if (skipLoad) {
          skipLoad = false;
          return Promise.resolve(undefined);
        }
        return base.load();
      },
      approval: (callId) => Promise.resolve(this.decisions.get(callId)),
    };
    for (;;) {
      const guard = await this.o.guard?.();
      const r = await run(agent, input, {
        ...(guard ? { guard } : {}),
        journal,
        contextVariables,
        onRejected: 'tell_model',
        ...(continueFrom ? { continueFrom } : {}),
        resolveAgent: (name) => this.o.agents.get(name),
        ...(this.o.maxTurns !== undefined ? { maxTurns: this.o.maxTurns } : {}),
        ...(this.o.hooks ? { hooks: this.o.hooks } : {}),
        ...(this.o.costOf ? { costOf: this.o.costOf } : {}),
        ...(this.o.maxMessageBytes !== undefined ? { maxMessageBytes: this.o.maxMessageBytes } : {}),
        ...(options.onEvent ? { onEvent: options.onEvent } : {}),
        ...(options.stream !== undefined ? { stream: options.stream } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (r.status !== 'waiting') return r;
      const calls = r.waitingFor ?? [];
      const decided = options.approve ? await options.approve(calls) : new Map<string, ApprovalDecision>();
      for (const c of calls) this.decisions.set(c.id, decided.get(c.id) ?? { decision: 'rejected', reason: 'not approved' });
    }
  }
}
