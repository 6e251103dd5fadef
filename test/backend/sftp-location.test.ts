import { describe, expect, it } from 'vitest';
import { formatSftpLocation, parseSftpLocation } from '../../src/backend/sftp-location.js';
import { sshArgv } from '../../src/backend/sftp.js';
import { isSnapError } from '../../src/core/errors.js';

describe('sftp locations', () => {
  it.each([
    ['sftp:me@nas/srv/backup', { user: 'me', host: 'nas', port: undefined, path: '/srv/backup' }],
    ['sftp:me@nas:2222/srv/backup/', { user: 'me', host: 'nas', port: 2222, path: '/srv/backup' }],
    ['sftp:nas/srv/backup', { user: undefined, host: 'nas', port: undefined, path: '/srv/backup' }],
    ['sftp:me@nas/~/backup', { user: 'me', host: 'nas', port: undefined, path: 'backup' }],
    ['sftp:me@nas:22/~', { user: 'me', host: 'nas', port: 22, path: '.' }],
    ['sftp:me@nas:/srv/backup', { user: 'me', host: 'nas', port: undefined, path: '/srv/backup' }],
    ['sftp:me@[::1]:2222/r', { user: 'me', host: '::1', port: 2222, path: '/r' }],
    ['sftp:me@host.example.org/a b/ü', { user: 'me', host: 'host.example.org', port: undefined, path: '/a b/ü' }],
    ['sftp:a@b@nas/r', { user: 'a@b', host: 'nas', port: undefined, path: '/r' }],
  ])('%s', (given, want) => {
    const l = parseSftpLocation(given);
    expect(l).toEqual(want);
    expect(parseSftpLocation(formatSftpLocation(l))).toEqual(l);
  });

  it.each([
    ['sftp://me@nas/srv', /URL form/],
    ['sftp:me@nas:backup', /relative form HOST:PATH/],
    ['sftp:me@nas', /no \/PATH/],
    ['sftp:me@nas:2222', /no \/PATH/],
    ['sftp:me@nas/', /root folder/],
    ['sftp:me@nas:99999/r', /bad port/],
    ['sftp:-oProxyCommand=x/r', /bad host/],
    ['sftp:-l@nas/r', /bad user/],
    ['sftp:@nas/r', /bad user/],
    ['sftp:me@nas/srv/../etc', /\.\./],
    ['sftp:me@[::1/r', /closing \]/],
    ['/srv/backup', /does not start with sftp:/],
  ])('refuses %s', (given, why) => {
    let err: unknown;
    try {
      parseSftpLocation(given);
    } catch (e) {
      err = e;
    }
    expect(isSnapError(err, 'SNAP_USAGE')).toBe(true);
    expect((err as Error).message).toMatch(why);
  });

  it('builds the ssh command: the user prefix, snap options, port, user, then -s -- HOST sftp', () => {
    const argv = sshArgv(parseSftpLocation('sftp:me@nas:2222/r'), ['ssh', '-F', 'cfg']);
    expect(argv.slice(0, 3)).toEqual(['ssh', '-F', 'cfg']);
    expect(argv).toContain('StrictHostKeyChecking=yes');
    expect(argv).toContain('ForwardAgent=no');
    expect(argv.slice(-8)).toEqual(['-p', '2222', '-l', 'me', '-s', '--', 'nas', 'sftp']);
    expect(sshArgv(parseSftpLocation('sftp:nas/r')).slice(-4)).toEqual(['-s', '--', 'nas', 'sftp']);
  });
});
