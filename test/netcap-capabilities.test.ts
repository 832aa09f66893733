/**
 * Network capabilities (`net:<host>:<port>`) and the capability envelope (`state_cap`, `net_cap`):
 * parsing, canonical encoding, decode refusals with their named codes, MACs, and summaries that
 * never show the token or a state secret. Pure: no processes, no sockets.
 */
import { describe, expect, it } from 'vitest';
import { parseAgentManifest } from '../src/core/manifest/agent.js';
import { ManifestError } from '../src/core/errors.js';
import {
  CapabilityErrorCode,
  decodeEnvelope,
  destinationOf,
  encodeEnvelope,
  issueNetCap,
  parseNetCapabilities,
  parseNetCapability,
  summarizeEnvelope,
  tokenDigest,
  validateEnvelope,
} from '../src/sandbox/capabilities.js';
import { decide } from '../src/sandbox/net-proxy.js';

const T0 = '2026-01-01T00:00:00.000Z';
const T1 = '2026-01-01T01:00:00.000Z';
const inside = new Date('2026-01-01T00:30:00.000Z');

function codeOf(f: () => unknown): { code: string; exitCode: number } {
  try {
    f();
  } catch (e) {
    return { code: (e as { code: string }).code, exitCode: (e as { exitCode: number }).exitCode };
  }
  throw new Error('did not throw');
}

describe('net:<host>:<port>', () => {
  it('parses names (lower-cased, trailing dot dropped), IPv4 and bracketed IPv6 literals', () => {
    expect(parseNetCapability('net:API.Example.com.:443')).toEqual({ host: 'api.example.com', port: 443, kind: 'name' });
    expect(parseNetCapability('net:127.0.0.1:9000')).toEqual({ host: '127.0.0.1', port: 9000, kind: 'ipv4' });
    expect(parseNetCapability('net:[::0001]:8080')).toEqual({ host: '::1', port: 8080, kind: 'ipv6' });
    expect(parseNetCapability('net:localhost:1')).toEqual({ host: 'localhost', port: 1, kind: 'name' });
    expect(destinationOf({ host: '::1', port: 80 })).toBe('[::1]:80');
  });

  it.each([
    ['net:example.com', /expected net:<host>:<port>/],
    ['net:example.com:0', /port '0' must be a number from 1 to 65535/],
    ['net:example.com:65536', /port '65536'/],
    ['net:example.com:http', /port 'http'/],
    ['net:*.example.com:443', /wildcards are not supported/],
    ['net:::1:80', /IPv6 address in brackets/],
    ['net:[example.com]:80', /not an IPv6 address/],
    ['net:exa_mple.com:80', /neither a host name/],
    ['net:1.2.3.999:80', /neither a host name/],
    ['net::80', /expected net:<host>:<port>/],
  ])('refuses %s', (text, problem) => {
    const r = parseNetCapability(text);
    expect('error' in r && r.error).toMatch(problem);
  });

  it('parseNetCapabilities keeps only net: entries, without duplicates, and throws CAPABILITY_INVALID (exit 2)', () => {
    expect(parseNetCapabilities(['network', 'net:a.example:1', 'net:A.example:1', 'net:[::1]:2'])).toEqual([
      { host: 'a.example', port: 1, kind: 'name' },
      { host: '::1', port: 2, kind: 'ipv6' },
    ]);
    expect(codeOf(() => parseNetCapabilities(['net:x']))).toEqual({ code: 'CAPABILITY_INVALID', exitCode: 2 });
  });

  it('agent.yaml: bad entries, sandbox on a non-process agent and net: with sandbox: none name the file, field and line', () => {
    const file = 'agents/f/agent.yaml';
    const base = 'name: f\nversion: 1.0.0\nruntime: {type: node, entry: a.js}\n';
    expect(parseAgentManifest(`${base}sandbox: bwrap\ncapabilities: [network, 'net:127.0.0.1:9000']\n`, file)).toMatchObject({ sandbox: 'bwrap', capabilities: ['network', 'net:127.0.0.1:9000'] });
    const msg = (yaml: string): string => {
      try {
        parseAgentManifest(yaml, file);
      } catch (e) {
        expect(e).toBeInstanceOf(ManifestError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(msg(`${base}capabilities:\n  - net:example.com:99999\n`)).toMatch(/agents\/f\/agent\.yaml:5: capabilities\[0\]: 'net:example.com:99999': port '99999' must be a number from 1 to 65535/);
    expect(msg(`${base}capabilities: ['NET:example.com:80']\n`)).toMatch(/capabilities\[0\]: 'NET:example.com:80': write the prefix in lower case/);
    expect(msg(`${base}sandbox: docker\n`)).toMatch(/agents\/f\/agent\.yaml:4: sandbox: must be one of "none", "bwrap"/);
    expect(msg(`${base}sandbox: none\ncapabilities: ['net:example.com:443']\n`)).toMatch(/:4: capabilities\[0\]: 'net:example.com:443' is enforced only inside the bwrap sandbox: remove 'sandbox: none'/);
    const builtin = 'name: f\nversion: 1.0.0\nruntime: {type: builtin, entry: echo}\n';
    expect(msg(`${builtin}sandbox: bwrap\n`)).toMatch(/sandbox: is only for process agents/);
    expect(msg(`${builtin}capabilities: ['net:example.com:443']\n`)).toMatch(/capabilities\[0\]: network capabilities are for process agents/);
  });
});

describe('the proxy decision', () => {
  const caps = parseNetCapabilities(['net:127.0.0.1:9000', 'net:api.example.com:443', 'net:[::1]:9000']);
  const resolve = (host: string): Promise<string[]> => Promise.resolve(host === 'localhost' ? ['::1', '127.0.0.1'] : host === 'evil.example' ? ['10.0.0.1'] : []);

  it('passes exactly the declared pairs, names as written, and names that resolve to a declared address', async () => {
    expect(await decide(caps, '127.0.0.1', 9000, resolve)).toEqual({ allowed: true, connectTo: '127.0.0.1' });
    expect(await decide(caps, 'API.example.com.', 443, resolve)).toEqual({ allowed: true, connectTo: 'api.example.com' });
    expect(await decide(caps, '[::ffff:127.0.0.1]', 9000, resolve)).toEqual({ allowed: true, connectTo: '127.0.0.1' });
    expect(await decide(caps, '[::1]', 9000, resolve)).toEqual({ allowed: true, connectTo: '::1' });
    expect(await decide(caps, 'localhost', 9000, resolve)).toEqual({ allowed: true, connectTo: '::1' });
  });

  it('refuses other ports, other hosts and names resolving elsewhere, saying what is allowed', async () => {
    const no = await decide(caps, '127.0.0.1', 9001, resolve);
    expect(no).toEqual({ allowed: false, reason: "127.0.0.1:9001 is not among the agent's net capabilities (127.0.0.1:9000, api.example.com:443, [::1]:9000)" });
    expect((await decide(caps, 'evil.example', 9000, resolve)).allowed).toBe(false);
    expect((await decide(caps, 'sub.api.example.com', 443, resolve)).allowed).toBe(false);
    expect((await decide(caps, '127.0.0.2', 9000, resolve)).allowed).toBe(false);
    expect((await decide([], '127.0.0.1', 9000, resolve)).allowed).toBe(false);
  });
});

describe('the capability envelope', () => {
  const net = { kind: 'net_cap' as const, issued_at: T0, expires_at: T1, subject: { run_id: 'r1', step_id: 'fetch', attempt: 1 }, net: { destinations: ['127.0.0.1:9000', 'api.example.com:443'] } };
  const state = { kind: 'state_cap' as const, issued_at: T0, expires_at: T1, state: { state_id: 'run-7', ratchet_step: 2, secret: 'c2VjcmV0LWtleS1tYXRlcmlhbA' } };

  it('encodes versioned, base64url canonical JSON: the same content gives the same token whatever the key order', () => {
    const a = encodeEnvelope(net);
    const b = encodeEnvelope({ net: net.net, subject: net.subject, expires_at: T1, issued_at: T0, kind: 'net_cap' });
    expect(a).toBe(b);
    expect(a).toMatch(/^swcap1\.[A-Za-z0-9_-]+$/);
    expect(JSON.parse(Buffer.from(a.slice(7), 'base64url').toString())).toEqual({ v: 1, ...net });
    expect(decodeEnvelope(a, { now: inside, kind: 'net_cap' })).toEqual({ v: 1, ...net });
    expect(decodeEnvelope(encodeEnvelope(state), { now: inside })).toEqual({ v: 1, ...state });
  });

  it('refuses to encode an invalid envelope (exit 2, every problem named)', () => {
    expect(() => encodeEnvelope({ ...net, expires_at: T0 })).toThrow(/expires_at must be after issued_at/);
    expect(() => encodeEnvelope({ ...net, net: { destinations: ['example.com'] } })).toThrow(/'example.com' is not host:port/);
    expect(() => encodeEnvelope({ ...net, net: { destinations: ['Example.com:80'] } })).toThrow(/not in canonical form \('example.com:80'\)/);
    expect(() => encodeEnvelope({ kind: 'state_cap', issued_at: T0, expires_at: T1 })).toThrow(/state is required for a state_cap/);
    expect(() => encodeEnvelope({ ...state, state: { state_id: '', ratchet_step: -1 } })).toThrow(/state_id must be a non-empty string; state.ratchet_step must be an integer ≥ 0/);
    expect(validateEnvelope({ v: 2, kind: 'x', issued_at: 'yesterday', expires_at: T1, extra: 1 })).toEqual([
      "unknown field 'extra'",
      'v must be 1',
      'kind must be one of net_cap, state_cap',
      'issued_at must be an ISO 8601 UTC time (like 2026-01-01T00:00:00.000Z)',
    ]);
  });

  it('decode refuses malformed, unknown-version, non-canonical, wrong-kind, expired and not-yet-valid tokens with named codes', () => {
    const token = encodeEnvelope(net);
    const payload = (o: unknown): string => `swcap1.${Buffer.from(JSON.stringify(o)).toString('base64url')}`;
    expect(codeOf(() => decodeEnvelope('bearer xyz'))).toEqual({ code: CapabilityErrorCode.MALFORMED, exitCode: 2 });
    expect(codeOf(() => decodeEnvelope('swcap1.!!!'))).toEqual({ code: CapabilityErrorCode.MALFORMED, exitCode: 2 });
    expect(codeOf(() => decodeEnvelope('swcap1.bm90IGpzb24'))).toEqual({ code: CapabilityErrorCode.MALFORMED, exitCode: 2 });
    expect(codeOf(() => decodeEnvelope(`swcap2.${token.slice(7)}`))).toEqual({ code: CapabilityErrorCode.VERSION, exitCode: 2 });
    expect(codeOf(() => decodeEnvelope(payload({ kind: 'net_cap', v: 1, issued_at: T0, expires_at: T1, net: { destinations: [] } }), { now: inside }))).toEqual({ code: CapabilityErrorCode.MALFORMED, exitCode: 2 });
    expect(codeOf(() => decodeEnvelope(token, { now: inside, kind: 'state_cap' }))).toEqual({ code: CapabilityErrorCode.KIND, exitCode: 6 });
    expect(codeOf(() => decodeEnvelope(token, { now: new Date(T1) }))).toEqual({ code: CapabilityErrorCode.EXPIRED, exitCode: 6 });
    expect(codeOf(() => decodeEnvelope(token, { now: new Date('2025-12-31T23:00:00.000Z') }))).toEqual({ code: CapabilityErrorCode.NOT_YET_VALID, exitCode: 6 });
    expect(() => decodeEnvelope(token, { now: new Date(T1) })).toThrow('capability token (net_cap) expired at 2026-01-01T01:00:00.000Z');
  });

  it('a MAC binds the token to the key: altered, unsigned or other-key tokens are refused', () => {
    const key = Buffer.alloc(32, 7);
    const signed = encodeEnvelope(net, { key });
    expect(signed.split('.')).toHaveLength(3);
    expect(decodeEnvelope(signed, { now: inside, key }).net?.destinations).toEqual(net.net.destinations);
    const widened = encodeEnvelope({ ...net, net: { destinations: [...net.net.destinations, 'evil.example:443'] } });
    expect(codeOf(() => decodeEnvelope(`${widened}.${signed.split('.')[2]}`, { now: inside, key }))).toEqual({ code: CapabilityErrorCode.MAC_INVALID, exitCode: 6 });
    expect(codeOf(() => decodeEnvelope(encodeEnvelope(net), { now: inside, key }))).toEqual({ code: CapabilityErrorCode.MAC_MISSING, exitCode: 6 });
    expect(codeOf(() => decodeEnvelope(signed, { now: inside, key: Buffer.alloc(32, 8) }))).toEqual({ code: CapabilityErrorCode.MAC_INVALID, exitCode: 6 });
  });

  it('summaries name kind, subject, destinations, expiry and a digest prefix, never the token, MAC or state secret', () => {
    const key = Buffer.alloc(32, 1);
    const token = encodeEnvelope(net, { key });
    const s = summarizeEnvelope(token);
    expect(s).toBe(`net_cap v1 run r1/fetch#1 → 127.0.0.1:9000, api.example.com:443; expires ${T1}; token sha256:${tokenDigest(token).slice(0, 8)}`);
    expect(s).not.toContain(token.split('.')[1]);
    expect(s).not.toContain(token.split('.')[2]);
    const st = summarizeEnvelope(encodeEnvelope(state));
    expect(st).toMatch(/^state_cap v1 state run-7 step 2 secret \[redacted\]; expires /);
    expect(st).not.toContain(state.state.secret);
    expect(summarizeEnvelope('swcap1.garbage!')).toMatch(/^capability token \(undecodable: CAP_MALFORMED\); token sha256:[0-9a-f]{8}$/);
    // An expired token is still described (logs outlive tokens).
    expect(summarizeEnvelope(encodeEnvelope(net))).toContain('net_cap v1');
  });

  it('issueNetCap: an attempt’s destinations, valid for its timeout plus a minute', () => {
    const now = new Date(T0);
    const token = issueNetCap(parseNetCapabilities(['net:[::1]:80', 'net:Example.com:443']), { run_id: 'r', step_id: 's', attempt: 2 }, 300_000, { now });
    const e = decodeEnvelope(token, { now, kind: 'net_cap' });
    expect(e.net?.destinations).toEqual(['[::1]:80', 'example.com:443']);
    expect(Date.parse(e.expires_at) - Date.parse(e.issued_at)).toBe(360_000);
  });
});
