import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import pc from 'picocolors';
import { resolveConfig } from '../../config/config.js';
import { ExitCode } from '../../core/errors.js';
import { runDoctor, type DoctorStatus } from '../../observability/doctor.js';
import { packageRoot } from '../../scaffold.js';
import type { CliContext } from '../context.js';
import { table } from '../render.js';

const MARK: Record<DoctorStatus, string> = { ok: pc.green('ok'), warn: pc.yellow('warn'), fail: pc.red('fail') };

/** The Node.js versions this package supports (package.json `engines.node`). */
function nodeRange(): string {
  return (JSON.parse(readFileSync(`${packageRoot()}/package.json`, 'utf8')) as { engines?: { node?: string } }).engines?.node ?? '>=20.19';
}

/**
 * `swarm doctor [--json]`: check this machine and the store (docs/observability.md#doctor). Exit 0
 * when no check failed (warnings included), 7 when one did.
 */
export function registerDoctorCommand(program: Command, ctx: CliContext): void {
  program
    .command('doctor')
    .description('check Node.js, the store and its schema, disk space, the master key and signing keys, memory limits, the sandbox and its network capabilities, the clock, workers and stuck runs; exit 7 if a check fails')
    .option('--json', 'print {checks: [{id, status, detail, hint}], ok}')
    .action(async (o: { json?: boolean }) => {
      // The master key is checked by the doctor (a malformed one is a failed check, not an error).
      const { SWARM_MASTER_KEY: masterKeyText, ...env } = ctx.env;
      const config = resolveConfig({ cwd: ctx.cwd, env });
      const report = await runDoctor({ config, masterKeyText, nodeRange: nodeRange() });
      if (o.json) ctx.out(JSON.stringify(report, null, 2));
      else {
        ctx.out(table(['check', 'status', 'detail'], report.checks.map((c) => [c.id, MARK[c.status], c.detail])));
        const hints = report.checks.filter((c) => c.status !== 'ok');
        if (hints.length) ctx.out('');
        for (const c of hints) ctx.out(`${c.status === 'fail' ? pc.red('✖') : pc.yellow('!')} ${c.id}: ${c.hint}`);
        const fails = report.checks.filter((c) => c.status === 'fail').length;
        ctx.out(`\n${fails ? pc.red(`${fails} check(s) failed`) : pc.green(`no check failed${hints.length ? ` (${hints.length} warning(s))` : ''}`)}`);
      }
      if (!report.ok) ctx.exitCode = ExitCode.CHECK_FAILED;
    });
}
