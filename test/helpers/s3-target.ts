// S3 backends on the run's shared radosgw for tests: a bucket made once, a fresh key prefix per
// backend, retries short enough for tests; and raw signed requests for what the backend does
// not do itself (bucket policies, listing unfinished multipart uploads).
import { randomBytes } from 'node:crypto';
import { AwsClient } from 'aws4fetch';
import { S3Backend, type S3BackendOptions } from '../../src/backend/s3.js';
import { type SharedRadosgw, sharedRadosgw } from './radosgw.js';

export const TEST_RETRY = { attempts: 5, baseDelayMs: 20, maxDelayMs: 400 };

export interface TargetOptions extends Partial<S3BackendOptions> {
  bucket?: string;
  /** Key prefix ('' for none); default a new random one. */
  prefix?: string;
  /** Another way to the same server (a fault proxy). */
  endpoint?: string;
  /** Another user's keys. */
  keys?: { accessKeyId: string; secretAccessKey: string };
}

export interface S3Target {
  /** The shared gateway, or the reason it is not available (for a visible skip). */
  info: SharedRadosgw | string;
  bucket: string;
  backend(o?: TargetOptions): S3Backend;
  /** A raw signed request as the bucket's owner (or `keys`). */
  raw(method: string, pathAndQuery: string, body?: string, keys?: { accessKeyId: string; secretAccessKey: string }): Promise<{ status: number; text: string }>;
}

function ready(info: SharedRadosgw | string): SharedRadosgw {
  if (typeof info === 'string') throw new Error(info);
  return info;
}

export async function s3Target(bucket: string): Promise<S3Target> {
  const info = await sharedRadosgw();
  const backend = (o: TargetOptions = {}): S3Backend => {
    const i = ready(info);
    const prefix = o.prefix ?? `t-${randomBytes(6).toString('hex')}`;
    return new S3Backend({
      location: `s3:${o.endpoint ?? i.account.endpoint}/${o.bucket ?? bucket}${prefix ? `/${prefix}` : ''}`,
      credentials: o.keys ?? { accessKeyId: i.account.accessKeyId, secretAccessKey: i.account.secretAccessKey },
      region: i.account.region,
      retry: TEST_RETRY,
      timeoutMs: 30_000,
      ...o,
    });
  };
  const raw = async (method: string, pathAndQuery: string, body?: string, keys?: { accessKeyId: string; secretAccessKey: string }) => {
    const i = ready(info);
    const c = new AwsClient({ ...(keys ?? i.account), service: 's3', region: i.account.region, retries: 0 });
    const res = await c.fetch(`${i.account.endpoint}${pathAndQuery}`, { method, body });
    return { status: res.status, text: await res.text() };
  };
  if (typeof info !== 'string') {
    const b = backend({ prefix: '' });
    await b.ensureBucket();
    await b.close();
  }
  return { info, bucket, backend, raw };
}

/**
 * Unfinished multipart uploads under a key prefix that hold parts (invisible, but they take
 * space), as `key (n parts)`. An upload without parts is left out: a retried
 * CreateMultipartUpload whose first answer was lost leaves one (src/backend/s3.ts).
 */
export async function pendingUploads(t: S3Target, prefix: string): Promise<string[]> {
  const r = await t.raw('GET', `/${t.bucket}?uploads&prefix=${encodeURIComponent(prefix)}`);
  if (r.status !== 200) throw new Error(`ListMultipartUploads: ${r.status} ${r.text}`);
  const out: string[] = [];
  for (const m of r.text.matchAll(/<Upload>([\s\S]*?)<\/Upload>/g)) {
    const key = /<Key>([^<]*)<\/Key>/.exec(m[1]!)?.[1] ?? '?';
    const id = /<UploadId>([^<]*)<\/UploadId>/.exec(m[1]!)?.[1] ?? '?';
    const parts = await t.raw('GET', `/${t.bucket}/${key}?uploadId=${encodeURIComponent(id)}`);
    const n = (parts.text.match(/<Part>/g) ?? []).length;
    if (n > 0 || parts.status !== 200) out.push(`${key} (${n} parts, ${parts.status})`);
  }
  return out;
}
