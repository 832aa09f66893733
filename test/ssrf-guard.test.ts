/**
 * The SSRF guard: the address classifier over a table of addresses, and the guard against real HTTP
 * servers on loopback (refused by default, reached when allow-listed, redirects checked at every
 * hop), through the library API and the CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ManifestError } from '../src/core/errors.js';
import { resolveConfig } from '../src/config/config.js';
import { classifyAddress, isAllowedAddress, parseAllowList, type AllowList } from '../src/net/address.js';
import { NetworkGuard, NetworkRefusedError } from '../src/net/guard.js';
import { EXAMPLES, openProject, removeProject, runCli, tempProject, writeWorkflow } from './helpers/project.js';

describe('classifyAddress', () => {
  const table: Array<[string, string | undefined]> = [
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.1.2.3', 'private (RFC 1918)'],
    ['172.16.0.1', 'private (RFC 1918)'],
    ['172.31.255.255', 'private (RFC 1918)'],
    ['192.168.0.1', 'private (RFC 1918)'],
    ['100.64.0.1', 'carrier-grade NAT (100.64.0.0/10)'],
    ['169.254.169.254', 'link-local (the cloud metadata service)'],
    ['169.254.1.1', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['224.0.0.1', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['198.18.0.1', 'reserved for benchmarking'],
    ['8.8.8.8', undefined],
    ['172.32.0.1', undefined],
    ['100.128.0.1', undefined],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['fc00::1', 'unique-local (fc00::/7)'],
    ['fd12:3456::1', 'unique-local (fc00::/7)'],
    ['fd00:ec2::254', 'unique-local (the cloud metadata service)'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'reserved (documentation)'],
    ['::ffff:127.0.0.1', 'loopback (IPv4-mapped IPv6)'],
    ['::ffff:7f00:1', 'loopback (IPv4-mapped IPv6)'],
    ['::ffff:a9fe:a9fe', 'link-local (the cloud metadata service) (IPv4-mapped IPv6)'],
    ['::ffff:10.0.0.1', 'private (RFC 1918) (IPv4-mapped IPv6)'],
    ['::127.0.0.1', 'loopback (IPv4-compatible IPv6)'],
    ['::7f00:1', 'loopback (IPv4-compatible IPv6)'],
    ['64:ff9b::10.0.0.1', 'private (RFC 1918) (NAT64 IPv6)'],
    ['64:ff9b::7f00:1', 'loopback (NAT64 IPv6)'],
    ['2002:c0a8:0101::1', 'private (RFC 1918) (6to4 IPv6)'],
    ['[::1]', 'loopback'],
    ['::ffff:8.8.8.8', undefined],
    ['64:ff9b::808:808', undefined],
    ['2606:4700:4700::1111', undefined],
    ['example.com', 'not an IP address'],
  ];
  it.each(table)('%s → %s', (address, rule) => {
    expect(classifyAddress(address)).toBe(rule);
  });

  it('allow-lists match addresses, ranges and the IPv4-mapped form of an allowed IPv4 address', () => {
    const allow = parseAllowList(['127.0.0.1', '10.0.0.0/8', 'fd00::/8', 'Internal.Example.com.']) as AllowList;
    expect(isAllowedAddress(allow, '127.0.0.1')).toBe(true);
    expect(isAllowedAddress(allow, '127.0.0.2')).toBe(false);
    expect(isAllowedAddress(allow, '10.200.1.1')).toBe(true);
    expect(isAllowedAddress(allow, '::ffff:10.200.1.1')).toBe(true);
    expect(isAllowedAddress(allow, 'fd00::5')).toBe(true);
    expect(isAllowedAddress(allow, 'fc00::5')).toBe(false);
    expect([...allow.hosts]).toEqual(['internal.example.com']);
    expect(parseAllowList(['10.0.0.0/99'])).toEqual({ error: "'10.0.0.0/99' is not a CIDR range (like 10.0.0.0/8 or fd00::/8)", index: 0 });
    expect(parseAllowList(['ok.example', 'not a host!'])).toEqual({ error: "'not a host!' is neither an IP address, a CIDR range nor a host name", index: 1 });
  });

  it('a bad network.allow entry in swarm.yaml names the file, the entry and its line', () => {
    const dir = tempProject('name: t\nnetwork:\n  allow:\n    - 127.0.0.1\n    - "10.0.0.0/40"\n');
    try {
      expect(() => resolveConfig({ cwd: dir })).toThrow(ManifestError);
      expect(() => resolveConfig({ cwd: dir })).toThrow(`${join(dir, 'swarm.yaml')}:5: network.allow[1]: '10.0.0.0/40' is not a CIDR range`);
      expect(resolveConfig({ cwd: tempProject() }).network.allow.entries).toEqual([]);
    } finally {
      removeProject(dir);
    }
  });
});

/** A server on `host`: `/ok` answers, `/to?u=<url>` redirects there, `/loop` redirects to itself. */
async function serve(host: string): Promise<{ server: Server; base: string; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/to') res.writeHead(302, { location: url.searchParams.get('u') ?? '/' }).end();
    else if (url.pathname === '/loop') res.writeHead(307, { location: '/loop' }).end();
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok from ${host}`);
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return { server, base: `http://${host}:${(server.address() as AddressInfo).port}`, hits };
}

async function refusal(p: Promise<unknown>): Promise<NetworkRefusedError> {
  const e = await p.then(
    () => new Error('the request was not refused'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(NetworkRefusedError);
  return e as NetworkRefusedError;
}

describe('NetworkGuard against local servers', () => {
  let a: Awaited<ReturnType<typeof serve>>;
  let b: Awaited<ReturnType<typeof serve>>;
  const guards: NetworkGuard[] = [];
  const guard = (allow: string[] = []): NetworkGuard => {
    const g = new NetworkGuard({ allow });
    guards.push(g);
    return g;
  };
  beforeAll(async () => {
    a = await serve('127.0.0.1');
    // A second loopback address (Linux routes all of 127/8 to lo): a redirect target that is not allowed.
    b = await serve('127.0.0.2');
  });
  afterAll(async () => {
    await Promise.all(guards.map((g) => g.close()));
    for (const s of [a, b]) {
      s.server.closeAllConnections();
      await new Promise((r) => s.server.close(r));
    }
  });

  it('refuses loopback by default, before any connection, with the URL, the address and the rule', async () => {
    const e = await refusal(guard().fetch(new URL(`${a.base}/ok`), { method: 'GET' }));
    expect(e.message).toBe(`refused ${a.base}/ok (127.0.0.1 is loopback); allow it with network.allow in swarm.yaml`);
    expect(e.code).toBe('NETWORK_REFUSED');
    expect(e.exitCode).toBe(6);
    expect(e.context).toMatchObject({ url: `${a.base}/ok`, address: '127.0.0.1', rule: 'loopback' });
    expect(a.hits).toEqual([]);
  });

  it('reaches an allow-listed address or range', async () => {
    for (const allow of [['127.0.0.1'], ['127.0.0.0/8'], ['::ffff:127.0.0.1']]) {
      const res = await guard(allow).fetch(new URL(`${a.base}/ok`), { method: 'GET' });
      expect(await res.text()).toBe('ok from 127.0.0.1');
    }
  });

  it('decimal, hex, octal and IPv4-mapped spellings of loopback are the same address: refused, or reached when allowed', async () => {
    const port = new URL(a.base).port;
    const before = a.hits.length;
    for (const host of ['2130706433', '0x7f000001', '0177.0.0.1', '127.1', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '[::127.0.0.1]']) {
      const url = new URL(`http://${host}:${port}/ok`);
      const e = await refusal(guard().fetch(url, { method: 'GET' }));
      expect(e.context.rule).toMatch(/^loopback/);
    }
    expect(a.hits.length).toBe(before);
    // The URL parser turned the decimal form into 127.0.0.1: with loopback allowed, the server answers.
    const res = await guard(['127.0.0.1']).fetch(new URL(`http://2130706433:${port}/ok`), { method: 'GET' });
    expect(await res.text()).toBe('ok from 127.0.0.1');
  });

  it('a host name that resolves to loopback (localhost) is refused when connecting, unless the name or its address is allowed', async () => {
    const url = new URL(`http://localhost:${new URL(a.base).port}/ok`);
    const e = await refusal(guard().fetch(url, { method: 'GET' }));
    expect(e.message).toMatch(new RegExp(`^refused ${url.href.replace(/[.?]/g, '\\$&')} \\(localhost resolves to (127\\.0\\.0\\.1|::1), which is loopback\\); allow it with network.allow in swarm.yaml$`));
    expect((await guard(['localhost']).fetch(url, { method: 'GET' })).status).toBe(200);
  });

  it('redirects are followed and each hop is checked: an allowed server redirecting to a refused address is refused at that hop', async () => {
    const g = guard(['127.0.0.1']);
    const ok = await g.fetch(new URL(`${a.base}/to?u=${encodeURIComponent(`${a.base}/ok`)}`), { method: 'GET' });
    expect([ok.status, await ok.text()]).toEqual([200, 'ok from 127.0.0.1']);

    const target = `${b.base}/ok`;
    const e = await refusal(g.fetch(new URL(`${a.base}/to?u=${encodeURIComponent(target)}`), { method: 'GET' }));
    expect(e.message).toBe(`refused ${target} (127.0.0.2 is loopback, a redirect from ${a.base}/to?u=${encodeURIComponent(target)}); allow it with network.allow in swarm.yaml`);
    expect(b.hits).toEqual([]);
    // Redirects to a decimal spelling of a refused address are caught the same way.
    await refusal(g.fetch(new URL(`${a.base}/to?u=${encodeURIComponent(`http://2130706434:${new URL(b.base).port}/ok`)}`), { method: 'GET' }));
    expect(b.hits).toEqual([]);
  });

  it('stops after 5 redirects', async () => {
    const e = await refusal(guard(['127.0.0.1']).fetch(new URL(`${a.base}/loop`), { method: 'GET' }));
    expect(e.message).toBe(`refused ${a.base}/loop: more than 5 redirects`);
  });

  it('the metadata address is refused without any connection being tried (it would time out here)', async () => {
    const started = Date.now();
    const e = await refusal(guard().fetch(new URL('http://169.254.169.254/latest/meta-data/'), { method: 'GET', signal: AbortSignal.timeout(5000) }));
    expect(e.context.rule).toBe('link-local (the cloud metadata service)');
    expect(Date.now() - started).toBeLessThan(1000);
    await refusal(guard().fetch(new URL('http://[fd00:ec2::254]/'), { method: 'GET', signal: AbortSignal.timeout(5000) }));
  });
});

describe('http-fetch through the engine and the CLI', () => {
  let srv: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    srv = await serve('127.0.0.1');
  });
  afterAll(async () => {
    srv.server.closeAllConnections();
    await new Promise((r) => srv.server.close(r));
  });

  const workflow = 'name: grab\nversion: 1.0.0\nsteps:\n  - id: f\n    agent: http-fetch@1.0.0\n    inputs: { url: "${trigger.url}" }\n    retry: { max_attempts: 3, backoff_ms: 10 }\n';

  it('a refused URL fails the step once (not retried) with the rule; allow-listed, the same run works', async () => {
    const dir = tempProject();
    const swarm = await openProject(dir);
    try {
      await swarm.registerAgent(join(EXAMPLES, 'agents', 'http-fetch'));
      await swarm.registerWorkflow(writeWorkflow(dir, 'grab', workflow));
      const { run, steps } = await swarm.runToCompletion(await swarm.startRun('grab', { url: `${srv.base}/ok` }));
      expect(run.status).toBe('failed');
      expect(steps[0]?.attempt).toBe(1);
      expect(steps[0]?.error).toBe(`http-fetch: refused ${srv.base}/ok (127.0.0.1 is loopback); allow it with network.allow in swarm.yaml`);
      expect(srv.hits).toEqual([]);
    } finally {
      await swarm.close();
    }
    const allowed = await openProject(dir, { config: { ...resolveConfig({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') } }), network: { allow: parseAllowList(['127.0.0.1']) as AllowList } } });
    try {
      const { run, steps } = await allowed.runToCompletion(await allowed.startRun('grab', { url: `${srv.base}/ok` }));
      expect(run.status).toBe('completed');
      expect(steps[0]?.outputs).toMatchObject({ status: 200, body: 'ok from 127.0.0.1' });
    } finally {
      await allowed.close();
      removeProject(dir);
    }
  });

  it('swarm run exits 6 (policy) when a step is refused, and names the rule', async () => {
    const dir = tempProject();
    try {
      writeWorkflow(dir, 'grab', workflow);
      expect((await runCli(['agent', 'register', join(EXAMPLES, 'agents', 'http-fetch')], dir)).code).toBe(0);
      expect((await runCli(['workflow', 'register', join(dir, 'workflows', 'grab')], dir)).code).toBe(0);
      const r = await runCli(['run', 'grab', JSON.stringify({ url: 'http://0x7f000001:1/' })], dir);
      expect(r.code).toBe(6);
      expect(r.stderr).toContain("in step 'f': http-fetch: refused http://127.0.0.1:1/ (127.0.0.1 is loopback); allow it with network.allow in swarm.yaml");
    } finally {
      removeProject(dir);
    }
  });
});
