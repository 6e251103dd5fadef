// A Backend on S3-compatible object storage (AWS S3, Ceph radosgw, MinIO, ...), tested against
// a real radosgw by the same conformance suite as the local backend.
//
// - Blobs are objects named `PREFIX/NAME` in one bucket. A PUT is atomic on S3 (an object is
//   its whole body or absent), so put needs no temporary name; a streamed put of more than one
//   part is a multipart upload, visible only once completed, and aborted on any failure.
// - Reads of single objects use ranged GETs; a body shorter than its Content-Length is never
//   returned: it is retried, and a streamed read resumes where it stopped (If-Match on the
//   ETag, so it cannot splice two versions of a blob together).
// - Every transient failure (connection refused or reset, a silent connection, 5xx, 429,
//   SlowDown, RequestTimeout) is retried with exponential backoff and jitter (retry.ts); when
//   the tries are used up the error is SNAP_REMOTE naming the location, the operation and the
//   blob. 403 is SNAP_PERMISSION, or SNAP_DELETE_DENIED for a refused delete (append-only
//   credentials); a missing bucket is SNAP_NO_REPO.
// - putIfAbsent sends `If-None-Match: *` (AWS since 2024-08, Ceph radosgw since long before:
//   Pacific 16.2 answers 412, MinIO). Whether the server honours it is asked once per backend
//   with a probe object (`PREFIX/.snap-probe-conditional-write`, never listed); a server that
//   ignores it makes capabilities() say atomicPutIfAbsent: false, and putIfAbsent then checks
//   and writes (a race can let two callers win).
import { createHash } from 'node:crypto';
import { SnapError } from '../core/errors.js';
import type { AwsCredentials } from './aws-config.js';
import { DEFAULT_REGION } from './aws-config.js';
import type { Backend, BackendCapabilities, BlobInfo, PutHints } from './backend.js';
import { checkRange, ListingGuard, shortBlobError } from './checks.js';
import { checkBlobName, checkListPrefix, isBlobName } from './names.js';
import { type PartSource, resumingRead, streamInParts, totalSize, uploadParts } from './parts.js';
import { type RetryPolicy, TransientError, retryPolicy, withRetry } from './retry.js';
import { S3Http, type S3Response, describeAnswer, isTransientAnswer, networkError, readAll } from './s3-http.js';
import { type S3Location, formatS3Location, parseS3Location } from './s3-location.js';
import { XmlShapeError, completeMultipartBody, createBucketBody, parseErrorBody, parseListPage, parseUploadId } from './s3-xml.js';

const MiB = 1 << 20;
/** S3's smallest part (all but the last); also its limit of 10,000 parts caps a blob at 10,000 parts. */
export const MIN_PART_SIZE = 5 * MiB;
const PROBE_NAME = '.snap-probe-conditional-write';

/** 403 codes that say the keys themselves were refused, not what they may do. */
const KEYS_REFUSED = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'RequestTimeTooSkewed']);

export interface S3BackendOptions {
  location: S3Location | string;
  credentials: AwsCredentials;
  region?: string;
  retry?: Partial<RetryPolicy>;
  /** A request whose connection is silent this long is abandoned and retried (default 60 s; after the command's stop, STOPPED_REQUEST_MS in all). */
  timeoutMs?: number;
  /** Part size of streamed uploads (default 8 MiB, at least 5 MiB). A streamed blob up to this size is one PUT. */
  partSize?: number;
  /** Parts one putStream uploads at once (default 2): it holds at most (this + 1) parts in memory. */
  uploadConcurrency?: number;
  /** Connections kept open to the server (default 16). */
  maxSockets?: number;
  /** Whether the server honours `If-None-Match: *`: 'probe' (default) asks it once; true or false skips the probe. */
  conditionalWrites?: 'probe' | boolean;
}

export class S3Backend implements Backend {
  readonly location: string;
  readonly loc: S3Location;
  private readonly http: S3Http;
  private readonly retry: RetryPolicy;
  private readonly partSize: number;
  private readonly uploadConcurrency: number;
  private conditional: Promise<boolean> | undefined;

  constructor(o: S3BackendOptions) {
    this.loc = typeof o.location === 'string' ? parseS3Location(o.location) : o.location;
    this.location = formatS3Location(this.loc);
    this.retry = retryPolicy(o.retry);
    this.partSize = o.partSize ?? 8 * MiB;
    if (!Number.isSafeInteger(this.partSize) || this.partSize < MIN_PART_SIZE) throw new RangeError(`partSize must be at least ${MIN_PART_SIZE}`);
    this.uploadConcurrency = Math.max(1, o.uploadConcurrency ?? 2);
    this.http = new S3Http(this.loc, o.credentials, o.region ?? DEFAULT_REGION, o.timeoutMs ?? 60_000, o.maxSockets ?? 16, this.retry.stop);
    if (o.conditionalWrites !== undefined && o.conditionalWrites !== 'probe') this.conditional = Promise.resolve(o.conditionalWrites);
  }

  private key(name: string): string {
    return `${this.loc.prefix}${name}`;
  }

  /** Run one request with retries; when they are used up, SNAP_REMOTE naming what failed. */
  private op<T>(verb: string, name: string, attempt: (n: number) => Promise<T>): Promise<T> {
    return withRetry(this.retry, attempt, (last, n, ms) => this.exhausted(verb, name, last, n, ms));
  }

  private exhausted(verb: string, name: string, last: Error, attempts: number, ms: number): SnapError {
    return new SnapError('SNAP_REMOTE', `${this.location}: ${verb} ${name} failed ${attempts} times in ${(ms / 1000).toFixed(1)} s, giving up; last: ${last.message}`, { cause: last });
  }

  /**
   * A HEAD answer has no body, so a 403 to one says only "denied", and answerError would call
   * a wrong secret key "not allowed to do this". The same read as a GET (one byte of the object,
   * an empty listing of the bucket) carries S3's error code: when it says the keys themselves
   * were refused (an unknown access key, a wrong secret, a skewed clock), that is the answer's code.
   */
  private async explainHead(r: S3Response, key: string | undefined): Promise<S3Response> {
    if (r.status !== 403 || r.body.length > 0) return r;
    const g = key === undefined
      ? await this.http.call({ method: 'GET', query: { 'list-type': '2', 'max-keys': '0' } })
      : await this.http.call({ method: 'GET', key, headers: { range: 'bytes=0-0' } });
    return g.status === 403 && g.code !== undefined && KEYS_REFUSED.has(g.code) ? { ...r, code: g.code, message: g.message } : r;
  }

  /** The SnapError for an answer that is neither success nor transient. */
  private answerError(r: Pick<S3Response, 'status' | 'code' | 'message'>, verb: string, name: string): SnapError {
    const what = `${this.location}: ${verb} ${name}`;
    if (r.code === 'NoSuchBucket') return new SnapError('SNAP_NO_REPO', `${this.location}: the bucket ${this.loc.bucket} does not exist`);
    if (r.status === 404) return new SnapError('SNAP_MISSING_OBJECT', `${name} is missing from the repository at ${this.location}`);
    if (r.status === 403) {
      const why =
        r.code === 'InvalidAccessKeyId' ? 'the server does not know this access key'
        : r.code === 'SignatureDoesNotMatch' ? 'the secret key does not match the access key'
        : r.code === 'RequestTimeTooSkewed' ? "this machine's clock differs too much from the server's"
        : `the credentials are not allowed to do this (${r.code ?? 'HTTP 403'})`;
      if (verb === 'DELETE' && r.code !== 'InvalidAccessKeyId' && r.code !== 'SignatureDoesNotMatch' && r.code !== 'RequestTimeTooSkewed') {
        return new SnapError('SNAP_DELETE_DENIED', `${what}: the server refused to delete it (${r.code ?? 'HTTP 403'}): these credentials may not delete (an append-only setup?); forget and gc need credentials that may`);
      }
      return new SnapError('SNAP_PERMISSION', `${what}: permission denied: ${why}`);
    }
    if (r.status === 301 || r.status === 307 || r.code === 'AuthorizationHeaderMalformed' || r.code === 'PermanentRedirect') {
      return new SnapError('SNAP_REMOTE', `${what}: the server sent us elsewhere (${describeAnswer(r)}): check the endpoint and the region (AWS_REGION, now ${this.http.region})`);
    }
    return new SnapError('SNAP_REMOTE', `${what}: unexpected answer ${describeAnswer(r)}`);
  }

  /** Make the bucket if it does not exist (for init); says which it was. */
  async ensureBucket(): Promise<'created' | 'existed'> {
    const bucket = `(bucket ${this.loc.bucket})`;
    const head = await this.op('HEAD', bucket, () => this.http.call({ method: 'HEAD' }));
    if (head.status === 200) return 'existed';
    if (head.status !== 404) throw this.answerError(await this.op('HEAD', bucket, () => this.explainHead(head, undefined)), 'HEAD', bucket);
    const body = this.http.region === DEFAULT_REGION ? undefined : Buffer.from(createBucketBody(this.http.region));
    const r = await this.op('CREATE', bucket, () => this.http.call({ method: 'PUT', body }));
    if (r.status === 200) return 'created';
    if (r.code === 'BucketAlreadyOwnedByYou') return 'existed';
    if (r.code === 'BucketAlreadyExists') throw new SnapError('SNAP_PERMISSION', `${this.location}: the bucket ${this.loc.bucket} exists and belongs to someone else`);
    throw this.answerError(r, 'CREATE', bucket);
  }

  /** The payload's SHA-256 is signed with every PUT: a writer that has it spares this thread hashing it (PutHints). */
  readonly wantsSha256 = true;

  async put(name: string, data: Uint8Array, hints?: PutHints): Promise<void> {
    checkBlobName(name);
    const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const hash = payloadHash(body, hints);
    await this.op('PUT', name, async () => {
      const r = await this.http.call({ method: 'PUT', key: this.key(name), body }, hash);
      if (r.status !== 200) throw this.answerError(r, 'PUT', name);
    });
  }

  async putIfAbsent(name: string, data: Uint8Array, hints?: PutHints): Promise<boolean> {
    checkBlobName(name);
    if (!(await this.capabilities()).atomicPutIfAbsent) {
      if (await this.exists(name)) return false;
      await this.put(name, data, hints);
      return true;
    }
    const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const hash = payloadHash(body, hints);
    return this.op('PUT (if absent)', name, async (attempt) => {
      const r = await this.http.call({ method: 'PUT', key: this.key(name), headers: { 'if-none-match': '*' }, body }, hash);
      if (r.status === 200) return true;
      // A retry that finds the blob may be finding our own earlier try, whose answer was lost.
      if (r.status === 412) return attempt > 1 ? (await this.get(name)).equals(body) : false;
      if (r.status === 409 && r.code === 'ConditionalRequestConflict') throw new TransientError(describeAnswer(r));
      throw this.answerError(r, 'PUT (if absent)', name);
    });
  }

  async putStream(name: string, source: AsyncIterable<Uint8Array>, size?: number): Promise<void> {
    checkBlobName(name);
    await streamInParts(name, source, size, this.partSize, (data) => this.put(name, data), (src, first) => this.multipartPut(name, src, first));
  }

  /**
   * A multipart upload: parts go up `uploadConcurrency` at a time, each retried on its own; the
   * object appears only when CompleteMultipartUpload succeeds. On any failure the upload is
   * aborted, so its parts never become a blob. Part buffers are recycled: a streamed put holds
   * (uploadConcurrency + 1) parts and makes no garbage per part.
   */
  private async multipartPut(name: string, src: PartSource, first: Buffer): Promise<void> {
    const key = this.key(name);
    const uploadId = await this.op('CREATE UPLOAD', name, async () => {
      const r = await this.http.call({ method: 'POST', key, query: { uploads: '' } });
      if (r.status !== 200) throw this.answerError(r, 'CREATE UPLOAD', name);
      return this.parsed(name, () => parseUploadId(r.body.toString('utf8')));
    });
    const etags: string[] = [];
    try {
      await uploadParts(src, first, this.partSize, this.uploadConcurrency, async (part, partNumber) => {
        etags[partNumber - 1] = await this.uploadPart(name, key, uploadId, partNumber, part);
      });
      await this.completeUpload(name, key, uploadId, etags);
    } catch (e) {
      await this.abortUpload(name, key, uploadId);
      throw e;
    }
  }

  private async uploadPart(name: string, key: string, uploadId: string, partNumber: number, part: Buffer): Promise<string> {
    const hash = createHash('sha256').update(part).digest('hex');
    const verb = `PUT (part ${partNumber})`;
    return this.op(verb, name, async () => {
      const r = await this.http.call({ method: 'PUT', key, query: { partNumber: String(partNumber), uploadId }, body: part }, hash);
      const etag = r.headers.etag;
      if (r.status !== 200) throw this.answerError(r, verb, name);
      if (typeof etag !== 'string') throw new SnapError('SNAP_REMOTE', `${this.location}: ${verb} ${name}: the answer has no ETag`);
      return etag;
    });
  }

  private async completeUpload(name: string, key: string, uploadId: string, etags: string[]): Promise<void> {
    const body = Buffer.from(completeMultipartBody(etags.map((etag, i) => ({ partNumber: i + 1, etag }))));
    // The ETag S3 gives a completed multipart object: MD5 of the parts' MD5s, then "-" and the part count.
    const md5s = Buffer.concat(etags.map((e) => Buffer.from(e.replace(/"/g, ''), 'hex')));
    const expectedEtag = `${createHash('md5').update(md5s).digest('hex')}-${etags.length}`;
    await this.op('COMPLETE UPLOAD', name, async (attempt) => {
      const r = await this.http.call({ method: 'POST', key, query: { uploadId }, body });
      // A 200 answer can still carry an error: the server failed after it started answering.
      const err = r.status === 200 ? parseErrorBody(r.body.toString('utf8')) : undefined;
      if (err) {
        if (isTransientAnswer(500, err.code)) throw new TransientError(describeAnswer({ status: 200, ...err }));
        throw this.answerError({ status: 500, ...err }, 'COMPLETE UPLOAD', name);
      }
      if (r.status === 200) return;
      // A retry after a lost answer finds the upload gone: it completed if the object is ours.
      if (r.status === 404 && r.code === 'NoSuchUpload' && attempt > 1) {
        const head = await this.http.call({ method: 'HEAD', key });
        if (head.status === 200 && String(head.headers.etag).replace(/"/g, '') === expectedEtag) return;
      }
      throw this.answerError(r, 'COMPLETE UPLOAD', name);
    });
  }

  /** Best effort, a few tries: an upload that cannot be aborted stays invisible (never a blob), holding space until a lifecycle rule removes it. */
  private async abortUpload(name: string, key: string, uploadId: string): Promise<void> {
    const quick = { ...this.retry, attempts: Math.min(3, this.retry.attempts) };
    await withRetry(quick, () => this.http.call({ method: 'DELETE', key, query: { uploadId } }), (last) => last).catch(() => {});
  }

  private parsed<T>(name: string, parse: () => T): T {
    try {
      return parse();
    } catch (e) {
      if (e instanceof XmlShapeError) throw new SnapError('SNAP_REMOTE', `${this.location}: ${name}: the server's answer is not understood: ${e.message}`);
      throw e;
    }
  }

  async get(name: string): Promise<Buffer> {
    checkBlobName(name);
    return this.op('GET', name, async () => {
      const r = await this.http.call({ method: 'GET', key: this.key(name) });
      if (r.status !== 200) throw this.answerError(r, 'GET', name);
      return r.body;
    });
  }

  /** Like get, into `scratch` when the blob fits (check --read-data reads every pack through one buffer). */
  async getInto(name: string, scratch: Buffer): Promise<Buffer> {
    checkBlobName(name);
    return this.op('GET', name, async () => {
      const res = await this.http.send({ method: 'GET', key: this.key(name) });
      const size = Number(res.headers['content-length']);
      if (res.statusCode !== 200 || !Number.isSafeInteger(size) || size > scratch.length) {
        const r = await this.http.answer(res);
        if (r.status !== 200) throw this.answerError(r, 'GET', name);
        return r.body;
      }
      return readAll(res, false, scratch);
    });
  }

  async getRange(name: string, offset: number, length: number): Promise<Buffer> {
    checkBlobName(name);
    checkRange(name, offset, length);
    if (length === 0) {
      const st = await this.stat(name);
      if (!st) throw this.answerError({ status: 404 }, 'GET', name);
      if (offset > st.size) throw shortBlobError(name, this.location, offset, length, st.size);
      return Buffer.alloc(0);
    }
    return this.op('GET', name, async () => {
      const res = await this.http.send({ method: 'GET', key: this.key(name), headers: { range: `bytes=${offset}-${offset + length - 1}` } });
      // The expected answer is read straight into a buffer of its size (a whole pack: no second copy).
      if (res.statusCode === 206 && Number(res.headers['content-length']) === length) return readAll(res, false, Buffer.allocUnsafe(length));
      const r = await this.http.answer(res);
      if (r.status === 206 && r.body.length === length) return r.body;
      if (r.status === 206) throw shortBlobError(name, this.location, offset, length, totalSize(r.headers['content-range']));
      if (r.status === 416) throw shortBlobError(name, this.location, offset, length, totalSize(r.headers['content-range']));
      if (r.status === 200) {
        // A server that ignores Range sends the whole blob.
        if (r.body.length < offset + length) throw shortBlobError(name, this.location, offset, length, r.body.length);
        return r.body.subarray(offset, offset + length);
      }
      throw this.answerError(r, 'GET', name);
    });
  }

  /**
   * Streams the blob; a connection that drops is picked up where it stopped with a ranged GET
   * (If-Match on the first answer's ETag), counting as one try of the retry budget, which every
   * byte that arrives renews. The stream never ends short.
   */
  async *getStream(name: string, range?: { offset: number; length: number }): AsyncIterable<Buffer> {
    checkBlobName(name);
    if (range) checkRange(name, range.offset, range.length);
    if (range?.length === 0) {
      await this.getRange(name, range.offset, 0);
      return;
    }
    const start = range?.offset ?? 0;
    yield* resumingRead({
      name,
      where: this.location,
      start,
      end: range ? range.offset + range.length : undefined,
      retry: this.retry,
      open: async (pos, end, etag) => {
        const headers: Record<string, string> = {};
        if (pos > 0 || end !== undefined) headers.range = `bytes=${pos}-${end === undefined ? '' : end - 1}`;
        if (etag) headers['if-match'] = etag;
        const res = await this.http.send({ method: 'GET', key: this.key(name), headers });
        const status = res.statusCode ?? 0;
        if (status !== 200 && status !== 206) {
          const body = await readAll(res);
          const err = parseErrorBody(body.toString('utf8'));
          const answer = { status, code: err?.code, message: err?.message };
          if (isTransientAnswer(status, answer.code)) throw new TransientError(describeAnswer(answer));
          if (status === 416) throw shortBlobError(name, this.location, start, (end ?? pos) - start, totalSize(res.headers['content-range']));
          if (status === 412 && etag) throw new SnapError('SNAP_REMOTE', `${this.location}: ${name} was replaced while it was being read`);
          throw this.answerError(answer, 'GET', name);
        }
        const destroy = (): void => {
          if (!res.complete) res.destroy();
        };
        const total = status === 206 ? totalSize(res.headers['content-range']) : Number(res.headers['content-length']);
        if (total === undefined || !Number.isSafeInteger(total)) {
          destroy();
          throw new SnapError('SNAP_REMOTE', `${this.location}: GET ${name}: the answer does not say how long the blob is`);
        }
        return { total, etag: typeof res.headers.etag === 'string' ? res.headers.etag : undefined, body: res, ranged: status === 206, destroy };
      },
      describe: (e) => networkError(e).message,
      exhausted: (last, n, ms) => this.exhausted('GET', name, last, n, ms),
    });
  }

  async stat(name: string): Promise<BlobInfo | undefined> {
    checkBlobName(name);
    return this.op('HEAD', name, async () => {
      const r = await this.http.call({ method: 'HEAD', key: this.key(name) });
      if (r.status === 404) return undefined;
      if (r.status !== 200) throw this.answerError(await this.explainHead(r, this.key(name)), 'HEAD', name);
      const size = Number(r.headers['content-length']);
      if (!Number.isSafeInteger(size)) throw new SnapError('SNAP_REMOTE', `${this.location}: HEAD ${name}: no Content-Length in the answer`);
      return { name, size };
    });
  }

  async exists(name: string): Promise<boolean> {
    return (await this.stat(name)) !== undefined;
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    checkListPrefix(prefix);
    const what = prefix === '' ? '(everything)' : prefix;
    const guard = new ListingGuard(`${this.location}: LIST ${what}`);
    let token: string | undefined;
    do {
      const query: Record<string, string> = { 'list-type': '2', prefix: this.key(prefix), 'encoding-type': 'url', 'max-keys': '1000' };
      if (token) query['continuation-token'] = token;
      const page = await this.op('LIST', what, async () => {
        const r = await this.http.call({ method: 'GET', query });
        if (r.status !== 200) throw this.answerError(r, 'LIST', what);
        return this.parsed(`LIST ${what}`, () => parseListPage(r.body.toString('utf8')));
      });
      guard.page(page.entries.map((e) => e.key), page.nextToken);
      for (const e of page.entries) {
        if (!e.key.startsWith(this.loc.prefix)) continue;
        const name = e.key.slice(this.loc.prefix.length);
        if (isBlobName(name)) yield { name, size: e.size };
      }
      token = page.nextToken;
    } while (token);
  }

  async delete(name: string): Promise<void> {
    checkBlobName(name);
    await this.op('DELETE', name, async () => {
      const r = await this.http.call({ method: 'DELETE', key: this.key(name) });
      if (r.status === 204 || r.status === 200 || (r.status === 404 && r.code !== 'NoSuchBucket')) return;
      throw this.answerError(r, 'DELETE', name);
    });
  }

  async capabilities(): Promise<BackendCapabilities> {
    if (!this.conditional) {
      this.conditional = this.probeConditionalWrites();
      this.conditional.catch(() => {
        this.conditional = undefined; // ask again next time
      });
    }
    return { atomicPutIfAbsent: await this.conditional };
  }

  /**
   * Does the server refuse a PUT with `If-None-Match: *` over an existing object? Two
   * conditional PUTs of the probe object: the second (or the first, if the probe is left from
   * earlier) must be refused with 412. It stays in place (so read-only and append-only
   * credentials meet no delete) and is not a blob name, so list never shows it.
   */
  private async probeConditionalWrites(): Promise<boolean> {
    const key = this.key(PROBE_NAME);
    const body = Buffer.from('snap: does this server honour If-None-Match: * on PUT?\n');
    for (let i = 0; i < 2; i++) {
      const r = await this.op('PUT (probe)', PROBE_NAME, () => this.http.call({ method: 'PUT', key, headers: { 'if-none-match': '*' }, body }));
      if (r.status === 412) return true;
      if (r.status === 501 || r.code === 'NotImplemented') return false;
      if (r.status !== 200) throw this.answerError(r, 'PUT (probe)', PROBE_NAME);
    }
    return false;
  }

  async close(): Promise<void> {
    this.http.close();
  }
}

/** The hex SHA-256 a PUT signs: the writer's (PutHints; the server checks it against the body it gets) or computed here. */
function payloadHash(body: Buffer, hints: PutHints | undefined): string {
  if (hints?.sha256?.length === 32) return Buffer.from(hints.sha256.buffer, hints.sha256.byteOffset, 32).toString('hex');
  return createHash('sha256').update(body).digest('hex');
}
