// `snap ui`'s HTTP server: the guards (security.ts) in front of the page's files and the JSON API
// (api.ts). Node's own http module: nothing to keep up to date but Node.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import { routes, jobRoute, type ApiContext } from './api.js';
import { HttpError, isGone, SECURITY_HEADERS, sendError } from './http.js';
import { Jobs } from './jobs.js';
import { RepoLease, type RepoOpener } from './lease.js';
import { checkRawTarget } from './params.js';
import { Gate, isLoopback, SESSION_COOKIE } from './security.js';

export interface UiServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Binding to an address other than loopback: the CLI asks for an explicit flag first. */
  allowRemote: boolean;
  allowRestore: boolean;
  open: RepoOpener;
  /** Shown on the page. */
  repoPath: string;
  asRoot: boolean;
  now: () => Date;
  /** How long the repository stays open after the last request (lease.ts). */
  idleMs?: number;
  /** Told of failures that are the server's, not the client's (500s). */
  log?: (line: string) => void;
}

export interface UiServer {
  /** The URL to open: carries the one-time token. */
  url: string;
  /** `http://host:port` */
  origin: string;
  server: Server;
  lease: RepoLease;
  close(): Promise<void>;
}

/** The page's files, read once: a fixed table, so no request path ever reaches the file system. */
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/vendor/preact.mjs': { file: 'vendor/preact.mjs', type: 'text/javascript; charset=utf-8' },
  '/vendor/hooks.mjs': { file: 'vendor/hooks.mjs', type: 'text/javascript; charset=utf-8' },
  '/vendor/htm.mjs': { file: 'vendor/htm.mjs', type: 'text/javascript; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function loadStatic(): Map<string, { body: Buffer; type: string }> {
  const dir = new URL('./static/', import.meta.url);
  const out = new Map<string, { body: Buffer; type: string }>();
  for (const [route, { file, type }] of Object.entries(STATIC)) out.set(route, { body: readFileSync(new URL(file, dir)), type });
  return out;
}

function hostNames(bound: string, port: number, remote: boolean): string[] {
  const names = new Set<string>([bound.includes(':') ? `[${bound}]` : bound]);
  if (isLoopback(bound) || remote) for (const n of ['localhost', '127.0.0.1', '[::1]']) names.add(n);
  if (remote) {
    names.add(os.hostname().toLowerCase());
    for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) names.add(a.family === 'IPv6' ? `[${a.address}]` : a.address);
  }
  return [...names].map((n) => `${n.toLowerCase()}:${port}`);
}

export async function startUiServer(o: UiServerOptions): Promise<UiServer> {
  const files = loadStatic();
  const stop = new AbortController();
  const lease = new RepoLease(o.open, o.idleMs ?? 1000, stop.signal);
  const jobs = new Jobs(stop.signal);
  let gate: Gate | undefined;
  let cookieName = SESSION_COOKIE;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const g = gate!;
    const url = req.url ?? '/';
    checkRawTarget(url);
    const refused = g.checkAddress(req);
    if (refused) throw new HttpError(refused.status, refused.code, refused.message);
    const u = new URL(url, 'http://x');
    const method = req.method ?? 'GET';

    // The one-time token starts a session, then the address bar loses it.
    if (u.pathname === '/' && u.searchParams.has('token')) {
      const id = g.startSession(u.searchParams.get('token')!);
      if (!id) throw new HttpError(401, 'SNAP_UI_TOKEN', "this link's token is wrong or was already used: run 'snap ui' again for a new link");
      res.writeHead(303, { ...SECURITY_HEADERS, location: '/', 'set-cookie': `${cookieName}=${id}; HttpOnly; SameSite=Strict; Path=/` });
      res.end();
      return;
    }
    const session = g.session(req, cookieName);
    if (!session) throw new HttpError(401, 'SNAP_UI_SESSION', "no session: open the link 'snap ui' printed");
    if (method !== 'GET' && method !== 'HEAD') {
      if (method !== 'POST') throw new HttpError(405, 'SNAP_USAGE', `${method} is not supported`);
      const bad = g.checkCsrf(req, session.csrf);
      if (bad) throw new HttpError(bad.status, bad.code, bad.message);
    }

    const file = method === 'GET' || method === 'HEAD' ? files.get(u.pathname) : undefined;
    if (file) {
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': file.type, 'content-length': file.body.length, 'content-security-policy': PAGE_CSP });
      res.end(method === 'HEAD' ? undefined : file.body);
      return;
    }
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort(new Error('the client closed the connection'));
    });
    const c: ApiContext = {
      req,
      res,
      q: u.searchParams,
      lease,
      jobs,
      csrf: session.csrf,
      allowRestore: o.allowRestore,
      repoPath: o.repoPath,
      asRoot: o.asRoot,
      now: o.now,
      signal: ac.signal,
    };
    const route = routes[`${method === 'HEAD' ? 'GET' : method} ${u.pathname}`];
    if (route) return route(c);
    if (u.pathname.startsWith('/api/jobs/') && jobRoute(c, method, u.pathname.slice('/api/jobs/'.length))) return;
    throw new HttpError(404, 'SNAP_NOT_FOUND', `no such page: ${u.pathname}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (isGone(e) || res.destroyed) return;
      if (!(e instanceof HttpError) && !(e as { code?: string }).code?.startsWith?.('SNAP_')) o.log?.(`${req.method} ${req.url?.split('?')[0]}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      sendError(res, e);
    });
  });
  // Slow or idle clients cannot hold sockets open forever; downloads are not limited (no requestTimeout on bodies we send).
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port, address } = server.address() as AddressInfo;
  const hosts = hostNames(address, port, o.allowRemote);
  gate = new Gate(new Set(hosts), new Set(hosts.map((h) => `http://${h}`)));
  cookieName = `${SESSION_COOKIE}_${port}`;
  const shown = isLoopback(address) ? (address.includes(':') ? `[${address}]` : address) : (o.host.includes(':') ? `[${o.host}]` : o.host);
  const origin = `http://${shown === '0.0.0.0' || shown === '[::]' ? os.hostname() : shown}:${port}`;
  return {
    url: `${origin}/?token=${gate.oneTimeToken}`,
    origin,
    server,
    lease,
    async close() {
      stop.abort(new Error('the server is stopping'));
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
      await jobs.idle();
      await lease.closeWhenIdle();
    },
  };
}

