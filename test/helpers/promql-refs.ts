/**
 * What a PromQL expression refers to, for checking dashboards and alert rules against the metrics
 * Swarm exports: the metric names it selects, the label names each selector matches on, the label
 * names it groups or joins by, the functions it calls and the Grafana variables it uses.
 *
 * Not a PromQL parser: a tokenizer good enough for the expressions in deploy/ (it strips strings,
 * ranges and grouping clauses, then reads selectors and bare names). Anything it cannot place is
 * reported as a metric name, so a typo fails the check instead of passing unseen.
 *
 * @example
 *   promqlRefs('sum by (status) (rate(swarm_runs_finished_total{workflow=~"$workflow"}[5m]))');
 *   // { selectors: [{ metric: 'swarm_runs_finished_total', labels: ['workflow'] }], grouping: ['status'],
 *   //   functions: ['sum', 'rate'], variables: ['workflow'] }
 */
import { Histogram } from 'prom-client';
import { createMetrics } from '../../src/observability/metrics.js';
import { METRICS } from '../../src/observability/metric-names.js';

export interface PromqlRefs {
  selectors: { metric: string; labels: string[] }[];
  grouping: string[];
  functions: string[];
  variables: string[];
}

/** PromQL's functions and aggregation operators (Prometheus 2.42 and 3.x). */
export const PROMQL_FUNCTIONS = new Set([
  // aggregations
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile',
  // functions
  'abs', 'absent', 'absent_over_time', 'ceil', 'changes', 'clamp', 'clamp_max', 'clamp_min', 'day_of_month',
  'day_of_week', 'day_of_year', 'days_in_month', 'delta', 'deriv', 'exp', 'floor', 'histogram_count',
  'histogram_fraction', 'histogram_quantile', 'histogram_sum', 'histogram_stddev', 'histogram_stdvar',
  'holt_winters', 'hour', 'idelta', 'increase', 'irate', 'label_join', 'label_replace', 'ln', 'log2', 'log10',
  'minute', 'month', 'predict_linear', 'rate', 'resets', 'round', 'scalar', 'sgn', 'sort', 'sort_desc', 'sqrt',
  'time', 'timestamp', 'vector', 'year', 'avg_over_time', 'min_over_time', 'max_over_time', 'sum_over_time',
  'count_over_time', 'quantile_over_time', 'stddev_over_time', 'stdvar_over_time', 'last_over_time',
  'present_over_time', 'acos', 'acosh', 'asin', 'asinh', 'atan', 'atanh', 'cos', 'cosh', 'sin', 'sinh', 'tan',
  'tanh', 'deg', 'rad', 'pi',
]);

/** Keywords that stand alone: set operators, modifiers, special numbers. */
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);
const GROUPING = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;
const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';

export function promqlRefs(expr: string): PromqlRefs {
  const variables = new Set<string>();
  for (const m of expr.matchAll(/\$\{?(\w+)/g)) variables.add(m[1]!);
  // Strings first: a label value may hold anything, a regex or a Grafana variable included.
  let rest = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  rest = rest.replace(/#[^\n]*/g, ' ');
  const selectors: PromqlRefs['selectors'] = [];
  rest = rest.replace(new RegExp(`(?<![\\w:])(${NAME})?\\s*\\{([^}]*)\\}`, 'g'), (_all, metric: string | undefined, body: string) => {
    const labels = [...body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((m) => m[1]!);
    selectors.push({ metric: metric ?? '', labels });
    return ' ';
  });
  // Ranges and subqueries ([10m], [$__rate_interval], [15m:1m]) hold durations, not names.
  rest = rest.replace(/\[[^\]]*\]/g, ' ');
  const grouping = new Set<string>();
  rest = rest.replace(GROUPING, (_all, _kw: string, labels: string) => {
    for (const l of labels.split(',').map((s) => s.trim()).filter(Boolean)) grouping.add(l);
    return ' ';
  });
  const functions = new Set<string>();
  // A name not preceded by a word character or a dot: `10m` and `1e3` are numbers, not names.
  for (const m of rest.matchAll(new RegExp(`(?<![\\w.$])(${NAME})(\\s*\\()?`, 'g'))) {
    const name = m[1]!;
    if (KEYWORDS.has(name.toLowerCase())) continue; // `or (…)` is an operator, not a call
    if (m[2]) functions.add(name);
    else selectors.push({ metric: name, labels: [] });
  }
  return { selectors, grouping: [...grouping], functions: [...functions], variables: [...variables] };
}

/** A series name Prometheus stores, with the label names it carries. */
export interface SeriesDefinition {
  name: string;
  labels: Set<string>;
}

/** Labels Prometheus adds to every scraped series (the target's). */
export const TARGET_LABELS = ['job', 'instance'];

/**
 * The series Swarm exports: METRICS (a histogram as its `_bucket` with `le`, `_sum` and `_count`)
 * and the process and Node.js metrics Swarm's registry keeps, read from a real one (createMetrics()).
 */
export function exportedSeries(): Map<string, SeriesDefinition> {
  const out = new Map<string, SeriesDefinition>();
  const add = (name: string, labels: readonly string[], histogram: boolean): void => {
    const names = histogram ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
    for (const n of names) out.set(n, { name: n, labels: new Set([...labels, ...TARGET_LABELS, ...(n.endsWith('_bucket') && histogram ? ['le'] : [])]) });
  };
  for (const m of METRICS) add(m.name, m.labels, m.type === 'histogram');
  // Swarm's own registry, as `swarm serve` builds it: the process and Node.js metrics it keeps (not
  // every prom-client default: see src/observability/metrics.ts) next to METRICS.
  for (const m of createMetrics().registry.getMetricsAsArray()) {
    const labelNames = (m as unknown as { labelNames?: string[] }).labelNames ?? [];
    add(m.name, labelNames, m instanceof Histogram);
  }
  return out;
}

/**
 * Problems of one expression against the known series: unknown metrics, label names a selector uses
 * that its metric does not have, grouping labels none of its metrics has, unknown functions.
 * `where` names the expression in each message.
 */
export function checkExpression(expr: string, series: Map<string, SeriesDefinition>, where: string): string[] {
  const problems: string[] = [];
  const refs = promqlRefs(expr);
  const seen = new Set<string>(TARGET_LABELS);
  for (const s of refs.selectors) {
    if (!s.metric) {
      problems.push(`${where}: a selector without a metric name in ${JSON.stringify(expr)}`);
      continue;
    }
    const def = series.get(s.metric);
    if (!def) {
      problems.push(`${where}: unknown metric ${s.metric} (not in src/observability/metric-names.ts, nor a prom-client default, nor a recording rule)`);
      continue;
    }
    for (const l of def.labels) seen.add(l);
    for (const l of s.labels) if (!def.labels.has(l)) problems.push(`${where}: ${s.metric} has no label ${l} (it has ${[...def.labels].join(', ')})`);
  }
  for (const l of refs.grouping) if (!seen.has(l)) problems.push(`${where}: groups by ${l}, a label none of its metrics has`);
  for (const f of refs.functions) if (!PROMQL_FUNCTIONS.has(f)) problems.push(`${where}: unknown PromQL function ${f}()`);
  return problems;
}
