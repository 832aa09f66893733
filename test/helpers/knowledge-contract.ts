/**
 * The knowledge store's contract, run on each backend by the knowledge-*.test.ts files: EXACT and
 * SIMILAR lookups, the blacklist with fall-through, idempotent records, the track record, export,
 * search and the lookups log. `vectors: false` is a backend without a vector index (PostgreSQL
 * without pgvector): SIMILAR is skipped there, everything else holds.
 */
import { expect } from 'vitest';
import { candidateHash } from '../../src/consensus/core/crypto.js';
import { ReasonCode } from '../../src/consensus/core/reason-codes.js';
import { createKnowledge, inputsHash, knowledgeEvents, knowledgeNamespace, toSeedBundle, type KnowledgeExportLine } from '../../src/consensus/knowledge/index.js';
import type { Store } from '../../src/store/store.js';
import { fakeEmbedder, finalized } from './knowledge-fixtures.js';

const REPORT = 'Summarise the quarterly sales report for the board';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** EXACT hits: same type and canonical inputs (any key order), newest first; misses otherwise. */
export async function exactContract(store: Store): Promise<void> {
  const k = createKnowledge({ store, embedder: fakeEmbedder(), now: () => 5000 });
  const inputs = { prompt: REPORT, options: { words: 100, lang: 'en' } };
  const f1 = finalized({ task_id: 't1', task_type: 'summary', inputs }, [{ proposer: 'executor:a', output: { summary: 'old' } }], 0, 1000);
  const f2 = finalized({ task_id: 't2', task_type: 'summary', inputs }, [{ proposer: 'executor:a', output: { summary: 'new' } }, { proposer: 'executor:b', output: { summary: 'other' } }], 0, 2000);
  expect((await k.record(f1)).created).toBe(true);
  expect((await k.record(f2)).created).toBe(true);

  // Same inputs, keys in another order: EXACT, the newest decision.
  const r = await k.lookup({ task_id: 't3', task_type: 'summary', inputs: { options: { lang: 'en', words: 100 }, prompt: REPORT } });
  expect(r.mode).toBe('exact');
  expect(r.inputs_hash).toBe(inputsHash(inputs));
  expect(r.rejected).toEqual([]);
  expect(r.hit).toMatchObject({ hit_type: 'EXACT', task_id: 't2', candidate_hash: candidateHash({ summary: 'new' }), output: { summary: 'new' }, task_type: 'summary', run_id: 'run-t2', decided_at: 2000 });
  expect(r.hit?.similarity).toBeUndefined();
  // The winner's evidence, then its verifier's.
  expect(r.hit?.evidence.map((e) => e.digest)).toEqual(['d-executor:a-out', 'd-check-0-0']);
  expect(toSeedBundle(r.hit!)).toEqual({ hit_type: 'EXACT', task_id: 't2', candidate_hash: candidateHash({ summary: 'new' }), output: { summary: 'new' }, evidence: r.hit?.evidence });
  expect(knowledgeEvents('t3', r)).toEqual([{ type: 'KNOWLEDGE_HIT', data: { task_id: 't3', hit_type: 'EXACT', decision_task_id: 't2', candidate_hash: candidateHash({ summary: 'new' }), inputs_hash: inputsHash(inputs) } }]);

  // Other inputs, another task type, lookup off: nothing.
  expect((await k.lookup({ task_id: 't4', task_type: 'summary', inputs: { ...inputs, prompt: `${REPORT}!` } })).hit).toBeUndefined();
  expect((await k.lookup({ task_id: 't5', task_type: 'translation', inputs })).hit).toBeUndefined();
  const off = await k.lookup({ task_id: 't6', task_type: 'summary', inputs, knowledge: { lookup: 'off' } });
  expect(off).toEqual({ rejected: [], mode: 'off', inputs_hash: inputsHash(inputs) });
  // A task never reuses its own decision (a resumed task looking up again).
  expect((await k.lookup({ task_id: 't2', task_type: 'summary', inputs })).hit?.task_id).toBe('t1');

  // The lookups log: newest first, off is not logged.
  const log = await k.lookups();
  expect(log.map((l) => [l.task_id, l.hit_type, l.decision_task_id])).toEqual([
    ['t2', 'EXACT', 't1'],
    ['t5', 'MISS', null],
    ['t4', 'MISS', null],
    ['t3', 'EXACT', 't2'],
  ]);
  expect(log[3]).toMatchObject({ task_type: 'summary', inputs_hash: inputsHash(inputs), mode: 'exact', similarity: null, rejected: [], looked_up_at: 5000 });
  expect((await k.lookups({ task_id: 't3' })).map((l) => l.task_id)).toEqual(['t3']);
}

/** The blacklist: by task id or candidate hash, each rejection listed once, the lookup falling through. */
export async function blacklistContract(store: Store, o: { vectors: boolean }): Promise<void> {
  const k = createKnowledge({ store, embedder: fakeEmbedder() });
  const inputs = { prompt: REPORT };
  await k.record(finalized({ task_id: 'old', task_type: 'summary', inputs }, [{ proposer: 'executor:a', output: { summary: 'A' } }], 0, 1000));
  await k.record(finalized({ task_id: 'new', task_type: 'summary', inputs }, [{ proposer: 'executor:a', output: { summary: 'B' } }], 0, 2000));
  await k.record(finalized({ task_id: 'near', task_type: 'summary', inputs: { prompt: `${REPORT} members` } }, [{ proposer: 'executor:a', output: { summary: 'C' } }], 0, 3000));

  // The newest EXACT decision blacklisted by task id: the next one is used.
  const r1 = await k.lookup({ task_id: 'q1', task_type: 'summary', inputs, knowledge: { reuse_blacklist: ['new'] } });
  expect(r1.hit?.task_id).toBe('old');
  expect(r1.rejected).toEqual([{ task_id: 'new', candidate_hash: candidateHash({ summary: 'B' }), reason: 'REUSE_BLACKLISTED', matched: 'task_id', hit_type: 'EXACT' }]);
  expect(knowledgeEvents('q1', r1).map((e) => e.type)).toEqual(['REUSE_REJECT_RECORDED', 'KNOWLEDGE_HIT']);
  expect(knowledgeEvents('q1', r1)[0]?.data).toEqual({
    task_id: 'q1',
    decision_task_id: 'new',
    candidate_hash: candidateHash({ summary: 'B' }),
    reason_code: ReasonCode.REUSE_BLACKLISTED,
    reason: 'REUSE_BLACKLISTED',
    matched: 'task_id',
    hit_type: 'EXACT',
  });

  // Both EXACT ones out (one by candidate hash): no EXACT hit.
  const blacklist = ['new', candidateHash({ summary: 'A' })];
  const r2 = await k.lookup({ task_id: 'q2', task_type: 'summary', inputs, knowledge: { reuse_blacklist: blacklist } });
  expect(r2.hit).toBeUndefined();
  expect(r2.rejected.map((x) => [x.task_id, x.matched])).toEqual([
    ['new', 'task_id'],
    ['old', 'candidate_hash'],
  ]);
  const logged = (await k.lookups({ task_id: 'q2' }))[0];
  expect(logged).toMatchObject({ hit_type: 'MISS', decision_task_id: null });
  expect(logged?.rejected).toEqual(r2.rejected);

  // With SIMILAR, the lookup falls through to the similar decision; the EXACT ones, met again among
  // the nearest, are not listed twice.
  const r3 = await k.lookup({ task_id: 'q3', task_type: 'summary', inputs, knowledge: { lookup: 'similar', min_similarity: 0.8, reuse_blacklist: blacklist } });
  expect(r3.rejected.map((x) => x.task_id)).toEqual(['new', 'old']);
  if (!o.vectors) {
    expect(r3.hit).toBeUndefined();
    expect(r3.similar_skipped).toBe('backend_unavailable');
    return;
  }
  expect(r3.hit).toMatchObject({ hit_type: 'SIMILAR', task_id: 'near', output: { summary: 'C' } });
  expect(r3.hit?.similarity).toBeGreaterThan(0.85);
  expect(r3.hit?.similarity).toBeLessThan(0.95);
  expect((await k.lookups({ task_id: 'q3' }))[0]).toMatchObject({ mode: 'similar', hit_type: 'SIMILAR', decision_task_id: 'near', similarity: r3.hit?.similarity });

  // A SIMILAR decision blacklisted: rejected as SIMILAR with its similarity; nothing else is near enough.
  const r4 = await k.lookup({ task_id: 'q4', task_type: 'summary', inputs, knowledge: { lookup: 'similar', min_similarity: 0.8, reuse_blacklist: [...blacklist, 'near'] } });
  expect(r4.hit).toBeUndefined();
  expect(r4.rejected[2]).toMatchObject({ task_id: 'near', hit_type: 'SIMILAR', matched: 'task_id' });
  expect(r4.rejected[2]?.similarity).toBeGreaterThan(0.85);
}

/** SIMILAR above the threshold hits, below it misses; other task types are other namespaces. */
export async function similarContract(store: Store): Promise<void> {
  const embedder = fakeEmbedder();
  const k = createKnowledge({ store, embedder });
  const rec = await k.record(finalized({ task_id: 's1', task_type: 'summary', inputs: { prompt: REPORT } }, [{ proposer: 'executor:a', output: { summary: 'S' } }], 0, 1000));
  expect(rec).toEqual({ created: true, indexed: true });
  await k.record(finalized({ task_id: 'x1', task_type: 'translation', inputs: { prompt: `${REPORT} members` } }, [{ proposer: 'executor:a', output: { text: 'T' } }], 0, 1000));
  // The decision is a memory of the task type's namespace, written once however often it is recorded.
  await k.record(finalized({ task_id: 's1', task_type: 'summary', inputs: { prompt: REPORT } }, [{ proposer: 'executor:a', output: { summary: 'S' } }], 0, 1000));
  const mems = await store.listMemories({ namespace: knowledgeNamespace('summary') });
  expect(mems).toHaveLength(1);
  expect(mems[0]).toMatchObject({ text: REPORT, source: 'explicit', dedup_key: 'knowledge/s1', run_id: 'run-s1', metadata: { kind: 'consensus_decision', task_id: 's1', task_type: 'summary', embedding_model: embedder.id } });

  const near = { prompt: `${REPORT} members` }; // cosine 0.901 with the fake embedder
  const above = await k.lookup({ task_id: 'n1', task_type: 'summary', inputs: near, knowledge: { lookup: 'similar', min_similarity: 0.85 } });
  expect(above.hit).toMatchObject({ hit_type: 'SIMILAR', task_id: 's1', candidate_hash: candidateHash({ summary: 'S' }), output: { summary: 'S' } });
  expect(above.hit?.similarity).toBeCloseTo(0.901, 2);
  expect(toSeedBundle(above.hit!).similarity).toBe(above.hit?.similarity);
  const below = await k.lookup({ task_id: 'n2', task_type: 'summary', inputs: near, knowledge: { lookup: 'similar', min_similarity: 0.95 } });
  expect(below.hit).toBeUndefined();
  expect(below.rejected).toEqual([]);
  // The default threshold (0.85) lets 0.901 through; an unrelated text misses; EXACT-only never looks at vectors.
  expect((await k.lookup({ task_id: 'n3', task_type: 'summary', inputs: near, knowledge: { lookup: 'similar' } })).hit?.task_id).toBe('s1');
  expect((await k.lookup({ task_id: 'n4', task_type: 'summary', inputs: { prompt: 'Translate a short poem into French' }, knowledge: { lookup: 'similar', min_similarity: 0.1 } })).hit).toBeUndefined();
  expect((await k.lookup({ task_id: 'n5', task_type: 'summary', inputs: near })).hit).toBeUndefined();
  // EXACT wins over SIMILAR when both exist.
  expect((await k.lookup({ task_id: 'n6', task_type: 'translation', inputs: near, knowledge: { lookup: 'similar' } })).hit).toMatchObject({ hit_type: 'EXACT', task_id: 'x1' });

  // Vectors of another embedding model are not compared.
  const other = createKnowledge({ store, embedder: fakeEmbedder('fake/other-model') });
  expect((await other.lookup({ task_id: 'n7', task_type: 'summary', inputs: near, knowledge: { lookup: 'similar', min_similarity: 0.5 } })).hit).toBeUndefined();

  // search: best first, across task types or in one.
  const hits = await k.search(REPORT, { limit: 5 });
  expect(hits.map((h) => h.decision.task_id)).toEqual(['s1', 'x1']);
  expect(hits[0]?.score).toBeCloseTo(1, 3);
  expect((await k.search(REPORT, { task_type: 'translation', limit: 5 })).map((h) => h.decision.task_id)).toEqual(['x1']);
  expect(await k.search(REPORT, { task_type: 'nothing', limit: 5 })).toEqual([]);
  expect((await k.search(REPORT, { limit: 1 })).length).toBe(1);

  // Without a configured embedder, the model that embedded the namespace is used (the CLI's case).
  const resolved: string[] = [];
  const byModel = createKnowledge({
    store,
    embedderFor: (m) => {
      resolved.push(m);
      return fakeEmbedder(m);
    },
  });
  expect((await byModel.search(REPORT, { task_type: 'summary', limit: 3 })).map((h) => h.decision.task_id)).toEqual(['s1']);
  expect(resolved).toEqual([embedder.id]);
  const none = createKnowledge({ store });
  expect(await none.lookup({ task_id: 'n8', task_type: 'summary', inputs: near, knowledge: { lookup: 'similar' } })).toMatchObject({ similar_skipped: 'no_embedder', rejected: [] });
}

/** record is idempotent; the track record counts each decided task once. */
export async function trackContract(store: Store): Promise<void> {
  const k = createKnowledge({ store, now: () => 7000 });
  const a = finalized(
    { task_id: 'r1', task_type: 'math', inputs: { q: '2+2' } },
    [
      { proposer: 'executor:a', output: { n: 4 } },
      { proposer: 'executor:b', output: { n: 5 }, verdicts: ['failed'] },
      { proposer: 'agent:c#1', output: { n: 4 } },
    ],
    0,
    1000,
  );
  expect(await k.record(a)).toEqual({ created: true, indexed: false, index_skipped: 'no_embedder' });
  expect(await k.record(a)).toEqual({ created: false, indexed: false, index_skipped: 'no_embedder' });
  const b = finalized(
    { task_id: 'r2', task_type: 'math', inputs: { q: '3+3' } },
    [
      { proposer: 'executor:a', output: { n: 7 }, verdicts: ['passed', 'inconclusive'] },
      { proposer: 'executor:b', output: { n: 6 } },
    ],
    1,
    2000,
  );
  await k.record(b);
  await k.record(finalized({ task_id: 'r3', task_type: 'other', inputs: { q: 'x' } }, [{ proposer: 'executor:a', output: 1, verdicts: [] }], 0, 3000));
  await Promise.all([k.record(b), k.record(b)]);

  const rows = await k.trackRecord({ task_type: 'math' });
  expect(rows.map(({ updated_at: _, ...r }) => r)).toEqual([
    { task_type: 'math', proposer_id: 'agent:c#1', proposed: 1, won: 1, failed: 0, inconclusive: 0 },
    { task_type: 'math', proposer_id: 'executor:a', proposed: 2, won: 1, failed: 0, inconclusive: 1 },
    { task_type: 'math', proposer_id: 'executor:b', proposed: 2, won: 1, failed: 1, inconclusive: 0 },
  ]);
  expect(rows[0]?.updated_at).toBeGreaterThan(0);
  expect((await k.trackRecord()).map((r) => `${r.task_type}/${r.proposer_id}`)).toEqual(['math/agent:c#1', 'math/executor:a', 'math/executor:b', 'other/executor:a']);
  expect((await k.trackRecord({ proposer_id: 'executor:a' })).map((r) => [r.task_type, r.proposed])).toEqual([
    ['math', 2],
    ['other', 1],
  ]);
  expect(await store.knowledgeTaskTypes()).toEqual(['math', 'other']);

  // The decision row as recorded the first time (the second record changed nothing).
  const d = await store.getKnowledgeDecision('r1');
  expect(d).toMatchObject({ task_id: 'r1', task_type: 'math', run_id: 'run-r1', inputs: { q: '2+2' }, text: '2+2', candidate_hash: candidateHash({ n: 4 }), output: { n: 4 }, decided_at: 1000, recorded_at: 7000 });
  expect(d?.cost).toMatchObject({ total_usd: 0.033, explore_usd: 0.03 });
  expect(d?.decision).toMatchObject({ quorum: 2, round: 1, finalized_at: 1000, proof: { candidate_event: { seq: 3, hash: 'h3' } } });
  // A decision of another task's id is refused.
  const bad = finalized({ task_id: 'r9', task_type: 'math', inputs: {} }, [{ proposer: 'executor:a', output: 1 }], 0, 1);
  await expect(k.record({ ...bad, task: { ...bad.task, task_id: 'r8' } })).rejects.toMatchObject({ code: 'KNOWLEDGE_RECORD_INVALID' });
}

/** export by task type (newest first, paged past 100) and by task id. */
export async function exportContract(store: Store): Promise<void> {
  const k = createKnowledge({ store });
  await k.record(
    finalized(
      { task_id: 'e1', task_type: 'math', inputs: { q: '2+2' } },
      [
        { proposer: 'executor:a', output: { n: 4 } },
        { proposer: 'executor:b', output: { n: 5 }, verdicts: ['failed'] },
      ],
      0,
      Date.UTC(2026, 0, 2),
    ),
  );
  for (let i = 0; i < 105; i++) await store.putKnowledgeDecision({ decision: { ...(await store.getKnowledgeDecision('e1'))!, task_id: `bulk-${String(i).padStart(3, '0')}`, decided_at: 1000 + i }, proposals: [] });
  await k.record(finalized({ task_id: 'o1', task_type: 'other', inputs: { q: 'x' } }, [{ proposer: 'executor:a', output: 1 }], 0, 5000));

  const one = await collect(k.export({ task_id: 'e1' }));
  expect(one).toHaveLength(1);
  const line = one[0] as KnowledgeExportLine;
  expect(line).toMatchObject({
    kind: 'swarm.knowledge.decision',
    version: 1,
    task_id: 'e1',
    task_type: 'math',
    inputs: { q: '2+2' },
    inputs_hash: inputsHash({ q: '2+2' }),
    candidate_hash: candidateHash({ n: 4 }),
    output: { n: 4 },
    decided_at: '2026-01-02T00:00:00.000Z',
    cost: { total_usd: 0.033 },
    decision: { tally: { [candidateHash({ n: 4 })]: 2 }, quorum: 2 },
  });
  expect(line.evidence.map((e) => e.digest)).toEqual(['d-executor:a-out', 'd-check-0-0']);
  expect(line.proposers).toEqual([
    { proposer_id: 'executor:a', candidate_hash: candidateHash({ n: 4 }), round: 1, won: true, verification: 'passed', cost_usd: 0.01 },
    { proposer_id: 'executor:b', candidate_hash: candidateHash({ n: 5 }), round: 1, won: false, verification: 'failed', cost_usd: 0.01 },
  ]);
  // One JSON object a line: the line survives JSON.
  expect(JSON.parse(JSON.stringify(line))).toEqual(line);
  expect(await collect(k.export({ task_id: 'nope' }))).toEqual([]);

  const all = await collect(k.export({ task_type: 'math' }));
  expect(all).toHaveLength(106);
  expect(all[0]?.task_id).toBe('e1');
  expect(all.slice(1).map((l) => l.task_id)).toEqual(Array.from({ length: 105 }, (_, i) => `bulk-${String(104 - i).padStart(3, '0')}`));
  expect(all[1]?.proposers).toEqual([]);
  expect((await collect(k.export({ task_type: 'other' }))).map((l) => l.task_id)).toEqual(['o1']);
  expect(await collect(k.export({ task_type: 'none' }))).toEqual([]);
}
