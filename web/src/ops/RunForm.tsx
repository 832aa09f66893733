/**
 * A form generated from a workflow's input JSON Schema: one field per property (text, number,
 * a true/false choice, a choice of the enum's values, or JSON for objects, arrays and untyped
 * fields), required ones marked, defaults prefilled. It checks types and required fields before
 * sending; what only the server checks comes back as its 422 problem and is shown on the field.
 * On success it goes to the new run's page.
 *
 * @example
 *   <RunForm workflow="echo-chain" version="1.0.0" schema={wf.input_schema} />
 */
import { useMutation } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useNavigate } from 'react-router';
import { api, ApiError } from '../api';
import { ErrorBox } from '../components/Empty';
import { typeOf } from './parts';
import type { JsonSchema } from './types';

type Kind = 'string' | 'integer' | 'number' | 'boolean' | 'enum' | 'json';

function kindOf(s: JsonSchema): Kind {
  if (Array.isArray(s.enum)) return 'enum';
  const t = Array.isArray(s.type) ? s.type.filter((x) => x !== 'null')[0] : s.type;
  return t === 'string' || t === 'integer' || t === 'number' || t === 'boolean' ? t : 'json';
}

/** The text a field starts with: its default, as the field shows it. */
function initial(s: JsonSchema, kind: Kind): string {
  if (s.default === undefined) return '';
  if (kind === 'json' || kind === 'enum') return JSON.stringify(s.default, null, kind === 'json' ? 2 : undefined);
  return typeof s.default === 'string' ? s.default : JSON.stringify(s.default);
}

/** The field's value, or an error saying what is wrong; undefined: left empty. */
function parse(text: string, kind: Kind): { value?: unknown; error?: string } {
  if (text.trim() === '') return {};
  switch (kind) {
    case 'string':
      return { value: text };
    case 'integer':
      return /^-?\d+$/.test(text.trim()) ? { value: Number(text) } : { error: 'must be a whole number' };
    case 'number':
      return text.trim() !== '' && Number.isFinite(Number(text)) ? { value: Number(text) } : { error: 'must be a number' };
    case 'boolean':
      return { value: text === 'true' };
    case 'enum':
    case 'json':
      try {
        return { value: JSON.parse(text) as unknown };
      } catch {
        return { error: 'is not valid JSON' };
      }
  }
}

export function RunForm({ workflow, version, schema, disabled }: { workflow: string; version: string; schema: JsonSchema; disabled?: boolean }) {
  const navigate = useNavigate();
  const props = Object.entries(schema.properties ?? {});
  const required = new Set(schema.required ?? []);
  const kinds = Object.fromEntries(props.map(([n, s]) => [n, kindOf(s)])) as Record<string, Kind>;
  const [values, setValues] = useState<Record<string, string>>(() => Object.fromEntries(props.map(([n, s]) => [n, initial(s, kindOf(s))])));
  // With no declared fields, the whole input is one JSON object.
  const [raw, setRaw] = useState('{}');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const start = useMutation({
    mutationFn: (input: Record<string, unknown>) => api<{ run_id: string }>(`/api/v1/workflows/${encodeURIComponent(workflow)}/runs`, { method: 'POST', json: { input, version } }),
    onSuccess: (run) => void navigate(`/runs/${run.run_id}`),
    onError: (e) => {
      // The server's field errors (INPUT_INVALID, VALIDATION_FAILED) go on the fields they name.
      if (!(e instanceof ApiError)) return;
      const list = (e.problem.errors as { field?: string; problem?: string }[] | undefined) ?? [];
      const next: Record<string, string> = {};
      for (const x of list) {
        const path = (x.field ?? '').replace(/^(body\.)?input\./, '');
        const top = path.split('.')[0] ?? '';
        const name = top in kinds ? top : '_';
        const text = name === '_' || path !== top ? `${path} ${x.problem ?? 'is invalid'}`.trim() : (x.problem ?? 'is invalid');
        next[name] = next[name] ? `${next[name]}; ${text}` : text;
      }
      setErrors(next);
    },
  });

  const submit = (ev: FormEvent) => {
    ev.preventDefault();
    const next: Record<string, string> = {};
    let input: Record<string, unknown> = {};
    if (props.length === 0) {
      const p = parse(raw, 'json');
      if (p.error || (p.value !== undefined && (typeof p.value !== 'object' || p.value === null || Array.isArray(p.value)))) next._ = 'the input must be a JSON object, like {"message": "hi"}';
      else input = (p.value as Record<string, unknown> | undefined) ?? {};
    }
    for (const [name] of props) {
      const p = parse(values[name] ?? '', kinds[name] ?? 'json');
      if (p.error) next[name] = p.error;
      else if (p.value === undefined && required.has(name)) next[name] = 'is required';
      else if (p.value !== undefined) input[name] = p.value;
    }
    setErrors(next);
    if (Object.keys(next).length === 0) start.mutate(input);
  };

  const errorOf = (name: string) =>
    errors[name] ? (
      <span className="field-error" id={`run-input-${name}-error`} role="alert">
        {name} {errors[name]}
      </span>
    ) : null;

  return (
    <form className="run-form panel" onSubmit={submit} aria-label={`Run ${workflow}`} noValidate>
      {props.length === 0 ? (
        <label>
          Input (JSON object)
          <textarea rows={4} value={raw} onChange={(e) => setRaw(e.target.value)} aria-invalid={errors._ ? true : undefined} />
        </label>
      ) : null}
      {props.map(([name, s]) => {
        const kind = kinds[name] ?? 'json';
        const id = `run-input-${name}`;
        const common = {
          id,
          name,
          value: values[name] ?? '',
          'aria-invalid': errors[name] ? true : undefined,
          'aria-describedby': errors[name] ? `${id}-error` : undefined,
          'data-kind': kind,
          onChange: (e: { target: { value: string } }) => setValues((v) => ({ ...v, [name]: e.target.value })),
        };
        return (
          <div className="field" key={name}>
            <label htmlFor={id}>
              <span>
                <span className="mono field-name">{name}</span> <span className="muted">{typeOf(s)}</span>
                {required.has(name) ? (
                  <span className="required" title="required">
                    {' '}
                    * required
                  </span>
                ) : null}
              </span>
            </label>
            {kind === 'boolean' ? (
              <select {...common}>
                <option value="">{required.has(name) ? 'choose…' : '(not set)'}</option>
                <option value="true">true</option>
                <option value="false">false</option>
              </select>
            ) : kind === 'enum' ? (
              <select {...common}>
                <option value="">{required.has(name) ? 'choose…' : '(not set)'}</option>
                {(s.enum ?? []).map((v) => (
                  <option key={JSON.stringify(v)} value={JSON.stringify(v)}>
                    {typeof v === 'string' ? v : JSON.stringify(v)}
                  </option>
                ))}
              </select>
            ) : kind === 'json' ? (
              <textarea {...common} rows={3} placeholder={typeOf(s) === 'array' || typeOf(s).startsWith('array') ? '["a", "b"]' : '{"key": "value"}'} />
            ) : (
              <input {...common} type="text" inputMode={kind === 'string' ? undefined : kind === 'integer' ? 'numeric' : 'decimal'} />
            )}
            {s.description ? <span className="muted small">{s.description}</span> : null}
            {errorOf(name)}
          </div>
        );
      })}
      {errors._ ? (
        <span className="field-error" role="alert">
          {errors._}
        </span>
      ) : null}
      {start.error && !(start.error instanceof ApiError && start.error.status === 422) ? <ErrorBox error={start.error} /> : null}
      {start.error instanceof ApiError && start.error.status === 422 ? (
        <p className="field-error small">
          The server refused the input ({start.error.code}): {start.error.message}
        </p>
      ) : null}
      <div className="row">
        <button type="submit" className="primary" disabled={start.isPending || disabled}>
          {start.isPending ? 'Starting…' : 'Start run'}
        </button>
        {disabled ? <span className="muted small">The workflow is disabled: enable it to start runs.</span> : null}
      </div>
    </form>
  );
}
