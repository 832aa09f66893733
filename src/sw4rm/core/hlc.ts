/**
 * A hybrid logical clock (Kulkarni et al., 2014): a physical time that never goes backwards, a
 * logical counter that orders events within one tick, and the node's id as the last tie-breaker.
 *
 * String form (an envelope's `hlc_timestamp`), the published SDKs' canonical format:
 *
 *     HLC:<wall_us>:<logical>:<node>        e.g.  HLC:1733380000123000:2:agent-7
 *
 * `wall_us` is Unix time in microseconds (this clock ticks in milliseconds, so it writes ms × 1000),
 * `logical` a non-negative integer, `node` the rest of the string (it may contain colons). For the
 * published Python SDK, whose stub writes plain Unix milliseconds (`"1733380000123"`), `parseHlc`
 * reads a bare integer as milliseconds with logical 0 and an empty node.
 *
 * @example
 *   const clock = new HybridLogicalClock({ node: 'agent-7' });
 *   const sent = clock.now();                     // local or send event
 *   clock.update('HLC:1733380000123000:2:agent-3'); // receive rule
 *   compareHlc(sent, clock.now()) < 0;            // true: time only moves forward
 */

/** One reading of a hybrid logical clock. */
export interface HlcTimestamp {
  /** Unix time in microseconds (the published string form's unit). */
  readonly wallUs: number;
  readonly logical: number;
  readonly node: string;
}

export interface HybridLogicalClockOptions {
  /** This node's id, written into every timestamp (an agent id, a host name). */
  node: string;
  /** Wall clock in milliseconds (default Date.now; tests pass their own). */
  now?: () => number;
}

const HLC_PREFIX = 'HLC:';

/** The string form: `HLC:<wall_us>:<logical>:<node>`. */
export function formatHlc(t: HlcTimestamp): string {
  return `${HLC_PREFIX}${t.wallUs}:${t.logical}:${t.node}`;
}

/**
 * Parse an `hlc_timestamp`; undefined when it is not one (the caller says where it came from).
 * Accepts the canonical `HLC:<wall_us>:<logical>:<node>` and a bare Unix-ms integer.
 */
export function parseHlc(s: string): HlcTimestamp | undefined {
  if (/^\d{1,16}$/.test(s)) {
    const ms = Number(s);
    return Number.isSafeInteger(ms * 1000) ? { wallUs: ms * 1000, logical: 0, node: '' } : undefined;
  }
  if (!s.startsWith(HLC_PREFIX)) return undefined;
  const rest = s.slice(HLC_PREFIX.length);
  const m = /^(\d{1,17}):(\d{1,15})(?::(.*))?$/s.exec(rest);
  if (!m) return undefined;
  const wallUs = Number(m[1]);
  const logical = Number(m[2]);
  if (!Number.isSafeInteger(wallUs) || !Number.isSafeInteger(logical)) return undefined;
  return { wallUs, logical, node: m[3] ?? '' };
}

/** The physical part in milliseconds (what tolerances are measured in). */
export function hlcPhysicalMs(t: HlcTimestamp): number {
  return Math.floor(t.wallUs / 1000);
}

/** Total order: wall time, then logical counter, then node id. Negative when a is earlier. */
export function compareHlc(a: HlcTimestamp | string, b: HlcTimestamp | string): number {
  const x = typeof a === 'string' ? mustParse(a) : a;
  const y = typeof b === 'string' ? mustParse(b) : b;
  if (x.wallUs !== y.wallUs) return x.wallUs < y.wallUs ? -1 : 1;
  if (x.logical !== y.logical) return x.logical < y.logical ? -1 : 1;
  return x.node < y.node ? -1 : x.node > y.node ? 1 : 0;
}

function mustParse(s: string): HlcTimestamp {
  const t = parseHlc(s);
  if (!t) throw new TypeError(`not a hybrid logical clock timestamp: ${JSON.stringify(s)} (expected HLC:<wall_us>:<logical>:<node>)`);
  return t;
}

/**
 * A hybrid logical clock. `now()` for a local or send event, `update(remote)` when a message
 * arrives: the next reading is after both the last local reading and the remote one, and as close to
 * the wall clock as that allows.
 */
export class HybridLogicalClock {
  readonly node: string;
  private readonly wallMs: () => number;
  private wallUs = 0;
  private logical = 0;

  constructor(options: HybridLogicalClockOptions) {
    this.node = options.node;
    this.wallMs = options.now ?? Date.now;
  }

  /** A new reading for a local or send event. */
  now(): HlcTimestamp {
    const pt = this.physicalUs();
    if (pt > this.wallUs) {
      this.wallUs = pt;
      this.logical = 0;
    } else {
      this.logical += 1;
    }
    return this.current();
  }

  /** `now()` in string form. */
  nowString(): string {
    return formatHlc(this.now());
  }

  /**
   * The receive rule: a reading after both this clock's last reading and `remote`. Throws a
   * TypeError for a string that is not a timestamp (validate envelopes first: `validateEnvelope`).
   */
  update(remote: HlcTimestamp | string): HlcTimestamp {
    const r = typeof remote === 'string' ? mustParse(remote) : remote;
    const pt = this.physicalUs();
    const wall = Math.max(this.wallUs, r.wallUs, pt);
    if (wall === this.wallUs && wall === r.wallUs) this.logical = Math.max(this.logical, r.logical) + 1;
    else if (wall === this.wallUs) this.logical += 1;
    else if (wall === r.wallUs) this.logical = r.logical + 1;
    else this.logical = 0;
    this.wallUs = wall;
    return this.current();
  }

  /** The last reading (without advancing the clock); wall 0 before the first. */
  peek(): HlcTimestamp {
    return this.current();
  }

  private current(): HlcTimestamp {
    return { wallUs: this.wallUs, logical: this.logical, node: this.node };
  }

  private physicalUs(): number {
    return Math.floor(this.wallMs()) * 1000;
  }
}
