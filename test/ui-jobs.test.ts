// `snap ui` under long work: a download that its client stops reading does not block other
// requests; closing it stops the server's work; a restore job can be cancelled from the API; and
// the repository is released once the server is idle, so other snap commands get it.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snap, tmpDir } from './helpers/cli.js';
import { login, request, startUi, type UiProcess } from './helpers/ui-server.js';

const MiB = 2 ** 20;
const FILES = 4000;
let base: string;
let repo: string;
let src: string;
let ui: UiProcess;
let cookie: string;
let csrf: string;

const hex = (s: string): string => Buffer.from(s).toString('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function countFiles(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? countFiles(path.join(dir, e.name)) : 1;
  return n;
}

beforeAll(async () => {
  base = tmpDir('snap-ui-jobs-');
  repo = path.join(base, 'repo');
  src = path.join(base, 'src');
  for (let d = 0; d < 40; d++) {
    fs.mkdirSync(path.join(src, 'many', `d${d}`), { recursive: true });
    for (let f = 0; f < FILES / 40; f++) fs.writeFileSync(path.join(src, 'many', `d${d}`, `f${f}.txt`), `file ${d}/${f}\n`);
  }
  const fd = fs.openSync(path.join(src, 'big.img'), 'w');
  fs.ftruncateSync(fd, 400 * MiB);
  fs.closeSync(fd);
  expect(snap(['--repo', repo, 'init']).code).toBe(0);
  const c = snap(['--repo', repo, 'create', src]);
  expect(c.code, c.stderr).toBe(0);
  ui = await startUi(repo, ['--allow-restore']);
  cookie = await login(ui);
  csrf = (await request(ui.port, '/api/info', { headers: { cookie } })).json().csrf;
}, 300_000);

afterAll(async () => {
  if (ui) expect(await ui.stop()).toBe(0);
  fs.rmSync(base, { recursive: true, force: true });
});

describe('snap ui: long work', () => {
  it('a download its client stopped reading blocks nothing; closing it ends the work and frees the repository', async () => {
    let received = 0;
    const req = http.get({ host: '127.0.0.1', port: ui.port, path: `/api/cat?snapshot=latest&path_hex=${hex(path.join(src, 'big.img'))}`, headers: { host: `127.0.0.1:${ui.port}`, cookie }, agent: false });
    const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
    expect(res.statusCode).toBe(200);
    res.once('data', (c: Buffer) => {
      received += c.length;
      res.pause();
    });
    await sleep(1000);
    // The download is stuck on its client; other requests are answered meanwhile.
    const t0 = Date.now();
    const ls = await request(ui.port, `/api/ls?snapshot=latest&path_hex=${hex(path.join(src, 'many'))}`, { headers: { cookie } });
    expect(ls.status).toBe(200);
    expect(ls.json().entries).toHaveLength(40);
    expect((await request(ui.port, '/api/snapshots', { headers: { cookie } })).status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(received).toBeLessThan(400 * MiB);
    // Once the client goes away and the server is idle, the repository is free for a command that
    // will not wait. (While the download runs, today's index is one process's at a time; issue 11
    // shares it, so this test does not pin that.)
    res.destroy();
    req.destroy();
    await sleep(2500);
    const free = snap(['--repo', repo, '--lock-wait', '0', 'list']);
    expect(free.code, free.stderr).toBe(0);
  });

  it('a restore job stops when cancelled; one run to the end reports its counts', async () => {
    const target = path.join(base, 'restore-target');
    fs.mkdirSync(target);
    const body = JSON.stringify({ snapshot: 'latest', paths_hex: [hex(path.join(src, 'many'))], target, dry_run: false });
    const r = await request(ui.port, '/api/restore', { method: 'POST', headers: { cookie, 'x-snap-csrf': csrf }, body });
    expect(r.status, r.body.toString()).toBe(202);
    const id = r.json().job;
    const c = await request(ui.port, `/api/jobs/${id}/cancel`, { method: 'POST', headers: { cookie, 'x-snap-csrf': csrf } });
    expect(c.status).toBe(200);
    let job: any;
    for (let i = 0; i < 300; i++) {
      job = (await request(ui.port, `/api/jobs/${id}`, { headers: { cookie } })).json();
      if (job.state !== 'running') break;
      await sleep(100);
    }
    expect(job.state, JSON.stringify(job)).toBe('cancelled');
    expect(countFiles(target)).toBeLessThan(FILES);
    // Cancelling needs the CSRF token like any change.
    expect((await request(ui.port, `/api/jobs/${id}/cancel`, { method: 'POST', headers: { cookie } })).status).toBe(403);
    // A job restored to the end reports its counts.
    const whole = await request(ui.port, '/api/restore', { method: 'POST', headers: { cookie, 'x-snap-csrf': csrf }, body: JSON.stringify({ snapshot: 'latest', paths_hex: [hex(path.join(src, 'many', 'd0'))], target, dry_run: false, overwrite: 'always' }) });
    const wid = whole.json().job;
    for (let i = 0; i < 300; i++) {
      job = (await request(ui.port, `/api/jobs/${wid}`, { headers: { cookie } })).json();
      if (job.state !== 'running') break;
      await sleep(100);
    }
    expect(job.state, JSON.stringify(job)).toBe('done');
    expect(job.result.files).toBe(FILES / 40);
    expect(countFiles(path.join(target, src, 'many', 'd0'))).toBe(FILES / 40);
  });
});
