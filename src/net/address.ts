/**
 * Which IP addresses an agent may reach: a classifier of special-purpose ranges (loopback, private,
 * link-local, metadata, multicast, …, and the IPv6 forms that embed an IPv4 address) and the
 * deployment's allow-list (`network.allow` in swarm.yaml). Pure: no I/O, no DNS.
 *
 * @example
 *   classifyAddress('::ffff:7f00:1');                 // 'loopback (IPv4-mapped IPv6)'
 *   const allow = parseAllowList(['10.0.0.0/8', 'localhost']);
 *   isAllowedAddress(allow, '10.1.2.3');               // true
 */
import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** The parsed `network.allow` list: address ranges, and host names that are trusted as written. */
export interface AllowList {
  readonly cidrs: ReadonlyArray<readonly [Address, number]>;
  /** Lower-case host names (no trailing dot). A listed name is reached whatever it resolves to. */
  readonly hosts: ReadonlySet<string>;
  /** The entries as written, for messages. */
  readonly entries: readonly string[];
}

export const EMPTY_ALLOW_LIST: AllowList = Object.freeze({ cidrs: [], hosts: new Set<string>(), entries: [] });

/** What ipaddr.js calls a range, as a person reads it. Anything not listed reads as its own name. */
const RULE_NAMES: Readonly<Record<string, string>> = {
  unspecified: 'unspecified',
  broadcast: 'broadcast',
  multicast: 'multicast',
  linkLocal: 'link-local',
  loopback: 'loopback',
  carrierGradeNat: 'carrier-grade NAT (100.64.0.0/10)',
  private: 'private (RFC 1918)',
  reserved: 'reserved',
  uniqueLocal: 'unique-local (fc00::/7)',
  benchmarking: 'reserved for benchmarking',
  as112: 'reserved (AS112)',
  amt: 'reserved (AMT)',
  discard: 'discard-only (100::/64)',
  deprecated: 'deprecated site-local',
  orchid2: 'reserved (ORCHIDv2)',
};

/** Ranges ipaddr.js 1.x does not name (2.x names some of them); checked before its classification. */
const EXTRA_V4: ReadonlyArray<readonly [string, string]> = [
  ['198.18.0.0/15', 'reserved for benchmarking'],
  ['192.31.196.0/24', 'reserved (AS112)'],
  ['192.52.193.0/24', 'reserved (AMT)'],
  ['192.175.48.0/24', 'reserved (AS112)'],
];
const EXTRA_V6: ReadonlyArray<readonly [string, string]> = [
  ['100::/64', 'discard-only (100::/64)'],
  ['fec0::/10', 'deprecated site-local'],
  ['2001::/23', 'reserved (IETF protocol assignments)'],
  ['2001:db8::/32', 'reserved (documentation)'],
  ['3fff::/20', 'reserved (documentation)'],
  ['5f00::/16', 'reserved (SRv6 SIDs)'],
];
/** The parsed addresses and ranges, made at the first classification (not at every `swarm` start). */
let parsed:
  | {
      METADATA_V4: ipaddr.IPv4;
      METADATA_V6: ipaddr.IPv6;
      extraV4: ReadonlyArray<readonly [[ipaddr.IPv4, number], string]>;
      extraV6: ReadonlyArray<readonly [[ipaddr.IPv6, number], string]>;
    }
  | undefined;
const ranges = (): NonNullable<typeof parsed> =>
  (parsed ??= {
    METADATA_V4: ipaddr.IPv4.parse('169.254.169.254'),
    METADATA_V6: ipaddr.IPv6.parse('fd00:ec2::254'),
    extraV4: EXTRA_V4.map(([cidr, rule]) => [ipaddr.IPv4.parseCIDR(cidr), rule] as const),
    extraV6: EXTRA_V6.map(([cidr, rule]) => [ipaddr.IPv6.parseCIDR(cidr), rule] as const),
  });

/** Parse an address, or undefined. Accepts what the WHATWG URL parser leaves in `hostname` (IPv6 in brackets). */
export function parseAddress(text: string): Address | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  // A zone id (fe80::1%eth0) names a link-local interface: keep the address part to classify it.
  let noZone = bare.includes('%') ? bare.slice(0, bare.indexOf('%')) : bare;
  // IPv6 text may end in a dotted quad (`64:ff9b::10.0.0.1`); ipaddr.js 1.x reads only `::ffff:` so.
  const quad = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(noZone);
  if (quad && noZone.includes(':')) {
    const [b1, b2, b3, b4] = quad.slice(2).map(Number) as [number, number, number, number];
    if ([b1, b2, b3, b4].every((x) => x <= 255)) noZone = `${quad[1]}${((b1 << 8) | b2).toString(16)}:${((b3 << 8) | b4).toString(16)}`;
  }
  if (!ipaddr.isValid(noZone)) return undefined;
  // ipaddr.js 1.x also reads "127.1" and "0x7f.1" as IPv4 like inet_aton; only the 4-part dotted
  // decimal form and IPv6 are addresses here (the URL parser has already normalised the others).
  if (!noZone.includes(':') && !/^\d{1,3}(\.\d{1,3}){3}$/.test(noZone)) return undefined;
  return ipaddr.parse(noZone);
}

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, SIIT, 6to4, Teredo), if any. */
function embeddedV4(a: ipaddr.IPv6): { v4: ipaddr.IPv4; form: string } | undefined {
  const p = a.parts;
  const v4 = (hi: number, lo: number): ipaddr.IPv4 => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  const range = a.range();
  if (range === 'ipv4Mapped') return { v4: a.toIPv4Address(), form: 'IPv4-mapped IPv6' };
  if (range === 'rfc6145') return { v4: v4(p[6] ?? 0, p[7] ?? 0), form: 'IPv4-translated IPv6' };
  if (range === 'rfc6052') return { v4: v4(p[6] ?? 0, p[7] ?? 0), form: 'NAT64 IPv6' };
  if (range === '6to4') return { v4: v4(p[1] ?? 0, p[2] ?? 0), form: '6to4 IPv6' };
  // Teredo: the client's address is stored inverted in the last 32 bits.
  if (range === 'teredo') return { v4: v4((p[6] ?? 0) ^ 0xffff, (p[7] ?? 0) ^ 0xffff), form: 'Teredo IPv6' };
  // IPv4-compatible (deprecated, ::a.b.c.d): the first 96 bits are zero; :: and ::1 are themselves.
  if (p.slice(0, 6).every((x) => x === 0) && ((p[6] ?? 0) !== 0 || (p[7] ?? 0) > 1)) return { v4: v4(p[6] ?? 0, p[7] ?? 0), form: 'IPv4-compatible IPv6' };
  return undefined;
}

function classifyV4(a: ipaddr.IPv4): string | undefined {
  const { METADATA_V4, extraV4 } = ranges();
  if (a.match(METADATA_V4, 32)) return 'link-local (the cloud metadata service)';
  for (const [[net, bits], rule] of extraV4) if (a.match(net, bits)) return rule;
  const range = a.range();
  return range === 'unicast' ? undefined : (RULE_NAMES[range] ?? range);
}

/**
 * Why an address must not be reached by default (a short phrase such as `loopback` or
 * `private (RFC 1918)`), or undefined for an ordinary public unicast address. IPv6 forms that embed
 * an IPv4 address are judged by that address (`::ffff:127.0.0.1` is loopback).
 */
export function classifyAddress(address: string | Address): string | undefined {
  const a = typeof address === 'string' ? parseAddress(address) : address;
  if (!a) return 'not an IP address';
  if (a.kind() === 'ipv4') return classifyV4(a as ipaddr.IPv4);
  const v6 = a as ipaddr.IPv6;
  const inner = embeddedV4(v6);
  if (inner) {
    const rule = classifyV4(inner.v4);
    return rule ? `${rule} (${inner.form})` : undefined;
  }
  const { METADATA_V6, extraV6 } = ranges();
  if (v6.match(METADATA_V6, 128)) return 'unique-local (the cloud metadata service)';
  for (const [[net, bits], rule] of extraV6) if (v6.match(net, bits)) return rule;
  const range = v6.range();
  return range === 'unicast' ? undefined : (RULE_NAMES[range] ?? range);
}

/** Read `network.allow` entries: an address, a CIDR range (`10.0.0.0/8`, `fd00::/8`) or a host name. */
export function parseAllowList(entries: readonly string[]): AllowList | { error: string; index: number } {
  const cidrs: Array<readonly [Address, number]> = [];
  const hosts = new Set<string>();
  for (const [index, raw] of entries.entries()) {
    const entry = raw.trim();
    if (entry.includes('/')) {
      try {
        const [net, bits] = ipaddr.parseCIDR(entry);
        // `::ffff:10.0.0.0/104` is the IPv4 range 10.0.0.0/8.
        if (net.kind() === 'ipv6' && bits >= 96 && (net as ipaddr.IPv6).isIPv4MappedAddress()) cidrs.push([(net as ipaddr.IPv6).toIPv4Address(), bits - 96]);
        else cidrs.push([net, bits]);
      } catch {
        return { error: `'${raw}' is not a CIDR range (like 10.0.0.0/8 or fd00::/8)`, index };
      }
      continue;
    }
    const a = parseAddress(entry);
    if (a) {
      if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) cidrs.push([(a as ipaddr.IPv6).toIPv4Address(), 32]);
      else cidrs.push([a, a.kind() === 'ipv4' ? 32 : 128]);
      continue;
    }
    const host = entry.toLowerCase().replace(/\.$/, '');
    if (!/^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/.test(host)) return { error: `'${raw}' is neither an IP address, a CIDR range nor a host name`, index };
    hosts.add(host);
  }
  return Object.freeze({ cidrs, hosts, entries: [...entries] });
}

/** Is the address inside an allowed range? An IPv4-mapped address (`::ffff:10.1.2.3`) matches IPv4 ranges too. */
export function isAllowedAddress(allow: AllowList, address: string | Address): boolean {
  const a = typeof address === 'string' ? parseAddress(address) : address;
  if (!a) return false;
  const forms: Address[] = [a];
  if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) forms.push((a as ipaddr.IPv6).toIPv4Address());
  return forms.some((f) =>
    allow.cidrs.some(([net, bits]) => (f.kind() === 'ipv4' ? net.kind() === 'ipv4' && (f as ipaddr.IPv4).match(net as ipaddr.IPv4, bits) : net.kind() === 'ipv6' && (f as ipaddr.IPv6).match(net as ipaddr.IPv6, bits))),
  );
}

/** Is the host name allowed as written (`localhost`, `internal.example.com`)? */
export function isAllowedHost(allow: AllowList, hostname: string): boolean {
  return allow.hosts.has(hostname.toLowerCase().replace(/\.$/, ''));
}

/**
 * A loopback name or address: `localhost`, 127.0.0.0/8, ::1 (also as ::ffff:127.x), with or without
 * brackets.
 *
 * @example
 *   isLoopbackHost('127.0.0.1') // true
 *   isLoopbackHost('[::1]')     // true
 *   isLoopbackHost('10.0.0.5')  // false
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
