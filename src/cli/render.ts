import type { createLogUpdate as CreateLogUpdate } from 'log-update';
import pc from 'picocolors';
import type { RunEvent } from '../core/events.js';
import type { LoopEvent } from '../agents/loop.js';
import { CANCELLED_WHILE } from '../store/types.js';

/** Print rows as aligned columns. */
export function table(headers: string[], rows: Array<Array<string | number | null | undefined>>): string {
  // One line per row: multi-line cells (an agent's stderr in an error) are folded.
  const cell = (c: string | number | null | undefined): string => (c === null || c === undefined ? '' : String(c).replace(/\s*\n\s*/g, ' ⏎ '));
  const cells = [headers, ...rows.map((r) => r.map(cell))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r, ri) => {
      const line = r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
      return ri === 0 ? pc.bold(line) : line;
    })
    .join('\n');
}

/** A time as ISO 8601 to the second, in UTC: `2026-12-04T16:20:00Z`. */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

export function formatTime(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '' : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

const STATUS_COLOR: Record<string, (s: string) => string> = {
  completed: pc.green,
  failed: pc.red,
  cancelled: pc.yellow,
  skipped: pc.dim,
  running: pc.cyan,
  ready: pc.blue,
  pending: pc.dim,
  queued: pc.blue,
  waiting: pc.magenta,
};

export function colorStatus(status: string): string {
  return (STATUS_COLOR[status] ?? ((s: string) => s))(status);
}

const SYMBOL: Record<string, string> = { completed: '✔', failed: '✖', cancelled: '⊘', skipped: '↷', running: '▶', ready: '·', pending: '·', waiting: '⏸' };
const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

interface StepView {
  id: string;
  name: string;
  status: string;
  attempt: number;
  started: number | null;
  duration: number | null;
  note: string;
}

let createLogUpdate: typeof CreateLogUpdate | undefined;

/**
 * Loads what redraws the live view (log-update and the 20-odd modules it imports): before a live
 * ProgressReporter is made, not at every `swarm` start.
 */
export async function loadLiveView(): Promise<void> {
  createLogUpdate ??= (await import('log-update')).createLogUpdate;
}

/**
 * Shows a run's progress from its events: a live, redrawn view on a terminal (after `loadLiveView()`),
 * plain lines otherwise.
 */
export class ProgressReporter {
  private readonly steps = new Map<string, StepView>();
  private runStatus = 'queued';
  private readonly startedAt = Date.now();
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly logUpdate: ReturnType<typeof CreateLogUpdate> | undefined;

  constructor(
    private readonly title: string,
    stepList: Array<{ id: string; name?: string | undefined; status?: string; attempt?: number; duration?: number | null }>,
    private readonly live: boolean,
    private readonly out: (line: string) => void,
  ) {
    for (const s of stepList) {
      this.steps.set(s.id, { id: s.id, name: s.name ?? '', status: s.status ?? 'pending', attempt: s.attempt ?? 0, started: null, duration: s.duration ?? null, note: '' });
    }
    if (live) {
      if (!createLogUpdate) throw new Error('a live ProgressReporter needs loadLiveView() first');
      this.logUpdate = createLogUpdate(process.stderr);
      this.timer = setInterval(() => this.draw(), 80);
      this.timer.unref();
      this.draw();
    }
  }

  onEvent(e: RunEvent): void {
    const d = e.data;
    const s = e.step_id ? this.steps.get(e.step_id) : undefined;
    const line = (text: string): void => {
      if (!this.live) this.out(text);
    };
    switch (e.type) {
      case 'RUN_CREATED':
        for (const id of (d.ready as string[] | undefined) ?? []) this.set(id, { status: 'ready' });
        break;
      case 'RUN_STARTED':
        this.runStatus = 'running';
        break;
      case 'STEP_STARTED':
        if (s) {
          this.set(s.id, { status: 'running', attempt: d.attempt as number, started: e.at, note: d.reclaimed_from ? 'resumed after a crash' : '' });
          line(`${s.id}: started (attempt ${String(d.attempt)})${d.reclaimed_from ? ', taken over from a dead worker' : ''}`);
        }
        break;
      case 'STEP_COMPLETED':
        if (s) {
          this.set(s.id, { status: 'completed', duration: d.duration_ms as number, note: '' });
          line(`${s.id}: completed in ${formatMs(d.duration_ms as number)}`);
        }
        this.markReady(d.ready);
        break;
      case 'STEP_SKIPPED':
        if (s) {
          this.set(s.id, { status: 'skipped', note: String(d.reason) });
          line(`${s.id}: skipped (${String(d.reason)})`);
        }
        this.markReady(d.ready);
        break;
      case 'STEP_RETRY_SCHEDULED':
        if (s) {
          this.set(s.id, { status: 'ready', note: `retry in ${formatMs(d.retry_in_ms as number)}: ${String(d.error)}` });
          line(`${s.id}: attempt ${String(d.attempt)} failed (${String(d.error)}); retrying in ${formatMs(d.retry_in_ms as number)}`);
        }
        break;
      case 'STEP_FAILED':
        if (s) {
          this.set(s.id, { status: 'failed', note: String(d.error) });
          line(`${s.id}: failed: ${String(d.error)}${d.continued ? ' (on_error: continue)' : ''}`);
        }
        this.markReady(d.ready);
        break;
      case 'STEP_CANCELLED':
        if (s) this.cancelled(s.id);
        break;
      case 'STEP_WAITING':
        if (s) {
          this.set(s.id, { status: 'waiting', note: String(d.reason) });
          line(`${s.id}: ${String(d.reason)}`);
        }
        this.runStatus = 'waiting';
        break;
      case 'APPROVAL_DECIDED':
        if (s) {
          this.set(s.id, { status: 'ready', note: '' });
          line(`${s.id}: ${String(d.decision)}${typeof d.by === 'string' ? ` by ${d.by}` : ''}${typeof d.reason === 'string' ? ` (${d.reason})` : ''}`);
        }
        this.runStatus = 'running';
        break;
      case 'WAIT_RESOLVED':
        if (s) {
          const how = d.outcome === 'woke' ? 'woke up' : d.outcome === 'timed_out' ? 'timed out' : `got ${String(d.kind)}${typeof d.name === 'string' ? ` ${d.name}` : ''}`;
          this.set(s.id, { status: 'ready', note: '' });
          line(`${s.id}: ${how}`);
        }
        this.runStatus = 'running';
        break;
      case 'RUN_COMPLETED':
      case 'RUN_FAILED':
      case 'RUN_CANCELLED':
        this.runStatus = e.type === 'RUN_COMPLETED' ? 'completed' : e.type === 'RUN_FAILED' ? 'failed' : 'cancelled';
        for (const id of (d.cancelled as string[] | undefined) ?? []) this.cancelled(id);
        break;
      case 'RUN_RETRIED':
        this.runStatus = 'queued';
        for (const id of (d.reset as string[] | undefined) ?? []) this.set(id, { status: 'pending', note: '' });
        break;
      case 'GUARDRAIL_TRIGGERED':
        // Injection, sensitive tools, content policy, escalation: what fired, what it did, where the content came from.
        line(`${e.step_id ?? 'run'}: guardrail ${String(d.guardrail)} (${String(d.rule)}): ${String(d.action)}${typeof d.tool === 'string' ? ` on ${d.tool}` : ''}${typeof d.source === 'string' ? `, untrusted content from ${d.source}` : ''}${typeof d.reason === 'string' ? `: ${d.reason}` : ''}`);
        break;
      case 'NET_CONNECTION':
        // A sandboxed agent's connection through the policy proxy: where, allowed or refused, bytes.
        if (d.summary === true) this.log(`${e.step_id ?? 'run'}: ${String(d.connections)} more network connection(s), ${String(d.refused)} refused`);
        else if (d.allowed === true) this.log(`${e.step_id ?? 'run'}: net ${String(d.destination)}:${String(d.port)} allowed (${String(d.bytes_out)} B out, ${String(d.bytes_in)} B in)${typeof d.reason === 'string' ? `: ${d.reason}` : ''}`);
        else line(`${e.step_id ?? 'run'}: net ${String(d.destination)}:${String(d.port)} refused${typeof d.reason === 'string' ? `: ${d.reason}` : ''}`);
        break;
      case 'HANDLER_LOG':
        this.log(typeof d.message === 'string' ? `${String(d.handler)}: ${d.message}` : `${String(d.handler)} failed: ${String(d.error)}`);
        break;
      // Budgets (src/guardrails/budget.ts): the event's message names the limit, used and allowed.
      case 'BUDGET_WARNING':
      case 'BUDGET_EXCEEDED':
        this.log(`${e.step_id ? `${e.step_id}: ` : ''}${typeof d.message === 'string' ? d.message : `${e.type.toLowerCase()}: ${String(d.limit)}`}`);
        break;
      case 'HANDLER_STARTED_RUN':
        this.log(`${String(d.handler)}: started workflow ${String(d.workflow)} as run ${String(d.run_id)}`);
        break;
      case 'CIRCUIT_CHANGED':
        // Breakers are shared by the deployment: told as a log line, whatever the step's display.
        this.log(`circuit breaker ${String(d.breaker)}: ${circuitWord(d.from)} → ${circuitWord(d.to)}${typeof d.reason === 'string' ? ` (${d.reason})` : ''}`);
        break;
    }
  }

  private markReady(ready: unknown): void {
    for (const id of (ready as string[] | undefined) ?? []) this.set(id, { status: 'ready' });
  }

  private set(id: string, patch: Partial<StepView>): void {
    const s = this.steps.get(id);
    if (s) Object.assign(s, patch);
  }

  /** A step cancelled: one that was waiting says what it was waiting for, as `runs show` does, not that it still waits. */
  private cancelled(id: string): void {
    const s = this.steps.get(id);
    if (s) this.set(id, { status: 'cancelled', note: s.status === 'waiting' && s.note ? `${CANCELLED_WHILE}${s.note}` : s.note });
  }

  /** A line that stays above the live view. */
  log(text: string): void {
    if (this.live) {
      this.logUpdate?.clear();
      this.out(text);
      this.draw();
    } else this.out(text);
  }

  private draw(): void {
    this.frame++;
    const spin = SPINNER[this.frame % SPINNER.length] ?? '*';
    const width = Math.max(...[...this.steps.keys()].map((k) => k.length), 4);
    const lines = [`${pc.bold(this.title)}  ${colorStatus(this.runStatus)}  ${formatMs(Date.now() - this.startedAt)}`];
    for (const s of this.steps.values()) {
      const sym = s.status === 'running' ? pc.cyan(spin) : colorStatus(SYMBOL[s.status] ?? '·');
      const time = s.status === 'running' && s.started ? formatMs(Date.now() - s.started) : formatMs(s.duration);
      const attempt = s.attempt > 1 ? pc.dim(` attempt ${s.attempt}`) : '';
      lines.push(`  ${sym} ${s.id.padEnd(width)}  ${(STATUS_COLOR[s.status] ?? String)(s.status.padEnd(10))} ${time.padEnd(7)}${attempt} ${pc.dim(s.note.slice(0, 80))}`);
    }
    this.logUpdate?.(lines.join('\n'));
  }

  finish(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.live) {
      this.draw();
      this.logUpdate?.done();
    }
  }
}

// The JSON documents of runs are shared with the HTTP API.
export { finalOutputs, runJson, runListJson } from '../views/run.js';

/**
 * LLM loop events as terminal lines: streamed text is shown a line at a time (so it never tears the
 * live progress table), with tool calls, their results and handoffs between.
 */
export class LlmLines {
  private readonly partial = new Map<string, string>();

  constructor(private readonly print: (line: string) => void) {}

  on(stepId: string, e: LoopEvent): void {
    const tag = pc.dim(`[${stepId}]`);
    switch (e.type) {
      case 'delta': {
        const text = (this.partial.get(stepId) ?? '') + e.text;
        const lines = text.split('\n');
        this.partial.set(stepId, lines.pop() ?? '');
        for (const l of lines) this.print(`${tag} ${l}`);
        break;
      }
      case 'message': {
        const rest = this.partial.get(stepId) ?? '';
        this.partial.delete(stepId);
        if (rest) this.print(`${tag} ${rest}`);
        break;
      }
      case 'tool_call':
        this.print(`${tag} ${pc.cyan('→')} ${e.call.name}(${clip(e.call.arguments, 120)})`);
        break;
      case 'tool_result':
        this.print(`${tag} ${e.result.is_error ? pc.red('✗') : pc.green('←')} ${e.result.name}: ${clip(e.result.output, 120)}${e.replayed ? pc.dim(' (recorded)') : ''}`);
        break;
      case 'handoff':
        this.print(`${tag} ${pc.magenta('⇢')} ${e.from} hands off to ${e.to}`);
        break;
      case 'waiting':
        this.print(`${tag} ${pc.yellow('⏸')} waiting for approval: ${e.calls.map((c) => `${c.name}(${clip(c.arguments, 80)})`).join(', ')}`);
        break;
    }
  }
}

/** Longest value (a trigger, an error, an event's data) shown in full in a human view, in characters. */
export const VIEW_VALUE_CHARS = 4000;
/** Longest block of final outputs `swarm run` prints in full, in characters. */
export const VIEW_OUTPUTS_CHARS = 16_000;

let viewRedact: (text: string) => string = (t) => t;

/**
 * Set what replaces secret values in human views. Values are redacted before they are cut to fit:
 * the CLI redacts every finished line too, but a secret cut in two would no longer be recognised.
 */
export function setViewRedactor(redact: (text: string) => string): void {
  viewRedact = redact;
}

/**
 * A long value cut for a human view, saying how much was left out and how to see all of it
 * (`--json` never cuts anything).
 *
 * @example
 *   truncateView(JSON.stringify(run.trigger_data), VIEW_VALUE_CHARS, 'swarm runs show <id> --json')
 */
export function truncateView(text: string, max: number, seeAll: string): string {
  text = viewRedact(text);
  if (text.length <= max) return text;
  const rest = Buffer.byteLength(text.slice(max), 'utf8');
  return `${text.slice(0, max)}… [${rest.toLocaleString('en-US')} more bytes not shown: ${seeAll} prints all]`;
}

export function clip(text: string, max: number): string {
  const one = viewRedact(text).replace(/\s+/g, ' ');
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** `half_open` as people write it. */
function circuitWord(state: unknown): string {
  return String(state).replace('_', '-');
}

/** A cost as the budget lines show it: dollars to the millionth, without trailing zeros ($0.000042, $1.5). */
export function usd(n: number): string {
  return `$${Number(n.toFixed(6))}`;
}
