/**
 * The bridge: a small node program that runs INSIDE a sandbox whose network is unshared (only its
 * own loopback exists there). It listens on 127.0.0.1:<port> of that namespace and forwards each
 * connection, byte for byte, to the worker's policy proxy through a Unix socket bound into the
 * sandbox; then it starts the agent as its child, with the proxy variables pointing at itself, and
 * exits as the agent exits (the same code, or the same signal).
 *
 * It decides nothing: the proxy does. When the proxy is not there (the socket is missing, or
 * refuses), the bridge answers 502 and closes; there is no other way out of the namespace.
 *
 * Shipped as source text run with `node -e`, so it needs no file inside the sandbox and the same
 * code runs from the built package and from the sources.
 *
 * @example
 *   spawn(process.execPath, ['-e', BRIDGE_SOURCE, '--', '/run/swarm-net/proxy.sock', '3128', 'python3', 'agent.py']);
 */
export const BRIDGE_SOURCE = String.raw`'use strict';
const net = require('node:net');
const { spawn } = require('node:child_process');
const [sock, portText, cmd, ...args] = process.argv.slice(1);
const port = Number(portText);
const GONE = 'swarm: the network proxy is not running; nothing leaves this sandbox\n';
const server = net.createServer({ allowHalfOpen: true }, (c) => {
  c.pause();
  const up = net.connect({ path: sock, allowHalfOpen: true });
  up.once('connect', () => { c.pipe(up); up.pipe(c); c.resume(); });
  up.once('error', () => {
    if (!c.destroyed) c.end('HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ' + Buffer.byteLength(GONE) + '\r\n\r\n' + GONE);
  });
  c.on('error', () => up.destroy());
  c.on('close', () => up.destroy());
  up.on('close', () => { if (!c.destroyed) c.end(); });
});
server.once('error', (e) => { process.stderr.write('swarm net bridge: cannot listen on 127.0.0.1:' + port + ': ' + e.message + '\n'); process.exit(125); });
server.listen(port, '127.0.0.1', () => {
  const child = spawn(cmd, args, { stdio: 'inherit' });
  const relay = (sig) => { try { child.kill(sig); } catch {} };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, relay);
  child.once('error', (e) => { process.stderr.write('swarm net bridge: cannot start ' + cmd + ': ' + e.message + '\n'); process.exit(127); });
  child.once('exit', (code, sig) => {
    server.close();
    if (sig) { process.removeAllListeners(sig); process.kill(process.pid, sig); setTimeout(() => process.exit(128), 1000); }
    else process.exit(code === null ? 1 : code);
  });
});
`;

/** Where the proxy's socket appears inside the sandbox (bound there whatever its path outside). */
export const BRIDGE_SOCKET_PATH = '/run/swarm-net/proxy.sock';
/** The port the bridge listens on inside the sandbox's own loopback (no other process shares that namespace). */
export const BRIDGE_PORT = 3128;

/** The proxy variables an agent gets, all pointing at the bridge (curl, requests, node's undici with a proxy agent, Go, …). */
export function proxyEnvironment(port = BRIDGE_PORT): Record<string, string> {
  const url = `http://127.0.0.1:${port}`;
  return { HTTP_PROXY: url, HTTPS_PROXY: url, http_proxy: url, https_proxy: url, ALL_PROXY: url, all_proxy: url, NO_PROXY: '', no_proxy: '' };
}
