// Who may talk to the UI server, checked before any route runs:
// - a random one-time token in the URL printed at start starts a session (an HttpOnly,
//   SameSite=Strict cookie); every other request needs that session;
// - the Host header must name the address served, so a page on another name that resolves to
//   127.0.0.1 (DNS rebinding) is refused, and an Origin header, when sent, must be ours;
// - requests that change anything (POST, DELETE) need the session's CSRF token in a header.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const SESSION_COOKIE = 'snap_ui_session';
export const CSRF_HEADER = 'x-snap-csrf';

export type Refusal = { status: number; code: string; message: string };

const token = (): string => randomBytes(32).toString('base64url');
const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
/** Constant-time comparison of two secrets (by their digests, so lengths may differ). */
const same = (a: string, b: string): boolean => timingSafeEqual(digest(a), digest(b));

export class Gate {
  /** The one-time token in the printed URL; undefined once it started a session. */
  private startToken: string | undefined = token();
  private readonly sessions = new Map<string, { csrf: string }>();

  constructor(
    /** Host header values accepted (`127.0.0.1:8080`, `localhost:8080`, ...), lower case. */
    private readonly hosts: ReadonlySet<string>,
    /** Origins accepted (`http://127.0.0.1:8080`, ...). */
    private readonly origins: ReadonlySet<string>,
  ) {}

  get oneTimeToken(): string | undefined {
    return this.startToken;
  }

  /** Host and Origin: the same for every request, with or without a session. */
  checkAddress(req: IncomingMessage): Refusal | undefined {
    const host = (req.headers.host ?? '').toLowerCase();
    if (!this.hosts.has(host)) return { status: 421, code: 'SNAP_UI_HOST', message: `requests must be addressed to this server (Host: ${[...this.hosts][0]})` };
    const origin = req.headers.origin;
    if (origin !== undefined && !this.origins.has(origin.toLowerCase())) {
      return { status: 403, code: 'SNAP_UI_ORIGIN', message: 'cross-origin requests are refused' };
    }
    // Browsers send Sec-Fetch-Site on every request; anything but our own page (or typing the URL) is refused.
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      return { status: 403, code: 'SNAP_UI_ORIGIN', message: 'cross-site requests are refused' };
    }
    return undefined;
  }

  /** Trades the one-time token for a session id (the cookie's value); undefined if wrong or used. */
  startSession(given: string): string | undefined {
    if (this.startToken === undefined || !same(given, this.startToken)) return undefined;
    this.startToken = undefined;
    const id = token();
    this.sessions.set(id, { csrf: token() });
    return id;
  }

  /** The session of a request (its CSRF token), or undefined. */
  session(req: IncomingMessage, cookieName = SESSION_COOKIE): { id: string; csrf: string } | undefined {
    const id = cookie(req.headers.cookie ?? '', cookieName);
    if (id === undefined) return undefined;
    for (const [known, s] of this.sessions) if (same(id, known)) return { id: known, csrf: s.csrf };
    return undefined;
  }

  checkCsrf(req: IncomingMessage, csrf: string): Refusal | undefined {
    const given = req.headers[CSRF_HEADER];
    if (typeof given !== 'string' || !same(given, csrf)) return { status: 403, code: 'SNAP_UI_CSRF', message: `a change needs the ${CSRF_HEADER} header from /api/info` };
    return undefined;
  }
}

function cookie(header: string, name: string): string | undefined {
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
