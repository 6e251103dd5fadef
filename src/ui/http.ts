// Small HTTP helpers for the UI server: JSON answers and errors, writing with back-pressure (a
// slow client makes the server wait, never buffer), and the request's query parameters.
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isSnapError } from '../core/errors.js';
import { isOutputClosed } from '../core/errors.js';

/** HTTP status of a SnapError code; anything unknown is a server error. */
const STATUS: Record<string, number> = {
  SNAP_USAGE: 400,
  SNAP_UNSAFE_PATH: 400,
  SNAP_AMBIGUOUS: 400,
  SNAP_NOT_FOUND: 404,
  SNAP_EXISTS: 409,
  SNAP_LOCKED: 503,
  SNAP_INTERRUPTED: 499,
  SNAP_NO_REPO: 500,
};

/** Thrown by routes for a refusal that is not a SnapError (bad request, forbidden). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** `{"error":{"code","message"}}` with the status of its code. */
export function sendError(res: ServerResponse, e: unknown): void {
  let status = 500;
  let code = 'SNAP_INTERNAL';
  let message = e instanceof Error ? e.message : String(e);
  if (e instanceof HttpError) ({ status, code } = e);
  else if (isSnapError(e)) {
    code = e.code;
    status = STATUS[code] ?? 500;
  } else message = `internal error: ${message}`;
  if (res.headersSent) {
    // Mid-stream: the answer is cut off, which the client sees as a failed download.
    res.destroy(e instanceof Error ? e : undefined);
    return;
  }
  sendJson(res, status, { error: { code, message } });
}

/** Whether an error only says the client went away (nothing to report). */
export function isGone(e: unknown): boolean {
  return isOutputClosed(e) || (e instanceof Error && (e as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE') || e instanceof ClientGone;
}

export class ClientGone extends Error {
  constructor() {
    super('the client closed the connection');
  }
}

/** Writes that wait while the socket's buffer is full and fail once the client has gone. */
export class ResponseWriter {
  constructor(private readonly res: ServerResponse) {}

  async write(data: string | Uint8Array): Promise<void> {
    const res = this.res;
    if (res.destroyed || res.writableEnded) throw new ClientGone();
    if (res.write(data)) return;
    const closed = once(res, 'close').then(() => {
      throw new ClientGone();
    });
    try {
      await Promise.race([once(res, 'drain'), closed]);
    } finally {
      closed.catch(() => {});
    }
  }
}

/** A JSON document written as it is produced: `head`, the items comma-separated, `tail` (as the CLI's JsonList). */
export class JsonStream {
  private n = 0;
  private readonly w: ResponseWriter;
  constructor(
    res: ServerResponse,
    private readonly head: string,
  ) {
    this.w = new ResponseWriter(res);
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' });
  }
  async item(v: unknown): Promise<void> {
    await this.w.write((this.n++ === 0 ? this.head : ',') + JSON.stringify(v) + '\n');
  }
  async end(tail: string, res: ServerResponse): Promise<void> {
    await this.w.write((this.n === 0 ? this.head : '') + tail + '\n');
    res.end();
  }
}

export async function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) throw new HttpError(413, 'SNAP_USAGE', 'request body too large');
    parts.push(c);
  }
  if (n === 0) return {};
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    throw new HttpError(400, 'SNAP_USAGE', 'the request body is not JSON');
  }
}
