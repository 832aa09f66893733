import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { CONFIG_FILE } from './config/config.js';
import { NotFoundError, UserError } from './core/errors.js';
import { NAME_PATTERN } from './core/manifest/agent.js';
import { packageRoot } from './package-root.js';

export { packageRoot } from './package-root.js';

export const AGENT_TEMPLATES = ['basic', 'python', 'bash', 'builtin'] as const;
export const WORKFLOW_TEMPLATES = ['linear', 'parallel'] as const;

function checkName(name: string): void {
  if (!new RegExp(NAME_PATTERN).test(name)) {
    throw new UserError('NAME_INVALID', `'${name}' is not a valid name: use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit`);
  }
}

/** Copy a template directory, filling in {{name}} and {{author}}. Refuses to overwrite. */
function copyTemplate(from: string, to: string, vars: Record<string, string>): string[] {
  if (existsSync(to) && readdirSync(to).length > 0) throw new UserError('TARGET_EXISTS', `${to} already exists and is not empty`);
  mkdirSync(to, { recursive: true });
  const written: string[] = [];
  for (const f of readdirSync(from)) {
    const src = join(from, f);
    const dst = join(to, f);
    const text = readFileSync(src, 'utf8').replace(/\{\{(\w+)\}\}/g, (m, k: string) => vars[k] ?? m);
    writeFileSync(dst, text);
    if (statSync(src).mode & 0o111) chmodSync(dst, 0o755);
    written.push(dst);
  }
  return written;
}

/** Create an agent package `<dir>/<name>` from a template. */
export function createAgentPackage(name: string, template: string, dir: string, author = 'you'): string {
  checkName(name);
  if (!AGENT_TEMPLATES.includes(template as never)) throw new NotFoundError('template', template, `agent templates: ${AGENT_TEMPLATES.join(', ')}`);
  const target = resolve(dir, name);
  copyTemplate(join(packageRoot(), 'templates', 'agent', template), target, { name, author });
  return target;
}

/** Create a workflow `<dir>/<name>/workflow.yaml` from a template. */
export function createWorkflowPackage(name: string, template: string, dir: string, author = 'you'): string {
  checkName(name);
  if (!WORKFLOW_TEMPLATES.includes(template as never)) throw new NotFoundError('template', template, `workflow templates: ${WORKFLOW_TEMPLATES.join(', ')}`);
  const target = resolve(dir, name);
  copyTemplate(join(packageRoot(), 'templates', 'workflow', template), target, { name, author });
  return target;
}

/**
 * Scaffold a project: swarm.yaml, agents/ (a built-in echo and a node agent), workflows/hello.
 * Returns the files written.
 */
export function initProject(dir: string): string[] {
  const root = resolve(dir);
  if (existsSync(join(root, CONFIG_FILE))) throw new UserError('TARGET_EXISTS', `${join(root, CONFIG_FILE)} already exists: this is already a Swarm project`);
  mkdirSync(root, { recursive: true });
  const tpl = join(packageRoot(), 'templates');
  const name = basename(root).toLowerCase().replace(/[^a-z0-9._-]/g, '-') || 'swarm-project';
  const written: string[] = [];
  const cfg = join(root, CONFIG_FILE);
  writeFileSync(cfg, readFileSync(join(tpl, 'project', 'swarm.yaml'), 'utf8').replace('{{name}}', name));
  written.push(cfg);
  written.push(...copyTemplate(join(tpl, 'agent', 'builtin'), join(root, 'agents', 'echo'), { name: 'echo', author: 'you' }));
  written.push(...copyTemplate(join(tpl, 'agent', 'basic'), join(root, 'agents', 'hello-agent'), { name: 'hello-agent', author: 'you' }));
  mkdirSync(join(root, 'workflows', 'hello'), { recursive: true });
  const wf = join(root, 'workflows', 'hello', 'workflow.yaml');
  writeFileSync(wf, readFileSync(join(tpl, 'project', 'hello-workflow.yaml'), 'utf8').replace(/\{\{author\}\}/g, 'you'));
  written.push(wf);
  const ignore = join(root, '.gitignore');
  if (!existsSync(ignore)) {
    writeFileSync(ignore, '.swarm/\n');
    written.push(ignore);
  }
  return written;
}

/** The bundled examples (agents and workflows) shipped with the package. */
export function examplesDir(): { agents: string; workflows: string } {
  const root = join(packageRoot(), 'examples');
  return { agents: join(root, 'agents'), workflows: join(root, 'workflows') };
}

