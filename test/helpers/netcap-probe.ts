/**
 * A node agent (CommonJS source) that tries every way out of its sandbox and reports what happened:
 * absolute-form HTTP and CONNECT through the proxy named by HTTP_PROXY (127.0.0.1:3128 when unset),
 * curl (which reads http_proxy), and raw TCP sockets that ignore proxy settings. Its input:
 * `{ targets: { a, b, c, external } }` (ports of loopback servers A and B, a raw TCP server C on
 * 0.0.0.0, and a non-loopback address of the host or null).
 */
export interface ProbeReport {
  proxy_env: string | null;
  http_a: { status?: number; body?: string; error?: string };
  connect_a: { status?: number; body?: string; error?: string };
  http_b: { status?: number; body?: string; error?: string };
  connect_b: { status?: number; body?: string; error?: string };
  curl_a: string;
  raw_a: string;
  raw_b: string;
  raw_c_loopback: string;
  raw_c_external: string | null;
}

export const PROBE_AGENT = String.raw`'use strict';
const fs = require('node:fs');
const net = require('node:net');
const http = require('node:http');
const { execFile } = require('node:child_process');
const t = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')).targets;
const proxyEnv = process.env.HTTP_PROXY || null;
const p = new URL(proxyEnv || 'http://127.0.0.1:3128');
const withTimeout = (promise, what) => Promise.race([promise, new Promise((r) => setTimeout(() => r(what), 8000).unref())]);
function viaHttp(port, path) {
  return withTimeout(new Promise((done) => {
    const req = http.request({ host: p.hostname, port: p.port, method: 'GET', path: 'http://127.0.0.1:' + port + path, headers: { Host: '127.0.0.1:' + port }, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => done({ status: res.statusCode, body }));
    });
    req.on('error', (e) => done({ error: e.code || e.message }));
    req.end();
  }), { error: 'TIMEOUT' });
}
function viaConnect(port, path) {
  return withTimeout(new Promise((done) => {
    const req = http.request({ host: p.hostname, port: p.port, method: 'CONNECT', path: '127.0.0.1:' + port, agent: false });
    req.on('connect', (res, sock, head) => {
      if (res.statusCode !== 200) { sock.destroy(); return done({ status: res.statusCode }); }
      let text = head.toString();
      sock.on('data', (d) => (text += d));
      sock.on('end', () => done({ status: 200, body: text.split('\r\n\r\n').slice(1).join('\r\n\r\n') }));
      sock.on('error', (e) => done({ error: e.code }));
      sock.write('GET ' + path + ' HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    });
    req.on('error', (e) => done({ error: e.code || e.message }));
    req.end();
  }), { error: 'TIMEOUT' });
}
function raw(port, host) {
  return withTimeout(new Promise((done) => {
    const s = net.connect({ port, host });
    let text = '';
    // Connected to a server that waits for a request (HTTP): say so after a moment.
    s.on('connect', () => setTimeout(() => { done(text.trim() || 'connected'); s.destroy(); }, 300).unref());
    s.on('data', (d) => (text += d));
    s.on('end', () => done(text.trim() || 'connected'));
    s.on('error', (e) => done(e.code || e.message));
  }), 'TIMEOUT');
}
function curl(port, path) {
  return new Promise((done) => execFile('curl', ['-s', '--max-time', '5', 'http://127.0.0.1:' + port + path], (err, out) => done(err ? 'curl failed: ' + (err.code ?? err.message) : out)));
}
(async () => {
  const report = {
    proxy_env: proxyEnv,
    http_a: await viaHttp(t.a, '/via-http'),
    connect_a: await viaConnect(t.a, '/via-connect'),
    http_b: await viaHttp(t.b, '/'),
    connect_b: await viaConnect(t.b, '/'),
    curl_a: await curl(t.a, '/via-curl'),
    raw_a: await raw(t.a, '127.0.0.1'),
    raw_b: await raw(t.b, '127.0.0.1'),
    raw_c_loopback: await raw(t.c, '127.0.0.1'),
    raw_c_external: t.external ? await raw(t.c, t.external) : null,
  };
  fs.writeFileSync(process.argv[3], JSON.stringify(report));
  process.exit(0);
})();
`;
