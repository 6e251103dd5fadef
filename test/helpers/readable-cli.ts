// The CLI as another user can run it: tests that run it as `nobody` (through setpriv) need to read
// dist/ and the runtime dependencies. A checkout in a private folder (a 0700 home directory) is not
// readable by others, so there the built CLI, package.json and the production dependencies are
// copied once per test process into the run's temporary folder (0711, test/global-setup.ts) and
// made readable by everyone. Where the checkout is readable, the CLI is used where it is.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const copies = new Map<string, string>();
const nodes = new Map<string, string>();

/**
 * The Node.js binary for the user `uid`: this process's own, or a link to it (a copy across file
 * systems) in a folder that user can reach. CI runs Node from a private (0700) folder. `setpriv`
 * keeps root's capabilities until its own exec, so the CLI it starts runs; but any program that CLI
 * or its child then starts from that path (snap mount's fuse guard, `env node ...`) is refused.
 */
export function nodeFor(uid: number, gid: number): string {
  const key = `${uid}:${gid}`;
  const known = nodes.get(key);
  if (known) return known;
  // Through env(1): the exec of node happens after setpriv's, without root's capabilities.
  const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', 'env', process.execPath, '--version'], { cwd: '/' });
  let node = process.execPath;
  if (r.status !== 0) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-node-'));
    fs.chmodSync(dir, 0o755);
    node = path.join(dir, 'node');
    try {
      fs.linkSync(process.execPath, node);
    } catch {
      fs.copyFileSync(process.execPath, node);
      fs.chmodSync(node, 0o755);
    }
  }
  nodes.set(key, node);
  return node;
}

/** Whether the user `uid` can run the CLI at `cli` (it prints its version). */
export function runsAs(uid: number, gid: number, cli: string): boolean {
  const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', nodeFor(uid, gid), cli, '--version'], { cwd: '/' });
  return r.status === 0;
}

/** The CLI's main.js for the user `uid`: the checkout's own, or a readable copy of it. */
export function cliFor(uid: number, gid: number, root: string): string {
  const own = path.join(root, 'dist', 'cli', 'main.js');
  const key = `${uid}:${root}`;
  const known = copies.get(key);
  if (known) return known;
  const cli = runsAs(uid, gid, own) ? own : readableCopy(root);
  copies.set(key, cli);
  return cli;
}

/** dist/, package.json and the production dependencies (their transitive closure) under a new folder. */
export function readableCopy(root: string): string {
  const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-cli-'));
  fs.cpSync(path.join(root, 'dist'), path.join(dest, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(dest, 'package.json'));
  for (const dep of runtimeDependencies(root)) {
    fs.cpSync(path.join(root, 'node_modules', dep), path.join(dest, 'node_modules', dep), { recursive: true, verbatimSymlinks: true });
  }
  readableByAll(dest);
  return path.join(dest, 'dist', 'cli', 'main.js');
}

/** Names of the packages `dependencies` need at run time, as installed (hoisted) in node_modules. */
function runtimeDependencies(root: string): string[] {
  const seen = new Set<string>();
  const visit = (pkgDir: string): void => {
    const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    for (const name of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
      const dir = path.join(root, 'node_modules', name);
      // Not hoisted: nested in its parent's node_modules, copied with it; not installed: optional.
      if (seen.has(name) || !fs.existsSync(path.join(dir, 'package.json'))) continue;
      seen.add(name);
      visit(dir);
    }
  };
  visit(root);
  return [...seen];
}

function readableByAll(p: string): void {
  const st = fs.lstatSync(p);
  if (st.isSymbolicLink()) return;
  fs.chmodSync(p, st.mode | (st.isDirectory() ? 0o555 : 0o444));
  if (st.isDirectory()) for (const name of fs.readdirSync(p)) readableByAll(path.join(p, name));
}
