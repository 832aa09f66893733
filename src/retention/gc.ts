/**
 * Garbage collection of finished runs (`swarm gc`, and the `retention:` policy `swarm serve` applies):
 * deletes runs finished before a cut-off, with their steps, events, logs, LLM sessions (transcripts,
 * tool ledgers, checkpoints), approvals, waits, signals and concurrency rows, and their sub-workflow
 * runs with them (a tree goes whole or not at all). A run that is not finished is never deleted,
 * whatever the options: the store's queries only ever consider completed, failed and cancelled runs.
 *
 * - **Bounded batches.** Each batch is one short transaction of at most `batch` runs (a single tree
 *   larger than that is a batch of its own); between batches it pauses, so workers' commits go first.
 * - **Archive first.** With `archive`, each run of a batch is appended to the file as one JSON line
 *   and the file is fsynced before the batch's delete commits: an interrupted gc never loses a run it
 *   did not archive (a run archived but then found changed is kept, and may be archived again later).
 * - **Checkpoints compacted.** Afterwards, the checkpoints of finished LLM sessions that are kept
 *   are compacted (src/agents/checkpoint-compaction.ts).
 *
 * @example
 *   const report = await collectGarbage(store, { ages: { completed: 30 * DAY_MS }, archive: 'runs.jsonl' });
 *   console.log(report.runs, report.size_before.bytes, report.size_after.bytes);
 */
import { open, type FileHandle } from 'node:fs/promises';
import { UserError } from '../core/errors.js';
import type { RunStatus } from '../core/states.js';
import { compactEnvelope } from '../agents/checkpoint-compaction.js';
import type { Store } from '../store/store.js';
import { emptyRowCounts, RUN_TABLES, type DatabaseSize, type RunCursor, type RunTable, type RunTree } from '../store/retention-types.js';
import { archiveLine } from './archive.js';

export const DAY_MS = 86_400_000;
/** Runs deleted per transaction unless told otherwise. */
export const GC_BATCH_RUNS = 500;
/** The pause between two batches: other writers' transactions get the store first. */
export const GC_PAUSE_MS = 10;
/** Sessions updated more recently than this are not compacted yet (a chat may be continuing). */
export const COMPACT_AFTER_MS = 60_000;

export type FinishedStatus = Extract<RunStatus, 'completed' | 'failed' | 'cancelled'>;
export const FINISHED_STATUSES: readonly FinishedStatus[] = ['completed', 'failed', 'cancelled'];

export interface GcOptions {
  /** How long runs are kept after they finish, per status (ms); statuses not given are kept. */
  ages: Partial<Record<FinishedStatus, number>>;
  /** Append each run to this file (JSON lines, fsynced) before deleting it. */
  archive?: string | undefined;
  /** Count what would go, delete nothing. */
  dryRun?: boolean;
  /** Runs per transaction (default 500). */
  batch?: number;
  /** Pause between batches, ms (default 10). */
  pauseMs?: number;
  /** Compact checkpoints of sessions idle for this long (default 60 s); false: do not compact. */
  compactAfterMs?: number | false;
  /** Stop between batches when aborted (what was deleted stays deleted; the report says so). */
  signal?: AbortSignal;
  /** Called after each batch commits (the retention policy renews its lease here). */
  onBatch?: (batch: { runs: number; trees: number }) => Promise<void> | void;
}

export interface GcReport {
  dry_run: boolean;
  /** Per status, the cut-off used (ms since the epoch, on the store's clock). */
  cutoffs: Partial<Record<FinishedStatus, number>>;
  /** Runs deleted (or, in a dry run, that would be), sub-workflow runs included. */
  runs: number;
  /** Top-level runs among them. */
  trees: number;
  /** Top-level runs past the cut-off kept because a run of their tree is not finished. */
  skipped: number;
  batches: number;
  /** The most runs one transaction deleted. */
  largest_batch: number;
  /** Rows deleted per table. */
  rows: Record<RunTable, number>;
  /** Runs written to the archive. */
  archived: number;
  checkpoints: { examined: number; compacted: number; bytes_saved: number };
  size_before: DatabaseSize;
  size_after: DatabaseSize;
  /** True when `signal` stopped it before the end. */
  interrupted: boolean;
}

/**
 * A report of nothing done yet: the cut-offs of `o.ages` at `now`, every count 0, the size after
 * the same as before (the caller sets it when it changes anything). What `swarm gc` answers where
 * there is no store at all.
 */
export function emptyGcReport(o: Pick<GcOptions, 'ages' | 'dryRun'>, now: number, size: DatabaseSize): GcReport {
  const cutoffs: GcReport['cutoffs'] = {};
  for (const s of FINISHED_STATUSES) {
    const age = o.ages[s];
    if (age !== undefined) cutoffs[s] = now - age;
  }
  return {
    dry_run: o.dryRun === true,
    cutoffs,
    runs: 0,
    trees: 0,
    skipped: 0,
    batches: 0,
    largest_batch: 0,
    rows: emptyRowCounts(),
    archived: 0,
    checkpoints: { examined: 0, compacted: 0, bytes_saved: 0 },
    size_before: size,
    size_after: { ...size },
    interrupted: false,
  };
}

/** Delete (or count) what is past its retention; see the module comment. */
export async function collectGarbage(store: Store, o: GcOptions): Promise<GcReport> {
  const batch = o.batch ?? GC_BATCH_RUNS;
  if (!Number.isInteger(batch) || batch < 1) throw new UserError('ARGUMENT_INVALID', `the gc batch must be a positive whole number of runs, not ${batch}`);
  const now = await store.now();
  const report = emptyGcReport(o, now, await store.databaseSize());
  // Statuses with the same age share one walk.
  const groups = new Map<number, FinishedStatus[]>();
  for (const s of FINISHED_STATUSES) {
    const age = o.ages[s];
    if (age !== undefined) groups.set(age, [...(groups.get(age) ?? []), s]);
  }
  const archive = o.archive && !o.dryRun ? await openArchive(o.archive) : undefined;
  try {
    for (const [age, statuses] of groups) {
      if (!(await walk(store, { before: now - age, statuses }, batch, o, report, archive))) break;
    }
  } finally {
    await archive?.close();
  }
  if (!o.dryRun && !report.interrupted && o.compactAfterMs !== false) {
    const before = now - (o.compactAfterMs ?? COMPACT_AFTER_MS);
    for (;;) {
      const r = await store.compactAgentSessions({ before, limit: batch, compact: compactEnvelope });
      report.checkpoints.examined += r.examined;
      report.checkpoints.compacted += r.compacted;
      report.checkpoints.bytes_saved += r.bytes_saved;
      if (r.examined < batch || o.signal?.aborted) break;
      await pause(o.pauseMs ?? GC_PAUSE_MS);
    }
  }
  report.size_after = await store.databaseSize();
  return report;
}

/** One cut-off's walk, batch by batch; false when interrupted. */
async function walk(store: Store, q: { before: number; statuses: FinishedStatus[] }, batch: number, o: GcOptions, report: GcReport, archive: FileHandle | undefined): Promise<boolean> {
  let after: RunCursor | undefined;
  for (;;) {
    if (o.signal?.aborted) {
      report.interrupted = true;
      return false;
    }
    const page = await store.expiredRunTrees({ ...q, limit: batch, after });
    report.skipped += page.skipped;
    if (page.trees.length > 0) {
      if (o.dryRun) {
        report.runs += count(page.trees);
        report.trees += page.trees.length;
      } else {
        if (archive) await archiveTrees(store, page.trees, archive, report);
        const deleted = await store.deleteRunTrees(page.trees, q);
        report.runs += deleted.runs;
        report.trees += deleted.roots.length;
        report.batches++;
        report.largest_batch = Math.max(report.largest_batch, deleted.runs);
        for (const t of RUN_TABLES) report.rows[t] += deleted.rows[t];
        await o.onBatch?.({ runs: deleted.runs, trees: deleted.roots.length });
      }
    }
    if (!page.next) return true;
    after = page.next;
    if (!o.dryRun) await pause(o.pauseMs ?? GC_PAUSE_MS);
  }
}

/** Append every run of these trees to the archive, then fsync: durable before the delete commits. */
async function archiveTrees(store: Store, trees: readonly RunTree[], file: FileHandle, report: GcReport): Promise<void> {
  const lines: string[] = [];
  for (const t of trees) {
    for (const id of t.runs) {
      // A run gone since the page was read (another gc took it) has no line.
      const line = await archiveLine(store, id);
      if (line) lines.push(line);
    }
  }
  await file.write(lines.join(''));
  await file.sync();
  report.archived += lines.length;
}

async function openArchive(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'a', 0o600);
  } catch (e) {
    throw new UserError('ARCHIVE_UNWRITABLE', `${cannotOpen(path, e)}; nothing was deleted`, { file: path });
  }
}

/**
 * Why a gc could not append to the archive `path` (opened as every pass opens it, which makes it if
 * it is missing); undefined when it can. `swarm serve` asks before it starts its retention passes.
 */
export async function archiveFault(path: string): Promise<string | undefined> {
  try {
    await (await open(path, 'a', 0o600)).close();
    return undefined;
  } catch (e) {
    return cannotOpen(path, e);
  }
}

const cannotOpen = (path: string, e: unknown): string => `cannot open the archive ${path} for appending: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;

const count = (trees: readonly RunTree[]): number => trees.reduce((n, t) => n + t.runs.length, 0);

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
