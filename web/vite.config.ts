/**
 * The dashboard's build: `npm run build` runs `vite build web --outDir dist/web` (scripts/build.mjs);
 * `swarm serve` serves the result at /. For work on the pages themselves, `npx vite web` serves them
 * with hot reload and sends /api to a `swarm serve` on port 8090.
 */
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    // Every asset is a file of its own under /assets (no inlined data: URLs), hashed for caching.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1500,
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8090' } },
});
