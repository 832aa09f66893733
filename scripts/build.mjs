#!/usr/bin/env node
// Build dist/ atomically: `tsc -p tsconfig.build.json` compiles into a temporary directory beside
// dist/, which then replaces dist/ by rename. A `swarm` running meanwhile keeps seeing the whole old
// build (never a half-written one), and a failed compile leaves dist/ as it was.
//
//   node scripts/build.mjs              build (npm run build)
//   node scripts/build.mjs --if-stale   build only when dist/ is not current (npm's prepare hook:
//                                       `npm link`, `npm install <path>`)
//
// The dashboard (web/) is built by Vite into dist/web inside the same temporary directory, so the
// swap replaces the server and the pages it serves together.
//
// dist/ is current when dist/.build-stamp holds the hash of what the build reads: every file under
// src/, bench/ (not bench/results/) and web/, tsconfig.json, tsconfig.build.json,
// scripts/precompile-schemas.mjs and the TypeScript and Vite versions. Run from the package root (npm
// does).
//
// Swarm's own manifest schemas are compiled ahead of time into dist/ too (scripts/precompile-schemas.mjs).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';

const ROOT = process.cwd();
const DIST = join(ROOT, 'dist');
const STAMP = '.build-stamp';
const INPUT_DIRS = ['src', 'bench', 'web'];
const INPUT_FILES = ['tsconfig.json', 'tsconfig.build.json', join('scripts', 'precompile-schemas.mjs')];
const SKIP = new Set([join('bench', 'results')]);

function filesUnder(dir) {
  const out = [];
  const walk = (d) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (SKIP.has(relative(ROOT, p))) continue;
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The hash of everything the build reads (paths and contents, in a fixed order). */
function sourceHash(root = ROOT) {
  const require = createRequire(join(root, 'package.json'));
  const version = (pkg) => {
    try {
      return require(`${pkg}/package.json`).version;
    } catch {
      return 'unknown'; // not installed: the build below says so
    }
  };
  const tsVersion = `${version('typescript')} vite ${version('vite')}`;
  const files = [...INPUT_DIRS.flatMap((d) => filesUnder(join(root, d))), ...INPUT_FILES.map((f) => join(root, f)).filter((f) => existsSync(f))];
  const h = createHash('sha256').update(`typescript ${tsVersion}\n`);
  for (const f of files.map((p) => relative(root, p).split(sep).join('/')).sort()) {
    h.update(`${f}\n`).update(createHash('sha256').update(readFileSync(join(root, f))).digest('hex')).update('\n');
  }
  return h.digest('hex');
}

function currentStamp() {
  try {
    return JSON.parse(readFileSync(join(DIST, STAMP), 'utf8')).hash;
  } catch {
    return undefined;
  }
}

/** `vite build web` into <out>/web. */
function buildWeb(out) {
  const vite = join(dirname(createRequire(join(ROOT, 'package.json')).resolve('vite/package.json')), 'bin', 'vite.js');
  return spawnSync(process.execPath, [vite, 'build', 'web', '--outDir', join(out, 'web'), '--emptyOutDir', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
}

function build(hash) {
  const tmp = join(ROOT, `dist.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  const tsc = createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', tmp], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    console.error(`build failed (tsc exit ${r.status ?? r.signal}); dist/ is unchanged`);
    return r.status || 1;
  }
  // Swarm's own manifest schemas, compiled ahead of time (src/core/manifest/schema-check.ts).
  const hasSchemas = existsSync(join(tmp, 'src', 'core', 'manifest', 'schema-check.js'));
  const p = hasSchemas ? spawnSync(process.execPath, [join(ROOT, 'scripts', 'precompile-schemas.mjs'), tmp], { cwd: ROOT, stdio: 'inherit' }) : { status: 0 };
  if (p.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    console.error(`build failed (precompiling the manifest schemas: exit ${p.status ?? p.signal}); dist/ is unchanged`);
    return p.status || 1;
  }
  // The dashboard: static files served by `swarm serve` at / (see src/server/routes/dashboard.ts).
  const w = existsSync(join(ROOT, 'web', 'index.html')) ? buildWeb(tmp) : { status: 0 };
  if (w.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    console.error(`build failed (vite exit ${w.status ?? w.signal}); dist/ is unchanged`);
    return w.status || 1;
  }
  writeFileSync(join(tmp, STAMP), `${JSON.stringify({ hash, built_at: new Date().toISOString() })}\n`);
  // Swap: the old dist/ moves aside and the new one takes its name. Another build swapping at the
  // same moment makes a rename fail: try again, the last build wins.
  const old = join(ROOT, `dist.old-${process.pid}`);
  for (let attempt = 0; ; attempt++) {
    try {
      if (existsSync(DIST)) renameSync(DIST, old);
      renameSync(tmp, DIST);
      break;
    } catch (e) {
      if (attempt >= 5 || !['ENOENT', 'ENOTEMPTY', 'EEXIST'].includes(e.code)) {
        rmSync(tmp, { recursive: true, force: true });
        throw e;
      }
    }
  }
  rmSync(old, { recursive: true, force: true });
  return 0;
}

const ifStale = process.argv.includes('--if-stale');
const hash = sourceHash();
if (ifStale && existsSync(DIST) && currentStamp() === hash) {
  console.log(`dist/ is current (sources unchanged since it was built): build skipped`);
  process.exit(0);
}
const code = build(hash);
if (code === 0) console.log(`built dist/ (${hash.slice(0, 12)})`);
process.exit(code);
