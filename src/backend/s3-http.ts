// Signed HTTP requests to an S3-compatible server: AWS Signature V4 from aws4fetch's signer,
// sent with node:http/https on a keep-alive agent. node:http rather than fetch: on Node 20 the
// built-in fetch has no idle timeout short of installing undici, and its errors hide the system
// error code; here a socket idle for `timeoutMs` is destroyed, and every network failure keeps
// its code (ECONNRESET, ECONNREFUSED, ...). Bodies are buffers, so any attempt can be resent.
// Once the command's stop is aborted, the requests in flight are destroyed and each new one (a
// cleanup) has STOPPED_REQUEST_MS in all (retry.ts), so a server that hangs cannot hold the command.
//
// This layer classifies; it does not retry. A network failure, a truncated response, a 5xx,
// 429 or a throttling/timeout code becomes a TransientError (the caller retries it); any other
// answer is returned for the caller to interpret.
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { AwsV4Signer } from 'aws4fetch';
import { errnoCode } from '../core/errors.js';
import type { AwsCredentials } from './aws-config.js';
import { InFlight, NETWORK_WORDS, STOPPED_IN_FLIGHT, STOPPED_NO_ANSWER, STOPPED_REQUEST_MS, TransientError } from './retry.js';
import type { S3Location } from './s3-location.js';
import { parseErrorBody } from './s3-xml.js';

export interface S3Request {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';
  /** The object key (prefix included); undefined for a request on the bucket. */
  key?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Uint8Array;
}

export interface S3Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The S3 error code and message of an error answer. */
  code?: string;
  message?: string;
}

const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');
const UNRESERVED = /[^A-Za-z0-9\-_.~/]/g;

/** Percent-encode a key for the request path, keeping only unreserved characters and '/' literal (S3 reads '+' in a path as a space). */
export function encodeKey(key: string): string {
  return key.replace(UNRESERVED, (c) => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}

/** Statuses and codes that say "try again later". 400 RequestTimeout: the server waited too long for the body. */
export function isTransientAnswer(status: number, code: string | undefined): boolean {
  if (status === 501) return false; // NotImplemented: asking again will not help
  return status >= 500 || status === 429 || code === 'SlowDown' || code === 'RequestTimeout' || code === 'InternalError';
}

export function describeAnswer(r: { status: number; code?: string; message?: string }): string {
  return `HTTP ${r.status}${r.code ? ` ${r.code}` : ''}${r.message ? `: ${r.message}` : ''}`;
}

export class S3Http {
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  private readonly signingCache = new Map<string, ArrayBuffer>();
  /** Requests sent before the stop and not yet done: destroyed when it comes. */
  private readonly inFlight: InFlight<http.ClientRequest>;

  constructor(
    readonly loc: S3Location,
    private readonly credentials: AwsCredentials,
    readonly region: string,
    readonly timeoutMs: number,
    maxSockets: number,
    /** The command's stop (RetryPolicy.stop): requests in flight end when it is aborted; requests after it get STOPPED_REQUEST_MS. */
    private readonly stop?: AbortSignal,
  ) {
    this.transport = loc.protocol === 'https:' ? https : http;
    this.agent = new this.transport.Agent({ keepAlive: true, maxSockets, scheduling: 'lifo' });
    this.inFlight = new InFlight(stop, (r) => r.destroy(Object.assign(new Error(STOPPED_IN_FLIGHT), { code: 'SNAP_STOPPED' })));
  }

  url(key: string | undefined, query?: Record<string, string>): string {
    const q = query ? Object.entries(query).map(([k, v]) => (v === '' ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)).join('&') : '';
    return `${this.loc.protocol}//${this.loc.host}/${this.loc.bucket}${key === undefined ? '' : `/${encodeKey(key)}`}${q ? `?${q}` : ''}`;
  }

  private async sign(req: S3Request, payloadHash: string): Promise<{ url: string; headers: Record<string, string> }> {
    const signer = new AwsV4Signer({
      method: req.method,
      url: this.url(req.key, req.query),
      headers: { ...req.headers, 'x-amz-content-sha256': payloadHash },
      accessKeyId: this.credentials.accessKeyId,
      secretAccessKey: this.credentials.secretAccessKey,
      sessionToken: this.credentials.sessionToken,
      service: 's3',
      region: this.region,
      cache: this.signingCache,
    });
    const signed = await signer.sign();
    const headers: Record<string, string> = {};
    signed.headers.forEach((v, k) => {
      headers[k] = v;
    });
    return { url: signed.url.toString(), headers };
  }

  /** Send a request; resolves with the response head (the body still to be read). Network failures are TransientErrors. */
  async send(req: S3Request, payloadHash?: string): Promise<http.IncomingMessage> {
    const body = req.body;
    const hash = payloadHash ?? (body && body.length > 0 ? createHash('sha256').update(body).digest('hex') : EMPTY_SHA256);
    const { url, headers } = await this.sign(req, hash);
    if (body !== undefined || req.method === 'PUT' || req.method === 'POST') headers['content-length'] = String(body?.length ?? 0);
    const stop = this.stop;
    return new Promise((resolve, reject) => {
      const r = this.transport.request(url, { method: req.method, headers, agent: this.agent }, resolve);
      r.setTimeout(this.timeoutMs, () => r.destroy(Object.assign(new Error(`no answer for ${this.timeoutMs / 1000} s`), { code: 'SNAP_IDLE_TIMEOUT' })));
      r.on('error', (e) => reject(networkError(e)));
      if (stop?.aborted) {
        // A cleanup after the stop: a few seconds in all, answer included (retry.ts, STOPPED_REQUEST_MS).
        const deadline = setTimeout(() => r.destroy(Object.assign(new Error(STOPPED_NO_ANSWER), { code: 'SNAP_IDLE_TIMEOUT' })), STOPPED_REQUEST_MS);
        r.on('close', () => clearTimeout(deadline)); // 'close' comes once the answer is read, or the connection is gone
      } else if (stop) {
        // In flight when the command stops: ended at once (withRetry then throws the stop's reason).
        this.inFlight.add(r);
        r.on('close', () => this.inFlight.delete(r));
      }
      r.end(body && body.length > 0 ? body : undefined);
    });
  }

  /** Send a request and read the whole answer; a body shorter than its Content-Length is a TransientError. */
  async call(req: S3Request, payloadHash?: string): Promise<S3Response> {
    return this.answer(await this.send(req, payloadHash), req.method === 'HEAD');
  }

  /** Read and classify an answer (see call). */
  async answer(res: http.IncomingMessage, head = false): Promise<S3Response> {
    const body = await readAll(res, head);
    const out: S3Response = { status: res.statusCode ?? 0, headers: res.headers, body };
    if (out.status >= 300) {
      const err = parseErrorBody(body.toString('utf8'));
      out.code = err?.code ?? statusCode(out.status);
      out.message = err?.message;
    }
    if (isTransientAnswer(out.status, out.code)) throw new TransientError(describeAnswer(out));
    return out;
  }

  close(): void {
    this.inFlight.close();
    this.agent.destroy();
  }
}

/** HEAD answers carry no body: S3 says what the error was only through the status. */
function statusCode(status: number): string | undefined {
  return ({ 403: 'AccessDenied', 404: 'NotFound', 412: 'PreconditionFailed', 416: 'InvalidRange' } as Record<number, string>)[status];
}

export function networkError(e: unknown): TransientError | Error {
  const code = errnoCode(e);
  if (code === 'ENOTFOUND') return new Error(`host not found (${(e as Error).message})`);
  if (code === 'SNAP_IDLE_TIMEOUT') return new TransientError((e as Error).message, { cause: e });
  const words = (code && NETWORK_WORDS[code]) ?? (e instanceof Error ? e.message : String(e));
  return new TransientError(code && NETWORK_WORDS[code] ? `${words} (${code})` : words, { cause: e });
}

/** A body that stopped early: says how much of it came, and why it stopped. */
export function cutShort(res: http.IncomingMessage, got: number, e: unknown): TransientError {
  const want = res.headers['content-length'];
  return new TransientError(`the answer was cut short: ${got} of ${want ?? 'an unknown number of'} bytes arrived (${networkError(e).message})`, { cause: e });
}

/**
 * The whole body (into `into` when given: the caller checked that Content-Length fits); fewer
 * bytes than Content-Length (a dropped connection) is a TransientError.
 */
export async function readAll(res: http.IncomingMessage, head = false, into?: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const p of res) {
      const piece = p as Buffer;
      if (into) {
        if (n + piece.length > into.length) throw new TransientError(`the answer is longer than its Content-Length`);
        piece.copy(into, n);
      } else parts.push(piece);
      n += piece.length;
    }
  } catch (e) {
    if (e instanceof TransientError) throw e;
    throw cutShort(res, n, e);
  }
  const want = res.headers['content-length'];
  if (!head && want !== undefined && Number(want) !== n) {
    throw new TransientError(`the answer was cut short: ${n} of ${want} bytes arrived`);
  }
  if (!res.complete) throw new TransientError(`the answer was cut short: the connection closed after ${n} bytes`);
  return into ? into.subarray(0, n) : Buffer.concat(parts, n);
}
