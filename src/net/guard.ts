/**
 * The SSRF guard: HTTP requests that agents control (the `http-fetch` built-in, HTTP tools of LLM
 * agents) reach only public addresses unless the deployment allow-lists more (`network.allow` in
 * swarm.yaml).
 *
 * The check happens where the connection is made: the guard's dispatcher resolves the host itself,
 * refuses if any address is in a special-purpose range, and hands the checked addresses to the socket,
 * so a DNS answer that changes between check and connect (rebinding) is never used. Hosts written as
 * addresses are checked before the request (the URL parser has already turned `2130706433`,
 * `0x7f000001` and `0177.0.0.1` into `127.0.0.1`). Redirects are followed here, one hop at a time,
 * and every hop is checked again.
 *
 * @example
 *   const guard = new NetworkGuard({ allow: ['10.0.0.0/8', 'localhost'] });
 *   const res = await guard.fetch(new URL('https://example.com/'), { method: 'GET', signal });
 *   await guard.close();
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import type { Agent, Response } from 'undici';
import { PolicyError } from '../core/errors.js';
import { classifyAddress, EMPTY_ALLOW_LIST, isAllowedAddress, isAllowedHost, parseAddress, parseAllowList, type AllowList } from './address.js';

/** Redirects followed per request when the caller does not say. */
export const DEFAULT_MAX_REDIRECTS = 5;

const HINT = 'allow it with network.allow in swarm.yaml';

/** A request went to an address the network policy refuses. Not retryable: the same URL is refused again. */
export class NetworkRefusedError extends PolicyError {
  constructor(message: string, context: { url?: string; host: string; address: string; rule: string }) {
    super('NETWORK_REFUSED', message, context);
  }
}

export interface NetworkGuardOptions {
  /** `network.allow`: addresses, CIDR ranges and host names that may be reached although private. Default none. */
  allow?: readonly string[] | AllowList;
  /** Redirects followed per request (default 5); one more is an error. */
  maxRedirects?: number;
}

export interface GuardedRequestInit {
  method: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

type Undici = Pick<typeof import('undici'), 'Agent' | 'fetch'>;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** Headers that carry credentials: not sent on to another origin after a redirect (as browsers do). */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

export class NetworkGuard {
  readonly allow: AllowList;
  readonly maxRedirects: number;
  private agent: Agent | undefined;
  private undici: Promise<Undici> | undefined;

  constructor(options: NetworkGuardOptions = {}) {
    const allow = options.allow ?? EMPTY_ALLOW_LIST;
    if (Array.isArray(allow)) {
      const parsed = parseAllowList(allow as readonly string[]);
      if ('error' in parsed) throw new TypeError(`network.allow[${parsed.index}]: ${parsed.error}`);
      this.allow = parsed;
    } else this.allow = allow as AllowList;
    this.maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  }

  /** Why this address may not be reached (a rule like `loopback`), or undefined when it may. */
  refusal(address: string): string | undefined {
    if (isAllowedAddress(this.allow, address)) return undefined;
    return classifyAddress(address);
  }

  /**
   * Check what can be checked without DNS: the scheme, and a host written as an IP address. A host
   * name is checked when it is resolved, by `lookup`.
   */
  checkUrl(url: URL, redirectedFrom?: URL): void {
    const via = redirectedFrom ? `, a redirect from ${redirectedFrom.href}` : '';
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new NetworkRefusedError(`refused ${url.href}${via}: only http and https URLs are allowed`, { url: url.href, host: url.hostname, address: '', rule: 'scheme' });
    }
    const address = parseAddress(url.hostname);
    if (!address) return;
    const text = address.toString();
    const rule = this.refusal(text);
    if (rule) throw new NetworkRefusedError(`refused ${url.href} (${text} is ${rule}${via}); ${HINT}`, { url: url.href, host: url.hostname, address: text, rule });
  }

  /**
   * A `lookup` for `net.connect` / `http.request`: resolves every address of the host and fails
   * with `NetworkRefusedError` if any of them is refused (an allow-listed host name skips the check).
   */
  readonly lookup = (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      if (!isAllowedHost(this.allow, hostname)) {
        for (const { address } of addresses) {
          const rule = this.refusal(address);
          if (rule) {
            const message = `refused ${hostname} (it resolves to ${address}, which is ${rule}); ${HINT}`;
            return callback(new NetworkRefusedError(message, { host: hostname, address, rule }), '');
          }
        }
      }
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '');
      if (options.all) callback(null, addresses);
      else callback(null, first.address, first.family);
    });
  };

  /**
   * One HTTP request through the guard, following up to `maxRedirects` redirects and checking each.
   * Network failures reject as `fetch` does (a TypeError with a cause); a refused address rejects
   * with `NetworkRefusedError` naming the URL.
   */
  async fetch(url: URL, init: GuardedRequestInit): Promise<Response> {
    const { fetch } = await this.loadUndici();
    const dispatcher = await this.dispatcher();
    let current = url;
    let method = init.method.toUpperCase();
    let body = init.body;
    let headers = { ...(init.headers ?? {}) };
    let previous: URL | undefined;
    for (let hop = 0; ; hop++) {
      this.checkUrl(current, previous);
      let res: Response;
      try {
        res = await fetch(current, { method, headers, ...(body !== undefined ? { body } : {}), redirect: 'manual', dispatcher, ...(init.signal ? { signal: init.signal } : {}) });
      } catch (e) {
        const refused = findRefusal(e);
        if (refused) {
          const ctx = refused.context as { host: string; address: string; rule: string };
          const via = previous ? `, a redirect from ${previous.href}` : '';
          throw new NetworkRefusedError(`refused ${current.href} (${ctx.host} resolves to ${ctx.address}, which is ${ctx.rule}${via}); ${HINT}`, { url: current.href, ...ctx });
        }
        throw e;
      }
      const location = res.headers.get('location');
      if (![301, 302, 303, 307, 308].includes(res.status) || location === null) return res;
      await res.body?.cancel().catch(() => undefined);
      if (hop >= this.maxRedirects) {
        throw new NetworkRefusedError(`refused ${current.href}: more than ${this.maxRedirects} redirects`, { url: current.href, host: current.hostname, address: '', rule: 'redirects' });
      }
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new TypeError(`${current.href} redirected to '${location}', which is not a valid URL`);
      }
      // As fetch does: 303 becomes GET, so do 301/302 after a POST; 307 and 308 keep method and body.
      if (res.status === 303 ? method !== 'HEAD' : (res.status === 301 || res.status === 302) && method === 'POST') {
        method = 'GET';
        body = undefined;
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !/^content-(type|length|encoding|language|location)$/i.test(k)));
      }
      if (next.origin !== current.origin) headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !CREDENTIAL_HEADERS.has(k.toLowerCase())));
      previous = current;
      current = next;
    }
  }

  /** The undici dispatcher whose connections go only to checked addresses (for callers of undici directly). */
  async dispatcher(): Promise<Agent> {
    if (!this.agent) {
      const { Agent } = await this.loadUndici();
      this.agent ??= new Agent({ connect: { lookup: this.lookup } });
    }
    return this.agent;
  }

  /** Close pooled connections. */
  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    await agent?.close();
  }

  private loadUndici(): Promise<Undici> {
    // Loaded on first use: commands that fetch nothing do not pay for it.
    return (this.undici ??= import('undici'));
  }
}

function findRefusal(e: unknown): NetworkRefusedError | undefined {
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 5; c = c.cause, depth++) if (c instanceof NetworkRefusedError) return c;
  return undefined;
}
