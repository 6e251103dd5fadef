// S3Backend against a real radosgw, beyond the conformance suite: making buckets, permission
// errors (wrong keys, someone else's bucket, append-only credentials whose deletes are
// refused), a missing bucket, the If-None-Match probe and the check-then-write fallback.
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { S3Backend } from '../../src/backend/s3.js';
import type { SharedRadosgw } from '../helpers/radosgw.js';
import { type S3Target, type TargetOptions, s3Target } from '../helpers/s3-target.js';
import { expectSnapError, listAll } from './conformance.js';

let target: S3Target;
let info: SharedRadosgw;
const opened: S3Backend[] = [];

beforeAll(async () => {
  target = await s3Target('server');
}, 900_000);

beforeEach((ctx) => {
  if (typeof target.info === 'string') ctx.skip(target.info);
  info = target.info as SharedRadosgw;
});

afterEach(async () => {
  for (const b of opened.splice(0)) await b.close();
});

function open(o: TargetOptions = {}): S3Backend {
  const b = target.backend(o);
  opened.push(b);
  return b;
}

describe('S3Backend on radosgw', () => {
  it('ensureBucket makes a missing bucket, and finds it there the next time', async () => {
    const bucket = `made-${randomBytes(4).toString('hex')}`;
    const b = open({ bucket });
    await expectSnapError(b.put('config', Buffer.from('x')), 'SNAP_NO_REPO', `the bucket ${bucket} does not exist`);
    await expectSnapError(b.get('config'), 'SNAP_NO_REPO');
    await expectSnapError(listAll(b, ''), 'SNAP_NO_REPO');
    expect(await b.ensureBucket()).toBe('created');
    expect(await b.ensureBucket()).toBe('existed');
    await b.put('config', Buffer.from('x'));
    expect((await b.get('config')).toString()).toBe('x');
  });

  it("a writer's SHA-256 of the bytes (PutHints) is what the PUT signs: taken by put and putIfAbsent, and a wrong one is refused by the server", async () => {
    const b = open();
    expect(b.wantsSha256).toBe(true);
    const data = randomBytes(300_000);
    const hash = createHash('sha256').update(data).digest();
    await b.put('data/ab/hinted', data, { sha256: hash });
    expect((await b.get('data/ab/hinted')).equals(data)).toBe(true);
    expect(await b.putIfAbsent('data/ab/hinted-2', data, { sha256: hash })).toBe(true);
    expect((await b.get('data/ab/hinted-2')).equals(data)).toBe(true);
    // The hash of other bytes: the gateway checks the body against it and stores nothing.
    const wrong = createHash('sha256').update('other bytes').digest();
    await expectSnapError(b.put('data/ab/wrong', data, { sha256: wrong }), 'SNAP_REMOTE', 'PUT data/ab/wrong');
    expect(await b.exists('data/ab/wrong')).toBe(false);
  });

  it("someone else's bucket: SNAP_PERMISSION for reads, writes and for making it", async () => {
    const b = open({ keys: info.stranger });
    await expectSnapError(b.ensureBucket(), 'SNAP_PERMISSION', 'server');
    await expectSnapError(b.put('config', Buffer.from('x')), 'SNAP_PERMISSION', 'not allowed');
    await expectSnapError(b.get('config'), 'SNAP_PERMISSION');
    await expectSnapError(listAll(b, ''), 'SNAP_PERMISSION');
  });

  it('keys the server does not accept: SNAP_PERMISSION saying which', async () => {
    const unknown = open({ keys: { accessKeyId: 'NOSUCHKEY0000000', secretAccessKey: 'x' } });
    await expectSnapError(unknown.get('config'), 'SNAP_PERMISSION', 'does not know this access key');
    const wrong = open({ keys: { accessKeyId: info.account.accessKeyId, secretAccessKey: 'not-the-secret' } });
    const e = await expectSnapError(wrong.put('config', Buffer.from('x')), 'SNAP_PERMISSION', 'secret key does not match');
    expect(e.message).not.toContain('not-the-secret');
  });

  it('append-only credentials: writes and reads work, a delete is SNAP_DELETE_DENIED naming the blob', async () => {
    const bucket = `append-${randomBytes(4).toString('hex')}`;
    const owner = open({ bucket, prefix: 'repo' });
    await owner.ensureBucket();
    const principal = { AWS: ['arn:aws:iam:::user/stranger'] };
    const policy = {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: principal, Action: ['s3:PutObject', 's3:GetObject', 's3:ListBucket', 's3:AbortMultipartUpload'], Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`] },
        { Effect: 'Deny', Principal: principal, Action: ['s3:DeleteObject'], Resource: [`arn:aws:s3:::${bucket}/*`] },
        // Objects the appender writes are its own; the bucket's owner keeps full access to them.
        { Effect: 'Allow', Principal: { AWS: ['arn:aws:iam:::user/snap-test'] }, Action: ['s3:*'], Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`] },
      ],
    };
    const r = await target.raw('PUT', `/${bucket}?policy`, JSON.stringify(policy));
    expect(r.status, r.text).toBeLessThan(300);
    const appender = open({ bucket, prefix: 'repo', keys: info.stranger });
    await appender.put('data/00/pack', Buffer.from('pack bytes'));
    expect((await appender.get('data/00/pack')).toString()).toBe('pack bytes');
    expect([...(await listAll(appender, 'data/')).keys()]).toEqual(['data/00/pack']);
    expect(await appender.putIfAbsent('locks/l1', Buffer.from('lock'))).toBe(true);
    const e = await expectSnapError(appender.delete('data/00/pack'), 'SNAP_DELETE_DENIED', 'data/00/pack');
    expect(e.message).toContain(appender.location);
    expect(e.message).toMatch(/may not delete/);
    expect(await owner.exists('data/00/pack')).toBe(true);
    await owner.delete('data/00/pack');
    expect(await owner.exists('data/00/pack')).toBe(false);
  });

  it('radosgw honours If-None-Match: the probe says so once, and its object is never listed', async () => {
    const b = open();
    expect(await b.capabilities()).toEqual({ atomicPutIfAbsent: true });
    expect(await b.capabilities()).toEqual({ atomicPutIfAbsent: true });
    expect(await listAll(b, '')).toEqual(new Map());
    // The probe object is there, under the prefix, for the next client to find.
    const raw = await target.raw('HEAD', `/server/${b.loc.prefix}.snap-probe-conditional-write`);
    expect(raw.status).toBe(200);
    const again = open({ prefix: b.loc.prefix.slice(0, -1) });
    expect(await again.capabilities()).toEqual({ atomicPutIfAbsent: true });
  });

  it('without conditional writes putIfAbsent checks, then writes; capabilities say it is not atomic', async () => {
    const b = open({ conditionalWrites: false });
    expect(await b.capabilities()).toEqual({ atomicPutIfAbsent: false });
    expect(await b.putIfAbsent('config', Buffer.from('one'))).toBe(true);
    expect(await b.putIfAbsent('config', Buffer.from('two'))).toBe(false);
    expect((await b.get('config')).toString()).toBe('one');
  });

  it('location strings: the backend says where it is, never with credentials', async () => {
    const b = open({ prefix: 'some/where' });
    expect(b.location).toBe(`s3:${info.account.endpoint}/server/some/where`);
    expect(b.location).not.toContain(info.account.accessKeyId);
  });
});
