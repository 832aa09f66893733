/**
 * Signing keys on SQLite (migration 27). The insert keeps an existing key of the same name (the
 * primary key decides a race), so two workers creating one name end with one key.
 *
 * @example
 *   insertSigningKey((sql) => db.prepare(sql), rec)  // { created: true, record: rec }
 */
import type Database from 'better-sqlite3';
import { toSigningKeyRecord, type SigningKeyInsert, type SigningKeyRecord } from '../keys-types.js';

type Stmt = (sql: string) => Database.Statement;

export function insertSigningKey(stmt: Stmt, rec: SigningKeyRecord): SigningKeyInsert {
  const changes = stmt('INSERT INTO signing_keys (name, public_key, private_key_enc, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING').run(rec.name, rec.public_key, rec.private_key_enc, rec.created_at).changes;
  const stored = getSigningKey(stmt, rec.name);
  if (!stored) throw new Error(`signing key ${rec.name} vanished after its insert`);
  return { created: changes === 1, record: stored };
}

export function getSigningKey(stmt: Stmt, name: string): SigningKeyRecord | undefined {
  const r = stmt('SELECT * FROM signing_keys WHERE name = ?').get(name) as Record<string, unknown> | undefined;
  return r ? toSigningKeyRecord(r) : undefined;
}

export function listSigningKeys(stmt: Stmt): SigningKeyRecord[] {
  return (stmt('SELECT * FROM signing_keys ORDER BY name').all() as Array<Record<string, unknown>>).map(toSigningKeyRecord);
}

export function updateSigningKeyEnc(stmt: Stmt, name: string, privateKeyEnc: string): boolean {
  return stmt('UPDATE signing_keys SET private_key_enc = ? WHERE name = ?').run(privateKeyEnc, name).changes === 1;
}
