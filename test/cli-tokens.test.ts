/**
 * `swarm tokens create | list | revoke` through the real CLI on a real SQLite file: the token shown
 * once (alone on stdout), never stored (every file of the sandbox searched for its secret), listed
 * without it, revoked; bad scopes, expiries and ids refused with one line and exit 2.
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { filesContaining } from './helpers/files.js';
import { cleanupSandboxes, makeSandbox, show } from './helpers/cli.js';

afterAll(() => cleanupSandboxes());

type Json = Record<string, unknown>;

describe('swarm tokens', () => {
  it('create shows the token once and stores only its hash; list never shows it; revoke marks it revoked', async () => {
    const s = makeSandbox();
    const empty = await s.run(['tokens', 'list']);
    expect(empty.code, show(empty)).toBe(0);
    expect(empty.stdout).toContain('no API tokens');

    const created = await s.run(['tokens', 'create', '--scope', 'read, approve', '--name', 'ops', '--expires', '12h']);
    expect(created.code, show(created)).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^swarm_[0-9a-f]{12}_[0-9a-f]{64}$/);
    expect(created.stderr).toMatch(/token [0-9a-f]{12} created \(ops\): scopes read, approvals:write; expires \d{4}-/);
    expect(created.stderr).toContain('This is the only time the token is shown: Swarm stores only its hash.');
    const asJson = await s.json<Json>(['tokens', 'create', '--scope', 'admin', '--json']);
    expect(asJson).toMatchObject({ token: expect.stringMatching(/^swarm_/) as unknown, scopes: ['admin'], status: 'active', expires_at: null });

    const [, id, secret] = token.split('_') as [string, string, string];
    const list = await s.run(['tokens', 'list']);
    expect(list.code, show(list)).toBe(0);
    expect(list.stdout).toMatch(/ID\s+NAME\s+SCOPES\s+CREATED\s+EXPIRES\s+LAST USED\s+STATUS/);
    expect(list.stdout).toMatch(new RegExp(`${id}\\s+ops\\s+read,approvals:write\\s+\\S+\\s+\\S+\\s+-\\s+active`));
    const listed = await s.json<Json[]>(['tokens', 'list', '--json']);
    expect(listed.map((t) => t.id)).toEqual([id, (asJson.token as string).split('_')[1]]);
    // Not in any file Swarm wrote (the database, its WAL, the key file), nor in any listing.
    const search = filesContaining(s.root, [secret, (asJson.token as string).split('_')[2] ?? '']);
    expect(search.files).toBeGreaterThan(0);
    expect(search.hits).toEqual([]);
    expect(list.stdout + JSON.stringify(listed)).not.toContain(secret);

    const revoked = await s.run(['tokens', 'revoke', id]);
    expect(revoked.code, show(revoked)).toBe(0);
    expect(revoked.stdout).toContain(`token ${id} revoked`);
    const again = await s.run(['tokens', 'revoke', id]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`token ${id} was already revoked`);
    expect((await s.json<Json[]>(['tokens', 'list', '--json']))[0]).toMatchObject({ id, status: 'revoked', revoked_at: expect.any(String) as unknown });
  });

  it('bad scopes, expiries and ids: one line, exit 2, nothing written', async () => {
    const s = makeSandbox();
    for (const [args, message] of [
      [['tokens', 'create', '--scope', 'read,writ'], "swarm: unknown scope 'writ'"],
      [['tokens', 'create', '--scope', 'read', '--expires', 'tomorrow'], "swarm: --expires must be a duration like 90m, 12h, 30d or 8w, a date like 2027-01-31, or 'never'; not 'tomorrow'"],
      [['tokens', 'create', '--scope', 'read', '--expires', '2001-01-01'], 'swarm: --expires 2001-01-01 is not in the future'],
      [['tokens', 'create'], "required option '--scope <scopes>' not specified"],
      [['tokens', 'revoke', 'abcdefabcdef'], "swarm: no token with id abcdefabcdef; see 'swarm tokens list'"],
      [['tokens', 'revoke', 'swarm_x'], "swarm: 'swarm_x' is not a token id"],
    ] as const) {
      const r = await s.run([...args]);
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(message);
    }
    expect((await s.json<Json[]>(['tokens', 'list', '--json'])).length).toBe(0);
  });
});
