/**
 * The dashboard: a single-page app served by `swarm serve` at /. It reads and changes everything
 * through the public HTTP API and its event streams (src/api.ts, src/live.ts).
 */
import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createBrowserRouter, RouterProvider } from 'react-router';
import { ApiError, setUnauthorizedHandler } from './api';
import { Layout } from './Layout';
import { Login } from './pages/Login';
import { NotFound } from './pages/NotFound';
import { Runs } from './pages/Runs';
import './styles.css';
import { applyTheme, currentTheme } from './theme';

applyTheme(currentTheme());

// Several requests of a page can each be refused (401) as the session ends: one navigation to the
// sign-in page, not one per refusal (a second would abort the first).
let leaving = false;
function toLogin(): void {
  if (leaving || window.location.pathname === '/login') return;
  leaving = true;
  const next = `${window.location.pathname}${window.location.search}`;
  window.location.assign(`/login?next=${encodeURIComponent(next)}`);
}
setUnauthorizedHandler(toLogin);

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // A 4xx will not change by asking again; other failures are retried twice.
      retry: (count, error) => !(error instanceof ApiError && error.status >= 400 && error.status < 500) && count < 2,
      refetchOnWindowFocus: false,
    },
  },
  queryCache: new QueryCache(),
  mutationCache: new MutationCache(),
});

const router = createBrowserRouter([
  { path: '/login', element: <Login /> },
  {
    path: '/',
    element: <Layout />,
    children: [
      { index: true, element: <Runs /> },
      { path: 'runs', element: <Runs /> },
      // The other pages load as chunks of their own when first opened: the runs list, the page most
      // visits start on, does not wait for the DAG library and the rest.
      { path: 'runs/:id', lazy: async () => ({ Component: (await import('./pages/Run')).RunPage }) },
      { path: 'registry/*', lazy: async () => ({ Component: (await import('./pages/Registry')).Registry }) },
      { path: 'triggers/*', lazy: async () => ({ Component: (await import('./pages/Triggers')).Triggers }) },
      { path: 'tasks', lazy: async () => ({ Component: (await import('./pages/Tasks')).Tasks }) },
      // A step's task id holds a '/': the rest of the path is the id.
      { path: 'tasks/*', lazy: async () => ({ Component: (await import('./pages/Task')).TaskPage }) },
      { path: 'operations/*', lazy: async () => ({ Component: (await import('./pages/Operations')).Operations }) },
      { path: '*', element: <NotFound /> },
    ],
  },
]);

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={queryClient}>
        <RouterProvider router={router} />
      </QueryClientProvider>
    </StrictMode>,
  );
}
