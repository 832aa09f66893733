/**
 * http(s) evidence, checked by the verify stage through a real worker: a candidate whose evidence
 * URL serves bytes matching its digest is EVIDENCE_AVAILABLE and passes; one whose bytes do not
 * match (EVIDENCE_DIGEST_MISMATCH), whose URL answers 404 or whose server is not there
 * (EVIDENCE_UNREACHABLE) is unavailable, and its verifier result is inconclusive
 * (EVIDENCE_UNREACHABLE), so the decision goes to the candidate with good evidence.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '../src/consensus/core/crypto.js';
import { ReasonCode } from '../src/consensus/core/reason-codes.js';
import { builtinAgent, openProject, removeProject, tempProject, until } from './helpers/project.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function listen(server: Server): Promise<number> {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
}

describe('http evidence', () => {
  it('matching bytes are available and pass; a mismatch, a 404 and a dead server make the result inconclusive', async () => {
    const report = Buffer.from('the sum of 2 and 2 is 4\n');
    const hits: string[] = [];
    const server = createServer((req, res) => {
      hits.push(req.url ?? '');
      if (req.url === '/good' || req.url === '/tampered') return res.end(req.url === '/good' ? report : Buffer.from('the sum of 2 and 2 is 5\n'));
      res.statusCode = 404;
      res.end('no');
    });
    const port = await listen(server);
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    // A port that was listening a moment ago and is closed now: nothing answers there.
    const gone = createServer();
    const deadPort = await listen(gone);
    await new Promise<void>((r) => gone.close(() => r()));

    const digest = sha256Hex(report);
    const url = (p: string, host = port) => `http://127.0.0.1:${host}${p}`;
    const agents: Record<string, { answer: number; uri: string }> = {
      good: { answer: 4, uri: url('/good') },
      tampered: { answer: 5, uri: url('/tampered') },
      missing: { answer: 6, uri: url('/missing') },
      dead: { answer: 7, uri: url('/x', deadPort) },
    };
    const dir = tempProject();
    cleanups.push(() => removeProject(dir));
    const swarm = await openProject(dir, { overrides: { pollMs: 50 } });
    cleanups.push(() => swarm.close());
    for (const [name, a] of Object.entries(agents)) {
      swarm.defineBuiltin(name, async () => ({ answer: a.answer, evidence: [{ kind: 'report', uri: a.uri, digest }] }));
      builtinAgent(dir, name, name);
      await swarm.registerAgent(join(dir, 'agents', name));
    }
    const w = swarm.worker({ pollMs: 50 });
    cleanups.push(() => w.stop(2000));

    const { task_id: taskId } = await swarm.submitTask({
      task_type: 'add',
      inputs: {},
      proposers: Object.keys(agents).map((agent) => ({ agent })),
      verification: { policy: 'vp.schema_only.v1' },
      output_schema: { type: 'object', required: ['answer'], properties: { answer: { type: 'number' } } },
      voting: { voters: [{ id: 'v1' }], quorum: 1, reveal_deadline_ms: 5000 },
    });
    const d = await until(async () => {
      const x = await swarm.taskDecision(taskId);
      return ['finalized', 'failed', 'expired'].includes(x.status) ? x : undefined;
    }, 40_000, 'the task settled');
    expect(d.status).toBe('finalized');
    expect(d.decision?.output).toEqual({ answer: 4 });
    expect(hits.sort()).toEqual(['/good', '/missing', '/tampered']);

    const view = await swarm.getTask(taskId);
    const hashOf = (answer: number) => view?.candidates.find((c) => (c.output as { answer: number }).answer === answer)?.candidate_hash ?? '';
    const events = (await swarm.events(d.run_id as string)).filter((e) => (e.data as { task_id?: string }).task_id === taskId);
    const added = events.filter((e) => e.type === 'EVIDENCE_ADDED');
    expect(added).toHaveLength(4);
    const available = new Map(events.filter((e) => e.type === 'EVIDENCE_AVAILABLE').map((e) => [(e.data as { candidate_hash: string }).candidate_hash, e.data as { available: boolean; reason_code?: number; uri: string; digest: string }]));
    expect(available.size).toBe(4);
    expect(available.get(hashOf(4))).toMatchObject({ available: true, uri: agents.good?.uri, digest });
    expect(available.get(hashOf(4))?.reason_code).toBeUndefined();
    expect(available.get(hashOf(5))).toMatchObject({ available: false, reason_code: ReasonCode.EVIDENCE_DIGEST_MISMATCH, reason: 'EVIDENCE_DIGEST_MISMATCH' });
    expect(available.get(hashOf(6))).toMatchObject({ available: false, reason_code: ReasonCode.EVIDENCE_UNREACHABLE, reason: 'EVIDENCE_UNREACHABLE' });
    expect(available.get(hashOf(7))).toMatchObject({ available: false, reason_code: ReasonCode.EVIDENCE_UNREACHABLE, reason: 'EVIDENCE_UNREACHABLE' });

    const results = new Map(events.filter((e) => e.type === 'VERIFIER_RESULT_SUBMITTED').map((e) => [(e.data as { candidate_hash: string }).candidate_hash, e.data as { status: string; reason_codes: number[] }]));
    expect(results.get(hashOf(4))).toMatchObject({ status: 'passed', reason_codes: [] });
    for (const a of [5, 6, 7]) expect(results.get(hashOf(a))).toMatchObject({ status: 'inconclusive', reason_codes: [ReasonCode.EVIDENCE_UNREACHABLE] });
    // The task's rows say the same.
    const rows = new Map(view?.results.map((r) => [r.candidate_hash, r]));
    expect(rows.get(hashOf(4))?.status).toBe('passed');
    for (const a of [5, 6, 7]) expect(rows.get(hashOf(a))).toMatchObject({ status: 'inconclusive', reason_codes: [ReasonCode.EVIDENCE_UNREACHABLE] });
    expect(view?.candidates.find((c) => c.candidate_hash === hashOf(5))?.evidence).toEqual([{ kind: 'report', uri: agents.tampered?.uri, digest }]);
  }, 60_000);
});
