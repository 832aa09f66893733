import type { Command } from 'commander';
import { resolve } from 'node:path';
import { resolveConfig } from '../../config/config.js';
import { UserError } from '../../core/errors.js';
import { emptyGcReport, FINISHED_STATUSES, type FinishedStatus, type GcOptions } from '../../retention/gc.js';
import { describeGc } from '../../retention/report.js';
import { parseDuration } from '../../triggers/schedule.js';
import { missingSqliteStore, parsePositiveInt, type CliContext } from '../context.js';

interface GcCliOptions {
  olderThan?: string;
  status?: string;
  archive?: string;
  dryRun?: boolean;
  batch?: string;
  json?: boolean;
}

const MIN_AGE_MS = 60_000;
/** As `retention.batch` allows. */
const MAX_BATCH = 100_000;

function parseAge(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new UserError('ARGUMENT_INVALID', `--older-than '${value}' is not a duration: write a whole number of s, m, h or d (30d, 12h)`, { field: '--older-than' });
  if (ms < MIN_AGE_MS) throw new UserError('ARGUMENT_INVALID', `--older-than '${value}' is under a minute: it would delete runs that just finished; write at least 1m`, { field: '--older-than' });
  return ms;
}

function parseStatuses(value: string): FinishedStatus[] {
  const out: FinishedStatus[] = [];
  for (const s of value.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (!(FINISHED_STATUSES as readonly string[]).includes(s)) {
      throw new UserError('ARGUMENT_INVALID', `--status '${s}' is not a finished status: gc deletes only ${FINISHED_STATUSES.join(', ')} runs (never one that is queued, running or waiting)`, { field: '--status' });
    }
    out.push(s as FinishedStatus);
  }
  if (out.length === 0) throw new UserError('ARGUMENT_INVALID', `--status is empty: name one or more of ${FINISHED_STATUSES.join(', ')}`, { field: '--status' });
  return out;
}

/**
 * `swarm gc`: delete finished runs past an age, with everything that belongs to them, in bounded
 * batches (docs/observability.md#retention). Without --older-than, the ages of `retention:` in
 * swarm.yaml apply. Where the SQLite store does not exist yet there is nothing to delete: gc says so
 * (exit 0) and writes nothing (opening the store would create it).
 */
export function registerGcCommand(program: Command, ctx: CliContext): void {
  program
    .command('gc')
    .description('delete finished runs older than an age (by completion) with their steps, events, logs and LLM sessions; compact finished sessions’ checkpoints')
    .option('--older-than <age>', "runs finished longer ago than this (30d, 12h); default: swarm.yaml's retention ages")
    .option('--status <list>', `which finished runs, comma-separated (default ${FINISHED_STATUSES.join(',')})`)
    .option('--archive <file>', 'append each run (row, steps, events, logs, transcripts) to this JSON-lines file before deleting it')
    .option('--dry-run', 'count what would be deleted; delete nothing')
    .option('--batch <n>', 'runs deleted per transaction (default: swarm.yaml retention.batch, 500)')
    .option('--json', 'print the report as JSON')
    .action(async (o: GcCliOptions) => {
      // Every argument is checked before the store is opened.
      const age = o.olderThan !== undefined ? parseAge(o.olderThan) : undefined;
      const statuses = o.status !== undefined ? parseStatuses(o.status) : undefined;
      const batch = o.batch !== undefined ? parsePositiveInt(o.batch, '--batch', MAX_BATCH) : undefined;
      // swarm.yaml and the environment, read without opening the store (which would create it).
      const config = resolveConfig({ cwd: ctx.cwd, env: ctx.env });
      const policy = config.retention;
      let ages: GcOptions['ages'];
      if (age !== undefined) {
        ages = Object.fromEntries((statuses ?? FINISHED_STATUSES).map((s) => [s, age]));
      } else {
        if (Object.keys(policy.runs).length === 0) {
          throw new UserError('ARGUMENT_INVALID', `swarm gc needs --older-than (e.g. --older-than 30d), or run ages under retention: in ${config.configFile ?? 'swarm.yaml'} (e.g. completed: 30d)`, { field: '--older-than' });
        }
        ages = Object.fromEntries(Object.entries(policy.runs).filter(([s]) => !statuses || statuses.includes(s as FinishedStatus)));
        if (Object.keys(ages).length === 0) {
          throw new UserError('ARGUMENT_INVALID', `swarm gc --status ${o.status ?? ''}: retention: in ${config.configFile ?? 'swarm.yaml'} has no age for ${(statuses ?? []).join(' or ')} (it has ${Object.keys(policy.runs).join(', ')}); give --older-than, or add an age for it`, { field: '--status' });
        }
      }
      // The configured archive applies whenever --archive is not given (with --older-than too): a
      // deployment that keeps every deleted run keeps those of a one-off gc as well.
      const archive = o.archive !== undefined ? resolve(ctx.cwd, o.archive) : policy.archive;
      // No store yet: no runs to delete. Nothing is created (no store, directory, key or archive).
      const missing = missingSqliteStore(config);
      if (missing !== undefined) {
        if (o.json) return ctx.out(JSON.stringify({ ...emptyGcReport({ ages, dryRun: o.dryRun === true }, Date.now(), { bytes: 0, free_bytes: 0, file_bytes: 0 }), store_missing: missing }, null, 2));
        return ctx.out(`nothing to do: no store at ${missing} yet (it is made on first use: 'swarm init', or register an agent)`);
      }
      const swarm = await ctx.swarm();
      const report = await swarm.gc({ ages, archive, dryRun: o.dryRun === true, batch: batch ?? policy.batch });
      if (o.json) return ctx.out(JSON.stringify(report, null, 2));
      for (const line of describeGc(report, { archive })) ctx.out(line);
    });
}
