// Where the repository is when neither --repo nor SNAP_REPO says: $XDG_DATA_HOME/snap, else
// ~/.local/share/snap. Its own module: the early key derivation (early-key.ts) reads it before the
// rest of the CLI is loaded.
import * as os from 'node:os';
import * as path from 'node:path';

export function defaultRepoPath(): string {
  const xdg = process.env.XDG_DATA_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.local', 'share'), 'snap');
}
