/**
 * Operations: live workers and their heartbeats, approvals waiting (approve, reject), secrets
 * (names only) and API tokens (create, shown once; revoke). Secrets and tokens need the admin
 * scope: without it their sections say so instead of failing.
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { api } from '../api';
import { Empty, ErrorBox } from '../components/Empty';
import { shortId } from '../format';
import { agoMs, isForbidden, Loaded, When } from '../ops/parts';
import type { Approval, SecretInfo, Token, WorkerInfo } from '../ops/types';
import '../ops/ops.css';

export function Operations() {
  return (
    <>
      <div className="page-head">
        <h1>Operations</h1>
      </div>
      <Workers />
      <Approvals />
      <Secrets />
      <Tokens />
    </>
  );
}

function Workers() {
  // Heartbeats come every few seconds: read them again as often.
  const list = useQuery({ queryKey: ['workers'], queryFn: () => api<{ workers: WorkerInfo[] }>('/api/v1/workers'), refetchInterval: 2000 });
  return (
    <section aria-labelledby="h-workers">
      <h2 id="h-workers">Workers</h2>
      <Loaded
        q={list}
        isEmpty={(d) => d.workers.length === 0}
        empty={
          <Empty title="No workers running">
            Queued runs wait for one: start <code>swarm worker</code>, or <code>swarm serve</code> without <code>--no-worker</code>.
          </Empty>
        }
      >
        {(d) => (
          <table aria-label="Workers">
            <thead>
              <tr>
                <th>Worker</th>
                <th>State</th>
                <th>Host</th>
                <th className="num">PID</th>
                <th className="num">Concurrency</th>
                <th>Last heartbeat</th>
                <th>Started</th>
              </tr>
            </thead>
            <tbody>
              {d.workers.map((w) => (
                <tr key={w.id} data-worker={w.id} data-pid={w.pid} data-live={String(w.live)}>
                  <td className="mono">
                    {w.id}
                    {w.only_run ? <div className="small muted">one run: {w.only_run.split(',').map((r) => shortId(r)).join(', ')}</div> : null}
                  </td>
                  <td>
                    <span className={`live-dot ${w.live ? 's-completed' : 's-failed'}`}>{w.live ? 'live' : 'dead'}</span>
                  </td>
                  <td>{w.hostname}</td>
                  <td className="num mono">{w.pid}</td>
                  <td className="num">{w.concurrency.toLocaleString()}</td>
                  <td data-testid="heartbeat" title={new Date(w.heartbeat_at).toString()}>
                    {agoMs(w.heartbeat_age_ms)}
                  </td>
                  <td>
                    <When iso={w.started_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}

function Approvals() {
  const client = useQueryClient();
  const list = useQuery({ queryKey: ['approvals'], queryFn: () => api<{ approvals: Approval[] }>('/api/v1/approvals'), refetchInterval: 3000 });
  const [reason, setReason] = useState<Record<string, string>>({});
  const decide = useMutation({
    mutationFn: ({ a, decision }: { a: Approval; decision: 'approve' | 'reject' }) => {
      const why = reason[`${a.run_id}/${a.step_id}`];
      return api(`/api/v1/approvals/${encodeURIComponent(a.run_id)}/${encodeURIComponent(a.step_id)}/${decision}`, { method: 'POST', json: why ? { reason: why } : {} });
    },
    onSettled: () => void client.invalidateQueries({ queryKey: ['approvals'] }),
  });
  return (
    <section aria-labelledby="h-approvals">
      <h2 id="h-approvals">Approvals waiting</h2>
      {decide.error ? <ErrorBox error={decide.error} /> : null}
      <Loaded
        q={list}
        isEmpty={(d) => d.approvals.length === 0}
        empty={<Empty title="Nothing waits for approval">Steps of kind approval, and tools with needs_approval, wait here until someone decides.</Empty>}
      >
        {(d) => (
          <table aria-label="Approvals">
            <thead>
              <tr>
                <th>Run</th>
                <th>Step</th>
                <th>What</th>
                <th>Asked</th>
                <th>Decision</th>
              </tr>
            </thead>
            <tbody>
              {d.approvals.map((a) => {
                const key = `${a.run_id}/${a.step_id}`;
                return (
                  <tr key={`${key}/${a.call_id}`} data-approval={key}>
                    <td>
                      <Link to={`/runs/${a.run_id}`} className="mono" title={a.run_id}>
                        {shortId(a.run_id)}
                      </Link>
                    </td>
                    <td className="mono">{a.step_id}</td>
                    <td>
                      <span className="mono">{a.tool}</span>
                      <pre className="small muted">{JSON.stringify(a.arguments)}</pre>
                    </td>
                    <td>
                      <When iso={a.requested_at} />
                    </td>
                    <td>
                      <div className="row">
                        <input aria-label={`Reason for ${key}`} placeholder="reason (optional)" value={reason[key] ?? ''} onChange={(e) => setReason((r) => ({ ...r, [key]: e.target.value }))} />
                        <button type="button" className="primary" aria-label={`Approve ${key}`} disabled={decide.isPending} onClick={() => decide.mutate({ a, decision: 'approve' })}>
                          Approve
                        </button>
                        <button type="button" className="danger" aria-label={`Reject ${key}`} disabled={decide.isPending} onClick={() => decide.mutate({ a, decision: 'reject' })}>
                          Reject
                        </button>
                      </div>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}

function Secrets() {
  const list = useQuery({ queryKey: ['secrets'], queryFn: () => api<{ secrets: SecretInfo[] }>('/api/v1/secrets') });
  return (
    <section aria-labelledby="h-secrets">
      <h2 id="h-secrets">Secrets</h2>
      <Loaded
        q={list}
        isEmpty={(d) => d.secrets.length === 0}
        empty={
          <Empty title="No secrets stored">
            Store one with <code>swarm secrets set NAME</code> (or <code>PUT /api/v1/secrets/NAME</code>); workflows read it as <code>$&#123;secrets.NAME&#125;</code>.
          </Empty>
        }
      >
        {(d) => (
          <table aria-label="Secrets">
            <thead>
              <tr>
                <th>Name</th>
                <th>Scope</th>
                <th>Updated</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {d.secrets.map((s) => (
                <tr key={`${s.name}/${s.workflow ?? ''}`} data-secret={s.name}>
                  <td className="mono">{s.name}</td>
                  <td>{s.workflow ? `workflow ${s.workflow}` : 'global'}</td>
                  <td>
                    <When iso={s.updated_at} />
                  </td>
                  <td>
                    <When iso={s.created_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
      <p className="muted small">Values are never shown: they only go into the vault.</p>
    </section>
  );
}

const SCOPES = ['read', 'runs:write', 'approvals:write', 'admin'] as const;

function Tokens() {
  const client = useQueryClient();
  const list = useQuery({ queryKey: ['tokens'], queryFn: () => api<{ tokens: Token[] }>('/api/v1/tokens') });
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<string[]>(['read']);
  const [scopesTouched, setScopesTouched] = useState(false);
  const [expires, setExpires] = useState('30d');
  const [made, setMade] = useState<{ token: string; name: string } | null>(null);
  const refresh = () => void client.invalidateQueries({ queryKey: ['tokens'] });
  const session = useQuery({ queryKey: ['session'], queryFn: () => api<{ auth_required: boolean; authenticated: boolean }>('/api/v1/session') });
  // The first token turns sign-in on (the API was open until it existed): this browser signs in
  // with it at once, so the page is not sent to the login before the token could be copied.
  const firstToken = session.data !== undefined && !session.data.auth_required;
  // The first token is an admin one unless chosen otherwise: it is the one this browser keeps.
  const chosen = firstToken && !scopesTouched ? ['admin'] : scopes;
  const create = useMutation({
    mutationFn: async () => {
      const t = await api<Token & { token: string }>('/api/v1/tokens', { method: 'POST', json: { ...(name ? { name } : {}), scopes: chosen, expires: expires || 'never' } });
      if (firstToken) {
        await api('/api/v1/session', { method: 'POST', json: { token: t.token } });
        await client.invalidateQueries({ queryKey: ['session'] });
      }
      return t;
    },
    onSuccess: (t) => {
      setMade({ token: t.token, name: t.name });
      setName('');
      refresh();
    },
  });
  const revoke = useMutation({ mutationFn: (id: string) => api(`/api/v1/tokens/${encodeURIComponent(id)}`, { method: 'DELETE' }), onSettled: refresh });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setMade(null);
    create.mutate();
  };
  const forbidden = isForbidden(list.error);
  return (
    <section aria-labelledby="h-tokens">
      <h2 id="h-tokens">API tokens</h2>
      {forbidden ? null : (
        <form className="create-token panel" onSubmit={submit} aria-label="Create a token">
          <label>
            Name
            <input value={name} onChange={(e) => setName(e.target.value)} placeholder="ci" />
          </label>
          <fieldset className="scopes" style={{ border: 0, padding: 0, margin: 0 }}>
            <legend className="small muted">Scopes</legend>
            {SCOPES.map((s) => (
              <label key={s}>
                <input
                  type="checkbox"
                  checked={chosen.includes(s)}
                  onChange={(e) => {
                    setScopesTouched(true);
                    setScopes(e.target.checked ? [...chosen, s] : chosen.filter((x) => x !== s));
                  }}
                />
                {s}
              </label>
            ))}
          </fieldset>
          <label>
            Expires
            <input value={expires} onChange={(e) => setExpires(e.target.value)} placeholder="30d, 12h, 2027-01-01 or never" size={16} />
          </label>
          <button type="submit" className="primary" disabled={create.isPending || chosen.length === 0}>
            Create token
          </button>
        </form>
      )}
      {firstToken ? (
        <p className="muted small" role="note">
          No token exists yet, so the API is open on this machine. The first token turns sign-in on: this browser signs in with it (an <code>admin</code> one by default).
        </p>
      ) : null}
      {create.error ? <ErrorBox error={create.error} /> : null}
      {made ? (
        <div className="token-once" role="status" data-testid="new-token">
          <strong>Token {made.name} created: copy it now, it is not shown again.</strong>
          <code>{made.token}</code>
          <div className="row">
            <button type="button" onClick={() => void navigator.clipboard?.writeText(made.token)}>
              Copy
            </button>
            <button type="button" onClick={() => setMade(null)}>
              Done
            </button>
          </div>
        </div>
      ) : null}
      {revoke.error ? <ErrorBox error={revoke.error} /> : null}
      <Loaded
        q={list}
        isEmpty={(d) => d.tokens.length === 0}
        empty={
          <Empty title="No tokens">
            The API is open on this machine until the first token exists; creating one turns sign-in on. Create an <code>admin</code> token first (above, or <code>swarm tokens create --scope admin</code>) and sign in with it.
          </Empty>
        }
      >
        {(d) => (
          <table aria-label="Tokens">
            <thead>
              <tr>
                <th>Name</th>
                <th>Id</th>
                <th>Scopes</th>
                <th>Status</th>
                <th>Expires</th>
                <th>Last used</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {d.tokens.map((t) => (
                <tr key={t.id} data-token={t.id} data-status={t.status}>
                  <td>{t.name}</td>
                  <td className="mono">{t.id}</td>
                  <td className="mono small">{t.scopes.join(', ')}</td>
                  <td>
                    <span className={`badge ${t.status === 'active' ? 's-completed' : 's-cancelled'}`}>{t.status}</span>
                  </td>
                  <td>
                    <When iso={t.expires_at} empty="never" />
                  </td>
                  <td>
                    <When iso={t.last_used_at} empty="never" />
                  </td>
                  <td>
                    {t.status === 'active' ? (
                      <button type="button" className="danger" aria-label={`Revoke ${t.name} (${t.id})`} disabled={revoke.isPending} onClick={() => revoke.mutate(t.id)}>
                        Revoke
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}
