/**
 * examples/consensus/run.sh, run for real as its README says: two reference executors (child
 * processes on free ports), a consensus task against them and a local agent, its decision and cost.
 * The hasty executor's answer fails verification (confidence below the threshold), so the careful
 * answer must win, with every voter's reveal counted. Needs the built CLI (dist/).
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function runScript(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [join(REPO_ROOT, 'examples', 'consensus', 'run.sh')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('examples/consensus', () => {
  it('finalizes the careful answer against two reference executors started by one command', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const r = await runScript({ PORT_A: String(a), PORT_B: String(b), NO_COLOR: '1' });
    expect(r.stderr + r.stdout).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/executor careful added/);
    expect(r.stdout).toMatch(/executor hasty added/);
    expect(r.stdout).toMatch(/finalized in round 1/);
    // The careful count of the task's text: 16 words, 4 sentences (the hasty one finds 2 sentences, at confidence 0.4).
    expect(r.stdout).toMatch(/answer\s+\{"words":16,"sentences":4,"confidence":0.9\}/);
    const tally = /tally (\{[^}]*\})/.exec(r.stdout);
    expect(tally).not.toBeNull();
    const votes = Object.values(JSON.parse(tally![1]!) as Record<string, number>);
    expect(votes).toEqual([3]);
    expect(r.stdout).toMatch(/^explore\s+\$/m);
  });
});
