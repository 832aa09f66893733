/**
 * Imported bundles and age keys on SQLite (migration 29). An imported bundle's row is written in
 * the transaction that creates its run (src/branching/import.ts); an age key goes into the keys table
 * with `key_type = 'age'`, kept on a name conflict exactly as a signing key is.
 *
 * @example
 *   getImportedBundle((sql) => db.prepare(sql), runId)  // { run_id, bundle_sha256, bundle: <Buffer>, … } | undefined
 */
import type Database from 'better-sqlite3';
import type { SigningKeyInsert, SigningKeyRecord } from '../keys-types.js';
import { toImportedBundle, type ImportedBundleRecord } from '../share-types.js';
import { getSigningKey } from './keys-sql.js';

type Stmt = (sql: string) => Database.Statement;

export function insertAgeKey(stmt: Stmt, rec: SigningKeyRecord): SigningKeyInsert {
  const changes = stmt("INSERT INTO signing_keys (name, public_key, private_key_enc, created_at, key_type) VALUES (?, ?, ?, ?, 'age') ON CONFLICT (name) DO NOTHING").run(rec.name, rec.public_key, rec.private_key_enc, rec.created_at).changes;
  const stored = getSigningKey(stmt, rec.name);
  if (!stored) throw new Error(`key ${rec.name} vanished after its insert`);
  return { created: changes === 1, record: stored };
}

/** Insert an imported bundle's row; false when the run id has one already (nothing written). */
export function insertImportedBundle(stmt: Stmt, rec: ImportedBundleRecord): boolean {
  return (
    stmt('INSERT INTO imported_bundles (run_id, bundle_sha256, certificate_sha256, source_run_id, bundle, imported_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING').run(
      rec.run_id,
      rec.bundle_sha256,
      rec.certificate_sha256,
      rec.source_run_id,
      rec.bundle,
      rec.imported_at,
    ).changes === 1
  );
}

export function getImportedBundle(stmt: Stmt, runId: string): ImportedBundleRecord | undefined {
  const r = stmt('SELECT * FROM imported_bundles WHERE run_id = ?').get(runId) as Record<string, unknown> | undefined;
  return r ? toImportedBundle(r) : undefined;
}
