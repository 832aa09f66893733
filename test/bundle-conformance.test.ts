/**
 * Conformance of exported bundles, on SQLite and PostgreSQL: a run with an llm step (scripted model,
 * a tool call) exported twice, and again after the store is closed and opened anew, gives the same
 * bytes; node.json, result.json and certificate.json validate against the contract schemas (the
 * shared contract directory when present, else the copies Swarm ships); the bundle verifies offline,
 * pinned to the store's `runs` key; an unfinished run and a run whose keyed chain was altered are
 * refused.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleDigestOf, exportRun } from '../src/bundles/export.js';
import { readBundle } from '../src/bundles/read.js';
import { verifyBundle } from '../src/bundles/verify.js';
import { isSwarmError } from '../src/core/errors.js';
import { bundleProject, openBundleSwarm, runRelay } from './helpers/bundle-fixtures.js';
import { pgTestServer, stopPgTestServer, type PgTestServer } from './helpers/pg.js';
import { removeProject, ROOT } from './helpers/project.js';

let pgServer: PgTestServer;
beforeAll(async () => {
  pgServer = await pgTestServer();
}, 120_000);
afterAll(async () => {
  await stopPgTestServer();
});

/** The contract schemas: the shared contract directory if this checkout sits beside it, else Swarm's copies. */
function schemaDirs(): string[] {
  const shipped = join(ROOT, 'src', 'bundles', 'schemas');
  const shared = [join(ROOT, '..', 'shared', 'contracts', 'agent_swarm'), join(ROOT, '..', '..', 'shared', 'contracts', 'agent_swarm')].filter((d) => existsSync(join(d, 'node.schema.json')));
  return [shipped, ...shared];
}

const backends: Array<[string, () => Promise<string | undefined>]> = [
  ['sqlite', () => Promise.resolve(undefined)],
  ['postgres', () => pgServer.createDatabase()],
];

describe.each(backends)('bundles on %s', (kind, database) => {
  it('the same bytes on every export and after the store is reopened; schemas; offline verify', async () => {
    const url = await database();
    const dir = bundleProject();
    let swarm = await openBundleSwarm(dir, url);
    try {
      expect(swarm.store.kind).toBe(kind);
      const id = await runRelay(swarm, dir);
      const first = await exportRun(swarm, id);
      const second = await exportRun(swarm, id);
      expect(second.bytes.equals(first.bytes)).toBe(true);
      expect(await bundleDigestOf(swarm, id)).toBe(first.bundle_sha256);
      await swarm.close();
      swarm = await openBundleSwarm(dir, url);
      const third = await exportRun(swarm, id);
      expect(third.bytes.equals(first.bytes)).toBe(true);
      expect(third.file_sha256).toBe(first.file_sha256);

      const b = await readBundle(first.bytes);
      expect(b.entries.map((e) => e.path)).toEqual(['agents.json', 'events.jsonl', 'manifest.json', 'node.json', 'run.json', 'steps/a.json', 'steps/b.json', 'steps/c.json', 'transcripts/b.jsonl', 'trigger.json', 'workflow.json', 'result.json', 'certificate.json']);
      const transcript = b.text('transcripts/b.jsonl').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; name?: string });
      expect(transcript.map((l) => l.kind)).toEqual(['session', 'message', 'message', 'message', 'message', 'tool_call']);
      for (const d of schemaDirs()) {
        const ajv = new Ajv2020({ strict: false });
        for (const [path, schema] of [['node.json', 'node'], ['result.json', 'result'], ['certificate.json', 'certificate']] as const) {
          const validate = ajv.compile(JSON.parse(readFileSync(join(d, `${schema}.schema.json`), 'utf8')) as object);
          expect(validate(b.json(path)), `${path} against ${d}: ${JSON.stringify(validate.errors)}`).toBe(true);
        }
      }
      const cert = b.json<{ runtime: { runner_class: string }; parent_state: { state_id: string } }>('certificate.json');
      expect(cert.runtime.runner_class).toBe(`swarm-local/${kind}`);
      expect(cert.parent_state.state_id).toBe('genesis');
      const publicKey = await swarm.signingKeys.exportPublic('runs');
      const report = await verifyBundle(first.bytes, { publicKey });
      expect(report.ok, report.problem?.message).toBe(true);
      expect(report.bundle_sha256).toBe(first.bundle_sha256);
      expect(report.certificate_sha256).toBe(first.certificate_sha256);

      // Another key signs another certificate over the same state.
      const other = await exportRun(swarm, id, { keyName: 'team' });
      expect(other.bundle_sha256).toBe(first.bundle_sha256);
      expect(other.certificate_sha256).not.toBe(first.certificate_sha256);
      expect((await verifyBundle(other.bytes, { publicKey })).problem?.field).toBe('signature.public_key');
    } finally {
      await swarm.close();
      removeProject(dir);
      if (url) await pgServer.dropDatabase(url);
    }
  }, 90_000);

  it('refuses an unfinished run (exit 2) and a run whose keyed chain does not verify (exit 3)', async () => {
    const url = await database();
    const dir = bundleProject();
    const swarm = await openBundleSwarm(dir, url);
    try {
      const id = await runRelay(swarm, dir);
      const queued = await swarm.startRun('relay', { message: 'later' });
      const refusal = await exportRun(swarm, queued).catch((e: unknown) => e);
      expect(isSwarmError(refusal) && [refusal.code, refusal.exitCode]).toEqual(['RUN_NOT_FINISHED', 2]);
      // Alter an event's data in the store, as anyone who can write the database could.
      if (swarm.store.kind === 'sqlite') {
        const { default: Database } = await import('better-sqlite3');
        const db = new Database(join(dir, '.swarm', 'swarm.db'));
        db.prepare(`UPDATE events SET data = '{"forged":true}' WHERE run_id = ? AND seq = 2`).run(id);
        db.close();
      } else {
        await pgServer.query(url as string, `UPDATE events SET data = '{"forged":true}' WHERE run_id = $1 AND seq = 2`, [id]);
      }
      const broken = await exportRun(swarm, id).catch((e: unknown) => e);
      expect(isSwarmError(broken) && [broken.code, broken.exitCode]).toEqual(['VERIFICATION_FAILED', 3]);
    } finally {
      await swarm.close();
      removeProject(dir);
      if (url) await pgServer.dropDatabase(url);
    }
  }, 90_000);
});
