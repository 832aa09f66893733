/**
 * `swarm doctor`'s sandbox checks (bubblewrap, and net_cap end to end: no network, the bridge, the
 * proxy) and signing-key checks (none yet: a warning; the master key opens the `runs` key; a key
 * sealed under another master key: a failure), through the library the CLI calls.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/config.js';
import { runDoctor, type DoctorReport } from '../src/observability/doctor.js';
import { probeNetCap } from '../src/sandbox/net-probe.js';
import { probeBubblewrap } from '../src/sandbox/sandbox.js';
import { Swarm } from '../src/swarm.js';
import { removeProject, tempProject } from './helpers/project.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) removeProject(d);
});

async function doctorOf(dir: string, masterKeyText?: string): Promise<(id: string) => DoctorReport['checks'][number]> {
  const config = resolveConfig({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') } });
  const report = await runDoctor({ config, nodeRange: '>=20', ...(masterKeyText ? { masterKeyText } : {}) });
  return (id) => report.checks.find((c) => c.id === id) as DoctorReport['checks'][number];
}

describe('swarm doctor: sandbox and keys', () => {
  it.skipIf(!probeBubblewrap().ok)('net_cap works end to end here: allowed 200, other 403, raw socket fails', async () => {
    const r = await probeNetCap();
    expect(r).toMatchObject({ ok: true });
  }, 30_000);

  it('sandbox, net-sandbox and signing keys: none yet is a warning; the runs key opens; another master key fails', async () => {
    const dir = tempProject('name: doc\nsandbox: bwrap\n');
    dirs.push(dir);
    const key = 'c3'.repeat(32);
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), SWARM_MASTER_KEY: key } });
    try {
      let by = await doctorOf(dir, key);
      if (probeBubblewrap().ok) {
        expect(by('sandbox')).toMatchObject({ status: 'ok', detail: expect.stringContaining('network namespaces') as unknown });
        expect(by('net-sandbox')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^sandboxed agents have no network; net: capabilities pass through the policy proxy and bridge, others are refused \(probe \d+ ms\)$/) as unknown });
      } else {
        expect(by('sandbox').status).toBe('fail');
        expect(by('net-sandbox').status).toBe('warn');
      }
      expect(by('signing-keys')).toMatchObject({ status: 'warn', hint: "create it now: 'swarm keys create runs'" });
      await swarm.signingKeys.create('runs');
      await swarm.signingKeys.create('other');
      by = await doctorOf(dir, key);
      expect(by('signing-keys')).toMatchObject({ status: 'ok', detail: "all 2 signing key(s) open with the master key; 'runs' among them" });
      // An age key (it decrypts bundles) is counted as one, and opened as one.
      await swarm.signingKeys.createAge('bundles');
      by = await doctorOf(dir, key);
      expect(by('signing-keys')).toMatchObject({ status: 'ok', detail: "all 2 signing key(s) and 1 age key(s) open with the master key; 'runs' among them" });
      // The store's key check passes only for its own master key: with another, the keys are not opened.
      by = await doctorOf(dir, 'd4'.repeat(32));
      expect(by('master-key').status).toBe('fail');
      expect(by('signing-keys')).toMatchObject({ status: 'warn', detail: '3 key(s), not opened: no usable master key' });
      // A key that does not open (its row sealed for another key's name) fails the check, named.
      const db = new Database(join(dir, '.swarm', 'swarm.db'));
      try {
        db.prepare("UPDATE signing_keys SET private_key_enc = (SELECT private_key_enc FROM signing_keys WHERE name = 'runs') WHERE name = 'other'").run();
      } finally {
        db.close();
      }
      by = await doctorOf(dir, key);
      expect(by('signing-keys').status).toBe('fail');
      expect(by('signing-keys').detail).toMatch(/^1 of 3 key\(s\) cannot be opened with the master key: other \(/);
    } finally {
      await swarm.close();
    }
  }, 40_000);
});
