// S3 backends on the run's shared radosgw for tests: a bucket made once, a fresh key prefix per
// backend, retries short enough for tests.
import { randomBytes } from 'node:crypto';
import { S3Backend, type S3BackendOptions } from '../../src/backend/s3.js';
import { type SharedRadosgw, sharedRadosgw } from './radosgw.js';

export const TEST_RETRY = { attempts: 5, baseDelayMs: 20, maxDelayMs: 400 };

export interface S3Target {
  /** The shared gateway, or the reason it is not available (for a visible skip). */
  info: SharedRadosgw | string;
  /** A backend in `bucket` under a new random prefix. */
  backend(o?: Partial<S3BackendOptions> & { bucket?: string; prefix?: string }): S3Backend;
}

export async function s3Target(bucket: string): Promise<S3Target> {
  const info = await sharedRadosgw();
  const backend = (o: Partial<S3BackendOptions> & { bucket?: string; prefix?: string } = {}): S3Backend => {
    if (typeof info === 'string') throw new Error(info);
    const prefix = o.prefix ?? `t-${randomBytes(6).toString('hex')}`;
    return new S3Backend({
      location: `s3:${info.account.endpoint}/${o.bucket ?? bucket}${prefix ? `/${prefix}` : ''}`,
      credentials: { accessKeyId: info.account.accessKeyId, secretAccessKey: info.account.secretAccessKey },
      region: info.account.region,
      retry: TEST_RETRY,
      timeoutMs: 30_000,
      ...o,
    });
  };
  if (typeof info !== 'string') {
    const b = backend({ prefix: '' });
    await b.ensureBucket();
    await b.close();
  }
  return { info, backend };
}
