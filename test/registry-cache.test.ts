/**
 * The registry generation and the caches read under it (src/engine/registry-cache.ts), on SQLite and
 * PostgreSQL: every registry write bumps the generation, and a Swarm that cached a workflow, its
 * plan or a webhook trigger sees what another Swarm (another connection), or another process on the
 * same SQLite file, registered, deleted, enabled or disabled, at its next run.
 */
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Swarm } from '../src/swarm.js';
import { resolveWebhookScheme } from '../src/triggers/webhook-scheme.js';
import { signWebhook } from '../src/triggers/webhook-sign.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { expectRejects } from './helpers/store-fixtures.js';
import { builtinAgent, removeProject, runCli, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';

afterAll(() => stopPgTestServer());

/** The code of the error a promise rejects with. */
const codeOf = async (p: Promise<unknown>): Promise<string | undefined> => ((await expectRejects(p)) as { code?: string }).code;

const WF = (version: string, agent = 'noop@^1'): string => `name: wf\nversion: ${version}\nsteps:\n  - id: only\n    agent: ${agent}\n`;
const SIGNED = (path: string, version = '1.0.0'): string =>
  `name: signed\nversion: ${version}\ntrigger:\n  type: webhook\n  path: ${path}\n  scheme: standard\n  secret: \${secrets.SIGNED_HOOK}\nsteps:\n  - id: only\n    agent: noop@^1\n`;
/** Stored secrets need a master key; both Swarms and the CLI share this one. */
const MASTER_KEY = 'ab'.repeat(32);
/** Standard Webhooks secrets (whsec_ and 32 bytes in base64). */
const KEY_1 = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
const KEY_2 = `whsec_${Buffer.alloc(32, 2).toString('base64')}`;
const STANDARD = resolveWebhookScheme('standard');
const BODY = JSON.stringify({ order: 7 });
/** A delivery of BODY signed with `secret` (a fresh delivery id each time). */
const signed = (secret: string): { headers: Record<string, string>; body: Uint8Array } => ({ headers: signWebhook(STANDARD, secret, BODY), body: new TextEncoder().encode(BODY) });
const HOOK = `name: hooked\nversion: 1.0.0\ntrigger:\n  type: webhook\n  path: late\n  auth: none\nsteps:\n  - id: only\n    agent: noop@^1\n`;

interface Pair {
  dir: string;
  a: Swarm;
  b: Swarm;
  /** Run SQL on the store directly (not through Swarm). */
  sql: (text: string) => Promise<void>;
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`registry generation and caches: ${kind}`, () => {
    const opened: Array<{ dir: string; swarms: Swarm[]; db?: string }> = [];
    afterEach(async () => {
      for (const o of opened.splice(0)) {
        for (const s of o.swarms) await s.close();
        if (o.db) await (await pgTestServer()).dropDatabase(o.db);
        removeProject(o.dir);
      }
    });

    /** Two Swarms on one store (two connections), the noop agent 1.0.0 and workflow wf 1.0.0 registered by `a`. */
    async function pair(): Promise<Pair> {
      const dir = tempProject();
      const db = kind === 'postgres' ? await (await pgTestServer()).createDatabase() : undefined;
      const env = { SWARM_HOME: join(dir, '.swarm'), SWARM_MASTER_KEY: MASTER_KEY, ...(db ? { SWARM_DATABASE_URL: db } : {}) };
      const a = await Swarm.open({ cwd: dir, env });
      const b = await Swarm.open({ cwd: dir, env });
      opened.push({ dir, swarms: [a, b], ...(db ? { db } : {}) });
      await a.registerAgent(builtinAgent(dir, 'noop', 'noop'));
      await a.registerWorkflow(writeWorkflow(dir, 'wf', WF('1.0.0')));
      const sql = async (text: string): Promise<void> => {
        if (db) await (await pgTestServer()).query(db, text);
        else {
          const raw = new Database(a.store.location);
          raw.exec(text);
          raw.close();
        }
      };
      return { dir, a, b, sql };
    }

    const agentVersionOf = async (s: Swarm, runId: string): Promise<string | undefined> => (await s.getRun(runId)).steps[0]?.agent_version;

    it('every registry write bumps the generation in its transaction (seen by the other connection); a no-op does not', async () => {
      const { dir, a, b } = await pair();
      const gen = (): Promise<string> => b.store.registryGeneration();
      const g0 = await gen();
      expect(await a.store.registryGeneration()).toBe(g0);
      await a.registerWorkflow(writeWorkflow(dir, 'wf', WF('1.0.0')));
      await a.registerAgent(join(dir, 'agents', 'noop'));
      const g1 = await gen();
      expect(g1, 'registering the same content again').toBe(g0);
      await a.registerAgent(writeAgentVersion(dir, '1.1.0'));
      const g2 = await gen();
      expect(g2, 'a new agent version').not.toBe(g1);
      await a.setWorkflowEnabled('wf', false);
      const g3 = await gen();
      expect(g3, 'disabling a workflow').not.toBe(g2);
      expect(await a.store.setWorkflowEnabled('nope', false)).toBe(0);
      expect(await gen(), 'disabling no workflow').toBe(g3);
      expect(await a.store.deleteAgent('noop', '9.9.9')).toBe(false);
      expect(await gen(), 'deleting nothing').toBe(g3);
      expect(await a.store.deleteAgent('noop', '1.1.0')).toBe(true);
      expect(await gen(), 'deleting an agent version').not.toBe(g3);
    });

    it('a generation row removed by hand is made again by the next registry write (the triggers of the store upsert it)', async () => {
      const { dir, a, b, sql } = await pair();
      await sql("DELETE FROM swarm_meta WHERE key = 'registry_generation'");
      expect(await b.store.registryGeneration()).toBe('0');
      await a.registerAgent(writeAgentVersion(dir, '1.2.0'));
      expect(await b.store.registryGeneration()).not.toBe('0');
    });

    it("a run started by one Swarm uses what the other registered, deleted, disabled or enabled since its last run", async () => {
      const { dir, a, b } = await pair();
      expect(await agentVersionOf(a, await a.startRun('wf')), 'the first run plans against 1.0.0').toBe('1.0.0');
      expect(await agentVersionOf(a, await a.startRun('wf')), 'the cached plan').toBe('1.0.0');

      await b.registerAgent(writeAgentVersion(dir, '1.1.0'));
      expect(await agentVersionOf(a, await a.startRun('wf')), 'an agent version registered by the other').toBe('1.1.0');

      await b.store.deleteAgent('noop', '1.1.0');
      expect(await agentVersionOf(a, await a.startRun('wf')), 'the version deleted by the other').toBe('1.0.0');

      await b.setWorkflowEnabled('wf', false);
      expect(await codeOf(a.startRun('wf')), 'disabled by the other').toBe('WORKFLOW_DISABLED');
      await b.setWorkflowEnabled('wf', true);
      const again = await a.startRun('wf');

      await b.registerWorkflow(writeWorkflow(join(dir, 'v2'), 'wf', WF('2.0.0', 'noop@1.0.0')));
      const v2 = await a.getRun(await a.startRun('wf'));
      expect(v2.run.workflow_version, 'a workflow version registered by the other').toBe('2.0.0');
      expect((await a.getRun(again)).run.workflow_version).toBe('1.0.0');
      expect((await a.getRun(await a.startRun('wf@^1'))).run.workflow_version, 'a range still picks within it').toBe('1.0.0');
    });

    it('a webhook path unknown to one Swarm is served once the other registers it; disabling it is seen at the next delivery', async () => {
      const { dir, a, b } = await pair();
      const deliver = (): ReturnType<Swarm['deliverWebhook']> => a.deliverWebhook('late', { headers: {}, body: new TextEncoder().encode('{}') });
      expect(await codeOf(deliver())).toBe('WEBHOOK_NOT_FOUND');
      expect(await codeOf(deliver()), 'the cached miss').toBe('WEBHOOK_NOT_FOUND');
      await b.registerWorkflow(writeWorkflow(dir, 'hooked', HOOK));
      const out = await deliver();
      expect(out).toMatchObject({ created: true, workflow: 'hooked' });
      expect((await a.getRun(out.runId)).run.trigger_type).toBe('webhook');
      await b.setWorkflowEnabled('hooked', false);
      expect(await codeOf(deliver())).toBe('WEBHOOK_DISABLED');
    });

    const runsIn = async (s: Swarm): Promise<number> => Object.values(await s.store.runCounts()).reduce((n, c) => n + c, 0);

    it('a signed webhook verifies with the secret the other Swarm set last: a delivery signed with the replaced one is refused and writes nothing', async () => {
      const { dir, a, b } = await pair();
      await b.setSecret('SIGNED_HOOK', KEY_1, { workflow: 'signed' });
      await a.registerWorkflow(writeWorkflow(dir, 'signed', SIGNED('signed')));
      for (let i = 0; i < 3; i++) expect(await a.deliverWebhook('signed', signed(KEY_1))).toMatchObject({ created: true, workflow: 'signed' });
      const before = await runsIn(a);

      await b.setSecret('SIGNED_HOOK', KEY_2, { workflow: 'signed' });
      expect(await codeOf(a.deliverWebhook('signed', signed(KEY_1))), 'signed with the replaced secret').toBe('WEBHOOK_SIGNATURE_MISMATCH');
      expect(await runsIn(a), 'the refused delivery wrote no run').toBe(before);
      expect(await a.deliverWebhook('signed', signed(KEY_2))).toMatchObject({ created: true });

      await b.deleteSecret('SIGNED_HOOK', { workflow: 'signed' });
      expect(await codeOf(a.deliverWebhook('signed', signed(KEY_2))), 'the secret deleted by the other').toBe('WEBHOOK_SECRET_MISSING');
      expect(await runsIn(a)).toBe(before + 1);
    });

    it('a webhook moved to another path by the other Swarm: the old path is not found at the next delivery, the new one starts its runs', async () => {
      const { dir, a, b } = await pair();
      await a.setSecret('SIGNED_HOOK', KEY_1);
      await a.registerWorkflow(writeWorkflow(dir, 'signed', SIGNED('before')));
      expect(await a.deliverWebhook('before', signed(KEY_1))).toMatchObject({ created: true });
      expect(await a.deliverWebhook('before', signed(KEY_1))).toMatchObject({ created: true });
      await b.registerWorkflow(writeWorkflow(join(dir, 'v2'), 'signed', SIGNED('after', '2.0.0')));
      expect(await codeOf(a.deliverWebhook('before', signed(KEY_1))), 'the path given up').toBe('WEBHOOK_NOT_FOUND');
      const moved = await a.deliverWebhook('after', signed(KEY_1));
      expect(moved).toMatchObject({ created: true });
      expect((await a.getRun(moved.runId)).run.workflow_version).toBe('2.0.0');
    });

    if (kind === 'sqlite') {
      it("deliveries after the first read neither generation on a turn of their own; one that moved meanwhile is caught in the run's transaction and the delivery received again", async () => {
        const { dir, a, sql } = await pair();
        await a.setSecret('SIGNED_HOOK', KEY_1);
        await a.registerWorkflow(writeWorkflow(dir, 'signed', SIGNED('signed')));
        let reads = 0;
        for (const name of ['registryGeneration', 'secretsGeneration'] as const) {
          const read = a.store[name].bind(a.store);
          a.store[name] = () => {
            reads++;
            return read();
          };
        }
        await a.deliverWebhook('signed', signed(KEY_1));
        expect(reads, 'the first delivery reads both').toBe(2);
        for (let i = 0; i < 4; i++) await a.deliverWebhook('signed', signed(KEY_1));
        expect(reads, 'the next ones: none').toBe(2);

        for (const key of ['secrets_generation', 'registry_generation']) {
          // Another process's write (a secret or a registration that leaves this webhook as it was).
          await sql(`UPDATE swarm_meta SET value = value || '.' WHERE key = '${key}'`);
          const before = await runsIn(a);
          const out = await a.deliverWebhook('signed', signed(KEY_1));
          expect(out.created, key).toBe(true);
          expect(await runsIn(a), `${key}: one run`).toBe(before + 1);
          expect((await a.getRun(out.runId)).run.trigger_type).toBe('webhook');
        }
        expect(reads, 'each stale guess received again, from fresh reads').toBe(6);
      });

      it('unsigned deliveries without an id, many at once while generations move: one run each', async () => {
        const { dir, a, sql } = await pair();
        await a.registerWorkflow(writeWorkflow(dir, 'hooked', HOOK));
        const deliver = (): ReturnType<Swarm['deliverWebhook']> => a.deliverWebhook('late', { headers: {}, body: new TextEncoder().encode('{}') });
        await deliver();
        const before = await runsIn(a);
        const outs = await Promise.all(
          Array.from({ length: 40 }, async (_, i) => {
            if (i % 10 === 5) await sql(`UPDATE swarm_meta SET value = value || '.' WHERE key = '${i % 20 === 5 ? 'registry_generation' : 'secrets_generation'}'`);
            return deliver();
          }),
        );
        expect(new Set(outs.map((o) => o.runId)).size).toBe(40);
        expect(outs.every((o) => o.created)).toBe(true);
        expect(await runsIn(a)).toBe(before + 40);
      });

      it('a secret this Swarm could not decrypt, then set again by the other, verifies the next delivery', async () => {
        const { dir, a, b, sql } = await pair();
        await a.setSecret('SIGNED_HOOK', KEY_1);
        await a.registerWorkflow(writeWorkflow(dir, 'signed', SIGNED('signed')));
        expect(await a.deliverWebhook('signed', signed(KEY_1))).toMatchObject({ created: true });
        // Another process's write that leaves a row nobody can decrypt (as a copy from elsewhere would).
        await sql("UPDATE secrets SET encrypted_value = zeroblob(length(encrypted_value)), updated_at = updated_at + 1 WHERE name = 'SIGNED_HOOK'");
        await sql("UPDATE swarm_meta SET value = value || '.' WHERE key = 'secrets_generation'");
        expect(await codeOf(a.deliverWebhook('signed', signed(KEY_1)))).toBe('SECRET_UNREADABLE');
        expect(await codeOf(a.deliverWebhook('signed', signed(KEY_1))), 'while it stays so').toBe('SECRET_UNREADABLE');
        await b.setSecret('SIGNED_HOOK', KEY_1);
        expect(await a.deliverWebhook('signed', signed(KEY_1)), 'set again by the other').toMatchObject({ created: true });
      });

      it('another process on the same file: its registration and its disable are seen by the next run', async () => {
        const { dir, a } = await pair();
        const env = { SWARM_HOME: join(dir, '.swarm'), SWARM_MASTER_KEY: MASTER_KEY };
        expect(await agentVersionOf(a, await a.startRun('wf'))).toBe('1.0.0');
        const reg = await runCli(['agent', 'register', writeAgentVersion(dir, '1.1.0')], dir, env);
        expect(reg.code, reg.stderr).toBe(0);
        expect(await agentVersionOf(a, await a.startRun('wf'))).toBe('1.1.0');
        const off = await runCli(['workflow', 'disable', 'wf'], dir, env);
        expect(off.code, off.stderr).toBe(0);
        expect(await codeOf(a.startRun('wf'))).toBe('WORKFLOW_DISABLED');
      });
    }
  });
}

/** The noop built-in as agent `noop` at another version, in a package directory of its own. */
function writeAgentVersion(dir: string, version: string): string {
  return writeAgent(join(dir, `v${version}`), 'noop', `name: noop\nversion: ${version}\nruntime:\n  type: builtin\n  entry: noop\n`);
}
