/**
 * An LLM step's conversation as people read it: messages by role, each tool call as a card with its
 * arguments and result, a handoff as a separator naming both agents, and per turn the tokens, cost
 * and latency (the time since the message before). Read again every second while the step runs.
 */
import { useQuery } from '@tanstack/react-query';
import { api, ApiError } from '../../api';
import { Json } from '../../components/Json';
import { ErrorBox } from '../../components/Empty';
import { timeOfDay } from './graph';
import { dateTime, duration } from '../../format';
import type { Transcript as TranscriptDoc } from './types';

const tokens = new Intl.NumberFormat(undefined);
const usd = new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 6 });

function parsed(text: string | null | undefined): unknown {
  if (text === null || text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The transcript of `step`, or nothing when the step never talked to a model. */
export function Transcript({ runId, step, live }: { runId: string; step: string; live: boolean }) {
  const q = useQuery({
    queryKey: ['transcript', runId, step],
    queryFn: () => api<TranscriptDoc>(`/api/v1/runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(step)}/transcript`),
    // The API has no stream of turns: while the step runs, poll.
    refetchInterval: live ? 1000 : false,
  });
  if (q.error instanceof ApiError && q.error.status === 404) return null;
  if (q.error) return <ErrorBox error={q.error} />;
  if (!q.data) return <p className="muted small">Loading the conversation…</p>;
  const t = q.data;
  const results = new Map(t.tool_calls.map((c) => [c.call_id, c]));
  let previousAt: number | undefined;
  return (
    <section className="transcript" aria-label="Conversation">
      <div className="row small muted">
        <strong className="tx-title">Conversation</strong>
        <span>{t.session.agent === t.session.current_agent ? t.session.agent : `${t.session.agent} → ${t.session.current_agent}`}</span>
        <span>{tokens.format(t.session.turns)} turns</span>
        <span>
          {tokens.format(t.session.input_tokens)} in / {tokens.format(t.session.output_tokens)} out tokens
        </span>
        <span>{usd.format(t.session.cost_usd)}</span>
        {live ? <span className="badge s-running">live</span> : null}
      </div>
      {t.messages.map((m) => {
        const latency = previousAt !== undefined ? m.at - previousAt : undefined;
        previousAt = m.at;
        if (m.role === 'tool') return null; // shown on its call's card
        if (m.role === 'system')
          return (
            <details key={m.seq} className="tx-system">
              <summary>System instructions{m.agent ? ` (${m.agent})` : ''}</summary>
              <pre>{m.content}</pre>
            </details>
          );
        const calls = m.tool_calls ?? [];
        return (
          <div key={m.seq} className={`tx-msg tx-${m.role}`} data-role={m.role}>
            <div className="tx-head small">
              <strong>{m.role === 'assistant' ? (m.agent ?? 'assistant') : m.role}</strong>
              <span className="muted" title={dateTime(m.at)}>
                {timeOfDay(m.at)}
              </span>
              {m.usage ? (
                <span className="muted tx-usage">
                  {tokens.format(m.usage.input_tokens)} in · {tokens.format(m.usage.output_tokens)} out · {usd.format(m.usage.cost_usd)}
                  {latency !== undefined ? ` · ${duration(latency)}` : ''}
                </span>
              ) : null}
            </div>
            {m.content ? <div className="tx-content">{m.content}</div> : null}
            {calls.map((c) => {
              const r = results.get(c.id);
              if (r?.handoff)
                return (
                  <div key={c.id} className="tx-handoff" role="separator" data-handoff={r.handoff}>
                    <span>
                      {m.agent ?? 'agent'} hands off to <strong>{r.handoff}</strong>
                    </span>
                  </div>
                );
              return (
                <div key={c.id} className={`tx-tool${r?.is_error ? ' tx-error' : ''}`} data-tool={c.name}>
                  <div className="small">
                    <strong className="mono">{c.name}</strong> <span className="muted">tool call</span>
                    {r?.is_error ? <span className="badge s-failed">error</span> : null}
                  </div>
                  <div className="tx-args">
                    <span className="small muted">arguments</span>
                    <Json value={parsed(c.arguments)} open={1} />
                  </div>
                  <div className="tx-args">
                    <span className="small muted">result</span>
                    {r ? <Json value={parsed(r.output)} open={1} /> : <span className="muted small">waiting…</span>}
                  </div>
                </div>
              );
            })}
          </div>
        );
      })}
    </section>
  );
}
