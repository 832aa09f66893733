/**
 * What an agent has already handled, by message_id and idempotency token: the runtime's
 * consumer-side dedup (the router delivers at least once). Bounded (oldest forgotten first), and
 * optionally kept in a JSON file written atomically (temp file, fsync, rename), so a restarted agent
 * does not run a handler twice for a message it finished before it stopped. A file that cannot be
 * written leaves the set in memory (the agent keeps working; `persistError` says why).
 *
 * @example
 *   const seen = new ProcessedSet({ file: './data/processed.json', max: 10_000 });
 *   if (!seen.has(env.message_id, env.idempotency_token)) { handle(env); seen.add(env.message_id, env.idempotency_token); }
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from '../../core/errors.js';

export interface ProcessedSetOptions {
  /** JSON file to keep the set in across restarts (default: memory only). */
  file?: string;
  /** Keys remembered (default 10,000); the oldest are forgotten first. */
  max?: number;
}

export class ProcessedSet {
  private readonly keys = new Set<string>();
  private readonly max: number;
  private readonly file: string | undefined;
  /** Why the last write of the file failed (the set then lives in memory only), or undefined. */
  persistError: Error | undefined;

  constructor(options: ProcessedSetOptions = {}) {
    this.max = options.max ?? 10_000;
    this.file = options.file;
    if (this.file && existsSync(this.file)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(readFileSync(this.file, 'utf8'));
      } catch (e) {
        throw new UserError('SW4RM_STATE_CORRUPT', `${this.file}: the agent's processed-message file is not valid JSON (${(e as Error).message}); move it away to start with an empty one`, { file: this.file });
      }
      const list = (parsed as { processed?: unknown }).processed;
      if (!Array.isArray(list) || list.some((k) => typeof k !== 'string')) {
        throw new UserError('SW4RM_STATE_CORRUPT', `${this.file}: expected {"processed": [string, …]}; move it away to start with an empty one`, { file: this.file });
      }
      for (const k of list as string[]) this.keys.add(k);
    }
  }

  /** Has a message with this id, or with this idempotency token, been handled? */
  has(messageId: string, idempotencyToken = ''): boolean {
    return this.keys.has(`m:${messageId}`) || (idempotencyToken !== '' && this.keys.has(`t:${idempotencyToken}`));
  }

  /** Remember a handled message (and write the file, if any). */
  add(messageId: string, idempotencyToken = ''): void {
    this.keys.add(`m:${messageId}`);
    if (idempotencyToken) this.keys.add(`t:${idempotencyToken}`);
    while (this.keys.size > this.max) this.keys.delete(this.keys.values().next().value as string);
    this.persist();
  }

  get size(): number {
    return this.keys.size;
  }

  private persist(): void {
    if (!this.file) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      const fd = openSync(tmp, 'w');
      try {
        writeSync(fd, JSON.stringify({ processed: [...this.keys] }));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.file);
      this.persistError = undefined;
    } catch (e) {
      this.persistError = e as Error;
    }
  }
}
