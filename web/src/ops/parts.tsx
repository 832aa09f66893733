/** Small pieces the Registry, Triggers and Operations pages share. */
import type { UseQueryResult } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { ApiError } from '../api';
import { Empty, ErrorBox } from '../components/Empty';
import { dateTime } from '../format';
import type { JsonSchema } from './types';

/** A JSON Schema's type as one word (`string`, `integer | null`, `array of string`, `any`). */
export function typeOf(s: JsonSchema | undefined): string {
  if (!s) return 'any';
  if (Array.isArray(s.enum)) return 'enum';
  const t = Array.isArray(s.type) ? s.type.join(' | ') : (s.type ?? 'any');
  if (t === 'array' && s.items?.type) return `array of ${typeOf(s.items)}`;
  return t;
}

/**
 * The fields of an object schema as a table (name, type, required, default, description); a
 * schema without properties says what it accepts.
 *
 * @example
 *   <SchemaTable schema={agent.inputs} label="Inputs" />
 */
export function SchemaTable({ schema, label }: { schema: JsonSchema; label: string }) {
  const props = Object.entries(schema.properties ?? {});
  const required = new Set(schema.required ?? []);
  if (props.length === 0) return <p className="muted small">{label}: any JSON object (no fields declared).</p>;
  return (
    <table aria-label={label} className="schema-table">
      <thead>
        <tr>
          <th>Name</th>
          <th>Type</th>
          <th>Required</th>
          <th>Default</th>
          <th>Description</th>
        </tr>
      </thead>
      <tbody>
        {props.map(([name, p]) => (
          <tr key={name} data-field={name}>
            <td className="mono">{name}</td>
            <td className="mono">
              {typeOf(p)}
              {Array.isArray(p.enum) ? <span className="muted"> {p.enum.map((v) => JSON.stringify(v)).join(', ')}</span> : null}
            </td>
            <td>{required.has(name) ? 'yes' : ''}</td>
            <td className="mono">{p.default !== undefined ? JSON.stringify(p.default) : ''}</td>
            <td>{p.description ?? ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** An ISO time in the user's locale, the full date on hover. */
export function When({ iso, empty = '–' }: { iso: string | null | undefined; empty?: string }) {
  if (!iso) return <span className="muted">{empty}</span>;
  const ms = Date.parse(iso);
  return (
    <time dateTime={iso} title={new Date(ms).toString()}>
      {dateTime(ms)}
    </time>
  );
}

/** Does this error say the token lacks a scope (403)? */
/** A 403 for want of a scope (not a refused host or origin, which are 403 too). */
export function isForbidden(e: unknown): e is ApiError {
  return e instanceof ApiError && e.status === 403 && e.code === 'TOKEN_SCOPE_INSUFFICIENT';
}

/**
 * A query's loading, error and empty states around its content: a 403 says which scope is needed,
 * other errors show their code.
 */
export function Loaded<T>({ q, empty, isEmpty, children }: { q: UseQueryResult<T>; empty: ReactNode; isEmpty: (data: T) => boolean; children: (data: T) => ReactNode }) {
  if (q.error) {
    if (isForbidden(q.error)) {
      return (
        <Empty title="Needs the admin scope">
          Your token cannot see this ({q.error.code}). Sign in with a token that has the <code>admin</code> scope, e.g. one made by{' '}
          <code>swarm tokens create --scope admin</code>.
        </Empty>
      );
    }
    return <ErrorBox error={q.error} />;
  }
  if (q.data === undefined) return <p className="muted" role="status">Loading…</p>;
  if (isEmpty(q.data)) return <>{empty}</>;
  return <>{children(q.data)}</>;
}

/** `3 s ago`, `4 min ago` from a duration in ms (for heartbeats: to the second). */
export function agoMs(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}
