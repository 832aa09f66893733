/**
 * Where bubblewrap cannot be found (PATH without bwrap): registering an agent that asks for it
 * warns, running it fails the step with SANDBOX_UNAVAILABLE naming the agent (the run exits 4), an
 * agent with `sandbox: none` still runs, and `swarm doctor` says why. Through the built CLI.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { removeProject, runCli, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) removeProject(d);
});

const NO_BWRAP = { PATH: '/nonexistent' };
const AGENT = `const fs = require('node:fs'); fs.writeFileSync(process.argv[3], JSON.stringify({ ok: true }));\n`;

describe('bwrap asked for where it does not exist', () => {
  it('registration warns, the step fails with SANDBOX_UNAVAILABLE (exit 4), sandbox: none still runs, doctor says why', async () => {
    const dir = tempProject('name: nobwrap\nsandbox: auto\n');
    dirs.push(dir);
    writeAgent(dir, 'boxed', 'name: boxed\nversion: 1.0.0\nruntime: {type: node, entry: a.js}\ncapabilities: ["net:127.0.0.1:9"]\n', { 'a.js': AGENT });
    writeAgent(dir, 'open', 'name: open\nversion: 1.0.0\nruntime: {type: node, entry: a.js}\nsandbox: none\n', { 'a.js': AGENT });
    writeWorkflow(dir, 'wb', 'name: wb\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: boxed@1.0.0\n');
    writeWorkflow(dir, 'wo', 'name: wo\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: open@1.0.0\n');
    const reg = await runCli(['agent', 'register', 'agents/boxed'], dir, NO_BWRAP);
    expect(reg.code, reg.stderr).toBe(0);
    expect(reg.stderr).toMatch(/agent 'boxed' declares net: capabilities, enforced only in the bwrap sandbox, but 'bwrap' is not installed .*: its steps fail with SANDBOX_UNAVAILABLE here/);
    for (const args of [['agent', 'register', 'agents/open'], ['workflow', 'register', 'workflows/wb'], ['workflow', 'register', 'workflows/wo']]) {
      expect((await runCli(args, dir, NO_BWRAP)).code).toBe(0);
    }
    const failed = await runCli(['run', 'wb'], dir, NO_BWRAP);
    expect(failed.code, failed.stderr).toBe(4);
    expect(`${failed.stdout}${failed.stderr}`).toMatch(/agent 'boxed' declares net: capabilities \(enforced only inside the bwrap sandbox\), but 'bwrap' is not installed/);
    const ok = await runCli(['run', 'wo'], dir, NO_BWRAP);
    expect(ok.code, ok.stderr).toBe(0);
    const doctor = await runCli(['doctor', '--json'], dir, NO_BWRAP);
    const checks = (JSON.parse(doctor.stdout) as { checks: Array<{ id: string; status: string; detail: string; hint: string }> }).checks;
    expect(checks.find((c) => c.id === 'sandbox')).toMatchObject({ status: 'warn', detail: expect.stringContaining("'bwrap' is not installed") as unknown });
    expect(checks.find((c) => c.id === 'net-sandbox')).toMatchObject({ status: 'warn', detail: 'not checked: bubblewrap does not work here', hint: expect.stringContaining('SANDBOX_UNAVAILABLE') as unknown });
  }, 60_000);
});
