/**
 * What the dashboard's browser tests share: a real `swarm serve` process in a sandbox project, and a
 * real headless Chromium (Debian's `chromium`, driven by playwright-core; `.ci/run` installs it).
 *
 * @example
 *   const s = await examplesProject();
 *   const srv = await serve(s);
 *   const page = await (await browser()).newPage();
 *   await page.goto(srv.url);
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { cleanupSandboxes, examplesStore, makeSandbox, REPO_ROOT, until, type CliResult, type Sandbox } from '../helpers/cli.js';

/** Where Chromium is: SWARM_CHROMIUM, or Debian's and Ubuntu's usual paths. */
export function chromiumPath(): string {
  const candidates = [process.env.SWARM_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`no Chromium found (tried ${candidates.join(', ')}): install it (apt-get install -y chromium) or set SWARM_CHROMIUM`);
  return found;
}

let shared: Promise<Browser> | undefined;

/** One headless Chromium per test file (close it with closeBrowser in afterAll). */
export function browser(): Promise<Browser> {
  shared ??= chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
  return shared;
}

export async function closeBrowser(): Promise<void> {
  const b = shared;
  shared = undefined;
  if (b) await (await b).close();
}

/** A fresh browser context (its own cookies) at 1280×800, light mode unless asked. */
export async function newPage(options: { dark?: boolean } = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await (await browser()).newContext({ viewport: { width: 1280, height: 800 }, colorScheme: options.dark ? 'dark' : 'light' });
  const page = await context.newPage();
  // A failed assertion in the page (an uncaught error) fails the test that caused it.
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  return { context, page };
}

/** Uncaught errors of the pages (tests check it stays empty). */
export const pageErrors: string[] = [];

/**
 * Save a screenshot for the README when SWARM_SCREENSHOTS names a directory (`npm run screenshots`
 * writes docs/screenshots/); otherwise nothing.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env.SWARM_SCREENSHOTS;
  if (!dir) return;
  const abs = join(REPO_ROOT, dir);
  mkdirSync(abs, { recursive: true });
  await page.screenshot({ path: join(abs, `${name}.png`) });
}

/** A sandbox project starting from a store with the bundled examples registered. */
export async function examplesProject(env: Record<string, string> = {}): Promise<Sandbox> {
  const s = makeSandbox({ env: { SWARM_SANDBOX: 'none', ...env } });
  s.copyStore(await examplesStore());
  return s;
}

export interface Served {
  url: string;
  child: ChildProcess;
  done: Promise<CliResult>;
  output: () => string;
  /** SIGTERM, and wait for the exit. */
  stop: () => Promise<void>;
}

/** `swarm serve --port 0` in the sandbox; resolves with its URL once it prints its start-up line. */
export async function serve(s: Sandbox, args: string[] = []): Promise<Served> {
  const { child, done } = s.start(['serve', '--port', '0', ...args], { timeoutMs: 300_000 });
  let out = '';
  child.stdout?.on('data', (d: Buffer | string) => (out += String(d)));
  child.stderr?.on('data', (d: Buffer | string) => (out += String(d)));
  const url = await until('the start-up line', async () => /listening on (http:\/\/\S+)/.exec(out)?.[1], 30_000, 50).catch((e: unknown) => {
    throw new Error(`${String(e)}\n${out}`);
  });
  return {
    url: url.replace(/\/$/, ''),
    child,
    done,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await done;
    },
  };
}

/** JSON from the server (as a client outside the browser). */
export async function call<T = Record<string, unknown>>(url: string, method: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: T }> {
  const res = await fetch(url, { method, ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } } : { headers }) });
  const text = await res.text();
  return { status: res.status, json: (text === '' ? {} : JSON.parse(text)) as T };
}

/**
 * The hooks of a browser test file: `start` makes its project and its `swarm serve` once (before
 * all), which are stopped and removed with the browser after all; every test ends with no uncaught
 * error in its pages.
 *
 * @example
 *   let srv: Served;
 *   browserFile(async () => (srv = await serve(await examplesProject())));
 */
export function browserFile(start: () => Promise<Served>, timeoutMs?: number): void {
  let served: Served | undefined;
  beforeAll(async () => {
    served = await start();
  }, timeoutMs);
  afterAll(async () => {
    await served?.stop();
    await closeBrowser();
    cleanupSandboxes();
  });
  afterEach(() => {
    expect(pageErrors.splice(0)).toEqual([]);
  });
}
