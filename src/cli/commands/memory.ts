import type { Command } from 'commander';
import { UserError } from '../../core/errors.js';
import { memoryJson } from '../../memory/json.js';
import type { MemoryRecord } from '../../store/memory-types.js';
import { parsePositiveInt, type CliContext } from '../context.js';

function line(m: MemoryRecord & { score?: number }): string {
  const when = new Date(m.created_at).toISOString().slice(0, 19).replace('T', ' ');
  const text = m.text.replace(/\s+/g, ' ');
  return `${m.id.padStart(6)}  ${m.score !== undefined ? `${m.score.toFixed(3)}  ` : ''}${when}  ${m.namespace}  ${m.source}  ${text.length > 100 ? `${text.slice(0, 99)}…` : text}`;
}

/**
 * `swarm memory list [<namespace>] | search <namespace> <text> [--k N] | delete <namespace> [--id ID]`:
 * the agents' vector memory (docs/memory.md).
 */
export function registerMemoryCommand(program: Command, ctx: CliContext): void {
  const memory = program.command('memory').description("the llm agents' vector memory: list, search and forget memories (docs/memory.md)");
  memory
    .command('list [namespace]')
    .description('memories newest first (one namespace, or all)')
    .option('--limit <n>', 'at most this many (default 50)')
    .option('--json', 'print JSON')
    .action(async (namespace: string | undefined, o: { limit?: string; json?: boolean }) => {
      const limit = o.limit !== undefined ? parsePositiveInt(o.limit, '--limit') : 50;
      const swarm = await ctx.swarm();
      const list = await swarm.memory.list(namespace, { limit });
      if (o.json) return ctx.out(JSON.stringify(list.map(memoryJson), null, 2));
      if (list.length === 0) return ctx.out(namespace ? `no memories in namespace '${namespace}'` : 'no memories');
      for (const m of list) ctx.out(line(m));
    });
  memory
    .command('search <namespace> <text>')
    .description('the memories nearest to a text (cosine similarity), best first')
    .option('--k <n>', 'how many (default 5)')
    .option('--model <provider/model>', "the embedding model for the query (default: the one that embedded the namespace's newest memory)")
    .option('--json', 'print JSON')
    .action(async (namespace: string, text: string, o: { k?: string; model?: string; json?: boolean }) => {
      const k = o.k !== undefined ? parsePositiveInt(o.k, '--k') : 5;
      if (k > 100) throw new UserError('ARGUMENT_INVALID', `--k must be at most 100, not ${k}`, { field: '--k' });
      if (!text.trim()) throw new UserError('ARGUMENT_INVALID', 'swarm memory search: <text> is empty; give the text to look for', { field: 'text' });
      const swarm = await ctx.swarm();
      const hits = await swarm.memory.search(namespace, text, { k, ...(o.model ? { model: o.model } : {}) });
      if (o.json) return ctx.out(JSON.stringify(hits.map(memoryJson), null, 2));
      if (hits.length === 0) return ctx.out(`no memories in namespace '${namespace}'`);
      for (const m of hits) ctx.out(line(m));
    });
  memory
    .command('delete <namespace>')
    .description('forget one memory (--id) or every memory of the namespace')
    .option('--id <id>', 'the memory to forget (an id from list or search)')
    .option('--json', 'print JSON')
    .action(async (namespace: string, o: { id?: string; json?: boolean }) => {
      if (o.id !== undefined && !/^\d+$/.test(o.id)) throw new UserError('ARGUMENT_INVALID', `--id must be a memory id (digits, from swarm memory list), not '${o.id}'`, { field: '--id' });
      const swarm = await ctx.swarm();
      const deleted = await swarm.memory.delete(namespace, o.id);
      if (o.json) return ctx.out(JSON.stringify({ deleted }));
      ctx.out(o.id !== undefined ? (deleted ? `deleted memory ${o.id} of '${namespace}'` : `no memory ${o.id} in namespace '${namespace}'`) : `deleted ${deleted} memor${deleted === 1 ? 'y' : 'ies'} of '${namespace}'`);
    });
}
