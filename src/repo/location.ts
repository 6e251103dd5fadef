// Where a repository is: the one parser of `--repo` and `SNAP_REPO`. A local folder (`DIR` or
// `local:DIR`), a bucket on S3-compatible storage (`s3:...`, backend/s3-location.ts), a container
// of Azure Blob Storage (`azure:...`, backend/azure-location.ts) or a folder on an SFTP server
// (`sftp:...`, backend/sftp-location.ts). Which backend serves a location is
// decided in repo/storage.ts, from the environment the CLI hands it.
import * as path from 'node:path';
import { SnapError } from '../core/errors.js';
import { displayPath } from '../core/bytes.js';
import { type AzureLocation, formatAzureLocation, parseAzureLocation } from '../backend/azure-location.js';
import { type S3Location, formatS3Location, parseS3Location } from '../backend/s3-location.js';
import { type SftpLocation, formatSftpLocation, parseSftpLocation } from '../backend/sftp-location.js';

export type RepoLocation =
  | { kind: 'local'; path: string }
  | { kind: 's3'; s3: S3Location; path: string }
  | { kind: 'azure'; azure: AzureLocation; path: string }
  | { kind: 'sftp'; sftp: SftpLocation; path: string };

/** Schemes with a backend, for messages: `local:` is the explicit form of a plain folder. */
export const SUPPORTED_SCHEMES = ['local', 's3', 'azure', 'sftp'] as const;

/** Whether the repository lives somewhere else than a local folder (its index then lives in a cache folder). */
export function isRemote(l: RepoLocation): boolean {
  return l.kind !== 'local';
}

/**
 * `s3:https://HOST[:PORT]/BUCKET[/PREFIX]`, `s3:http://...` (a server on a trusted network), and
 * restic's short form `s3:HOST[:PORT]/BUCKET[/PREFIX]`, which means https.
 */
export function parseS3RepoText(text: string): S3Location {
  const rest = text.slice(3);
  return parseS3Location(/^https?:\/\//i.test(rest) ? `s3:${rest.replace(/^https?/i, (s) => s.toLowerCase())}` : `s3:https://${rest}`);
}

/**
 * `text` is a folder (absolute, or relative to `cwd`), `local:FOLDER`, or `scheme:...` for a
 * backend. A scheme is letters, digits, `+`, `-` or `.` after a letter, before the first `/`, so
 * `./a:b` and `/x/a:b` are folders; an unsupported scheme is an error, never a folder of that name.
 * `path` of a remote location is its canonical text (what messages show and `--repo` accepts).
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
  if (scheme === 's3') {
    const s3 = parseS3RepoText(`s3:${rest}`);
    return { kind: 's3', s3, path: formatS3Location(s3) };
  }
  if (scheme === 'azure') {
    const azure = parseAzureLocation(`azure:${rest}`);
    return { kind: 'azure', azure, path: formatAzureLocation(azure) };
  }
  if (scheme === 'sftp') {
    const sftp = parseSftpLocation(`sftp:${rest}`);
    return { kind: 'sftp', sftp, path: formatSftpLocation(sftp) };
  }
  throw new SnapError(
    'SNAP_USAGE',
    `unsupported repository location '${displayPath(text)}': '${m[1]}:' is not a backend snap knows. ` +
      `Supported: a local folder (DIR or local:DIR), s3:https://HOST[:PORT]/BUCKET[/PREFIX], azure:ACCOUNT/CONTAINER[/PREFIX] and sftp:[USER@]HOST[:PORT]/PATH` +
      (rest.includes('/') ? '' : `; for a folder whose name contains ':', write ./${displayPath(text)}`),
  );
}
