import { useState, type FormEvent } from 'react';
import { api, ApiError } from '../api';

/**
 * Where to go after signing in: a path of this site only, never an address given in the query
 * (`/\\evil.example` and `/\t/evil` are other sites to a browser: the URL parser decides).
 */
export function sameSitePath(next: string, origin = window.location.origin): string {
  try {
    const u = new URL(next, origin);
    return u.origin === origin ? `${u.pathname}${u.search}${u.hash}` : '/';
  } catch {
    return '/';
  }
}

/**
 * The sign-in page: the token goes to `POST /api/v1/session`, which checks it and answers with an
 * HttpOnly cookie; the page never keeps the token itself.
 */
export function Login() {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const next = new URLSearchParams(window.location.search).get('next') ?? '/';
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api('/api/v1/session', { method: 'POST', json: { token: token.trim() } });
      window.location.assign(sameSitePath(next));
    } catch (err) {
      setError(err instanceof ApiError ? `${err.message} (${err.code})` : String(err));
      setBusy(false);
    }
  };
  return (
    <div className="login">
      <form className="panel" onSubmit={(e) => void submit(e)} aria-labelledby="login-title">
        <div className="row">
          <img src="/favicon.svg" alt="" width={28} height={28} />
          <h1 id="login-title" style={{ margin: 0, fontSize: 20 }}>
            Sign in to Swarm
          </h1>
        </div>
        <p className="muted small" style={{ margin: 0 }}>
          This server requires an API token. Create one with <code>swarm tokens create --name me --scope admin</code> and paste it here.
        </p>
        <label>
          API token
          <input type="password" name="token" autoComplete="current-password" value={token} onChange={(e) => setToken(e.target.value)} required autoFocus />
        </label>
        {error ? (
          <div className="error-box" role="alert">
            {error}
          </div>
        ) : null}
        <button type="submit" className="primary" disabled={busy || token.trim() === ''}>
          Sign in
        </button>
      </form>
    </div>
  );
}
