import type { Command } from 'commander';
import type { Server } from 'node:http';
import { join, resolve } from 'node:path';
import pc from 'picocolors';
import { ExitCode, UserError } from '../../core/errors.js';
import { checkBaseUrl, checkExecutorName, createExecutorClient, ExecutorError } from '../../executors/http/client.js';
import type { ExecutorCapabilities, ExecutorHealth, ExecutorRecord } from '../../executors/http/contract.js';
import { checkSecretName } from '../../secrets/vault.js';
import { parsePort, type CliContext } from '../context.js';
import { formatTime, table } from '../render.js';
import { version } from '../version.js';

/** How long `add` and `check` wait for an executor's answer. */
const PROBE_TIMEOUT_MS = 5_000;
export const DEFAULT_EXECUTOR_PORT = 8787;

/** A base64 raw 32-byte Ed25519 public key, or UserError PUBLIC_KEY_INVALID. */
function checkPublicKey(key: string): string {
  const raw = Buffer.from(key, 'base64');
  if (raw.length !== 32 || raw.toString('base64') !== key) {
    throw new UserError('PUBLIC_KEY_INVALID', `--public-key must be base64 of a raw 32-byte Ed25519 public key (44 characters, like the one /capabilities returns), not '${key}'`, { field: 'public_key' });
  }
  return key;
}

function recordJson(e: ExecutorRecord): Record<string, unknown> {
  return { name: e.name, base_url: e.base_url, token_secret: e.token_secret, public_key: e.public_key, created_at: e.created_at, updated_at: e.updated_at };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * `swarm executors add | list | check | remove` (the registry of remote executors, in the store)
 * and `swarm executor serve` (the reference executor). docs/executors.md.
 *
 * Exit codes: 0 ok; 2 invalid input (a bad name, URL, key or secret name; an unknown executor);
 * 3 `check`: the executor's public key is not the one pinned; 4 `check`: the executor is
 * unreachable, timed out, or answered with an error or a malformed document.
 *
 * @example
 *   swarm executors add rt http://127.0.0.1:8787 --token-secret RT_TOKEN
 *   swarm executors check rt
 */
export function registerExecutorsCommands(program: Command, ctx: CliContext): void {
  const ex = program.command('executors').description('remote executors (the executor HTTP contract): add, list, check, remove');

  ex.command('add <name> <base_url>')
    .description("register (or replace) a remote executor; its public key is pinned from /capabilities when it answers")
    .option('--token-secret <name>', 'a secret holding the bearer token to send (swarm secrets set NAME)')
    .option('--public-key <key>', 'pin this Ed25519 public key (base64) instead of asking /capabilities')
    .action(async (name: string, baseUrl: string, o: { tokenSecret?: string; publicKey?: string }) => {
      checkExecutorName(name);
      const url = checkBaseUrl(baseUrl);
      if (o.tokenSecret !== undefined) checkSecretName(o.tokenSecret);
      let publicKey = o.publicKey !== undefined ? checkPublicKey(o.publicKey) : null;
      const swarm = await ctx.swarm();
      const existing = await swarm.store.getExecutor(name);
      if (publicKey === null) {
        let token: string | undefined;
        try {
          token = o.tokenSecret ? await swarm.secretValue(o.tokenSecret) : undefined;
        } catch {
          token = undefined;
        }
        try {
          const caps = await createExecutorClient({ name, base_url: url }, token ? { token } : {}).capabilities({ timeout_ms: PROBE_TIMEOUT_MS });
          if (caps.public_key) {
            publicKey = caps.public_key;
            ctx.out(`pinned the public key of '${caps.name}' from ${url}/capabilities: ${publicKey}`);
          } else ctx.err(pc.yellow(`warning: ${url}/capabilities names no public key: signed answers from '${name}' cannot be checked (add --public-key to pin one)`));
        } catch (e) {
          const why = e instanceof ExecutorError ? e.message : String(e);
          ctx.err(pc.yellow(`warning: could not read ${url}/capabilities (${why}); registered without a pinned public key: run 'swarm executors add ${name} ${url}' again once it is up, or pass --public-key`));
        }
      }
      const rec = await swarm.store.putExecutor({ name, base_url: url, token_secret: o.tokenSecret ?? null, public_key: publicKey });
      ctx.out(`${pc.green('✔')} executor ${rec.name} ${pc.dim(existing ? 'updated' : 'added')}: ${rec.base_url}${rec.token_secret ? ` (token from secret ${rec.token_secret})` : ''}`);
    });

  ex.command('list')
    .description('registered executors')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      const all = await swarm.store.listExecutors();
      if (o.json) return ctx.out(JSON.stringify(all.map(recordJson), null, 2));
      if (all.length === 0) return ctx.out("no executors registered; add one with 'swarm executors add <name> <base_url>'");
      ctx.out(table(['NAME', 'BASE URL', 'TOKEN SECRET', 'PUBLIC KEY', 'UPDATED'], all.map((e) => [e.name, e.base_url, e.token_secret ?? '', e.public_key ? `${e.public_key.slice(0, 12)}…` : '(none)', formatTime(e.updated_at)])));
    });

  ex.command('check <name>')
    .description('call the executor\'s /health and /capabilities and print them (exit 4 when it cannot be reached)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      const client = await swarm.executorClient(name);
      let health: ExecutorHealth;
      let caps: ExecutorCapabilities;
      try {
        health = await client.health({ timeout_ms: PROBE_TIMEOUT_MS });
        caps = await client.capabilities({ timeout_ms: PROBE_TIMEOUT_MS });
      } catch (e) {
        if (!(e instanceof ExecutorError)) throw e;
        if (o.json) ctx.out(JSON.stringify({ executor: name, base_url: client.record.base_url, ok: false, error: { code: e.code, message: e.message, ...(e.status ? { status: e.status } : {}) } }, null, 2));
        ctx.err(`${pc.red('✖')} ${e.code}: ${e.message}`);
        ctx.exitCode = ExitCode.EXECUTION_FAILED;
        return;
      }
      const pinned = client.record.public_key;
      const keyMatches = pinned === null || caps.public_key === pinned;
      if (o.json) {
        ctx.out(JSON.stringify({ executor: name, base_url: client.record.base_url, ok: keyMatches, health, capabilities: caps, pinned_public_key: pinned }, null, 2));
      } else {
        ctx.out(`executor ${name}: ${client.record.base_url}`);
        ctx.out(`health:        ${health.status}${health.version ? ` (version ${health.version})` : ''}`);
        ctx.out(`name:          ${caps.name} (protocol ${caps.protocol_version})`);
        ctx.out(`task types:    ${caps.task_types.join(', ') || '(none)'}`);
        ctx.out(`policies:      ${caps.policies.join(', ') || '(none)'}`);
        ctx.out(`public key:    ${caps.public_key ?? '(none)'}${pinned === null ? ' (none pinned)' : keyMatches ? ' (the pinned key)' : ''}`);
      }
      if (!keyMatches) {
        ctx.err(`${pc.red('✖')} the executor's public key is not the one pinned when it was added (${pinned}); if it was replaced on purpose, pin the new one: swarm executors add ${name} ${client.record.base_url}`);
        ctx.exitCode = ExitCode.VERIFICATION_FAILED;
      }
    });

  ex.command('remove <name>')
    .description('forget a registered executor (steps and tasks that name it fail until it is added again)')
    .action(async (name: string) => {
      const swarm = await ctx.swarm();
      if (!(await swarm.store.deleteExecutor(name))) {
        const names = (await swarm.store.listExecutors()).map((e) => e.name);
        throw new UserError('EXECUTOR_UNKNOWN', `executor '${name}' is not registered (${names.length ? `registered: ${names.join(', ')}` : 'none is registered'})`, { executor: name });
      }
      ctx.out(`${pc.green('✔')} executor ${name} removed`);
    });

  const one = program.command('executor').description('the reference executor: serve registered agents behind the executor HTTP contract');
  one
    .command('serve')
    .description('serve the executor contract (/health, /capabilities, /execute, /verify) in front of registered agents; SIGTERM/SIGINT drain and stop it')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('-p, --port <n>', 'port to listen on (0: any free port)', String(DEFAULT_EXECUTOR_PORT))
    .option('--agent <name>', 'serve this agent (repeatable; default: every registered process, builtin and llm agent)', collect, [] as string[])
    .option('--state-dir <dir>', 'where its identity and remembered answers live (default: <swarm home>/executor)')
    .option('--name <name>', 'its name in /capabilities', 'swarm-reference')
    .action(async (o: { host: string; port: string; agent: string[]; stateDir?: string; name: string }) => {
      const port = parsePort(o.port, '--port');
      const swarm = await ctx.swarm();
      for (const a of o.agent) {
        const found = await swarm.listAgents(a);
        if (found.length === 0) throw new UserError('AGENT_NOT_FOUND', `--agent ${a}: no agent of that name is registered (swarm agent register …)`, { agent: a });
      }
      const stateDir = resolve(o.stateDir ?? join(swarm.config.home, 'executor'));
      const token = ctx.env.SWARM_EXECUTOR_TOKEN || undefined;
      const { createReferenceExecutor } = await import('../../executors/http/reference-server.js');
      const ref = await createReferenceExecutor({ swarm, stateDir, name: o.name, agents: o.agent, version: version(), ...(token ? { token } : {}), log: (line) => ctx.logger.info(line, {}) });
      const { serve } = await import('@hono/node-server');
      const server = await new Promise<Server>((res, rej) => {
        const s = serve({ fetch: ref.app.fetch, hostname: o.host, port }, () => res(s)) as Server;
        s.once('error', (e: NodeJS.ErrnoException) => rej(new UserError(e.code === 'EADDRINUSE' ? 'PORT_IN_USE' : 'LISTEN_FAILED', `cannot listen on ${o.host}:${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use; choose another with --port' : e.message}`)));
      });
      const address = server.address();
      const actual = typeof address === 'object' && address ? address.port : port;
      const host = o.host.includes(':') ? `[${o.host}]` : o.host;
      ctx.logger.info(
        `swarm executor serve: listening on http://${host}:${actual} (${o.name}; agents: ${o.agent.length ? o.agent.join(', ') : 'every registered one'}; public key ${ref.publicKey}; state ${stateDir}; ${token ? 'bearer token required' : 'no token'}; ${swarm.store.kind} store)`,
        { port: actual, host: o.host, public_key: ref.publicKey },
        { stdout: true },
      );
      await new Promise<void>((done) => {
        const stop = (sig: string): void => {
          process.off('SIGTERM', onTerm);
          process.off('SIGINT', onInt);
          ctx.logger.info(`${sig}: draining (new work is refused with 503; work in flight finishes)`, { signal: sig });
          const closed = new Promise<void>((c) => server.close(() => c()));
          server.closeIdleConnections();
          void Promise.all([ref.drain(), closed]).then(() => {
            ctx.logger.info('swarm executor serve: stopped', {});
            done();
          });
        };
        const onTerm = (): void => stop('SIGTERM');
        const onInt = (): void => stop('SIGINT');
        process.once('SIGTERM', onTerm);
        process.once('SIGINT', onInt);
      });
    });
}
