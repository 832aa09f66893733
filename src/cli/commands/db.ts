import type { Command } from 'commander';
import pc from 'picocolors';
import type { CliContext } from '../context.js';

/** `swarm db migrate | status`: the store's schema and contents, for operators and deploy scripts. */
export function registerDbCommands(program: Command, ctx: CliContext): void {
  const db = program.command('db').description('the store: schema migrations and status');

  db.command('migrate')
    .description('bring the store’s schema up to date (every command also does this when it opens the store)')
    .action(async () => {
      // Opening the store migrates it, under a lock, idempotently; a newer schema is refused (exit 2).
      const { store } = await ctx.swarm();
      const version = await store.schemaVersion();
      ctx.out(`${store.kind} store at ${store.location}: schema version ${version} (up to date)`);
    });

  db.command('status')
    .description('backend, location, schema version, runs by status and live workers')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      const { store } = swarm;
      const since = (await store.now()) - Math.max(3000, swarm.config.leaseMs);
      const status = {
        backend: store.kind,
        location: store.location,
        schema_version: await store.schemaVersion(),
        supported_schema_version: store.supportedSchemaVersion,
        durability: swarm.config.durability,
        isolation: swarm.isolation(),
        runs: await store.runCounts(),
        workers: (await store.listWorkers(since)).map((w) => ({ id: w.id, host: w.hostname, pid: w.pid, concurrency: w.concurrency, only_runs: w.scope })),
      };
      if (o.json) return ctx.out(JSON.stringify(status, null, 2));
      ctx.out(`${pc.bold(status.backend)} store at ${status.location}`);
      ctx.out(`schema version ${status.schema_version} (this Swarm supports up to ${status.supported_schema_version}); durability ${status.durability}`);
      const runs = Object.entries(status.runs);
      const iso = status.isolation;
      ctx.out(`process agents: sandbox ${iso.sandbox}${iso.isolated ? ' (isolated)' : ' (NOT isolated)'}, memory limit ${iso.memory}${iso.memory_enforced ? '' : ' (NOT enforced by the OS)'}`);
      for (const w of iso.warnings) ctx.out(pc.yellow(`warning: ${w}`));
      ctx.out(`runs: ${runs.length ? runs.map(([k, n]) => `${n} ${k}`).join(', ') : 'none'}`);
      ctx.out(`live workers: ${status.workers.length ? status.workers.map((w) => `${w.id} (concurrency ${w.concurrency}${w.only_runs ? ', one-off' : ''})`).join(', ') : 'none'}`);
    });
}
