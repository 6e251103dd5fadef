// A Backend on Azure Blob Storage, through Microsoft's official SDK (@azure/storage-blob, with
// @azure/identity for DefaultAzureCredential), tested against a real Azurite by the same
// conformance suite as every backend.
//
// - Blobs are block blobs named `PREFIX/NAME` in one container. A blob up to one block (8 MiB)
//   is one Put Blob, atomic on Azure: the blob is its whole body or absent. A larger streamed
//   put stages blocks (a few at a time, each retried on its own) and then commits the block
//   list: uncommitted blocks are never visible, never listed, and Azure drops them after a week,
//   so a pack is complete under its name or absent whatever happens to the upload.
// - putIfAbsent is a Put Blob with `If-None-Match: *`, which Azure (and Azurite) honour
//   atomically: 409 BlobAlreadyExists or 412 for the loser; capabilities() says so.
// - Reads use ranged downloads (x-ms-range); a body shorter than asked for is retried, and a
//   streamed read resumes where it stopped (If-Match on the first answer's ETag, so it cannot
//   splice two versions of a blob).
// - The SDK's own retries are off (one try per call): every transient failure (a connection
//   refused or reset, a try that outlived its timeout, 5xx, 429, ServerBusy) is retried here
//   with exponential backoff and jitter (retry.ts), as the S3 backend does; when the tries are
//   used up the error is SNAP_REMOTE naming the location, the operation and the blob. 403 is
//   SNAP_PERMISSION (SNAP_DELETE_DENIED for a delete the credentials may not make); a missing
//   container is SNAP_NO_REPO. Messages carry the first line of Azure's answer, never a key
//   or a SAS signature.
// - Every call of the SDK gets an abort signal of its own (Attempt). The SDK's try timeout
//   (tryTimeoutInMs) only asks the server to give up (?timeout=): a server that hangs would hold
//   a call for ever, so the signal ends a try that has no answer within timeoutMs (a read's body:
//   no byte for that long; an upload: timeoutMs per block size of its body). Once the command's
//   stop is aborted (RetryPolicy.stop: Ctrl-C, SIGTERM), the calls in flight are aborted at once
//   (withRetry then throws the stop's reason instead of retrying) and each call made after it (a
//   cleanup: the lock's release) is aborted after STOPPED_REQUEST_MS, as on S3 and SFTP: a
//   server that hangs cannot hold a stopped command.
// - The SDK is loaded on first use, so commands on other backends never load it.
import { randomBytes } from 'node:crypto';
import type { BlobDownloadResponseParsed, ContainerClient, StoragePipelineOptions } from '@azure/storage-blob';
import { SnapError, errnoCode } from '../core/errors.js';
import { type AzureAuth, checkAzureEndpoint, redactAzure } from './azure-config.js';
import { type AzureLocation, formatAzureLocation, parseAzureLocation } from './azure-location.js';
import type { Backend, BackendCapabilities, BlobInfo } from './backend.js';
import { checkRange, ListingGuard, shortBlobError } from './checks.js';
import { checkBlobName, checkListPrefix, isBlobName } from './names.js';
import { type PartSource, resumingRead, streamInParts, totalSize, uploadParts } from './parts.js';
import { InFlight, NETWORK_WORDS, type RetryPolicy, STOPPED_IN_FLIGHT, STOPPED_NO_ANSWER, STOPPED_REQUEST_MS, TransientError, retryPolicy, withRetry } from './retry.js';

const MiB = 1 << 20;
/** Azure commits at most 50,000 blocks into one blob. */
const MAX_BLOCKS = 50_000;

export interface AzureBackendOptions {
  location: AzureLocation | string;
  auth: AzureAuth;
  /** The account's blob service URL (default `https://ACCOUNT.blob.core.windows.net`; a connection string's BlobEndpoint wins). */
  endpoint?: string;
  retry?: Partial<RetryPolicy>;
  /**
   * One try of one request is abandoned and retried when it has no answer this long after it was
   * sent, or a read's body no byte for this long (default 10 min); an upload has this long per
   * blockSize of its body.
   */
  timeoutMs?: number;
  /** Block size of streamed uploads (default 8 MiB). A streamed blob up to this size is one Put Blob. */
  blockSize?: number;
  /** Blocks one putStream stages at once (default 2): it holds at most (this + 1) blocks in memory. */
  uploadConcurrency?: number;
  /** Blobs asked for per listing page (default 5000, Azure's most; tests make it small to page often). */
  listPageSize?: number;
}

/** What an error from the SDK says, when it is an answer of the service (or a failure to get one). */
interface RestLike {
  name: string;
  message: string;
  statusCode?: number;
  code?: string;
  details?: { errorCode?: string };
}

function asRest(e: unknown): RestLike | undefined {
  return e instanceof Error && e.name === 'RestError' ? (e as RestLike) : undefined;
}

function errorCode(r: RestLike): string | undefined {
  return r.details?.errorCode ?? r.code;
}

/** Statuses and codes that say "try again later". */
function isTransientStatus(status: number, code: string | undefined): boolean {
  if (status === 501) return false;
  return status >= 500 || status === 429 || status === 408 || code === 'ServerBusy' || code === 'OperationTimedOut' || code === 'InternalError';
}

/** The first line of Azure's message (the rest is a request id and a time), without secrets. */
function firstLine(msg: string | undefined): string {
  return redactAzure((msg ?? '').split('\n')[0]!.trim()).slice(0, 300);
}

/**
 * The abort signal of one try of one SDK call, and why it was aborted (the words of the
 * TransientError the failure becomes): the SDK, given an abort signal, ends its request (the
 * answer's body included) when it is aborted, and fails with an AbortError that says no more.
 */
class Attempt {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private renewable = false;
  /** Why the try was aborted, once it was. */
  why: string | undefined;

  constructor(private readonly settled: (a: Attempt) => void = () => {}) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  abort(why: string): void {
    if (this.why !== undefined) return;
    this.why = why;
    clearTimeout(this.timer);
    this.controller.abort(new Error(why));
  }

  /**
   * Abort the try if it is not done within `ms`, or (`renewable`) within `ms` of the last renew().
   * The timer does not hold the process: the request it watches does.
   */
  deadline(ms: number, why: string, renewable = false): void {
    this.renewable = renewable;
    this.timer = setTimeout(() => this.abort(why), ms).unref();
  }

  /** Bytes of the answer came: a renewable deadline starts over. */
  renew(): void {
    if (this.renewable && this.why === undefined) this.timer?.refresh();
  }

  /** The try is over (its answer read, or given up): no timer or listener keeps it. */
  done(): void {
    clearTimeout(this.timer);
    this.settled(this);
  }
}

export class AzureBackend implements Backend {
  readonly location: string;
  readonly loc: AzureLocation;
  private readonly retry: RetryPolicy;
  private readonly blockSize: number;
  private readonly uploadConcurrency: number;
  private readonly timeoutMs: number;
  private readonly endpoint: string;
  private client: Promise<ContainerClient> | undefined;
  /** Tries begun before the command's stop and not yet done: aborted when it comes. */
  private readonly inFlight: InFlight<Attempt>;

  constructor(private readonly o: AzureBackendOptions) {
    this.loc = typeof o.location === 'string' ? parseAzureLocation(o.location) : o.location;
    this.location = formatAzureLocation(this.loc);
    this.retry = retryPolicy(o.retry);
    this.blockSize = o.blockSize ?? 8 * MiB;
    if (!Number.isSafeInteger(this.blockSize) || this.blockSize < 1 || this.blockSize > 4000 * MiB) throw new RangeError('blockSize must be 1 byte to 4000 MiB');
    this.uploadConcurrency = Math.max(1, o.uploadConcurrency ?? 2);
    this.timeoutMs = o.timeoutMs ?? 600_000;
    this.endpoint = o.endpoint ? checkAzureEndpoint(o.endpoint) : `https://${this.loc.account}.blob.core.windows.net`;
    this.inFlight = new InFlight(this.retry.stop, (a) => a.abort(STOPPED_IN_FLIGHT));
  }

  /**
   * The abort signal for one try of one call that sends `sending` bytes: aborted after timeoutMs
   * without an answer (timeoutMs per blockSize of an upload's body), and when the command stops
   * while it is in flight; a try begun after the stop (a cleanup) has STOPPED_REQUEST_MS in all,
   * answer included.
   */
  private attempt(sending = 0): Attempt {
    const stop = this.retry.stop;
    if (stop?.aborted) {
      const a = new Attempt();
      a.deadline(STOPPED_REQUEST_MS, STOPPED_NO_ANSWER);
      return a;
    }
    const a = stop ? new Attempt((done) => this.inFlight.delete(done)) : new Attempt();
    const ms = this.timeoutMs * Math.max(1, Math.ceil(sending / this.blockSize));
    a.deadline(ms, `no answer within ${ms / 1000} s`, true);
    if (stop) this.inFlight.add(a);
    return a;
  }

  private key(name: string): string {
    return `${this.loc.prefix}${name}`;
  }

  /** The container's client, made on first use (loading the SDK then). */
  private container(): Promise<ContainerClient> {
    if (!this.client) {
      this.client = this.connect();
      this.client.catch(() => {
        this.client = undefined;
      });
    }
    return this.client;
  }

  private async connect(): Promise<ContainerClient> {
    const sb = await import('@azure/storage-blob');
    // One try per call: retry.ts retries, the same way for every remote backend. tryTimeoutInMs
    // only tells the server when to give up; the client's own limit is each call's Attempt.
    const options: StoragePipelineOptions = { retryOptions: { maxTries: 1, tryTimeoutInMs: this.timeoutMs }, userAgentOptions: { userAgentPrefix: 'snap' } };
    const auth = this.o.auth;
    let service: InstanceType<typeof sb.BlobServiceClient>;
    if (auth.kind === 'connection-string') {
      try {
        service = sb.BlobServiceClient.fromConnectionString(auth.connectionString, options);
      } catch {
        throw new SnapError('SNAP_USAGE', 'AZURE_STORAGE_CONNECTION_STRING is not a connection string snap can use (it needs AccountName and AccountKey, or BlobEndpoint and SharedAccessSignature)');
      }
      const named = /(?:^|;)\s*AccountName\s*=\s*([^;]*)/i.exec(auth.connectionString)?.[1]?.trim() || service.accountName;
      if (named && named !== this.loc.account) {
        throw new SnapError('SNAP_USAGE', `AZURE_STORAGE_CONNECTION_STRING is for the account ${named}, not ${this.loc.account} of ${this.location}`);
      }
      // AZURE_STORAGE_ENDPOINT wins over the BlobEndpoint (keeping a SharedAccessSignature, which the SDK puts in the URL).
      if (this.o.endpoint) service = new sb.BlobServiceClient(`${this.endpoint}${new URL(service.url).search}`, service.credential, options);
    } else if (auth.kind === 'sas') {
      service = new sb.BlobServiceClient(`${this.endpoint}?${auth.token}`, new sb.AnonymousCredential(), options);
    } else if (auth.kind === 'key') {
      let credential: InstanceType<typeof sb.StorageSharedKeyCredential>;
      try {
        credential = new sb.StorageSharedKeyCredential(this.loc.account, auth.key);
      } catch {
        throw new SnapError('SNAP_USAGE', 'AZURE_STORAGE_KEY is not an account key (base64)');
      }
      service = new sb.BlobServiceClient(this.endpoint, credential, options);
    } else {
      if (!this.endpoint.startsWith('https:')) {
        throw new SnapError('SNAP_USAGE', `${this.location}: signing in with DefaultAzureCredential (no AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING set) needs an https endpoint, and ${this.endpoint} is not one`);
      }
      const { DefaultAzureCredential } = await import('@azure/identity');
      service = new sb.BlobServiceClient(this.endpoint, new DefaultAzureCredential(), options);
    }
    return service.getContainerClient(this.loc.container);
  }

  /**
   * Run one call with retries, each try with an abort signal of its own (`a`) that the call must
   * pass to the SDK (`sending`: the bytes of the body it sends); when the tries are used up,
   * SNAP_REMOTE naming what failed.
   */
  private async op<T>(verb: string, name: string, call: (c: ContainerClient, a: Attempt, n: number) => Promise<T>, sending = 0): Promise<T> {
    const c = await this.container();
    return withRetry(
      this.retry,
      async (n) => {
        const a = this.attempt(sending);
        try {
          return await call(c, a, n);
        } catch (e) {
          throw this.classify(e, verb, name, a);
        } finally {
          a.done();
        }
      },
      (last, n, ms) => this.exhausted(verb, name, last, n, ms),
    );
  }

  private exhausted(verb: string, name: string, last: Error, attempts: number, ms: number): SnapError {
    return new SnapError('SNAP_REMOTE', `${this.location}: ${verb} ${name} failed ${attempts} times in ${(ms / 1000).toFixed(1)} s, giving up; last: ${last.message}`, { cause: last });
  }

  /** A failure of the SDK as a TransientError (to retry) or the SnapError to report; `a`: the try it ended. */
  private classify(e: unknown, verb: string, name: string, a?: Attempt): Error {
    if (e instanceof SnapError || e instanceof TransientError) return e;
    const r = asRest(e);
    // Aborted by us (the command's stop, a deadline): the SDK's AbortError, or whatever the
    // request it destroyed failed with. An answer that came first is still the answer.
    if (a?.why !== undefined && r?.statusCode === undefined) return new TransientError(a.why, { cause: e });
    if (r && r.statusCode !== undefined) {
      const code = errorCode(r);
      if (isTransientStatus(r.statusCode, code)) return new TransientError(`HTTP ${r.statusCode}${code ? ` ${code}` : ''}${r.message ? `: ${firstLine(r.message)}` : ''}`);
      return this.answerError(r.statusCode, code, r.message, verb, name);
    }
    const err = e as Error;
    if (err?.name === 'AbortError') return new TransientError('the request was aborted', { cause: e });
    if (err?.name === 'CredentialUnavailableError' || err?.name === 'AuthenticationError' || err?.name === 'AggregateAuthenticationError') {
      return new SnapError(
        'SNAP_PERMISSION',
        `${this.location}: ${verb} ${name}: no Azure credentials could be had (${firstLine(err.message)}): set AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_KEY, or sign in for DefaultAzureCredential (az login, a managed identity, or AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET)`,
      );
    }
    const code = errnoCode(e);
    if (code === 'ENOTFOUND') return new SnapError('SNAP_REMOTE', `${this.location}: ${verb} ${name}: the host of ${this.endpoint} was not found`);
    // A failure to send or to read an answer (the SDK's RestError without a status, or a system
    // error); any other error is a bug or a misuse, not retried.
    if (r || (code && (NETWORK_WORDS[code] !== undefined || /^E[A-Z_]+$/.test(code)))) {
      const words = (code && NETWORK_WORDS[code]) ?? firstLine(err?.message);
      return new TransientError(code && NETWORK_WORDS[code] ? `${words} (${code})` : words, { cause: e });
    }
    return e instanceof Error ? e : new Error(String(e));
  }

  /** The SnapError for an answer that is neither success nor transient. */
  private answerError(status: number, code: string | undefined, message: string | undefined, verb: string, name: string): SnapError {
    const what = `${this.location}: ${verb} ${name}`;
    const said = `HTTP ${status}${code ? ` ${code}` : ''}${message ? `: ${firstLine(message)}` : ''}`;
    if (code === 'ContainerNotFound') return new SnapError('SNAP_NO_REPO', `${this.location}: the container ${this.loc.container} does not exist in the storage account ${this.loc.account}`);
    if (status === 404) return new SnapError('SNAP_MISSING_OBJECT', `${name} is missing from the repository at ${this.location}`);
    if (status === 403) {
      if (verb === 'DELETE' && code === 'AuthorizationPermissionMismatch') {
        return new SnapError('SNAP_DELETE_DENIED', `${what}: the service refused to delete it (${code}): these credentials may not delete (an append-only setup?); forget and gc need credentials that may`);
      }
      const why =
        code === 'AuthenticationFailed' || code === 'AuthorizationFailure'
          ? 'the service did not accept the credentials (a wrong account key, an expired or malformed SAS token, or a clock far off)'
          : `the credentials are not allowed to do this (${code ?? 'HTTP 403'})`;
      return new SnapError('SNAP_PERMISSION', `${what}: permission denied: ${why}`);
    }
    return new SnapError('SNAP_REMOTE', `${what}: unexpected answer ${said}`);
  }

  /** Make the container if it does not exist (for init); says which it was. */
  async ensureContainer(): Promise<'created' | 'existed'> {
    const what = `(container ${this.loc.container})`;
    const r = await this.op('CREATE', what, (c, a) => c.createIfNotExists({ abortSignal: a.signal }));
    return r.succeeded ? 'created' : 'existed';
  }

  async put(name: string, data: Uint8Array): Promise<void> {
    checkBlobName(name);
    const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    await this.op('PUT', name, (c, a) => c.getBlockBlobClient(this.key(name)).upload(body, body.length, { abortSignal: a.signal }), body.length);
  }

  async putIfAbsent(name: string, data: Uint8Array): Promise<boolean> {
    checkBlobName(name);
    const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return this.op('PUT (if absent)', name, async (c, a, attempt) => {
      try {
        await c.getBlockBlobClient(this.key(name)).upload(body, body.length, { conditions: { ifNoneMatch: '*' }, abortSignal: a.signal });
        return true;
      } catch (e) {
        const r = asRest(e);
        if (r?.statusCode === 409 && errorCode(r) === 'BlobAlreadyExists') {
          // A retry that finds the blob may be finding our own earlier try, whose answer was lost.
          return attempt > 1 ? (await this.get(name)).equals(body) : false;
        }
        if (r?.statusCode === 412) return attempt > 1 ? (await this.get(name)).equals(body) : false;
        throw e;
      }
    }, body.length);
  }

  async putStream(name: string, source: AsyncIterable<Uint8Array>, size?: number): Promise<void> {
    checkBlobName(name);
    await streamInParts(name, source, size, this.blockSize, (data) => this.put(name, data), (src, first) => this.blockPut(name, src, first));
  }

  /**
   * Stage the blocks, `uploadConcurrency` at a time, then commit the list: the blob appears
   * whole at the commit (which a retry after a lost answer repeats harmlessly) or not at all.
   * Block ids carry a random tag of this upload, so two clients uploading the same name never
   * commit each other's blocks.
   */
  private async blockPut(name: string, src: PartSource, first: Buffer): Promise<void> {
    const tag = randomBytes(12).toString('hex');
    const blockId = (n: number): string => Buffer.from(`${tag}-${String(n).padStart(6, '0')}`).toString('base64');
    const key = this.key(name);
    const count = await uploadParts(src, first, this.blockSize, this.uploadConcurrency, async (part, n) => {
      if (n > MAX_BLOCKS) throw new SnapError('SNAP_INTERNAL', `writing ${name}: more than ${MAX_BLOCKS} blocks of ${this.blockSize} bytes`);
      await this.op(`PUT (block ${n})`, name, (c, a) => c.getBlockBlobClient(key).stageBlock(blockId(n), part, part.length, { abortSignal: a.signal }), part.length);
    });
    const ids = Array.from({ length: count }, (_, i) => blockId(i + 1));
    await this.op('COMMIT', name, (c, a) => c.getBlockBlobClient(key).commitBlockList(ids, { abortSignal: a.signal }));
  }

  /** One download, read whole (into `into` when it fits), checked against its Content-Length. */
  private async download(c: ContainerClient, a: Attempt, name: string, offset: number, count: number | undefined, into?: Buffer): Promise<Buffer> {
    const r = await c.getBlobClient(this.key(name)).download(offset, count, { maxRetryRequests: 0, abortSignal: a.signal });
    return readBody(r, a, into);
  }

  async get(name: string): Promise<Buffer> {
    checkBlobName(name);
    return this.op('GET', name, (c, a) => this.download(c, a, name, 0, undefined));
  }

  /** Like get, into `scratch` when the blob fits (check --read-data reads every pack through one buffer). */
  async getInto(name: string, scratch: Buffer): Promise<Buffer> {
    checkBlobName(name);
    return this.op('GET', name, (c, a) => this.download(c, a, name, 0, undefined, scratch));
  }

  async getRange(name: string, offset: number, length: number): Promise<Buffer> {
    checkBlobName(name);
    checkRange(name, offset, length);
    if (length === 0) {
      const st = await this.stat(name);
      if (!st) throw this.answerError(404, 'BlobNotFound', undefined, 'GET', name);
      if (offset > st.size) throw shortBlobError(name, this.location, offset, length, st.size);
      return Buffer.alloc(0);
    }
    return this.op('GET', name, async (c, a) => {
      let r: BlobDownloadResponseParsed;
      try {
        r = await c.getBlobClient(this.key(name)).download(offset, length, { maxRetryRequests: 0, abortSignal: a.signal });
      } catch (e) {
        if (asRest(e)?.statusCode === 416) throw shortBlobError(name, this.location, offset, length, undefined);
        throw e;
      }
      const total = totalSize(r.contentRange) ?? r.contentLength;
      if (r.contentLength !== length) {
        r.readableStreamBody?.resume();
        throw shortBlobError(name, this.location, offset, length, total);
      }
      return readBody(r, a);
    });
  }

  /** Streams the blob with ranged downloads, resumed where a connection dropped (parts.ts: resumingRead). */
  async *getStream(name: string, range?: { offset: number; length: number }): AsyncIterable<Buffer> {
    checkBlobName(name);
    if (range) checkRange(name, range.offset, range.length);
    if (range?.length === 0) {
      await this.getRange(name, range.offset, 0);
      return;
    }
    const blob = (await this.container()).getBlobClient(this.key(name));
    const start = range?.offset ?? 0;
    // The try of the answer being read: it lasts until its body is done with (`destroy`).
    let current: Attempt | undefined;
    yield* resumingRead({
      name,
      where: this.location,
      start,
      end: range ? range.offset + range.length : undefined,
      retry: this.retry,
      open: async (pos, end, etag) => {
        const a = this.attempt();
        current = a;
        let r: BlobDownloadResponseParsed;
        try {
          r = await blob.download(pos, end === undefined ? undefined : end - pos, { maxRetryRequests: 0, conditions: etag ? { ifMatch: etag } : undefined, abortSignal: a.signal });
        } catch (e) {
          a.done();
          const status = asRest(e)?.statusCode;
          if (status === 416) throw shortBlobError(name, this.location, start, (end ?? pos) - start, undefined);
          if (status === 412 && etag) throw new SnapError('SNAP_REMOTE', `${this.location}: ${name} was replaced while it was being read`);
          throw this.classify(e, 'GET', name, a);
        }
        const body = r.readableStreamBody as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
        const destroy = (): void => {
          body?.destroy?.();
          a.done();
        };
        const total = r.contentRange ? totalSize(r.contentRange) : r.contentLength;
        if (total === undefined || !Number.isSafeInteger(total)) {
          destroy();
          throw new SnapError('SNAP_REMOTE', `${this.location}: GET ${name}: the answer does not say how long the blob is`);
        }
        return { total, etag: r.etag, body: renewing((body ?? []) as AsyncIterable<Buffer>, a), ranged: r.contentRange !== undefined, destroy };
      },
      describe: (e) => this.classify(e, 'GET', name, current).message,
      exhausted: (last, n, ms) => this.exhausted('GET', name, last, n, ms),
    });
  }

  async stat(name: string): Promise<BlobInfo | undefined> {
    checkBlobName(name);
    return this.op('HEAD', name, async (c, a) => {
      try {
        const p = await c.getBlobClient(this.key(name)).getProperties({ abortSignal: a.signal });
        if (p.contentLength === undefined) throw new SnapError('SNAP_REMOTE', `${this.location}: HEAD ${name}: no Content-Length in the answer`);
        return { name, size: p.contentLength };
      } catch (e) {
        // A missing container too: a HEAD of a blob in it finds nothing (as on S3).
        if (asRest(e)?.statusCode === 404) return undefined;
        throw e;
      }
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
      const page = await this.op('LIST', what, async (c, a) => {
        const r = await c.listBlobsFlat({ prefix: this.key(prefix), abortSignal: a.signal }).byPage({ maxPageSize: this.o.listPageSize ?? 5000, continuationToken: token }).next();
        return r.done ? undefined : r.value;
      });
      guard.page((page?.segment.blobItems ?? []).map((b) => b.name), page?.continuationToken || undefined);
      for (const b of page?.segment.blobItems ?? []) {
        if (!b.name.startsWith(this.loc.prefix)) continue;
        const name = b.name.slice(this.loc.prefix.length);
        const size = b.properties.contentLength;
        if (isBlobName(name) && size !== undefined) yield { name, size };
      }
      token = page?.continuationToken || undefined;
    } while (token);
  }

  async delete(name: string): Promise<void> {
    checkBlobName(name);
    await this.op('DELETE', name, async (c, a) => {
      try {
        await c.getBlobClient(this.key(name)).delete({ abortSignal: a.signal });
      } catch (e) {
        const r = asRest(e);
        if (r?.statusCode === 404 && errorCode(r) !== 'ContainerNotFound') return;
        throw e;
      }
    });
  }

  async capabilities(): Promise<BackendCapabilities> {
    // Put Blob with If-None-Match: * is atomic on Azure Storage and on Azurite.
    return { atomicPutIfAbsent: true };
  }

  async close(): Promise<void> {
    // The SDK keeps no connection that would hold the process open.
    this.inFlight.close();
  }
}

/** A download's whole body (into `into` when its Content-Length fits); fewer bytes than that is a TransientError. `a`: the download's try. */
async function readBody(r: BlobDownloadResponseParsed, a: Attempt, into?: Buffer): Promise<Buffer> {
  const want = r.contentLength ?? 0;
  const body = r.readableStreamBody;
  if (!body) {
    if (want === 0) return Buffer.alloc(0);
    throw new TransientError('the answer has no body');
  }
  const target = into && want <= into.length ? into : undefined;
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of body) {
      a.renew();
      const piece = chunk as Buffer;
      if (n + piece.length > want) throw new TransientError('the answer is longer than its Content-Length');
      if (target) piece.copy(target, n);
      else parts.push(piece);
      n += piece.length;
    }
  } catch (e) {
    if (e instanceof TransientError) throw e;
    throw new TransientError(`the answer was cut short: ${n} of ${want} bytes arrived (${a.why ?? (e as Error).message})`, { cause: e });
  }
  if (n !== want) throw new TransientError(`the answer was cut short: ${n} of ${want} bytes arrived`);
  return target ? target.subarray(0, n) : Buffer.concat(parts, n);
}

/** The pieces of an answer's body, each renewing its try's deadline (timeoutMs is without a byte, not in all). */
async function* renewing(body: AsyncIterable<Buffer>, a: Attempt): AsyncIterable<Buffer> {
  for await (const piece of body) {
    a.renew();
    yield piece;
  }
}
