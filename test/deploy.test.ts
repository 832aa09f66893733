/**
 * deploy/: the Grafana dashboards, the Prometheus alert rules and configuration, the runbooks and the
 * compose stack. Every metric a panel or a rule queries must be one Swarm exports
 * (src/observability/metric-names.ts, or a prom-client default), with the labels it uses; the rules
 * pass `promtool check rules` and their unit tests `promtool test rules`; every alert links a
 * runbook that exists, and every `swarm` command a runbook cites exists with its options; the
 * compose file and the configuration files it mounts parse and point at each other (services, ports,
 * mounted paths). The compose stack itself cannot run here (no Docker).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import { parse as parseYaml } from 'yaml';
import { checkExpression, exportedSeries, promqlRefs, type SeriesDefinition } from './helpers/promql-refs.js';

const ROOT = resolve(import.meta.dirname, '..');
const DEPLOY = join(ROOT, 'deploy');
const DASHBOARDS = join(DEPLOY, 'grafana', 'dashboards');
const ALERTS = join(DEPLOY, 'prometheus', 'alerts.yml');
const COMPOSE_DIR = join(DEPLOY, 'compose');

/** A YAML file as the shape the test reads (compose merge keys `<<:` resolved). */
const readYaml = <T>(file: string): T => parseYaml(readFileSync(file, 'utf8'), { merge: true }) as T;

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleTests {
  tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}
interface TemplateVar {
  name: string;
  type: string;
  query?: string | { query: string };
  datasource?: { uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string; datasource?: { uid: string } }[];
  panels?: Panel[];
  gridPos?: { h: number; w: number; x: number; y: number };
}
interface Dashboard {
  uid: string;
  title: string;
  tags: string[];
  schemaVersion: number;
  templating: { list: TemplateVar[] };
  panels: Panel[];
}
interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command: string[];
  environment: Record<string, string>;
  depends_on?: string[] | Record<string, unknown>;
  volumes?: string[];
  ports?: string[];
}
interface PrometheusConfig {
  rule_files: string[];
  scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[];
}
type OtelPart = 'receivers' | 'processors' | 'exporters';
type OtelConfig = Record<OtelPart, Record<string, unknown> | undefined> & {
  receivers: { otlp: { protocols: { http: { endpoint: string } } } };
  service: { pipelines: Record<string, Partial<Record<OtelPart, string[]>>> };
};
const dashboardFiles = readdirSync(DASHBOARDS).filter((f) => f.endsWith('.json')).sort();

/** promtool from PATH; a missing promtool fails the test with the way to install it. */
function promtool(args: string[], cwd: string): string {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error('promtool is not installed: install Debian\'s prometheus package (apt-get install prometheus; .ci/run does)');
  }
  if (r.status !== 0) throw new Error(`promtool ${args.join(' ')} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout + r.stderr;
}

/** The alert rules and recording rules of alerts.yml. */
function rules(): Rule[] {
  return readYaml<{ groups: { rules: Rule[] }[] }>(ALERTS).groups.flatMap((g) => g.rules);
}

/** Exported series plus the recording rules' outputs (labels: what their expressions group by). */
function knownSeries(): Map<string, SeriesDefinition> {
  const series = exportedSeries();
  for (const r of rules()) {
    if (!r.record) continue;
    // What its expression keeps: the labels it sums by (a quantile drops le).
    series.set(r.record, { name: r.record, labels: new Set(promqlRefs(r.expr).grouping.filter((l) => l !== 'le')) });
  }
  return series;
}

const readDashboard = (file: string): Dashboard => JSON.parse(readFileSync(join(DASHBOARDS, file), 'utf8')) as Dashboard;

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

describe('Grafana dashboards', () => {
  const series = knownSeries();

  it('cover runs, steps, queue, LLM, tools, guardrails, triggers, workers, store and process, with unique uids', () => {
    expect(dashboardFiles.map((f) => f.replace(/^swarm-|\.json$/g, ''))).toEqual(['guardrails', 'llm', 'process', 'queue', 'runs', 'steps', 'store', 'tools', 'triggers', 'workers']);
    const uids = dashboardFiles.map((f) => readDashboard(f).uid);
    expect(new Set(uids).size).toBe(uids.length);
  });

  for (const file of dashboardFiles) {
    it(`${file}: parses, unique panel ids, the \${datasource} variable, every query against exported metrics`, () => {
      const d = readDashboard(file);
      expect(d.schemaVersion, file).toBeGreaterThanOrEqual(39);
      expect(d.title).toMatch(/^Swarm \/ /);
      expect(d.tags).toContain('swarm');
      const vars = d.templating.list;
      const names = new Set(vars.map((v) => v.name));
      expect(vars[0]).toMatchObject({ name: 'datasource', type: 'datasource', query: 'prometheus' });

      const panels = allPanels(d.panels);
      const ids = panels.map((p) => p.id);
      expect(ids.every((id) => Number.isInteger(id) && id > 0), `${file}: panel ids`).toBe(true);
      expect(new Set(ids).size, `${file}: duplicate panel ids ${ids.join(',')}`).toBe(ids.length);

      const problems: string[] = [];
      const builtins = new Set(['__rate_interval', '__range', '__interval', 'datasource']);
      const checkVars = (expr: string, where: string): void => {
        for (const v of promqlRefs(expr).variables) if (!builtins.has(v) && !names.has(v)) problems.push(`${where}: uses $${v}, which is no variable of the dashboard`);
      };
      let queries = 0;
      for (const p of panels) {
        if (p.type === 'row') continue;
        const where = `${file} panel ${p.id} "${p.title}"`;
        if (p.datasource?.uid !== '${datasource}') problems.push(`${where}: datasource is not \${datasource}`);
        if (!p.gridPos) problems.push(`${where}: no gridPos`);
        if (!p.targets?.length) problems.push(`${where}: no query`);
        for (const t of p.targets ?? []) {
          queries++;
          if (t.datasource && t.datasource.uid !== '${datasource}') problems.push(`${where} ${t.refId}: datasource is not \${datasource}`);
          problems.push(...checkExpression(t.expr, series, `${where} ${t.refId}`));
          checkVars(t.expr, `${where} ${t.refId}`);
        }
      }
      // Template variables: label_values(<selector>, <label>) must name an exported metric and label.
      for (const v of vars.filter((x) => x.type === 'query')) {
        const query = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
        const m = /^label_values\((.*),\s*(\w+)\)$/.exec(query);
        if (!m) {
          problems.push(`${file} variable ${v.name}: not a label_values() query: ${query}`);
          continue;
        }
        problems.push(...checkExpression(m[1]!, series, `${file} variable ${v.name}`));
        const metric = promqlRefs(m[1]!).selectors[0]?.metric ?? '';
        if (!series.get(metric)?.labels.has(m[2]!)) problems.push(`${file} variable ${v.name}: ${metric} has no label ${m[2]!}`);
        checkVars(m[1]!, `${file} variable ${v.name}`);
        expect(v.datasource?.uid, `${file} variable ${v.name}`).toBe('${datasource}');
      }
      expect(problems).toEqual([]);
      expect(queries).toBeGreaterThan(3);
    });
  }

  it('the check catches an unknown metric, a wrong label, a wrong grouping label and an unknown function', () => {
    const bad = 'sum by (model) (rate(swarm_runs_finished_totl{workflow="x"}[5m])) + rate(swarm_runs_started_total{status="failed"}[5m]) + sum by (tool) (rate(swarm_tool_calls_total[5m])) + ratee(gen_ai_client_token_usage_bucket{le="1"}[5m])';
    expect(checkExpression(bad, series, 'x')).toEqual([
      'x: unknown metric swarm_runs_finished_totl (not in src/observability/metric-names.ts, nor a prom-client default, nor a recording rule)',
      'x: swarm_runs_started_total has no label status (it has workflow, trigger, job, instance)',
      'x: groups by model, a label none of its metrics has',
      'x: unknown PromQL function ratee()',
    ]);
    // A bare name counts as a metric; histogram series carry le only on _bucket; defaults are known.
    expect(checkExpression('swarm_step_duration_seconds_sum{le="1"} / nodejs_eventloop_lag_p99_seconds + process_cpu_seconds_total + swarm_queue_ready_stepz', series, 'y')).toEqual([
      'y: swarm_step_duration_seconds_sum has no label le (it has workflow, agent, status, job, instance)',
      'y: unknown metric swarm_queue_ready_stepz (not in src/observability/metric-names.ts, nor a prom-client default, nor a recording rule)',
    ]);
  });
});

describe('Prometheus alert rules', () => {
  const series = knownSeries();
  const alerts = rules().filter((r) => r.alert);

  it('promtool check rules and promtool test rules pass', () => {
    expect(promtool(['check', 'rules', 'alerts.yml'], dirname(ALERTS))).toMatch(/SUCCESS: \d+ rules found/);
    expect(promtool(['test', 'rules', 'alerts.test.yml'], dirname(ALERTS))).toMatch(/SUCCESS/);
  });

  it('prometheus.yml passes promtool check config (it loads alerts.yml)', () => {
    expect(promtool(['check', 'config', 'prometheus.yml'], dirname(ALERTS))).toMatch(/SUCCESS: 1 rule files found/);
  });

  it('cover latency, errors, the queue, workers, leases, schedules, webhooks, model calls, budgets, breakers and injections', () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual([
      'SwarmBudgetExceeded', 'SwarmBudgetWarningsRising', 'SwarmCircuitFlapping', 'SwarmCircuitOpen',
      'SwarmGuardrailInjectionDetected', 'SwarmLeasesLostRepeatedly', 'SwarmModelCallErrors', 'SwarmNoLiveWorkers',
      'SwarmQueueOldestReadyAgeGrowing', 'SwarmRunDurationP95Spike', 'SwarmRunFailureRatioHigh', 'SwarmScheduleTicksMissed',
      'SwarmStepDurationP95Spike', 'SwarmWebhookBadSignatures',
    ]);
  });

  it('every rule queries exported metrics with their labels', () => {
    const problems = rules().flatMap((r) => checkExpression(r.expr, series, r.alert ?? r.record ?? '?'));
    expect(problems).toEqual([]);
  });

  it('every alert has a severity, a summary, a description and a runbook that exists and names it', () => {
    const linked = new Set<string>();
    const index = readFileSync(join(ROOT, 'docs', 'runbooks', 'README.md'), 'utf8');
    for (const a of alerts) {
      expect(['critical', 'warning'], a.alert).toContain(a.labels?.severity);
      expect(a.annotations?.summary, a.alert).toBeTruthy();
      expect(a.annotations?.description, a.alert).toBeTruthy();
      const url = a.annotations?.runbook_url ?? '';
      expect(url, a.alert).toMatch(/^docs\/runbooks\/[a-z0-9-]+\.md$/);
      const page = join(ROOT, url);
      expect(existsSync(page), `${a.alert}: ${url} does not exist`).toBe(true);
      expect(readFileSync(page, 'utf8').split('\n')[0], url).toBe(`# ${a.alert}`);
      expect(index, `docs/runbooks/README.md does not list ${a.alert}`).toContain(`[${posix.basename(url)}](${posix.basename(url)})`);
      linked.add(posix.basename(url));
    }
    // No page without its alert.
    const pages = readdirSync(join(ROOT, 'docs', 'runbooks')).filter((f) => f.endsWith('.md') && f !== 'README.md');
    expect(pages.sort()).toEqual([...linked].sort());
  });

  it('alerts.test.yml has a firing and a quiet case for every alert', () => {
    const tests = readYaml<RuleTests>(join(dirname(ALERTS), 'alerts.test.yml')).tests;
    const cases = tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      expect(mine.some((c) => (c.exp_alerts?.length ?? 0) > 0), `${a.alert}: no firing case`).toBe(true);
      expect(mine.some((c) => !c.exp_alerts?.length), `${a.alert}: no quiet case`).toBe(true);
    }
  });

  it('alerts.test.yml feeds only series Swarm exports, with their labels', () => {
    const tests = readYaml<{ tests: { input_series: { series: string }[] }[] }>(join(dirname(ALERTS), 'alerts.test.yml')).tests;
    const problems = tests.flatMap((t) => t.input_series.flatMap((s) => checkExpression(s.series, series, 'alerts.test.yml')));
    expect(problems).toEqual([]);
  });

  it('docs/observability.md lists every alert with its runbook', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'observability.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Dashboards, alerts and runbooks'), doc.indexOf('<!-- end of dashboards -->'));
    for (const a of alerts) expect(section, a.alert).toContain(`[\`${a.alert}\`](${a.annotations!.runbook_url!.replace(/^docs\//, '')})`);
  });
});

describe('the runbooks', () => {
  /** `swarm <words> --help` in this process: its exit code and what it printed. */
  async function help(words: string[]): Promise<{ code: number; text: string }> {
    let text = '';
    const listeners = { out: process.stdout.listeners('error'), err: process.stderr.listeners('error') };
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((text += String(s)), true));
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const code = await main([...words, '--help'], {}, ROOT);
      return { code, text };
    } finally {
      out.mockRestore();
      err.mockRestore();
      // main() adds an EPIPE handler to both streams per call; keep the process's as they were.
      for (const [stream, before] of [[process.stdout, listeners.out], [process.stderr, listeners.err]] as const) {
        for (const l of stream.listeners('error')) if (!before.includes(l)) stream.removeListener('error', l as (e: Error) => void);
      }
    }
  }

  it('cite swarm commands and options that exist', async () => {
    const pages = readdirSync(join(ROOT, 'docs', 'runbooks')).filter((f) => f.endsWith('.md'));
    const lines = new Map<string, string>();
    for (const page of pages) {
      const text = readFileSync(join(ROOT, 'docs', 'runbooks', page), 'utf8');
      for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
        for (const line of block[1]!.split('\n')) if (line.startsWith('swarm ')) lines.set(line.replace(/\s+#.*$/, ''), page);
      }
    }
    expect(lines.size).toBeGreaterThan(15);
    const problems: string[] = [];
    for (const [line, page] of lines) {
      const words = line.split(/\s+/).slice(1);
      // The command is the longest run of leading words that swarm knows as one (a leaf: no subcommands).
      let usage = '';
      let path: string[] = [];
      for (let i = 1; i <= words.length && /^[a-z][a-z-]*$/.test(words[i - 1]!); i++) {
        const { code, text } = await help(words.slice(0, i));
        const first = /^Usage: (.*)$/m.exec(text)?.[1] ?? '';
        if (code !== 0 || !first.startsWith(`swarm ${words.slice(0, i).join(' ')} `)) break;
        usage = text;
        path = words.slice(0, i);
      }
      if (!path.length || /\[command\]/.test(usage.split('\n')[0]!)) {
        problems.push(`${page}: \`${line}\`: no such command`);
        continue;
      }
      for (const flag of line.match(/(?<=\s)--?[a-z][a-z-]*/g) ?? []) {
        if (!new RegExp(`(^|[\\s,])${flag}\\b`, 'm').test(usage)) problems.push(`${page}: \`${line}\`: swarm ${path.join(' ')} has no option ${flag}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('the compose stack and the files it mounts', () => {
  const compose = readYaml<{ services: Record<string, ComposeService>; volumes?: Record<string, unknown> }>(join(COMPOSE_DIR, 'compose.yaml'));
  const services = compose.services;
  const service = (name: string): ComposeService => {
    const s = services[name];
    if (!s) throw new Error(`compose.yaml has no service ${name}`);
    return s;
  };

  /** The host file or directory a service sees at `path`, through its bind mounts. */
  function hostPath(service: string, path: string): string {
    const mounts = (services[service]?.volumes ?? []).filter((v) => v.startsWith('.'));
    for (const m of mounts) {
      const [src, dst] = m.split(':') as [string, string];
      if (path === dst || path.startsWith(`${dst}/`)) return join(resolve(COMPOSE_DIR, src), relative(dst, path));
    }
    throw new Error(`${service} mounts nothing at ${path}`);
  }
  const flag = (command: string[], name: string): string | undefined => {
    const i = command.indexOf(name);
    return i >= 0 ? command[i + 1] : command.find((c) => c.startsWith(`${name}=`))?.slice(name.length + 1);
  };

  it('starts PostgreSQL, serve, two workers, Prometheus, Grafana and an OpenTelemetry Collector', () => {
    expect(Object.keys(services).sort()).toEqual(['grafana', 'otel-collector', 'postgres', 'prometheus', 'swarm-serve', 'swarm-setup', 'swarm-worker-1', 'swarm-worker-2']);
    expect(service('swarm-serve').command.slice(0, 2)).toEqual(['swarm', 'serve']);
    for (const w of ['swarm-worker-1', 'swarm-worker-2']) {
      expect(service(w).command.slice(0, 2)).toEqual(['swarm', 'worker']);
      expect(flag(service(w).command, '--metrics-port')).toMatch(/^\d+$/);
    }
  });

  it('every service has an image, its build files exist, depends_on and named volumes are declared, bind mounts exist', () => {
    const problems: string[] = [];
    for (const [name, s] of Object.entries(services)) {
      if (!s.image) problems.push(`${name}: no image`);
      if (s.build) {
        if (!existsSync(join(resolve(COMPOSE_DIR, s.build.context), s.build.dockerfile))) problems.push(`${name}: no ${s.build.dockerfile}`);
        if (!existsSync(join(resolve(COMPOSE_DIR, s.build.context), 'package.json'))) problems.push(`${name}: the build context is not the repository`);
      }
      for (const dep of Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {})) {
        if (!services[dep]) problems.push(`${name}: depends on unknown service ${dep}`);
        if (dep === name) problems.push(`${name}: depends on itself`);
      }
      for (const v of s.volumes ?? []) {
        const src = v.split(':')[0]!;
        if (src.startsWith('.')) {
          if (!existsSync(resolve(COMPOSE_DIR, src))) problems.push(`${name}: mounts ${src}, which does not exist`);
        } else if (!(src in (compose.volumes ?? {}))) problems.push(`${name}: volume ${src} is not declared`);
      }
      for (const p of s.ports ?? []) if (!/^127\.0\.0\.1:\d+:\d+$/.test(p)) problems.push(`${name}: port ${p} is not published on loopback only`);
    }
    expect(problems).toEqual([]);
    expect(existsSync(join(COMPOSE_DIR, 'Dockerfile.dockerignore'))).toBe(true);
  });

  it('the Swarm services share PostgreSQL and the master key, and send traces to the collector', () => {
    for (const name of ['swarm-setup', 'swarm-serve', 'swarm-worker-1', 'swarm-worker-2']) {
      const env = service(name).environment;
      expect(new URL(env.SWARM_DATABASE_URL ?? '').hostname, name).toBe('postgres');
      expect(env.SWARM_MASTER_KEY, name).toMatch(/^\$\{SWARM_MASTER_KEY:\?/);
      expect(env.OTEL_EXPORTER_OTLP_ENDPOINT, name).toBe('http://otel-collector:4318');
      expect(env.OTEL_SERVICE_NAME, name).toBeTruthy();
    }
    const pg = service('postgres').environment;
    expect(new URL(service('swarm-serve').environment.SWARM_DATABASE_URL!).username).toBe(pg.POSTGRES_USER);
    expect(new URL(service('swarm-serve').environment.SWARM_DATABASE_URL!).pathname).toBe(`/${pg.POSTGRES_DB}`);
  });

  it('Prometheus loads prometheus.yml and the rules, and scrapes serve and both workers on their ports', () => {
    const configPath = flag(service('prometheus').command, '--config.file')!;
    const file = hostPath('prometheus', configPath);
    expect(file).toBe(join(DEPLOY, 'prometheus', 'prometheus.yml'));
    const config = readYaml<PrometheusConfig>(file);
    for (const r of config.rule_files) expect(existsSync(join(dirname(file), r)), r).toBe(true);
    const targets = config.scrape_configs.flatMap((s) => s.static_configs.flatMap((c) => c.targets));
    const expected = [
      `swarm-serve:${flag(service('swarm-serve').command, '--port')}`,
      `swarm-worker-1:${flag(service('swarm-worker-1').command, '--metrics-port')}`,
      `swarm-worker-2:${flag(service('swarm-worker-2').command, '--metrics-port')}`,
    ];
    expect(targets.sort()).toEqual(expected.sort());
    for (const s of config.scrape_configs) expect(s.metrics_path).toBe('/metrics');
  });

  it('Grafana is provisioned with the Prometheus datasource and the dashboards', () => {
    const provisioning = hostPath('grafana', '/etc/grafana/provisioning');
    expect(provisioning).toBe(join(DEPLOY, 'grafana', 'provisioning'));
    const ds = readYaml<{ apiVersion: number; datasources: { url: string; type: string }[] }>(join(provisioning, 'datasources', 'prometheus.yml'));
    expect(ds.apiVersion).toBe(1);
    expect(ds.datasources).toHaveLength(1);
    const url = new URL(ds.datasources[0]!.url);
    expect(ds.datasources[0]!.type).toBe('prometheus');
    expect(url.hostname).toBe('prometheus');
    expect(services[url.hostname]).toBeDefined();
    expect(url.port).toBe('9090');
    type Providers = { apiVersion: number; providers: { type: string; options: { path: string } }[] };
    const providers = readdirSync(join(provisioning, 'dashboards')).map((f) => readYaml<Providers>(join(provisioning, 'dashboards', f)));
    expect(providers).toHaveLength(1);
    expect(providers[0]!.providers).toHaveLength(1);
    const provider = providers[0]!.providers[0]!;
    expect(provider.type).toBe('file');
    const dir = hostPath('grafana', provider.options.path);
    expect(dir).toBe(DASHBOARDS);
    expect(statSync(dir).isDirectory()).toBe(true);
    const home = hostPath('grafana', service('grafana').environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!);
    expect(existsSync(home), home).toBe(true);
  });

  it('the OpenTelemetry Collector receives OTLP over HTTP on 4318 and every pipeline part is defined', () => {
    const configPath = flag(service('otel-collector').command, '--config')!;
    const config = readYaml<OtelConfig>(hostPath('otel-collector', configPath));
    expect(config.receivers.otlp.protocols.http.endpoint).toMatch(/:4318$/);
    const pipelines = Object.entries(config.service.pipelines);
    expect(pipelines.map(([n]) => n)).toContain('traces');
    for (const [name, p] of pipelines) {
      for (const kind of ['receivers', 'processors', 'exporters'] as const) {
        for (const c of p[kind] ?? []) expect(config[kind]?.[c], `pipeline ${name}: ${kind} ${c}`).toBeDefined();
      }
    }
  });
});
