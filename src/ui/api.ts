// The JSON API: each route answers with the document the matching CLI command prints with --json
// (docs/ui.md lists them), built by the same functions. Long answers stream with back-pressure.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { displayName } from '../core/bytes.js';
import { SnapError } from '../core/errors.js';
import { shortId } from '../core/ids.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import { fileChunks, listPath } from '../ops/browse/browse.js';
import { calendar, parseUnit } from '../ops/browse/calendar.js';
import { diffSnapshots } from '../ops/browse/diff.js';
import { exportSnapshot, type ArchiveFormat } from '../ops/restore/export.js';
import { compileFindPattern, findInSnapshots } from '../ops/browse/find.js';
import { history } from '../ops/browse/history.js';
import { locate, splitPath } from '../ops/tree/navigate.js';
import { PathSelection } from '../ops/tree/selection.js';
import { filterSnapshots, resolveRef, type SnapshotFilter, whenParser } from '../ops/tree/refs.js';
import { restoreSnapshot, type OverwritePolicy } from '../ops/restore/restore.js';
import type { Repository } from '../repo/repository.js';
import { emptySummary, summarize } from '../ops/browse/diff.js';
import { HttpError, JsonStream, ResponseWriter, SECURITY_HEADERS, readBody, sendJson } from './http.js';
import type { Jobs } from './jobs.js';
import type { RepoLease } from './lease.js';
import { asUserPath, filterParams, required, restoreTarget, snapshotPath, snapshotPaths, fromHexParam } from './params.js';
import { previewOf } from './preview.js';
import { changeJson, entryJson, nodeJson, pathJson, plannedJson, snapRefJson, snapshotJson, versionJson } from '../view/json.js';

export interface ApiContext {
  req: IncomingMessage;
  res: ServerResponse;
  q: URLSearchParams;
  lease: RepoLease;
  jobs: Jobs;
  csrf: string;
  allowRestore: boolean;
  repoPath: string;
  /** Whether this process runs as root (restore then restores owners, as the CLI does). */
  asRoot: boolean;
  /** The clock "latest" and relative dates are resolved against. */
  now: () => Date;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

type Route = (c: ApiContext) => Promise<void>;

async function snapshots(repo: Repository, f: SnapshotFilter): Promise<StoredSnapshot[]> {
  return filterSnapshots(await repo.listSnapshots(), f);
}

async function snapshotParam(c: ApiContext, repo: Repository, name = 'snapshot'): Promise<StoredSnapshot> {
  return resolveRef(await snapshots(repo, filterParams(c.q)), required(c.q, name), c.now(), whenParser);
}

const READ_ONLY = (): HttpError => new HttpError(403, 'SNAP_UI_READ_ONLY', "restoring needs 'snap ui --allow-restore'");

/** `Content-Disposition` with the name as UTF-8 (non-UTF-8 bytes as their lossless escapes' U+FFFD) and an ASCII fallback. */
export function disposition(kind: 'attachment' | 'inline', name: Buffer): string {
  const text = name.toString('utf8');
  const ascii = text.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(text)}`;
}

/** Headers of file bytes served from a snapshot: never run as a page, whatever they hold. */
const CONTENT_HEADERS = { ...SECURITY_HEADERS, 'content-security-policy': "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox" };

const baseName = (p: Buffer): Buffer => {
  const parts = splitPath(p);
  return parts.length > 0 ? parts[parts.length - 1]! : Buffer.from('snapshot');
};

export const routes: Record<string, Route> = {
  'GET /api/info': (c) =>
    c.lease.use(async (repo) => {
      const all = await repo.listSnapshots();
      sendJson(c.res, 200, {
        repository: c.repoPath,
        allow_restore: c.allowRestore,
        csrf: c.csrf,
        snapshots: all.length,
        hosts: [...new Set(all.map((s) => s.hostname))].sort(),
        tags: [...new Set(all.flatMap((s) => s.tags))].sort(),
      });
    }),

  // `snap list --json`
  'GET /api/snapshots': (c) => c.lease.use(async (repo) => sendJson(c.res, 200, (await snapshots(repo, filterParams(c.q))).map(snapshotJson))),

  // `snap list --by day|week|month|year --json`
  'GET /api/calendar': (c) =>
    c.lease.use(async (repo) => {
      const by = c.q.get('by') ?? 'day';
      const unit = by === 'year' ? 'year' : parseUnit(by);
      const rows = calendar(await snapshots(repo, filterParams(c.q)), unit).map((p) => ({
        period: p.label,
        count: p.count,
        added: p.added,
        size: p.size,
        first: snapRefJson(p.first),
        newest: snapRefJson(p.newest),
      }));
      sendJson(c.res, 200, rows);
    }),

  // One snapshot, as `snap list --json` shows it: `snapshot=` takes what `snap ls` takes (id prefix, latest, a date).
  'GET /api/resolve': (c) => c.lease.use(async (repo) => sendJson(c.res, 200, snapshotJson(await snapshotParam(c, repo)))),

  // `snap ls REF PATH --json`
  'GET /api/ls': (c) =>
    c.lease.use(async (repo) => {
      const snap = await snapshotParam(c, repo);
      const p = snapshotPath(c.q);
      const list = listPath(repo, snap, asUserPath(p), false);
      const it = list[Symbol.asyncIterator]();
      // Resolve the path before the answer starts, so a missing path is a 404, not a cut-off stream.
      const first = await it.next();
      const out = new JsonStream(c.res, `{"snapshot":${JSON.stringify(snapRefJson(snap))},"entries":[`);
      for (let r = first; !r.done; r = await it.next()) {
        c.signal.throwIfAborted();
        await out.item(entryJson(r.value.path, r.value.node));
      }
      await out.end(']}', c.res);
    }),

  // `snap cat REF PATH`: the file's bytes, as a download (or inline with `inline=1`, for images).
  'GET /api/cat': (c) =>
    c.lease.use(async (repo) => {
      const snap = await snapshotParam(c, repo);
      const p = snapshotPath(c.q);
      const at = await locate(repo, snap, asUserPath(p));
      if (!at.node || at.node.type !== 'file') throw new SnapError('SNAP_USAGE', `${displayName(p)} is not a file`);
      const inline = c.q.get('inline') === '1';
      const mime = inline ? (previewOf(at.node, p).mime ?? 'application/octet-stream') : 'application/octet-stream';
      c.res.writeHead(200, {
        ...CONTENT_HEADERS,
        'content-type': mime,
        'content-length': at.node.size,
        'content-disposition': disposition(inline ? 'inline' : 'attachment', baseName(p)),
      });
      if (c.req.method === 'HEAD') return void c.res.end();
      const w = new ResponseWriter(c.res);
      for await (const chunk of fileChunks(repo, at.node)) {
        c.signal.throwIfAborted();
        await w.write(chunk);
      }
      c.res.end();
    }),

  // What the page can show of a file: text (the first bytes), an image (loaded through /api/cat), or only its metadata.
  'GET /api/preview': (c) =>
    c.lease.use(async (repo) => {
      const snap = await snapshotParam(c, repo);
      const p = snapshotPath(c.q);
      const at = await locate(repo, snap, asUserPath(p));
      if (!at.node) throw new SnapError('SNAP_USAGE', 'the snapshot root is not a file');
      const pv = previewOf(at.node, p);
      const base = { snapshot: snapRefJson(snap), ...pathJson(p), entry: nodeJson(at.node) };
      if (pv.kind !== 'text') return sendJson(c.res, 200, { ...base, kind: pv.kind, mime: pv.mime });
      // Read only as many chunks as the cap needs.
      const parts: Buffer[] = [];
      let n = 0;
      for await (const chunk of fileChunks(repo, at.node)) {
        parts.push(chunk);
        n += chunk.length;
        if (n >= pv.cap) break;
      }
      const head = Buffer.concat(parts).subarray(0, pv.cap);
      const text = new TextDecoder('utf-8', { fatal: false }).decode(head);
      const binary = head.includes(0);
      sendJson(c.res, 200, { ...base, kind: binary ? 'binary' : 'text', text: binary ? undefined : text, truncated: at.node.size > head.length });
    }),

  // `snap export REF - --format F [--path P...]`: a folder (or the snapshot) as zip, tar.gz or tar, streamed.
  'GET /api/export': (c) =>
    c.lease.use(async (repo) => {
      const snap = await snapshotParam(c, repo);
      const format = ({ zip: 'zip', 'tar.gz': 'tar.gz', tgz: 'tar.gz', tar: 'tar' } as Record<string, ArchiveFormat>)[c.q.get('format') ?? 'zip'];
      if (!format) throw new HttpError(400, 'SNAP_USAGE', 'format must be zip, tar.gz or tar');
      const paths = snapshotPaths(c.q);
      const selection = await PathSelection.resolve(repo, snap, paths.map(asUserPath));
      const all = selection.everything;
      const name = Buffer.concat([Buffer.from(`${shortId(snap.id)}-`), paths.length === 1 && !all ? baseName(paths[0]!) : Buffer.from('snapshot'), Buffer.from(`.${format}`)]);
      c.res.writeHead(200, { ...CONTENT_HEADERS, 'content-type': format === 'zip' ? 'application/zip' : format === 'tar' ? 'application/x-tar' : 'application/gzip', 'content-disposition': disposition('attachment', name) });
      // A small buffer between the writer and the socket; the writer waits for it to drain, and
      // the pipeline fails it as soon as the client goes away.
      const pass = new PassThrough({ highWaterMark: 256 * 1024 });
      const piped = pipeline(pass, c.res);
      const done = exportSnapshot(repo, snap, pass, { format, selection, sink: {} });
      await Promise.all([done, piped]);
    }),

  // `snap diff A B [PATH] --json`
  'GET /api/diff': (c) =>
    c.lease.use(async (repo) => {
      const a = await snapshotParam(c, repo, 'from');
      const b = await snapshotParam(c, repo, 'to');
      const p = c.q.has('path') || c.q.has('path_hex') ? asUserPath(snapshotPath(c.q)) : undefined;
      const it = diffSnapshots(repo, a, b, p);
      const first = await it.next();
      const out = new JsonStream(c.res, `{"from":${JSON.stringify(snapRefJson(a))},"to":${JSON.stringify(snapRefJson(b))},"changes":[`);
      const sum = emptySummary();
      for (let r = first; !r.done; r = await it.next()) {
        c.signal.throwIfAborted();
        summarize(sum, r.value);
        await out.item(changeJson(r.value));
      }
      await out.end(`],"summary":${JSON.stringify(sum)}}`, c.res);
    }),

  // `snap history PATH --json`
  'GET /api/history': (c) =>
    c.lease.use(async (repo) => {
      const snaps = await snapshots(repo, filterParams(c.q));
      const p = asUserPath(snapshotPath(c.q));
      const it = history(repo, snaps, p);
      const first = await it.next();
      const out = new JsonStream(c.res, `{"path":${JSON.stringify(p)},"versions":[`);
      for (let r = first; !r.done; r = await it.next()) {
        c.signal.throwIfAborted();
        await out.item(versionJson(r.value));
      }
      await out.end(']}', c.res);
    }),

  // `snap find PATTERN --json`
  'GET /api/find': (c) =>
    c.lease.use(async (repo) => {
      const fp = compileFindPattern(required(c.q, 'pattern'));
      const snaps = await snapshots(repo, filterParams(c.q));
      const out = new JsonStream(c.res, '[');
      for await (const hit of findInSnapshots(repo, snaps, fp)) {
        c.signal.throwIfAborted();
        await out.item({ snapshot: snapRefJson(hit.snapshot), matches: hit.matches.map((m) => ({ ...pathJson(m.path), ...nodeJson(m.node) })) });
      }
      await out.end(']', c.res);
    }),

  // `snap restore REF TARGET --include P --overwrite O [--dry-run] --json`. A dry run answers with
  // its list; a real restore starts a job (GET /api/jobs/ID for progress, POST .../cancel).
  'POST /api/restore': async (c) => {
    if (!c.allowRestore) throw READ_ONLY();
    const body = (await readBody(c.req)) as Record<string, unknown>;
    const target = restoreTarget(body.target);
    const overwrite = body.overwrite ?? 'never';
    if (overwrite !== 'never' && overwrite !== 'if-changed' && overwrite !== 'always') {
      throw new HttpError(400, 'SNAP_USAGE', 'overwrite must be never, if-changed or always');
    }
    const include = (Array.isArray(body.paths_hex) ? body.paths_hex : []).map((h: unknown) => asUserPath(fromHexParam(String(h), 'paths_hex')));
    if (typeof body.snapshot !== 'string') throw new HttpError(400, 'SNAP_USAGE', 'snapshot is required');
    const ref = body.snapshot;
    const asRoot = c.asRoot;
    if (body.dry_run !== false) {
      return c.lease.use(async (repo) => {
        const snap = resolveRef(await repo.listSnapshots(), ref, c.now(), whenParser);
        const out = new JsonStream(c.res, `{"snapshot":${JSON.stringify(snap.id)},"target":${JSON.stringify(target)},"dry_run":true,"entries":[`);
        const r = await restoreSnapshot(repo, snap, {
          target,
          include,
          dryRun: true,
          onPlanned: (e) => out.item(plannedJson(e)),
          overwrite: overwrite as OverwritePolicy,
          asRoot,
          sink: {},
          signal: c.signal,
        });
        await out.end(`],${JSON.stringify(r).slice(1)}`, c.res);
      });
    }
    const job = c.jobs.start('restore', (sink, signal) =>
      c.lease.use(async (repo) => {
        const snap = resolveRef(await repo.listSnapshots(), ref, c.now(), whenParser);
        const r = await restoreSnapshot(repo, snap, { target, include, dryRun: false, overwrite: overwrite as OverwritePolicy, asRoot, sink, signal });
        return { snapshot: snap.id, target, dry_run: false, ...r };
      }),
    );
    sendJson(c.res, 202, { job: job.id });
  },
};

/** `GET /api/jobs/ID` and `POST /api/jobs/ID/cancel`. */
export function jobRoute(c: ApiContext, method: string, rest: string): boolean {
  const m = /^([A-Za-z0-9_-]{1,40})(\/cancel)?$/.exec(rest);
  if (!m) return false;
  if (method === 'GET' && !m[2]) {
    const job = c.jobs.get(m[1]!);
    if (!job) throw new HttpError(404, 'SNAP_NOT_FOUND', 'no such job');
    sendJson(c.res, 200, job);
    return true;
  }
  if (method === 'POST' && m[2]) {
    if (!c.jobs.cancel(m[1]!)) throw new HttpError(404, 'SNAP_NOT_FOUND', 'no such job');
    sendJson(c.res, 200, { cancelled: true });
    return true;
  }
  return false;
}

