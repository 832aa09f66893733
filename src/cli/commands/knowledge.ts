import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { outputTarget } from '../../core/output-path.js';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { Option, type Command } from 'commander';
import pc from 'picocolors';
import { UserError } from '../../core/errors.js';
import { knowledgeForSwarm } from '../../consensus/knowledge/swarm.js';
import type { KnowledgeExportSelector, KnowledgeSearchHit, KnowledgeTrackRow } from '../../consensus/knowledge/index.js';
import { parsePositiveInt, type CliContext } from '../context.js';

interface ExportOptions {
  taskType?: string;
  taskId?: string;
  /** The seed's spellings (`--task_type`, `--task_id`), accepted and hidden. */
  task_type?: string;
  task_id?: string;
  out?: string;
}

/** Exactly one of --task-type / --task-id; UserError (exit 2) otherwise. */
export function exportSelector(o: ExportOptions): KnowledgeExportSelector {
  const taskType = o.taskType ?? o.task_type;
  const taskId = o.taskId ?? o.task_id;
  if (taskType !== undefined && taskId !== undefined) throw new UserError('ARGUMENT_INVALID', 'give either --task-type or --task-id, not both', { field: '--task-type' });
  if (taskType === undefined && taskId === undefined) throw new UserError('ARGUMENT_INVALID', 'give --task-type <type> (every decision of a task type) or --task-id <id> (one task’s decision)', { field: '--task-type' });
  for (const [name, v] of [
    ['--task-type', taskType],
    ['--task-id', taskId],
  ] as const) {
    if (v !== undefined && v.trim() === '') throw new UserError('ARGUMENT_INVALID', `${name} must not be empty`, { field: name });
  }
  return taskType !== undefined ? { task_type: taskType } : { task_id: taskId as string };
}

/**
 * A temp file next to `out`, opened before anything is read (an unwritable place is refused at once,
 * exit 2); `commit` renames it over `out`, `abandon` removes it: `out` is whole or untouched.
 */
function openOutput(out: string): { write(s: string): void; commit(): void; abandon(): void } {
  const { path: target, direct } = outputTarget(out);
  if (direct) {
    // A device or a pipe (/dev/stdout, a FIFO): written into as it is, nothing to rename.
    let fd: number;
    try {
      fd = openSync(target, 'w');
    } catch (e) {
      throw new UserError('ARGUMENT_INVALID', `cannot write --out ${out}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { field: '--out', file: out });
    }
    return { write: (s) => void writeSync(fd, s), commit: () => closeSync(fd), abandon: () => closeSync(fd) };
  }
  const temp = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = openSync(temp, 'wx', 0o644);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'its directory does not exist' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EROFS' ? 'read-only file system' : code === 'ENOTDIR' ? 'a part of the path is not a directory' : code;
    throw new UserError('ARGUMENT_INVALID', `cannot write --out ${out}: ${why}`, { field: '--out', file: out });
  }
  let closed = false;
  const close = (): void => {
    if (!closed) closeSync(fd);
    closed = true;
  };
  return {
    write: (s) => {
      writeSync(fd, s);
    },
    commit: () => {
      fsyncSync(fd);
      close();
      renameSync(temp, target);
    },
    abandon: () => {
      try {
        close();
      } finally {
        try {
          unlinkSync(temp);
        } catch {
          // Already gone.
        }
      }
    },
  };
}

function money(n: number): string {
  return `$${n.toFixed(4)}`;
}

function trackLine(r: KnowledgeTrackRow): string {
  const rate = r.proposed ? `${Math.round((100 * r.won) / r.proposed)}%` : '-';
  return `${r.task_type.padEnd(20)} ${r.proposer_id.padEnd(28)} ${String(r.proposed).padStart(8)} ${String(r.won).padStart(5)} ${rate.padStart(5)} ${String(r.failed).padStart(7)} ${String(r.inconclusive).padStart(12)}`;
}

function searchLine(h: KnowledgeSearchHit): string {
  const d = h.decision;
  const text = d.text.replace(/\s+/g, ' ');
  const when = new Date(d.decided_at).toISOString().slice(0, 19).replace('T', ' ');
  return `${h.score.toFixed(3)}  ${when}  ${d.task_type}  ${d.task_id}  ${d.candidate_hash.slice(0, 12)}  ${money(d.cost.total_usd ?? 0)}  ${text.length > 80 ? `${text.slice(0, 79)}…` : text}`;
}

/**
 * `swarm knowledge export --task-type T | --task-id ID [--out file.jsonl] | search <text> | track`:
 * the knowledge store of consensus decisions (docs/consensus.md#knowledge-store).
 */
export function registerKnowledgeCommands(program: Command, ctx: CliContext): void {
  const knowledge = program.command('knowledge').description('the knowledge store of consensus decisions: export, search, track record (docs/consensus.md)');
  knowledge
    .command('export')
    .description('decisions with their evidence, cost and the proposers’ records, one JSON object a line (JSONL)')
    .option('--task-type <type>', 'every decision of this task type, newest first')
    .option('--task-id <id>', 'the decision of this task')
    .addOption(new Option('--task_type <type>').hideHelp())
    .addOption(new Option('--task_id <id>').hideHelp())
    .option('--out <file>', 'write to this file (whole or not at all); default: standard output')
    .action(async (o: ExportOptions) => {
      const sel = exportSelector(o);
      // The output place is checked before the store is opened: a bad --out costs nothing.
      const file = o.out !== undefined ? openOutput(o.out) : undefined;
      let n = 0;
      try {
        const swarm = await ctx.swarm();
        const k = knowledgeForSwarm(swarm, ctx.env);
        for await (const line of k.export(sel)) {
          const json = JSON.stringify(swarm.redactor.value(line));
          if (file) file.write(`${json}\n`);
          else process.stdout.write(`${json}\n`);
          n++;
        }
        if (n === 0 && 'task_id' in sel) throw new UserError('KNOWLEDGE_NOT_FOUND', `no decision of task '${sel.task_id}' is in the knowledge store`, { task_id: sel.task_id });
        file?.commit();
      } catch (e) {
        file?.abandon();
        throw e;
      }
      if (o.out !== undefined) ctx.out(`exported ${n} decision${n === 1 ? '' : 's'} to ${o.out}`);
    });
  knowledge
    .command('search <text>')
    .description('the decisions whose task text is nearest to a text (cosine similarity), best first')
    .option('--task-type <type>', 'only decisions of this task type')
    .option('--limit <n>', 'at most this many (default 10)')
    .option('--json', 'print JSON')
    .action(async (text: string, o: { taskType?: string; limit?: string; json?: boolean }) => {
      const limit = o.limit !== undefined ? parsePositiveInt(o.limit, '--limit') : 10;
      if (limit > 100) throw new UserError('ARGUMENT_INVALID', `--limit must be at most 100, not ${limit}`, { field: '--limit' });
      if (text.trim() === '') throw new UserError('ARGUMENT_INVALID', 'the search text must not be empty', { field: 'text' });
      const swarm = await ctx.swarm();
      const hits = await knowledgeForSwarm(swarm, ctx.env).search(text, { limit, ...(o.taskType !== undefined ? { task_type: o.taskType } : {}) });
      if (o.json) {
        const rows = hits.map((h) => ({ score: h.score, task_id: h.decision.task_id, task_type: h.decision.task_type, run_id: h.decision.run_id, text: h.decision.text, candidate_hash: h.decision.candidate_hash, output: h.decision.output, cost_usd: h.decision.cost.total_usd ?? 0, decided_at: new Date(h.decision.decided_at).toISOString() }));
        return ctx.out(JSON.stringify(rows, null, 2));
      }
      if (hits.length === 0) {
        ctx.out(o.taskType !== undefined ? `no decisions of task type '${o.taskType}' near that text` : 'no decisions near that text');
        // Without an embedding model a decision has no vector, and search finds nothing however many there are.
        if (!ctx.env.SWARM_KNOWLEDGE_EMBEDDING?.trim()) ctx.err(pc.dim('SWARM_KNOWLEDGE_EMBEDDING is not set: only task types whose decisions were embedded before can be searched (set it to provider/model, e.g. openai/text-embedding-3-small; see docs/consensus.md)'));
        return;
      }
      for (const h of hits) ctx.out(searchLine(h));
    });
  knowledge
    .command('track')
    .description('the proposers’ track record per task type: candidates proposed, won, failed verification, inconclusive')
    .option('--task-type <type>', 'one task type')
    .option('--json', 'print JSON')
    .action(async (o: { taskType?: string; json?: boolean }) => {
      const swarm = await ctx.swarm();
      const rows = await knowledgeForSwarm(swarm, ctx.env).trackRecord(o.taskType !== undefined ? { task_type: o.taskType } : {});
      if (o.json) return ctx.out(JSON.stringify(rows.map(({ updated_at, ...r }) => ({ ...r, updated_at: new Date(updated_at).toISOString() })), null, 2));
      if (rows.length === 0) return ctx.out(o.taskType !== undefined ? `no decisions of task type '${o.taskType}' recorded` : 'no decisions recorded');
      ctx.out(`${'TASK TYPE'.padEnd(20)} ${'PROPOSER'.padEnd(28)} ${'PROPOSED'.padStart(8)} ${'WON'.padStart(5)} ${'WIN%'.padStart(5)} ${'FAILED'.padStart(7)} ${'INCONCLUSIVE'.padStart(12)}`);
      for (const r of rows) ctx.out(trackLine(r));
    });
}
