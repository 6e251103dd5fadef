// What the system `ssh` said on stderr, turned into errors a user can act on. ssh reports
// everything (unknown or changed host keys, refused logins, unreachable hosts) as text on stderr
// and exit status 255, so the text is all there is to go on; the patterns are OpenSSH's messages
// (sshconnect.c, ssh.c, clientloop.c), which have been stable for many years.
import { SnapError } from '../core/errors.js';
import { TransientError } from './retry.js';

/** The connection could not be made or was lost, in a way that a new attempt may fix. */
export class SshConnectionLost extends TransientError {
  constructor(message: string) {
    super(message);
    this.name = 'SshConnectionLost';
  }
}

const KEEP_LINES = 40;

/**
 * ssh's stderr, kept bounded: the last lines worth showing, and the server's host key as ssh's
 * `-v` output names it ("debug1: Server host key: ssh-ed25519 SHA256:..."), the one debug line
 * that matters: the fingerprint an unknown-host-key message shows.
 */
export class SshStderr {
  private partial = '';
  private lines: string[] = [];
  hostKey: string | undefined;

  push(chunk: Buffer): void {
    const text = this.partial + chunk.toString('utf8');
    const parts = text.split(/\r?\n/);
    this.partial = parts.pop() ?? '';
    if (this.partial.length > 4096) this.partial = this.partial.slice(-4096);
    for (const line of parts) this.line(line);
  }

  private line(line: string): void {
    const key = /^debug1: Server host key: (\S+) (\S+)/.exec(line);
    if (key) this.hostKey = `${key[1]} ${key[2]}`;
    // what -v adds besides debug lines: the version, and the login and byte counts of a session
    if (/^debug\d:|^OpenSSH_|^Authenticated to |^Transferred: |^Bytes per second/.test(line) || line.trim() === '') return;
    this.lines.push(line);
    if (this.lines.length > KEEP_LINES) this.lines.shift();
  }

  /** What ssh said (debug lines left out), on one line. */
  text(): string {
    if (this.partial) {
      this.line(this.partial);
      this.partial = '';
    }
    return this.lines
      .filter((l) => !/^@+$/.test(l))
      .join(' ')
      .replace(/\s+/g, ' ')
      .trim();
  }
}

const TRANSIENT = [
  /Connection refused/i,
  /Connection reset/i,
  /Connection closed/i,
  /Connection timed out/i,
  /Operation timed out/i,
  /timed out/i,
  /Broken pipe/i,
  /No route to host/i,
  /Network is unreachable/i,
  /Temporary failure in name resolution/i,
  /kex_exchange_identification/i,
  /banner exchange/i,
  /closed by remote host/i,
  /Timeout, server .* not responding/i,
  /Connection to .* closed/i,
];

/**
 * Why ssh ended before the SFTP session was up: a SnapError for what retrying cannot fix (a host
 * key: SNAP_HOST_KEY; a refused login: SNAP_PERMISSION; no program, no subsystem, an unknown
 * host: SNAP_REMOTE), else SshConnectionLost.
 */
export function sshFailure(stderr: SshStderr, exit: string, peer: string): SnapError | SshConnectionLost {
  const said = stderr.text();
  const detail = said || `ssh ${exit} without a message`;
  const fp = stderr.hostKey;
  const serverKey = fp ? `the server presented ${fp}` : 'ssh did not show the key it was offered (add -v to a custom sftp command to see it)';

  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/.test(said)) {
    const sent = /key sent by the remote host is (SHA256:[A-Za-z0-9+/=]+)/.exec(said)?.[1];
    const old = /Offending \S+ key in (\S+)/.exec(said)?.[1];
    const remove = /remove with: (ssh-keygen .*?-R "[^"]*")/.exec(said)?.[1] ?? 'ssh-keygen -R HOST';
    return new SnapError(
      'SNAP_HOST_KEY',
      `${peer}: refusing to connect: the server's host key differs from the one in known_hosts (${sent ? `the server presented ${sent}` : serverKey}` +
        `${old ? `; the known key is at ${old}` : ''}). Someone may be intercepting the connection, or the server was reinstalled: ` +
        `verify the new key with the server's administrator before replacing the old one (${remove}).`,
    );
  }
  if (/host key is known for|Host key verification failed|No .* host key is known/.test(said)) {
    return new SnapError(
      'SNAP_HOST_KEY',
      `${peer}: refusing to connect: the server's host key is not in known_hosts (${serverKey}). ` +
        `snap never accepts a host key by itself: compare the fingerprint with the one the server's administrator gives you ` +
        `(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the server), then connect once with ssh and accept it. ssh said: ${detail}`,
    );
  }
  if (/Permission denied \(|Too many authentication failures|Authentication failed/.test(said)) {
    return new SnapError(
      'SNAP_PERMISSION',
      `${peer}: the server refused the login: ${detail} (check the user name, that your key is loaded in the agent or named by IdentityFile in ~/.ssh/config, and the server's authorized_keys)`,
    );
  }
  if (/subsystem request failed/i.test(said)) {
    return new SnapError('SNAP_REMOTE', `${peer}: the server does not offer SFTP (its sshd_config needs a "Subsystem sftp" line): ${detail}`);
  }
  if (/Could not resolve hostname/i.test(said) && !/Temporary failure/i.test(said)) {
    return new SnapError('SNAP_REMOTE', `${peer}: ${detail}`);
  }
  if (said === '' || TRANSIENT.some((re) => re.test(said))) return new SshConnectionLost(`${peer}: ${detail}`);
  return new SnapError('SNAP_REMOTE', `${peer}: ssh ${exit}: ${detail}`);
}
