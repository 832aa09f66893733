/**
 * The policy proxy on its own (a real Unix socket, real loopback servers), the bridge failing
 * closed when no proxy answers, which driver an agent gets, and the cost of a proxied connection
 * (printed: direct, through the proxy, and through bridge + proxy from inside a sandbox).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNetCapabilities } from '../src/sandbox/capabilities.js';
import { BRIDGE_PORT, proxyEnvironment } from '../src/sandbox/net-bridge.js';
import { startNetProxy, type NetConnectionRecord, type NetProxy } from '../src/sandbox/net-proxy.js';
import { bubblewrapSandbox, noneSandbox, probeBubblewrap, sandboxForAgent, sandboxWarnings } from '../src/sandbox/sandbox.js';

const bwrap = probeBubblewrap();
let dir: string;
let server: Server;
let port: number;
let closedPort: number;
let lastHeaders: IncomingHttpHeaders = {};
let proxy: NetProxy;
const records: NetConnectionRecord[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'netcap-proxy-'));
  server = createServer((req, res) => {
    lastHeaders = req.headers;
    res.end(`hello ${req.url}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
  // A port nothing listens on (bound, then released).
  const tmp = createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
  closedPort = (tmp.address() as { port: number }).port;
  await new Promise((r) => tmp.close(r));
  proxy = await startNetProxy({ socketPath: join(dir, 'p.sock'), allow: parseNetCapabilities([`net:127.0.0.1:${port}`, `net:127.0.0.1:${closedPort}`]), onConnection: (r) => records.push(r) });
});

afterAll(async () => {
  await proxy?.close();
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Send raw bytes to the proxy socket; resolve with everything it answered once it closes. */
function rawProxy(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(join(dir, 'p.sock'));
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('end', () => {
      s.end();
      resolve(out);
    });
    s.on('error', reject);
    s.write(bytes);
  });
}

const recordFor = async (pred: (r: NetConnectionRecord) => boolean): Promise<NetConnectionRecord> => {
  for (let i = 0; i < 100; i++) {
    const r = records.find(pred);
    if (r) return r;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error('no such record');
};

describe('the policy proxy', () => {
  it('forwards an absolute-form request as origin-form with Connection: close, and reports bytes', async () => {
    const out = await rawProxy(`GET http://127.0.0.1:${port}/abs?q=1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive\r\nProxy-Authorization: Basic eA==\r\n\r\n`);
    expect(out).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(out).toMatch(/hello \/abs\?q=1$/);
    expect(lastHeaders).toMatchObject({ connection: 'close', host: `127.0.0.1:${port}` });
    expect(lastHeaders).not.toHaveProperty('proxy-authorization');
    expect(lastHeaders).not.toHaveProperty('proxy-connection');
    const r = await recordFor((x) => x.method === 'GET' && x.allowed);
    expect(r).toMatchObject({ destination: '127.0.0.1', port, address: '127.0.0.1', bytes_in: Buffer.byteLength(out) });
    expect(r.bytes_out).toBeGreaterThan(40);
  });

  it('tunnels CONNECT to a declared destination', async () => {
    const out = await rawProxy(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\nGET /tunnel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(out).toMatch(/^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    expect(out).toMatch(/hello \/tunnel$/);
    const r = await recordFor((x) => x.method === 'CONNECT' && x.allowed && x.port === port);
    expect(r.bytes_out).toBe(Buffer.byteLength('GET /tunnel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    expect(r.bytes_in).toBe(Buffer.byteLength(out) - Buffer.byteLength('HTTP/1.1 200 Connection Established\r\n\r\n'));
  });

  it('refuses undeclared destinations with 403 (recorded), malformed requests with 400, unreachable declared ones with 502', async () => {
    const refused = await rawProxy(`CONNECT 127.0.0.1:${port + 1 === closedPort ? port + 2 : port + 1} HTTP/1.1\r\n\r\n`);
    expect(refused).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n[\s\S]*X-Swarm-Net: refused[\s\S]*is not among the agent's net capabilities/);
    expect(await recordFor((x) => !x.allowed && x.method === 'CONNECT')).toMatchObject({ allowed: false, bytes_in: 0, bytes_out: 0 });
    const other = await rawProxy('GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n');
    expect(other).toMatch(/^HTTP\/1\.1 403 /);
    expect(await recordFor((x) => x.destination === 'example.com')).toMatchObject({ port: 80, allowed: false });
    expect(await rawProxy('GET /origin-form HTTP/1.1\r\nHost: x\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 [\s\S]*this is a proxy/);
    expect(await rawProxy('CONNECT https://x HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 [\s\S]*CONNECT needs host:port/);
    expect(await rawProxy(`GET https://127.0.0.1:${port}/ HTTP/1.1\r\n\r\n`)).toMatch(/^HTTP\/1\.1 400 [\s\S]*use CONNECT for https:/);
    expect(await rawProxy(`CONNECT 127.0.0.1:${closedPort} HTTP/1.1\r\n\r\n`)).toMatch(/^HTTP\/1\.1 502 Bad Gateway[\s\S]*connect failed: ECONNREFUSED/);
    expect(await recordFor((x) => x.port === closedPort)).toMatchObject({ allowed: true, reason: 'connect failed: ECONNREFUSED', bytes_in: 0, bytes_out: 0 });
  });
});

describe('closing the proxy', () => {
  it('resolves only once every connection still open has been reported (the step records them all before its outcome)', async () => {
    const seen: NetConnectionRecord[] = [];
    const p = await startNetProxy({ socketPath: join(dir, 'closing.sock'), allow: parseNetCapabilities([`net:127.0.0.1:${port}`]), onConnection: (r) => seen.push(r) });
    // Three tunnels left open, as an agent that exits (or is killed) without closing them leaves them.
    const clients = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<ReturnType<typeof connect>>((resolve, reject) => {
            const s = connect(join(dir, 'closing.sock'));
            s.on('error', () => undefined);
            s.once('data', () => resolve(s));
            s.once('close', () => reject(new Error('closed before the tunnel was up')));
            s.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`);
          }),
      ),
    );
    expect(seen).toEqual([]);
    await p.close();
    // Nothing awaited after close(): every connection is in `seen` when it resolves.
    expect(seen.map((r) => [r.method, r.port, r.allowed])).toEqual([
      ['CONNECT', port, true],
      ['CONNECT', port, true],
      ['CONNECT', port, true],
    ]);
    for (const c of clients) c.destroy();
  });
});

describe('an expired grant', () => {
  it('refuses every request once the net_cap has expired (403, recorded)', async () => {
    const seen: NetConnectionRecord[] = [];
    const p = await startNetProxy({ socketPath: join(dir, 'expired.sock'), allow: parseNetCapabilities([`net:127.0.0.1:${port}`]), expiresAt: Date.now() - 1, onConnection: (r) => seen.push(r) });
    try {
      const out = await new Promise<string>((resolve, reject) => {
        const s = connect(join(dir, 'expired.sock'));
        let text = '';
        s.on('data', (d) => (text += d.toString()));
        s.on('end', () => {
          s.end();
          resolve(text);
        });
        s.on('error', reject);
        s.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`);
      });
      expect(out).toMatch(/^HTTP\/1\.1 403 [\s\S]*the attempt's net_cap expired at /);
      await new Promise((r) => setTimeout(r, 50));
      expect(seen).toMatchObject([{ allowed: false, port }]);
    } finally {
      await p.close();
    }
  });
});

describe('choosing the driver', () => {
  const missing = () => ({ ok: false as const, reason: "'bwrap' is not installed (Debian/Ubuntu: apt-get install bubblewrap)" });
  it('bubblewrap is a floor; bwrap or net: capabilities ask for it; none opts out only under auto and none', () => {
    const bw = { sandbox: bubblewrapSandbox('/usr/bin/bwrap') };
    const none = { sandbox: noneSandbox };
    expect(sandboxForAgent('bubblewrap', bw, { name: 'a', sandbox: 'none', net: false }).name).toBe('bubblewrap');
    expect(sandboxForAgent('bwrap', bw, { name: 'a', sandbox: 'none', net: false }).name).toBe('bubblewrap');
    expect(sandboxForAgent('auto', bw, { name: 'a', sandbox: 'none', net: false }).name).toBe('none');
    expect(sandboxForAgent('none', none, { name: 'a', net: false }).name).toBe('none');
    expect(sandboxForAgent('none', none, { name: 'a', net: true }, () => ({ ok: true, path: '/usr/bin/bwrap' })).name).toBe('bubblewrap');
  });

  it('asking for bwrap where it does not work: SANDBOX_UNAVAILABLE (exit 4) naming the agent and the reason', () => {
    const none = { sandbox: noneSandbox };
    expect(() => sandboxForAgent('auto', none, { name: 'fetcher', sandbox: 'bwrap', net: false }, missing)).toThrow(
      "agent 'fetcher' asks for 'sandbox: bwrap', but 'bwrap' is not installed (Debian/Ubuntu: apt-get install bubblewrap); run 'swarm doctor'",
    );
    try {
      sandboxForAgent('none', none, { name: 'fetcher', net: true }, missing);
    } catch (e) {
      expect(e).toMatchObject({ code: 'SANDBOX_UNAVAILABLE', exitCode: 4, message: expect.stringContaining('declares net: capabilities (enforced only inside the bwrap sandbox)') as unknown });
    }
    expect(sandboxWarnings({ name: 'x', sandbox: 'none', capabilities: [] }, 'bubblewrap')).toEqual([
      "agent 'x' asks for 'sandbox: none', but this deployment requires bubblewrap (sandbox: bubblewrap in swarm.yaml): it runs sandboxed",
    ]);
  });
});

/** Run `code` with node inside a bubblewrap sandbox whose bridge forwards to `socketPath`; its stdout. */
function inSandbox(code: string, socketPath: string): Promise<string> {
  const { cmd, args } = bubblewrapSandbox(bwrap.ok ? bwrap.path : 'bwrap').wrap(process.execPath, ['-e', code], { packageDir: dir, workDir: dir, readOnly: [], net: { socketPath, port: BRIDGE_PORT } });
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { PATH: '/usr/bin:/bin', ...proxyEnvironment() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (c) => (c === 0 ? resolve(out) : reject(new Error(`exit ${c}: ${err}`))));
  });
}

const CLIENT = (target: string, n: number): string => String.raw`
const http = require('node:http'); const net = require('node:net');
const get = () => new Promise((done) => { const t0 = process.hrtime.bigint();
  const req = http.request({ host: '127.0.0.1', port: ${BRIDGE_PORT}, path: '${target}', agent: false }, (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => done({ status: res.statusCode, body: b, ms: Number(process.hrtime.bigint() - t0) / 1e6 })); });
  req.on('error', (e) => done({ error: e.code })); req.end(); });
const raw = () => new Promise((done) => { const s = net.connect(${port}, '127.0.0.1'); s.on('connect', () => { s.destroy(); done('connected'); }); s.on('error', (e) => done(e.code)); });
(async () => { const r = []; for (let i = 0; i < ${n}; i++) r.push(await get()); console.log(JSON.stringify({ results: r, raw: await raw() })); })();`;

describe.skipIf(!bwrap.ok)('through the bridge', () => {
  it('fails closed: with no proxy behind the socket the bridge answers 502 and nothing else leads out', async () => {
    const dead = join(dir, 'dead.sock');
    writeFileSync(dead, '');
    const out = JSON.parse(await inSandbox(CLIENT(`http://127.0.0.1:${port}/x`, 1), dead)) as { results: Array<{ status: number; body: string }>; raw: string };
    expect(out.results[0]).toMatchObject({ status: 502, body: 'swarm: the network proxy is not running; nothing leaves this sandbox\n' });
    expect(out.raw).toBe('ECONNREFUSED');
  }, 20_000);

  it('measures a connection: direct, through the proxy, through bridge and proxy (printed)', async () => {
    const n = 50;
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    const time = async (f: () => Promise<unknown>): Promise<number[]> => {
      const ms: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await f();
        ms.push(performance.now() - t0);
      }
      return ms;
    };
    const direct = await time(() => new Promise((r) => request({ host: '127.0.0.1', port, path: '/d', agent: false }, (res) => res.resume().on('end', r)).end()));
    const viaProxy = await time(() => new Promise((r) => request({ socketPath: join(dir, 'p.sock'), path: `http://127.0.0.1:${port}/p`, agent: false }, (res) => res.resume().on('end', r)).end()));
    const sandboxed = JSON.parse(await inSandbox(CLIENT(`http://127.0.0.1:${port}/s`, n), proxy.socketPath)) as { results: Array<{ status: number; ms: number }>; raw: string };
    expect(sandboxed.results.every((r) => r.status === 200)).toBe(true);
    expect(sandboxed.raw).toBe('ECONNREFUSED');
    const figures = { direct_ms: median(direct), proxy_ms: median(viaProxy), bridge_and_proxy_ms: median(sandboxed.results.map((r) => r.ms)) };
    console.log(`net_cap connection cost (median of ${n} sequential GETs): ${JSON.stringify(figures)}`);
    expect(figures.bridge_and_proxy_ms).toBeLessThan(1000);
  }, 40_000);
});
