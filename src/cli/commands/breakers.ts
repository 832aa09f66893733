import type { Command } from 'commander';
import { listBreakerViews, resetBreaker } from '../../guardrails/breaker-admin.js';
import type { CliContext } from '../context.js';
import { table } from '../render.js';

/**
 * `swarm breakers list | reset <key>`: the circuit breakers shared by the deployment's workers
 * (docs/guardrails.md). A breaker not listed is closed.
 *
 * @example
 *   swarm breakers reset model:openai/gpt-4o-mini
 */
export function registerBreakerCommands(program: Command, ctx: CliContext): void {
  const breakers = program.command('breakers').description('circuit breakers of models, tools, MCP servers and HTTP hosts: list, reset');

  breakers
    .command('list')
    .description('breakers with state: key, state, failures in the window (of an open one: those that opened it), when an open one probes')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      const list = await listBreakerViews(swarm.store, swarm.config.guardrails.breakers);
      if (o.json) return ctx.out(JSON.stringify(list, null, 2));
      if (list.length === 0) return ctx.out('no circuit breaker has state: every breaker is closed');
      ctx.out(table(['KEY', 'STATE', 'FAILURES', 'OPENED', 'PROBE AT', 'PROBES'], list.map((b) => [b.key, b.state, String(b.failures), b.opened_at ?? '-', b.probe_at ?? '-', String(b.probes)])));
    });

  breakers
    .command('reset <key>')
    .description('close a breaker now (model:<provider/model>, tool:<name>, mcp:<server>, http_host:<host>); workers see it within 250 ms')
    .action(async (key: string) => {
      const swarm = await ctx.swarm();
      const was = await resetBreaker(swarm.store, key, swarm.config.guardrails.breakers);
      ctx.out(`breaker ${was.key} reset (it was ${was.state.replace('_', '-')}); it is closed`);
    });
}
