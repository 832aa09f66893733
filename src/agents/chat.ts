/**
 * A conversation outside a workflow (`swarm chat`, or an application's own chat): each user message
 * runs the agent loop on the conversation so far, journaled in the store under one session id, so a
 * chat can be continued later (`--session`) and an interrupted turn resumes without repeating a
 * finished tool call.
 */
import { ResumeError } from '../core/errors.js';
import type { Store } from '../store/store.js';
import type { Agent, ContextVariables } from './agent.js';
import { run, upgradeEnvelope, type ApprovalDecision, type LoopEvent, type LoopHooks, type LoopJournal, type RunResult } from './loop.js';
import { storeJournal } from './store-journal.js';
import type { ToolCall } from './types.js';

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
    const saved = await base.load();
    let fresh: boolean;
    let input = [{ role: 'user' as const, content: text }] as RunResult['messages'];
    let agent = this.o.start;
    let contextVariables = this.o.contextVariables ?? {};
    if (saved) {
      const env = upgradeEnvelope(saved);
      const current = this.o.agents.get(env.payload.agent);
      if (!current) throw new ResumeError('CHECKPOINT_AGENT_MISSING', `session ${this.o.sessionId} cannot continue: its agent '${env.payload.agent}' is not known here`, { session: this.o.sessionId });
      if (env.payload.status !== 'completed') {
        // An interrupted turn: finish it first (recorded responses and tool results are re-used).
        await this.loop(base, false, current, [], {}, options);
        return this.send(text, options);
      }
      fresh = true;
      input = [...env.payload.messages, ...input];
      agent = current;
      contextVariables = env.payload.context_variables;
    } else {
      fresh = true;
    }
    return this.loop(base, fresh, agent, input, contextVariables, options);
  }

  private async loop(base: LoopJournal, fresh: boolean, agent: Agent, input: RunResult['messages'], contextVariables: ContextVariables, options: SendOptions): Promise<RunResult> {
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
      const r = await run(agent, input, {
        journal,
        contextVariables,
        onRejected: 'tell_model',
        resolveAgent: (name) => this.o.agents.get(name),
        ...(this.o.maxTurns !== undefined ? { maxTurns: this.o.maxTurns } : {}),
        ...(this.o.hooks ? { hooks: this.o.hooks } : {}),
        ...(this.o.costOf ? { costOf: this.o.costOf } : {}),
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
