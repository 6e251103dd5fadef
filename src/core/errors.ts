// One error class for everything snap reports to a user. Codes are stable (docs/errors.md);
// messages may change. The CLI prints `snap: <message> [CODE]` and never a stack trace.
export const ErrorCodes = {
  SNAP_USAGE: 'a wrong argument or option',
  SNAP_NO_REPO: 'no repository at the given path',
  SNAP_REPO_EXISTS: 'a repository (or other files) already exists at the path given to init',
  SNAP_BAD_CONFIG: 'the repository config is missing, unreadable, of an unsupported version, or (encrypted repositories) failed authentication',
  SNAP_NOT_FOUND: 'a snapshot, path or object that was asked for does not exist',
  SNAP_AMBIGUOUS: 'a snapshot reference matches more than one snapshot',
  SNAP_CORRUPT: 'repository data failed verification (hash mismatch, undecodable record)',
  SNAP_MISSING_OBJECT: 'an object a snapshot references is not in the repository',
  SNAP_IO: 'an operating-system error while reading or writing',
  SNAP_NO_SPACE: 'the disk holding the repository or the restore target is full',
  SNAP_READ_ONLY: 'the repository or the restore target is on a read-only file system',
  SNAP_PERMISSION: 'permission denied',
  SNAP_LOCKED: 'the repository is locked by another process',
  SNAP_UNSAFE_PATH: 'a snapshot entry would be written outside the restore target',
  SNAP_EXISTS: 'a file already exists where snap would write one',
  SNAP_DAMAGED: 'check found damage in the repository',
  SNAP_DRILL_FAILED: 'a restore drill found a file that did not restore, does not match the snapshot, or differs from its unchanged source',
  SNAP_INTERRUPTED: 'the operation was interrupted',
  SNAP_APPEND_ONLY: 'the repository is used append-only and the command would delete',
  SNAP_COMMAND_FAILED: 'the command whose output was being backed up failed',
  SNAP_REMOTE: 'the storage server could not be reached, kept failing, or answered in a way snap does not understand',
  SNAP_DELETE_DENIED: 'the storage refused to delete a blob (credentials without delete permission, e.g. an append-only setup)',
  SNAP_HOST_KEY: "ssh refused the server's host key: not in known_hosts, or different from the one there",
  SNAP_TOO_LARGE: 'a directory or object is larger than snap stores (docs/security.md, "Limits")',
  SNAP_FOREIGN_REPO: 'the repository, or its index, belongs to another user and is not trusted (--trust-owner, SNAP_TRUSTED_REPOS)',
  SNAP_NO_PASSWORD: 'the repository is encrypted and no password could be had (none given, an empty password file, a password command that failed)',
  SNAP_WRONG_PASSWORD: 'the password opens none of the key files of the encrypted repository (exit code 4)',
  SNAP_INTERNAL: 'a bug in snap',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class SnapError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, opts?: { cause?: unknown }) {
    super(message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SnapError';
    this.code = code;
  }
}

export function isSnapError(e: unknown, code?: ErrorCode): e is SnapError {
  return e instanceof SnapError && (code === undefined || e.code === code);
}

/** Node's system errors carry `code` (ENOENT, EACCES, ...). */
export function errnoCode(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}

/** Turn an operating-system error into a SnapError that says what snap was doing. */
export function fromSystemError(e: unknown, doing: string): SnapError {
  if (e instanceof SnapError) return e;
  const errno = errnoCode(e);
  const detail = systemDetail(e, doing);
  switch (errno) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new SnapError('SNAP_NO_SPACE', `${doing}: no space left on device`, { cause: e });
    case 'EROFS':
      return new SnapError('SNAP_READ_ONLY', `${doing}: read-only file system`, { cause: e });
    case 'EACCES':
    case 'EPERM':
      return new SnapError('SNAP_PERMISSION', `${doing}: permission denied`, { cause: e });
    case 'ENOENT':
      return new SnapError('SNAP_NOT_FOUND', `${doing}: no such file or directory`, { cause: e });
    default:
      return new SnapError('SNAP_IO', `${doing}: ${detail}`, { cause: e });
  }
}

/**
 * A system error's message, without Node's `, syscall 'path'` at its end where `doing` (what was
 * being done, or the warning's path) names the path already: a path of 4 KiB (a tree deeper than
 * PATH_MAX) was printed twice.
 */
export function systemDetail(e: unknown, doing: string): string {
  if (!(e instanceof Error)) return String(e);
  const { path, syscall } = e as { path?: unknown; syscall?: unknown };
  if (typeof path === 'string' && path !== '' && typeof syscall === 'string' && doing.includes(path)) {
    const at = e.message.indexOf(`, ${syscall} '`);
    if (at > 0) return e.message.slice(0, at);
  }
  return e.message;
}

/** The reason a command stops when its standard output was closed: not an error to report. */
export class OutputClosed extends Error {
  constructor() {
    super('standard output was closed');
    this.name = 'OutputClosed';
  }
}

/** An error that means standard output's (or an HTTP client's) reader went away: EPIPE, or OutputClosed. */
export function isOutputClosed(e: unknown): boolean {
  return e instanceof OutputClosed || errnoCode(e) === 'EPIPE' || (e instanceof Error && e.cause !== undefined && isOutputClosed(e.cause));
}
