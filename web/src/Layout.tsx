import { useQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { NavLink, Outlet, useLocation } from 'react-router';
import { api } from './api';
import { applyTheme, currentTheme, followSystemTheme, type Theme } from './theme';

interface Session {
  auth_required: boolean;
  authenticated: boolean;
  token_id: string | null;
  scopes: string[];
}

/** The frame of every page: navigation, the theme toggle, sign-out when signed in. */
export function Layout() {
  const [theme, setTheme] = useState<Theme>(currentTheme);
  useEffect(() => applyTheme(theme), [theme]);
  useEffect(() => followSystemTheme(setTheme), []);
  const session = useQuery({ queryKey: ['session'], queryFn: () => api<Session>('/api/v1/session') });
  const location = useLocation();
  const runsActive = location.pathname === '/' || location.pathname.startsWith('/runs');
  return (
    <div className="app">
      <nav className="nav" aria-label="Main">
        <div className="brand">
          <img src="/favicon.svg" alt="" width={22} height={22} />
          Swarm
        </div>
        <NavLink to="/runs" className={runsActive ? 'active' : ''}>
          Runs
        </NavLink>
        <NavLink to="/tasks">Tasks</NavLink>
        <NavLink to="/registry">Registry</NavLink>
        <NavLink to="/triggers">Triggers</NavLink>
        <NavLink to="/operations">Operations</NavLink>
        <div className="spacer" />
        <button
          type="button"
          onClick={() => {
            const next = theme === 'dark' ? 'light' : 'dark';
            applyTheme(next, true);
            setTheme(next);
          }}
          aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} mode`}
        >
          {theme === 'dark' ? 'Light mode' : 'Dark mode'}
        </button>
        {session.data?.authenticated ? (
          <button
            type="button"
            style={{ marginTop: 6 }}
            onClick={() => {
              void api('/api/v1/session', { method: 'DELETE' }).finally(() => window.location.assign('/login'));
            }}
          >
            Sign out
          </button>
        ) : null}
        <a className="small muted" style={{ padding: '8px 10px 0' }} href="/api/v1/docs">
          API reference
        </a>
      </nav>
      <main className="main">
        <Outlet />
      </main>
    </div>
  );
}
