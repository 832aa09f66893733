/**
 * The identity check both stores make before migrating: every migration the store records must be
 * one this build knows, under the same name. The runners apply any version not recorded yet (so
 * branches that numbered theirs side by side meet cleanly), which makes a mismatch dangerous: a
 * store migrated by another build may record a version 10 whose tables this build's 10 never made,
 * and this build would run against a schema it does not understand. Refusing before anything is
 * written keeps the store as it was for the build that migrated it.
 *
 * @example
 *   checkMigrationIdentity([{ version: 6, name: 'triggers and leases' }], MIGRATIONS, '/srv/.swarm/swarm.db');
 *   // throws STORE_SCHEMA_MISMATCH if this build's migration 6 has another name
 */
import { ExitCode, StoreError } from '../core/errors.js';

/** A migration as the store records it in `schema_migrations`, or as a build defines it. */
export interface MigrationIdentity {
  version: number;
  name: string;
}

/**
 * Refuse a store whose recorded migrations this build does not know (`STORE_SCHEMA_NEWER`: a newer
 * or another build migrated it) or knows under another name (`STORE_SCHEMA_MISMATCH`: another
 * build's migration of the same number). Both exit 2, like every store that is not this build's to open.
 */
export function checkMigrationIdentity(
  recorded: readonly MigrationIdentity[],
  known: readonly MigrationIdentity[],
  location: string,
  /** The context field naming the store: `file` (SQLite) or `database` (PostgreSQL). */
  locationKey: 'file' | 'database' = 'database',
): void {
  const byVersion = new Map(known.map((m) => [m.version, m.name]));
  const supported = Math.max(0, ...known.map((m) => m.version));
  const sorted = [...recorded].sort((a, b) => a.version - b.version);
  const unknown = sorted.filter((m) => !byVersion.has(m.version));
  if (unknown.length > 0) {
    const list = unknown.map((m) => `${m.version} ('${m.name}')`).join(', ');
    const found = Math.max(...unknown.map((m) => m.version));
    throw new StoreError(
      'STORE_SCHEMA_NEWER',
      `the store at ${location} records schema migration${unknown.length > 1 ? 's' : ''} ${list} that this Swarm does not know (it knows versions up to ${supported}): ` +
        'a newer or another build of Swarm migrated it; open it with that build (or upgrade Swarm), or use another store',
      { [locationKey]: location, found, supported, versions: unknown.map((m) => m.version) },
      { exitCode: ExitCode.INVALID_INPUT },
    );
  }
  const renamed = sorted.filter((m) => byVersion.get(m.version) !== m.name);
  const first = renamed[0];
  if (first) {
    const expected = byVersion.get(first.version) ?? '';
    const more = renamed.length > 1 ? ` (and ${renamed.length - 1} more: ${renamed.slice(1).map((m) => m.version).join(', ')})` : '';
    throw new StoreError(
      'STORE_SCHEMA_MISMATCH',
      `the store at ${location} records schema migration ${first.version} as '${first.name}', but this Swarm's migration ${first.version} is '${expected}'${more}: ` +
        'another build of Swarm migrated it, and its tables may not be the ones this build expects; open it with that build, or use another store',
      { [locationKey]: location, version: first.version, recorded: first.name, expected, versions: renamed.map((m) => m.version) },
      { exitCode: ExitCode.INVALID_INPUT },
    );
  }
}
