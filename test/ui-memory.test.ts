// `snap ui` streams: a large file downloaded through the page's API, first by a client that stops
// reading for a while (the server must wait, not buffer), keeps the server process's own memory
// under 150 MB at its peak: its peak RSS (VmHWM, read from /proc) less the pages of files mapped
// (RssFile: the node binary and libraries, shared and dropped by the kernel when memory is short);
// so does the folder holding it, as zip. That was "peak RSS under 200 MB" when the node binary's
// pages were 45-50 MB of it (Node 20); Node 26's binary maps about 82 MB at once, which put an idle
// server at 109 MB and its downloads at 189-207 MB while its own memory peaked at 104-122 MB (Node
// 20: 71-84 MB, peak RSS 118-131 MB).
// (RssFile is read after the peak: if the kernel dropped file pages since, the figure only grows.)
// The file is sparse (a few MiB of random data in zeros) so the backup dedups. 600 MiB by default;
// with SNAP_TORTURE=1 (npm run test:torture) 3 GiB, which takes minutes on a 2-core machine.
// A 4 GiB file made of one zero chunk repeated is cheap enough for every run: its snapshot is
// written through the repository's API (no backup reads 4 GiB), and only the download streams it.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snap, tmpDir } from './helpers/cli.js';
import { craftSnapshot, node } from './helpers/craft.js';
import { login, startUi, type UiProcess } from './helpers/ui-server.js';

const TORTURE = (process.env.SNAP_TORTURE ?? '') !== '' && process.env.SNAP_TORTURE !== '0';
const MiB = 2 ** 20;
const SIZE = TORTURE ? 3 * 1024 * MiB : 600 * MiB;
const LIMIT = 150 * 1000 * 1000;

function procStatus(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssFile'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** The server's own memory now, or at its peak: RSS less mapped files' pages (see above). */
function ownMemory(pid: number, at: 'now' | 'peak'): number {
  return procStatus(pid, at === 'now' ? 'VmRSS' : 'VmHWM') - procStatus(pid, 'RssFile');
}

function sha256File(p: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(p, 'r');
  const buf = Buffer.allocUnsafe(8 * MiB);
  for (let n = fs.readSync(fd, buf); n > 0; n = fs.readSync(fd, buf)) h.update(buf.subarray(0, n));
  fs.closeSync(fd);
  return h.digest('hex');
}

/** GET with the session; stops reading for `pauseMs` after `pauseAfter` bytes; returns the body's size and sha256. */
function download(ui: UiProcess, cookie: string, rawPath: string, pauseAfter: number, pauseMs: number, onPause: () => void): Promise<{ status: number; bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: ui.port, path: rawPath, headers: { host: `127.0.0.1:${ui.port}`, cookie }, agent: false }, (res) => {
      const h = createHash('sha256');
      let n = 0;
      let paused = false;
      res.on('data', (c: Buffer) => {
        h.update(c);
        n += c.length;
        if (!paused && n >= pauseAfter) {
          paused = true;
          res.pause();
          setTimeout(() => {
            onPause();
            res.resume();
          }, pauseMs);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes: n, sha256: h.digest('hex') }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

describe(`snap ui: a ${SIZE / MiB} MiB download keeps the server holding under 150 MB of its own memory`, () => {
  let base: string;
  let big: string;
  let ui: UiProcess;
  let cookie: string;

  beforeAll(async () => {
    base = tmpDir('snap-ui-mem-');
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    big = path.join(src, 'disk.img');
    const fd = fs.openSync(big, 'w');
    fs.ftruncateSync(fd, SIZE);
    for (const at of [0, Math.floor(SIZE / 2), SIZE - 3 * MiB]) fs.writeSync(fd, randomBytes(3 * MiB), 0, 3 * MiB, at);
    fs.closeSync(fd);
    const repo = path.join(base, 'repo');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const c = snap(['--repo', repo, 'create', src]);
    expect(c.code, c.stderr).toBe(0);
    ui = await startUi(repo);
    cookie = await login(ui);
  }, 600_000);

  afterAll(async () => {
    if (ui) expect(await ui.stop()).toBe(0);
    fs.rmSync(base, { recursive: true, force: true });
  });

  it('the file itself, read by a client that stops for 3 s: the server waits instead of buffering', async () => {
    const pid = ui.proc.pid!;
    let duringPause = 0;
    const r = await download(ui, cookie, `/api/cat?snapshot=latest&path_hex=${Buffer.from(big).toString('hex')}`, 64 * MiB, 3000, () => (duringPause = ownMemory(pid, 'now')));
    expect(r.status).toBe(200);
    expect(r.bytes).toBe(SIZE);
    expect(r.sha256).toBe(sha256File(big));
    expect(duringPause).toBeGreaterThan(0);
    expect(duringPause).toBeLessThan(LIMIT);
    const peak = ownMemory(pid, 'peak');
    console.info(`snap ui, ${SIZE / MiB} MiB file: own memory ${(duringPause / 1e6).toFixed(0)} MB while the client paused, peak ${(peak / 1e6).toFixed(0)} MB (peak RSS ${(procStatus(pid, 'VmHWM') / 1e6).toFixed(0)} MB)`);
    expect(peak).toBeLessThan(LIMIT);
  }, 900_000);

  it('its folder as zip, streamed from the export writer', async () => {
    const pid = ui.proc.pid!;
    const r = await download(ui, cookie, `/api/export?snapshot=latest&format=zip&path_hex=${Buffer.from(path.dirname(big)).toString('hex')}`, 16 * MiB, 2000, () => {});
    expect(r.status).toBe(200);
    expect(r.bytes).toBeGreaterThan(9 * MiB); // the random parts do not compress
    const peak = ownMemory(pid, 'peak');
    console.info(`snap ui, ${SIZE / MiB} MiB folder as zip: own memory at its peak ${(peak / 1e6).toFixed(0)} MB (peak RSS ${(procStatus(pid, 'VmHWM') / 1e6).toFixed(0)} MB)`);
    expect(peak).toBeLessThan(LIMIT);
  }, 900_000);
});

describe('snap ui: a 4 GiB file (one zero chunk, 4096 times) downloads with the server holding under 150 MB of its own memory', () => {
  const CHUNK = MiB;
  const COUNT = 4096;
  const BIG = CHUNK * COUNT;
  let base: string;
  let ui: UiProcess;
  let cookie: string;

  beforeAll(async () => {
    base = tmpDir('snap-ui-mem4-');
    const repo = path.join(base, 'repo');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    await craftSnapshot(repo, async (c) => {
      const zero = await c.blob(Buffer.alloc(CHUNK));
      return c.tree([node('zero.img', 'file', { size: BIG, chunks: Array.from({ length: COUNT }, () => zero) })]);
    });
    ui = await startUi(repo);
    cookie = await login(ui);
  }, 120_000);

  afterAll(async () => {
    if (ui) expect(await ui.stop()).toBe(0);
    if (base) fs.rmSync(base, { recursive: true, force: true });
  });

  it('a client that stops for 2 s after 1 GiB: every byte arrives, the server waits instead of buffering', async () => {
    const pid = ui.proc.pid!;
    let duringPause = 0;
    const zeros = Buffer.alloc(CHUNK);
    const r = await new Promise<{ status: number; bytes: number; nonZero: number }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: ui.port, path: `/api/cat?snapshot=latest&path_hex=${Buffer.from('/zero.img').toString('hex')}`, headers: { host: `127.0.0.1:${ui.port}`, cookie }, agent: false }, (res) => {
        let n = 0;
        let nonZero = 0;
        let paused = false;
        res.on('data', (c: Buffer) => {
          for (let at = 0; at < c.length; at += CHUNK) {
            const part = c.subarray(at, at + CHUNK);
            if (!part.equals(zeros.subarray(0, part.length))) nonZero++;
          }
          n += c.length;
          if (!paused && n >= 1024 * MiB) {
            paused = true;
            res.pause();
            setTimeout(() => {
              duringPause = ownMemory(pid, 'now');
              res.resume();
            }, 2000);
          }
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes: n, nonZero }));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
    expect(r.status).toBe(200);
    expect(r.bytes).toBe(BIG);
    expect(r.nonZero).toBe(0);
    expect(duringPause).toBeGreaterThan(0);
    expect(duringPause).toBeLessThan(LIMIT);
    const peak = ownMemory(pid, 'peak');
    console.info(`snap ui, 4 GiB file: own memory ${(duringPause / 1e6).toFixed(0)} MB while the client paused, peak ${(peak / 1e6).toFixed(0)} MB (peak RSS ${(procStatus(pid, 'VmHWM') / 1e6).toFixed(0)} MB)`);
    expect(peak).toBeLessThan(LIMIT);
  }, 600_000);
});
