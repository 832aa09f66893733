import { readFileSync } from 'node:fs';
import { packageRoot } from '../package-root.js';

/** This package's version (package.json), or 'unknown'. */
export function version(): string {
  try {
    return (JSON.parse(readFileSync(`${packageRoot()}/package.json`, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
