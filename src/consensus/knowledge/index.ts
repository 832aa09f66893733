/**
 * The knowledge store of consensus decisions (source 002's Knowledge Store): every finalized
 * decision is recorded with its evidence, its cost and how each proposer fared; before proposing, a
 * task looks up prior decisions, EXACT (same task type and canonical inputs hash) first, then
 * SIMILAR (vector similarity over the task's text, through the vector memory, one namespace per
 * task type); a hit goes to the executors as `seed_bundle`. A decision on the task's
 * `reuse_blacklist` (by task id or candidate hash) is not reused: it is listed in `rejected` (the
 * engine records REUSE_REJECT_RECORDED for each) and the lookup falls through to the next one.
 * docs/consensus.md ("Knowledge store") has the whole story.
 *
 * @example
 *   const knowledge = createKnowledge({ store, embedder });
 *   const { hit, rejected } = await knowledge.lookup({ task_id: 't2', task_type: 'summary', inputs, knowledge: { lookup: 'similar' } });
 *   for (const e of knowledgeEvents('t2', { hit, rejected })) ledgerEvents.push(e);   // REUSE_REJECT_RECORDED…, KNOWLEDGE_HIT
 *   const req = { …, ...(hit ? { seed_bundle: toSeedBundle(hit) } : {}) };
 *   // … after DECISION_FINALIZED:
 *   await knowledge.record({ decision, task: { task_id: 't2', task_type: 'summary', inputs, run_id }, candidates, results, cost });
 */
import { ExecutionError, StoreError, UserError, isSwarmError } from '../../core/errors.js';
import type { Embedder } from '../../memory/embedder.js';
import type { KnowledgeDecisionRow, KnowledgeHitType, KnowledgeLookupRow, KnowledgeProposalRow, KnowledgeRejection, KnowledgeTrackFilter, KnowledgeTrackRow } from '../../store/knowledge-types.js';
import type { Store } from '../../store/store.js';
import type { SeedBundle } from '../../executors/http/contract.js';
import type { Candidate, Decision, KnowledgeSpec, TaskCost, VerifierResult } from '../core/types.js';
import type { KnowledgeHitData, ReuseRejectRecordedData } from '../core/events.js';
import { ReasonCode } from '../core/reason-codes.js';
import { buildDecisionWrite, exportLine, type KnowledgeExportLine } from './records.js';
import { inputsHash, knowledgeDedupKey, knowledgeNamespace, taskText } from './text.js';

export { inputsHash, knowledgeNamespace, taskText, KNOWLEDGE_NAMESPACE_PREFIX } from './text.js';
export type { KnowledgeExportLine } from './records.js';
export type { KnowledgeDecisionRow, KnowledgeHitType, KnowledgeLookupRow, KnowledgeProposalRow, KnowledgeRejection, KnowledgeTrackRow } from '../../store/knowledge-types.js';

/** The default `knowledge.min_similarity` of a task. */
export const DEFAULT_MIN_SIMILARITY = 0.85;

export interface KnowledgeDeps {
  store: Store;
  /**
   * Embeds decisions' texts when they are recorded, and tasks' texts when they look up SIMILAR
   * decisions. Without one (and without `embedderFor`), decisions are recorded without a vector
   * and lookups are EXACT only.
   */
  embedder?: Embedder;
  /**
   * An embedder for `provider/model`: used when `embedder` is not given, for the model that
   * embedded a task type's newest decision (so `swarm knowledge search` embeds its query alike).
   */
  embedderFor?: (model: string) => Embedder | Promise<Embedder>;
  /**
   * `provider/model`: the model that embeds (through `embedderFor`) when `embedder` is not given.
   * Without it, the model of a task type's newest decision is used, if there is one.
   */
  embedding?: string;
  /** Applied to what is stored of a decision (inputs, text, output, evidence): e.g. the Swarm's secret redactor. The inputs hash is of the inputs as given. */
  redact?: <T>(v: T) => T;
  now?: () => number;
}

/** A task as lookup sees it. `knowledge` is the contract's (default: `lookup: exact`). */
export interface KnowledgeTask {
  task_id: string;
  task_type: string;
  inputs: Record<string, unknown>;
  knowledge?: KnowledgeSpec;
}

/** A reusable prior decision: the seed bundle, and where it comes from. */
export type KnowledgeHit = SeedBundle & {
  task_type: string;
  run_id: string | null;
  inputs_hash: string;
  decided_at: number;
};

export interface KnowledgeLookupResult {
  /** The decision to reuse, if any. */
  hit?: KnowledgeHit;
  /** Decisions found but not reused (blacklisted), in the order they were met. */
  rejected: KnowledgeRejection[];
  /** The lookup mode in force. */
  mode: 'off' | 'exact' | 'similar';
  /** sha256 of the canonical inputs. */
  inputs_hash: string;
  /** Why a SIMILAR lookup could not search vectors (no embedder; no vector backend, e.g. PostgreSQL without pgvector). */
  similar_skipped?: 'no_embedder' | 'backend_unavailable';
}

/** A finalized task, as the engine hands it over after DECISION_FINALIZED. */
export interface FinalizedTask {
  decision: Decision;
  task: { task_id: string; task_type: string; inputs: Record<string, unknown>; run_id: string | null };
  candidates: readonly Candidate[];
  results: readonly VerifierResult[];
  cost: TaskCost;
}

export interface RecordResult {
  /** False when this task's decision was recorded before (nothing changed). */
  created: boolean;
  /** Whether the decision is in the vector memory (SIMILAR lookups can find it). */
  indexed: boolean;
  /** Why it is not indexed, when it is not. */
  index_skipped?: 'no_embedder' | 'backend_unavailable';
}

export interface KnowledgeSearchHit {
  score: number;
  decision: KnowledgeDecisionRow;
}

export type KnowledgeExportSelector = { task_type: string } | { task_id: string };

export interface Knowledge {
  /** Find a prior decision to reuse; logs the lookup. See the module doc for the order. */
  lookup(task: KnowledgeTask): Promise<KnowledgeLookupResult>;
  /** Record a finalized decision: idempotent by task id (the engine calls it again after a crash). */
  record(finalized: FinalizedTask): Promise<RecordResult>;
  /** The proposers' track record per task type (proposed, won, failed verification, inconclusive). */
  trackRecord(filter?: KnowledgeTrackFilter): Promise<KnowledgeTrackRow[]>;
  /** Decisions nearest to a text (cosine similarity), best first. */
  search(text: string, o?: { task_type?: string; limit?: number }): Promise<KnowledgeSearchHit[]>;
  /** Every decision of a task type (newest first), or one task's: one JSON object each (JSONL lines). */
  export(sel: KnowledgeExportSelector): AsyncIterable<KnowledgeExportLine>;
  /** The lookups logged (newest first). */
  lookups(q?: { task_id?: string; limit?: number }): Promise<KnowledgeLookupRow[]>;
}

/** KNOWLEDGE_HIT's data (core's KnowledgeHitData, with the inputs hash the EXACT key was). */
export interface KnowledgeHitEventData extends KnowledgeHitData {
  inputs_hash: string;
}

/** REUSE_REJECT_RECORDED's data (core's ReuseRejectRecordedData): a decision found but not reused, and what the blacklist entry matched. */
export interface ReuseRejectEventData extends ReuseRejectRecordedData {
  reason_code: typeof ReasonCode.REUSE_BLACKLISTED;
  reason: 'REUSE_BLACKLISTED';
  matched: KnowledgeRejection['matched'];
  similarity?: number;
}

export type KnowledgeEvent = { type: 'REUSE_REJECT_RECORDED'; data: ReuseRejectEventData } | { type: 'KNOWLEDGE_HIT'; data: KnowledgeHitEventData };

/**
 * The events a lookup's outcome is recorded by, in order: one REUSE_REJECT_RECORDED per rejected
 * decision, then KNOWLEDGE_HIT if a decision is reused.
 *
 * @example
 *   const events = knowledgeEvents('run-1/vote', await knowledge.lookup(task));
 */
export function knowledgeEvents(taskId: string, r: Pick<KnowledgeLookupResult, 'hit' | 'rejected'>): KnowledgeEvent[] {
  const out: KnowledgeEvent[] = r.rejected.map((x) => ({
    type: 'REUSE_REJECT_RECORDED' as const,
    data: {
      task_id: taskId,
      decision_task_id: x.task_id,
      candidate_hash: x.candidate_hash,
      reason_code: ReasonCode.REUSE_BLACKLISTED,
      reason: x.reason,
      matched: x.matched,
      hit_type: x.hit_type,
      ...(x.similarity !== undefined ? { similarity: x.similarity } : {}),
    },
  }));
  if (r.hit) {
    const h = r.hit;
    out.push({
      type: 'KNOWLEDGE_HIT',
      data: { task_id: taskId, hit_type: h.hit_type, decision_task_id: h.task_id, candidate_hash: h.candidate_hash, inputs_hash: h.inputs_hash, ...(h.similarity !== undefined ? { similarity: h.similarity } : {}) },
    });
  }
  return out;
}

/**
 * The seed bundle of a hit, as `POST /execute` takes it (the wire fields only).
 *
 * @example
 *   const req: ExecuteRequest = { …, seed_bundle: toSeedBundle(hit) };
 */
export function toSeedBundle(hit: KnowledgeHit): SeedBundle {
  return {
    hit_type: hit.hit_type,
    task_id: hit.task_id,
    candidate_hash: hit.candidate_hash,
    output: hit.output,
    ...(hit.similarity !== undefined ? { similarity: hit.similarity } : {}),
    evidence: hit.evidence,
  };
}

/** Rows read per page when walking decisions (EXACT fall-through, export). */
const PAGE = 100;
/** SIMILAR: nearest memories fetched (more when the blacklist is long). */
const SIMILAR_K = 10;

/**
 * The knowledge store over a Store (and, for SIMILAR, an embedder).
 *
 * @example
 *   const knowledge = createKnowledge({ store: swarm.store, embedder: fakeEmbedder });
 */
export function createKnowledge(deps: KnowledgeDeps): Knowledge {
  const { store } = deps;
  const now = deps.now ?? Date.now;
  const embedders = new Map<string, Promise<Embedder>>();

  /** The embedder for a namespace: the configured one, or the one of the model that embedded its newest decision. */
  const embedderFor = async (namespace: string): Promise<Embedder | undefined> => {
    if (deps.embedder) return deps.embedder;
    const make = deps.embedderFor;
    if (!make) return undefined;
    const model = deps.embedding ?? (await store.listMemories({ namespace, limit: 1 }))[0]?.metadata.embedding_model;
    if (typeof model !== 'string') return undefined;
    let e = embedders.get(model);
    if (!e) {
      e = Promise.resolve().then(() => make(model));
      embedders.set(model, e);
      // A model that could not be made is tried again next time.
      e.catch(() => embedders.delete(model));
    }
    return e;
  };

  /** Nearest decisions of a task type to a text; undefined when vectors cannot be searched (and why). */
  const nearest = async (taskType: string, text: string, k: number): Promise<Array<{ task_id: string; score: number }> | 'no_embedder' | 'backend_unavailable'> => {
    const namespace = knowledgeNamespace(taskType);
    const embedder = await embedderFor(namespace);
    if (!embedder) return 'no_embedder';
    const [vector] = await embedder.embed([text]);
    if (!vector) return [];
    try {
      const hits = await store.searchMemories({ namespace, vector, k });
      return hits
        .filter((h) => h.metadata.embedding_model === embedder.id && typeof h.metadata.task_id === 'string')
        .map((h) => ({ task_id: h.metadata.task_id as string, score: h.score }))
        .sort((a, b) => b.score - a.score);
    } catch (e) {
      if (e instanceof StoreError && e.code === 'MEMORY_BACKEND_UNAVAILABLE') return 'backend_unavailable';
      throw e;
    }
  };

  return {
    async lookup(task) {
      const spec = task.knowledge ?? {};
      const mode = spec.lookup ?? 'exact';
      const hash = inputsHash(task.inputs);
      if (mode === 'off') return { rejected: [], mode, inputs_hash: hash };
      if (mode !== 'exact' && mode !== 'similar') throw new UserError('KNOWLEDGE_SPEC_INVALID', `knowledge.lookup must be off, exact or similar, not '${String(mode)}'`, { field: 'knowledge.lookup' });
      const minSimilarity = spec.min_similarity ?? DEFAULT_MIN_SIMILARITY;
      const blacklist = new Set(spec.reuse_blacklist ?? []);
      const rejected: KnowledgeRejection[] = [];
      const seen = new Set<string>([task.task_id]);
      /** A decision met: reused, or rejected (and the lookup goes on). */
      const consider = (d: KnowledgeDecisionRow, hitType: KnowledgeHitType, similarity?: number): KnowledgeHit | undefined => {
        if (seen.has(d.task_id)) return undefined;
        seen.add(d.task_id);
        const matched = blacklist.has(d.task_id) ? 'task_id' : blacklist.has(d.candidate_hash) ? 'candidate_hash' : undefined;
        if (matched) {
          rejected.push({ task_id: d.task_id, candidate_hash: d.candidate_hash, reason: 'REUSE_BLACKLISTED', matched, hit_type: hitType, ...(similarity !== undefined ? { similarity } : {}) });
          return undefined;
        }
        return {
          hit_type: hitType,
          task_id: d.task_id,
          candidate_hash: d.candidate_hash,
          output: d.output,
          ...(similarity !== undefined ? { similarity } : {}),
          evidence: d.evidence,
          task_type: d.task_type,
          run_id: d.run_id,
          inputs_hash: d.inputs_hash,
          decided_at: d.decided_at,
        };
      };

      let hit: KnowledgeHit | undefined;
      let before: { decided_at: number; task_id: string } | undefined;
      // EXACT: newest first, paging on while every decision met is blacklisted.
      for (;;) {
        const page = await store.listKnowledgeDecisions({ task_type: task.task_type, inputs_hash: hash, limit: PAGE, ...(before ? { before } : {}) });
        for (const d of page) if ((hit = consider(d, 'EXACT'))) break;
        const last = page.at(-1);
        if (hit || page.length < PAGE || !last) break;
        before = { decided_at: last.decided_at, task_id: last.task_id };
      }

      let skipped: KnowledgeLookupResult['similar_skipped'];
      if (!hit && mode === 'similar') {
        const found = await nearest(task.task_type, taskText(task.inputs), Math.min(100, SIMILAR_K + 2 * blacklist.size));
        if (typeof found === 'string') skipped = found;
        else {
          for (const n of found) {
            if (n.score < minSimilarity) break;
            if (seen.has(n.task_id)) continue;
            const d = await store.getKnowledgeDecision(n.task_id);
            if (d && (hit = consider(d, 'SIMILAR', n.score))) break;
          }
        }
      }

      await store.addKnowledgeLookup({
        task_id: task.task_id,
        task_type: task.task_type,
        inputs_hash: hash,
        mode,
        hit_type: hit?.hit_type ?? 'MISS',
        decision_task_id: hit?.task_id ?? null,
        similarity: hit?.similarity ?? null,
        rejected,
        looked_up_at: now(),
      });
      return { ...(hit ? { hit } : {}), rejected, mode, inputs_hash: hash, ...(skipped ? { similar_skipped: skipped } : {}) };
    },

    async record(f) {
      const write = buildDecisionWrite(f, now());
      const redact = deps.redact;
      if (redact) {
        const d = write.decision;
        write.decision = { ...d, inputs: redact(d.inputs), text: redact(d.text), output: redact(d.output), evidence: redact(d.evidence), decision: redact(d.decision) };
      }
      const { created } = await store.putKnowledgeDecision(write);
      // The memory is written whether or not the row was new: a crash between the two leaves the
      // row without its vector, and the engine's second call (after the crash) mends it.
      const d = write.decision;
      const namespace = knowledgeNamespace(d.task_type);
      const embedder = await embedderFor(namespace);
      if (!embedder) return { created, indexed: false, index_skipped: 'no_embedder' };
      try {
        const [embedding] = await embedder.embed([d.text]);
        if (!embedding) return { created, indexed: false, index_skipped: 'no_embedder' };
        await store.putMemory({
          namespace,
          text: d.text,
          metadata: { kind: 'consensus_decision', task_id: d.task_id, task_type: d.task_type, candidate_hash: d.candidate_hash, inputs_hash: d.inputs_hash, embedding_model: embedder.id },
          source: 'explicit',
          run_id: d.run_id,
          step_id: null,
          session_id: null,
          dedup_key: knowledgeDedupKey(d.task_id),
          created_at: d.decided_at,
          embedding,
        });
        return { created, indexed: true };
      } catch (e) {
        if (e instanceof StoreError && e.code === 'MEMORY_BACKEND_UNAVAILABLE') return { created, indexed: false, index_skipped: 'backend_unavailable' };
        if (isSwarmError(e)) throw e;
        throw new StoreError('KNOWLEDGE_INDEX_FAILED', `the decision of task ${d.task_id} is recorded, but embedding it for similar lookups failed: ${(e as Error)?.message ?? String(e)}`, { task_id: d.task_id }, { cause: e });
      }
    },

    trackRecord(filter = {}) {
      return store.knowledgeTrackRecord(filter);
    },

    async search(text, o = {}) {
      const limit = o.limit ?? 10;
      const types = o.task_type !== undefined ? [o.task_type] : await store.knowledgeTaskTypes();
      const scored: Array<{ task_id: string; score: number }> = [];
      for (const t of types) {
        let found: Awaited<ReturnType<typeof nearest>>;
        try {
          found = await nearest(t, text, Math.min(100, limit));
        } catch (e) {
          if (isSwarmError(e)) throw e;
          // The embedding model's provider failed (down, a bad key): named, with where it comes from.
          throw new ExecutionError('KNOWLEDGE_EMBEDDING_FAILED', `cannot search the decisions of task type '${t}': embedding the text failed (${e instanceof Error ? e.message : String(e)}); the model is SWARM_KNOWLEDGE_EMBEDDING's, or else the one that embedded the task type's newest decision: check its provider's key and base URL`, { task_type: t }, { cause: e });
        }
        if (typeof found !== 'string') scored.push(...found);
      }
      scored.sort((a, b) => b.score - a.score || (a.task_id < b.task_id ? -1 : 1));
      const out: KnowledgeSearchHit[] = [];
      for (const s of scored) {
        if (out.length >= limit) break;
        const d = await store.getKnowledgeDecision(s.task_id);
        if (d && !out.some((x) => x.decision.task_id === d.task_id)) out.push({ score: s.score, decision: d });
      }
      return out;
    },

    export(sel) {
      return exportDecisions(store, sel);
    },

    lookups(q = {}) {
      return store.listKnowledgeLookups(q);
    },
  };
}

async function* exportDecisions(store: Store, sel: KnowledgeExportSelector): AsyncGenerator<KnowledgeExportLine> {
  if ('task_id' in sel) {
    const d = await store.getKnowledgeDecision(sel.task_id);
    if (!d) return;
    const proposals = await store.listKnowledgeProposals([d.task_id]);
    yield exportLine(d, proposals);
    return;
  }
  let before: { decided_at: number; task_id: string } | undefined;
  for (;;) {
    const page = await store.listKnowledgeDecisions({ task_type: sel.task_type, limit: PAGE, ...(before ? { before } : {}) });
    if (page.length === 0) return;
    const proposals = await store.listKnowledgeProposals(page.map((d) => d.task_id));
    const byTask = new Map<string, KnowledgeProposalRow[]>();
    for (const p of proposals) byTask.set(p.task_id, [...(byTask.get(p.task_id) ?? []), p]);
    for (const d of page) yield exportLine(d, byTask.get(d.task_id) ?? []);
    const last = page.at(-1) as KnowledgeDecisionRow;
    if (page.length < PAGE) return;
    before = { decided_at: last.decided_at, task_id: last.task_id };
  }
}
