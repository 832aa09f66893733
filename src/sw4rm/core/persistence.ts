/**
 * Where the core's stateful parts (ActivityBuffer, WorktreeState) keep their state: a small
 * key → JSON value interface with three implementations — a JSON file for standalone agents (atomic
 * writes), memory (tests, or nothing to keep), and Swarm's store (SQLite or PostgreSQL, migration 23).
 *
 * `PersistedState` is what the components use on top of it: saves are batched (one write per
 * `saveDelayMs`, however many changes), `flush()` writes at once, and when the persistence fails the
 * component carries on in memory and says so once (`onError`).
 *
 * @example
 *   const buffer = await ActivityBuffer.open({ persistence: new JSONFilePersistence('./agent-state.json') });
 *   const buffer2 = await ActivityBuffer.open({ persistence: new StorePersistence(swarm.store, 'agent-1') });
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A key → JSON value store for one agent's state. */
export interface Sw4rmPersistence {
  /** The value saved under `key`, or undefined when none was. Rejects when it cannot be read. */
  load(key: string): Promise<unknown>;
  /** Replace the value under `key`, durably before it resolves. */
  save(key: string, value: unknown): Promise<void>;
}

/** Values in memory (copied in and out, as a real backend would). */
export class MemoryPersistence implements Sw4rmPersistence {
  private readonly values = new Map<string, string>();

  load(key: string): Promise<unknown> {
    const v = this.values.get(key);
    return Promise.resolve(v === undefined ? undefined : (JSON.parse(v) as unknown));
  }

  save(key: string, value: unknown): Promise<void> {
    this.values.set(key, JSON.stringify(value));
    return Promise.resolve();
  }
}

const FILE_FORMAT = 'swarm-sw4rm-state';

/**
 * One JSON file holding every key (`{"format":"swarm-sw4rm-state","version":1,"entries":{…}}`).
 * A save writes a temporary file next to it, fsyncs it, renames it over the file and fsyncs the
 * directory: after a crash the file is the old version or the new one, never a torn mix. A file
 * that is not valid JSON is never overwritten (the save rejects), so nothing readable is lost.
 */
export class JSONFilePersistence implements Sw4rmPersistence {
  readonly path: string;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  async load(key: string): Promise<unknown> {
    const entries = await this.readEntries();
    return Object.hasOwn(entries, key) ? entries[key] : undefined;
  }

  save(key: string, value: unknown): Promise<void> {
    const json = JSON.stringify(value);
    if (json === undefined) return Promise.reject(new TypeError(`JSONFilePersistence: the value for ${key} has no JSON form`));
    // Saves to one file are serialised: each re-reads the file, so keys written by other parts of
    // this agent (another component on the same file) survive.
    const next = this.chain.then(async () => {
      const entries = await this.readEntries();
      entries[key] = JSON.parse(json) as unknown;
      await this.writeAtomically(JSON.stringify({ format: FILE_FORMAT, version: 1, entries }));
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async readEntries(): Promise<Record<string, unknown>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw e;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new Error(`${this.path} is not valid JSON (${(e as Error).message}); it was left as it is`, { cause: e });
    }
    const d = doc as { format?: unknown; entries?: unknown } | null;
    if (d === null || typeof d !== 'object' || d.format !== FILE_FORMAT || d.entries === null || typeof d.entries !== 'object') {
      throw new Error(`${this.path} is not a Swarm SW4RM state file (expected {"format":"${FILE_FORMAT}",…}); it was left as it is`);
    }
    return { ...(d.entries as Record<string, unknown>) };
  }

  private async writeAtomically(text: string): Promise<void> {
    const dir = dirname(this.path);
    const tmp = join(dir, `.${basename(this.path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    let renamed = false;
    try {
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(text, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
      renamed = true;
      await syncDirectory(dir);
    } finally {
      if (!renamed) await unlink(tmp).catch(() => undefined);
    }
  }
}

async function syncDirectory(dir: string): Promise<void> {
  // The rename is durable once the directory entry is; some platforms cannot open a directory.
  let fh;
  try {
    fh = await open(dir, 'r');
  } catch {
    return;
  }
  try {
    await fh.sync().catch(() => undefined);
  } finally {
    await fh.close();
  }
}

/** The slice of Swarm's Store this needs (migration 23). */
export interface Sw4rmStateStore {
  getSw4rmState(agentId: string, kind: string, key?: string): Promise<{ value: unknown } | undefined>;
  putSw4rmState(agentId: string, kind: string, value: unknown, key?: string): Promise<unknown>;
}

/** One agent's state in Swarm's store: each persistence key is a `kind` of the agent's state. */
export class StorePersistence implements Sw4rmPersistence {
  constructor(
    private readonly store: Sw4rmStateStore,
    readonly agentId: string,
  ) {}

  async load(key: string): Promise<unknown> {
    return (await this.store.getSw4rmState(this.agentId, key))?.value;
  }

  async save(key: string, value: unknown): Promise<void> {
    await this.store.putSw4rmState(this.agentId, key, value);
  }
}

/** How a component reports that its persistence failed and it now runs in memory. */
export type PersistenceErrorHandler = (error: Error, context: { key: string; during: 'load' | 'save' }) => void;

export interface PersistedStateOptions {
  persistence: Sw4rmPersistence;
  key: string;
  /** Batch saves: write at most once per this many ms (default 100). 0 writes after every change. */
  saveDelayMs?: number;
  /** Told once, when the persistence fails and the component falls back to memory. */
  onError?: PersistenceErrorHandler;
}

/**
 * A component's document in a persistence, with batched saves and the in-memory fallback. The
 * component calls `changed()` after each change; `snapshot()` gives what to write.
 */
export class PersistedState {
  private readonly persistence: Sw4rmPersistence;
  private readonly key: string;
  private readonly saveDelayMs: number;
  private readonly onError: PersistenceErrorHandler | undefined;
  private readonly snapshot: () => unknown;
  private timer: NodeJS.Timeout | undefined;
  private dirty = false;
  private writing: Promise<void> | undefined;
  private failed = false;
  private closed = false;

  constructor(options: PersistedStateOptions, snapshot: () => unknown) {
    this.persistence = options.persistence;
    this.key = options.key;
    this.saveDelayMs = options.saveDelayMs ?? 100;
    this.onError = options.onError;
    this.snapshot = snapshot;
  }

  /** False once the persistence failed: the component keeps working, in memory only. */
  get persistent(): boolean {
    return !this.failed;
  }

  /** The saved document, or undefined (nothing saved, or the load failed: reported, then memory). */
  async load(): Promise<unknown> {
    try {
      return await this.persistence.load(this.key);
    } catch (e) {
      this.fail(e, 'load');
      return undefined;
    }
  }

  /** Note a change: it is written within `saveDelayMs`, together with the others. */
  changed(): void {
    if (this.failed || this.closed) return;
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.saveDelayMs);
    this.timer.unref();
  }

  /** Write what changed now (and wait for a write in progress). Never rejects: failures fall back. */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.writing) await this.writing;
    if (!this.dirty || this.failed) return;
    this.dirty = false;
    const value = this.snapshot();
    this.writing = this.persistence.save(this.key, value).then(
      () => undefined,
      (e: unknown) => this.fail(e, 'save'),
    );
    try {
      await this.writing;
    } finally {
      this.writing = undefined;
    }
  }

  /** Flush and stop: later changes are kept in memory only. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  private fail(e: unknown, during: 'load' | 'save'): void {
    if (this.failed) return;
    this.failed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const error = e instanceof Error ? e : new Error(String(e));
    this.onError?.(error, { key: this.key, during });
  }
}
