/**
 * The verify stage: each distinct candidate (the first `explore.topk`, when set) by each verifier,
 * under the task's policy. Evidence is checked first: inline evidence (`data:` URIs) by its digest,
 * http(s) evidence fetched (with a size cap) and checked the same way; evidence that cannot be
 * reached or does not match makes the result `inconclusive` (EVIDENCE_AVAILABLE says which). A
 * result recorded is never asked for again.
 *
 * @example
 *   await verify(deps, ctx, task); // the task is `voting` afterwards
 */
import { StepError, errorMessage } from '../../core/errors.js';
import { EventType } from '../../core/events.js';
import type { ConsensusCandidateRow, ConsensusTaskRow } from '../../store/consensus-types.js';
import { sha256Hex, signRecord } from '../core/crypto.js';
import { ReasonCode, reasonName } from '../core/reason-codes.js';
import { verifierResultSignedFields } from '../core/signed.js';
import { gateStage } from '../core/stage-budget.js';
import type { EvidenceRef, VerificationStatus, VerifierSpec } from '../core/types.js';
import { checkSigned } from '../core/votes.js';
import { evaluatePolicy } from '../policies/index.js';
import { checkAborted, transition, type ConsensusDeps, type DriverCtx, type StageEnd, type Writer } from './deps.js';
import { verifierSlots } from './rules.js';

const DEFAULT_EVIDENCE_MAX_BYTES = 1024 * 1024;

export interface EvidenceCheck {
  ref: EvidenceRef;
  available: boolean;
  reason_code?: number;
  detail?: string;
}


export async function verify(deps: ConsensusDeps, ctx: DriverCtx, task: ConsensusTaskRow): Promise<StageEnd | undefined> {
  const contract = task.contract;
  const claim = { task_id: task.task_id, stage: 'verify', attempt: ctx.step.attempt, worker_id: ctx.workerId };
  const batch = contract.budget?.verify === undefined;
  if (!batch) await transition(deps, ctx, (w) => w.emit(EventType.TASK_CLAIMED, claim));
  const proposals = await deps.store.getConsensusCandidates(task.task_id);
  const cands = distinct(proposals).slice(0, contract.explore?.topk ?? Number.MAX_SAFE_INTEGER);
  const kept = new Set(cands.map((c) => c.candidate_hash));
  const keptProposals = proposals.filter((p) => kept.has(p.candidate_hash));
  const evidence = new Map<string, EvidenceCheck[]>();
  const checksOf = async (cand: ConsensusCandidateRow): Promise<EvidenceCheck[]> => {
    let checks = evidence.get(cand.candidate_hash);
    if (!checks) {
      checks = await Promise.all(cand.evidence.map((e) => checkEvidence(e, deps.evidenceMaxBytes ?? DEFAULT_EVIDENCE_MAX_BYTES, ctx.signal)));
      evidence.set(cand.candidate_hash, checks);
    }
    return checks;
  };
  const othersOf = (cand: ConsensusCandidateRow) => otherAnswers(keptProposals, cand.candidate_hash);
  if (batch) {
    // No verify budget to check between calls: every missing result is asked for at once, and the claim, the pass's results and the move to voting are recorded in one transition.
    checkAborted(ctx.signal);
    const done = await deps.store.getConsensusResults(task.task_id);
    const pairs: Array<{ v: VerifierSpec & { id: string }; cand: ConsensusCandidateRow }> = [];
    for (const v of verifierSlots(contract)) for (const cand of cands) if (!done.some((r) => r.candidate_hash === cand.candidate_hash && r.verifier_id === v.id)) pairs.push({ v, cand });
    await Promise.all([...new Set(pairs.map((p) => p.cand))].map(checksOf));
    const outs = await Promise.all(pairs.map(async ({ v, cand }) => ({ v, cand, r: await askVerifier(deps, ctx, task, v, cand, othersOf(cand), evidence.get(cand.candidate_hash) ?? []) })));
    checkAborted(ctx.signal);
    return transition(deps, ctx, async (w) => {
      await w.emit(EventType.TASK_CLAIMED, claim);
      const have = await w.c.results(task.task_id);
      for (const o of outs) await recordResult(w, task, o.v, o.cand, evidence.get(o.cand.candidate_hash) ?? [], o.r, have);
      await w.c.updateTask(task.task_id, { status: 'voting', stage: 'vote' });
      return endOf(w, task);
    }, { results: true });
  }
  for (const v of verifierSlots(contract)) {
    for (const cand of cands) {
      checkAborted(ctx.signal);
      const done = await deps.store.getConsensusResults(task.task_id);
      if (done.some((r) => r.candidate_hash === cand.candidate_hash && r.verifier_id === v.id)) continue;
      const gate = gateStage(contract.budget, await deps.store.getConsensusCosts(task.task_id), 'verify');
      if (!gate.ok) {
        await transition(deps, ctx, (w) =>
          w.emit(EventType.TASK_STAGE_STOPPED, { task_id: task.task_id, stage: 'verify', bucket: gate.bucket, reason_code: gate.code, reason: reasonName(gate.code), detail: gate.reason, spent_usd: gate.spent_usd, budget_usd: gate.budget_usd }),
        );
        return moveOn(deps, ctx, task);
      }
      const checks = await checksOf(cand);
      const r = await askVerifier(deps, ctx, task, v, cand, othersOf(cand), checks);
      await transition(deps, ctx, async (w) => recordResult(w, task, v, cand, checks, r, await w.c.results(task.task_id)), { results: true });
    }
  }
  return moveOn(deps, ctx, task);
}

async function moveOn(deps: ConsensusDeps, ctx: DriverCtx, task: ConsensusTaskRow): Promise<StageEnd | undefined> {
  return transition(deps, ctx, async (w) => {
    await w.c.updateTask(task.task_id, { status: 'voting', stage: 'vote' });
    return endOf(w, task);
  });
}

/** The task's row as this transition leaves it, and its clock. */
async function endOf(w: Writer, task: ConsensusTaskRow): Promise<StageEnd | undefined> {
  const t = await w.c.getTask(task.task_id);
  return t ? { task: t, now: w.tx.now } : undefined;
}

/**
 * The answers a candidate is compared with (crosscheck's `others`): one per proposer member and
 * answer, less one of the candidate's own. Identical answers are one candidate, but each proposer
 * (each sample) that gave it is a separate answer agreeing with it: two samples that agree make a
 * candidate with one agreeing other. A proposer that gives the same answer in several explore rounds
 * counts once.
 */
export function otherAnswers(proposals: ReadonlyArray<{ candidate_hash: string; proposer_id: string; output: unknown }>, candidateHash: string): Array<{ candidate_hash: string; output: unknown }> {
  const seen = new Set<string>();
  let ownSkipped = false;
  const out: Array<{ candidate_hash: string; output: unknown }> = [];
  for (const p of proposals) {
    const key = `${p.proposer_id}\u0000${p.candidate_hash}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (p.candidate_hash === candidateHash && !ownSkipped) {
      ownSkipped = true;
      continue;
    }
    out.push({ candidate_hash: p.candidate_hash, output: p.output });
  }
  return out;
}

/**
 * Where each answer stands among the proposals: how many proposer members gave it (a proposer
 * repeating itself across rounds counts once), and the contract position of the first proposer
 * that gave it (`proposerIds` in contract order; a member not listed comes last).
 */
export function standingOf(proposals: ReadonlyArray<{ candidate_hash: string; proposer_id: string }>, proposerIds: readonly string[]): Map<string, { support: number; first: number }> {
  const members = new Map<string, Set<string>>();
  for (const p of proposals) members.set(p.candidate_hash, (members.get(p.candidate_hash) ?? new Set()).add(p.proposer_id));
  const position = (id: string): number => {
    const i = proposerIds.indexOf(id);
    return i < 0 ? proposerIds.length : i;
  };
  return new Map([...members].map(([h, m]) => [h, { support: m.size, first: Math.min(...[...m].map(position)) }]));
}

/** One candidate per hash (the first proposed). */
function distinct(cands: readonly ConsensusCandidateRow[]): ConsensusCandidateRow[] {
  const seen = new Set<string>();
  return cands.filter((c) => !seen.has(c.candidate_hash) && (seen.add(c.candidate_hash), true));
}

type VerifierAnswer = { status: VerificationStatus; reason_codes: number[]; reason: string; score: number; evidence: EvidenceRef[]; cost_usd: number; signature: string | null };

/** One verifier's answer on one candidate (an unsigned inconclusive result when it could not answer). */
async function askVerifier(
  deps: ConsensusDeps,
  ctx: DriverCtx,
  task: ConsensusTaskRow,
  v: VerifierSpec & { id: string },
  cand: ConsensusCandidateRow,
  others: Array<{ candidate_hash: string; output: unknown }>,
  checks: EvidenceCheck[],
): Promise<VerifierAnswer> {
  const contract = task.contract;
  const policy = contract.verification.policy;
  const params = contract.verification.params ?? {};
  const unreachable = checks.filter((c) => !c.available).map((c) => c.ref.uri);
  let r: VerifierAnswer;
  try {
    if (v.executor) {
      const { client } = await deps.executor(v.executor);
      const out = await client.verify(
        { task_id: task.task_id, task_type: task.task_type, policy_id: policy, params, ...(contract.output_schema ? { output_schema: contract.output_schema } : {}), candidate: { candidate_hash: cand.candidate_hash, output: cand.output, evidence: cand.evidence }, others, verifier_id: v.id },
        { signal: ctx.signal },
      );
      // Evidence the kernel could not reach makes the result inconclusive, whatever the executor says.
      const status = unreachable.length && out.status === 'passed' ? 'inconclusive' : out.status;
      r = { status, reason_codes: out.reason_codes ?? [], reason: out.reason ?? '', score: out.score ?? (out.status === 'passed' ? 1 : 0), evidence: out.evidence ?? [], cost_usd: out.cost_usd ?? 0, signature: out.signature ?? null };
      if (status !== out.status) r.reason_codes = [...r.reason_codes, ReasonCode.EVIDENCE_UNREACHABLE];
    } else {
      const o = evaluatePolicy(policy, params, { ...(contract.output_schema ? { output_schema: contract.output_schema } : {}), candidate: { candidate_hash: cand.candidate_hash, output: cand.output, evidence: cand.evidence }, others, unreachable_evidence: unreachable });
      const key = await deps.kernelKey(`consensus:${v.id}`);
      const base = { task_id: task.task_id, candidate_hash: cand.candidate_hash, verifier_id: v.id, policy_id: policy, status: o.status, reason_codes: o.reason_codes, score: o.score, evidence: [], cost_usd: 0 };
      r = { ...o, evidence: [], cost_usd: 0, signature: signRecord(key.privateKey, 'verifier_result', verifierResultSignedFields(base)) };
    }
  } catch (e) {
    if (e instanceof StepError && e.code === 'LEASE_LOST') throw e;
    checkAborted(ctx.signal);
    r = { status: 'inconclusive', reason_codes: [ReasonCode.VERIFIER_ERROR], reason: errorMessage(e), score: 0, evidence: [], cost_usd: 0, signature: null };
    // A verifier that could not answer signs nothing: the kernel records the inconclusive result under the verifier's id, unsigned.
  }
  return r;
}

/**
 * Record a verifier's answer in the caller's transition: its cost, the candidate's evidence checks
 * (with its first result), and the result or why it was refused. `have` is the task's results so
 * far (what this transition records is added to it); a result recorded already is skipped.
 */
async function recordResult(w: Writer, task: ConsensusTaskRow, v: VerifierSpec & { id: string }, cand: ConsensusCandidateRow, checks: EvidenceCheck[], r: VerifierAnswer, have: Array<{ candidate_hash: string; verifier_id: string }>): Promise<void> {
  const policy = task.contract.verification.policy;
  const fields = verifierResultSignedFields({ task_id: task.task_id, candidate_hash: cand.candidate_hash, verifier_id: v.id, policy_id: policy, status: r.status, reason_codes: r.reason_codes, score: r.score, evidence: r.evidence, cost_usd: r.cost_usd });
  // A verifier that could not answer signed nothing: its inconclusive result is kept unsigned.
  const errored = r.reason_codes.includes(ReasonCode.VERIFIER_ERROR) && r.signature === null;
  const signed = checkSigned(task.members, 'verifier', 'verifier_result', { ...fields, signature: r.signature ?? '' });
  const refused = signed.ok || (errored && signed.code === ReasonCode.SIGNATURE_MISSING) ? undefined : signed.code;
  if (have.some((x) => x.candidate_hash === cand.candidate_hash && x.verifier_id === v.id)) return;
  await w.c.addCost(task.task_id, 'verify', r.cost_usd);
  if (!have.some((x) => x.candidate_hash === cand.candidate_hash)) {
    for (const c of checks) await w.emit(EventType.EVIDENCE_AVAILABLE, { task_id: task.task_id, candidate_hash: cand.candidate_hash, uri: c.ref.uri.startsWith('data:') ? 'data:…' : c.ref.uri, digest: c.ref.digest, available: c.available, ...(c.reason_code !== undefined ? { reason_code: c.reason_code, reason: reasonName(c.reason_code) } : {}) });
  }
  if (refused !== undefined) {
    await w.emit(EventType.TASK_INPUT_REJECTED, { task_id: task.task_id, record_kind: 'verifier_result', member_id: v.id, candidate_hash: cand.candidate_hash, reason_code: refused, reason: reasonName(refused), ...(r.cost_usd > 0 ? { cost_usd: r.cost_usd } : {}) });
    return;
  }
  // With its evidence and signature: anyone holding the log can check the result against the verifier's key in TASK_CREATED (unsigned only when the verifier could not answer).
  await w.emit(EventType.VERIFIER_RESULT_SUBMITTED, { task_id: task.task_id, candidate_hash: cand.candidate_hash, verifier_id: v.id, policy_id: policy, status: r.status, reason_codes: r.reason_codes, reason: r.reason.slice(0, 2000), score: r.score, evidence: r.evidence, cost_usd: r.cost_usd, signature: r.signature ?? '' });
  await w.c.queueResult({ task_id: task.task_id, candidate_hash: cand.candidate_hash, verifier_id: v.id, policy_id: policy, status: r.status, reason_codes: r.reason_codes, reason: r.reason.slice(0, 2000), score: r.score, evidence: r.evidence, cost_usd: r.cost_usd, signature: r.signature ?? '', created_at: w.tx.now });
  have.push({ candidate_hash: cand.candidate_hash, verifier_id: v.id });
}

/**
 * Is a piece of evidence there, with the digest it claims? `data:` URIs are read in place; http(s)
 * URLs fetched (at most `maxBytes`, 10 s); anything else, or a failure, is unreachable.
 */
export async function checkEvidence(ref: EvidenceRef, maxBytes: number, signal?: AbortSignal): Promise<EvidenceCheck> {
  let body: Buffer;
  try {
    if (ref.uri.startsWith('data:')) {
      const comma = ref.uri.indexOf(',');
      if (comma < 0) return { ref, available: false, reason_code: ReasonCode.EVIDENCE_UNREACHABLE, detail: 'malformed data: URI' };
      const meta = ref.uri.slice(5, comma);
      const data = ref.uri.slice(comma + 1);
      body = meta.endsWith(';base64') ? Buffer.from(data, 'base64') : Buffer.from(decodeURIComponent(data), 'utf8');
    } else if (/^https?:\/\//i.test(ref.uri)) {
      const res = await fetch(ref.uri, { signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(10_000)]) : AbortSignal.timeout(10_000), redirect: 'follow' });
      if (!res.ok || !res.body) return { ref, available: false, reason_code: ReasonCode.EVIDENCE_UNREACHABLE, detail: `HTTP ${res.status}` };
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        size += chunk.byteLength;
        if (size > maxBytes) return { ref, available: false, reason_code: ReasonCode.PAYLOAD_TOO_LARGE, detail: `larger than ${maxBytes} bytes` };
        chunks.push(Buffer.from(chunk));
      }
      body = Buffer.concat(chunks);
    } else return { ref, available: false, reason_code: ReasonCode.EVIDENCE_UNREACHABLE, detail: 'only data: and http(s) evidence can be checked' };
  } catch (e) {
    return { ref, available: false, reason_code: ReasonCode.EVIDENCE_UNREACHABLE, detail: errorMessage(e) };
  }
  if (sha256Hex(body) !== ref.digest.toLowerCase()) return { ref, available: false, reason_code: ReasonCode.EVIDENCE_DIGEST_MISMATCH, detail: 'digest mismatch' };
  return { ref, available: true };
}
