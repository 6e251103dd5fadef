// The session SftpBackend works on, kept open between calls and started again when the connection
// is lost: `run(doing, fn)` gives `fn` a live session and, when ssh ends before or during it (the
// network, the server restarting), waits (retry.ts: exponential backoff with jitter, the policy
// every remote backend uses), starts a new session and runs `fn` again. What retrying cannot fix
// (a host key, a refused login, a missing program) fails at once. Every failure leaves as a
// SnapError that says what was being done.
//
// The command's stop (RetryPolicy.stop: Ctrl-C, SIGTERM) kills a session with requests in flight at
// once, so they fail instead of waiting for a server that may hang (ssh itself would notice only
// after its keepalives, about a minute); each call made after the stop (a cleanup: the lock's
// release) gets STOPPED_REQUEST_MS in all, connecting a new session included, before its session
// is killed too.
import { SnapError } from '../core/errors.js';
import { type RetryPolicy, STOPPED_IN_FLIGHT, STOPPED_NO_ANSWER, STOPPED_REQUEST_MS, withRetry } from './retry.js';
import { FX, SftpProtocolError } from './sftp-protocol.js';
import { SftpSession, SftpStatusError } from './sftp-session.js';
import { SshConnectionLost } from './ssh-errors.js';

export function isStatus(e: unknown, ...codes: number[]): e is SftpStatusError {
  return e instanceof SftpStatusError && (codes.length === 0 || codes.includes(e.status));
}

export class SftpConnection {
  private current: SftpSession | undefined;
  private connecting: Promise<SftpSession> | undefined;
  /** The session being started (connecting), to kill it if it hangs. */
  private starting: SftpSession | undefined;
  private closed = false;
  // In flight at the stop: killed. An idle session is kept for the cleanup (a healthy server's
  // answers come at once; a hanging one's session is killed by briefly()'s deadline).
  private readonly onStop = (): void => this.kill(STOPPED_IN_FLIGHT, true);

  constructor(
    private readonly argv: string[],
    /** Names the repository in messages. */
    private readonly location: string,
    private readonly retry: RetryPolicy,
  ) {
    retry.stop?.addEventListener('abort', this.onStop, { once: true });
  }

  /** Kill the session (only if busy, with `busyOnly`) and one starting: what is in flight fails with SshConnectionLost, worth a new session. */
  private kill(why: string, busyOnly = false): void {
    const e = new SshConnectionLost(`${this.location}: ${why}`);
    if (!busyOnly || this.current?.busy) this.current?.kill(e);
    this.starting?.kill(e);
  }

  private session(): Promise<SftpSession> {
    if (this.current?.alive) return Promise.resolve(this.current);
    this.current = undefined;
    this.connecting ??= SftpSession.start(this.argv, this.location, (s) => (this.starting = s)).then(
      (s) => {
        this.connecting = undefined;
        this.starting = undefined;
        if (this.closed) {
          void s.end();
          throw new SnapError('SNAP_INTERNAL', `${this.location} was closed while connecting`);
        }
        this.current = s;
        return s;
      },
      (e: unknown) => {
        this.connecting = undefined;
        this.starting = undefined;
        throw e;
      },
    );
    return this.connecting;
  }

  /** After the command's stop: `fn` on a session, given STOPPED_REQUEST_MS in all before the session is killed. */
  private async briefly<T>(fn: () => Promise<T>): Promise<T> {
    const deadline = setTimeout(() => this.kill(STOPPED_NO_ANSWER), STOPPED_REQUEST_MS);
    try {
      return await fn();
    } finally {
      clearTimeout(deadline);
    }
  }

  /** `fn` on a live session; again on a new one when the connection is lost. `attempt` counts from 0. */
  run<T>(doing: string, fn: (s: SftpSession, attempt: number) => Promise<T>): Promise<T> {
    return withRetry(
      this.retry,
      async (attempt) => {
        if (this.closed) throw new SnapError('SNAP_INTERNAL', `${doing}: the backend is closed`);
        try {
          const call = async (): Promise<T> => fn(await this.session(), attempt - 1);
          return await (this.retry.stop?.aborted ? this.briefly(call) : call());
        } catch (e) {
          if (e instanceof SshConnectionLost && !this.closed) throw e; // worth another session
          throw toSnapError(e, doing, this.location);
        }
      },
      (last, attempts, ms) =>
        new SnapError('SNAP_REMOTE', `${doing}: ${withoutPeer(last.message, this.location)}; gave up after ${attempts} attempts in ${(ms / 1000).toFixed(1)} s`, { cause: last }),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    this.retry.stop?.removeEventListener('abort', this.onStop);
    const s = this.current ?? (await this.connecting?.catch(() => undefined));
    this.current = undefined;
    await s?.end();
  }
}

/**
 * A lost connection's message without the location it starts with (ssh-errors.ts names the peer)
 * where `doing` names it already: "reading config in sftp:u@h/p: ssh: connect ...", not the
 * location twice.
 */
function withoutPeer(message: string, location: string | undefined): string {
  return location !== undefined && message.startsWith(`${location}: `) ? message.slice(location.length + 2) : message;
}

/** A failure as the SnapError a user sees, saying what was being done (`location`: named in `doing` already). */
export function toSnapError(e: unknown, doing: string, location?: string): SnapError {
  if (e instanceof SnapError) return e;
  if (e instanceof SftpStatusError) {
    switch (e.status) {
      case FX.NO_SUCH_FILE:
        return new SnapError('SNAP_NOT_FOUND', `${doing}: no such file or directory`, { cause: e });
      case FX.PERMISSION_DENIED:
        return new SnapError('SNAP_PERMISSION', `${doing}: permission denied`, { cause: e });
      case FX.OP_UNSUPPORTED:
        return new SnapError('SNAP_IO', `${doing}: the server does not support this operation (${e.message})`, { cause: e });
      default:
        // SFTP v3 has no "disk full" or "quota" status: OpenSSH reports those as a plain failure.
        return new SnapError('SNAP_IO', `${doing}: ${e.message || 'failure'} (SFTP status ${e.status})`, { cause: e });
    }
  }
  if (e instanceof SshConnectionLost) return new SnapError('SNAP_REMOTE', `${doing}: ${withoutPeer(e.message, location)}`, { cause: e });
  if (e instanceof SftpProtocolError) return new SnapError('SNAP_REMOTE', `${doing}: SFTP protocol error: ${e.message}`, { cause: e });
  return new SnapError('SNAP_IO', `${doing}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}
