/**
 * The store contract of retention (migration 16), on SQLite and PostgreSQL: finished run trees past
 * a cut-off are found and deleted with every row that points at them (each table counted before and
 * after), unfinished and recent runs are untouched, batches are bounded, an archive round-trips,
 * finished sessions' checkpoints are compacted and still load whole, and the database does not grow.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { compactEnvelope } from '../src/agents/checkpoint-compaction.js';
import { storeJournal } from '../src/agents/store-journal.js';
import type { Message } from '../src/agents/types.js';
import { verifyChain } from '../src/core/events.js';
import { collectGarbage } from '../src/retention/gc.js';
import { RETENTION_LEASE, RetentionPolicy } from '../src/retention/policy.js';
import type { ArchivedRun } from '../src/retention/archive.js';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { RUN_TABLES, type RunTable } from '../src/store/retention-types.js';
import type { Store } from '../src/store/store.js';
import type { ClaimedStep } from '../src/store/types.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { completion, fail, Harness, ok, sleep, TEST_CHAIN_KEY, useContractStore, type MakeStore, type StoreBackend } from './helpers/store-fixtures.js';

const ONE = `name: one
version: 1.0.0
steps:
  - id: a
    agent: noop@1.0.0
`;
const CHILD = `name: child
version: 1.0.0
steps:
  - id: c1
    agent: noop@1.0.0
`;
const PARENT = `name: parent
version: 1.0.0
steps:
  - id: sub
    workflow: child
`;
const WAIT = `name: waiter
version: 1.0.0
steps:
  - { id: w, kind: wait, event: order.paid }
`;
/** One run at a time per customer: each run has a run_concurrency row. */
const KEYED = `name: keyed
version: 1.0.0
concurrency: { key: "cust-\${trigger.customer}", limit: 1 }
steps:
  - id: a
    agent: noop@1.0.0
`;

/** Rows per run id in one table (messages and tool calls through their session). */
const PER_RUN: Record<RunTable, string> = {
  agent_messages: 'SELECT s.run_id AS run_id, COUNT(*) AS n FROM agent_messages m JOIN agent_sessions s ON s.id = m.session_id GROUP BY s.run_id',
  agent_tool_calls: 'SELECT s.run_id AS run_id, COUNT(*) AS n FROM agent_tool_calls m JOIN agent_sessions s ON s.id = m.session_id GROUP BY s.run_id',
  agent_sessions: 'SELECT run_id, COUNT(*) AS n FROM agent_sessions GROUP BY run_id',
  approvals: 'SELECT run_id, COUNT(*) AS n FROM approvals GROUP BY run_id',
  step_waits: 'SELECT run_id, COUNT(*) AS n FROM step_waits GROUP BY run_id',
  run_signals: 'SELECT run_id, COUNT(*) AS n FROM run_signals GROUP BY run_id',
  run_concurrency: 'SELECT run_id, COUNT(*) AS n FROM run_concurrency GROUP BY run_id',
  step_logs: 'SELECT run_id, COUNT(*) AS n FROM step_logs GROUP BY run_id',
  events: 'SELECT run_id, COUNT(*) AS n FROM events GROUP BY run_id',
  step_executions: 'SELECT run_id, COUNT(*) AS n FROM step_executions GROUP BY run_id',
  workflow_runs: 'SELECT id AS run_id, COUNT(*) AS n FROM workflow_runs GROUP BY id',
};

type Sql = (sql: string) => Promise<Array<Record<string, unknown>>>;
const sqlOf = new WeakMap<StoreBackend, Sql>();

/** Backends that also answer raw SQL, to count rows behind the store's back. */
const sqlite: MakeStore = async () => {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-retention-'));
  const path = join(dir, 'swarm.db');
  const backend: StoreBackend = { open: async () => openSqliteStore({ path, durability: 'full' }), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  sqlOf.set(backend, async (sql) => {
    const db = new Database(path, { timeout: 5000 });
    try {
      const st = db.prepare(sql);
      if (!st.reader) return (st.run(), []);
      return st.all() as Array<Record<string, unknown>>;
    } finally {
      db.close();
    }
  });
  return backend;
};
const postgres: MakeStore = async () => {
  const server = await pgTestServer();
  const url = await server.createDatabase();
  const backend: StoreBackend = { open: () => openPostgresStore({ url, durability: 'full' }), cleanup: () => server.dropDatabase(url) };
  sqlOf.set(backend, async (sql) => (await server.query(url, sql)).rows as Array<Record<string, unknown>>);
  return backend;
};

function retentionContract(name: string, makeStore: MakeStore): void {
  describe(`retention contract: ${name}`, () => {
    const t = useContractStore(makeStore);
    let store: Store;
    let h: Harness;
    beforeEach(() => ({ store, h } = t));
    const sql = (q: string): Promise<Array<Record<string, unknown>>> => (sqlOf.get(t.backend) as Sql)(q);

    /** Every table's rows per run id. */
    const census = async (): Promise<Record<RunTable, Map<string, number>>> => {
      const out = {} as Record<RunTable, Map<string, number>>;
      for (const table of RUN_TABLES) out[table] = new Map((await sql(PER_RUN[table])).map((r) => [String(r.run_id), Number(r.n)]));
      return out;
    };
    /** Deleted runs leave the harness's list: their chains are no longer there to verify. */
    const forget = (ids: readonly string[]): void => {
      for (const id of ids) t.runIds.splice(t.runIds.indexOf(id), 1);
    };
    const claimOf = async (runId: string): Promise<ClaimedStep> => {
      const [c] = await h.claim('w1', 1, 60_000, [runId]);
      if (!c) throw new Error(`nothing to claim in ${runId}`);
      return c;
    };
    const finishOk = async (c: ClaimedStep, stdout = 'out'): Promise<void> => {
      await h.commit({ completions: [{ ...completion(c, 'w1', ok({ v: 1 })), logs: { stdout, stderr: 'err', truncated: false } }] });
    };
    const completed = async (stdout = 'out'): Promise<string> => {
      const id = await h.startRun(ONE);
      await finishOk(await claimOf(id), stdout);
      return id;
    };

    /** A completed run with a row in every table a run can have. */
    const richRun = async (): Promise<string> => {
      const id = await h.startRun(ONE);
      await store.transaction((tx) => h.ledger.signal(tx, id, 'go', { x: 1 }));
      const c = await claimOf(id);
      const sid = `${id}/a`;
      const messages: Message[] = [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', name: 'look', arguments: '{}' }], sender: 'bot', usage: { input_tokens: 3, output_tokens: 2, cost_usd: 0 } },
        { role: 'tool', tool_call_id: 'c1', name: 'look', content: 'found' },
        { role: 'assistant', content: 'done', sender: 'bot', usage: { input_tokens: 5, output_tokens: 1, cost_usd: 0 } },
      ];
      const journal = storeJournal(store, { sessionId: sid, agent: 'bot', runId: id, stepId: 'a', attempt: c.attempt });
      const payload = { agent: 'bot', turn: 2, messages, input_count: 1, context_variables: {}, pending_tool_calls: [], usage: { input_tokens: 8, output_tokens: 3, cost_usd: 0 }, status: 'running' as const, output_retries: 0 };
      await journal.checkpoint({ version: 1, session_id: sid, created_at: Date.now(), payload }, messages);
      await journal.recordTool({ turn: 1, call_id: 'c1', name: 'look', arguments: '{}', output: 'found', is_error: false });
      await store.requestApprovals([{ run_id: id, step_id: 'a', call_id: 'c1', tool: 'look', arguments: '{}', requested_at: Date.now() }]);
      await finishOk(c);
      return id;
    };

    /** A parent run whose sub-workflow step ran a child run to completion; [parent, child]. */
    const tree = async (): Promise<[string, string]> => {
      await h.registerWorkflow(CHILD);
      const parent = await h.startRun(PARENT);
      const r = await h.finish(await claimOf(parent), 'w1', { kind: 'child', inputs: {} });
      const child = r.created[0] as string;
      await finishOk(await claimOf(child));
      expect((await h.run(parent)).status).toBe('completed');
      return [parent, child];
    };

    /** A cut-off between what was made before and what is made after it, on the store's clock. */
    const cutoff = async (): Promise<number> => {
      await sleep(20);
      const at = await store.now();
      await sleep(20);
      return at;
    };

    it('deletes exactly the old finished runs (a parent with its child) and every row of theirs; unfinished and recent runs are untouched', async () => {
      const rich = await richRun();
      const failed = await h.startRun(ONE);
      await h.finish(await claimOf(failed), 'w1', fail('boom', false));
      const cancelled = await h.startRun(ONE);
      await store.transaction((tx) => h.ledger.cancelRun(tx, cancelled, 'not needed'));
      const [parent, child] = await tree();
      const keyed = await h.startRun(KEYED, { customer: 7 });
      await finishOk(await claimOf(keyed));
      const parked = { kind: 'waiting' as const, reason: 'parked', wait: { kind: 'event' as const, name: 'order.paid', match: null, context_json: null, buffer: false, since: 0, wake_at: null } };
      const waited = await h.startRun(WAIT);
      await h.finish(await claimOf(waited), 'w1', parked);
      await store.transaction((tx) => h.ledger.emitEvent(tx, { id: 'evt-1', name: 'order.paid', source: null, data: {} }));
      await finishOk(await claimOf(waited)); // delivered: the step is ready again, and its worker completes it
      expect((await h.run(waited)).status).toBe('completed');
      // Old but not finished: queued, running, waiting (a parked wait step).
      const queued = await h.startRun(ONE);
      const running = await h.startRun(ONE);
      await claimOf(running);
      const waiting = await h.startRun(WAIT);
      await h.finish(await claimOf(waiting), 'w1', parked);
      expect((await h.run(waiting)).status).toBe('waiting');
      const before = await cutoff();
      const recent = await completed();

      const old = [rich, failed, cancelled, parent, child, keyed, waited];
      const kept = [queued, running, waiting, recent];
      const all = { before, statuses: ['completed', 'failed', 'cancelled'] as const };
      const page = await store.expiredRunTrees({ ...all, statuses: [...all.statuses], limit: 100 });
      expect(page.trees.map((x) => x.root).sort()).toEqual([rich, failed, cancelled, parent, keyed, waited].sort());
      expect(page.trees.find((x) => x.root === parent)?.runs).toEqual([parent, child]);
      expect(page.next).toBeNull();
      // Unfinished statuses are never candidates, whatever is asked.
      expect((await store.expiredRunTrees({ before: Date.now() + 60_000, statuses: ['queued', 'running', 'waiting'], limit: 100 })).trees).toEqual([]);

      const counts = await census();
      // Every table has rows of a run that goes, and of one that stays.
      for (const table of RUN_TABLES) expect(old.reduce((n, id) => n + (counts[table].get(id) ?? 0), 0), `${table} rows of old runs`).toBeGreaterThan(0);
      expect(counts.step_waits.get(waiting)).toBe(1);
      const report = await store.deleteRunTrees(page.trees, { ...all, statuses: [...all.statuses] });
      forget(old);
      expect(report.roots.sort()).toEqual([rich, failed, cancelled, parent, keyed, waited].sort());
      expect(report.runs).toBe(7);
      const after = await census();
      for (const table of RUN_TABLES) {
        const expected = old.reduce((n, id) => n + (counts[table].get(id) ?? 0), 0);
        expect(report.rows[table], `${table}: rows deleted`).toBe(expected);
        for (const id of old) expect(after[table].get(id), `${table}: rows of deleted run ${id}`).toBeUndefined();
        for (const id of kept) expect(after[table].get(id), `${table}: rows of kept run ${id}`).toBe(counts[table].get(id));
      }
      for (const id of kept) expect(await store.getRun(id)).toBeDefined();
      expect((await h.run(waiting)).status).toBe('waiting');
      expect(await store.getStepWait(waiting, 'w')).toMatchObject({ status: 'waiting' });
      // Registry and shared plans stay.
      expect(await store.listWorkflows('one')).toHaveLength(1);
    });

    it('a fork keeps its tree: held while the fork is newer than the cut-off, then deleted with it; consensus rows and an imported bundle go with their run', async () => {
      const parent = await completed();
      const before = await cutoff();
      const fork = await completed();
      // A fork of `parent` (what swarm.fork writes: the parent link and the fork point).
      await sql(`UPDATE workflow_runs SET parent_run_id = '${parent}', fork_step_id = 'a' WHERE id = '${fork}'`);
      // A consensus task of the parent with a row in each of its tables, and the bundle it was imported from.
      const now = Date.now();
      const taskId = `${parent}/a`;
      await store.transaction(async (tx) => {
        const c = tx.consensus();
        await c.insertTask({ task_id: taskId, run_id: parent, step_id: 'a', task_type: 't', contract: { task_type: 't' } as never, members: [], status: 'finalized', stage: 'finalize', round: 1, explore_round: 1, round_started_at: now, reason_code: null, reason: null, created_at: now, expires_at: now + 60_000, updated_at: now });
        await c.insertCandidate({ task_id: taskId, candidate_hash: 'h1', proposer_id: 'p1', round: 1, output: { a: 1 }, evidence: [], cost_usd: 0, signature: 's', output_bytes: 7, event_seq: 1, event_hash: 'e1', created_at: now });
        await c.insertResult({ task_id: taskId, candidate_hash: 'h1', verifier_id: 'v', policy_id: 'vp.schema_only.v1', status: 'passed', reason_codes: [], reason: null, score: 1, evidence: [], cost_usd: 0, signature: 's', created_at: now });
        await c.insertCommit({ task_id: taskId, round: 1, voter_id: 'v1', commitment: 'c', commit_signature: 's', committed_at: now });
        await c.insertDecision({ task_id: taskId, round: 1, candidate_hash: 'h1', output: { a: 1 }, tally: { h1: 1 }, quorum: 1, proof: { candidate_event: { seq: 1, hash: 'e1' }, reveal_events: [] }, committed_at: now, finalized_at: now });
        await c.addCost(taskId, 'explore', 0.5);
      });
      await store.insertImportedBundle({ run_id: parent, bundle_sha256: 'sha256:aa', certificate_sha256: 'sha256:bb', source_run_id: parent, bundle: Buffer.from('tar'), imported_at: now });
      const count = async (table: string): Promise<number> => Number((await sql(`SELECT COUNT(*) AS n FROM ${table}`))[0]?.n);
      const SIDE = ['consensus_tasks', 'consensus_candidates', 'consensus_results', 'consensus_votes', 'consensus_decisions', 'consensus_costs', 'imported_bundles'];
      for (const table of SIDE) expect(await count(table), table).toBe(1);

      // The parent is past the cut-off, its fork is not: the tree is held, nothing is deleted.
      const held = await store.expiredRunTrees({ before, statuses: ['completed'], limit: 10 });
      expect(held).toMatchObject({ trees: [], skipped: 1 });
      expect(await store.deleteRunTrees([{ root: parent, completed_at: 0, runs: [parent, fork] }], { before, statuses: ['completed'] })).toMatchObject({ roots: [], runs: 0 });
      expect(await store.getRun(fork)).toBeDefined();

      // Once the fork is past it too, the tree goes whole, with the parent's consensus rows and bundle.
      const later = await cutoff();
      const page = await store.expiredRunTrees({ before: later, statuses: ['completed'], limit: 10 });
      expect(page.trees).toEqual([expect.objectContaining({ root: parent, runs: [parent, fork] })]);
      expect(await store.deleteRunTrees(page.trees, { before: later, statuses: ['completed'] })).toMatchObject({ roots: [parent], runs: 2 });
      forget([parent, fork]);
      for (const table of SIDE) expect(await count(table), table).toBe(0);
      expect(await store.getRun(fork)).toBeUndefined();
    });

    it('status filter and cut-off: only the statuses asked, only runs finished before it; a run reopened after it was read is kept', async () => {
      const a = await completed();
      const failed = await h.startRun(ONE);
      await h.finish(await claimOf(failed), 'w1', fail('boom', false));
      const before = await cutoff();
      const onlyCompleted = await store.expiredRunTrees({ before, statuses: ['completed'], limit: 10 });
      expect(onlyCompleted.trees.map((x) => x.root)).toEqual([a]);
      const page = await store.expiredRunTrees({ before, statuses: ['failed'], limit: 10 });
      expect(page.trees.map((x) => x.root)).toEqual([failed]);
      // Retried between the read and the delete: no longer finished, not deleted.
      await store.transaction((tx) => h.ledger.retryRun(tx, failed));
      const report = await store.deleteRunTrees(page.trees, { before, statuses: ['failed'] });
      expect(report).toMatchObject({ roots: [], runs: 0 });
      expect((await h.run(failed)).status).not.toBe('failed');
      expect(await store.getRun(a)).toBeDefined();
    });

    it('batches are bounded: a batch of N never deletes more than N runs in one transaction, and the walk reaches every run', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) ids.push(await completed());
      ids.push(...(await tree()));
      const before = await cutoff();
      const sizes: number[] = [];
      let after;
      for (;;) {
        const page = await store.expiredRunTrees({ before, statuses: ['completed'], limit: 3, after });
        if (page.trees.length) {
          const r = await store.deleteRunTrees(page.trees, { before, statuses: ['completed'] });
          sizes.push(r.runs);
        }
        if (!page.next) break;
        after = page.next;
      }
      forget(ids);
      expect(sizes.every((n) => n >= 1 && n <= 3), `batch sizes ${sizes.join(',')}`).toBe(true);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(9);
      for (const id of ids) expect(await store.getRun(id)).toBeUndefined();
    });

    it('gc archives each run before deleting it: the archive round-trips (run, steps, events that still verify, logs, transcript)', async () => {
      const rich = await richRun();
      const [parent, child] = await tree();
      const snapshot = async (id: string) => ({
        run: await store.getRun(id),
        steps: await store.getSteps(id),
        events: await store.getEvents(id),
        logs: await store.getLogs(id),
        sessions: await Promise.all(
          (await store.listAgentSessions({ run_id: id })).map(async (s) => ({
            session: { ...s, envelope: (await store.getAgentSession(s.id))?.envelope ?? null },
            messages: await store.getAgentMessages(s.id),
            tool_calls: await store.listToolCalls(s.id),
          })),
        ),
        approvals: await store.listApprovals({ run_id: id }),
        signals: await store.listRunSignals(id),
      });
      const expected = new Map([rich, parent, child].map((id) => [id, undefined as unknown]));
      for (const id of expected.keys()) expected.set(id, await snapshot(id));
      await cutoff();
      const dir = mkdtempSync(join(tmpdir(), 'swarm-archive-'));
      try {
        const file = join(dir, 'runs.jsonl');
        const report = await collectGarbage(store, { ages: { completed: 1 }, archive: file, batch: 2, pauseMs: 0, compactAfterMs: false });
        forget([rich, parent, child]);
        expect(report).toMatchObject({ runs: 3, trees: 2, archived: 3, dry_run: false });
        expect(report.largest_batch).toBeLessThanOrEqual(2);
        const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as ArchivedRun);
        expect(lines.map((l) => l.run.id).sort()).toEqual([rich, parent, child].sort());
        for (const l of lines) {
          const { format, archived_at, ...rest } = l;
          expect(format).toBe(1);
          expect(Date.parse(archived_at)).toBeGreaterThan(0);
          expect(rest).toEqual(expected.get(l.run.id));
          expect(verifyChain(TEST_CHAIN_KEY, l.events)).toEqual([]);
          expect(await store.getRun(l.run.id)).toBeUndefined();
        }
        expect(lines.find((l) => l.run.id === rich)?.sessions[0]?.messages).toHaveLength(4);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('checkpoints of finished sessions are compacted (the messages only in the transcript) and still load whole; running ones are left', async () => {
      const msgs = [
        { role: 'system' as const, content: 'be brief' },
        { role: 'user' as const, content: 'hi' },
        { role: 'assistant' as const, content: 'hello', sender: 'bot', usage: { input_tokens: 2, output_tokens: 1, cost_usd: 0.5 } },
      ];
      const payload = (status: 'running' | 'completed') => ({ agent: 'bot', turn: 1, messages: msgs, input_count: 2, context_variables: { k: 'v' }, pending_tool_calls: [], usage: { input_tokens: 2, output_tokens: 1, cost_usd: 0.5 }, status, output_retries: 0 });
      // Written as an older build did: a finished session's envelope with every message in it.
      for (const [id, status] of [['done', 'completed'], ['busy', 'running']] as const) {
        const env = { version: 1, session_id: id, created_at: 1, payload: payload(status) };
        await store.saveAgentCheckpoint({
          session: { id, run_id: null, step_id: null, agent: 'bot', current_agent: 'bot', trace_id: null, status, turns: 1, input_tokens: 2, output_tokens: 1, cost_usd: 0.5 },
          envelope: JSON.stringify(env),
          version: 1,
          attempt: 0,
          messages: msgs.map((m, seq) => ({ seq, role: m.role, agent: m.role === 'assistant' ? m.sender : null, content: m.content, tool_calls: null, tool_call_id: null, name: null, usage: m.role === 'assistant' ? m.usage : null })),
        });
      }
      const full = (await store.getAgentSession('done'))?.envelope as string;
      const r = await store.compactAgentSessions({ before: (await store.now()) + 1000, limit: 10, compact: compactEnvelope });
      expect(r).toMatchObject({ examined: 1, compacted: 1 });
      expect(r.bytes_saved).toBeGreaterThan(0);
      const compact = (await store.getAgentSession('done'))?.envelope as string;
      expect(compact.length).toBeLessThan(full.length);
      expect(JSON.parse(compact)).toMatchObject({ payload: { messages: [], messages_in_transcript: 3, context_variables: { k: 'v' } } });
      // Loading restores exactly the envelope it was.
      expect(await storeJournal(store, { sessionId: 'done', agent: 'bot' }).load()).toEqual(JSON.parse(full));
      expect((await store.getAgentSession('busy'))?.envelope).toContain('be brief');
      // Examined once until its next checkpoint.
      expect((await store.compactAgentSessions({ before: (await store.now()) + 1000, limit: 10, compact: compactEnvelope })).examined).toBe(0);
      // The journal writes a finished answer compacted itself.
      const j = storeJournal(store, { sessionId: 'fresh', agent: 'bot' });
      const env = { version: 1, session_id: 'fresh', created_at: 1, payload: payload('completed') };
      await j.checkpoint(env, msgs);
      expect(JSON.parse((await store.getAgentSession('fresh'))?.envelope as string)).toMatchObject({ payload: { messages: [], messages_in_transcript: 3 } });
      expect(await j.load()).toEqual(env);
    });

    it('the retention policy: one holder at a time (the store\'s retention lease); the pass deletes and logs, then releases the lease', async () => {
      const old = await completed();
      await cutoff();
      const lines: string[] = [];
      const a = new RetentionPolicy(store, { holder: 'serve-a', ages: { completed: 1 }, intervalMs: 60_000, log: (l) => lines.push(l) });
      // Another serve holds the lease (it is mid-pass): this one's pass does nothing.
      expect((await store.acquireLease(RETENTION_LEASE, 'serve-b', 30_000)).acquired).toBe(true);
      expect(await a.pass()).toBeUndefined();
      expect(await store.getRun(old)).toBeDefined();
      expect(await store.releaseLease(RETENTION_LEASE, 'serve-b')).toBe(true);
      const report = await a.pass();
      forget([old]);
      expect(report).toMatchObject({ runs: 1, trees: 1 });
      expect(await store.getRun(old)).toBeUndefined();
      expect(lines.join('\n')).toMatch(/^retention: deleted 1 finished run\(s\) \(1 top-level\) in 1 batch\(es\); 0 checkpoint\(s\) compacted; database .* before, .* after$/);
      expect(await store.getLease(RETENTION_LEASE)).toBeUndefined();
    });

    it('database size: reported before and after; deleted rows are gone and the space is reused rather than grown', async () => {
      const big = 'x'.repeat(8_000);
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) ids.push(await completed(big));
      await cutoff();
      const report = await collectGarbage(store, { ages: { completed: 1 }, batch: 16, pauseMs: 0, compactAfterMs: false });
      forget(ids);
      console.log(`${name}: database size before gc ${report.size_before.bytes} bytes, after ${report.size_after.bytes} bytes (free ${report.size_after.free_bytes ?? 'n/a'}, file ${report.size_after.file_bytes ?? 'n/a'})`);
      expect(report.runs).toBe(40);
      expect(report.batches).toBe(3);
      expect(Number((await sql('SELECT COUNT(*) AS n FROM step_logs'))[0]?.n)).toBe(0);
      expect(Number((await sql('SELECT COUNT(*) AS n FROM workflow_runs'))[0]?.n)).toBe(0);
      // Deleting never grows the database (PostgreSQL: give or take a few pages of free-space maps).
      const slack = store.kind === 'postgres' ? 256 * 1024 : 0;
      expect(report.size_after.bytes).toBeLessThanOrEqual(report.size_before.bytes + slack);
      if (store.kind === 'sqlite') {
        // SQLite keeps the pages on its free list, and the same amount written again reuses them.
        expect(report.size_after.free_bytes ?? 0).toBeGreaterThan(40 * 8_000 * 0.8);
        for (let i = 0; i < 40; i++) await completed(big);
        const again = await store.databaseSize();
        console.log(`${name}: after writing the same again ${again.bytes} bytes (free ${again.free_bytes})`);
        expect(again.bytes).toBeLessThanOrEqual(report.size_before.bytes * 1.1);
      }
    });
  });
}

retentionContract('SQLite', sqlite);
retentionContract('PostgreSQL', postgres);

afterAll(async () => {
  await stopPgTestServer();
});
