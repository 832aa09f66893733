/**
 * The keyed event chain through the real CLI: a run whose output is forged and whose chain is
 * recomputed the old unkeyed way (what any process that can write the SQLite file could do) fails
 * `swarm runs verify` with exit 3; legacy runs, downgrades, the master key file and a process with
 * the wrong key. Real processes, real SQLite files. Build first: `npm run build`.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, test } from 'vitest';
import { cleanupSandboxes, examplesStore, makeSandbox, show, type Sandbox } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

interface EventRow {
  run_id: string;
  seq: number;
  type: string;
  step_id: string | null;
  data: string;
  at: number;
  prev_hash: string;
  hash: string;
}

async function withExamples(): Promise<Sandbox> {
  const s = makeSandbox();
  s.copyStore(await examplesStore());
  return s;
}

async function runEchoChain(s: Sandbox, message: string): Promise<string> {
  const doc = await s.json<{ run_id: string; status: string }>(['run', 'echo-chain', JSON.stringify({ message }), '--json']);
  if (doc.status !== 'completed') throw new Error(`run ended ${doc.status}`);
  return doc.run_id;
}

/**
 * Rewrite a run's whole event chain with plain SHA-256 over the same fields, exactly as hashes were
 * computed before chains were keyed, and point the run's head at the new last hash.
 */
function recomputeUnkeyed(db: Database.Database, runId: string): void {
  const events = db.prepare('SELECT run_id, seq, type, step_id, data, at, prev_hash, hash FROM events WHERE run_id = ? ORDER BY seq').all(runId) as EventRow[];
  let prev = '0'.repeat(64);
  const update = db.prepare('UPDATE events SET prev_hash = ?, hash = ? WHERE run_id = ? AND seq = ?');
  for (const e of events) {
    const hash = createHash('sha256').update(`${prev}\n${e.run_id}\n${e.seq}\n${e.type}\n${e.step_id ?? ''}\n${e.at}\n${e.data}`).digest('hex');
    update.run(prev, hash, runId, e.seq);
    prev = hash;
  }
  db.prepare('UPDATE workflow_runs SET event_hash = ? WHERE id = ?').run(prev, runId);
}

/** Forge step2's outputs and the digest in its STEP_COMPLETED event, so only the chain can tell. */
function forgeOutput(db: Database.Database, runId: string): void {
  const forged = JSON.stringify({ echoed: 'forged by an agent' });
  expect1(db.prepare(`UPDATE step_executions SET outputs = ? WHERE run_id = ? AND step_id = 'step2'`).run(forged, runId).changes);
  const ev = db.prepare(`SELECT seq, data FROM events WHERE run_id = ? AND type = 'STEP_COMPLETED' AND step_id = 'step2'`).get(runId) as { seq: number; data: string };
  const data = { ...(JSON.parse(ev.data) as Record<string, unknown>), outputs_sha256: createHash('sha256').update(forged).digest('hex') };
  expect1(db.prepare('UPDATE events SET data = ? WHERE run_id = ? AND seq = ?').run(JSON.stringify(data), runId, ev.seq).changes);
}

function expect1(n: number): void {
  if (n !== 1) throw new Error(`expected one row changed, got ${n}`);
}

describe('keyed event chain', () => {
  test('a forged output with the chain recomputed the unkeyed way fails runs verify with exit 3', async ({ expect }) => {
    const s = await withExamples();
    const id = await runEchoChain(s, 'original');
    const before = await s.run(['runs', 'verify', id]);
    expect(before.code, show(before)).toBe(0);

    const db = new Database(s.db);
    forgeOutput(db, id);
    recomputeUnkeyed(db, id);
    db.close();

    // The forgery is complete as far as the old verification went: the outputs match the digest, and
    // every hash links. Only the key tells.
    const shown = await s.json<{ steps: Array<{ id: string; outputs: unknown }> }>(['runs', 'show', id, '--json']);
    expect(shown.steps.find((x) => x.id === 'step2')?.outputs).toEqual({ echoed: 'forged by an agent' });
    const after = await s.run(['runs', 'verify', id]);
    expect(after.code, show(after)).toBe(3);
    expect(after.stderr).toContain('event 1: hash is the unkeyed (plain SHA-256) form');
    const json = await s.run(['runs', 'verify', id, '--json']);
    expect(json.code).toBe(3);
    const report = JSON.parse(json.stdout) as { ok: boolean; problems: Array<{ seq: number | null; problem: string }> };
    expect(report.ok).toBe(false);
    expect(report.problems.length).toBeGreaterThan(0);
  });

  test('legacy runs (unkeyed, from before the store had a key) pass only with --allow-legacy; a downgraded new run never does', async ({ expect }) => {
    const s = await withExamples();
    const legacy = await runEchoChain(s, 'old');
    // Make the store look like one written before chains were keyed: unkeyed chains, no key records.
    let db = new Database(s.db);
    recomputeUnkeyed(db, legacy);
    db.prepare(`DELETE FROM swarm_meta WHERE key IN ('master_key_check', 'chain_keyed_since')`).run();
    db.close();
    await new Promise((r) => setTimeout(r, 5));

    // The upgrade: the next process records the key and the moment the store became keyed.
    const strict = await s.run(['runs', 'verify', legacy]);
    expect(strict.code, show(strict)).toBe(3);
    expect(strict.stderr).toContain('unkeyed (plain SHA-256) form: a legacy chain');
    const lenient = await s.run(['runs', 'verify', legacy, '--allow-legacy']);
    expect(lenient.code, show(lenient)).toBe(0);
    expect(lenient.stdout).toMatch(/^ok \(legacy\): \d+ events; the first \d+ are in the old unkeyed form/);

    // A run made after the upgrade, rewritten into the unkeyed form: no flag makes it pass.
    const fresh = await runEchoChain(s, 'new');
    db = new Database(s.db);
    forgeOutput(db, fresh);
    // Its events backdated too, as a forger would: the run id still carries its creation time.
    db.prepare('UPDATE events SET at = 1 WHERE run_id = ?').run(fresh);
    recomputeUnkeyed(db, fresh);
    db.close();
    for (const args of [['runs', 'verify', fresh], ['runs', 'verify', fresh, '--allow-legacy']]) {
      const r = await s.run(args);
      expect(r.code, show(r)).toBe(3);
    }
    const withFlag = await s.run(['runs', 'verify', fresh, '--allow-legacy']);
    expect(withFlag.stderr).toContain('was created after the store was first used with a key');
  });

  test('the master key file is created once, mode 0600, by processes starting together', async ({ expect }) => {
    const s = makeSandbox();
    const results = await Promise.all(Array.from({ length: 4 }, () => s.run(['agent', 'list', '--json'])));
    for (const r of results) expect(r.code, show(r)).toBe(0);
    const file = join(s.home!, 'master.key');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
  });

  test('a process whose master key is not the store’s stops at open with exit 2; a malformed key is refused', async ({ expect }) => {
    const s = await withExamples();
    const id = await runEchoChain(s, 'x');
    const other = 'ab'.repeat(32);
    const wrong = await s.run(['runs', 'list', '--json'], { env: { SWARM_MASTER_KEY: other } });
    expect(wrong.code, show(wrong)).toBe(2);
    expect(wrong.stderr).toContain('is not the key the store');
    expect(wrong.stderr).toContain('SWARM_MASTER_KEY');
    expect(wrong.stdout).toBe('');

    // The same key given in the environment (hex or base64) is accepted.
    const key = Buffer.from(readFileSync(join(s.home!, 'master.key'), 'utf8').trim(), 'hex');
    for (const text of [key.toString('hex'), key.toString('base64')]) {
      const r = await s.run(['runs', 'verify', id], { env: { SWARM_MASTER_KEY: text } });
      expect(r.code, show(r)).toBe(0);
    }

    const short = await s.run(['runs', 'list'], { env: { SWARM_MASTER_KEY: 'abcd' } });
    expect(short.code, show(short)).toBe(2);
    expect(short.stderr).toContain('SWARM_MASTER_KEY: a hex master key must be 64 hex digits (32 bytes), found 4');
  });
});
