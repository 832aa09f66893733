/**
 * Live updates from the API's Server-Sent Events streams. EventSource sends the session cookie on a
 * same-origin stream, so the streams are covered by the same login as every other request; the
 * browser reconnects by itself (with `Last-Event-ID`, so a run's stream resumes without a gap).
 */
import { useEffect, useRef } from 'react';
import type { RunEvent, RunSummary } from './types';

/** Every change of any run (`GET /api/v1/runs/stream`): `onRun` gets the run as the list shows it. */
export function useRunChanges(onRun: (run: RunSummary) => void, enabled = true): void {
  const handler = useRef(onRun);
  handler.current = onRun;
  useEffect(() => {
    if (!enabled) return undefined;
    const source = new EventSource('/api/v1/runs/stream');
    source.addEventListener('run', (e) => handler.current(JSON.parse((e as MessageEvent<string>).data) as RunSummary));
    return () => source.close();
  }, [enabled]);
}

/** One run's events as they are recorded (`GET /api/v1/runs/{id}/stream`), from the first. */
export function useRunEvents(runId: string | undefined, onEvent: (event: RunEvent) => void, onEnd?: () => void): void {
  const handler = useRef(onEvent);
  handler.current = onEvent;
  const ended = useRef(onEnd);
  ended.current = onEnd;
  useEffect(() => {
    if (runId === undefined) return undefined;
    const source = new EventSource(`/api/v1/runs/${encodeURIComponent(runId)}/stream`);
    source.onmessage = (e: MessageEvent<string>) => handler.current(JSON.parse(e.data) as RunEvent);
    source.addEventListener('end', () => {
      // The run finished: the server closes the stream; do not let the browser reconnect.
      source.close();
      ended.current?.();
    });
    return () => source.close();
  }, [runId]);
}
