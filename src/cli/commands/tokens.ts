import type { Command } from 'commander';
import pc from 'picocolors';
import { parseExpiry, parseScopes, SCOPES, tokenJson, type TokenInfo } from '../../auth/tokens.js';
import type { CliContext } from '../context.js';
import { isoSeconds, table } from '../render.js';

/**
 * `swarm tokens create | list | revoke`: API tokens of the HTTP API (`swarm serve`). A new token is
 * printed once, alone on standard output (so `TOKEN=$(swarm tokens create …)` keeps it), and only
 * its hash is stored.
 */
export function registerTokenCommands(program: Command, ctx: CliContext): void {
  const tokens = program.command('tokens').description('API tokens of the HTTP API: create, list, revoke');

  tokens
    .command('create')
    .description('create an API token; it is shown this once (only its hash is stored)')
    .requiredOption('--scope <scopes>', `comma-separated scopes: ${SCOPES.join(', ')} (aliases: run, approve; admin grants all; a write scope does not grant read)`)
    .option('--name <name>', 'a name to tell the token by (who or what uses it)')
    .option('--expires <when>', "a duration (90m, 12h, 30d, 8w), a date (2027-01-31), or 'never'", 'never')
    .option('--json', 'print JSON (the token included)')
    .action(async (o: { scope: string; name?: string; expires: string; json?: boolean }) => {
      const scopes = parseScopes(o.scope);
      const expiresAt = parseExpiry(o.expires, Date.now());
      const swarm = await ctx.swarm();
      const { token, info } = await swarm.createToken({ scopes, expiresAt, ...(o.name !== undefined ? { name: o.name } : {}) });
      if (o.json) return ctx.out(JSON.stringify({ token, ...tokenJson(info) }, null, 2));
      ctx.out(token);
      ctx.err(`token ${info.id} created${info.name ? ` (${info.name})` : ''}: scopes ${info.scopes.join(', ')}; ${info.expires_at === null ? 'never expires' : `expires ${isoSeconds(info.expires_at)}`}`);
      ctx.err(pc.yellow('This is the only time the token is shown: Swarm stores only its hash. Keep it now (send it as Authorization: Bearer <token>).'));
    });

  tokens
    .command('list')
    .description('API tokens: id, name, scopes, dates, status (never the token)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      const list = await swarm.listTokens();
      if (o.json) return ctx.out(JSON.stringify(list.map(tokenJson), null, 2));
      if (list.length === 0) return ctx.out("no API tokens (the API is open on a loopback address); create one with 'swarm tokens create --scope …'");
      ctx.out(
        table(
          ['ID', 'NAME', 'SCOPES', 'CREATED', 'EXPIRES', 'LAST USED', 'STATUS'],
          list.map((t) => [t.id, t.name || '-', t.scopes.join(','), isoSeconds(t.created_at), t.expires_at === null ? 'never' : isoSeconds(t.expires_at), t.last_used_at === null ? '-' : isoSeconds(t.last_used_at), statusText(t)]),
        ),
      );
    });

  tokens
    .command('revoke <id>')
    .description('revoke an API token (running servers refuse it within 5 s; it stays listed as revoked)')
    .action(async (id: string) => {
      const swarm = await ctx.swarm();
      const { info, already } = await swarm.revokeToken(id);
      ctx.out(already ? `token ${info.id} was already revoked (${isoSeconds(info.revoked_at ?? 0)})` : `token ${info.id} revoked; running servers refuse it within 5 seconds`);
    });
}

function statusText(t: TokenInfo): string {
  return t.status === 'revoked' ? `revoked ${isoSeconds(t.revoked_at ?? 0)}` : t.status;
}


