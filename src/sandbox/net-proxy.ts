/**
 * The policy proxy of a sandboxed attempt with network capabilities. The worker starts one per
 * attempt on a Unix socket (bound into the sandbox, where the bridge forwards to it); it speaks
 * HTTP CONNECT (tunnels, for https and anything else over TCP) and plain HTTP absolute-form
 * requests (`GET http://host:port/path`), and lets through exactly the `host:port` pairs of the
 * agent's `net:` capabilities:
 *
 * - a destination written as a declared host name (any case, trailing dot or not) and port passes,
 *   and the proxy resolves the name itself;
 * - an IP literal passes when it is a declared address (same port);
 * - a name the agent gives that is not declared is resolved, and passes only when it resolves to
 *   a declared address (same port); the proxy then connects to that address, not to what a second
 *   lookup might say.
 *
 * No wildcards. Everything else gets `403` and closes. Every request that names a destination is
 * reported once, when its connection ends: destination, port, allowed, reason, bytes each way.
 *
 * @example
 *   const proxy = await startNetProxy({ socketPath: join(workDir, 'net.sock'), allow: caps, onConnection: (r) => events.push(r) });
 *   // … run the agent …
 *   await proxy.close();
 */
import { lookup } from 'node:dns/promises';
import { rmSync } from 'node:fs';
import { createServer, connect, isIP, type Server, type Socket } from 'node:net';
import { canonicalIpv6, destinationOf, type NetCapability } from './capabilities.js';

/** One connection through the proxy, as the NET_CONNECTION event records it. */
export interface NetConnectionRecord {
  /** The host as the agent named it (lower case; IPv6 without brackets). */
  destination: string;
  port: number;
  allowed: boolean;
  /** Why refused, or why an allowed connection failed (`connect failed: ECONNREFUSED`). */
  reason?: string;
  /** `CONNECT`, or the method of an absolute-form HTTP request. */
  method: string;
  /** The address connected to, when one was. */
  address?: string;
  /** Bytes from the agent to the destination, and back (after the CONNECT handshake; an HTTP request's rewritten head counts). */
  bytes_out: number;
  bytes_in: number;
  duration_ms: number;
}

export interface NetProxyOptions {
  /** Where to listen (a Unix socket path; an existing file there is replaced). */
  socketPath: string;
  allow: readonly NetCapability[];
  /** Called once per request that named a destination, when its connection has ended. */
  onConnection: (record: NetConnectionRecord) => void;
  /** How long connecting to a destination may take (default 10 s). */
  connectTimeoutMs?: number;
  /** Name resolution (default: the system's, every address). */
  resolve?: (host: string) => Promise<string[]>;
  /** When the grant ends (ms since the epoch; the net_cap's `expires_at`): later requests are refused. */
  expiresAt?: number;
}

export interface NetProxy {
  readonly socketPath: string;
  /** Stop listening, end every open connection (each still reported) and remove the socket. */
  close(): Promise<void>;
}

const MAX_HEAD_BYTES = 16 * 1024;
const HOP_HEADERS = new Set(['proxy-connection', 'proxy-authorization', 'connection', 'keep-alive', 'te', 'trailer', 'upgrade']);

/** The verdict for `host:port`: where to connect, or why not. */
export type ProxyDecision = { allowed: true; connectTo: string } | { allowed: false; reason: string };

/**
 * Decide a destination against the capabilities (see the module comment for the rules).
 *
 * @example
 *   await decide([{ host: '127.0.0.1', port: 9000, kind: 'ipv4' }], 'localhost', 9000);  // allowed, connectTo '127.0.0.1'
 */
export async function decide(allow: readonly NetCapability[], rawHost: string, port: number, resolve = defaultResolve): Promise<ProxyDecision> {
  const host = normalizeHost(rawHost);
  if (!host) return { allowed: false, reason: 'no destination host' };
  const samePort = allow.filter((c) => c.port === port);
  const declared = allow.map(destinationOf).join(', ') || 'none';
  const refused = { allowed: false as const, reason: `${destinationOf({ host, port })} is not among the agent's net capabilities (${declared})` };
  if (samePort.length === 0) return refused;
  const v = isIP(host);
  if (v === 0) {
    if (samePort.some((c) => c.kind === 'name' && c.host === host)) return { allowed: true, connectTo: host };
    const ips = samePort.filter((c) => c.kind !== 'name').map((c) => c.host);
    if (ips.length === 0) return refused;
    let addresses: string[];
    try {
      addresses = (await resolve(host)).map((a) => normalizeHost(a));
    } catch (e) {
      return { allowed: false, reason: `${host} does not resolve (${(e as NodeJS.ErrnoException).code ?? 'error'}) and is not a declared name` };
    }
    const hit = addresses.find((a) => ips.includes(a));
    return hit ? { allowed: true, connectTo: hit } : refused;
  }
  return samePort.some((c) => c.kind !== 'name' && c.host === host) ? { allowed: true, connectTo: host } : refused;
}

async function defaultResolve(host: string): Promise<string[]> {
  return (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
}

/** Lower case, no brackets, no trailing dot, IPv6 in one form, IPv4-mapped IPv6 as IPv4. */
function normalizeHost(h: string): string {
  let host = h.trim().toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  host = host.replace(/\.$/, '');
  if (isIP(host) === 6) {
    host = canonicalIpv6(host);
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
    if (mapped?.[1]) return mapped[1];
    const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
    if (hex?.[1] && hex[2]) {
      const n = (parseInt(hex[1], 16) << 16) | parseInt(hex[2], 16);
      return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
    }
  }
  return host;
}

/** Split an authority (`host:port`, `[v6]:port`) into its parts; undefined when it is not one. */
function splitAuthority(a: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(a);
  if (!m?.[1] || !m[2]) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { host: m[1], port } : undefined;
}

function reply(c: Socket, status: string, text: string): void {
  const body = `swarm: ${text}\n`;
  // Read (and drop) what the client still sends, so its end is seen and the connection closes.
  c.resume();
  c.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nX-Swarm-Net: ${status.startsWith('403') ? 'refused' : 'error'}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

/**
 * Start the proxy. Resolves once it listens.
 *
 * @example
 *   const proxy = await startNetProxy({ socketPath: '/tmp/a/net.sock', allow: parseNetCapabilities(['net:127.0.0.1:9000']), onConnection: console.log });
 */
export async function startNetProxy(o: NetProxyOptions): Promise<NetProxy> {
  const open = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    handle(client, o, open);
  });
  rmSync(o.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    socketPath: o.socketPath,
    close: async () => {
      // A socket's 'close' (where its connection is reported) comes with its handle's close
      // callback, after the server's own 'close' has fired: wait for each of them too, so that
      // every connection has been reported when this resolves.
      const sockets = [...open].map((s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.once('close', () => resolve()))));
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of open) s.destroy();
      rmSync(o.socketPath, { force: true });
      await Promise.all([stopped, ...sockets]);
    },
  };
}

function handle(client: Socket, o: NetProxyOptions, open: Set<Socket>): void {
  let head = Buffer.alloc(0);
  client.on('error', () => client.destroy());
  const onData = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > MAX_HEAD_BYTES) {
        client.off('data', onData);
        reply(client, '431 Request Header Fields Too Large', 'request head too large');
      }
      return;
    }
    client.off('data', onData);
    client.pause();
    const rest = head.subarray(end + 4);
    void route(client, head.subarray(0, end).toString('latin1'), rest, o, open);
  };
  client.on('data', onData);
}

async function route(client: Socket, headText: string, rest: Buffer, o: NetProxyOptions, open: Set<Socket>): Promise<void> {
  const [requestLine = '', ...headerLines] = headText.split('\r\n');
  const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(requestLine);
  if (!m?.[1] || !m[2]) return reply(client, '400 Bad Request', 'not an HTTP/1.x proxy request');
  const method = m[1];
  const target = m[2];
  let host: string;
  let port: number;
  let firstBytes: Buffer | undefined;
  if (method === 'CONNECT') {
    const a = splitAuthority(target);
    if (!a) return reply(client, '400 Bad Request', `CONNECT needs host:port, not '${target}'`);
    ({ host, port } = a);
  } else {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return reply(client, '400 Bad Request', 'this is a proxy: send absolute-form requests (http://host/path) or CONNECT host:port');
    }
    if (url.protocol !== 'http:') return reply(client, '400 Bad Request', `only http:// is forwarded as a plain request; use CONNECT for ${url.protocol}//`);
    host = url.hostname;
    port = url.port ? Number(url.port) : 80;
    const headers = headerLines.filter((l) => !HOP_HEADERS.has(l.slice(0, l.indexOf(':')).trim().toLowerCase()));
    if (!headers.some((l) => /^host\s*:/i.test(l))) headers.unshift(`Host: ${url.host}`);
    // One request per connection: a second request on a kept-alive connection would skip the check.
    firstBytes = Buffer.concat([Buffer.from([`${method} ${url.pathname}${url.search} HTTP/1.1`, ...headers, 'Connection: close', '', ''].join('\r\n'), 'latin1'), rest]);
  }
  const started = Date.now();
  const record: NetConnectionRecord = { destination: normalizeHost(host), port, allowed: false, method, bytes_out: 0, bytes_in: 0, duration_ms: 0 };
  let reported = false;
  const report = (): void => {
    if (reported) return;
    reported = true;
    record.duration_ms = Date.now() - started;
    try {
      o.onConnection(record);
    } catch {
      /* a reporting failure is the caller's to log; the connection is done either way */
    }
  };
  client.once('close', report);
  const verdict: ProxyDecision =
    o.expiresAt !== undefined && Date.now() >= o.expiresAt ? { allowed: false, reason: `the attempt's net_cap expired at ${new Date(o.expiresAt).toISOString()}` } : await decide(o.allow, host, port, o.resolve);
  if (!verdict.allowed) {
    record.reason = verdict.reason;
    return reply(client, '403 Forbidden', `refused: ${verdict.reason}`);
  }
  record.allowed = true;
  const upstream = connect({ host: verdict.connectTo, port, allowHalfOpen: true });
  open.add(upstream);
  upstream.setTimeout(o.connectTimeoutMs ?? 10_000, () => upstream.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })));
  let connected = false;
  upstream.once('error', (e: NodeJS.ErrnoException) => {
    if (!connected) {
      record.reason = `connect failed: ${e.code ?? e.message}`;
      reply(client, e.code === 'ETIMEDOUT' ? '504 Gateway Timeout' : '502 Bad Gateway', `${destinationOf({ host: record.destination, port })}: ${record.reason}`);
    } else client.destroy();
  });
  upstream.once('close', () => {
    open.delete(upstream);
    // end, not destroy: what the destination sent may still be on its way to the agent.
    if (connected) client.end();
  });
  client.once('close', () => upstream.destroy());
  upstream.once('connect', () => {
    connected = true;
    upstream.setTimeout(0);
    record.address = upstream.remoteAddress;
    upstream.on('data', (c: Buffer) => (record.bytes_in += c.length));
    client.on('data', (c: Buffer) => (record.bytes_out += c.length));
    if (firstBytes) {
      record.bytes_out += firstBytes.length;
      upstream.write(firstBytes);
    } else {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (rest.length) {
        record.bytes_out += rest.length;
        upstream.write(rest);
      }
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
}
