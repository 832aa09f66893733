/**
 * The registry: workflows (static DAG, inputs, trigger, versions, a run form built from the input
 * schema) and agents (runtime, inputs and outputs, an LLM agent's model, tools and handoffs).
 * Routes: /registry, /registry/workflows/:name, /registry/agents/:name (`?version=` picks one).
 */
import { useQuery } from '@tanstack/react-query';
import { Link, Route, Routes, useParams, useSearchParams } from 'react-router';
import { api } from '../api';
import { Dag } from '../components/Dag';
import { Empty } from '../components/Empty';
import { Loaded, SchemaTable, When } from '../ops/parts';
import { RunForm } from '../ops/RunForm';
import type { Agent, AgentDetail, WorkflowDetail, WorkflowSummary } from '../ops/types';
import { dagNodes } from './run/graph';
import '../ops/ops.css';

const NO_REASONS: ReadonlyMap<string, string> = new Map();
const NO_APPROVALS: ReadonlySet<string> = new Set();

export function Registry() {
  return (
    <Routes>
      <Route index element={<RegistryList />} />
      <Route path="workflows/:name" element={<WorkflowView />} />
      <Route path="agents/:name" element={<AgentView />} />
      <Route path="*" element={<Empty title="Nothing here">Go back to the <Link to="/registry">registry</Link>.</Empty>} />
    </Routes>
  );
}

/** The newest version of each name, with how many versions there are. */
function newest<T extends { name: string; version: string; created_at: string }>(list: T[]): Array<T & { count: number }> {
  const by = new Map<string, T & { count: number }>();
  for (const x of list) {
    const seen = by.get(x.name);
    if (!seen) by.set(x.name, { ...x, count: 1 });
    else by.set(x.name, Date.parse(x.created_at) > Date.parse(seen.created_at) ? { ...x, count: seen.count + 1 } : { ...seen, count: seen.count + 1 });
  }
  return [...by.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function RegistryList() {
  const workflows = useQuery({ queryKey: ['workflows'], queryFn: () => api<{ workflows: WorkflowSummary[] }>('/api/v1/workflows') });
  const agents = useQuery({ queryKey: ['agents'], queryFn: () => api<{ agents: Agent[] }>('/api/v1/agents') });
  return (
    <>
      <div className="page-head">
        <h1>Registry</h1>
      </div>
      <h2>Workflows</h2>
      <Loaded
        q={workflows}
        isEmpty={(d) => d.workflows.length === 0}
        empty={
          <Empty title="No workflows registered">
            Register one with <code>swarm workflow register workflows/&lt;name&gt;</code> (a folder with a <code>workflow.yaml</code>).
          </Empty>
        }
      >
        {(d) => (
          <table aria-label="Workflows">
            <thead>
              <tr>
                <th>Name</th>
                <th>Version</th>
                <th>Trigger</th>
                <th className="num">Steps</th>
                <th>State</th>
                <th>Description</th>
              </tr>
            </thead>
            <tbody>
              {newest(d.workflows).map((w) => (
                <tr key={w.name} data-workflow={w.name}>
                  <td className="nowrap">
                    <Link to={`/registry/workflows/${encodeURIComponent(w.name)}`}>{w.name}</Link>
                  </td>
                  <td className="mono">
                    {w.version}
                    {w.count > 1 ? <span className="muted small"> (+{w.count - 1} older)</span> : null}
                  </td>
                  <td>{w.trigger}</td>
                  <td className="num">{w.steps.toLocaleString()}</td>
                  <td>{w.enabled ? 'enabled' : <span className="badge s-cancelled">disabled</span>}</td>
                  <td className="muted">{w.description ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
      <h2>Agents</h2>
      <Loaded
        q={agents}
        isEmpty={(d) => d.agents.length === 0}
        empty={
          <Empty title="No agents registered">
            Register one with <code>swarm agent register agents/&lt;name&gt;</code> (a folder with an <code>agent.yaml</code>).
          </Empty>
        }
      >
        {(d) => (
          <table aria-label="Agents">
            <thead>
              <tr>
                <th>Name</th>
                <th>Version</th>
                <th>Runtime</th>
                <th>Description</th>
              </tr>
            </thead>
            <tbody>
              {newest(d.agents).map((a) => (
                <tr key={a.name} data-agent={a.name}>
                  <td className="nowrap">
                    <Link to={`/registry/agents/${encodeURIComponent(a.name)}`}>{a.name}</Link>
                  </td>
                  <td className="mono">
                    {a.version}
                    {a.count > 1 ? <span className="muted small"> (+{a.count - 1} older)</span> : null}
                  </td>
                  <td>{a.runtime}</td>
                  <td className="muted">{a.description ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </>
  );
}

/** A `<select>` of versions that keeps the choice in `?version=`. */
function VersionPicker({ versions, current }: { versions: string[]; current: string }) {
  const [params, setParams] = useSearchParams();
  if (versions.length < 2) return <span className="mono muted">{current}</span>;
  return (
    <label className="inline">
      Version
      <select value={params.get('version') ?? current} onChange={(e) => setParams({ version: e.target.value })}>
        {versions.map((v) => (
          <option key={v} value={v}>
            {v}
          </option>
        ))}
      </select>
    </label>
  );
}

function TriggerText({ trigger }: { trigger: WorkflowDetail['trigger'] }) {
  const { type, ...rest } = trigger;
  const keys = Object.entries(rest).filter(([k]) => k !== 'secret');
  return (
    <span>
      <strong>{type}</strong>
      {keys.length ? <span className="mono small muted"> {keys.map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' · ')}</span> : null}
      {type === 'schedule' || type === 'webhook' || type === 'event' ? (
        <>
          {' '}
          <Link to="/triggers">see Triggers</Link>
        </>
      ) : null}
    </span>
  );
}

function WorkflowView() {
  const { name = '' } = useParams();
  const [params] = useSearchParams();
  const version = params.get('version');
  const ref = version ? `${name}@${version}` : name;
  const wf = useQuery({ queryKey: ['workflow-doc', ref], queryFn: () => api<WorkflowDetail>(`/api/v1/workflows/${encodeURIComponent(ref)}`) });
  return (
    <Loaded q={wf} isEmpty={() => false} empty={null}>
      {(w) => (
        <>
          <div className="page-head">
            <h1>{w.name}</h1>
            <VersionPicker versions={w.versions} current={w.version} />
            {w.enabled ? null : <span className="badge s-cancelled">disabled</span>}
            <span className="grow" />
            <Link to={`/runs?workflow=${encodeURIComponent(w.name)}`}>Its runs</Link>
          </div>
          {w.description ? <p className="muted">{w.description}</p> : null}
          <dl className="facts">
            <dt>Trigger</dt>
            <dd>
              <TriggerText trigger={w.trigger} />
            </dd>
            <dt>Steps</dt>
            <dd>{w.steps.toLocaleString()}</dd>
            <dt>Registered</dt>
            <dd>
              <When iso={w.created_at} />
            </dd>
            <dt>Versions</dt>
            <dd className="mono">{w.versions.join(', ')}</dd>
          </dl>
          <Dag
            // Labelled as on a run's page (`wait event order.paid`, `sleep 5s`, `map · resize`), all pending.
            nodes={dagNodes(w.dag.nodes, [], NO_REASONS, [], NO_APPROVALS)}
            edges={w.dag.edges}
            height={Math.min(420, 120 + 40 * Math.min(8, w.dag.nodes.length))}
          />
          <div className="two-col">
            <section aria-labelledby="wf-inputs">
              <h2 id="wf-inputs">Inputs</h2>
              <SchemaTable schema={w.input_schema} label="Inputs" />
            </section>
            <section aria-labelledby="wf-run">
              <h2 id="wf-run">Run</h2>
              <RunForm key={w.id} workflow={w.name} version={w.version} schema={w.input_schema} disabled={!w.enabled} />
            </section>
          </div>
        </>
      )}
    </Loaded>
  );
}

/** What a tool entry is called: its name, export, agent or built-in. */
function toolName(t: Record<string, unknown>, i: number): string {
  for (const k of ['name', 'export', 'agent', 'builtin']) if (typeof t[k] === 'string') return t[k];
  return `tool ${i + 1}`;
}

function AgentView() {
  const { name = '' } = useParams();
  const [params] = useSearchParams();
  const version = params.get('version');
  const ref = version ? `${name}@${version}` : name;
  const agent = useQuery({ queryKey: ['agent-doc', ref], queryFn: () => api<AgentDetail>(`/api/v1/agents/${encodeURIComponent(ref)}`) });
  return (
    <Loaded q={agent} isEmpty={() => false} empty={null}>
      {(a) => (
        <>
          <div className="page-head">
            <h1>{a.name}</h1>
            <VersionPicker versions={a.versions} current={a.version} />
            <span className="badge s-ready">{a.runtime}</span>
          </div>
          {a.description ? <p className="muted">{a.description}</p> : null}
          <dl className="facts">
            <dt>Runtime</dt>
            <dd>{a.runtime}</dd>
            {a.llm ? (
              <>
                <dt>Model</dt>
                <dd className="mono">
                  {a.llm.provider} / {a.llm.model}
                  {a.llm.temperature !== null ? ` · temperature ${a.llm.temperature}` : ''} · at most {a.llm.max_turns} turns
                </dd>
                <dt>Handoffs</dt>
                <dd>
                  {a.llm.handoffs.length
                    ? a.llm.handoffs.map((h, i) => (
                        <span key={h}>
                          {i ? ', ' : ''}
                          <Link to={`/registry/agents/${encodeURIComponent(h)}`}>{h}</Link>
                        </span>
                      ))
                    : <span className="muted">none</span>}
                </dd>
              </>
            ) : null}
            <dt>Capabilities</dt>
            <dd>{a.capabilities.length ? a.capabilities.join(', ') : <span className="muted">none</span>}</dd>
            <dt>Versions</dt>
            <dd className="mono">{a.versions.join(', ')}</dd>
            <dt>Digest</dt>
            <dd className="mono small">{a.digest}</dd>
            <dt>Registered</dt>
            <dd>
              <When iso={a.created_at} />
            </dd>
          </dl>
          {a.llm ? (
            <>
              <h2>Tools</h2>
              {a.llm.tools.length === 0 ? (
                <p className="muted small">No tools: it answers, or hands off.</p>
              ) : (
                <table aria-label="Tools">
                  <thead>
                    <tr>
                      <th>Tool</th>
                      <th>Needs approval</th>
                      <th>Declared as</th>
                    </tr>
                  </thead>
                  <tbody>
                    {a.llm.tools.map((t, i) => (
                      <tr key={i}>
                        <td className="mono">{toolName(t, i)}</td>
                        <td>{t.needs_approval ? 'yes' : ''}</td>
                        <td className="mono small">{JSON.stringify(t)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
              {a.llm.instructions ? (
                <>
                  <h2>Instructions</h2>
                  <pre className="panel">{a.llm.instructions}</pre>
                </>
              ) : null}
            </>
          ) : null}
          <h2>Inputs</h2>
          <SchemaTable schema={a.inputs} label="Inputs" />
          <h2>Outputs</h2>
          <SchemaTable schema={a.outputs} label="Outputs" />
        </>
      )}
    </Loaded>
  );
}
