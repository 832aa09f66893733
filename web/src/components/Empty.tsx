import type { ReactNode } from 'react';

/** An empty state that says what to do next. */
export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty panel" role="status">
      <strong>{title}</strong>
      {children}
    </div>
  );
}

/** An API error as the page shows it: its message and stable code. */
export function ErrorBox({ error }: { error: unknown }) {
  const e = error as { message?: string; code?: string } | null;
  return (
    <div className="error-box" role="alert">
      {e?.message ?? String(error)} {e?.code ? <code>({e.code})</code> : null}
    </div>
  );
}
