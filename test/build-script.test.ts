/**
 * scripts/build.mjs, the build `npm run build` and npm's `prepare` run: it compiles into a temporary
 * directory and swaps it in by rename (a running `swarm` never sees a half-written dist/), and with
 * --if-stale it skips the build when dist/ was built from the same sources. Real tsc, real files, in
 * a small project of its own (the repository's dist/ is left alone).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, test } from 'vitest';

const REPO = resolve(import.meta.dirname, '..');
const SCRIPT = join(REPO, 'scripts', 'build.mjs');
const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A project with `files` modules under src/, each exporting its generation. */
function project(files: number, generation: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-build-test-'));
  made.push(dir);
  writeFileSync(join(dir, 'package.json'), '{"name": "build-test", "type": "module"}\n');
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, declaration: true, outDir: 'dist', rootDir: '.', types: [] }, include: ['src'] }));
  writeFileSync(join(dir, 'tsconfig.build.json'), JSON.stringify({ extends: './tsconfig.json', include: ['src'] }));
  writeSources(dir, files, generation);
  mkdirSync(join(dir, 'web'), { recursive: true });
  writeFileSync(join(dir, 'web', 'index.html'), '<!doctype html><div id="root"></div><script type="module" src="/main.js"></script>\n');
  writeFileSync(join(dir, 'web', 'main.js'), `document.getElementById('root').textContent = 'web-generation-${generation}';\n`);
  return dir;
}

function writeSources(dir: string, files: number, generation: string): void {
  mkdirSync(join(dir, 'src'), { recursive: true });
  for (let i = 0; i < files; i++) {
    writeFileSync(join(dir, 'src', `m${i}.ts`), `export const generation: string = '${generation}';\nexport function f${i}(x: number): number {\n  return x + ${i};\n}\n`);
  }
}

/** Run the build script to its end (asynchronously: other tests go on meanwhile). */
function build(dir: string, ...args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [SCRIPT, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', rej);
    child.on('close', (code) => res({ code, out }));
  });
}

const stamp = (dir: string): string => readFileSync(join(dir, 'dist', '.build-stamp'), 'utf8');
const leftovers = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith('dist.'));

// tsc is CPU-heavy: one build at a time, with room for a loaded machine.
describe('scripts/build.mjs', { timeout: 240_000 }, () => {
  test('builds dist/; --if-stale skips an unchanged build and rebuilds after a source changes', async ({ expect }) => {
    const dir = project(3, 'one');
    const first = await build(dir);
    expect(first.code, first.out).toBe(0);
    expect(readFileSync(join(dir, 'dist', 'src', 'm0.js'), 'utf8')).toContain("'one'");
    // The pages under web/ are built by Vite into dist/web, hashed assets and all.
    const page = readFileSync(join(dir, 'dist', 'web', 'index.html'), 'utf8');
    const asset = /src="\/assets\/([^"]+\.js)"/.exec(page)?.[1];
    expect(asset, page).toBeDefined();
    expect(readFileSync(join(dir, 'dist', 'web', 'assets', asset!), 'utf8')).toContain('web-generation-one');
    const before = { stamp: stamp(dir), ino: statSync(join(dir, 'dist')).ino };

    const again = await build(dir, '--if-stale');
    expect(again.code, again.out).toBe(0);
    expect(again.out).toContain('dist/ is current');
    expect({ stamp: stamp(dir), ino: statSync(join(dir, 'dist')).ino }).toEqual(before);

    writeFileSync(join(dir, 'src', 'm1.ts'), "export const generation: string = 'two';\n");
    const changed = await build(dir, '--if-stale');
    expect(changed.code, changed.out).toBe(0);
    expect(changed.out).toContain('built dist/');
    expect(readFileSync(join(dir, 'dist', 'src', 'm1.js'), 'utf8')).toContain("'two'");
    expect(stamp(dir)).not.toBe(before.stamp);
    // Without --if-stale it always builds (npm run build, npm test).
    expect((await build(dir)).out).toContain('built dist/');
    expect(leftovers(dir)).toEqual([]);
  });

  test('while it compiles, dist/ stays the whole previous build; then the new one replaces it', async ({ expect }) => {
    const files = 150;
    const dir = project(files, 'old');
    expect((await build(dir)).code).toBe(0);
    const oldStamp = stamp(dir);
    writeSources(dir, files, 'new');
    const child = spawn(process.execPath, [SCRIPT], { cwd: dir, stdio: 'ignore' });
    const tmp = join(dir, `dist.tmp-${child.pid}`);
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    let running = true;
    void exited.then(() => (running = false));
    let sawOldWhileCompiling = 0;
    const problems: string[] = [];
    while (running) {
      if (existsSync(tmp)) {
        let texts: string[] | undefined;
        try {
          texts = [0, files - 1].map((i) => readFileSync(join(dir, 'dist', 'src', `m${i}.js`), 'utf8'));
          texts.push(stamp(dir));
        } catch {
          // Between the two renames of the swap (microseconds): dist.old-<pid> holds the old build.
        }
        // Still compiling after the reads: they saw the build from before.
        if (texts && existsSync(tmp)) {
          sawOldWhileCompiling++;
          if (!texts[0]!.includes("'old'") || !texts[1]!.includes("'old'") || texts[2] !== oldStamp) problems.push(texts.join(' | '));
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await exited).toBe(0);
    expect(problems).toEqual([]);
    expect(sawOldWhileCompiling).toBeGreaterThan(0);
    expect(readFileSync(join(dir, 'dist', 'src', `m${files - 1}.js`), 'utf8')).toContain("'new'");
    expect(stamp(dir)).not.toBe(oldStamp);
    expect(leftovers(dir)).toEqual([]);
  });

  test('a compile error leaves dist/ as it was and no temporary directory behind', async ({ expect }) => {
    const dir = project(2, 'good');
    expect((await build(dir)).code).toBe(0);
    const before = stamp(dir);
    writeFileSync(join(dir, 'src', 'm0.ts'), "export const generation: number = 'not a number';\n");
    const r = await build(dir);
    expect(r.code, r.out).not.toBe(0);
    expect(r.out).toContain('dist/ is unchanged');
    expect(stamp(dir)).toBe(before);
    expect(readFileSync(join(dir, 'dist', 'src', 'm0.js'), 'utf8')).toContain("'good'");
    expect(leftovers(dir)).toEqual([]);
  });
});
