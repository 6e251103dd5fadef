// `npm run build` step for the web UI: copies the page's files (src/ui/static) and the two
// front-end libraries (preact, htm, from node_modules) next to the compiled server in
// dist/ui/static. No bundler: the libraries ship as ES modules; hooks' one bare import of
// "preact" is pointed at the copied file, since the page's CSP allows no inline import map.
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

const here = import.meta.dirname;
const root = path.resolve(here, '..', '..');
const out = path.join(root, 'dist', 'ui', 'static');
const require = createRequire(path.join(root, 'package.json'));
/** A package's folder: the nearest node_modules/<name> above its resolved entry point. */
const pkgDir = (name) => {
  const entry = require.resolve(name);
  const marker = `${path.sep}node_modules${path.sep}${name}${path.sep}`;
  return entry.slice(0, entry.lastIndexOf(marker) + marker.length - 1);
};

mkdirSync(path.join(out, 'vendor'), { recursive: true });
cpSync(path.join(here, 'static'), out, { recursive: true });
cpSync(path.join(pkgDir('preact'), 'dist', 'preact.mjs'), path.join(out, 'vendor', 'preact.mjs'));
cpSync(path.join(pkgDir('htm'), 'dist', 'htm.mjs'), path.join(out, 'vendor', 'htm.mjs'));
const hooks = readFileSync(path.join(pkgDir('preact'), 'hooks', 'dist', 'hooks.mjs'), 'utf8');
const rewritten = hooks.replace(/from\s*"preact"/g, 'from"./preact.mjs"');
if (rewritten === hooks) throw new Error('build-assets: preact/hooks no longer imports "preact" as expected; update src/ui/build-assets.mjs');
writeFileSync(path.join(out, 'vendor', 'hooks.mjs'), rewritten);
