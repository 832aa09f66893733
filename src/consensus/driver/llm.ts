/**
 * LLM agents (`runtime.type: llm`) as consensus members. Such an agent takes a user turn (`message`)
 * and answers with `content` beside its bookkeeping (`usage`, `session_id`, `agent`, `turns`); this
 * module gives it the turn and takes its answer apart:
 *
 * - each proposer sample and each judge is a conversation of its own (memberSession), by member and
 *   round, durable and resumed by the worker that takes the step over, as a step's session is;
 * - a proposer whose task inputs carry no `message` (nor `messages`) is given one rendering the task
 *   (proposerMessage); a judge always is (judgeMessage: the task, the verified candidates with their
 *   hashes, answers and verifier results, and what to answer), beside the structured inputs a code
 *   judge gets;
 * - the answer is `content` (the structured output when the agent has an output_schema, else its
 *   text): a proposer's candidate is that and nothing else, so usage and session never enter the
 *   candidate's hash or what the policies compare; they go beside it (llmRun's `session`);
 * - what the conversation cost (`usage.cost_usd`) is charged to the stage's bucket, and a conversation
 *   that failed is charged what its session recorded (sessionSpend).
 *
 * @example
 *   const session = memberSession(ctx.step, 'propose', 'agent:solver#2', 1); // '<run>/<step>/propose/agent:solver#2/1'
 *   const run = llmRun(await deps.runAgent({ ...req, inputs: { ...inputs, message: proposerMessage(task) }, session }), session);
 *   run.answer; run.cost_usd; run.session; // the candidate, its cost, and the bookkeeping beside it
 */
import { runSessions } from '../../agents/store-journal.js';
import { canonicalJson } from '../../core/canonical-json.js';
import { declaredFields } from '../../core/io-schema.js';
import type { SeedBundle } from '../../executors/http/contract.js';
import type { ConsensusResultRow, ConsensusTaskRow } from '../../store/consensus-types.js';
import type { Store } from '../../store/store.js';
import { reasonName } from '../core/reason-codes.js';
import type { AgentInfo } from './deps.js';

/** Whether a registered agent runs the LLM loop (and so takes a `message` and answers with `content`). */
export function isLlm(agent: AgentInfo | undefined): boolean {
  return agent?.runtime === 'llm';
}

/** The session id of a member's conversation in a round: `<run id>/<step id>/<stage>/<member id>/<round>`. */
export function memberSession(step: { run_id: string; step_id: string }, stage: 'propose' | 'vote', member: string, round: number): string {
  return `${step.run_id}/${step.step_id}/${stage}/${member}/${round}`;
}

/** An LLM member's conversation beside its answer: its session, who answered (after handoffs), its turns and usage. */
export interface LlmSession {
  id: string;
  agent: string;
  turns: number;
  usage: { input_tokens: number; output_tokens: number; cost_usd: number };
}

/** An LLM member's answer (`content`), what it cost (`usage.cost_usd`), and its session. */
export interface LlmRun {
  answer: unknown;
  cost_usd: number;
  session: LlmSession;
}

const amount = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) && x > 0 ? x : 0);

/** Take an llm agent's outputs (`{content, agent, usage, session_id, turns}`) apart. */
export function llmRun(out: unknown, session: string): LlmRun {
  const o = (out !== null && typeof out === 'object' && !Array.isArray(out) ? out : {}) as Record<string, unknown>;
  const usage = (o['usage'] !== null && typeof o['usage'] === 'object' ? o['usage'] : {}) as Record<string, unknown>;
  const cost = amount(usage['cost_usd']);
  return {
    answer: o['content'] ?? null,
    cost_usd: cost,
    session: {
      id: typeof o['session_id'] === 'string' ? o['session_id'] : session,
      agent: typeof o['agent'] === 'string' ? o['agent'] : '',
      turns: amount(o['turns']),
      usage: { input_tokens: amount(usage['input_tokens']), output_tokens: amount(usage['output_tokens']), cost_usd: cost },
    },
  };
}

/**
 * What a member's conversation that failed (no answer, so no usage) spent, as its session recorded it:
 * the newest session of the member's round (a retry after a failed conversation is `<session>/<attempt>`).
 * Nothing when the store cannot say.
 */
export async function sessionSpend(store: Store, runId: string, session: string): Promise<{ cost_usd: number; session_id?: string }> {
  try {
    const [s] = await runSessions(store, runId, { conversation: session });
    return s ? { cost_usd: amount(s.cost_usd), session_id: s.id } : { cost_usd: 0 };
  } catch {
    return { cost_usd: 0 };
  }
}

/** The inputs an llm agent is given: the structured ones it takes (all, unless its declared inputs are closed), and the user turn. */
export function llmInputs(agent: AgentInfo | undefined, structured: Record<string, unknown>, message: () => string): Record<string, unknown> {
  const fields = agent ? declaredFields(agent.inputs) : undefined;
  const kept = fields === undefined ? structured : Object.fromEntries(Object.entries(structured).filter(([k]) => fields.includes(k)));
  return kept['message'] !== undefined || kept['messages'] !== undefined ? kept : { ...kept, message: message() };
}

/** A value as the model reads it: a string as it is, anything else as canonical JSON. */
function shown(value: unknown): string {
  return typeof value === 'string' ? value : canonicalJson(value ?? null);
}

/** The user turn of an LLM proposer whose task has no `message`: the task, its inputs, the schema of an answer, the seed. */
export function proposerMessage(task: ConsensusTaskRow, seed?: SeedBundle): string {
  const c = task.contract;
  const lines = [`Consensus task ${task.task_id} (task type: ${task.task_type}). Several proposers answer it independently; verifiers check each answer and voters approve one.`, '', 'The task\'s inputs:', shown(c.inputs)];
  if (c.output_schema) lines.push('', 'Your answer must be JSON matching this JSON Schema:', shown(c.output_schema));
  if (seed) lines.push('', `A decision on the same question before (${seed.hit_type} match, task ${seed.task_id}), to start from:`, shown(seed.output));
  lines.push('', 'Answer the task.');
  return lines.join('\n');
}

/** A candidate as a judge is shown it. */
export interface JudgedCandidate {
  candidate_hash: string;
  score: number;
  support: number;
  output: unknown;
}

/**
 * The user turn of an LLM judge: the task (id, type, inputs, the schema of an answer), each verified
 * candidate best ranked first with its hash, answer and verifier results, and what to answer: the
 * `candidate_hash` of the one it approves, as JSON.
 */
export function judgeMessage(task: ConsensusTaskRow, voterId: string, candidates: readonly JudgedCandidate[], results: readonly ConsensusResultRow[]): string {
  const c = task.contract;
  const lines = [`You are judge ${voterId} of consensus task ${task.task_id} (task type: ${task.task_type}). Approve the candidate answer that best answers the task.`, '', 'The task\'s inputs:', shown(c.inputs)];
  if (c.output_schema) lines.push('', 'An answer was to match this JSON Schema:', shown(c.output_schema));
  lines.push('', `The candidates (${candidates.length}): each passed verification (passed by a verifier, failed by none); ranked best first by mean verifier score, then by how many proposers gave the same answer.`);
  candidates.forEach((cand, i) => {
    lines.push('', `## Candidate ${i + 1}`, `candidate_hash: ${cand.candidate_hash}`, `score: ${cand.score}; proposers that gave this answer: ${cand.support}`, 'verification:');
    for (const r of results.filter((x) => x.candidate_hash === cand.candidate_hash)) {
      const codes = r.reason_codes.length ? `; reason codes ${r.reason_codes.map((n) => `${n} ${reasonName(n)}`).join(', ')}` : '';
      lines.push(`- ${r.verifier_id}: ${r.status} under ${r.policy_id} (score ${r.score})${codes}${r.reason ? `: ${r.reason}` : ''}`);
    }
    lines.push('answer:', shown(cand.output));
  });
  lines.push('', 'Reply with the candidate_hash of the one candidate you approve, exactly as written above, as JSON:', '{"candidate_hash": "<the candidate_hash>"}');
  return lines.join('\n');
}

/**
 * The candidate hash a judge's answer names: `candidate_hash` of its structured output (or of the JSON
 * its text is), or a text that is a hash and nothing else. Undefined when it names none.
 */
export function pickOf(answer: unknown): string | undefined {
  let a = answer;
  if (typeof a === 'string') {
    const text = a.trim().replace(/^```(?:json)?\s*([\s\S]*?)\s*```$/, '$1');
    if (/^[0-9a-fA-F]{64}$/.test(text)) return text.toLowerCase();
    try {
      a = JSON.parse(text);
    } catch {
      return undefined;
    }
  }
  const pick = a !== null && typeof a === 'object' && !Array.isArray(a) ? (a as Record<string, unknown>)['candidate_hash'] : undefined;
  return typeof pick === 'string' ? pick.trim() : undefined;
}

/** An answer as a note quotes it (at most `max` characters). */
export function quoted(answer: unknown, max = 200): string {
  const s = shown(answer);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
