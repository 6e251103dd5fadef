// Where a repository is: the one parser of `--repo` and `SNAP_REPO`. Today only local folders;
// a backend added later (s3:, sftp:) adds its scheme here and a variant to RepoLocation.
import * as path from 'node:path';
import { SnapError } from '../core/errors.js';
import { displayPath } from '../core/bytes.js';

export type RepoLocation = { kind: 'local'; path: string };

/** Schemes with a backend, for messages: `local:` is the explicit form of a plain folder. */
export const SUPPORTED_SCHEMES = ['local'] as const;

/**
 * `text` is a folder (absolute, or relative to `cwd`), `local:FOLDER`, or `scheme:...` for a
 * backend. A scheme is letters, digits, `+`, `-` or `.` after a letter, before the first `/`, so
 * `./a:b` and `/x/a:b` are folders; an unsupported scheme is an error, never a folder of that name.
 */
export function parseRepoLocation(text: string, cwd: string): RepoLocation {
  if (text === '') throw new SnapError('SNAP_USAGE', 'the repository location is empty');
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(text);
  if (!m) return { kind: 'local', path: path.resolve(cwd, text) };
  const scheme = m[1]!.toLowerCase();
  const rest = text.slice(m[0].length);
  if (scheme === 'local') {
    if (rest === '') throw new SnapError('SNAP_USAGE', "'local:' needs a folder after it, e.g. local:/srv/backup");
    return { kind: 'local', path: path.resolve(cwd, rest) };
  }
  throw new SnapError(
    'SNAP_USAGE',
    `unsupported repository location '${displayPath(text)}': '${m[1]}:' is not a backend snap knows. ` +
      `Supported: a local folder (DIR, or ${SUPPORTED_SCHEMES.map((s) => `${s}:DIR`).join(', ')})` +
      (rest.includes('/') ? '' : `; for a folder whose name contains ':', write ./${displayPath(text)}`),
  );
}
