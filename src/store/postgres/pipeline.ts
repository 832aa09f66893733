import { createHash } from 'node:crypto';
import type pg from 'pg';

/** One statement's result, as the store uses it. */
export interface StatementResult {
  rows: Array<Record<string, unknown>>;
  rowCount: number;
  /** The command tag (`UPDATE`, `COMMIT`, or `ROLLBACK` for a COMMIT of a failed transaction). */
  command: string;
}

/** A statement whose result is wanted later: `result` resolves when its round trip comes back. */
interface Queued {
  sql: string;
  onResult?: (r: StatementResult) => void;
}

/**
 * Several statements in one round trip. node-postgres sends one statement at a time and waits for
 * its answer before the next, and on a loopback connection each of those round trips costs more CPU
 * (two process wake-ups, socket writes and reads) than the statement itself. A transaction of ten
 * statements therefore cost ten round trips; here its statements are queued and sent together, as
 * one simple-protocol query string, whenever a result is needed (a read) and at COMMIT.
 *
 * The simple protocol takes no parameters, so every statement is prepared once per connection
 * (`PREPARE name AS text`, with the parameter types the server infers, exactly as for a parameterised
 * query) and executed as `EXECUTE name(literal, …)`: the server parses and plans each text once, and
 * every value travels as a quoted literal (arrays in PostgreSQL's array syntax).
 *
 * Prepared statements belong to the session and outlive a rolled-back transaction. A round trip
 * that fails may have run some of its PREPAREs and not others, so after a failure the set of
 * prepared names is read back from the server (`resync`) before the connection is used again.
 */
export class Pipeline {
  private queue: Queued[] = [];
  /** PREPAREs to send at the head of the next round trip, with the names they add. */
  private toPrepare: Array<{ name: string; sql: string }> = [];
  /** Round trips made (diagnostics). */
  roundTrips = 0;

  constructor(
    private readonly client: pg.ClientBase,
    /** Names of the statements prepared on this connection (kept with the connection). */
    private readonly prepared: Set<string>,
  ) {}

  /** The database's clock (ms) when the transaction began: known once the first round trip is back. */
  startedAt: number | undefined;
  /** The SQL that read it (statements that read the clock themselves use the same expression). */
  clockSql: string | undefined;

  /**
   * Queue BEGIN with the planner settings of these transactions, and the reading of the database's
   * clock (`clockSql`), in one statement after BEGIN. Every statement they run reaches its rows
   * through a key or a partial index, so a sequential scan is never the right plan at any table size;
   * but a prepared statement's plan is chosen once, and chosen while the tables are small (a fresh
   * database, the first minute of a deployment) it was a sequential scan and a hash join, kept until
   * autovacuum's first ANALYZE, with every commit reading whole tables meanwhile. With sequential
   * scans off, the plan built on the first EXECUTE is the index plan; `force_generic_plan` keeps it
   * from that first execution on (by default PostgreSQL plans the first five executions for their
   * values, then picks between plans by estimated cost, which is what went wrong). `set_config(…,
   * true)` is `SET LOCAL`: the settings end with the transaction.
   */
  begin(clockSql: string): void {
    this.clockSql = clockSql;
    this.defer('BEGIN ISOLATION LEVEL READ COMMITTED');
    this.defer(`${PLANNER_SETTINGS}, ${clockSql} AS now`, (r) => {
      this.startedAt = Number(r.rows[0]?.now);
    });
  }

  /** `EXECUTE name(literals)` for a parameterised statement, preparing it on this connection first if needed. */
  statement(text: string, values: readonly unknown[] = []): string {
    const name = statementName(text);
    if (!this.prepared.has(name) && !this.toPrepare.some((p) => p.name === name)) this.toPrepare.push({ name, sql: `PREPARE ${name} AS ${text}` });
    return values.length ? `EXECUTE ${name}(${values.map(literal).join(', ')})` : `EXECUTE ${name}`;
  }

  /**
   * Queue one statement (raw SQL, no `;`-separated list: results are matched to statements one to
   * one); `onResult` hears its result when the round trip that carries it returns.
   */
  defer(sql: string, onResult?: (r: StatementResult) => void): void {
    this.queue.push(onResult ? { sql, onResult } : { sql });
  }

  /** Queue a parameterised statement whose result nobody needs. */
  deferStatement(text: string, values: readonly unknown[] = []): void {
    this.defer(this.statement(text, values));
  }

  /** Run a parameterised statement after everything queued, in the same round trip; resolves to its result. */
  async query(text: string, values: readonly unknown[] = []): Promise<StatementResult> {
    let result: StatementResult = { rows: [], rowCount: 0, command: '' };
    this.defer(this.statement(text, values), (r) => {
      result = r;
    });
    await this.flush();
    return result;
  }

  /** Send what is queued. */
  async flush(): Promise<void> {
    if (this.queue.length === 0 && this.toPrepare.length === 0) return;
    const prepares = this.toPrepare;
    const queued = this.queue;
    this.toPrepare = [];
    this.queue = [];
    const text = [...prepares.map((p) => p.sql), ...queued.map((q) => q.sql)].join(';\n');
    this.roundTrips++;
    const raw = (await this.client.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
    const results = Array.isArray(raw) ? raw : [raw];
    for (const p of prepares) this.prepared.add(p.name);
    // One result per statement; a query string whose statements returned nothing may give fewer
    // result objects than statements only if the driver merged them, which node-postgres does not.
    const offset = prepares.length;
    queued.forEach((q, i) => {
      const r = results[offset + i];
      q.onResult?.({ rows: (r?.rows ?? []) as Array<Record<string, unknown>>, rowCount: r?.rowCount ?? 0, command: r?.command ?? '' });
    });
  }

  /** Forget what was queued (the transaction failed). */
  discard(): void {
    this.queue = [];
    this.toPrepare = [];
  }

  /** After a failed round trip: read back which of this store's statements the session really has. */
  async resync(): Promise<void> {
    const r = await this.client.query(`SELECT name FROM pg_prepared_statements WHERE name LIKE '${PREFIX}%'`);
    this.prepared.clear();
    for (const row of r.rows as Array<{ name: string }>) this.prepared.add(row.name);
  }
}

/** The planner settings of the store's transactions, as a select list (see Pipeline.begin). */
export const PLANNER_SETTINGS = "SELECT set_config('enable_seqscan', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true)";

/** SQL-level prepared statement names; node-postgres's own protocol-level names start with `s_`. */
const PREFIX = 'swp_';
const names = new Map<string, string>();

function statementName(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = `${PREFIX}${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
    names.set(text, name);
  }
  return name;
}

/**
 * A value as an SQL literal: NULL, a number, TRUE/FALSE, a quoted string, or an array in
 * PostgreSQL's array syntax inside a quoted string. The literal has no type of its own; EXECUTE
 * gives it the type of the prepared statement's parameter.
 */
export function literal(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`cannot send ${v} to PostgreSQL`);
    return String(v);
  }
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE';
  if (typeof v === 'string') return quote(v);
  if (Array.isArray(v)) return quote(arrayLiteral(v));
  throw new TypeError(`cannot send a value of type ${typeof v} to PostgreSQL as a literal`);
}

/**
 * A quoted string literal. The store's sessions run with `standard_conforming_strings = on` (set
 * when a connection opens), where a backslash in '…' is an ordinary character: only quotes double.
 */
function quote(s: string): string {
  // PostgreSQL text has no NUL; in a query string it would break the protocol message itself.
  if (s.includes('\0')) throw new TypeError('a text value with a NUL character cannot be stored in PostgreSQL');
  return `'${s.includes("'") ? s.replaceAll("'", "''") : s}'`;
}

const ARRAY_SPECIAL = /[\\"]/;

/** `{"a","b",NULL,3}`: elements double-quoted with `\` and `"` escaped, so any text survives. */
export function arrayLiteral(items: readonly unknown[]): string {
  const parts = items.map((x) => {
    if (x === null || x === undefined) return 'NULL';
    if (typeof x === 'number') {
      if (!Number.isFinite(x)) throw new TypeError(`cannot send ${x} to PostgreSQL`);
      return String(x);
    }
    if (typeof x === 'boolean') return x ? 'true' : 'false';
    if (typeof x === 'string') return ARRAY_SPECIAL.test(x) ? `"${x.replace(/[\\"]/g, (c) => `\\${c}`)}"` : `"${x}"`;
    throw new TypeError(`cannot send an array element of type ${typeof x} to PostgreSQL`);
  });
  return `{${parts.join(',')}}`;
}
