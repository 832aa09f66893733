/**
 * The agent-loop turn benchmark's systems, each run in its own child process (see llm-turn.ts).
 *
 * One workload for all: an agent with one trivial tool (`add`), and a scripted model (in process, no
 * network) that answers `turns` times with one call of the tool, then with a final text. A *turn* is
 * one model call, its tool call and the tool's result. Conversations run one after another (or
 * `inFlight` at a time), each one a fresh session.
 *
 *   swarm        the Swarm loop (`run`) with `memoryJournal()`, or `storeJournal()` on a SQLite store
 *                (`durability` full or process) or a PostgreSQL store
 *   openai-agents `@openai/agents`: its Runner with a custom Model answering from the same script,
 *                 tracing disabled, the same tool (a zod schema, as the SDK's examples define tools)
 */
import { Agent as OaAgent, Runner, setTracingDisabled, tool as oaTool, Usage, type Model, type ModelProvider, type ModelRequest as OaModelRequest, type ModelResponse as OaModelResponse } from '@openai/agents';
import { z } from 'zod';
import { agent, memoryJournal, openSqliteStore, run, storeJournal, tool, type ChatModel, type Durability, type LoopJournal, type ModelRequest, type ModelResponse, type Store } from '../src/index.js';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { ScriptedModel, type ScriptedReply } from '../src/testing/index.js';
import { freshDir, nowMs, percentile } from './harness.js';
import { Phase, type PhaseResult } from './phase.js';

export const LLM_SYSTEMS = ['swarm-memory', 'swarm-sqlite', 'swarm-pg', 'openai-agents'] as const;
export type LlmSystem = (typeof LLM_SYSTEMS)[number];

/** One measurement, run in a child process. */
export interface LlmJob {
  system: LlmSystem;
  /** swarm-sqlite and swarm-pg. */
  durability?: Durability;
  conversations: number;
  /** Tool-calling turns per conversation (then one final answer). */
  turns: number;
  /** Unmeasured conversations first, in the same process (and store). */
  warmup: number;
  /** Conversations running at once (1: one after another). */
  inFlight: number;
  /** swarm-pg: a fresh database on the bench server. */
  pgUrl?: string;
  base?: string;
  keep: boolean;
  trace: boolean;
  profileDir?: string;
}

export interface LlmResult extends PhaseResult {
  system: LlmSystem;
  durability: Durability | null;
  conversations: number;
  turns: number;
  in_flight: number;
  /** The measured phase: first conversation started → last one finished. */
  wall_ms: number;
  /** wall ÷ (conversations × turns): the headline. The final answer's model call and checkpoint are charged to the turns. */
  ms_per_turn: number;
  /** Per conversation: its own wall time ÷ turns. */
  conv_p50_ms_per_turn: number;
  conv_p99_ms_per_turn: number;
  /** Per turn: model call k → model call k+1 of the same conversation (everything the loop does for one turn). */
  turn_p50_ms: number;
  turn_p90_ms: number;
  turn_p99_ms: number;
  turn_samples: number;
  /** Process CPU (user + system) ÷ turns: the loop's own cost, without waiting on fsync. */
  cpu_ms_per_turn: number;
  /** Journal writes (checkpoints + tool records) per turn; each is one commit in the stores. */
  journal_writes_per_turn: number | null;
  /** Model calls per conversation, checked: turns + 1. */
  model_calls_per_conversation: number;
}

export function llmJobKey(job: Pick<LlmJob, 'system' | 'durability' | 'inFlight'>): string {
  return [job.system, ...(job.durability ? [job.durability] : []), ...(job.inFlight > 1 ? [`x${job.inFlight}`] : [])].join('/');
}

// ---------------------------------------------------------------- the script

const INSTRUCTIONS = 'You add numbers with the add tool, then say done.';
const FINAL_TEXT = 'done';
const argsOf = (turn: number): { a: number; b: number } => ({ a: turn, b: 1 });
const callId = (turn: number): string => `call_${turn}`;

/** Time stamps of one conversation's model calls. */
class Stamps {
  readonly at: number[] = [];
  started = 0;
  ended = 0;
}

/** Runs one conversation of the system; `n` is its number (distinct session per conversation). */
type Conversation = (n: number, stamps: Stamps) => Promise<void>;

interface System {
  conversation: Conversation;
  journalWrites: () => number | null;
  /** Tool executions so far (checked: conversations × turns). */
  toolCalls: () => number;
  close: () => Promise<void>;
}

// ---------------------------------------------------------------- Swarm

/** A ChatModel stamping each call, then answering from the conversation's ScriptedModel. */
class StampedModel implements ChatModel {
  readonly id = 'scripted/model';
  constructor(
    private readonly inner: ScriptedModel,
    private readonly stamps: Stamps,
  ) {}
  generate(req: ModelRequest): Promise<ModelResponse> {
    this.stamps.at.push(nowMs());
    return this.inner.generate(req);
  }
}

function swarmScript(turns: number): ScriptedReply[] {
  const replies: ScriptedReply[] = [];
  for (let t = 0; t < turns; t++) replies.push({ toolCalls: [{ id: callId(t), name: 'add', arguments: argsOf(t) }], usage: { input_tokens: 10, output_tokens: 5 } });
  replies.push({ content: FINAL_TEXT, usage: { input_tokens: 10, output_tokens: 1 } });
  return replies;
}

/** Counts the journal's writes (each one commit in a store) without changing what they do. */
function counted(j: LoopJournal, count: { writes: number }): LoopJournal {
  return {
    sessionId: j.sessionId,
    load: () => j.load(),
    checkpoint: (env, msgs) => {
      count.writes++;
      return j.checkpoint(env, msgs);
    },
    toolResult: (turn, id) => j.toolResult(turn, id),
    recordTool: (rec) => {
      count.writes++;
      return j.recordTool(rec);
    },
    approval: (id) => j.approval(id),
  };
}

async function swarmSystem(job: LlmJob, dirRoot: string | undefined): Promise<System> {
  let toolCalls = 0;
  const add = tool({
    name: 'add',
    description: 'Add two numbers.',
    parameters: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'], additionalProperties: false },
    execute: (args) => {
      toolCalls++;
      return (args.a as number) + (args.b as number);
    },
  });
  const adder = agent({ name: 'adder', instructions: INSTRUCTIONS, tools: [add] });
  let store: Store | undefined;
  if (job.system === 'swarm-sqlite') store = openSqliteStore({ path: `${dirRoot as string}/swarm.db`, durability: job.durability ?? 'full' });
  if (job.system === 'swarm-pg') store = await openPostgresStore({ url: job.pgUrl as string, durability: job.durability ?? 'full', poolSize: Math.max(2, job.inFlight + 1) });
  const count = { writes: 0 };
  const script = swarmScript(job.turns);
  const conversation: Conversation = async (n, stamps) => {
    const model = new StampedModel(new ScriptedModel(script, { record: false }), stamps);
    const journal = store ? storeJournal(store, { sessionId: `conv-${n}`, agent: adder.name }) : memoryJournal(`conv-${n}`);
    const result = await run(adder, [{ role: 'user', content: `Conversation ${n}: add the numbers.` }], {
      journal: counted(journal, count),
      maxTurns: job.turns + 1,
      resolveModel: () => model,
    });
    if (result.status !== 'completed' || result.content !== FINAL_TEXT || result.turns !== job.turns + 1) {
      throw new Error(`swarm conversation ${n}: ${result.status} after ${result.turns} model calls, content ${JSON.stringify(result.content)}`);
    }
  };
  return { conversation, journalWrites: () => count.writes, toolCalls: () => toolCalls, close: async () => store?.close() };
}

// ---------------------------------------------------------------- @openai/agents

/**
 * A Model answering from the script. One instance serves every conversation: the conversation is
 * recognised by its first user message (`Conversation <n>: …`), and answered from its own position.
 * The responses are built when the conversation starts, outside the model call, as ScriptedModel does.
 */
class ScriptedAgentsModel implements Model {
  private readonly live = new Map<string, { replies: OaModelResponse[]; next: number; stamps: Stamps }>();

  constructor(private readonly turns: number) {}

  begin(input: string, stamps: Stamps): void {
    const replies: OaModelResponse[] = [];
    for (let t = 0; t < this.turns; t++) {
      replies.push({
        usage: new Usage({ requests: 1, inputTokens: 10, outputTokens: 5, totalTokens: 15 }),
        output: [{ type: 'function_call', id: `fc_${t}`, callId: callId(t), name: 'add', arguments: JSON.stringify(argsOf(t)), status: 'completed' }],
        responseId: `resp_${t}`,
      });
    }
    replies.push({
      usage: new Usage({ requests: 1, inputTokens: 10, outputTokens: 1, totalTokens: 11 }),
      output: [{ type: 'message', id: 'msg_final', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: FINAL_TEXT }] }],
      responseId: `resp_${this.turns}`,
    });
    this.live.set(input, { replies, next: 0, stamps });
  }

  end(input: string): void {
    this.live.delete(input);
  }

  getResponse(request: OaModelRequest): Promise<OaModelResponse> {
    const key = firstUserText(request.input);
    const c = key === undefined ? undefined : this.live.get(key);
    if (!c) return Promise.reject(new Error(`scripted model: no conversation for input ${JSON.stringify(key)}`));
    c.stamps.at.push(nowMs());
    const r = c.replies[c.next++];
    return r ? Promise.resolve(r) : Promise.reject(new Error('scripted model: the script ran out'));
  }

  // eslint-disable-next-line require-yield
  async *getStreamedResponse(): AsyncIterable<never> {
    throw new Error('scripted model: streaming is not scripted');
  }
}

function firstUserText(input: OaModelRequest['input']): string | undefined {
  if (typeof input === 'string') return input;
  for (const item of input) {
    if ('role' in item && item.role === 'user') {
      if (typeof item.content === 'string') return item.content;
      const part = item.content[0];
      return part && part.type === 'input_text' ? part.text : undefined;
    }
  }
  return undefined;
}

function openaiAgentsSystem(job: LlmJob): System {
  setTracingDisabled(true);
  let toolCalls = 0;
  const add = oaTool({
    name: 'add',
    description: 'Add two numbers.',
    parameters: z.object({ a: z.number(), b: z.number() }),
    execute: ({ a, b }) => {
      toolCalls++;
      return String(a + b);
    },
  });
  const model = new ScriptedAgentsModel(job.turns);
  const provider: ModelProvider = { getModel: () => model };
  const adder = new OaAgent({ name: 'adder', instructions: INSTRUCTIONS, tools: [add], model: 'scripted' });
  const runner = new Runner({ modelProvider: provider, tracingDisabled: true });
  const conversation: Conversation = async (n, stamps) => {
    const input = `Conversation ${n}: add the numbers.`;
    model.begin(input, stamps);
    try {
      const result = await runner.run(adder, input, { maxTurns: job.turns + 1 });
      if (result.finalOutput !== FINAL_TEXT) throw new Error(`openai-agents conversation ${n}: final output ${JSON.stringify(result.finalOutput)}`);
    } finally {
      model.end(input);
    }
  };
  return { conversation, journalWrites: () => null, toolCalls: () => toolCalls, close: async () => undefined };
}

// ---------------------------------------------------------------- measuring

/** Run conversations `from` … `from + count - 1`, `inFlight` at a time. */
async function drive(sys: System, from: number, count: number, inFlight: number): Promise<Stamps[]> {
  const all: Stamps[] = [];
  let next = from;
  const lane = async (): Promise<void> => {
    while (next < from + count) {
      const n = next++;
      const s = new Stamps();
      all.push(s);
      s.started = nowMs();
      await sys.conversation(n, s);
      s.ended = nowMs();
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
  return all;
}

export async function runLlmJob(job: LlmJob): Promise<LlmResult> {
  const dir = job.system === 'swarm-sqlite' ? freshDir('llm', job.base, job.keep) : undefined;
  try {
    const sys = job.system === 'openai-agents' ? openaiAgentsSystem(job) : await swarmSystem(job, dir?.root);
    try {
      await drive(sys, 0, job.warmup, job.inFlight);
      const writesBefore = sys.journalWrites();
      const phase = new Phase({ trace: job.trace, label: `llm-${llmJobKey(job)}`, ...(job.profileDir ? { profileDir: job.profileDir } : {}) });
      await phase.start();
      const t0 = nowMs();
      const convs = await drive(sys, job.warmup, job.conversations, job.inFlight);
      const wall = nowMs() - t0;
      const ph = await phase.end();
      const writes = sys.journalWrites();
      const turnsTotal = job.conversations * job.turns;
      const executed = sys.toolCalls();
      if (executed !== (job.warmup + job.conversations) * job.turns) throw new Error(`the tool ran ${executed} times; expected ${(job.warmup + job.conversations) * job.turns}`);
      const gaps: number[] = [];
      for (const c of convs) for (let k = 0; k < job.turns; k++) gaps.push((c.at[k + 1] as number) - (c.at[k] as number));
      const perConv = convs.map((c) => (c.ended - c.started) / job.turns);
      const calls = convs.map((c) => c.at.length);
      if (calls.some((n) => n !== job.turns + 1)) throw new Error(`expected ${job.turns + 1} model calls per conversation, saw ${Math.min(...calls)}…${Math.max(...calls)}`);
      return {
        system: job.system,
        durability: job.durability ?? null,
        conversations: job.conversations,
        turns: job.turns,
        in_flight: job.inFlight,
        wall_ms: wall,
        ms_per_turn: wall / turnsTotal,
        conv_p50_ms_per_turn: percentile(perConv, 50),
        conv_p99_ms_per_turn: percentile(perConv, 99),
        turn_p50_ms: percentile(gaps, 50),
        turn_p90_ms: percentile(gaps, 90),
        turn_p99_ms: percentile(gaps, 99),
        turn_samples: gaps.length,
        cpu_ms_per_turn: (ph.cpu_user_ms + ph.cpu_sys_ms) / turnsTotal,
        journal_writes_per_turn: writes === null || writesBefore === null ? null : (writes - writesBefore) / turnsTotal,
        model_calls_per_conversation: job.turns + 1,
        ...ph,
      };
    } finally {
      await sys.close();
    }
  } finally {
    dir?.remove();
  }
}
