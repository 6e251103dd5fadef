// The `sftp:` repository location: `sftp:[USER@]HOST[:PORT]/PATH`.
//
// PATH after the first `/` is absolute on the server (`sftp:me@nas/srv/backup` is /srv/backup);
// `/~/PATH` is relative to the login folder (`sftp:me@nas/~/backup` is backup in me's home), and
// `/~` is the login folder itself. restic's absolute form `sftp:me@nas:/srv/backup` (an empty
// port) is accepted too. restic's relative form `sftp:me@nas:backup` is refused, not guessed at:
// after `HOST:` digits could be a port or a folder name, so the message shows the `/~/` spelling.
// `sftp://...` is refused as well, because in restic's URL form a single `/` means relative.
// HOST may be a name from ~/.ssh/config (ssh resolves it) or an IPv6 address in brackets.
import { SnapError } from '../core/errors.js';

export interface SftpLocation {
  /** As given to `-l`; undefined leaves it to ssh (its config, else the local user name). */
  user?: string;
  host: string;
  /** As given to `-p`; undefined leaves it to ssh (its config, else 22). */
  port?: number;
  /** The repository folder on the server: absolute (`/srv/backup`) or relative to the login folder (`backup`, or `.`). */
  path: string;
}

export const SFTP_SCHEME = 'sftp:';

export function isSftpLocation(s: string): boolean {
  return s.startsWith(SFTP_SCHEME);
}

function usage(given: string, why: string): SnapError {
  return new SnapError(
    'SNAP_USAGE',
    `${JSON.stringify(given)} is not an sftp location: ${why} (write sftp:[USER@]HOST[:PORT]/ABSOLUTE/PATH, or sftp:[USER@]HOST[:PORT]/~/PATH for a folder in the login folder)`,
  );
}

export function parseSftpLocation(given: string): SftpLocation {
  if (!isSftpLocation(given)) throw usage(given, `it does not start with ${SFTP_SCHEME}`);
  let rest = given.slice(SFTP_SCHEME.length);
  if (rest.startsWith('//')) throw usage(given, 'the URL form sftp://... is not used, because restic reads its single / as a relative path');

  let user: string | undefined;
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    user = authority.slice(0, at);
    if (user === '' || user.startsWith('-') || /[\s/:]/.test(user)) throw usage(given, `bad user name ${JSON.stringify(user)}`);
    rest = rest.slice(at + 1);
  }

  let host: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw usage(given, 'an IPv6 address needs its closing ]');
    host = rest.slice(1, close);
    rest = rest.slice(close + 1);
  } else {
    const end = rest.search(/[:/]/);
    host = end < 0 ? rest : rest.slice(0, end);
    rest = end < 0 ? '' : rest.slice(end);
  }
  if (host === '' || host.startsWith('-') || /[\s@[\]/]/.test(host)) throw usage(given, `bad host ${JSON.stringify(host)}`);

  let port: number | undefined;
  if (rest.startsWith(':')) {
    const m = /^:(\d*)(\/.*)?$/s.exec(rest);
    if (!m) throw usage(given, `after "${host}:" comes a port and then /PATH; restic's relative form HOST:PATH is not accepted`);
    if (m[1] !== '') {
      port = Number(m[1]);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw usage(given, `bad port ${m[1]}`);
    }
    rest = m[2] ?? '';
  }
  if (!rest.startsWith('/')) throw usage(given, 'no /PATH after the host');

  let path: string;
  if (rest === '/~' || rest === '/~/') path = '.';
  else if (rest.startsWith('/~/')) path = rest.slice(3);
  else path = rest;
  path = path.replace(/\/+$/, '') || '/';
  if (path === '/') throw usage(given, 'the repository cannot be the root folder /');
  if (path.includes('\0')) throw usage(given, 'the path contains a NUL byte');
  if (path.split('/').some((p) => p === '..')) throw usage(given, 'the path contains ..');
  return { user, host, port, path };
}

/** The location in the form parseSftpLocation reads, for messages. */
export function formatSftpLocation(l: SftpLocation): string {
  const host = l.host.includes(':') ? `[${l.host}]` : l.host;
  const user = l.user === undefined ? '' : `${l.user}@`;
  const port = l.port === undefined ? '' : `:${l.port}`;
  const path = l.path.startsWith('/') ? l.path : l.path === '.' ? '/~' : `/~/${l.path}`;
  return `${SFTP_SCHEME}${user}${host}${port}${path}`;
}
