/**
 * A JSON value, readable: objects and arrays fold and unfold (keyboard reachable: each is a real
 * button), strings are quoted, long documents start folded below the first levels.
 *
 * @example
 *   <Json value={step.outputs} label="Outputs" />
 */
import { useState } from 'react';

export function Json({ value, label, open = 2 }: { value: unknown; label?: string; open?: number }) {
  if (value === undefined) return <span className="muted">–</span>;
  return (
    <div className="json" aria-label={label}>
      <JsonValue value={value} depth={0} open={open} />
    </div>
  );
}

function JsonValue({ value, depth, open }: { value: unknown; depth: number; open: number }) {
  if (value === null) return <span className="j-null">null</span>;
  if (typeof value === 'string') return <span className="j-str">{JSON.stringify(value)}</span>;
  if (typeof value === 'number') return <span className="j-num">{String(value)}</span>;
  if (typeof value === 'boolean') return <span className="j-bool">{String(value)}</span>;
  if (typeof value !== 'object') return <span>{typeof value === 'bigint' ? value.toString() : typeof value}</span>;
  return <JsonNode value={value as Record<string, unknown> | unknown[]} depth={depth} open={open} />;
}

function JsonNode({ value, depth, open }: { value: Record<string, unknown> | unknown[]; depth: number; open: number }) {
  const entries: Array<[string, unknown]> = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  const [expanded, setExpanded] = useState(depth < open && entries.length <= 50);
  const [o, c] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) return <span>{o + c}</span>;
  const summary = Array.isArray(value) ? `${entries.length} item${entries.length === 1 ? '' : 's'}` : `${entries.length} key${entries.length === 1 ? '' : 's'}`;
  return (
    <span>
      <button type="button" className="j-toggle" aria-expanded={expanded} onClick={() => setExpanded(!expanded)} title={expanded ? 'Fold' : 'Unfold'}>
        {expanded ? '▾' : '▸'} {o}
      </button>
      {expanded ? (
        <span className="j-body">
          {entries.map(([k, v]) => (
            <span className="j-row" key={k}>
              {Array.isArray(value) ? null : <span className="j-key">{JSON.stringify(k)}: </span>}
              <JsonValue value={v} depth={depth + 1} open={open} />
            </span>
          ))}
        </span>
      ) : (
        <span className="muted"> {summary} </span>
      )}
      {c}
    </span>
  );
}
