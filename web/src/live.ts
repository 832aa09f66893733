/**
 * Live updates from the API's Server-Sent Events streams. EventSource sends the session cookie on a
 * same-origin stream, so the streams are covered by the same login as every other request; the
 * browser reconnects by itself (with `Last-Event-ID`, so a run's stream resumes without a gap).
 */
import { useEffect, useRef, useState } from 'react';
import type { RunEvent, RunSummary } from './types';

/** Whether a stream is connected (`open`), (re)connecting, or ended for good (`closed`). */
export type StreamState = 'connecting' | 'open' | 'closed';

/**
 * Every change of any run (`GET /api/v1/runs/stream`): `onRun` gets the run as the list shows it.
 * The stream starts at the time it connects (reading back a short window), so a change made between
 * the list's last read and a (re)connection could be missed: `onOpen` is the caller's cue to read
 * the list again. The stream ends for good when the session's token stops being valid.
 */
export function useRunChanges(onRun: (run: RunSummary) => void, options: { enabled?: boolean; onOpen?: () => void } = {}): StreamState {
  const { enabled = true } = options;
  const handler = useRef(onRun);
  handler.current = onRun;
  const opened = useRef(options.onOpen);
  opened.current = options.onOpen;
  const [state, setState] = useState<StreamState>('connecting');
  useEffect(() => {
    if (!enabled) return undefined;
    const source = new EventSource('/api/v1/runs/stream');
    source.onopen = () => {
      setState('open');
      opened.current?.();
    };
    source.onerror = () => setState(source.readyState === EventSource.CLOSED ? 'closed' : 'connecting');
    source.addEventListener('run', (e) => handler.current(JSON.parse((e as MessageEvent<string>).data) as RunSummary));
    source.addEventListener('end', () => {
      // The server ended the stream (its token was revoked or expired): do not reconnect.
      source.close();
      setState('closed');
    });
    return () => source.close();
  }, [enabled]);
  return state;
}

/**
 * One run's events as they are recorded (`GET /api/v1/runs/{id}/stream`), from the first. The server
 * ends the stream after a finished run's last event; a new `follow` value opens it again after the
 * last event seen (`?after=`): a run retried, after it finished, goes on with new events.
 */
export function useRunEvents(runId: string | undefined, onEvent: (event: RunEvent) => void, onEnd?: () => void, follow = 0): void {
  const handler = useRef(onEvent);
  handler.current = onEvent;
  const ended = useRef(onEnd);
  ended.current = onEnd;
  // The last event seen, by run: where a stream opened again starts.
  const last = useRef<{ runId: string | undefined; seq: number }>({ runId, seq: 0 });
  useEffect(() => {
    if (runId === undefined) return undefined;
    if (last.current.runId !== runId) last.current = { runId, seq: 0 };
    const after = last.current.seq;
    const source = new EventSource(`/api/v1/runs/${encodeURIComponent(runId)}/stream${after > 0 ? `?after=${after}` : ''}`);
    source.onmessage = (e: MessageEvent<string>) => {
      const event = JSON.parse(e.data) as RunEvent;
      if (event.seq > last.current.seq) last.current.seq = event.seq;
      handler.current(event);
    };
    source.addEventListener('end', (e) => {
      // The run finished (or the session's token stopped being valid): the server closes the
      // stream; do not let the browser reconnect. Only a finished run is reported as such.
      source.close();
      const data = JSON.parse((e as MessageEvent<string>).data || '{}') as { reason?: string };
      if (data.reason === undefined) ended.current?.();
    });
    return () => source.close();
  }, [runId, follow]);
}
