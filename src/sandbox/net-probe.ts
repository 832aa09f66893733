/**
 * Does net_cap work on this machine, end to end? Starts a loopback server and a policy proxy that
 * allows only it, then runs, inside a bubblewrap sandbox with the network unshared, the bridge and
 * a node client that (1) fetches the allowed server through the proxy, (2) asks for another port
 * and (3) opens a raw socket to the server. Works when (1) answers 200, (2) 403 and (3) fails.
 * `swarm doctor` runs it (the `net-sandbox` check).
 *
 * @example
 *   const r = await probeNetCap();
 *   if (!r.ok) console.error(r.reason);
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNetCapabilities } from './capabilities.js';
import { BRIDGE_PORT, proxyEnvironment } from './net-bridge.js';
import { startNetProxy } from './net-proxy.js';
import { bubblewrapSandbox, probeBubblewrap } from './sandbox.js';

export type NetCapProbe = { ok: true; ms: number } | { ok: false; reason: string };

const CLIENT = (allowed: number, refused: number): string => String.raw`
const http = require('node:http'); const net = require('node:net');
const get = (port) => new Promise((done) => { const req = http.request({ host: '127.0.0.1', port: ${BRIDGE_PORT}, path: 'http://127.0.0.1:' + port + '/', agent: false }, (res) => { res.resume(); res.on('end', () => done(res.statusCode)); }); req.on('error', (e) => done(e.code)); req.end(); });
const raw = () => new Promise((done) => { const s = net.connect(${allowed}, '127.0.0.1'); s.on('connect', () => { s.destroy(); done('connected'); }); s.on('error', (e) => done(e.code)); });
(async () => console.log(JSON.stringify({ allowed: await get(${allowed}), refused: await get(${refused}), raw: await raw() })))();`;

/** Run the probe (about a third of a second where it works). Never throws. */
export async function probeNetCap(timeoutMs = 15_000): Promise<NetCapProbe> {
  const bw = probeBubblewrap();
  if (!bw.ok) return { ok: false, reason: bw.reason };
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'swarm-netprobe-'));
  const server = createServer((_req, res) => res.end('ok'));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
    const refusedPort = port === 65535 ? port - 1 : port + 1;
    const proxy = await startNetProxy({ socketPath: join(dir, 'proxy.sock'), allow: parseNetCapabilities([`net:127.0.0.1:${port}`]), onConnection: () => undefined });
    try {
      const { cmd, args } = bubblewrapSandbox(bw.path).wrap(process.execPath, ['-e', CLIENT(port, refusedPort)], { packageDir: dir, workDir: dir, readOnly: [], net: { socketPath: proxy.socketPath, port: BRIDGE_PORT } });
      const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(cmd, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...proxyEnvironment() }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', (e) => (stderr += e.message));
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      });
      if (out.code !== 0) return { ok: false, reason: `the sandboxed probe exited with ${String(out.code)}: ${out.stderr.trim().split('\n').pop() ?? ''}` };
      let r: { allowed: unknown; refused: unknown; raw: unknown };
      try {
        r = JSON.parse(out.stdout) as typeof r;
      } catch {
        return { ok: false, reason: `the sandboxed probe printed no result: ${out.stderr.trim().split('\n').pop() ?? ''}` };
      }
      if (r.allowed !== 200) return { ok: false, reason: `an allowed destination was not reached through the proxy (${String(r.allowed)})` };
      if (r.refused !== 403) return { ok: false, reason: `an undeclared destination was not refused by the proxy (${String(r.refused)})` };
      if (r.raw === 'connected') return { ok: false, reason: 'a raw socket inside the sandbox reached the host: the network is not unshared' };
      return { ok: true, ms: Date.now() - started };
    } finally {
      await proxy.close();
    }
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
