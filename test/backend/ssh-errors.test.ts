// What OpenSSH prints on stderr, as sshFailure classifies it (messages as OpenSSH 9 prints them;
// the tests against a real sshd in sftp.test.ts produce the host key and login cases for real).
import { describe, expect, it } from 'vitest';
import { SshConnectionLost, SshStderr, sshFailure } from '../../src/backend/ssh-errors.js';
import { SnapError } from '../../src/core/errors.js';

function classify(...lines: string[]): SnapError | SshConnectionLost {
  const s = new SshStderr();
  // in two pieces, split mid-line, as pipes deliver it
  const text = lines.join('\n') + '\n';
  s.push(Buffer.from(text.slice(0, 7)));
  s.push(Buffer.from(text.slice(7)));
  return sshFailure(s, 'exited with status 255', 'sftp:me@nas/srv');
}

describe('ssh stderr', () => {
  it.each([
    [['ssh: connect to host nas port 22: Connection refused']],
    [['kex_exchange_identification: read: Connection reset by peer', 'Connection reset by 10.0.0.2 port 22']],
    [['Connection closed by 10.0.0.2 port 22']],
    [['ssh: connect to host nas port 22: Connection timed out']],
    [['Timeout, server nas not responding.']],
    [['ssh: Could not resolve hostname nas: Temporary failure in name resolution']],
    [['client_loop: send disconnect: Broken pipe']],
    [[]],
  ])('%j is worth another attempt', (lines) => {
    expect(classify(...lines)).toBeInstanceOf(SshConnectionLost);
  });

  it.each([
    [['ssh: Could not resolve hostname nas: Name or service not known'], 'SNAP_REMOTE', /Could not resolve/],
    [['me@nas: Permission denied (publickey,password).'], 'SNAP_PERMISSION', /refused the login/],
    [['Received disconnect from 10.0.0.2 port 22:2: Too many authentication failures'], 'SNAP_PERMISSION', /Too many/],
    [['subsystem request failed on channel 0'], 'SNAP_REMOTE', /does not offer SFTP/],
    [['command-line line 0: Bad configuration option: frobnicate'], 'SNAP_REMOTE', /Bad configuration option/],
    [['No ED25519 host key is known for nas and you have requested strict checking.', 'Host key verification failed.'], 'SNAP_HOST_KEY', /not in known_hosts .*did not show the key/],
  ])('%j is %s', (lines, code, why) => {
    const e = classify(...lines);
    expect(e).toBeInstanceOf(SnapError);
    expect((e as SnapError).code).toBe(code);
    expect(e.message).toMatch(why);
  });

  it('names the key from -v output, and leaves the debug lines out', () => {
    const e = classify(
      'OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 27 Jan 2026',
      'debug1: Connecting to nas [10.0.0.2] port 22.',
      'debug1: Server host key: ssh-ed25519 SHA256:ntzQScax+y+PslznLgqcDQzD+9LlNMui0WyJ/hX7mcY',
      'No ED25519 host key is known for nas and you have requested strict checking.',
      'Host key verification failed.',
    );
    expect((e as SnapError).code).toBe('SNAP_HOST_KEY');
    expect(e.message).toContain('the server presented ssh-ed25519 SHA256:ntzQScax+y+PslznLgqcDQzD+9LlNMui0WyJ/hX7mcY');
    expect(e.message).not.toMatch(/debug1|OpenSSH_9/);
  });
});
