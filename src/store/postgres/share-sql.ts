/**
 * Imported bundles and age keys on PostgreSQL (migration 29); see the SQLite twin (sqlite/share-sql.ts).
 *
 * @example
 *   const created = (await store.write(INSERT_AGE_KEY_SQL, [name, recipient, sealed, now])) === 1;
 */
export const INSERT_AGE_KEY_SQL = "INSERT INTO signing_keys (name, public_key, private_key_enc, created_at, key_type) VALUES ($1, $2, $3, $4, 'age') ON CONFLICT (name) DO NOTHING";

export const INSERT_IMPORTED_BUNDLE_SQL =
  'INSERT INTO imported_bundles (run_id, bundle_sha256, certificate_sha256, source_run_id, bundle, imported_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id) DO NOTHING';

export const GET_IMPORTED_BUNDLE_SQL = 'SELECT * FROM imported_bundles WHERE run_id = $1';
