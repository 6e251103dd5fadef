// The pure parts of the S3 backend: location strings, the AWS credentials/region reader (given
// an environment and files as data), retry backoff, key encoding and the XML answers.
import { describe, expect, it } from 'vitest';
import { parseAwsIni, readAwsSettings } from '../../src/backend/aws-config.js';
import { type RetryPolicy, TransientError, backoffDelay, retryPolicy, withRetry } from '../../src/backend/retry.js';
import { encodeKey, isTransientAnswer } from '../../src/backend/s3-http.js';
import { formatS3Location, parseS3Location } from '../../src/backend/s3-location.js';
import { completeMultipartBody, parseErrorBody, parseListPage, XmlShapeError } from '../../src/backend/s3-xml.js';
import { SnapError } from '../../src/core/errors.js';
import { prng } from './conformance.js';

describe('parseS3Location', () => {
  it.each([
    ['s3:https://s3.example.com/bucket', { protocol: 'https:', host: 's3.example.com', bucket: 'bucket', prefix: '' }],
    ['s3:http://127.0.0.1:7480/snap-test', { protocol: 'http:', host: '127.0.0.1:7480', bucket: 'snap-test', prefix: '' }],
    ['s3:https://minio.lan:9000/backups/host1/home', { protocol: 'https:', host: 'minio.lan:9000', bucket: 'backups', prefix: 'host1/home/' }],
    ['s3:https://s3.eu-west-1.amazonaws.com/my.bucket/repo/', { protocol: 'https:', host: 's3.eu-west-1.amazonaws.com', bucket: 'my.bucket', prefix: 'repo/' }],
    ['s3:http://[::1]:7480/abc', { protocol: 'http:', host: '[::1]:7480', bucket: 'abc', prefix: '' }],
  ])('%s', (s, want) => {
    expect(parseS3Location(s)).toEqual(want);
    expect(parseS3Location(formatS3Location(parseS3Location(s)))).toEqual(want);
  });

  it.each([
    ['s3:', 'http:// or https://'],
    ['s3://bucket/path', 'http:// or https://'],
    ['s3:ftp://host/bucket', 'http:// or https://'],
    ['s3:https://host', 'a bucket is needed'],
    ['s3:https://host/', 'not a valid bucket name'],
    ['s3:https://host/Bucket', 'not a valid bucket name'],
    ['s3:https://host/ab', 'not a valid bucket name'],
    ['s3:https://host/a..b', 'not a valid bucket name'],
    ['s3:https://host/192.168.1.1', 'not a valid bucket name'],
    ['s3:https://key:secret@host/bucket', 'credentials do not belong'],
    ['s3:https://host/bucket/../x', 'the prefix'],
    ['s3:https://host/bucket/a//b', 'the prefix'],
    ['s3:https://host/bucket/.hidden', 'the prefix'],
    ['s3:https://host/bucket?x=1', 'a query'],
    ['/local/path', 'does not start with s3:'],
  ])('%s is refused', (s, why) => {
    let err: unknown;
    try {
      parseS3Location(s);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SnapError);
    expect((err as SnapError).code).toBe('SNAP_USAGE');
    expect((err as SnapError).message).toContain(why);
    expect((err as SnapError).message).not.toContain('secret@');
  });
});

describe('readAwsSettings', () => {
  const files = (m: Record<string, string>) => (p: string) => m[p];
  const HOME = '/home/u';

  it('environment keys come first; region from AWS_REGION, then AWS_DEFAULT_REGION', () => {
    const env = { HOME, AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SK', AWS_SESSION_TOKEN: 'TOK', AWS_DEFAULT_REGION: 'eu-west-1' };
    const s = readAwsSettings(env, files({ [`${HOME}/.aws/credentials`]: '[default]\naws_access_key_id = FILE\naws_secret_access_key = FILE\n' }));
    expect(s).toEqual({ credentials: { accessKeyId: 'AK', secretAccessKey: 'SK', sessionToken: 'TOK' }, region: 'eu-west-1', source: 'the environment (AWS_ACCESS_KEY_ID)' });
    expect(readAwsSettings({ ...env, AWS_REGION: 'ap-south-1' }, files({})).region).toBe('ap-south-1');
  });

  it('half of the environment keys is an error naming the missing one', () => {
    expect(() => readAwsSettings({ HOME, AWS_ACCESS_KEY_ID: 'AK' }, files({}))).toThrow(/AWS_SECRET_ACCESS_KEY is not set/);
    expect(() => readAwsSettings({ HOME, AWS_SECRET_ACCESS_KEY: 'SK' }, files({}))).toThrow(/AWS_ACCESS_KEY_ID is not set/);
  });

  it('the default profile of ~/.aws/credentials, region from ~/.aws/config', () => {
    const s = readAwsSettings({ HOME }, files({
      [`${HOME}/.aws/credentials`]: '# keys\n[default]\naws_access_key_id=AKD\naws_secret_access_key = SKD ; not a comment in values\n\n[other]\naws_access_key_id = AKO\naws_secret_access_key = SKO\n',
      [`${HOME}/.aws/config`]: '[default]\nregion = eu-central-1\ns3 =\n  max_concurrent_requests = 20\n[profile other]\nregion = us-west-2\n',
    }));
    expect(s.credentials).toEqual({ accessKeyId: 'AKD', secretAccessKey: 'SKD ; not a comment in values' });
    expect(s.region).toBe('eu-central-1');
    expect(s.source).toBe(`profile default in ${HOME}/.aws/credentials`);
  });

  it('AWS_PROFILE picks a profile: [name] in credentials, [profile name] in config; files from AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE', () => {
    const env = { HOME, AWS_PROFILE: 'backup', AWS_SHARED_CREDENTIALS_FILE: '/etc/snap/creds', AWS_CONFIG_FILE: '/etc/snap/conf' };
    const s = readAwsSettings(env, files({
      '/etc/snap/creds': '[default]\naws_access_key_id = NO\naws_secret_access_key = NO\n[backup]\naws_access_key_id = AKB\naws_secret_access_key = SKB\naws_session_token = TB\n',
      '/etc/snap/conf': '[profile backup]\nregion = sa-east-1\n[backup]\nregion = wrong\n',
      [`${HOME}/.aws/credentials`]: '[backup]\naws_access_key_id = HOME\naws_secret_access_key = HOME\n',
    }));
    expect(s).toEqual({ credentials: { accessKeyId: 'AKB', secretAccessKey: 'SKB', sessionToken: 'TB' }, region: 'sa-east-1', source: 'profile backup in /etc/snap/creds' });
  });

  it('keys in the config file are used when the credentials file has none', () => {
    const s = readAwsSettings({ HOME, AWS_PROFILE: 'ceph' }, files({ [`${HOME}/.aws/config`]: '[profile ceph]\naws_access_key_id = AKC\naws_secret_access_key = SKC\n' }));
    expect(s.credentials).toEqual({ accessKeyId: 'AKC', secretAccessKey: 'SKC' });
    expect(s.region).toBe('us-east-1');
  });

  it('no credentials anywhere, a half profile, or an unsupported kind: SNAP_USAGE saying what to do', () => {
    expect(() => readAwsSettings({ HOME }, files({}))).toThrow(/no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put profile default into \/home\/u\/.aws\/credentials/);
    expect(() => readAwsSettings({ HOME }, files({ [`${HOME}/.aws/credentials`]: '[default]\naws_access_key_id = A\n' }))).toThrow(/has aws_access_key_id but no aws_secret_access_key/);
    expect(() => readAwsSettings({ HOME, AWS_PROFILE: 'sso' }, files({ [`${HOME}/.aws/config`]: '[profile sso]\nsso_session = corp\n' }))).toThrow(/sso_session, which snap does not support/);
    try {
      readAwsSettings({ HOME }, files({}));
    } catch (e) {
      expect((e as SnapError).code).toBe('SNAP_USAGE');
    }
  });

  it('parseAwsIni: comments, spacing, nested values skipped', () => {
    const ini = parseAwsIni('; top\n[ profile  x ]  # c\n  key = v\nA_Key = 1 \n# c\nb=two words\n');
    expect([...ini.keys()]).toEqual(['profile x']);
    expect(Object.fromEntries(ini.get('profile x')!)).toEqual({ a_key: '1', b: 'two words' });
  });
});

describe('retries', () => {
  const policy = (o: Partial<RetryPolicy> = {}): RetryPolicy => retryPolicy({ baseDelayMs: 100, maxDelayMs: 1000, random: prng(7), sleep: async () => {}, ...o });

  it('backoff is full jitter under an exponential cap', () => {
    const p = policy();
    for (let attempt = 1; attempt <= 12; attempt++) {
      const cap = Math.min(1000, 100 * 2 ** (attempt - 1));
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(p, attempt);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(cap);
      }
    }
    expect(backoffDelay(policy({ random: () => 0.999999 }), 20)).toBe(999);
  });

  it('withRetry: retries transient failures only, up to the attempts, then reports the last', async () => {
    const waits: number[] = [];
    const p = policy({ attempts: 4, sleep: async (ms) => void waits.push(ms) });
    let n = 0;
    await expect(withRetry(p, async () => {
      n++;
      throw new TransientError(`try ${n}`);
    }, (last, attempts) => new Error(`gave up after ${attempts}: ${last.message}`))).rejects.toThrow('gave up after 4: try 4');
    expect(n).toBe(4);
    expect(waits.length).toBe(3);
    n = 0;
    expect(await withRetry(p, async (attempt) => {
      n++;
      if (attempt < 3) throw new TransientError('not yet');
      return 'ok';
    }, (l) => l)).toBe('ok');
    expect(n).toBe(3);
    n = 0;
    await expect(withRetry(p, async () => {
      n++;
      throw new SnapError('SNAP_PERMISSION', 'no');
    }, (l) => l)).rejects.toThrow('no');
    expect(n).toBe(1);
    expect(() => retryPolicy({ attempts: 0 })).toThrow(RangeError);
  });

  it('which answers are transient', () => {
    expect(isTransientAnswer(500, 'InternalError')).toBe(true);
    expect(isTransientAnswer(503, 'SlowDown')).toBe(true);
    expect(isTransientAnswer(429, undefined)).toBe(true);
    expect(isTransientAnswer(400, 'RequestTimeout')).toBe(true);
    expect(isTransientAnswer(501, 'NotImplemented')).toBe(false);
    expect(isTransientAnswer(403, 'AccessDenied')).toBe(false);
    expect(isTransientAnswer(404, 'NoSuchKey')).toBe(false);
    expect(isTransientAnswer(412, 'PreconditionFailed')).toBe(false);
  });
});

describe('keys and XML', () => {
  it('encodeKey keeps unreserved characters and / literal, escapes the rest', () => {
    expect(encodeKey('data/ab/x-_.~')).toBe('data/ab/x-_.~');
    expect(encodeKey('a+b=c,d@e f')).toBe('a%2Bb%3Dc%2Cd%40e%20f');
    expect(encodeKey('caf\u00e9')).toBe('caf%C3%A9');
  });

  it('parseListPage: url-encoded keys, sizes, continuation; the wrong shape is an error', () => {
    const xml = `<?xml version="1.0"?><ListBucketResult><Name>b</Name><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
      <Contents><Key>p/a%2Bb%3D</Key><Size>12</Size><Owner><ID>x</ID></Owner></Contents><Contents><Key>p/c</Key><Size>0</Size></Contents>
      <NextContinuationToken>tok/+=&amp;</NextContinuationToken></ListBucketResult>`;
    expect(parseListPage(xml)).toEqual({ entries: [{ key: 'p/a+b=', size: 12 }, { key: 'p/c', size: 0 }], nextToken: 'tok/+=&' });
    expect(parseListPage('<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>')).toEqual({ entries: [] });
    expect(() => parseListPage('<Error><Code>x</Code></Error>')).toThrow(XmlShapeError);
    expect(() => parseListPage('<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>')).toThrow(/NextContinuationToken/);
    expect(() => parseListPage('<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>')).toThrow(XmlShapeError);
  });

  it('errors and the multipart completion body', () => {
    expect(parseErrorBody('<?xml version="1.0"?><Error><Code>NoSuchKey</Code><Message>a &lt;b&gt; &#65;</Message></Error>')).toEqual({ code: 'NoSuchKey', message: 'a <b> A' });
    expect(parseErrorBody('not xml')).toBeUndefined();
    expect(completeMultipartBody([{ partNumber: 1, etag: '"abc"' }])).toContain('<Part><PartNumber>1</PartNumber><ETag>&quot;abc&quot;</ETag></Part>');
  });
});
