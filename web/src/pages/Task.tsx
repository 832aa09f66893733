/**
 * One consensus task (`GET /api/v1/tasks/{id}`): its candidates side by side (output, proposer,
 * cost, each verifier's result with its reason names), the votes (commitments as hashes until they
 * are revealed) and the tally of the reveals, the decision and its proof (the events it rests on,
 * linked to the run's event log), and the cost by budget bucket. Read again every few seconds while
 * the task is undecided.
 */
import { useQuery } from '@tanstack/react-query';
import { Link, useParams } from 'react-router';
import { api } from '../api';
import { ErrorBox } from '../components/Empty';
import { Json } from '../components/Json';
import { StatusBadge } from '../components/StatusBadge';
import { dateTime, shortId } from '../format';
import type { Candidate, Task, Vote } from './task/types';
import './task/task.css';

const FINAL = new Set(['finalized', 'expired', 'failed']);
const usd = (n: number): string => `$${n.toFixed(n !== 0 && n < 0.01 ? 4 : 2)}`;
const short = (hash: string): string => `${hash.slice(0, 10)}…`;

export function TaskPage() {
  const params = useParams();
  const id = params['*'] ?? '';
  const task = useQuery({
    queryKey: ['task', id],
    queryFn: () => api<Task>(`/api/v1/tasks/${encodeURIComponent(id)}`),
    refetchInterval: (q) => (q.state.data && FINAL.has(q.state.data.status) ? false : 3000),
  });
  if (task.error) return <ErrorBox error={task.error} />;
  if (!task.data) return <p className="muted">Loading the task…</p>;
  const t = task.data;
  const eventsOf = `/runs/${t.run_id}?tab=events`;
  return (
    <div className="task-page">
      <div className="page-head">
        <h1 className="mono" title={t.task_id}>
          {t.task_id.includes('/') ? `${shortId(t.run_id)}/${t.step_id}` : shortId(t.task_id)}
        </h1>
        <StatusBadge status={t.status} />
        <span>{t.task_type}</span>
        <span className="muted small">
          stage {t.stage}, round {t.round}
        </span>
        <span className="small">
          run{' '}
          <Link className="mono" to={`/runs/${t.run_id}?step=${encodeURIComponent(t.step_id)}`} title={t.run_id}>
            {shortId(t.run_id)}
          </Link>
        </span>
        <span className="muted small" title={dateTime(t.created_at)}>
          created {new Date(t.created_at).toLocaleString()}
        </span>
        {!FINAL.has(t.status) ? <span className="muted small">expires {new Date(t.expires_at).toLocaleString()}</span> : null}
      </div>
      {t.reason ? (
        <div className="error-box" role="alert" data-testid="task-reason">
          <code>{t.reason.name}</code> ({t.reason.code}){t.reason.message ? `: ${t.reason.message}` : null}
        </div>
      ) : null}

      <section aria-label="Decision">
        <h2>Decision</h2>
        {t.decision ? (
          <div className="panel decision-box" data-testid="decision">
            <div className="row">
              <StatusBadge status={t.decision.finalized ? 'finalized' : 'committed'} />
              <span>
                candidate <code title={t.decision.candidate_hash}>{short(t.decision.candidate_hash)}</code> in round {t.decision.round}, quorum {t.decision.quorum}
              </span>
              {t.decision.finalized_at ? <span className="muted small">finalized {new Date(t.decision.finalized_at).toLocaleString()}</span> : null}
            </div>
            <Json value={t.decision.output} label="Decided output" />
            <div className="small" aria-label="Proof">
              <strong>Proof</strong>: the events it rests on, in the run's hash-chained log (
              <Link to={eventsOf}>event log</Link>)
              <ul className="proof">
                <li data-seq={t.decision.proof.candidate_event.seq}>
                  CANDIDATE_PROPOSED <Link to={eventsOf}>seq {t.decision.proof.candidate_event.seq}</Link> <code title={t.decision.proof.candidate_event.hash}>{short(t.decision.proof.candidate_event.hash)}</code>
                </li>
                {t.decision.proof.reveal_events.map((e) => (
                  <li key={e.seq} data-seq={e.seq}>
                    VOTE_REVEAL <Link to={eventsOf}>seq {e.seq}</Link> <code title={e.hash}>{short(e.hash)}</code>
                  </li>
                ))}
              </ul>
            </div>
          </div>
        ) : (
          <p className="muted">No decision yet.</p>
        )}
      </section>

      <section aria-label="Candidates">
        <h2>Candidates ({t.candidates.length})</h2>
        {t.candidates.length === 0 ? <p className="muted">No candidate proposed yet.</p> : null}
        <div className="candidates">
          {t.candidates.map((c) => (
            <CandidateCard key={`${c.proposer_id} ${c.round} ${c.candidate_hash}`} c={c} task={t} />
          ))}
        </div>
      </section>

      <section aria-label="Votes">
        <h2>Votes</h2>
        <Tally task={t} />
        <VoteTable votes={t.votes} />
      </section>

      <section aria-label="Cost">
        <h2>Cost</h2>
        <table className="costs" data-testid="cost">
          <thead>
            <tr>
              <th>Bucket</th>
              <th className="num">Used</th>
              <th className="num">Budget</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {(['explore', 'verify', 'finalize'] as const).map((b) => (
              <tr key={b} data-bucket={b}>
                <td>{b}</td>
                <td className="num">{usd(t.cost[`${b}_usd`])}</td>
                <td className="num">{t.cost.budget[b] !== undefined ? usd(t.cost.budget[b]) : '–'}</td>
                <td>{t.cost.exhausted.includes(b) ? <span className="badge s-failed">exhausted</span> : null}</td>
              </tr>
            ))}
            <tr data-bucket="total">
              <td>
                <strong>total</strong>
              </td>
              <td className="num">
                <strong>{usd(t.cost.total_usd)}</strong>
              </td>
              <td />
              <td />
            </tr>
          </tbody>
        </table>
      </section>
    </div>
  );
}

function CandidateCard({ c, task }: { c: Candidate; task: Task }) {
  const results = task.verifier_results.filter((r) => r.candidate_hash === c.candidate_hash);
  const winner = task.decision?.candidate_hash === c.candidate_hash;
  return (
    <article className={`panel candidate${winner ? ' winner' : ''}`} data-candidate={c.candidate_hash} aria-label={`Candidate of ${c.proposer_id}`}>
      <div className="row">
        <code title={c.candidate_hash}>{short(c.candidate_hash)}</code>
        {winner ? <span className="badge s-finalized">decided</span> : null}
      </div>
      <dl>
        <dt>Proposer</dt>
        <dd className="mono">{c.proposer_id}</dd>
        <dt>Round</dt>
        <dd>{c.round}</dd>
        <dt>Cost</dt>
        <dd data-testid="candidate-cost">{usd(c.cost_usd)}</dd>
        <dt>Event</dt>
        <dd>
          <Link to={`/runs/${task.run_id}?tab=events`}>seq {c.event.seq}</Link>
        </dd>
      </dl>
      <Json value={c.output} label="Output" />
      <ul className="verifications" aria-label="Verification">
        {results.length === 0 ? <li className="muted">not verified yet</li> : null}
        {results.map((r) => (
          <li key={r.verifier_id} data-verifier={r.verifier_id}>
            <StatusBadge status={r.status} />
            <span className="mono small">{r.verifier_id}</span>
            <span className="muted small">{r.policy_id}</span>
            <span className="small">score {r.score}</span>
            {r.reason_codes.map((rc) => (
              <span key={rc.code} className="reason-chip" title={`reason code ${rc.code}`}>
                {rc.name}
              </span>
            ))}
            {r.reason ? <span className="small muted">{r.reason}</span> : null}
          </li>
        ))}
      </ul>
    </article>
  );
}

function Tally({ task }: { task: Task }) {
  const revealed = task.tally.filter((r) => r.reveals > 0);
  if (task.tally.length === 0) return <p className="muted">No votes yet.</p>;
  if (revealed.length === 0) return <p className="muted">Commitments only: what each voter chose is shown once it reveals.</p>;
  return (
    <div className="panel" data-testid="tally" style={{ marginBottom: 10 }}>
      {revealed.map((r) => {
        const max = Math.max(1, ...Object.values(r.approvals));
        return (
          <div key={r.round}>
            <div className="small muted">
              round {r.round}: {r.reveals} of {r.commits} revealed
            </div>
            {Object.entries(r.approvals).map(([hash, n]) => (
              <div key={hash} className="small" data-tally={hash}>
                <span className="tally-bar" style={{ width: `${(n / max) * 120}px` }} />
                <code title={hash}>{short(hash)}</code> {n} approve{n === 1 ? '' : 's'}
              </div>
            ))}
          </div>
        );
      })}
    </div>
  );
}

function VoteTable({ votes }: { votes: Vote[] }) {
  if (votes.length === 0) return null;
  return (
    <table data-testid="votes">
      <thead>
        <tr>
          <th>Voter</th>
          <th>Round</th>
          <th>Commitment</th>
          <th>Revealed</th>
        </tr>
      </thead>
      <tbody>
        {votes.map((v) => (
          <tr key={`${v.round} ${v.voter_id}`} data-voter={v.voter_id} data-revealed={v.revealed ? 'yes' : 'no'}>
            <td className="mono">{v.voter_id}</td>
            <td>{v.round}</td>
            <td>
              <code title={v.commitment}>{short(v.commitment)}</code>
            </td>
            <td>
              {v.revealed ? (
                <span>
                  {v.vote} <code title={v.candidate_hash ?? ''}>{short(v.candidate_hash ?? '')}</code>
                </span>
              ) : (
                <span className="muted">not yet</span>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
