/**
 * examples/branching/run.sh, run for real as its README says: a run and its fork in one project,
 * both exported and verified offline (the fork against its parent), the parent handed to a second
 * project encrypted to its age key, imported there and forked again. Needs the built CLI (dist/).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli.js';

function runScript(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [join(REPO_ROOT, 'examples', 'branching', 'run.sh')], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('examples/branching', () => {
  it('forks, exports, verifies offline with the parent link, hands over encrypted, imports and forks again', async () => {
    const r = await runScript();
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).toBe('');
    const parent = /^run {4}(\S+)$/m.exec(r.stdout)?.[1];
    expect(parent).toBeDefined();
    expect(r.stdout).toContain(`ok: parent.tar verifies (run ${parent})`);
    expect(r.stdout).toMatch(/ok: fork\.tar verifies/);
    expect(r.stdout).toMatch(/signer: +runs \S+ \(pinned\)/);
    expect(r.stdout).toMatch(new RegExp(`parent: +${parent} sha256:[0-9a-f]{64} \\(checked\\)`));
    expect(r.stdout).toContain(`imported run ${parent} (pipeline@1.0.0, completed)`);
    expect(r.stdout).toContain('(decrypted): 3 step(s) copied');
    expect(r.stdout).toContain('fork made in B checks against the parent made in A: true');
    expect(r.stdout).toContain('parent publish: published: reviewed: a draft about tide pools');
    expect(r.stdout).toContain('fork   publish: published: reviewed: a better draft about tide pools');
  }, 120_000);
});
