import type { Command } from 'commander';
import { parsePort, type CliContext } from '../context.js';
import { quietGrpcLogs, SW4RM_DEFAULT_PORTS, startSw4rm } from '../../sw4rm/server.js';
import { UserError } from '../../core/errors.js';
import { agentJson, deadLetterJson, dlqTarget } from '../../sw4rm/router/dlq.js';
import { SW4RM_TUNABLES, sw4rmTunables } from '../../sw4rm/tunables.js';

interface Sw4rmServeOptions {
  host: string;
  router: string;
  registry: string;
  scheduler: string;
  /** The tunables' flags, by camel-cased name (`--max-attempts` → maxAttempts). */
  [tunable: string]: string | undefined;
}

const kebab = (key: string): string => key.replace(/_/g, '-');
const camel = (key: string): string => key.replace(/_(.)/g, (_, c: string) => c.toUpperCase());

/**
 * `swarm sw4rm serve | dlq …`: the SW4RM message protocol's services on this deployment's store
 * (docs/sw4rm.md).
 *
 * @example
 *   swarm sw4rm serve --router 50051 --registry 50052 --scheduler 50053
 */
export function registerSw4rmCommands(program: Command, ctx: CliContext): void {
  const sw4rm = program.command('sw4rm').description('the SW4RM message protocol: serve the Router, Registry and Scheduler over gRPC; the dead-letter queue');

  const serve = sw4rm
    .command('serve')
    .description('serve the SW4RM Router, Registry and Scheduler services (gRPC) on this store; SIGTERM/SIGINT stop them')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--router <port>', 'Router service port', String(SW4RM_DEFAULT_PORTS.router))
    .option('--registry <port>', 'Registry service port', String(SW4RM_DEFAULT_PORTS.registry))
    .option('--scheduler <port>', 'Scheduler service port', String(SW4RM_DEFAULT_PORTS.scheduler));
  // One flag per tunable (over `sw4rm:` of swarm.yaml): --lease 10s, --max-attempts 3, …
  for (const t of SW4RM_TUNABLES) serve.option(`--${kebab(t.key)} <${t.kind === 'count' ? 'n' : 'duration'}>`, t.what);
  serve.action(async (o: Sw4rmServeOptions) => {
    const ports = { router: parsePort(o.router, '--router'), registry: parsePort(o.registry, '--registry'), scheduler: parsePort(o.scheduler, '--scheduler') };
    const tunables = sw4rmTunables(Object.fromEntries(SW4RM_TUNABLES.map((t) => [t.key, o[camel(t.key)]])), (key) => `--${kebab(key)}`);
    const swarm = await ctx.swarm();
    quietGrpcLogs(ctx.env);
    const server = await startSw4rm(swarm, { host: o.host, ports, ...tunables });
    const p = server.ports;
    ctx.logger.info(`swarm sw4rm serve: router ${o.host}:${p.router}, registry ${o.host}:${p.registry}, scheduler ${o.host}:${p.scheduler} (${swarm.store.kind} store)`, { ...p, host: o.host, store: swarm.store.kind }, { stdout: true });
    await new Promise<void>((resolve) => {
      const stop = (sig: string): void => {
        process.off('SIGTERM', onTerm);
        process.off('SIGINT', onInt);
        ctx.logger.info(`${sig}: stopping the SW4RM services`, { signal: sig });
        void server.close().then(resolve);
      };
      const onTerm = (): void => stop('SIGTERM');
      const onInt = (): void => stop('SIGINT');
      process.once('SIGTERM', onTerm);
      process.once('SIGINT', onInt);
    });
  });

  // ---- swarm sw4rm dlq list | replay | drop (src/sw4rm/router/) ----
  const dlq = sw4rm.command('dlq').description("the router's dead letters: messages that expired, failed permanently or ran out of delivery attempts");
  dlq
    .command('list')
    .description('dead letters by seq')
    .option('--json', 'print a JSON array of dead letters')
    .action(async (o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      const rows = await swarm.store.sw4rmMessages({ state: 'dead' });
      if (o.json) return ctx.out(JSON.stringify(rows.map(deadLetterJson), null, 2));
      if (rows.length === 0) return ctx.out('no dead letters');
      for (const r of rows) {
        const when = new Date(r.updated_at).toISOString().slice(0, 19).replace('T', ' ');
        ctx.out(`${String(r.seq).padStart(8)}  ${when}  ${r.dead_reason ?? ''}  ${r.message_type}  ${r.producer_id} -> ${r.recipient}  ${r.message_id}  attempts ${r.attempts}`);
      }
    });
  for (const verb of ['replay', 'drop'] as const) {
    dlq
      .command(`${verb} [seq]`)
      .description(verb === 'replay' ? 'queue dead letters again (attempts and TTL reset); a running router delivers them' : 'delete dead letters for good')
      .option('--all', 'every dead letter')
      .option('--json', 'print JSON')
      .action(async (seq: string | undefined, o: { all?: boolean; json?: boolean }) => {
        const target = dlqTarget(seq, o.all, verb);
        const swarm = await ctx.swarm();
        const n = verb === 'replay' ? (await swarm.store.sw4rmReplayDead(target, Date.now())).length : await swarm.store.sw4rmDropDead(target);
        if (target !== 'all' && n === 0) throw new UserError('SW4RM_DEAD_LETTER_NOT_FOUND', `no dead letter with seq ${target} (see swarm sw4rm dlq list)`, { seq: target });
        if (o.json) return ctx.out(JSON.stringify({ [verb === 'replay' ? 'replayed' : 'dropped']: n }));
        ctx.out(`${verb === 'replay' ? 'replayed' : 'dropped'} ${n} dead letter${n === 1 ? '' : 's'}`);
      });
  }
  sw4rm
    .command('agents')
    .description('the SW4RM registry: agents, their status (available, unavailable, deregistered) and last heartbeat')
    .option('--json', 'print a JSON array of agents')
    .action(async (o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      const agents = await swarm.store.sw4rmAgents();
      if (o.json) return ctx.out(JSON.stringify(agents.map(agentJson), null, 2));
      if (agents.length === 0) return ctx.out('no agents registered');
      for (const a of agents) {
        const beat = new Date(a.last_heartbeat).toISOString().slice(0, 19).replace('T', ' ');
        ctx.out(`${a.agent_id}  ${a.name}  ${a.status}${a.implicit ? ' (streamed, not registered)' : ''}  ${a.communication_class}  ${a.agent_state}  last heartbeat ${beat}`);
      }
    });
}
