/** Light or dark: the system's choice until the user picks one (kept in localStorage). */
export type Theme = 'light' | 'dark';
const KEY = 'swarm.theme';

export function currentTheme(): Theme {
  const saved = localStorage.getItem(KEY);
  if (saved === 'light' || saved === 'dark') return saved;
  return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function applyTheme(theme: Theme, save = false): void {
  document.documentElement.dataset.theme = theme;
  if (save) localStorage.setItem(KEY, theme);
}

/** Follow the system's light/dark changes while the user has not picked one. */
export function followSystemTheme(onChange: (theme: Theme) => void): () => void {
  const media = window.matchMedia('(prefers-color-scheme: dark)');
  const listener = (e: MediaQueryListEvent): void => {
    if (localStorage.getItem(KEY) !== null) return;
    const theme: Theme = e.matches ? 'dark' : 'light';
    applyTheme(theme);
    onChange(theme);
  };
  media.addEventListener('change', listener);
  return () => media.removeEventListener('change', listener);
}
