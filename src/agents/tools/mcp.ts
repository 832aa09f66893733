/**
 * The tools of an MCP server (`{ mcp: { command, args, env, cwd } }` over stdio, or
 * `{ mcp: { url, headers } }` over streamable HTTP). The server is started (or connected to) when the
 * agent's tools are loaded, its tools are listed once, and each becomes a `Tool` whose `execute`
 * calls it. `close()` ends the session and the child process.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult, ContentBlock, Tool as McpTool } from '@modelcontextprotocol/sdk/types.js';
import { errorMessage } from '../../core/errors.js';
import { modelToolName } from '../../core/manifest/agent.js';
import { carrierIn, tracingEnabled } from '../../observability/tracing.js';
import { tool, type Tool } from '../agent.js';
import { ToolCallError, ToolLoadError } from './errors.js';
import { resolveInPackage } from './module.js';
import { describeSpec, isMcpHttp, mcpLabel, scalarMapToStrings, type McpStdioServer, type McpToolSpec } from './spec.js';

export const MCP_CONNECT_TIMEOUT_MS = 60_000;
export const MCP_CALL_TIMEOUT_MS = 60_000;
/** How much of a stdio server's standard error is kept for a start-up failure's message. */
const STDERR_TAIL_CHARS = 2000;
const MAX_LIST_PAGES = 100;

export interface McpTools {
  tools: Tool[];
  close(): Promise<void>;
}

interface LoadOptions {
  packageDir: string;
  signal?: AbortSignal;
  log?: (m: string) => void;
}

/**
 * `fetch` that sends a tool call's W3C trace context, which the call carries in its `params._meta`
 * (as the MCP and OpenTelemetry conventions ask), in HTTP headers too, for servers and proxies that
 * read those.
 */
function tracedFetch(url: string | URL, init?: RequestInit): Promise<Response> {
  const body = init?.body;
  if (typeof body !== 'string' || !body.includes('"traceparent"')) return fetch(url, init);
  let meta: { traceparent?: unknown; tracestate?: unknown } | undefined;
  try {
    meta = (JSON.parse(body) as { params?: { _meta?: { traceparent?: unknown; tracestate?: unknown } } }).params?._meta;
  } catch {
    // Not one JSON-RPC message (a batch): sent as it is.
  }
  if (typeof meta?.traceparent !== 'string') return fetch(url, init);
  const headers = new Headers(init?.headers);
  if (!headers.has('traceparent')) {
    headers.set('traceparent', meta.traceparent);
    if (typeof meta.tracestate === 'string') headers.set('tracestate', meta.tracestate);
  }
  return fetch(url, { ...init, headers });
}

let clientVersion: string | undefined;
/** Swarm's own version, for the MCP handshake. */
function swarmVersion(): string {
  if (clientVersion) return clientVersion;
  clientVersion = '0.0.0';
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'swarm-runtime' && pkg.version) {
        clientVersion = pkg.version;
        break;
      }
    } catch {
      // not here; look further up
    }
    dir = dirname(dir);
  }
  return clientVersion;
}

/**
 * The environment of a stdio server: the worker's without any `SWARM_*` variable (secrets, the
 * master key, the database URL), plus the entry's `env`.
 */
function serverEnv(server: McpStdioServer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('SWARM_')) env[k] = v;
  return { ...env, ...scalarMapToStrings(server.env) };
}

/** The text of a tool result: text blocks as they are, other blocks as a short note. */
export function contentText(content: readonly ContentBlock[] | undefined): string {
  return (content ?? [])
    .map((c) => {
      switch (c.type) {
        case 'text':
          return c.text;
        case 'image':
        case 'audio':
          return `[${c.type}: ${c.mimeType}]`;
        case 'resource':
          return 'text' in c.resource && typeof c.resource.text === 'string' ? c.resource.text : `[resource: ${c.resource.uri}]`;
        case 'resource_link':
          return `[resource link: ${c.uri}${c.name ? ` (${c.name})` : ''}]`;
        default:
          return '';
      }
    })
    .filter((s) => s !== '')
    .join('\n');
}

function waitForExit(pid: number, ms: number): Promise<boolean> {
  const alive = (): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  return new Promise((resolve) => {
    const deadline = Date.now() + ms;
    const check = (): void => {
      if (!alive()) resolve(true);
      else if (Date.now() > deadline) resolve(false);
      else setTimeout(check, 20);
    };
    check();
  });
}

/** Connect to the server of an `mcp` entry and make its tools. */
export async function mcpTools(spec: McpToolSpec, index: number, options: LoadOptions): Promise<McpTools> {
  const where = describeSpec(spec, index);
  const label = mcpLabel(spec);
  const log = options.log ?? (() => undefined);
  const server = spec.mcp;
  const callTimeout = server.timeout_seconds !== undefined ? server.timeout_seconds * 1000 : MCP_CALL_TIMEOUT_MS;

  let transport: StdioClientTransport | StreamableHTTPClientTransport;
  let stderrTail = '';
  if (isMcpHttp(server)) {
    let url: URL;
    try {
      url = new URL(server.url);
    } catch {
      throw new ToolLoadError('TOOL_SPEC_INVALID', `${where}: mcp.url: '${server.url}' is not a valid URL`, false);
    }
    transport = new StreamableHTTPClientTransport(url, {
      requestInit: { headers: scalarMapToStrings(server.headers) },
      // Each request carries the span active when it is sent (a tool call's), when tracing is on.
      ...(tracingEnabled() ? { fetch: tracedFetch } : {}),
    });
  } else {
    const cwd = resolveInPackage(options.packageDir, server.cwd ?? '.', where, 'mcp.cwd');
    const stdio = new StdioClientTransport({
      command: server.command === 'node' ? process.execPath : server.command,
      args: server.args ?? [],
      env: serverEnv(server),
      cwd,
      stderr: 'pipe',
    });
    let partial = '';
    stdio.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      stderrTail = (stderrTail + text).slice(-STDERR_TAIL_CHARS);
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) log(`[mcp ${label}] ${line}`);
    });
    transport = stdio;
  }

  const client = new Client({ name: 'swarm', version: swarmVersion() });
  client.onerror = (e) => log(`[mcp ${label}] ${errorMessage(e)}`);
  let closed = false;
  /** The server went away by itself (it exited, or the HTTP session ended). */
  let lost = false;
  client.onclose = () => {
    if (closed) return;
    lost = true;
    log(`[mcp ${label}] the server closed the connection`);
  };
  let pid: number | null = null;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    if (transport instanceof StreamableHTTPClientTransport) {
      const t = transport;
      await Promise.race([t.terminateSession().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
    }
    await client.close().catch((e: unknown) => log(`[mcp ${label}] closing: ${errorMessage(e)}`));
    // The SDK escalates to SIGKILL without waiting: make sure the process is gone before returning.
    if (pid !== null && !(await waitForExit(pid, 2000))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await waitForExit(pid, 2000);
    }
  };

  const fail = async (e: unknown, doing: string): Promise<never> => {
    await close();
    if (options.signal?.aborted) throw options.signal.reason;
    await new Promise((r) => setImmediate(r)); // let the last of standard error arrive
    const code = (e as NodeJS.ErrnoException).code;
    const status = e instanceof StreamableHTTPError ? e.code : undefined;
    const notFound = code === 'ENOENT' && !isMcpHttp(server);
    const retryable = !notFound && !(status !== undefined && status >= 400 && status < 500);
    const why = notFound
      ? `command '${server.command}' not found`
      : `${errorMessage(code === undefined && e instanceof Error && e.cause ? e.cause : e)}${status !== undefined && status > 0 ? ` (HTTP ${status})` : ''}`;
    const tail = stderrTail.trim() ? `; its standard error ends with: ${stderrTail.trim().split('\n').slice(-5).join(' | ')}` : '';
    throw new ToolLoadError('MCP_CONNECT_FAILED', `${where}: ${doing} the MCP server failed: ${why}${tail}`, retryable, { server: label }, { cause: e });
  };

  try {
    await client.connect(transport, { ...(options.signal ? { signal: options.signal } : {}), timeout: MCP_CONNECT_TIMEOUT_MS });
  } catch (e) {
    return fail(e, isMcpHttp(server) ? 'connecting to' : 'starting');
  }
  if (transport instanceof StdioClientTransport) pid = transport.pid;

  const listed: McpTool[] = [];
  try {
    if (client.getServerCapabilities()?.tools) {
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await client.listTools(cursor ? { cursor } : undefined, { ...(options.signal ? { signal: options.signal } : {}), timeout: MCP_CONNECT_TIMEOUT_MS });
        listed.push(...page.tools);
        cursor = page.nextCursor;
      } while (cursor && ++pages < MAX_LIST_PAGES);
    }
  } catch (e) {
    return fail(e, 'listing the tools of');
  }

  let chosen = listed;
  if (spec.include) {
    const have = new Set(listed.map((t) => t.name));
    const unknown = spec.include.filter((n) => !have.has(n));
    if (unknown.length) {
      await close();
      throw new ToolLoadError(
        'MCP_TOOL_NOT_FOUND',
        `${where}: include: the server has no tool ${unknown.map((n) => `'${n}'`).join(', ')} (its tools: ${listed.map((t) => t.name).join(', ') || 'none'})`,
        false,
        { server: label },
      );
    }
    const wanted = new Set(spec.include);
    chosen = listed.filter((t) => wanted.has(t.name));
  }
  if (!chosen.length) log(`[mcp ${label}] the server offers no tools`);

  const tools: Tool[] = [];
  const byName = new Map<string, string>();
  for (const t of chosen) {
    const name = modelToolName(spec.name, t.name);
    const other = byName.get(name);
    if (other !== undefined) {
      await close();
      throw new ToolLoadError('TOOL_NAME_COLLISION', `${where}: the server's tools '${other}' and '${t.name}' both become '${name}'`, false, { server: label });
    }
    byName.set(name, t.name);
    tools.push(
      tool({
        name,
        description: t.description ?? t.title ?? t.annotations?.title ?? '',
        parameters: t.inputSchema,
        ...(spec.needs_approval !== undefined ? { needsApproval: spec.needs_approval } : {}),
        async execute(args, ctx) {
          if (closed || lost) throw new ToolCallError('MCP_CLOSED', `the MCP server '${label}' is no longer connected${lost ? ' (it closed the connection)' : ''}`);
          let res: CallToolResult;
          try {
            // The call's span (W3C trace context) in `_meta`, over stdio and HTTP alike (SEP-414).
            const trace = carrierIn(ctx.traceContext);
            res = (await client.callTool({ name: t.name, arguments: args, ...(trace ? { _meta: { ...trace } } : {}) }, undefined, {
              signal: ctx.signal,
              timeout: callTimeout,
              resetTimeoutOnProgress: true,
              onprogress: () => undefined,
            })) as CallToolResult;
          } catch (e) {
            if (ctx.signal.aborted) throw ctx.signal.reason;
            throw new ToolCallError('TOOL_MCP_FAILED', `MCP server '${label}': ${errorMessage(e)}`, { server: label, tool: t.name }, { cause: e });
          }
          const text = contentText(res.content);
          if (res.isError) throw new ToolCallError('TOOL_MCP_ERROR', text || `the tool '${t.name}' reported an error`, { server: label, tool: t.name });
          return res.structuredContent ?? text;
        },
      }),
    );
  }
  log(`[mcp ${label}] ${pid !== null ? `started (pid ${pid})` : 'connected'}: ${tools.map((t) => t.name).join(', ') || 'no tools'}`);
  return { tools, close };
}
