// Worker threads run compiled JavaScript: their code is a real, type-checked source file
// (e.g. ops/restore/worker.ts) that tsc compiles into dist/ beside the module that starts it.
// Installed (npm install -g) or run from dist/, the worker is the sibling file. Under test, the
// starting module is TypeScript loaded from src/ (vitest), and Node cannot load a .ts worker by
// itself: the worker is then taken from dist/ (built by `npm run build`, which tests require).
import * as fs from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The URL of the compiled worker `name` (e.g. './worker.js') next to the module whose
 * import.meta.url is `from`.
 */
export function workerUrl(name: string, from: string): URL {
  const here = new URL(name, from);
  if (!from.endsWith('.ts')) return here;
  const file = fileURLToPath(here);
  const i = file.lastIndexOf('/src/');
  if (i < 0) return here;
  const built = file.slice(0, i) + '/dist/' + file.slice(i + 5);
  if (!fs.existsSync(built)) throw new Error(`${built} is missing: run \`npm run build\` first`);
  return pathToFileURL(built);
}
