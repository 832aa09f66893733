/**
 * Tools from a JS or TS module of the package (`{ module: tools.js, export?: name }`). JavaScript is
 * loaded with a dynamic import, TypeScript through tsx. A module is loaded again when its file
 * changes, so a long-lived worker picks up edits the way it does for process agents.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { errorMessage } from '../../core/errors.js';
import type { Tool } from '../agent.js';
import { ToolLoadError } from './errors.js';
import { describeSpec, TOOL_NAME_PATTERN, type ModuleToolSpec } from './spec.js';

const JS_EXTENSIONS = new Set(['.js', '.mjs', '.cjs']);
const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts']);
const NAME = new RegExp(TOOL_NAME_PATTERN);

/**
 * Resolve `path` (relative to the package, or absolute) and require it to stay inside the package,
 * symbolic links included. Returns the absolute path.
 */
export function resolveInPackage(packageDir: string, path: string, where: string, what: string): string {
  const root = realOrSelf(resolve(packageDir));
  const abs = resolve(root, path);
  const outside = (p: string): boolean => {
    const rel = relative(root, p);
    return rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel);
  };
  if (outside(abs) || outside(realOrSelf(abs))) {
    throw new ToolLoadError('TOOL_PATH_OUTSIDE_PACKAGE', `${where}: ${what} '${path}' is outside the package directory; keep the agent's files inside its package`, false, { path });
  }
  return abs;
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** Does this look like a tool (what `tool()` makes: name, description, parameters, execute)? */
export function isTool(v: unknown): v is Tool {
  return notToolReason(v) === undefined;
}

/** Why a value is not a tool, or undefined when it is one. */
function notToolReason(v: unknown): string | undefined {
  if (typeof v === 'function') return 'it is a function; wrap it with tool({ name, description, parameters, execute })';
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return `it is ${v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`}, not a tool made with tool({ name, description, parameters, execute })`;
  const t = v as Partial<Record<keyof Tool, unknown>>;
  const missing = [
    typeof t.name !== 'string' ? 'name (a string)' : undefined,
    typeof t.description !== 'string' ? 'description (a string)' : undefined,
    typeof t.parameters !== 'object' || t.parameters === null ? 'parameters (a JSON Schema object)' : undefined,
    typeof t.execute !== 'function' ? 'execute (a function)' : undefined,
  ].filter((m): m is string => m !== undefined);
  if (missing.length) return `it has no ${missing.join(', ')}`;
  if (!NAME.test(t.name as string)) return `its name '${String(t.name)}' must be 1-64 letters, digits, _ or -`;
  return undefined;
}

interface Loaded {
  stamp: string;
  namespace: Promise<Record<string, unknown>>;
}
const loaded = new Map<string, Loaded>();

/** Import a module once per version of its file (modification time and size). */
function importModule(abs: string, packageDir: string): Promise<Record<string, unknown>> {
  const st = statSync(abs);
  const stamp = `${st.mtimeMs}:${st.size}`;
  const cached = loaded.get(abs);
  if (cached?.stamp === stamp) return cached.namespace;
  const url = pathToFileURL(abs);
  let namespace: Promise<Record<string, unknown>>;
  if (TS_EXTENSIONS.has(extname(abs))) {
    const tsconfig = join(packageDir, 'tsconfig.json');
    // tsx registers a loader scoped to this import: a fresh copy of the module and of what it imports.
    namespace = import('tsx/esm/api').then(({ tsImport }) => tsImport(url.href, { parentURL: import.meta.url, tsconfig: existsSync(tsconfig) ? tsconfig : false }) as Promise<Record<string, unknown>>);
  } else {
    // The version is part of the URL: a changed file (or a fixed one that failed before) is a new
    // module instance; the old one stays in memory.
    url.searchParams.set('v', stamp);
    namespace = import(url.href) as Promise<Record<string, unknown>>;
  }
  const entry = { stamp, namespace };
  loaded.set(abs, entry);
  namespace.catch(() => {
    if (loaded.get(abs) === entry) loaded.delete(abs);
  });
  return namespace;
}

/** The tools a `{ module, export? }` entry names. */
export async function moduleTools(spec: ModuleToolSpec, index: number, packageDir: string): Promise<Tool[]> {
  const where = describeSpec(spec, index);
  const file = spec.module;
  const ext = extname(file);
  if (!JS_EXTENSIONS.has(ext) && !TS_EXTENSIONS.has(ext)) {
    throw new ToolLoadError('TOOL_MODULE_INVALID', `${where}: '${file}' must be a JavaScript or TypeScript module (.js, .mjs, .cjs, .ts, .mts, .cts)`, false, { module: file });
  }
  const abs = resolveInPackage(packageDir, file, where, 'module');
  if (!existsSync(abs) || !statSync(abs).isFile()) {
    throw new ToolLoadError('TOOL_MODULE_NOT_FOUND', `${where}: the package has no file '${file}'`, false, { module: file });
  }
  let ns: Record<string, unknown>;
  try {
    ns = await importModule(abs, packageDir);
  } catch (e) {
    // The one package every tool may import: say how to make it importable from the agent's project.
    const hint = /Cannot find (?:module|package) 'swarm-runtime'/.test(errorMessage(e))
      ? `; it imports swarm-runtime, which is not installed where the agent's package is: in your project, npm install ${(await import('../../package-root.js')).packageRoot()} (or npm link swarm-runtime)`
      : '';
    throw new ToolLoadError('TOOL_MODULE_FAILED', `${where}: '${file}' failed to load: ${errorMessage(e)}${hint}`, false, { module: file }, { cause: e });
  }
  // Sorted as a native module namespace is, whatever loaded it: the tools' order does not depend on the loader.
  const exportNames = Object.keys(ns)
    .filter((k) => k !== '__esModule' && k !== 'module.exports')
    .sort();
  const listed = exportNames.length ? exportNames.join(', ') : 'none';

  if (spec.export !== undefined) {
    if (!(spec.export in ns)) {
      throw new ToolLoadError('TOOL_EXPORT_MISSING', `${where}: '${file}' has no export '${spec.export}' (its exports: ${listed})`, false, { module: file, export: spec.export });
    }
    const value = ns[spec.export];
    const tools = toolsIn(value);
    if (!tools) {
      const reason = Array.isArray(value) ? 'it is an array whose items are not all tools' : notToolReason(value);
      throw new ToolLoadError('TOOL_EXPORT_INVALID', `${where}: export '${spec.export}' of '${file}' is not a tool: ${reason}`, false, { module: file, export: spec.export });
    }
    return tools;
  }

  const found: Tool[] = [];
  const add = (ts: Tool[]): void => {
    for (const t of ts) if (!found.includes(t)) found.push(t);
  };
  for (const name of exportNames) {
    const ts = toolsIn(ns[name]);
    if (ts) add(ts);
  }
  // A CommonJS module's `module.exports = { a, b }` arrives as the default export.
  const dflt = ns.default;
  if (!found.length && typeof dflt === 'object' && dflt !== null && !Array.isArray(dflt)) {
    for (const v of Object.values(dflt)) {
      const ts = toolsIn(v);
      if (ts) add(ts);
    }
  }
  if (!found.length) {
    throw new ToolLoadError(
      'TOOL_EXPORT_INVALID',
      `${where}: '${file}' exports no tools (its exports: ${listed}); export values made with tool({ name, description, parameters, execute })`,
      false,
      { module: file },
    );
  }
  return found;
}

/** A tool, or a non-empty array of tools, as a list; undefined for anything else. */
function toolsIn(v: unknown): Tool[] | undefined {
  if (isTool(v)) return [v];
  if (Array.isArray(v) && v.length > 0 && v.every(isTool)) return v;
  return undefined;
}
