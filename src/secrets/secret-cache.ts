import { StepError, UserError } from '../core/errors.js';
import type { SecretRecord, Store } from '../store/store.js';
import type { Redactor } from './redactor.js';
import { openSecret, type SecretsKek } from './vault.js';

/**
 * The secrets a process resolves `${secrets.NAME}` from: the encrypted store first (the run's
 * workflow's own secret, then the global one), then the environment (`SWARM_SECRET_NAME`).
 *
 * Stored values are decrypted lazily, when a step of a workflow that references secrets is about to
 * run (`prepare`), and kept in memory for the life of the process. Every value decrypted is taught
 * to the redactor before `prepare` returns, so it is redacted from whatever the step produces.
 * `prepare` costs one small read (the store's secrets generation) when nothing changed.
 *
 * Lookups (`get`) are synchronous: templates resolve without awaiting.
 */
export class SecretCache {
  private generation: string | undefined;
  /** Sealed rows by `scope\0name`, as of `generation`. */
  private rows = new Map<string, SecretRecord>();
  /**
   * Decrypted values by `scope\0name`, valid while the row's updated_at and wrapped key are unchanged;
   * or why one could not be decrypted (reported by `get`, to the steps that use that secret only).
   */
  private readonly values = new Map<string, { updated_at: number; wrapped_key: Buffer; value: string } | { updated_at: number; wrapped_key: Buffer; error: UserError }>();
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly kek: () => SecretsKek,
    private readonly env: Readonly<Record<string, string>>,
    private readonly redactor: Redactor,
  ) {}

  /**
   * Make the secrets of `workflow` (and the global ones) current and decrypted. One that cannot be
   * decrypted (another master key, a moved or altered row) is remembered as such: `get` of that
   * secret throws, other secrets are unaffected.
   */
  async prepare(workflow: string): Promise<void> {
    // Concurrent steps share one refresh.
    this.refreshing ??= this.refresh().finally(() => (this.refreshing = undefined));
    await this.refreshing;
    this.decryptFor(workflow);
  }

  /**
   * `prepare` without reading the store's secrets generation: the secrets of `workflow` as of the
   * generation last read, which it returns (undefined: none read yet, or a read is under way; call
   * `prepare`). The caller confirms that generation against the store before it acts on what it
   * decided with them (a webhook's run is created only if the generation is unchanged in the run's
   * own transaction).
   */
  prepareAsOf(workflow: string): string | undefined {
    if (this.generation === undefined || this.refreshing) return undefined;
    this.decryptFor(workflow);
    return this.generation;
  }

  /** Decrypt what is new or changed of the global secrets and those of `workflow`, and teach the redactor. */
  private decryptFor(workflow: string): void {
    for (const scope of ['', workflow]) {
      const learned: Record<string, string> = {};
      for (const rec of this.rows.values()) {
        if (rec.scope !== scope) continue;
        const k = key(rec.scope, rec.name);
        const hit = this.values.get(k);
        if (hit && hit.updated_at === rec.updated_at && hit.wrapped_key.equals(rec.wrapped_key)) continue;
        try {
          const value = openSecret(this.kek(), rec.name, rec.scope, rec);
          this.values.set(k, { updated_at: rec.updated_at, wrapped_key: rec.wrapped_key, value });
          learned[rec.name] = value;
        } catch (e) {
          if (!(e instanceof UserError)) throw e;
          this.values.set(k, { updated_at: rec.updated_at, wrapped_key: rec.wrapped_key, error: e });
        }
      }
      this.redactor.learn(learned);
    }
  }

  private async refresh(): Promise<void> {
    const gen = await this.store.secretsGeneration();
    if (gen === this.generation) return;
    const rows = await this.store.listSecrets();
    this.rows = new Map(rows.map((r) => [key(r.scope, r.name), r]));
    for (const k of this.values.keys()) if (!this.rows.has(k)) this.values.delete(k);
    this.generation = gen;
  }

  /** Forget what was loaded: the next `prepare` reads the store again. */
  invalidate(): void {
    this.generation = undefined;
  }

  /**
   * The value of `${secrets.NAME}` for a step of `workflow`: the workflow's stored secret, the global
   * stored secret, then SWARM_SECRET_NAME. Only what `prepare` loaded is seen.
   */
  get(name: string, workflow?: string): string | undefined {
    for (const scope of workflow ? [workflow, ''] : ['']) {
      const hit = this.rows.has(key(scope, name)) ? this.values.get(key(scope, name)) : undefined;
      if (!hit) continue;
      // Not retried: the same row fails the same way.
      if ('error' in hit) throw new StepError(hit.error.code, hit.error.message, false, hit.error.context, { cause: hit.error });
      return hit.value;
    }
    return Object.prototype.hasOwnProperty.call(this.env, name) ? this.env[name] : undefined;
  }
}

function key(scope: string, name: string): string {
  return `${scope}\0${name}`;
}

