/**
 * The OpenAPI 3.1 document, generated from the routes' schemas (`/api/v1/openapi.json`), and an API
 * reference page (`/api/v1/docs`: Swagger UI, its files served from the swagger-ui-dist package by
 * this process, so the page works with no access to the internet).
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { problem, problemResponse } from '../problem.js';

/** The files of swagger-ui-dist the page loads, and their types. */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Swarm API</title>
  <link rel="stylesheet" href="/api/v1/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/api/v1/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api/v1/docs/swagger-ui-bundle.js"></script>
  <script src="/api/v1/docs/swagger-ui-standalone-preset.js"></script>
  <script src="/api/v1/docs/init.js"></script>
</body>
</html>
`;

const INIT = `window.ui = SwaggerUIBundle({
  url: '/api/v1/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: 'StandaloneLayout',
});
`;

let assetDir: string | undefined;
const cache = new Map<string, Buffer>();

function asset(name: string): Buffer {
  let data = cache.get(name);
  if (!data) {
    assetDir ??= dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
    data = readFileSync(join(assetDir, name));
    cache.set(name, data);
  }
  return data;
}

export function docsRoutes(app: OpenAPIHono, version: string): void {
  app.doc31('/api/v1/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Swarm API',
      version,
      description: 'The HTTP API of `swarm serve`: registry, runs, health. Errors are RFC 9457 problem documents (`application/problem+json`) with a stable `code`.',
    },
    tags: [
      { name: 'health', description: 'Liveness, readiness, server information' },
      { name: 'registry', description: 'Agents and workflows' },
      { name: 'runs', description: 'Start, list, inspect, cancel and retry runs' },
    ],
  });

  app.get('/api/v1/docs', (c) => c.html(PAGE));
  app.get('/api/v1/docs/init.js', (c) => c.body(INIT, 200, { 'content-type': 'text/javascript; charset=utf-8' }));
  app.get('/api/v1/docs/:file', (c) => {
    const name = c.req.param('file');
    const type = ASSETS[name];
    if (!type) return problemResponse(c, problem(404, 'ROUTE_NOT_FOUND', `no file ${name} in the API reference`));
    return c.body(new Uint8Array(asset(name)), 200, { 'content-type': type, 'cache-control': 'public, max-age=86400' });
  });
}
