/**
 * The model view: a LoopGuard that applies an agent's `guardrails.redaction.model` policy to what
 * the model is sent (the system text, every message, the tool calls' arguments), whatever is stored.
 * The conversation kept in memory is untouched (tools still get their real arguments); the stored
 * transcript follows the storage policy (src/secrets/redacting-store.ts).
 *
 * Messages are redacted once each (a conversation is resent every turn): results are cached by
 * message object, so a turn pays only for its new messages. The views (their compiled classes and
 * that cache) are shared by the steps of a Swarm, per policy.
 *
 * @example
 *   const guard = modelViewGuard(deps.config.redaction, agents, secrets, metrics);
 */
import { BoundedMemo } from '../../core/bounded-memo.js';
import type { AgentManifest } from '../../core/manifest/agent.js';
import type { RedactionSpec } from '../../core/manifest/guardrails/redaction.js';
import type { Message, ModelRequest } from '../../agents/types.js';
import type { EngineMetrics } from '../../observability/engine-metrics.js';
import { Redactor } from '../../secrets/redactor.js';
import type { LoopGuard } from '../guard.js';
import { ClassRedactor } from './classifier.js';
import { modelPolicy } from './policy.js';

/** The secrets the model view may hide (`secret: redact` under `model:`): the Swarm's redactor's. */
export interface SecretSource {
  /** The text with secrets' values replaced by their markers. */
  secretsOnly(s: string): string;
  /** Changes when the secrets known change (what was redacted before may need it again). */
  readonly generation?: number;
}

/** A guard for the model view of these agents; undefined when none of them hides anything from its model. */
export function modelViewGuard(deployment: RedactionSpec | undefined, agents: ReadonlyMap<string, AgentManifest>, secrets: SecretSource | undefined, metrics: () => EngineMetrics): LoopGuard | undefined {
  const views = new Map<string, View>();
  // Views by policy, shared by the steps of one Swarm (its metrics): compiled once, and a message
  // seen by an earlier step (a resumed conversation) is not redacted again.
  let shared = sharedViews.get(metrics);
  if (!shared) sharedViews.set(metrics, (shared = new BoundedMemo<string, View | null>(SHARED_VIEWS)));
  for (const [name, m] of agents) {
    const p = modelPolicy(deployment, m.llm?.guardrails?.redaction);
    const key = JSON.stringify([p, secrets !== undefined]);
    const view = shared.get(key, () => makeView(p, secrets, metrics));
    if (view) views.set(name, view);
  }
  if (views.size === 0) return undefined;
  return {
    beforeModelCall: ({ agent, request }) => {
      const view = views.get(agent.name);
      if (!view) return;
      const next = view.request(request);
      return next === request ? undefined : { request: next };
    },
  };
}

/** Per Swarm (by its metrics), the view of each model policy (null: it hides nothing). */
const sharedViews = new WeakMap<() => EngineMetrics, BoundedMemo<string, View | null>>();
const SHARED_VIEWS = 256;

function makeView(p: ReturnType<typeof modelPolicy>, secrets: SecretSource | undefined, metrics: () => EngineMetrics): View | null {
  const count = (cls: string, action: string, n: number): void => metrics().redacted(cls, action, n);
  const classes = new ClassRedactor(p.rules, p.custom, count);
  const hideSecrets = p.secret !== 'allow' && secrets !== undefined;
  if (!classes.active && !hideSecrets) return null;
  // Secrets first (their markers), then the classes; `drop` of a secret drops the message's text.
  const secretText = hideSecrets ? (s: string): string => {
    const out = secrets.secretsOnly(s);
    if (out !== s) count('secret', p.secret, 1);
    return out !== s && p.secret === 'drop' ? '[DROPPED:secret]' : out;
  } : undefined;
  const text = (s: string): string => classes.text(secretText ? secretText(s) : s);
  const jsonClasses = new Redactor({}, { classes });
  // A secret learned since a message was redacted must be hidden in it too: the cache starts over.
  return new View(text, (s) => jsonClasses.json(secretText ? secretText(s) : s), () => (hideSecrets ? (secrets.generation ?? 0) : 0));
}

class View {
  private cache = new WeakMap<Message, Message>();
  private system: { in: string; out: string } | undefined;
  private generation = 0;

  constructor(
    private readonly text: (s: string) => string,
    private readonly json: (s: string) => string,
    private readonly secretsGeneration: () => number,
  ) {}

  request(r: ModelRequest): ModelRequest {
    const g = this.secretsGeneration();
    if (g !== this.generation) {
      this.generation = g;
      this.cache = new WeakMap();
      this.system = undefined;
    }
    if (this.system?.in !== r.system) this.system = { in: r.system, out: this.text(r.system) };
    let changed = this.system.out !== r.system;
    const messages = r.messages.map((m) => {
      let out = this.cache.get(m);
      if (!out) {
        out = this.message(m);
        this.cache.set(m, out);
      }
      if (out !== m) changed = true;
      return out;
    });
    return changed ? { ...r, system: this.system.out, messages } : r;
  }

  private message(m: Message): Message {
    if (m.role === 'assistant') {
      const content = m.content === null ? null : this.text(m.content);
      let callsChanged = false;
      const calls = m.tool_calls?.map((c) => {
        const args = this.json(c.arguments);
        if (args === c.arguments) return c;
        callsChanged = true;
        return { ...c, arguments: args };
      });
      return content === m.content && !callsChanged ? m : { ...m, content, ...(calls ? { tool_calls: calls } : {}) };
    }
    const content = this.text(m.content);
    return content === m.content ? m : { ...m, content };
  }
}
