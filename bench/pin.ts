// A private copy of the built CLI for the whole benchmark: other work in the same tree may rebuild
// dist/ while the benchmark runs (npm test builds), which must not change the program under test.
// The copy lives in bench/.pinned/ so that node_modules still resolves from the project root.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './paths.js';

const PINNED = path.join(REPO_ROOT, 'bench', '.pinned');

/**
 * Copy dist/ and package.json (the CLI reads its version there) to bench/.pinned/NAME (one per
 * benchmark, so two can run at once) and return the copied CLI's path.
 */
export function pinSnapCli(name: string): string {
  const dist = path.join(REPO_ROOT, 'dist');
  if (!fs.existsSync(path.join(dist, 'cli', 'main.js'))) throw new Error('snap is not built: run `npm run build`');
  const dir = path.join(PINNED, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(PINNED, '.gitignore'), '*\n');
  fs.cpSync(dist, path.join(dir, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(dir, 'package.json'));
  fs.cpSync(path.join(REPO_ROOT, 'bin'), path.join(dir, 'bin'), { recursive: true });
  return path.join(dir, 'dist', 'cli', 'main.js');
}

/** The installed command (bin/snap: its Node flags) of a copy pinSnapCli made, from its main.js. */
export function pinnedLauncher(cli: string): string {
  return path.resolve(cli, '..', '..', '..', 'bin', 'snap');
}
