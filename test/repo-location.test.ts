// parseRepoLocation (src/repo/location.ts): folders, s3: and sftp: locations, and what is refused.
import { describe, expect, it } from 'vitest';
import { isSnapError } from '../src/core/errors.js';
import { parseRepoLocation } from '../src/repo/location.js';

const usage = (text: string): string => {
  try {
    parseRepoLocation(text, '/cwd');
  } catch (e) {
    if (isSnapError(e, 'SNAP_USAGE')) return e.message;
    throw e;
  }
  throw new Error(`${text} was accepted`);
};

describe('repository locations', () => {
  it('folders: relative, absolute, local:, and a colon after a slash', () => {
    expect(parseRepoLocation('repo', '/cwd')).toEqual({ kind: 'local', path: '/cwd/repo' });
    expect(parseRepoLocation('local:/srv/b', '/cwd')).toEqual({ kind: 'local', path: '/srv/b' });
    expect(parseRepoLocation('./a:b', '/cwd')).toEqual({ kind: 'local', path: '/cwd/a:b' });
  });

  it('s3: with https, http, and the short form (https); the canonical text is the path', () => {
    const a = parseRepoLocation('s3:https://s3.example.com/bucket/some/prefix', '/cwd');
    expect(a).toMatchObject({ kind: 's3', path: 's3:https://s3.example.com/bucket/some/prefix', s3: { protocol: 'https:', host: 's3.example.com', bucket: 'bucket', prefix: 'some/prefix/' } });
    const b = parseRepoLocation('s3:http://127.0.0.1:7480/bucket', '/cwd');
    expect(b).toMatchObject({ kind: 's3', path: 's3:http://127.0.0.1:7480/bucket', s3: { protocol: 'http:', host: '127.0.0.1:7480', prefix: '' } });
    const c = parseRepoLocation('s3:s3.amazonaws.com/my.bucket/x/', '/cwd');
    expect(c).toMatchObject({ kind: 's3', path: 's3:https://s3.amazonaws.com/my.bucket/x', s3: { protocol: 'https:', bucket: 'my.bucket' } });
    expect(parseRepoLocation('S3:HTTPS://h/bucket', '/cwd').path).toBe('s3:https://h/bucket');
  });

  it('s3: refusals name the problem and never echo credentials', () => {
    expect(usage('s3:https://host')).toMatch(/bucket/);
    expect(usage('s3:https://host/Bad_Bucket')).toMatch(/not a valid bucket name/);
    const m = usage('s3:https://AKIA:secret@host/bucket');
    expect(m).toMatch(/credentials do not belong/);
    expect(m).not.toContain('secret');
  });

  it("sftp: the absolute form, restic's HOST:/PATH form, the login folder form and a port", () => {
    expect(parseRepoLocation('sftp:me@nas/srv/backup', '/cwd')).toMatchObject({ kind: 'sftp', path: 'sftp:me@nas/srv/backup', sftp: { user: 'me', host: 'nas', path: '/srv/backup' } });
    expect(parseRepoLocation('sftp:me@nas:/srv/backup', '/cwd')).toMatchObject({ kind: 'sftp', path: 'sftp:me@nas/srv/backup' });
    expect(parseRepoLocation('sftp:nas:2222/~/b', '/cwd')).toMatchObject({ kind: 'sftp', path: 'sftp:nas:2222/~/b', sftp: { host: 'nas', port: 2222, path: 'b' } });
    expect(usage('sftp:me@nas:backup')).toMatch(/relative form/);
  });

  it('other schemes are refused, listing the supported ones', () => {
    expect(usage('b2:bucket/x')).toMatch(/Supported: a local folder \(DIR or local:DIR\), s3:.*sftp:/);
    expect(usage('')).toMatch(/empty/);
  });
});
