/**
 * Signing keys on PostgreSQL (migration 27). The insert keeps an existing key of the same name (the
 * primary key decides a race: `ON CONFLICT DO NOTHING`), so two workers creating one name end with
 * one key; the caller reads back whichever won.
 *
 * @example
 *   const created = (await store.write(INSERT_SIGNING_KEY_SQL, [name, pub, enc, now])) === 1;
 */
export const INSERT_SIGNING_KEY_SQL = 'INSERT INTO signing_keys (name, public_key, private_key_enc, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING';

export const GET_SIGNING_KEY_SQL = 'SELECT * FROM signing_keys WHERE name = $1';

export const LIST_SIGNING_KEYS_SQL = 'SELECT * FROM signing_keys ORDER BY name';

export const UPDATE_SIGNING_KEY_ENC_SQL = 'UPDATE signing_keys SET private_key_enc = $2 WHERE name = $1';
